//! The result file, schema `rmap-lab/result/v1` (DESIGN §8): one JSON object
//! per run. Notebooks, `lab compare` and `lab plot` read only this.
//!
//! Files are written atomically: a temporary file in the same directory,
//! `fsync`, then `rename` over the final name, so a reader never sees half a
//! result, and an interrupted run still leaves a whole one (marked
//! `interrupted`).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use super::machine::Machine;

pub const SCHEMA: &str = "rmap-lab/result/v1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub schema: String,
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub workload: String,
    pub config: RunConfig,
    pub machine: Machine,
    pub lab_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub verdict: Verdict,
    /// Metric name -> latency summary (DESIGN §8 names).
    pub metrics: BTreeMap<String, MetricSummary>,
    pub counters: Counters,
    /// Operations per second of the measured phase, by `role.operation`.
    pub throughput: BTreeMap<String, f64>,
    /// Role -> event -> value.
    pub perf: BTreeMap<String, BTreeMap<String, PerfValue>>,
    /// Things the reader should know about these numbers.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Round time over the run: `[t_s, round_ns, pages]` per round.
    #[serde(default)]
    pub rounds: Vec<[f64; 3]>,
    /// Anything a producer adds beyond the schema (kept on re-write).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Every parameter of the run. The first five are required by the schema;
/// the rest are what `lab run` used (absent for producers such as
/// `lab calibrate` that have no such knob).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub vcpus: u32,
    pub seed: u64,
    pub desc_ext: u32,
    pub aliases: u32,
    pub mem_bytes: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub lost_writes: u64,
    pub rmap_inconsistencies: u64,
    pub ok: bool,
    #[serde(default)]
    pub lost_write_gfns: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricSummary {
    pub count: u64,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    /// The full histogram: HdrHistogram V2 + DEFLATE, base64.
    pub hdr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Counters {
    pub walks: u64,
    pub restarts: u64,
    pub restarts_by_reason: BTreeMap<String, u64>,
    pub guest_writes: u64,
    pub faults_fast: u64,
    pub faults_slow: u64,
    pub zaps: u64,
    pub rounds: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PerfValue {
    pub supported: bool,
    /// Scaled for multiplexing (value * enabled / running), as `perf stat`.
    pub value: Option<f64>,
    pub time_enabled_ns: u64,
    pub time_running_ns: u64,
    /// Why the event is not supported (for example the errno name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Value per operation of the role (for example per write-protect walk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_op: Option<f64>,
}

/// Why a file could not be read as a result.
#[derive(Debug)]
pub struct ResultError(pub String);

impl std::fmt::Display for ResultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResultError {}

impl RunResult {
    /// Read and validate one result file; the error names the file and the
    /// problem in one line.
    pub fn load(path: &Path) -> Result<RunResult, ResultError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ResultError(format!("{}: cannot read: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ResultError(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<RunResult, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        match v.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(format!("schema is '{other}', expected '{SCHEMA}'")),
            None => {
                return Err(format!(
                    "not an rmap-lab result (no \"schema\": \"{SCHEMA}\")"
                ))
            }
        }
        serde_json::from_value(v).map_err(|e| format!("invalid {SCHEMA} result: {e}"))
    }

    /// Write atomically to `path` (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a result always serialises");
        write_atomic(path, &json)
    }

    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.get(name)
    }
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename. Used for every file the lab writes that a reader may race.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl MetricSummary {
    /// Summarise a latency histogram, keeping the whole histogram
    /// (HdrHistogram V2 + DEFLATE, base64) so percentiles can be merged
    /// across runs later.
    pub fn from_histogram(h: &Histogram<u64>) -> MetricSummary {
        use base64::Engine;
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .expect("serialising a histogram into a Vec cannot fail");
        MetricSummary {
            count: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
            hdr: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The full histogram back from `hdr`.
    pub fn histogram(&self) -> Result<Histogram<u64>, String> {
        use base64::Engine;
        use hdrhistogram::serialization::Deserializer;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.hdr.as_bytes())
            .map_err(|e| format!("histogram is not base64 ({e})"))?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode ({e:?})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_survives_the_result_file() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 2).unwrap();
        for v in [100u64, 200, 300, 5_000, 1_000_000] {
            h.record(v).unwrap();
        }
        let s = MetricSummary::from_histogram(&h);
        assert_eq!(s.count, 5);
        assert_eq!(s.min_ns, 100);
        assert!(s.max_ns >= 1_000_000 && s.max_ns < 1_010_000);
        let back = s.histogram().unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let bad = MetricSummary {
            hdr: "!!".into(),
            ..s
        };
        assert!(bad.histogram().is_err());
    }

    #[test]
    fn foreign_json_is_named_not_panicked() {
        assert!(RunResult::parse("{").unwrap_err().contains("not JSON"));
        assert!(RunResult::parse("{\"a\":1}")
            .unwrap_err()
            .contains("not an rmap-lab result"));
        assert!(RunResult::parse("{\"schema\":\"other/v9\"}")
            .unwrap_err()
            .contains("expected"));
        assert!(RunResult::parse(&format!("{{\"schema\":\"{SCHEMA}\"}}"))
            .unwrap_err()
            .contains("invalid"));
    }
}

/// Now, as RFC 3339 in UTC with milliseconds (`2026-11-25T18:53:44.120Z`).
pub fn utc_now() -> String {
    utc_stamps(std::time::SystemTime::now()).0
}

/// `t` as RFC 3339 in UTC with milliseconds, and as a file-name stamp
/// (`20261125T185344.120Z`), without a date crate (civil date from days
/// since 1970-01-01 after Howard Hinnant's algorithm).
pub fn utc_stamps(t: std::time::SystemTime) -> (String, String) {
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(std::time::Duration::ZERO);
    let secs = d.as_secs();
    let ms = d.subsec_millis();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    (
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z"),
        format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}.{ms:03}Z"),
    )
}

#[cfg(test)]
mod time_tests {
    use super::utc_stamps;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_stamps_are_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(utc_stamps(t).0, "2000-02-29T00:00:00.123Z");
        assert_eq!(utc_stamps(t).1, "20000229T000000.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_632_824);
        assert_eq!(utc_stamps(t).0, "2026-11-25T18:53:44.000Z");
    }
}

//! The lab's argument syntax and the forms numbers are printed in.
//!
//! Parsing is the kept crates' (`jiff` for durations, `bytesize` for
//! sizes); what is decided here is which spellings the lab accepts:
//!
//! - **Durations**: `300ms`, `2s`, `1.5m`, `1h`, `1min 30s` (jiff's
//!   "friendly" format); a bare number is seconds. Negative durations are
//!   refused.
//! - **Sizes**: `MB` is 10^6 bytes and `MiB` 2^20 (`kB`/`KiB`, `GB`/`GiB`,
//!   `TB`/`TiB` likewise), case aside; a bare number is bytes. A bare prefix
//!   (`64M`, `1G`) is refused rather than guessed: `dd` and `truncate` read
//!   it as MiB, SI as MB.
//! - **Lists**: `1,2,4`.
//!
//! Errors are one line naming the value and the expected form.

use std::time::Duration;

/// Longest duration any flag takes: about 115 days.
const MAX_DURATION_S: u64 = 10_000_000;

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let signed: jiff::SignedDuration = match t.parse() {
        Ok(d) => d,
        // A bare number is seconds, as `sleep` reads it.
        Err(_) => match t.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                jiff::SignedDuration::try_from_secs_f64(secs)
                    .map_err(|_| format!("'{t}' is out of range"))?
            }
            _ => {
                return Err(format!(
                    "'{t}' is not a duration (expected e.g. 300ms, 2s, 1.5m, 1h)"
                ))
            }
        },
    };
    if signed.is_negative() {
        return Err(format!("'{t}' is negative"));
    }
    let d = Duration::try_from(signed).map_err(|_| format!("'{t}' is out of range"))?;
    if d.as_secs() > MAX_DURATION_S {
        return Err(format!("'{t}' is out of range"));
    }
    Ok(d)
}

/// The unit of a size, lower-cased, when the lab accepts it.
fn size_unit_ok(unit: &str) -> Result<(), String> {
    match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "kb" | "mb" | "gb" | "tb" | "kib" | "mib" | "gib" | "tib" => Ok(()),
        "k" | "m" | "g" | "t" => Err(format!(
            "'{u}' is ambiguous: write {u}iB for 2^{p} bytes or {u}B for 10^{e} bytes",
            u = unit.to_ascii_uppercase(),
            p = 10 * (1 + "kmgt".find(&unit.to_ascii_lowercase()).unwrap_or(0)),
            e = 3 * (1 + "kmgt".find(&unit.to_ascii_lowercase()).unwrap_or(0)),
        )),
        _ => Err(format!(
            "'{unit}' is not a size unit (use B, kB, MB, GB, TB or KiB, MiB, GiB, TiB)"
        )),
    }
}

/// Bytes in `s`: `64MiB` is 67,108,864 and `64MB` 64,000,000 (see the
/// module doc).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "'{t}' is not a size (expected e.g. 4096, 64MiB, 1GiB, 64MB)"
        ));
    }
    size_unit_ok(unit.trim()).map_err(|e| format!("size '{t}': {e}"))?;
    let b: bytesize::ByteSize = t
        .parse()
        .map_err(|_| format!("'{t}' is not a size (expected e.g. 4096, 64MiB, 1GiB, 64MB)"))?;
    if b.as_u64() > 1_000_000_000_000_000_000 {
        return Err(format!("'{t}' is out of range"));
    }
    Ok(b.as_u64())
}

/// A comma-separated list of values parsed by `item`.
pub fn parse_list<T>(s: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let v: Result<Vec<T>, String> = s
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| item(x.trim()))
        .collect();
    let v = v?;
    if v.is_empty() {
        return Err(format!("'{s}' is an empty list"));
    }
    Ok(v)
}

/// Human form of a byte count: `256MiB`.
pub fn format_size(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 && (v / 1024.0).fract() == 0.0 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", v, U[i])
}

/// Human form of nanoseconds: `850ns`, `12.3us`, `4.56ms`, `1.23s`.
pub fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// Human form of a count or rate with an SI prefix and three significant
/// digits: `950`, `12.3k`, `1.23M`, `4.56G`; below 1, `0.123`.
pub fn format_si(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let (scaled, prefix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    // Tiny values in scientific form (`4.7e-5`), never a row of zeros.
    if prefix.is_empty() && a > 0.0 && a < 1e-3 {
        return format!("{v:.1e}");
    }
    let s = scaled.abs();
    let digits = if s == 0.0 || s >= 100.0 {
        0
    } else if s >= 10.0 {
        1
    } else if s >= 1.0 || !prefix.is_empty() {
        2
    } else {
        3
    };
    // Whole numbers below 1000 print as such: `12`, not `12.0`.
    if prefix.is_empty() && v.fract() == 0.0 {
        return format!("{v:.0}");
    }
    format!("{scaled:.digits$}{prefix}")
}

/// A ratio for people, with the digits it needs: `2.31x`, `13968x`, and
/// below 0.1 as a fraction, `1/12000x` (two significant digits), never
/// `0.00x`.
pub fn format_ratio(r: f64) -> String {
    if !r.is_finite() || r < 0.0 {
        return format!("{r}x");
    }
    if r == 0.0 {
        "0x".into()
    } else if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        let inv = 1.0 / r;
        let shown = if inv >= 100.0 {
            let mag = 10f64.powi(inv.log10().floor() as i32 - 1);
            format!("{:.0}", (inv / mag).round() * mag)
        } else {
            format!("{inv:.0}")
        };
        format!("1/{shown}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_lists() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1min 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("-2s").unwrap_err().contains("negative"));
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_list("1,2,4", |x| x.parse::<u32>().map_err(|e| e.to_string())).unwrap(),
            vec![1, 2, 4]
        );
        assert!(parse_list("", |x| Ok::<_, String>(x.to_string())).is_err());
        assert_eq!(format_size(256 << 20), "256MiB");
        assert_eq!(format_ns(1500.0), "1.5us");
        assert_eq!(format_si(950.0), "950");
        assert_eq!(format_si(12_345.0), "12.3k");
        assert_eq!(format_si(1_234_567.0), "1.23M");
        assert_eq!(format_si(0.1234), "0.123");
        assert_eq!(format_si(2.5), "2.50");
        assert_eq!(format_si(4.7e-5), "4.7e-5");
        assert_eq!(format_si(0.0), "0");
    }

    #[test]
    fn ratios_never_read_zero() {
        assert_eq!(format_ratio(2.314), "2.31x");
        assert_eq!(format_ratio(13968.2), "13968x");
        assert_eq!(format_ratio(0.5), "0.50x");
        assert_eq!(format_ratio(1.0 / 12_345.0), "1/12000x");
        assert_eq!(format_ratio(0.05), "1/20x");
        assert_eq!(format_ratio(0.0), "0x");
    }

    #[test]
    fn mb_is_a_million_bytes_mib_is_two_to_the_twenty_and_m_is_refused() {
        assert_eq!(parse_size("64MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("64mb").unwrap(), 64_000_000);
        assert_eq!(parse_size("64MiB").unwrap(), 67_108_864);
        assert_eq!(parse_size("2kB").unwrap(), 2_000);
        assert_eq!(parse_size("2KiB").unwrap(), 2_048);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        for bare in ["64M", "64m", "1G", "8k"] {
            let e = parse_size(bare).unwrap_err();
            assert!(e.contains("ambiguous") && e.contains("iB"), "{bare}: {e}");
        }
        assert!(parse_size("64M").unwrap_err().contains("2^20"));
        assert!(parse_size("3 parsecs")
            .unwrap_err()
            .contains("not a size unit"));
    }
}

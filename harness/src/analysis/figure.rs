//! The figures a comparison shows, and how each is read from a result file.
//!
//! A [`Figure`] names one number per run (guest writes per second, the p99 of
//! one latency metric, restarts per 1,000 walks, ...), says its unit and
//! which direction is better, and extracts it from a [`RunResult`], or
//! `None` when the run did not do that work (an `idle` run has no walker
//! metrics). The key figures of `lab compare` are [`Figure::defaults`];
//! `--metric` accepts their ids and three generic forms, so any metric,
//! throughput or counter of a result can be compared without new code:
//!
//! | spec | figure |
//! | --- | --- |
//! | `writes`, `fault_slow_p99`, `wp_gfn_p99`, `round_p50`, `tlb_flush_p99`, `restarts`, `lost_writes`, `aging_pass_p50` | the key figures (a column no run has is left out) |
//! | `pass_p50`, `writes_per_vcpu_cpu_s`, `walker_cpus`, `zaps_issued` | guest progress and offered load: `vcpu.pass` p50, guest writes per vCPU CPU-second, the walker's CPUs busy, zaps issued per zap requested |
//! | `METRIC:STAT`, e.g. `mmu_lock.wait:p99` | a latency statistic (`count`, `min`, `p50`, `p90`, `p99`, `p999`, `max`, `mean`) |
//! | `throughput:KEY`, e.g. `throughput:walker.walks` | operations per second |
//! | `counter:NAME`, e.g. `counter:zaps` | a counter (`restarts_by_reason.REASON` too) |

use crate::record::result::RunResult;

/// The unit of a figure, which decides how it is printed and labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds (printed `12.3us`).
    Ns,
    /// Operations per second.
    PerSecond,
    /// Per 1,000 write-protect walks.
    PerKiloWalk,
    /// A plain count (or a share, a number of CPUs: a plain number).
    Count,
}

impl Unit {
    /// One value in this unit, short: `12.3us`, `1.23M`.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ns => crate::record::units::format_ns(v),
            Unit::PerSecond | Unit::PerKiloWalk | Unit::Count => crate::record::units::format_si(v),
        }
    }
}

/// Which direction of a figure is the good one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Clone, Debug, PartialEq)]
enum Source {
    /// Guest writes per second: `throughput.guest_writes`, else
    /// `counters.guest_writes / duration_s`.
    GuestWrites,
    Metric {
        name: String,
        stat: Stat,
    },
    Throughput(String),
    Counter(String),
    RestartsPerKiloWalk,
    LostWrites,
    /// Guest writes per CPU-second of the vCPU threads (measured phase).
    WritesPerVcpuCpuSecond,
    /// CPU seconds of a role's threads per second of the measured phase.
    CpusBusy(&'static str),
    /// Zaps issued over zaps requested.
    ZapsIssued,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stat {
    Count,
    Min,
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

impl Stat {
    const ALL: [(&'static str, Stat); 8] = [
        ("count", Stat::Count),
        ("min", Stat::Min),
        ("p50", Stat::P50),
        ("p90", Stat::P90),
        ("p99", Stat::P99),
        ("p999", Stat::P999),
        ("max", Stat::Max),
        ("mean", Stat::Mean),
    ];
}

/// One number per run, with its name, unit and good direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Stable identifier (CSV/JSON column, `--metric` spec).
    pub id: String,
    /// Short column heading: `slow fault p99`.
    pub label: String,
    pub unit: Unit,
    pub better: Better,
    /// Whether a ratio across designs means what it seems. Round p50 does
    /// not: a design that lets vCPUs dirty more pages harvests more per
    /// round, so its rounds are longer for doing more. Such a figure is
    /// shown, marked, and never judged better or worse.
    pub comparable: bool,
    source: Source,
}

/// The simulated VM's metric names (`rmap_workloads::METRIC_NAMES`) that
/// the key figures and the plots use.
pub const FAULT_SLOW: &str = "vcpu.fault_slow";
pub const WP_GFN: &str = "walker.wp_gfn";
pub const ROUND: &str = "walker.round";
pub const TLB_FLUSH: &str = "walker.tlb_flush";
pub const PASS: &str = "vcpu.pass";
pub const AGE_PASS: &str = "aging.pass";

impl Figure {
    fn metric(id: &str, label: &str, name: &str, stat: Stat) -> Figure {
        Figure {
            id: id.into(),
            label: label.into(),
            unit: if stat == Stat::Count {
                Unit::Count
            } else {
                Unit::Ns
            },
            better: Better::Lower,
            comparable: true,
            source: Source::Metric {
                name: name.into(),
                stat,
            },
        }
    }

    /// Guest writes per second.
    pub fn guest_writes() -> Figure {
        Figure {
            id: "writes".into(),
            label: "guest writes/s".into(),
            unit: Unit::PerSecond,
            better: Better::Higher,
            comparable: true,
            source: Source::GuestWrites,
        }
    }
    pub fn fault_slow_p99() -> Figure {
        Figure::metric("fault_slow_p99", "slow fault p99", FAULT_SLOW, Stat::P99)
    }
    pub fn wp_gfn_p99() -> Figure {
        Figure::metric("wp_gfn_p99", "wp walk p99", WP_GFN, Stat::P99)
    }
    /// Not comparable across designs (see [`Figure::comparable`]).
    pub fn round_p50() -> Figure {
        Figure {
            comparable: false,
            ..Figure::metric("round_p50", "round p50", ROUND, Stat::P50)
        }
    }
    pub fn tlb_flush_p99() -> Figure {
        Figure::metric("tlb_flush_p99", "TLB flush p99", TLB_FLUSH, Stat::P99)
    }
    /// Restarts per 1,000 write-protect walks (none when there were no walks).
    pub fn restarts() -> Figure {
        Figure {
            id: "restarts".into(),
            label: "restarts/1k walks".into(),
            unit: Unit::PerKiloWalk,
            better: Better::Lower,
            comparable: true,
            source: Source::RestartsPerKiloWalk,
        }
    }
    /// The `aging` workload's pass over the whole memslot, median (the
    /// figure of Linux 6.15's "Age sptes locklessly" cover letter).
    pub fn aging_pass_p50() -> Figure {
        Figure::metric("aging_pass_p50", "aging pass p50", AGE_PASS, Stat::P50)
    }
    pub fn lost_writes() -> Figure {
        Figure {
            id: "lost_writes".into(),
            label: "lost writes".into(),
            unit: Unit::Count,
            better: Better::Lower,
            comparable: true,
            source: Source::LostWrites,
        }
    }

    /// The figures the headline states for each design against the
    /// baseline: guest progress, slow-fault p99, walk cost, restarts, lost
    /// writes.
    pub fn headline() -> Vec<Figure> {
        vec![
            Figure::guest_writes(),
            Figure::fault_slow_p99(),
            Figure::wp_gfn_p99(),
            Figure::restarts(),
            Figure::lost_writes(),
        ]
    }

    /// `vcpu.pass` p50: the time a vCPU takes to make as many accesses as
    /// its slice has pages.
    pub fn pass_p50() -> Figure {
        Figure::metric("pass_p50", "vCPU pass p50", PASS, Stat::P50)
    }
    /// Guest writes per CPU-second of the vCPU threads: throughput that the
    /// CPUs other threads take from the vCPUs do not move.
    pub fn writes_per_vcpu_cpu_s() -> Figure {
        Figure {
            id: "writes_per_vcpu_cpu_s".into(),
            label: "guest writes per vCPU CPU-s".into(),
            unit: Unit::PerSecond,
            better: Better::Higher,
            comparable: true,
            source: Source::WritesPerVcpuCpuSecond,
        }
    }
    /// The walker thread's CPUs busy (its CPU seconds per second).
    pub fn walker_cpus() -> Figure {
        Figure {
            id: "walker_cpus".into(),
            label: "walker CPUs".into(),
            unit: Unit::Count,
            better: Better::Lower,
            comparable: true,
            source: Source::CpusBusy("walker"),
        }
    }
    /// Zaps issued per zap the open-loop schedule requested.
    pub fn zaps_issued() -> Figure {
        Figure {
            id: "zaps_issued".into(),
            label: "zaps issued / requested".into(),
            unit: Unit::Count,
            better: Better::Higher,
            comparable: true,
            source: Source::ZapsIssued,
        }
    }

    /// Figures `--metric` knows by id beyond the defaults.
    fn more() -> Vec<Figure> {
        vec![
            Figure::pass_p50(),
            Figure::writes_per_vcpu_cpu_s(),
            Figure::walker_cpus(),
            Figure::zaps_issued(),
        ]
    }

    /// The key figures of `lab compare`, in column order.
    pub fn defaults() -> Vec<Figure> {
        vec![
            Figure::guest_writes(),
            Figure::fault_slow_p99(),
            Figure::wp_gfn_p99(),
            Figure::round_p50(),
            Figure::tlb_flush_p99(),
            Figure::restarts(),
            Figure::lost_writes(),
            Figure::aging_pass_p50(),
        ]
    }

    /// Parse one `--metric` spec (see the module doc).
    pub fn parse(spec: &str) -> Result<Figure, String> {
        let spec = spec.trim();
        if let Some(f) = Figure::defaults()
            .into_iter()
            .chain(Figure::more())
            .find(|f| f.id == spec)
        {
            return Ok(f);
        }
        let bad = || {
            let ids: Vec<String> = Figure::defaults()
                .into_iter()
                .chain(Figure::more())
                .map(|f| f.id)
                .collect();
            format!(
                "unknown metric '{spec}' (expected one of {}, or METRIC:STAT, throughput:KEY, counter:NAME)",
                ids.join(", ")
            )
        };
        let (a, b) = spec.split_once(':').ok_or_else(bad)?;
        if a.is_empty() || b.is_empty() {
            return Err(bad());
        }
        match a {
            "throughput" => Ok(Figure {
                id: spec.into(),
                label: format!("{b}/s"),
                unit: Unit::PerSecond,
                better: Better::Higher,
                comparable: true,
                source: Source::Throughput(b.into()),
            }),
            "counter" => Ok(Figure {
                id: spec.into(),
                label: b.into(),
                unit: Unit::Count,
                better: Better::Lower,
                comparable: true,
                source: Source::Counter(b.into()),
            }),
            name => {
                let stat = Stat::ALL
                    .iter()
                    .find(|(s, _)| *s == b)
                    .map(|(_, s)| *s)
                    .ok_or_else(|| {
                        format!(
                            "unknown statistic '{b}' in '{spec}' (count, min, p50, p90, p99, p999, max, mean)"
                        )
                    })?;
                Ok(Figure::metric(spec, &format!("{name} {b}"), name, stat))
            }
        }
    }

    /// This figure's value in one run, or `None` when the run has no such
    /// data.
    pub fn value(&self, r: &RunResult) -> Option<f64> {
        match &self.source {
            Source::GuestWrites => guest_writes_per_s(r),
            Source::Metric { name, stat } => {
                r.metric(name).filter(|m| m.count > 0).map(|m| match stat {
                    Stat::Count => m.count as f64,
                    Stat::Min => m.min_ns as f64,
                    Stat::P50 => m.p50_ns as f64,
                    Stat::P90 => m.p90_ns as f64,
                    Stat::P99 => m.p99_ns as f64,
                    Stat::P999 => m.p999_ns as f64,
                    Stat::Max => m.max_ns as f64,
                    Stat::Mean => m.mean_ns,
                })
            }
            Source::Throughput(k) => r.throughput.get(k),
            Source::Counter(name) => r.counters.get(name).map(|v| v as f64),
            Source::RestartsPerKiloWalk => (r.counters.walks > 0)
                .then(|| r.counters.restarts as f64 * 1000.0 / r.counters.walks as f64),
            Source::LostWrites => Some(r.verdict.lost_writes as f64),
            Source::WritesPerVcpuCpuSecond => {
                let cpu = r.thread_cpu_s("vcpu").filter(|s| *s > 0.0)?;
                Some(r.counters.guest_writes as f64 / cpu)
            }
            Source::CpusBusy(role) => {
                let cpu = r.thread_cpu_s(role)?;
                (r.duration_s > 0.0).then(|| cpu / r.duration_s)
            }
            Source::ZapsIssued => r.zaps_issued_share(),
        }
    }
}

/// Guest writes per second of the measured phase: the producer's rate, or
/// for a result without one, the counter over the measured duration.
fn guest_writes_per_s(r: &RunResult) -> Option<f64> {
    r.throughput.guest_writes.or_else(|| {
        (r.counters.guest_writes > 0 && r.duration_s > 0.0)
            .then(|| r.counters.guest_writes as f64 / r.duration_s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_specs_parse_or_say_what_is_expected() {
        assert_eq!(Figure::parse("round_p50").unwrap(), Figure::round_p50());
        let f = Figure::parse("mmu_lock.wait:p999").unwrap();
        assert_eq!((f.unit, f.better), (Unit::Ns, Better::Lower));
        assert_eq!(
            Figure::parse("throughput:walker.walks").unwrap().better,
            Better::Higher
        );
        assert!(Figure::parse("walks")
            .unwrap_err()
            .contains("unknown metric 'walks'"));
        assert!(Figure::parse("x:p7")
            .unwrap_err()
            .contains("unknown statistic"));
        assert!(Figure::parse(":p99").is_err());
    }
}

//! Figures against a swept parameter: guest writes/s, slow-fault p99,
//! restarts per 1,000 walks and the aging pass (`aging` runs) against
//! vCPUs; restarts and write-protect walk
//! p99 against chain length (`aliases`) and descriptor size (`desc_ext`).
//! One line per implementation through the medians over repeats, with
//! min-max error bars, from the same [`Comparison`] the report's table
//! shows.
//!
//! A chart needs the parameter to take at least two values among runs that
//! agree on everything else. When a sweep varies several parameters, each
//! combination of the others gets its own chart, except parameters that
//! follow from the swept one: those would cut every line into pieces, so
//! they are left out of the split. An `mmu_lock` of `auto`, which resolves
//! to `spin` at few vCPUs and `park` at many, is no parameter at all (runs
//! group on the choice, `analysis::group`): its points that parked are
//! drawn as open circles, which the title says.

use super::line::{Axis, LineChart, Point, Series};
use super::style::{impl_colour, Scale, TickFormat};
use super::{Planned, Section};
use crate::analysis::figure::{Figure, Unit};
use crate::analysis::group::{cmp_params, follows_from, format_params, Params};
use crate::analysis::Comparison;

/// The swept parameters drawn, their axis label, and the figures drawn
/// against each.
fn axes() -> [(&'static str, &'static str, Vec<Figure>); 3] {
    [
        (
            "vcpus",
            "vCPUs",
            vec![
                Figure::guest_writes(),
                Figure::fault_slow_p99(),
                Figure::restarts(),
                Figure::aging_pass_p50(),
            ],
        ),
        (
            "aliases",
            "aliases (sptes per gfn: chain length)",
            vec![Figure::restarts(), Figure::wp_gfn_p99()],
        ),
        (
            "desc_ext",
            "desc_ext (sptes per descriptor)",
            vec![Figure::restarts(), Figure::wp_gfn_p99()],
        ),
    ]
}

fn y_axis(f: &Figure, ys: impl Iterator<Item = f64>) -> Axis {
    let (label, ticks) = match f.unit {
        Unit::Ns => (f.label.clone(), TickFormat::Ns),
        Unit::PerSecond => (f.label.replace("/s", " per second"), TickFormat::Si),
        Unit::PerKiloWalk => ("restarts per 1,000 walks".to_string(), TickFormat::Si),
        Unit::Count => (f.label.clone(), TickFormat::Si),
    };
    // Latencies that span more than a factor 30 go on a log axis.
    let scale = match f.unit {
        Unit::Ns => Scale::for_values(ys, 30.0),
        _ => Scale::Linear,
    };
    Axis::new(label, scale, ticks)
}

pub fn plan(c: &Comparison) -> Vec<Planned> {
    let mut out = Vec::new();
    for (x, x_label, figures) in axes() {
        if !c.keys.iter().any(|k| k == x) {
            continue;
        }
        let x_of = |p: &Params| p.iter().find(|(k, _)| k == x).and_then(|(_, v)| v.as_f64());
        // The other parameters that split the runs into separate charts.
        let split: Vec<&String> = c
            .keys
            .iter()
            .filter(|k| k.as_str() != x && !follows_from(c.rows.iter().map(|r| &r.params), x, k))
            .collect();
        let rest = |p: &Params| -> Params {
            p.iter()
                .filter(|(k, _)| split.contains(&k))
                .cloned()
                .collect()
        };
        let mut partitions: Vec<Params> = Vec::new();
        for r in &c.rows {
            let p = rest(&r.params);
            if !partitions.contains(&p) {
                partitions.push(p);
            }
        }
        partitions.sort_by(cmp_params);
        for part in &partitions {
            let rows: Vec<_> = c.rows.iter().filter(|r| &rest(&r.params) == part).collect();
            let mut xs: Vec<f64> = rows.iter().filter_map(|r| x_of(&r.params)).collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            if xs.len() < 2 {
                continue;
            }
            for f in &figures {
                let Some(j) = c.figure_index(&f.id) else {
                    continue;
                };
                let mut series = Vec::new();
                let mut repeats = false;
                let mut parked = false;
                for name in &c.impls {
                    let mut pts: Vec<Point> = rows
                        .iter()
                        .filter(|r| &r.impl_name == name)
                        .filter_map(|r| {
                            let s = r.cells[j].stats?;
                            repeats |= s.n > 1;
                            let hollow = r
                                .mmu_lock_used
                                .as_deref()
                                .is_some_and(|k| k.contains("park"));
                            parked |= hollow;
                            Some(Point {
                                x: x_of(&r.params)?,
                                y: s.median,
                                err: (s.n > 1).then_some((s.min, s.max)),
                                hollow,
                            })
                        })
                        .collect();
                    if pts.is_empty() {
                        continue;
                    }
                    pts.sort_by(|a, b| a.x.total_cmp(&b.x));
                    series.push(Series {
                        name: name.clone(),
                        colour: impl_colour(name),
                        points: pts,
                        markers: true,
                        legend: true,
                    });
                }
                if series.is_empty() {
                    continue;
                }
                let xscale = if xs[0] > 0.0 && xs[xs.len() - 1] / xs[0] >= 4.0 {
                    Scale::Log2
                } else {
                    Scale::Linear
                };
                let mut xa = Axis::new(x_label, xscale, TickFormat::Integer);
                xa.zero = false;
                xa.ticks_at_data = true;
                let mut title = format!("{} against {x_label}", f.label);
                if let Some(cut) = title.find(" (") {
                    title.truncate(cut);
                }
                let mut notes = Vec::new();
                if !part.is_empty() {
                    notes.push(format_params(part));
                }
                if repeats {
                    notes.push("median, bars min-max".into());
                }
                if parked {
                    notes.push("open circles: mmu_lock auto parked".into());
                }
                if !notes.is_empty() {
                    title.push_str(&format!(" ({})", notes.join("; ")));
                }
                out.push(Planned::at(
                    Section::Sweep,
                    part,
                    partitions.len(),
                    &format!("{}-vs-{x}", f.id),
                    LineChart {
                        title,
                        x: xa,
                        y: y_axis(f, series.iter().flat_map(|s| s.points.iter().map(|p| p.y))),
                        series,
                    },
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::result::RunResult;
    use crate::render::plot::Plot;
    use std::path::PathBuf;

    fn run(impl_name: &str, vcpus: u32, aliases: u32, mmu_lock: &str) -> (PathBuf, RunResult) {
        run_asking(impl_name, vcpus, aliases, mmu_lock, None)
    }

    /// A run that used `mmu_lock` and, with `choice`, says what it asked for.
    fn run_asking(
        impl_name: &str,
        vcpus: u32,
        aliases: u32,
        mmu_lock: &str,
        choice: Option<&str>,
    ) -> (PathBuf, RunResult) {
        let mut config = serde_json::json!({"vcpus": vcpus, "seed": 1, "desc_ext": 3,
            "aliases": aliases, "mem_bytes": 1u64 << 28, "mmu_lock": mmu_lock});
        if let Some(c) = choice {
            config["mmu_lock_choice"] = c.into();
        }
        let v = serde_json::json!({
            "schema": crate::record::result::SCHEMA, "impl": impl_name, "workload": "dirty-log",
            "config": config,
            "machine": {"online_cpus": 2, "cpu_model": "c", "kernel": "k", "hostname": "h",
                        "oversubscribed": false, "clock_source": "tsc"},
            "lab_version": "0", "started_at": "t", "duration_s": 1.0, "interrupted": false,
            "verdict": {"lost_writes": 0, "rmap_inconsistencies": 0, "ok": true},
            "metrics": {},
            "counters": {"walks": 1000, "restarts": vcpus * aliases, "restarts_by_reason": {},
                         "guest_writes": 0, "faults_fast": 0, "faults_slow": 0, "zaps": 0,
                         "rounds": 0},
            "throughput": {"vcpu.guest_writes": 1000.0 * vcpus as f64},
            "perf": {}
        });
        let name = format!("{impl_name}-{vcpus}-{aliases}.json");
        (
            PathBuf::from(name),
            RunResult::parse(&v.to_string()).unwrap(),
        )
    }

    fn plans(runs: &[(PathBuf, RunResult)]) -> Vec<Planned> {
        plan(&crate::analysis::compare(runs, &Default::default()).unwrap())
    }

    #[test]
    fn a_key_that_follows_from_vcpus_does_not_split_the_lines() {
        // `--mmu-lock auto`: spin at 1 and 2 vCPUs, park at 4 and 8.
        let runs: Vec<_> = ["mmu-lock", "lockless-gen"]
            .iter()
            .flat_map(|i| [1, 2, 4, 8].map(|v| run(i, v, 4, if v < 4 { "spin" } else { "park" })))
            .collect();
        let p = plans(&runs);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["writes-vs-vcpus", "restarts-vs-vcpus"]);
        let Plot::Line(c) = &p[0].plot else {
            panic!("a line chart")
        };
        assert_eq!(c.series.len(), 2);
        let xs: Vec<f64> = c.series[0].points.iter().map(|p| p.x).collect();
        assert_eq!(xs, [1.0, 2.0, 4.0, 8.0]);
        assert_eq!(c.series[1].points[3].y, 8000.0);
    }

    /// Runs that record their `auto` choice group on it: one row per design
    /// and vCPU count whatever kind `auto` gave, the kind marked per row
    /// and, in the plot, as open circles where it parked.
    #[test]
    fn an_auto_lock_gives_one_line_per_design_with_the_parked_points_hollow() {
        let runs: Vec<_> = ["mmu-lock", "lockless-gen"]
            .iter()
            .flat_map(|i| {
                [1, 2, 4, 8]
                    .map(|v| run_asking(i, v, 4, if v < 4 { "spin" } else { "park" }, Some("auto")))
            })
            .collect();
        let c = crate::analysis::compare(&runs, &Default::default()).unwrap();
        assert_eq!(c.keys, ["vcpus"], "mmu_lock is not a grouping key");
        assert_eq!(c.rows.len(), 8);
        let used: Vec<_> = c.rows.iter().map(|r| r.mmu_lock_used.as_deref()).collect();
        assert_eq!(
            used[..4],
            [Some("spin"), Some("spin"), Some("spin"), Some("spin")]
        );
        assert_eq!(
            used[4..],
            [Some("park"), Some("park"), Some("park"), Some("park")]
        );
        // Every form of the table has the column, with the kind per row.
        let table = crate::render::export::table::render(&c, false);
        assert!(table.contains("mmu_lock used"), "{table}");
        let md = crate::render::export::markdown::render(&c, false);
        assert!(md.contains("| mmu_lock used |"), "{md}");
        assert!(md.contains("| park |"), "{md}");
        let html = crate::render::export::html::table(&c);
        assert!(html.contains("<th>mmu_lock used</th>"), "{html}");
        assert!(html.contains("<td>park</td>"), "{html}");
        let p = plan(&c);
        let Plot::Line(chart) = &p[0].plot else {
            panic!("a line chart")
        };
        assert_eq!(chart.series.len(), 2);
        let hollow: Vec<bool> = chart.series[0].points.iter().map(|p| p.hollow).collect();
        assert_eq!(hollow, [false, false, true, true]);
        assert!(chart.title.contains("open circles"), "{}", chart.title);
        // Asked for explicitly, the kind is a parameter like any other.
        let explicit: Vec<_> = [1, 8]
            .map(|v| run_asking("mmu-lock", v, 4, "spin", Some("spin")))
            .into_iter()
            .chain([run_asking("mmu-lock", 8, 4, "park", Some("park"))])
            .collect();
        let c = crate::analysis::compare(&explicit, &Default::default()).unwrap();
        assert_eq!(c.keys, ["vcpus", "mmu_lock_choice"]);
        assert!(c.rows.iter().all(|r| r.mmu_lock_used.is_none()));
    }

    #[test]
    fn two_swept_parameters_give_a_chart_per_value_of_the_other() {
        let runs: Vec<_> = [1, 2, 4]
            .into_iter()
            .flat_map(|v| [1, 8].map(|a| run("lockless", v, a, "spin")))
            .collect();
        let names: Vec<String> = plans(&runs).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "writes-vs-vcpus-aliases1",
                "restarts-vs-vcpus-aliases1",
                "writes-vs-vcpus-aliases8",
                "restarts-vs-vcpus-aliases8",
                "restarts-vs-aliases-vcpus1",
                "restarts-vs-aliases-vcpus2",
                "restarts-vs-aliases-vcpus4",
            ]
        );
    }
}

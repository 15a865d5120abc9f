//! `lab list [--json]`: the implementations, workloads, injectable bugs (with
//! the check that catches each, and whether `lab check` saw the oracle reach
//! it on this machine), and the perf events this machine supports, probed.

use crate::record::check::{load_bugs_reached, BugReached};
use crate::record::error::{LabResult, EXIT_OK};
use crate::render::terminal::Table;
use crate::session::perf;
use clap::Args;
use rmap_impls::{Bug, BugLayer, ImplKind};
use rmap_workloads::WorkloadKind;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON (keys impls, workloads, bugs, perf_events).
    #[arg(long)]
    pub json: bool,
    /// Where `lab check --inject-bug` recorded which bugs the oracle reached.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
}

/// What this machine's `lab check --inject-bug` runs found, in words.
fn reached_text(bug: Bug, r: Option<&BugReached>) -> String {
    match r {
        None => format!("not checked here yet (lab check --inject-bug {bug})"),
        Some(r) if r.reached => format!(
            "yes: caught in {} of {} runs ({} lost writes), {}",
            r.runs_caught,
            r.runs,
            r.lost_writes,
            &r.checked_at[..10.min(r.checked_at.len())]
        ),
        Some(r) => format!(
            "not reached in {} runs, {}{}",
            r.runs,
            &r.checked_at[..10.min(r.checked_at.len())],
            if bug.layer() == BugLayer::Rmap {
                " (the model checker catches it)"
            } else {
                ""
            }
        ),
    }
}

pub fn main(args: ListArgs) -> LabResult<i32> {
    let reached = load_bugs_reached(&args.out);
    let probes = perf::probe_all();
    if args.json {
        let impls: Vec<Value> = ImplKind::ALL
            .iter()
            .map(|k| {
                json!({
                    "name": k.name(),
                    "description": k.description(),
                    "correct": k.flaw().is_none(),
                    "flaw": k.flaw(),
                    "default_chain": k.default_chain().map(|c| c.name()),
                    "chains": k.chains().iter().map(|&c| json!({
                        "name": c.name(),
                        "description": k.chain_description(c),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let workloads: Vec<Value> = WorkloadKind::ALL
            .iter()
            .map(|w| json!({"name": w.name(), "description": w.description()}))
            .collect();
        let bugs: Vec<Value> = Bug::ALL
            .iter()
            .map(|b| {
                let r = reached.get(b.name());
                json!({
                    "name": b.name(),
                    "description": b.description(),
                    "layer": match b.layer() { BugLayer::Rmap => "rmap", BugLayer::Workload => "workload" },
                    "applies_to": b.applies_to().iter().map(|k| k.name()).collect::<Vec<_>>(),
                    "caught_by": b.caught_by(),
                    "oracle_reached_here": r.map(|r| r.reached),
                    "oracle_check": r,
                })
            })
            .collect();
        let out = json!({
            "impls": impls,
            "workloads": workloads,
            "bugs": bugs,
            "perf_events": serde_json::to_value(&probes).expect("serialisable"),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serialisable")
        );
        return Ok(EXIT_OK);
    }

    println!("implementations (--impl):");
    let mut t = Table::new(&["  name", "description"]).left_aligned();
    for k in ImplKind::ALL {
        let mut d = k.description().to_string();
        if let Some(f) = k.flaw() {
            d = format!("{d}. {f}");
        }
        t.row(vec![format!("  {}", k.name()), d]);
        for &c in k.chains() {
            let default = if k.default_chain() == Some(c) {
                " (default)"
            } else {
                ""
            };
            t.row(vec![
                String::new(),
                format!("--chain {c}{default}: {}", k.chain_description(c)),
            ]);
        }
        if k.chains().is_empty() {
            t.row(vec![
                String::new(),
                "no chains: --chain does not apply".into(),
            ]);
        }
    }
    print!("{}", t.render());
    println!("\nworkloads (--workload):");
    let mut t = Table::new(&["  name", "description"]).left_aligned();
    for w in WorkloadKind::ALL {
        t.row(vec![format!("  {}", w.name()), w.description().into()]);
    }
    print!("{}", t.render());
    println!("\ninjectable bugs (--inject-bug):");
    for b in Bug::ALL {
        let to: Vec<_> = b.applies_to().iter().map(|k| k.name()).collect();
        println!("  {:<20}{}", b.name(), b.description());
        println!("  {:<20}applies to: {}", "", to.join(", "));
        println!("  {:<20}caught by: {}", "", b.caught_by());
        println!(
            "  {:<20}oracle reached it on this machine: {}",
            "",
            reached_text(b, reached.get(b.name()))
        );
    }
    println!("\nperf events (--perf), probed on this machine:");
    let mut t = Table::new(&["  event", "kind", "supported"]).left_aligned();
    for p in &probes {
        t.row(vec![
            format!("  {}", p.name),
            p.kind.name().into(),
            match (&p.supported, &p.reason) {
                (true, _) if p.user_only => "yes (user mode only)".into(),
                (true, _) => "yes".into(),
                (false, Some(r)) => format!("not supported: {r}"),
                (false, None) => "not supported".into(),
            },
        ]);
    }
    print!("{}", t.render());
    Ok(EXIT_OK)
}

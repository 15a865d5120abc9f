//! `lab list [--json]`: the implementations, workloads, injectable bugs (with
//! the checks that catch each, and, for each bug and for the flaw of
//! `lockless`, what `lab check` measured on this machine: which checks
//! caught it, in how many runs, the median time to the first detection, and
//! the command), and the perf events this machine supports, probed.

use crate::record::check::{load_bugs_reached, BugReached, FLAW_KEY};
use crate::record::error::{LabResult, EXIT_OK};
use crate::record::units::format_ns;
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
    /// Where `lab check` recorded what it caught (`bugs-reached.json`).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
}

/// What this machine's `lab check` runs found of a bug or the flaw, in
/// words; `how` is the command that would measure it.
fn reached_text(how: &str, model_checked: bool, r: Option<&BugReached>) -> String {
    let Some(r) = r else {
        return format!("not checked here yet ({how})");
    };
    let when = &r.checked_at[..10.min(r.checked_at.len())];
    if !r.reached {
        return format!(
            "not caught in {} runs, {when}{}",
            r.runs,
            if model_checked {
                " (the model checker catches it)"
            } else {
                ""
            }
        );
    }
    let checks: Vec<String> = r
        .caught_by
        .iter()
        .map(|(check, runs)| format!("{check} in {runs}"))
        .collect();
    format!(
        "caught in {} of {} runs{}{}, {when}{}",
        r.runs_caught,
        r.runs,
        if checks.is_empty() {
            String::new()
        } else {
            format!(" ({})", checks.join(", "))
        },
        match r.median_detection_s {
            Some(s) => format!(", median {} to the first detection", format_ns(s * 1e9)),
            None => String::new(),
        },
        r.command
            .as_ref()
            .map(|c| format!("; measured by: {c}"))
            .unwrap_or_default()
    )
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
                    "check_here": k.flaw().and_then(|_| reached.get(FLAW_KEY)),
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
                    "check_here": r,
                })
            })
            .collect();
        let hw_missing = probes
            .iter()
            .any(|p| p.kind == perf::EventKind::Hardware && !p.supported);
        let out = json!({
            "impls": impls,
            "workloads": workloads,
            "bugs": bugs,
            "perf_events": serde_json::to_value(&probes).expect("serialisable"),
            // Where cache misses come from without hardware counters.
            "simulated_caches": hw_missing.then_some(perf::SIMULATED_CACHES),
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
    println!(
        "  the flaw of lockless, lab check here: {}",
        reached_text("lab check --impl lockless", true, reached.get(FLAW_KEY))
    );
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
            "  {:<20}lab check on this machine: {}",
            "",
            reached_text(
                &format!("lab check --inject-bug {b}"),
                b.layer() == BugLayer::Rmap,
                reached.get(b.name())
            )
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
    if probes
        .iter()
        .any(|p| p.kind == perf::EventKind::Hardware && !p.supported)
    {
        println!("  hardware events missing: {}", perf::SIMULATED_CACHES);
    }
    Ok(EXIT_OK)
}

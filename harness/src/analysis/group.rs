//! Grouping runs by configuration.
//!
//! Two runs belong to one group when they ran the same implementation with
//! the same configuration; several runs of a group are repeats, summarised
//! by their median and range. The configuration of a run is its `workload`
//! and every key of its `config` object, including the keys a producer adds
//! beyond the schema, except `seed` (repeats differ in it on purpose), a
//! few keys that name where or how output went (`IGNORED`), and `chain`
//! where it is the design's own (`ImplKind::default_chain`): a design's
//! default chain is part of what the design is (`rmap-lock` runs over 6.4's,
//! `mmu-lock` over 2013's), so only a run over another chain is told apart
//! by it.
//!
//! A run that records what `mmu_lock` kind it asked for (`mmu_lock_choice`)
//! groups on that, not on the kind it got (`mmu_lock`): `auto` resolves to
//! `spin` at few vCPUs and `park` at many, and a sweep of vCPUs must stay one
//! line per design. The kind used is a property of the runs of a group
//! instead ([`mmu_lock_used`]), which tables and plots mark.
//!
//! Only the keys whose values differ between the inputs tell groups apart;
//! they are the grouping [`Grouping::keys`] (with `vcpus` always among them,
//! the lab's main axis), and the keys every run shares are reported once as
//! [`Grouping::common`]. A key a run lacks counts as `null`, so a run from
//! an older producer still groups with its peers on the keys both have.
//!
//! Groups are ordered by their parameters (numbers numerically), then by
//! implementation: the baseline first, then the order of `lab list`, then
//! any other name in order of appearance. A comparison table and every plot
//! list implementations in this one order.

use crate::record::result::RunResult;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Config keys that do not describe the measured configuration.
const IGNORED: [&str; 5] = ["seed", "out", "output", "json", "repeat"];

/// Keys shown first, in this order; the rest follow alphabetically.
const KEY_ORDER: [&str; 5] = ["vcpus", "workload", "aliases", "desc_ext", "mem_bytes"];

/// A group's parameters: `(key, value)` for each grouping key, in key order.
pub type Params = Vec<(String, Value)>;

/// The runs of one implementation at one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub impl_name: String,
    pub params: Params,
    /// Indices into the runs that were grouped, in input order.
    pub runs: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    /// Keys whose values differ between the inputs (and `vcpus`).
    pub keys: Vec<String>,
    /// Keys every input shares, with their value.
    pub common: Vec<(String, Value)>,
    /// Implementations in display order (see the module doc).
    pub impls: Vec<String>,
    pub groups: Vec<Group>,
}

/// The configuration of one run as a flat map (`workload` and `config`).
pub fn config_map(r: &RunResult) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    if let Ok(Value::Object(o)) = serde_json::to_value(&r.config) {
        m.extend(o);
    }
    m.insert("workload".into(), Value::String(r.workload.clone()));
    for k in IGNORED {
        m.remove(k);
    }
    if m.contains_key("mmu_lock_choice") {
        m.remove("mmu_lock");
    }
    let default_chain = rmap_impls::ImplKind::from_name(&r.impl_name)
        .and_then(|k| k.default_chain())
        .map(|c| Value::String(c.name().into()));
    if default_chain.is_some() && m.get("chain") == default_chain.as_ref() {
        m.remove("chain");
    }
    m
}

/// The `mmu_lock` kind the runs `indices` of `runs` used, where they asked
/// for `auto`: `spin`, `park`, or `park/spin` when repeats differ. `None`
/// where the kind was asked for (it is then a grouping key or common) or a
/// run does not say.
pub fn mmu_lock_used(runs: &[(PathBuf, RunResult)], indices: &[usize]) -> Option<String> {
    let mut kinds = std::collections::BTreeSet::new();
    for &i in indices {
        let config = serde_json::to_value(&runs[i].1.config).ok()?;
        if config.get("mmu_lock_choice")?.as_str() != Some("auto") {
            return None;
        }
        kinds.insert(config.get("mmu_lock")?.as_str()?.to_string());
    }
    (!kinds.is_empty()).then(|| kinds.into_iter().collect::<Vec<_>>().join("/"))
}

/// Group `runs` (see the module doc). `baseline` goes first among the
/// implementations.
pub fn group_runs(runs: &[(PathBuf, RunResult)], baseline: Option<&str>) -> Grouping {
    let maps: Vec<BTreeMap<String, Value>> = runs.iter().map(|(_, r)| config_map(r)).collect();
    let all_keys: std::collections::BTreeSet<&String> =
        maps.iter().flat_map(|m| m.keys()).collect();
    let mut keys = Vec::new();
    let mut common = Vec::new();
    for k in all_keys {
        let first = maps[0].get(k).unwrap_or(&Value::Null);
        if k == "vcpus"
            || maps
                .iter()
                .any(|m| m.get(k).unwrap_or(&Value::Null) != first)
        {
            keys.push(k.clone());
        }
        if maps
            .iter()
            .all(|m| m.get(k).unwrap_or(&Value::Null) == first)
        {
            common.push((k.clone(), first.clone()));
        }
    }
    keys.sort_by(|a, b| key_rank(a).cmp(&key_rank(b)).then(a.cmp(b)));
    common.sort_by(|a, b| key_rank(&a.0).cmp(&key_rank(&b.0)).then(a.0.cmp(&b.0)));

    let impls = impl_order(runs.iter().map(|(_, r)| r.impl_name.as_str()), baseline);
    let mut groups: Vec<Group> = Vec::new();
    for (i, ((_, r), m)) in runs.iter().zip(&maps).enumerate() {
        let params: Params = keys
            .iter()
            .map(|k| (k.clone(), m.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        match groups
            .iter_mut()
            .find(|g| g.impl_name == r.impl_name && g.params == params)
        {
            Some(g) => g.runs.push(i),
            None => groups.push(Group {
                impl_name: r.impl_name.clone(),
                params,
                runs: vec![i],
            }),
        }
    }
    let rank = |name: &str| impls.iter().position(|n| n == name).unwrap_or(usize::MAX);
    groups.sort_by(|a, b| {
        cmp_params(&a.params, &b.params).then(rank(&a.impl_name).cmp(&rank(&b.impl_name)))
    });
    Grouping {
        keys,
        common,
        impls,
        groups,
    }
}

/// Implementations in display order: `baseline`, then `lab list`'s order,
/// then others by first appearance.
pub fn impl_order<'a>(names: impl Iterator<Item = &'a str>, baseline: Option<&str>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for n in names {
        if !seen.iter().any(|s| s == n) {
            seen.push(n.to_string());
        }
    }
    let known = |n: &str| {
        rmap_impls::ImplKind::ALL
            .iter()
            .position(|k| k.name() == n)
            .unwrap_or(usize::MAX)
    };
    // A stable sort keeps first-appearance order among unknown names.
    seen.sort_by_key(|n| (Some(n.as_str()) != baseline, known(n)));
    seen
}

fn key_rank(k: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|x| *x == k)
        .unwrap_or(KEY_ORDER.len())
}

/// Order two parameter lists with the same keys: numbers numerically,
/// strings alphabetically, key by key.
pub fn cmp_params(a: &Params, b: &Params) -> Ordering {
    for ((_, x), (_, y)) in a.iter().zip(b) {
        let o = cmp_value(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

pub fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// A parameter value for people: `256MiB` for `mem_bytes`, strings
/// unquoted, `-` for a key the run lacks.
pub fn format_param(key: &str, v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if key == "mem_bytes" => n
            .as_u64()
            .map(crate::record::units::format_size)
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

/// Parameters as a JSON object (`serialize_with` of a `Params` field).
pub fn params_as_map<S: serde::Serializer>(p: &Params, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(p.len()))?;
    for (k, v) in p {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// The value of `key` in `p` (`null` when absent).
pub fn param<'a>(p: &'a Params, key: &str) -> &'a Value {
    p.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

/// Whether the value of `k` is fixed by the value of `x` across `params`
/// (an `mmu_lock` of `auto` resolving to `spin` at few vCPUs and `park` at
/// many follows from `vcpus`).
pub fn follows_from<'a>(
    params: impl Iterator<Item = &'a Params> + Clone,
    x: &str,
    k: &str,
) -> bool {
    params.clone().all(|a| {
        params
            .clone()
            .filter(|b| param(b, x) == param(a, x))
            .all(|b| param(b, k) == param(a, k))
    })
}

/// `vcpus=8 aliases=4`: a parameter list on one line.
pub fn format_params(params: &[(String, Value)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", format_param(k, v)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::result::Part;

    /// A committed result, renamed to `impl_name` and run over `chain`.
    fn run(impl_name: &str, chain: &str) -> (PathBuf, RunResult) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/reference/sweep/mmu-lock-dirty-log-a4-e3-32v-r1.json");
        let mut r = RunResult::load(&path).unwrap();
        r.impl_name = impl_name.into();
        let Part::Vm(c) = &mut r.config.part else {
            panic!("the simulated VM's config")
        };
        c.chain = Some(chain.into());
        (path, r)
    }

    #[test]
    fn a_designs_own_chain_does_not_split_groups_and_another_does() {
        let runs = [
            run("mmu-lock", "2013"),
            run("rmap-lock", "6.4"),
            run("rmap-lock", "2013"),
        ];
        let g = group_runs(&runs, None);
        assert!(g.keys.contains(&"chain".to_string()), "{:?}", g.keys);
        let chain_of = |i: usize| {
            let grp = g.groups.iter().find(|grp| grp.runs.contains(&i)).unwrap();
            grp.params
                .iter()
                .find(|(k, _)| k == "chain")
                .map(|(_, v)| v.clone())
        };
        // Each design at its own chain: the same parameters, so rmap-lock's
        // row has mmu-lock's as its baseline.
        assert_eq!(chain_of(0), Some(Value::Null));
        assert_eq!(chain_of(1), Some(Value::Null));
        // rmap-lock over the 2013 chain is a configuration of its own.
        assert_eq!(chain_of(2), Some(Value::String("2013".into())));
        assert_eq!(g.groups.len(), 3);
    }
}

"""Load rmap-lab result files into pandas, the way `lab compare` reads them.

The lab writes one JSON object per run (schema ``rmap-lab/result/v1``; the
Rust side is ``RunResult`` in ``harness/src/record/result.rs``). This module
is the notebooks' only reader of that format, and it mirrors three pieces of
the lab so that a notebook and ``lab compare`` never disagree:

* **Which files are results** (``record::inputs::load_all``): every ``*.json`` under a
  directory, recursively, except the lab's side files (``sweep.json``,
  ``session.json``, ``*.timeseries.json``, ``*.trace.json``,
  ``*.compare.json``, hidden temporaries). The lab stops at a JSON file
  whose ``schema`` is not a result; a notebook is a reader, so it skips such a
  file and names it in :attr:`Sweep.skipped` instead.
* **How runs group** (``analysis/group.rs``): a run's configuration is its
  ``workload`` and every ``config`` key except ``seed`` (repeats differ in it
  on purpose) and a few output keys; only the keys whose values differ
  between the inputs tell groups apart, with ``vcpus`` always among them.
  Runs of one implementation at one configuration are repeats.
* **What a figure is** (``analysis/figure.rs``) and how repeats are
  summarised (``analysis/model.rs``): the median over repeats (the mean of
  the middle two for an even count), their min and max, and the ratio of a
  group's median to the baseline implementation's median at the same
  parameters (none when the baseline's median is 0). A latency figure of a
  run that did no such work (count 0, or no metric) is missing, not 0.

It also decodes the stored histograms (``hdr``: HdrHistogram V2, DEFLATE,
base64) with ``zlib`` alone, so latency percentile curves can be drawn and
repeats merged without a compiled HdrHistogram package: see :class:`Hdr`.

Nothing here plots; the notebook does. Nothing here reads the network.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RESULT_SCHEMA = "rmap-lab/result/v1"

#: `lab list` order of the implementations (``ImplKind::ALL``).
IMPL_ORDER = ["mmu-lock", "lockless", "lockless-gen", "seqlock", "rmap-lock", "concurrent-map"]

#: Designs known to be incorrect (`lab list` says why): `lab check` does not
#: count them among the correct designs.
FLAWED_IMPLS = {"lockless"}

#: The statistics of a latency summary that the notebook flattens; the
#: metrics themselves are whatever the result files hold (:func:`metric_names`).
STATS = ["p50", "p90", "p99", "p999", "max", "mean"]

#: Config keys that do not describe the measured configuration
#: (``compare/group.rs``: ``IGNORED``).
IGNORED_CONFIG = {"seed", "out", "output", "json", "repeat"}
#: Grouping keys shown first, in this order (``KEY_ORDER``).
KEY_ORDER = ["vcpus", "workload", "aliases", "desc_ext", "mem_bytes"]
#: Config keys that are columns of their own; every other key is ``config.KEY``.
SCHEMA_CONFIG = ["vcpus", "seed", "desc_ext", "aliases", "mem_bytes"]

#: The key figures of `lab compare` (``Figure::defaults``): id -> (column of
#: the run frame, label, unit, better).
FIGURES = {
    "writes": ("writes_per_s", "guest writes/s", "per_s", "higher"),
    "fault_slow_p99": ("vcpu.fault_slow.p99", "slow fault p99", "ns", "lower"),
    "wp_gfn_p99": ("walker.wp_gfn.p99", "wp walk p99", "ns", "lower"),
    "round_p50": ("walker.round.p50", "round p50", "ns", "lower"),
    "tlb_flush_p99": ("walker.tlb_flush.p99", "TLB flush p99", "ns", "lower"),
    "restarts": ("restarts_per_1k_walks", "restarts/1k walks", "per_kwalk", "lower"),
    "lost_writes": ("lost_writes", "lost writes", "count", "lower"),
}

_SIDE_FILES = {"sweep.json", "session.json"}
_SIDE_SUFFIXES = (".timeseries.json", ".trace.json", ".compare.json")


def is_result_file_name(p: Path) -> bool:
    """The lab's name filter (``results::is_result_file_name``)."""
    n = p.name
    return not (n.startswith(".") or n in _SIDE_FILES or n.endswith(_SIDE_SUFFIXES))


# ---------------------------------------------------------------------------
# Finding the sweep


def notebook_dir() -> Path:
    """The ``notebooks/`` directory: this module's own."""
    return Path(__file__).resolve().parent


def find_sweep_dir(env: dict | None = None) -> Path:
    """``$SWEEP_DIR`` if set, else ``../results/reference/sweep`` from the notebook.

    A relative ``SWEEP_DIR`` is taken relative to the directory the user
    started from (``$PWD``, which a Jupyter kernel inherits even though it
    runs in the notebook's directory), then the kernel's working directory,
    then the repository root, in that order; the first that exists wins.
    """
    env = os.environ if env is None else env
    given = env.get("SWEEP_DIR", "").strip()
    if not given:
        return (notebook_dir().parent / "results" / "reference" / "sweep").resolve()
    p = Path(given).expanduser()
    if p.is_absolute():
        return p
    bases = [Path(env["PWD"])] if env.get("PWD") else []
    bases += [Path.cwd(), notebook_dir().parent]
    for b in bases:
        if (b / p).exists():
            return (b / p).resolve()
    return (bases[0] / p).resolve()


# ---------------------------------------------------------------------------
# Loading and flattening


@dataclass
class Sweep:
    """The result files of a directory, loaded."""

    dir: Path
    #: (path, parsed JSON) of every result, sorted by path.
    runs: list = field(default_factory=list)
    #: (path, why) of every ``*.json`` that is not a result.
    skipped: list = field(default_factory=list)


def load_sweep(directory: Path) -> Sweep:
    """Every result file under ``directory`` (recursively).

    Raises ``FileNotFoundError`` with one sentence naming the directory when
    it does not exist or holds no result.
    """
    directory = Path(directory)
    hint = ("set SWEEP_DIR to a directory written by `lab sweep ... --dir DIR` "
            "(the default is results/reference/sweep of the repository)")
    if not directory.is_dir():
        raise FileNotFoundError(f"sweep directory {directory} does not exist: {hint}")
    sweep = Sweep(dir=directory)
    for f in sorted(directory.rglob("*.json")):
        if not f.is_file() or not is_result_file_name(f):
            continue
        try:
            doc = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            sweep.skipped.append((f, f"not JSON ({e})"))
            continue
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if schema != RESULT_SCHEMA:
            sweep.skipped.append((f, f"schema is {schema!r}, not {RESULT_SCHEMA!r}"))
            continue
        sweep.runs.append((f, doc))
    if not sweep.runs:
        raise FileNotFoundError(
            f"no rmap-lab result files (schema {RESULT_SCHEMA}) in {directory}: {hint}")
    return sweep


def _scalar(v):
    """A config value usable as a group key (lists and objects as JSON)."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v


def guest_writes_per_s(r: dict) -> float:
    """Guest writes per second, as ``figure.rs::guest_writes_per_s``."""
    tp = r.get("throughput") or {}
    for k in ("vcpu.guest_writes", "vcpu.writes", "guest_writes"):
        if k in tp:
            return float(tp[k])
    for k, v in tp.items():
        if k.endswith(".guest_writes"):
            return float(v)
    c = r.get("counters") or {}
    if c.get("guest_writes", 0) > 0 and r.get("duration_s", 0) > 0:
        return c["guest_writes"] / r["duration_s"]
    return math.nan


def metric_names(runs) -> list[str]:
    """The latency metrics of ``runs`` ((path, result) pairs), in order of
    first appearance: the names come from the result files, not from a copy
    of the lab's list."""
    names = {}
    for _, r in runs:
        for name in r.get("metrics") or {}:
            names.setdefault(name, None)
    return list(names)


def flatten(path: Path, r: dict, root: Path | None = None,
            metrics: list[str] | None = None) -> dict:
    """One run as one flat row (see the notebook for the column list).

    ``metrics`` are the latency metrics to give columns to (default: the
    run's own); a metric the run lacks, or did no work for, is NaN."""
    cfg = r.get("config") or {}
    mach = r.get("machine") or {}
    ver = r.get("verdict") or {}
    counters = r.get("counters") or {}
    row = {
        "file": str(path.relative_to(root)) if root else str(path),
        "impl": r.get("impl"),
        "workload": r.get("workload"),
    }
    for k in SCHEMA_CONFIG:
        row[k] = cfg.get(k)
    for k in sorted(cfg):
        if k not in SCHEMA_CONFIG:
            row[f"config.{k}"] = _scalar(cfg[k])
    row.update({
        "online_cpus": mach.get("online_cpus"),
        "worker_threads": mach.get("worker_threads", math.nan),
        "oversubscribed": bool(mach.get("oversubscribed", False)),
        "machine": f"{mach.get('hostname', '?')} ({mach.get('cpu_model', '?')})",
        "duration_s": r.get("duration_s"),
        "interrupted": bool(r.get("interrupted", False)),
        "lost_writes": ver.get("lost_writes", 0),
        "rmap_inconsistencies": ver.get("rmap_inconsistencies", 0),
        "ok": bool(ver.get("ok", False)),
        "flawed": any("FLAWED" in w for w in r.get("warnings", [])) or r.get("impl") in FLAWED_IMPLS,
    })
    summaries = r.get("metrics") or {}
    for name in (list(summaries) if metrics is None else metrics):
        m = summaries.get(name)
        has = m is not None and m.get("count", 0) > 0
        row[f"{name}.count"] = m.get("count", 0) if m else 0
        for s in STATS:
            key = "mean_ns" if s == "mean" else f"{s}_ns"
            row[f"{name}.{s}"] = float(m[key]) if has else math.nan
    for k, v in sorted((r.get("throughput") or {}).items()):
        row[f"throughput.{k}"] = v
    for k, v in sorted(counters.items()):
        if k == "restarts_by_reason":
            for reason, n in sorted(v.items()):
                row[f"restarts.{reason}"] = n
        else:
            row[f"counters.{k}"] = v
    row["writes_per_s"] = guest_writes_per_s(r)
    walks = counters.get("walks", 0)
    row["restarts_per_1k_walks"] = counters.get("restarts", 0) * 1000.0 / walks if walks else math.nan
    return row


def runs_frame(sweep: Sweep) -> pd.DataFrame:
    """One row per run, with a column per statistic of every latency metric
    any run holds. Restart reasons a run did not see are 0."""
    names = metric_names(sweep.runs)
    df = pd.DataFrame([flatten(p, r, sweep.dir, names) for p, r in sweep.runs])
    for c in df.columns:
        if c.startswith("restarts."):
            df[c] = df[c].fillna(0).astype("int64")
    return df


# ---------------------------------------------------------------------------
# Grouping and summaries (compare/group.rs and compare/model.rs)


def _config_columns(df: pd.DataFrame) -> list[str]:
    cols = ["workload"] + [k for k in SCHEMA_CONFIG if k not in IGNORED_CONFIG]
    cols += [c for c in df.columns
             if c.startswith("config.") and c[len("config."):] not in IGNORED_CONFIG]
    return [c for c in cols if c in df.columns]


def _short(col: str) -> str:
    return col[len("config."):] if col.startswith("config.") else col


def _same(a, b) -> bool:
    na = a is None or (isinstance(a, float) and math.isnan(a))
    nb = b is None or (isinstance(b, float) and math.isnan(b))
    return (na and nb) or (not na and not nb and a == b)


def grouping_keys(df: pd.DataFrame) -> list[str]:
    """Columns whose values differ between the runs, and ``vcpus``."""
    keys = []
    for c in _config_columns(df):
        first = df[c].iloc[0]
        if c == "vcpus" or not all(_same(v, first) for v in df[c]):
            keys.append(c)
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    return sorted(keys, key=lambda c: (rank.get(_short(c), len(KEY_ORDER)), _short(c)))


def common_config(df: pd.DataFrame) -> dict:
    """Configuration every run shares (`lab compare`'s header)."""
    keys = set(grouping_keys(df)) - {"vcpus"}
    return {_short(c): df[c].iloc[0] for c in _config_columns(df)
            if c not in keys and c != "vcpus"}


def impl_order(names, baseline: str | None) -> list[str]:
    """Baseline first, then `lab list` order, then others by appearance."""
    seen = list(dict.fromkeys(names))
    known = {n: i for i, n in enumerate(IMPL_ORDER)}
    return sorted(seen, key=lambda n: (n != baseline, known.get(n, len(IMPL_ORDER))))


def default_baseline(df: pd.DataFrame) -> str:
    names = list(df["impl"])
    return "mmu-lock" if "mmu-lock" in names else names[0]


def _stats(values: pd.Series) -> tuple:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    v = v[np.isfinite(v)]
    if v.empty:
        return (math.nan, math.nan, math.nan, 0)
    return (float(v.median()), float(v.min()), float(v.max()), int(v.size))


def summarise(df: pd.DataFrame, columns: list[str] | None = None,
              keys: list[str] | None = None, baseline: str | None = None) -> pd.DataFrame:
    """Median, min, max and n over repeats, and the ratio to ``baseline``.

    One row per group (implementation at one configuration), ordered as
    `lab compare` orders them: by the grouping keys, then by
    implementation. ``columns`` are columns of :func:`runs_frame` (default:
    the seven key figures); each gives ``COL``, ``COL.min``, ``COL.max``,
    ``COL.n`` and ``COL.ratio``. ``oversubscribed`` is true when any repeat
    was.
    """
    columns = [f[0] for f in FIGURES.values()] if columns is None else columns
    keys = grouping_keys(df) if keys is None else keys
    baseline = default_baseline(df) if baseline is None else baseline
    order = impl_order(df["impl"], baseline)
    rows = []
    for gkey, g in df.groupby(["impl"] + keys, dropna=False, sort=False):
        row = dict(zip(["impl"] + keys, gkey))
        row["runs"] = len(g)
        row["oversubscribed"] = bool(g["oversubscribed"].any())
        for c in columns:
            med, lo, hi, n = _stats(g[c]) if c in g else (math.nan, math.nan, math.nan, 0)
            row.update({c: med, f"{c}.min": lo, f"{c}.max": hi, f"{c}.n": n})
        rows.append(row)
    out = pd.DataFrame(rows)
    # Ratios against the baseline group at the same parameters.
    base = out[out["impl"] == baseline].set_index(keys) if keys else out[out["impl"] == baseline]
    for c in columns:
        def ratio(r, c=c):
            try:
                b = base.loc[tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]], c]
            except KeyError:
                return math.nan
            b = float(b.iloc[0]) if isinstance(b, pd.Series) else float(b)
            return r[c] / b if b and np.isfinite(b) else math.nan
        out[f"{c}.ratio"] = out.apply(ratio, axis=1)
    rank = {n: i for i, n in enumerate(order)}
    sort_cols = [f"_k{i}" for i in range(len(keys))] + ["_impl"]
    for i, k in enumerate(keys):
        out[f"_k{i}"] = out[k].map(lambda v: (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool)
                                   else (1, 0, str(v)))
    out["_impl"] = out["impl"].map(rank)
    out = out.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)
    out.attrs.update(keys=keys, baseline=baseline, impls=order)
    return out


# ---------------------------------------------------------------------------
# HdrHistogram V2 + DEFLATE


_V2_COOKIE = 0x1C849303
_V2_DEFLATE_COOKIE = 0x1C849304
_COOKIE_MASK = ~0xF0 & 0xFFFFFFFF  # the word-size nibble varies by producer


def _varints(buf: bytes, start: int):
    """HdrHistogram's LEB128: 7 bits a byte for 8 bytes, then a whole 9th byte."""
    i, n = start, len(buf)
    while i < n:
        value, shift = 0, 0
        for k in range(9):
            b = buf[i]
            i += 1
            if k == 8:
                value |= b << 56
                break
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        yield (value >> 1) ^ -(value & 1)  # zig-zag


@dataclass
class Hdr:
    """A decoded HdrHistogram (counts and bucket layout), enough for quantiles.

    ``Hdr.decode(metric["hdr"])`` reads what ``MetricSummary::from_histogram``
    wrote; :meth:`value_at_quantile` follows the Rust crate's
    ``value_at_quantile`` exactly, so the stored ``p50_ns`` etc. come back.
    """

    lowest: int
    highest: int
    sigfig: int
    counts: np.ndarray

    @classmethod
    def decode(cls, b64: str) -> "Hdr":
        raw = base64.b64decode(b64, validate=True)
        cookie, length = struct.unpack_from(">II", raw, 0)
        if cookie & _COOKIE_MASK != _V2_DEFLATE_COOKIE:
            raise ValueError(f"not an HdrHistogram V2+DEFLATE histogram (cookie {cookie:#x})")
        body = zlib.decompress(raw[8:8 + length])
        cookie, payload_len, offset, sigfig, lowest, highest, _ratio = struct.unpack_from(">IIIIqqd", body, 0)
        if cookie & _COOKIE_MASK != _V2_COOKIE:
            raise ValueError(f"not an HdrHistogram V2 payload (cookie {cookie:#x})")
        if offset != 0:
            raise ValueError("normalizing index offset is not supported")
        counts = []
        for v in _varints(body[40:40 + payload_len], 0):
            if v < 0:
                counts.extend([0] * -v)
            else:
                counts.append(v)
        return cls(lowest, highest, sigfig, np.asarray(counts, dtype=np.int64))

    # Bucket layout, as the Rust crate computes it.
    @property
    def _unit_magnitude(self) -> int:
        return int(math.floor(math.log2(self.lowest)))

    @property
    def _sub_bucket_half_count_magnitude(self) -> int:
        return int(math.ceil(math.log2(2 * 10 ** self.sigfig))) - 1

    def value_for(self, index: np.ndarray | int):
        """The lowest value of each counts index."""
        index = np.asarray(index, dtype=np.int64)
        half_mag = self._sub_bucket_half_count_magnitude
        half = 1 << half_mag
        bucket = (index >> half_mag) - 1
        sub = (index & (half - 1)) + half
        sub = np.where(bucket < 0, sub - half, sub)
        bucket = np.maximum(bucket, 0)
        return sub << (bucket + self._unit_magnitude)

    def highest_equivalent(self, value: np.ndarray | int):
        """The largest value that shares ``value``'s bucket."""
        value = np.asarray(value, dtype=np.int64)
        um = self._unit_magnitude
        mask = ((1 << (self._sub_bucket_half_count_magnitude + 1)) - 1) << um
        bits = np.array([int(x | mask).bit_length() for x in np.atleast_1d(value)], dtype=np.int64)
        bucket = bits - um - (self._sub_bucket_half_count_magnitude + 1)
        size = np.left_shift(np.int64(1), bucket + um)
        lowest = np.bitwise_and(value, ~(size - 1))
        out = lowest + size - 1
        return out if np.ndim(value) else int(out[0])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def value_at_quantile(self, q):
        """``Histogram::value_at_quantile`` (for q > 0), vectorised over q."""
        q = np.minimum(np.asarray(q, dtype=float), 1.0)
        cum = np.cumsum(self.counts)
        want = np.maximum(np.ceil(q * self.total), 1).astype(np.int64)
        idx = np.searchsorted(cum, want, side="left")
        v = self.highest_equivalent(self.value_for(idx))
        return v if np.ndim(q) else int(v)

    def min(self) -> int:
        nz = np.flatnonzero(self.counts)
        return int(self.value_for(nz[0])) if nz.size else 0

    def max(self) -> int:
        nz = np.flatnonzero(self.counts)
        return int(self.highest_equivalent(self.value_for(nz[-1]))) if nz.size else 0

    def merge(self, other: "Hdr") -> "Hdr":
        """The histogram of both (same layout required)."""
        if (self.lowest, self.highest, self.sigfig) != (other.lowest, other.highest, other.sigfig):
            raise ValueError("histograms with different bounds or precision do not merge")
        n = max(len(self.counts), len(other.counts))
        c = np.zeros(n, dtype=np.int64)
        c[:len(self.counts)] += self.counts
        c[:len(other.counts)] += other.counts
        return Hdr(self.lowest, self.highest, self.sigfig, c)


def check_hdr(metric: dict) -> list[str]:
    """Differences between a metric's stored summary and its decoded hdr."""
    h = Hdr.decode(metric["hdr"])
    got = {"count": h.total, "min_ns": h.min(), "max_ns": h.max()}
    for name, q in (("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99), ("p999_ns", 0.999)):
        got[name] = h.value_at_quantile(q)
    return [f"{k}: stored {metric[k]}, decoded {v}" for k, v in got.items()
            if metric["count"] > 0 and metric[k] != v]


def merged_hdr(sweep: Sweep, metric: str, **where) -> Hdr | None:
    """The merged histogram of ``metric`` over the runs matching ``where``
    (``impl=..., workload=..., vcpus=...``; config keys looked up in
    ``config``), or ``None`` when none has it."""
    out = None
    for _, r in sweep.runs:
        cfg = r.get("config") or {}
        if any((r.get(k) if k in ("impl", "workload") else cfg.get(k)) != v for k, v in where.items()):
            continue
        m = (r.get("metrics") or {}).get(metric)
        if not m or m.get("count", 0) == 0:
            continue
        h = Hdr.decode(m["hdr"])
        out = h if out is None else out.merge(h)
    return out

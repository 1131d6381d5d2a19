"""Turn measured rows into the committed JSON and the Markdown table.

Ratios are *speedups*: ``lme4 seconds / our seconds`` (above 1 means faster than lme4).
Two lme4 times are used where they exist: the one recorded in visible.json (``seconds``,
another 2-core machine, median of 3) and the one measured on this machine by
``external.py --tool lme4`` (``results/lme4_local.json``, median of 5), which is the
fair, same-machine comparison.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .table import BenchmarkCase, reference_entry

__all__ = ["OBJECTIVE_TOL", "enrich", "load_external", "markdown"]

#: A fit counts as matching lme4 when its objective is at most this much above lme4's
#: (issue 2's parity tolerance; lower is better, so any amount below passes).
OBJECTIVE_TOL = 1e-3
#: A row started while the 1-minute load average exceeded this per CPU is flagged: other
#: jobs then compete for the cores and the timings overstate the cost.
BUSY_LOAD_PER_CPU = 0.75


def load_external(path: Path) -> dict:
    """``{"meta": ..., "models": {name: record}}`` from external.py, or empty parts."""
    if not path.exists():
        return {"meta": {}, "models": {}}
    with path.open() as fh:
        return json.load(fh)


def _speedup(theirs: float | None, ours: float | None) -> float | None:
    if theirs is None or ours is None or ours <= 0:
        return None
    return theirs / ours


def enrich(record: dict, case: BenchmarkCase, lme4_local: dict, peer: dict) -> dict:
    """Add lme4 times, speedups, the objective check and threshold warnings to a row."""
    ref = reference_entry(case) or {}
    local = lme4_local.get("models", {}).get(case.name, {})
    peer_row = peer.get("models", {}).get(case.name, {})
    ours = record.get("fit_s")
    record["lme4_recorded_s"] = ref.get("seconds")
    record["speedup_vs_recorded"] = _speedup(ref.get("seconds"), ours)
    record["lme4_local_s"] = local.get("seconds")
    record["lme4_local_n_evals"] = local.get("n_evals")
    record["speedup_vs_local"] = _speedup(local.get("seconds"), ours)
    record["peer_mixedlm_s"] = peer_row.get("seconds")
    record["speedup_vs_peer"] = _speedup(peer_row.get("seconds"), ours)
    if "objective" in ref:
        record["objective_ref"], record["objective_ref_source"] = ref["objective"], \
            "visible.json"
    elif "objective" in local:
        record["objective_ref"], record["objective_ref_source"] = local["objective"], \
            "lme4_local.json"
    if record.get("objective") is not None and record.get("objective_ref") is not None:
        diff = record["objective"] - record["objective_ref"]
        record["objective_diff"] = diff
        record["objective_ok"] = bool(diff <= OBJECTIVE_TOL)
    # recomputed from scratch, so enriching a row again (--render-only) repeats nothing
    warnings = record["warnings"] = list(record.get("run_warnings", []))
    load, cpus = record.get("loadavg_1min"), os.cpu_count() or 1
    if record.get("status") == "ok" and load is not None and load > cpus * BUSY_LOAD_PER_CPU:
        warnings.append(f"machine busy (load average {load:.1f} on {cpus} CPUs when the row "
                        "started): timings inflated")
    if case.warn_seconds and ours is not None and ours > case.warn_seconds:
        warnings.append(f"fit took {ours:.1f} s, over the {case.warn_seconds:g} s budget")
    peak = record.get("child_maxrss_mb")
    if case.warn_memory_mb and peak is not None and peak > case.warn_memory_mb:
        warnings.append(f"peak memory {peak:.0f} MB, over the {case.warn_memory_mb:g} MB "
                        "budget")
    if record.get("objective_ok") is False:
        warnings.append(f"objective {record['objective']:.6f} is "
                        f"{record['objective_diff']:.2e} above lme4's")
    return record


def _t(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _x(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.1f}×"


def _mb(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _objective_cell(row: dict) -> str:
    if "objective_diff" not in row:
        return "–"
    mark = "ok" if row["objective_ok"] else "**off**"
    return f"{row['objective_diff']:+.1e} {mark}"


COLUMNS = (
    "model", "rows", "fit (median)", "reps", "cold", "evals (opt/all)", "per eval", "optimizer",
    "outside opt.", "peak RSS MB (+fit)", "traced MB", "lme4 visible.json", "speedup",
    "lme4 here", "speedup here", "objective − lme4",
)


def _row(r: dict) -> str:
    if r.get("status") != "ok":
        return f"| {r['name']} | {r.get('status')}: {r.get('reason', '')} |" + \
            " |" * (len(COLUMNS) - 2)
    evals = f"{r['n_evals']}/{r.get('n_evals_total') or '–'}"
    if r.get("n_grads"):
        evals += f" ({r['n_grads']} grad)"
    per_eval = _t(r.get("eval_s"))
    if r.get("grad_eval_s") is not None:
        per_eval += f" / {_t(r['grad_eval_s'])}"
    mem = f"{_mb(r.get('child_maxrss_mb'))} (+{_mb(r.get('peak_rss_increase_mb'))})"
    cells = [
        r["name"], f"{r['n_obs']:,}", _t(r["fit_s"]), str(r["repeats"]),
        _t(r.get("fit_s_cold")), evals,
        per_eval, _t(r["optimizer_s"]), _t(r["outside_optimizer_s"]), mem,
        _mb(r.get("traced_peak_mb"), 2), _t(r.get("lme4_recorded_s")),
        _x(r.get("speedup_vs_recorded")), _t(r.get("lme4_local_s")),
        _x(r.get("speedup_vs_local")), _objective_cell(r),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(doc: dict) -> str:
    """The Markdown page for ``results/latest.md``."""
    meta = doc["meta"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated {meta['timestamp']} by `{meta['command']}`.",
        "",
        f"- commit `{meta['git_commit']}`" + (
            f" with uncommitted changes in {', '.join(meta['git_dirty_src'])}"
            if meta.get("git_dirty_src") else ""),
        f"- machine: {meta['cpu']}, {meta['cpus']} CPUs, {meta['memory_gb']:.0f} GB; "
        f"load average {meta['loadavg_start']:.2f} at start, {meta['loadavg_end']:.2f} at "
        "end (other jobs share this machine: timings are noisy)",
        f"- BLAS threads: {meta.get('blas_threads', 'default')} (see benchmarks/README.md, "
        "*Threads and a shared machine*)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
    ]
    lme4_meta = doc.get("lme4_local_meta") or {}
    if lme4_meta:
        lines.append(
            f"- lme4 here (`results/lme4_local.json`): R {lme4_meta.get('R')}, lme4 "
            f"{lme4_meta.get('lme4')}, Matrix {lme4_meta.get('Matrix')}, BLAS "
            f"{Path(str(lme4_meta.get('blas', '?'))).name} (R's reference BLAS is "
            f"single-threaded); last run {lme4_meta.get('timestamp')}, load average "
            f"{lme4_meta.get('loadavg_start', float('nan')):.2f} at start")
    lines += [
        "",
        "Fit = formula string to result object (`mm.lmer`), median of `reps` runs after one "
        "untimed warm-up fit, each row in a fresh process; *cold*: that first fit (for rows "
        "without warm-up, the first timed one). *evals*: optimizer evaluations / all "
        "evaluations including the convergence check (how many of them also computed the "
        "gradient). *per eval*: one objective evaluation timed directly at the optimum "
        "(value / value and gradient). *peak RSS*: the process's high-water mark "
        "(interpreter, libraries and data included), in parentheses its growth during the "
        "fits. *traced*: tracemalloc peak of one fit (numpy buffers included). *speedup* = "
        "lme4 time / our time. *objective − lme4*: ours minus lme4's (visible.json or, for "
        "simulated data, lme4 run here); ok when below "
        f"{OBJECTIVE_TOL:g}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += [_row(r) for r in doc["models"]]
    warned = [(r["name"], w) for r in doc["models"] for w in r.get("warnings", [])]
    if warned:
        lines += ["", "## Warnings", ""] + [f"- **{n}**: {w}" for n, w in warned]
    peer = [r for r in doc["models"] if r.get("peer_mixedlm_s") is not None]
    if peer:
        pm = doc.get("peer_meta") or {}
        lines += ["", f"## Peer: mixedlm {pm.get('mixedlm', '')} (compiled core, separate "
                  "venv, same machine, same protocol)", "",
                  f"Threads: {pm.get('blas_threads', 'default')}; run "
                  f"{pm.get('timestamp')}, load average "
                  f"{pm.get('loadavg_start', float('nan')):.2f} at start.", "",
                  "| model | mixedlm | ours | speedup |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {_t(r['peer_mixedlm_s'])} | {_t(r['fit_s'])} | "
                  f"{_x(r['speedup_vs_peer'])} |" for r in peer]
    return "\n".join(lines) + "\n"

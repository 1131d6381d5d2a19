"""The corpus report of issue 10: ``python benchmarks/corpus.py RUN.json [--profile]``.

Reads a run of ``benchmarks/run.py --with-r --one-thread`` (mixedmodels and its R
counterpart -- lme4, or glmmTMB for glmmtmb rows -- timed row by row in the same run) and
writes ``benchmarks/results/corpus.md``: per model the speedup ``R seconds / our seconds``
with default BLAS threads (the headline) and with one thread, evaluations, time per
evaluation, time outside the optimizer and peak memory; the geometric mean of the speedups;
and every model under :data:`TARGET_SPEEDUP` with the reason its profile gives.

The reason is read off the measurements first (what share of the fit is outside the
optimizer, how many evaluations against R's); ``--profile`` also fits each slow model once
under :mod:`cProfile` and names the functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.engines import ENGINES, load_data
from benchmarks.report import _t
from benchmarks.table import load_table

__all__ = ["TARGET_SPEEDUP", "corpus_markdown", "slow_reason"]

RESULTS = Path(__file__).resolve().parent / "results"
#: Issue 10's bar: every model at least this much faster than its R counterpart.
TARGET_SPEEDUP = 2.0
#: A fit whose time outside the optimizer is above this share is "setup-dominated".
SETUP_SHARE = 0.5
#: Ours needing this many times R's evaluations makes the evaluation count the reason.
EVALS_RATIO = 1.5
#: Functions named per profiled model.
PROFILE_TOP = 3


def slow_reason(r: dict) -> str:
    """Where a row's time goes, from its measurements (see the module docstring)."""
    fit, opt = r.get("fit_s"), r.get("optimizer_s")
    ours_ev, r_ev = r.get("n_evals"), r.get("lme4_local_n_evals")
    parts = []
    if fit and opt is not None:
        outside = fit - opt
        share = outside / fit
        if share > SETUP_SHARE:
            parts.append(f"setup-dominated: {_t(outside)} of {_t(fit)} outside the "
                         "optimizer (formula, design, start values, Hessian)")
    if ours_ev and r_ev and ours_ev > EVALS_RATIO * r_ev:
        parts.append(f"{ours_ev} evaluations against R's {r_ev}")
    if not parts and opt is not None and ours_ev:
        parts.append(f"per-evaluation cost: {_t(opt / ours_ev)} per evaluation over "
                     f"{ours_ev} evaluations ({_t(r.get('eval_s'))} timed directly)")
    one = r.get("fit_s_1thread")
    if fit and one and one < fit / 1.3:
        parts.append(f"BLAS threads hurt under load: {_t(one)} with one thread")
    return "; ".join(parts) or "no measurements"


def _profile(case, table) -> str:
    """The functions with the most own time in one fit of the row."""
    data = load_data(table, case.data)
    fit = ENGINES[case.engine]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(case, data)                      # warm-up, as the timings had
        prof = cProfile.Profile()
        prof.enable()
        fit(case, data)
        prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:PROFILE_TOP]
    out = []
    for (file, _line, func), (_, _, tt, _, _) in rows:
        where = Path(file).name if file != "~" else "builtin"
        out.append(f"`{where}:{func}` {100 * tt / total:.0f}%")
    return ", ".join(out)


def _geo(values) -> float | None:
    vals = [v for v in values if v]
    return statistics.geometric_mean(vals) if vals else None


def corpus_markdown(doc: dict, profiles: dict | None = None) -> str:
    """The report of the module docstring for a run's JSON document."""
    profiles = profiles or {}
    meta = doc.get("meta", {})
    ok = [r for r in doc["models"] if r.get("status") == "ok" and r.get("speedup_vs_local")]
    lines = [
        "# Benchmark corpus (issue 10)",
        "",
        f"Run `{meta.get('command', '')}` at {meta.get('timestamp', '')}, commit "
        f"{meta.get('git_commit', '')}, on {meta.get('cpu', '')} ({meta.get('cpus', '')} "
        f"CPUs), load average {meta.get('loadavg_start', float('nan')):.1f} at the start and "
        f"{meta.get('loadavg_end', float('nan')):.1f} at the end (the machine is shared: "
        "absolute times are inflated, the ratios compare both tools under the same load, "
        "each R fit run right after ours). Wall-clock medians, formula to result, after one "
        "untimed warm-up fit. Speedup = R seconds / our seconds (R = lme4; glmmTMB for "
        "glmmtmb rows). Headline: default BLAS threads; the 1-thread column pins "
        "mixedmodels' BLAS to one thread. R and we both run a full garbage collection "
        "before each timed fit; it evicts the CPU caches, which costs a small fit about "
        "1 ms, so fits under 50 ms are also timed back to back without it (*back to "
        "back*: warm caches, as in a loop of refits). Large rows (10^6 observations) are "
        "not in the quick run.",
        "",
        "| model | engine | rows | ours | ours, 1 thread | ours, back to back | R | speedup "
        "| speedup, 1 thread | evals ours / R | per eval | outside optimizer | peak MB "
        "| objective − R |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["models"]:
        if r.get("status") != "ok":
            lines.append(f"| {r['name']} | {r.get('engine', '')} | | {r.get('status')} "
                         f"| | | | | | | | | | {r.get('reason', '')[:80]} |")
            continue
        one = r.get("fit_s_1thread")
        r_s = r.get("lme4_local_s")
        sp1 = r_s / one if (r_s and one) else None
        diff = r.get("objective_diff")
        lines.append(
            f"| {r['name']} | {r['engine']} | {r.get('n_obs', 0):,} | {_t(r['fit_s'])} | "
            f"{_t(one)} | {_t(r.get('fit_s_hot'))} | {_t(r_s)} | "
            f"{_x2(r.get('speedup_vs_local'))} | {_x2(sp1)} | "
            f"{r.get('n_evals')} / {r.get('lme4_local_n_evals', '–')} | "
            f"{_t(r.get('eval_s'))} | {_t(r.get('outside_optimizer_s'))} | "
            f"{r.get('child_maxrss_mb', 0):.0f} | "
            f"{'–' if diff is None else f'{diff:.1e}'} |")
    geo = _geo(r.get("speedup_vs_local") for r in ok)
    geo1 = _geo(r["lme4_local_s"] / r["fit_s_1thread"] for r in ok if r.get("fit_s_1thread"))
    slow = [r for r in ok if r["speedup_vs_local"] < TARGET_SPEEDUP]
    slowest = _x2(min(r["speedup_vs_local"] for r in ok)) if ok else "–"
    lines += [
        "",
        f"**Geometric mean speedup: {_x2(geo)}** over {len(ok)} models (default threads); "
        f"{_x2(geo1)} with one BLAS thread. {len(slow)} models under "
        f"{TARGET_SPEEDUP:g}×; slowest {slowest}.",
        "",
        f"## Models under {TARGET_SPEEDUP:g}× and why",
        "",
    ]
    for r in sorted(slow, key=lambda r: r["speedup_vs_local"]):
        prof = profiles.get(r["name"])
        lines.append(f"- **{r['name']}** ({_x2(r['speedup_vs_local'])}, `{r['formula']}`): "
                     f"{slow_reason(r)}" + (f"; profile: {prof}" if prof else ""))
    if not slow:
        lines.append("None.")
    lines += [
        "",
        "Objective − R: our criterion minus R's (negative = lower, i.e. at least as good). "
        "For glmer with nAGQ > 1 lme4 reports its deviance without the binomial constant, "
        "so that difference is a constant, not a worse fit (our value equals the "
        "-2 logLik of tests/reference/visible.json). For glmer's Gamma and "
        "inverse.gaussian rows our criterion is ~30 above lme4's -2 logLik: lme4 does not "
        "maximize the Laplace likelihood over the dispersion and its reported logLik is not "
        "that likelihood (tests/reference/visible.json's note on gammasim_log); our glmer "
        "criterion is the maximum-likelihood one and equals glmmTMB's (tmb_gammasim_log: "
        "2253.994185 both, -4e-8 against glmmTMB itself).",
        "",
    ]
    return "\n".join(lines)


def _x2(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="JSON written by run.py --with-r")
    ap.add_argument("--out", type=Path, default=RESULTS / "corpus.md")
    ap.add_argument("--profile", action="store_true",
                    help="profile each model under the target speedup once")
    args = ap.parse_args(argv)
    doc = json.loads(args.run.read_text())
    profiles = {}
    if args.profile:
        table = load_table()
        for r in doc["models"]:
            sp = r.get("speedup_vs_local")
            if r.get("status") == "ok" and sp and sp < TARGET_SPEEDUP:
                print(f"[corpus] profiling {r['name']}", flush=True)
                profiles[r["name"]] = _profile(table.get(r["name"]), table)
    args.out.write_text(corpus_markdown(doc, profiles))
    print(f"[corpus] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

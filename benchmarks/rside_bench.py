"""Timings of R-side models (``gls``, ``lmer(correlation=, variance=)``, ``glmm_pql``)
against nlme / MASS::glmmPQL in the same run:
``python benchmarks/rside_bench.py [--with-r] [--repeat N] [--rounds K] [--only a,b]``.

Models: every fixture of tests/fixtures/rside (tools/r/rside_fixtures.R) of kind ``gls``,
``lme`` and ``pql``. For each: our fit time, the optimizer's evaluations, the
log-likelihood next to nlme's; with ``--with-r`` nlme is timed on this machine in the same
run (benchmarks/r/time_nlme.R) the same way, right after our fit of the same model, and
the ratio reported.

Both sides get the data as R's script reads them (factor columns already factors --
pandas categoricals here -- converted once, outside the timing) and parse the call's text
at every fit. Times are CPU seconds (``time.process_time``; R's user + system time),
formula to result:
one untimed warm-up fit sizes a batch of fits lasting at least ``MIN_BATCH_S``, and the
fastest of ``--repeat`` batches, per fit, is reported (as ``timeit`` advises: the other
batches were slowed by something else). On a machine shared with other work the elapsed
time mostly measures the other processes; CPU time much less (it still pays for shared
caches and cores, hence the minimum). Without ``--with-r`` the
nlme times recorded when the fixtures were made are shown instead (another run: marked).

Writes benchmarks/results/rside.json and a Markdown table next to it.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import mixedmodels as mm  # noqa: E402
import rside_fixtures as rf  # noqa: E402
from benchmarks.comparison import comparison_parser, load_average, run_meta, selected, write_results  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "rside.json"
#: Shortest CPU time of one timed batch of fits, in seconds (R's proc.time has a
#: millisecond resolution; small fits take a few).
MIN_BATCH_S = 0.05
KINDS = ("gls", "lme", "pql")
#: Factor columns of each fixture data set, as tools/r/rside_fixtures.R reads them.
FACTORS = {"ovary": ["Mare"], "orthodont": ["Subject", "Sex"], "bodyweight": ["Rat", "Diet"],
           "serial": ["subj.id", "arm"], "spatial": ["site.id"], "field": [],
           "counts": ["unit"], "hetero": ["grp"], "bacteria": ["trt", "ID"]}


def timing_data(fx: dict):
    """The fixture's data as nlme gets it in benchmarks/r/time_nlme.R: read once, outside
    the timing, with the :data:`FACTORS` columns already factors (pandas categoricals);
    every fit then receives the same frame, as every nlme fit receives the same
    data.frame (neither modifies it)."""
    d = rf.data(fx["data"]).copy()
    for name in FACTORS[fx["data"]]:
        d[name] = d[name].astype("category")
    return d


def _fit(fx, d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eval(fx["py_call"], {"mm": mm, "d": d})


def time_ours(fx: dict, repeat: int) -> dict:
    d = timing_data(fx)
    t0 = time.process_time()
    m = _fit(fx, d)                                # warm-up, sizes the batch
    batch = max(1, math.ceil(MIN_BATCH_S / max(time.process_time() - t0, 1e-3)))
    cpu = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(batch):
            m = _fit(fx, d)
        cpu.append((time.process_time() - t0) / batch)
    opt = getattr(m, "opt", None) or getattr(getattr(m, "lmm", None), "opt", None)
    return {"id": fx["name"], "kind": fx["kind"], "nobs": m.nobs,
            "seconds": min(cpu), "batch": batch,
            "evaluations": getattr(opt, "n_evals", None),
            "loglik": None if fx["kind"] == "pql" else m.loglik,
            "loglik_nlme": fx.get("logLik"), "nlme_recorded_seconds": fx["nlme_ms"] / 1000}


def time_nlme(fixtures, repeat: int) -> dict:
    job = {"repeat_n": repeat, "min_batch_s": MIN_BATCH_S,
           "models": [{"name": f["name"], "data": f["data"], "factors": FACTORS[f["data"]],
                       "r_call": f["r_call"]} for f in fixtures]}
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps(job))
        subprocess.run(["Rscript", str(ROOT / "benchmarks" / "r" / "time_nlme.R"),
                        str(spec), str(out)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        res = json.loads(out.read_text())
    return {r["name"]: r for r in res["results"]}


_OTHER_RUN = "when the fixtures were made (another run, elapsed time)"


def _markdown(rows, meta) -> str:
    same = meta["with_r"]
    lines = [f"# R-side models: mixedmodels vs nlme / glmmPQL ({meta['date']})", "",
             f"Machine: {meta['machine']}; load average at start {meta['load']}, at end "
             f"{meta.get('load_end', '?')}; CPU seconds per fit (fastest of {meta['repeat']} "
             f"batches of >= {MIN_BATCH_S:g} s after a warm-up, in each of "
             f"{meta.get('rounds', 1)} rounds alternating with nlme); nlme timed "
             f"{'in the same run, the same way' if same else _OTHER_RUN}.",
             "", "| model | kind | n | ours (s) | nlme (s) | ratio | evaluations | "
             "logLik - nlme's |", "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for r in rows:
        ref = r.get("nlme_seconds") if same else r["nlme_recorded_seconds"]
        ratio = ref / r["seconds"] if ref else None
        if ratio:
            ratios.append(ratio)
        gap = "" if r["loglik"] is None else f"{r['loglik'] - r['loglik_nlme']:+.1e}"
        lines.append(f"| {r['id']} | {r['kind']} | {r['nobs']} | {r['seconds']:.4f} | "
                     f"{'' if ref is None else f'{ref:.4f}'} | "
                     f"{'' if ratio is None else f'{ratio:.1f}x'} | "
                     f"{r['evaluations'] if r['evaluations'] is not None else ''} | {gap} |")
    if ratios:
        gm = statistics.geometric_mean(ratios)
        lines += ["", f"Geometric mean speed-up: {gm:.1f}x; smallest {min(ratios):.1f}x; "
                  f"{sum(x >= 5 for x in ratios)} of {len(ratios)} models at least 5x."]
    return "\n".join(lines) + "\n"


def _faster_of(a: dict, b: dict) -> dict:
    """Row ``a`` with each side's time the smaller of ``a``'s and ``b``'s."""
    out = dict(a, seconds=min(a["seconds"], b["seconds"]))
    times = [t for t in (a.get("nlme_seconds"), b.get("nlme_seconds")) if t]
    if times:
        out["nlme_seconds"] = min(times)
    return out


def main(argv=None) -> int:
    ap = comparison_parser(__doc__, DEFAULT_OUT)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate ours / nlme this many times per model, keeping each "
                         "side's fastest (steadier ratios on a machine with noisy neighbours)")
    args = ap.parse_args(argv)
    models = {f["name"]: f for f in rf.models(*KINDS)}
    fixtures = [models[name] for name in selected(models, args.only)]
    meta = run_meta(args, rounds=args.rounds)
    rows = []
    for f in fixtures:
        row = None
        for _ in range(max(1, args.rounds)):
            # nlme right after ours, model by model (one R process each, its start-up not
            # timed): a load that drifts during the run then moves both sides of a ratio;
            # several rounds give each side more chances to miss a slow spell
            this = time_ours(f, args.repeat)
            if args.with_r:
                this["nlme_seconds"] = time_nlme([f], args.repeat).get(this["id"], {}) \
                    .get("seconds")
            row = this if row is None else _faster_of(row, this)
        rows.append(row)
    for r in rows:
        print(f"{r['id']:28s} {r['seconds']:.4f}s  nlme "
              f"{r.get('nlme_seconds') or r['nlme_recorded_seconds']:.4f}s", flush=True)
    meta["load_end"] = load_average()
    write_results(args.out, meta, rows, _markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

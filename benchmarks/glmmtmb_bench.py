"""Timings of glmmTMB's model class against glmmTMB in the same run:
``python benchmarks/glmmtmb_bench.py [--with-r] [--repeat N] [--only a,b]``.

Models: the glmmTMB models of visible.json (by their fixture twins in
tests/fixtures/glmmtmb) and a spread of the fixture corpus (families, zero-inflation,
hurdles, dispersion models, crossed terms). For each: our fit time (median of ``--repeat``
after one untimed warm-up, formula to result, wall and CPU), gradient evaluations, time per
gradient, peak Python memory of one fit (tracemalloc), the objective next to glmmTMB's; with
``--with-r`` glmmTMB is timed on this machine in the same run (benchmarks/r/time_glmmtmb.R,
median of the same number of fits after a warm-up) and the ratios of wall and CPU time
reported (CPU time: user + system, which other work on the machine distorts least). Default BLAS
threads, as a user runs it (the package picks one thread for small dense work itself).

Writes benchmarks/results/glmmtmb.json and a Markdown table next to it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import glmmtmb_fixtures as gf  # noqa: E402
import mixedmodels as mm  # noqa: E402
from benchmarks.comparison import comparison_parser, run_meta, selected, write_results  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "glmmtmb.json"
#: The visible glmmTMB models' twins first, then a spread of the corpus.
MODELS = ("sal_zinb2", "sal_zip", "owls_zinb1", "gammasim_log", "orth_disp_sex",
          "sal_hurdle_nb2", "zinb2_re_zi", "cbpp_betabinom", "beta_logit", "tweedie_log",
          "t_identity", "genpois_over", "trunc_nb1", "zigamma_log", "grouse_pois_3re",
          "verbagg_crossed", "sleep_slope_reml", "gauss_crossed")


def _fit(fx, data):
    kw = {"family": fx["family"], "link": fx["link"], "ziformula": fx["ziformula"],
          "dispformula": fx["dispformula"], "REML": bool(fx["REML"])}
    if fx.get("weights"):
        kw["weights"] = fx["weights"]
    if fx.get("offset"):
        kw["offset"] = fx["offset"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb(fx["formula"], data, **kw)


def time_ours(fid: str, repeat: int) -> dict:
    fx = gf.load(fid)
    data = gf.load_data(fx)
    m = _fit(fx, data)                     # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        m = _fit(fx, data)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    tracemalloc.start()
    _fit(fx, data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wall = statistics.median(walls)
    return {"id": fid, "family": fx["family"], "zi": fx["ziformula"],
            "disp": fx["dispformula"], "nobs": m.nobs, "seconds": wall,
            "cpu_seconds": statistics.median(cpus), "gradients": m.fit.n_gradients,
            "ms_per_gradient": 1000 * wall / max(m.fit.n_gradients, 1),
            "peak_mb": peak / 2**20, "objective": m.objective,
            "objective_glmmtmb": fx["objective"], "glmmtmb_recorded_seconds": fx["seconds"]}


def time_glmmtmb(ids, repeat: int) -> dict:
    spec = {"repeat_n": repeat, "warmup": True, "models": [{"fixture": i} for i in ids]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.json"
        out = Path(tmp) / "out.json"
        path.write_text(json.dumps(spec))
        subprocess.run(["Rscript", str(ROOT / "benchmarks" / "r" / "time_glmmtmb.R"),
                        str(path), str(out)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        res = json.loads(out.read_text())
    return {r["name"]: r for r in res["results"]}


def _markdown(rows, meta) -> str:
    lines = [f"# glmmTMB's class: mixedmodels vs glmmTMB ({meta['date']})", "",
             f"Machine: {meta['machine']}; load average at start {meta['load']}; "
             f"{meta['repeat']} timed fits after a warm-up; glmmTMB timed in the same run: "
             f"{meta['with_r']}.", "",
             "| model | family | zi | disp | n | ours (s) | glmmTMB (s) | ratio | "
             "ours CPU (s) | glmmTMB CPU (s) | CPU ratio | gradients | glmmTMB evals "
             "(fn/gr) | ms/gradient | peak MB | objective - glmmTMB's |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tmb, tmb_cpu = r.get("glmmtmb_seconds"), r.get("glmmtmb_cpu_seconds")
        ratio = f"{tmb / r['seconds']:.1f}x" if tmb else ""
        cpu_ratio = f"{tmb_cpu / r['cpu_seconds']:.1f}x" if tmb_cpu else ""
        evals = (f"{r['glmmtmb_evals']}/{r['glmmtmb_gradient_evals']}"
                 if r.get("glmmtmb_evals") is not None else "")
        lines.append(
            f"| {r['id']} | {r['family']} | {r['zi']} | {r['disp']} | {r['nobs']} | "
            f"{r['seconds']:.3f} | {'' if tmb is None else f'{tmb:.3f}'} | {ratio} | "
            f"{r['cpu_seconds']:.3f} | {'' if tmb_cpu is None else f'{tmb_cpu:.3f}'} | "
            f"{cpu_ratio} | {r['gradients']} | {evals} | {r['ms_per_gradient']:.2f} | "
            f"{r['peak_mb']:.1f} | {r['objective'] - r['objective_glmmtmb']:+.1e} |")
    for label, key, ours in (("wall", "glmmtmb_seconds", "seconds"),
                             ("CPU", "glmmtmb_cpu_seconds", "cpu_seconds")):
        ratios = [r[key] / r[ours] for r in rows if r.get(key)]
        if ratios:
            gm = statistics.geometric_mean(ratios)
            lines += ["", f"Geometric mean speed-up ({label} time): {gm:.1f}x; smallest "
                      f"{min(ratios):.1f}x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = comparison_parser(__doc__, DEFAULT_OUT).parse_args(argv)
    ids = selected(MODELS, args.only)
    meta = run_meta(args)
    rows = [time_ours(i, args.repeat) for i in ids]
    if args.with_r:
        tmb = time_glmmtmb(ids, args.repeat)
        for r in rows:
            t = tmb.get(r["id"], {})
            r["glmmtmb_seconds"] = t.get("seconds")
            r["glmmtmb_cpu_seconds"] = t.get("cpu_seconds")
            r["glmmtmb_evals"] = t.get("n_evals")
            r["glmmtmb_gradient_evals"] = t.get("n_gradient_evals")
            r["glmmtmb_objective_here"] = t.get("objective")
    for r in rows:
        print(f"{r['id']:20s} {r['seconds']:.3f}s  glmmTMB "
              f"{r.get('glmmtmb_seconds') or float('nan'):.3f}s  CPU {r['cpu_seconds']:.3f}s "
              f"glmmTMB {r.get('glmmtmb_cpu_seconds') or float('nan'):.3f}s  "
              f"grads {r['gradients']}", flush=True)
    write_results(args.out, meta, rows, _markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Timings of the GLMM fits (issue 3): ``python benchmarks/glmm_bench.py [--with-r]``.

For every GLMM of ``tests/reference/visible.json`` (lme4's ``glmer``/``glmer.nb`` and the
glmmTMB Gamma fit that ``glmer(family="Gamma")`` reproduces) this records the fit time
(median of ``--repeat`` fits after one untimed warm-up, formula to result), and from the last
fit, per stage (nAGQ = 0 start, theta scaling, Laplace / quadrature optimization, Hessian):
objective evaluations, PIRLS iterations and seconds; the objective next to the reference's.

Targets: every model faster than lme4's recorded time (``seconds`` in visible.json); VerbAgg
(``verbagg_crossed``) at least 4x faster than lme4, aiming at 8x. ``--with-r`` also times
lme4 / glmmTMB on this machine (median of ``--repeat`` after a warm-up), the fair comparison
when the machine differs from the one visible.json was recorded on.

BLAS runs single-threaded by default (``--blas-threads``), as R's reference BLAS does; the
2-core machine is shared, and multithreaded BLAS on small matrices only adds contention. Not
a test: the numbers depend on the machine and its load (recorded with the results).

Options: ``--repeat N`` (default 5), ``--with-r``, ``--only a,b``, ``--blas-threads N``,
``--out FILE`` (JSON; a Markdown table is written next to it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "visible.json"
DATA_DIR = ROOT / "src" / "mixedmodels" / "datasets" / "data"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "glmm.json"
MODELS = ("cbpp_laplace", "cbpp_agq25", "contraception", "grouseticks_poisson",
          "verbagg_crossed", "grouseticks_nb", "gammasim_tmb")

R_TEMPLATE = r"""
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)})
lev <- fromJSON("%(levels)s", simplifyVector = TRUE)
load <- function(name) {
  l <- lev[[name]]
  cc <- setNames(rep("character", length(l)), names(l))
  df <- read.csv(file.path("%(data)s", paste0(name, ".csv")), colClasses = cc)
  for (col in names(l)) df[[col]] <- factor(df[[col]], levels = l[[col]])
  df
}
med <- function(f) { f(); median(replicate(%(repeat)d, system.time(f())[["elapsed"]])) }
cbpp <- load("cbpp"); contra <- load("Contraception"); grouse <- load("grouseticks")
verbagg <- load("VerbAgg"); gammasim <- load("gammasim")
cf <- cbind(incidence, size - incidence) ~ period + (1 | herd)
out <- list(
  cbpp_laplace = med(function() glmer(cf, cbpp, binomial)),
  cbpp_agq25 = med(function() glmer(cf, cbpp, binomial, nAGQ = 25)),
  contraception = med(function() glmer(use ~ age + I(age^2) + urban + livch + (1 | district),
                                       contra, binomial)),
  grouseticks_poisson = med(function() glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) +
                                             (1 | INDEX) + (1 | LOCATION), grouse, poisson)),
  verbagg_crossed = med(function() glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) +
                                         (1 | item), verbagg, binomial)),
  grouseticks_nb = med(function() glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), grouse)),
  gammasim_tmb = med(function() glmmTMB(y ~ x + (1 | g), gammasim,
                                        family = Gamma(link = "log")))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def _parse(ref: dict):
    """(formula, family, link, nAGQ, engine) from visible.json's ``python`` field."""
    parts = [p.strip() for p in ref["python"].split(";")]
    opts = dict(p.split("=", 1) for p in parts[1:])
    fam = opts.get("family", "binomial").split(" ")[0]
    link = None
    if "(link=" in fam:
        fam, link = fam.split("(link=")
        link = link.rstrip(")")
    return parts[0], fam, link, int(opts.get("nAGQ", 1)), ref["engine"]


def _fit(mm, ref, data):
    formula, fam, link, nagq, engine = _parse(ref)
    if engine == "glmer.nb":
        return mm.glmer_nb(formula, data, nAGQ=nagq)
    return mm.glmer(formula, data, family=fam, link=link, nAGQ=nagq)


def time_python(keys, repeat: int) -> dict:
    import mixedmodels as mm

    refs = json.loads(REFERENCE.read_text())
    out = {}
    for key in keys:
        ref = refs[key]
        data = mm.datasets.load(ref["data"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            _fit(mm, ref, data)
            cold = time.perf_counter() - t0
            times, cpu = [], []
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                m = _fit(mm, ref, data)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        out[key] = {
            "fit_s": statistics.median(times), "fit_s_all": times, "fit_s_cold": cold,
            "cpu_s": statistics.median(cpu),
            "objective": m.objective, "reference_objective": ref["objective"],
            "lme4_recorded_s": ref["seconds"],
            "evaluations": m.objective_function.n_evals,
            "pirls_iterations": m.objective_function.pirls.n_iter_total,
            "stages": list(m.fit_log), "nobs": m.nobs,
        }
        out[key]["speedup_recorded"] = ref["seconds"] / out[key]["fit_s"]
        print(f"{key:22s} {out[key]['fit_s']:.3f} s (cpu {out[key]['cpu_s']:.3f} s; lme4 "
              f"recorded {ref['seconds']:.3f} s, x{out[key]['speedup_recorded']:.1f})",
              flush=True)
    return out


def time_r(repeat: int) -> dict:
    script = R_TEMPLATE % {"levels": DATA_DIR / "factor_levels.json", "data": DATA_DIR,
                           "repeat": repeat}
    res = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(record: dict) -> str:
    rows = ["| model | n | fit (s) | lme4 recorded (s) | speedup | lme4 here (s) | speedup "
            "here | evaluations (stage 0 / scaling / Laplace / Hessian) | PIRLS iterations | "
            "objective - reference |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in record["models"].items():
        stages = " / ".join(str(s["evaluations"]) for s in r["stages"])
        here = r.get("lme4_here_s")
        here_s = "" if here is None else f"{here:.3f}"
        here_x = "" if here is None else f"{here / r['fit_s']:.1f}x"
        rows.append(
            f"| {key} | {r['nobs']} | {r['fit_s']:.3f} | {r['lme4_recorded_s']:.3f} | "
            f"{r['speedup_recorded']:.1f}x | {here_s} | {here_x} | {stages} | "
            f"{r['pirls_iterations']} | {r['objective'] - r['reference_objective']:+.2e} |")
    env = record["environment"]
    head = (f"GLMM fits, median of {record['repeat']} after a warm-up; {env['machine']}, "
            f"BLAS threads {env['blas_threads']}, load average {env['load_before']} before "
            f"the run. Objective differences are -2 log-likelihood (negative = higher "
            "likelihood than the reference).\n\n")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--with-r", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if "numpy" in sys.modules:
        print("warning: numpy already imported, --blas-threads has no effect", file=sys.stderr)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads)
    keys = [k for k in MODELS if not args.only or k in args.only.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    record = {"repeat": args.repeat, "models": time_python(keys, args.repeat),
              "environment": {"machine": f"{platform.machine()} {os.cpu_count()} cores",
                              "python": platform.python_version(),
                              "blas_threads": args.blas_threads, "load_before": load}}
    if args.with_r:
        r_times = time_r(args.repeat)
        for key, rec in record["models"].items():
            rec["lme4_here_s"] = r_times.get(key)
            print(f"{key:22s} lme4 here {rec['lme4_here_s']:.3f} s, "
                  f"x{rec['lme4_here_s'] / rec['fit_s']:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    args.out.with_suffix(".md").write_text(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

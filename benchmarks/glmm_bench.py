"""Timings of the GLMM fits (issue 3): ``python benchmarks/glmm_bench.py [--with-r]``.

For every GLMM of ``tests/reference/visible.json`` (lme4's ``glmer``/``glmer.nb`` and the
glmmTMB Gamma fit that ``glmer(family="Gamma")`` reproduces) this records the fit time
(median of ``--repeat`` fits after one untimed warm-up, formula to result), and from the last
fit, per stage (nAGQ = 0 start, theta scaling, Laplace / quadrature optimization, Hessian):
objective evaluations, PIRLS iterations and seconds; the objective next to the reference's.

Targets: every model faster than lme4's recorded time (``seconds`` in visible.json); VerbAgg
(``verbagg_crossed``) at least 4x faster than lme4, aiming at 8x. ``--with-r`` also times
lme4 / glmmTMB on this machine (median of ``--repeat`` after a warm-up, R's user CPU
seconds), the fair comparison when the machine differs from the one visible.json was
recorded on; the speedup compares CPU seconds of both.

BLAS runs single-threaded by default (``--blas-threads``), as R's reference BLAS does; the
2-core machine is shared, and multithreaded BLAS on small matrices only adds contention. Not
a test: the numbers depend on the machine and its load (recorded with the results).

Beyond visible.json, the issue-10 models that were under 2x lme4 are simulated here (the
same seeded data written to CSV for R): a 625-row Poisson GLMM with two crossed 25-level
factors, a probit binomial GLMM, and nAGQ = 0 on VerbAgg's crossed binomial model.

Every model is also fitted with ``optimizer="bobyqa"`` (the derivative-free path: the fit
before the exact gradient) in the same run, so the table shows evaluations and time before
and after; times are CPU seconds of this process (``time.process_time``) next to wall
seconds, since the 2-core machine is shared.

Options: ``--repeat N`` (default 5), ``--with-r``, ``--only a,b``, ``--blas-threads N``,
``--out FILE`` (JSON; a Markdown table is written next to it), ``--no-before`` (skip the
BOBYQA fits).
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
          "verbagg_crossed", "grouseticks_nb", "gammasim_tmb", "poisson_crossed_625",
          "probit_binomial", "verbagg_nagq0")
#: Simulated or derived models (issue 10): key -> (formula, data, family, link, nAGQ).
EXTRA = {
    "poisson_crossed_625": ("y ~ x + (1 | a) + (1 | b)", "sim_poisson625", "poisson", None,
                            1),
    "probit_binomial": ("y ~ x + (1 | g)", "sim_probit", "binomial", "probit", 1),
    "verbagg_nagq0": ("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
                      "VerbAgg", "binomial", None, 0),
}

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
med <- function(f) { f(); median(replicate(%(repeat)d, system.time(f())[["user.self"]])) }
cbpp <- load("cbpp"); contra <- load("Contraception"); grouse <- load("grouseticks")
verbagg <- load("VerbAgg"); gammasim <- load("gammasim")
pois625 <- read.csv("%(sim)s/sim_poisson625.csv"); pois625$a <- factor(pois625$a)
pois625$b <- factor(pois625$b)
probit <- read.csv("%(sim)s/sim_probit.csv"); probit$g <- factor(probit$g)
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
                                        family = Gamma(link = "log"))),
  poisson_crossed_625 = med(function() glmer(y ~ x + (1 | a) + (1 | b), pois625, poisson)),
  probit_binomial = med(function() glmer(y ~ x + (1 | g), probit,
                                         binomial(link = "probit"))),
  verbagg_nagq0 = med(function() glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) +
                                       (1 | item), verbagg, binomial, nAGQ = 0))
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


def simulated(name: str):
    """The seeded data sets of :data:`EXTRA` (pandas)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(20261201)
    if name == "sim_poisson625":
        a, b = np.meshgrid(np.arange(25), np.arange(25), indexing="ij")
        a, b = a.ravel(), b.ravel()
        x = rng.standard_normal(a.size)
        eta = 0.5 + 0.3 * x + 0.4 * rng.standard_normal(25)[a] \
            + 0.3 * rng.standard_normal(25)[b]
        return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})
    if name == "sim_probit":
        g = np.repeat(np.arange(60), 20)
        x = rng.standard_normal(g.size)
        eta = -0.2 + 0.6 * x + 0.7 * rng.standard_normal(60)[g]
        from scipy.special import ndtr

        return pd.DataFrame({"y": rng.binomial(1, ndtr(eta)), "x": x, "g": g})
    raise KeyError(name)


def _reference_of(key: str, refs: dict) -> dict:
    """visible.json's entry, or an entry for the models of :data:`EXTRA` (no recorded
    objective or time: the comparison is lme4 in the same run)."""
    if key in refs:
        return refs[key]
    formula, data, fam, link, nagq = EXTRA[key]
    family = fam if link is None else f"{fam}(link={link})"
    return {"python": f"{formula}; family={family}; nAGQ={nagq}", "engine": "glmer",
            "data": data, "objective": None, "seconds": None}


def _load(mm, name: str):
    if name.startswith("sim_"):
        df = simulated(name)
        for col in ("a", "b", "g"):
            if col in df:
                df[col] = df[col].astype(str).astype("category")
        return df
    return mm.datasets.load(name)


def _fit(mm, ref, data, optimizer="auto"):
    formula, fam, link, nagq, engine = _parse(ref)
    if engine == "glmer.nb":
        return mm.glmer_nb(formula, data, nAGQ=nagq, optimizer=optimizer)
    return mm.glmer(formula, data, family=fam, link=link, nAGQ=nagq, optimizer=optimizer)


def _time_fits(mm, ref, data, repeat: int, optimizer: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        _fit(mm, ref, data, optimizer)
        cold = time.perf_counter() - t0
        times, cpu = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            m = _fit(mm, ref, data, optimizer)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"fit_s": statistics.median(times), "fit_s_all": times, "fit_s_cold": cold,
            "cpu_s": statistics.median(cpu), "objective": m.objective,
            "optimizer": m.opt.optimizer,
            "evaluations": m.objective_function.n_evals,
            "pirls_iterations": m.objective_function.pirls.n_iter_total,
            "stages": list(m.fit_log), "nobs": m.nobs}


def time_python(keys, repeat: int, before: bool = True) -> dict:
    import mixedmodels as mm

    refs = json.loads(REFERENCE.read_text())
    out = {}
    for key in keys:
        ref = _reference_of(key, refs)
        data = _load(mm, ref["data"])
        rec = _time_fits(mm, ref, data, repeat, "auto")
        rec.update(reference_objective=ref["objective"], lme4_recorded_s=ref["seconds"])
        if before:
            rec["before"] = _time_fits(mm, ref, data, repeat, "bobyqa")
        out[key] = rec
        rec["speedup_recorded"] = None if ref["seconds"] is None \
            else ref["seconds"] / rec["fit_s"]
        was = f"; BOBYQA cpu {rec['before']['cpu_s']:.3f} s" if before else ""
        print(f"{key:22s} {rec['fit_s']:.3f} s (cpu {rec['cpu_s']:.3f} s{was})", flush=True)
    return out


def time_r(repeat: int) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as sim_dir:
        for name in ("sim_poisson625", "sim_probit"):
            simulated(name).to_csv(Path(sim_dir) / f"{name}.csv", index=False)
        script = R_TEMPLATE % {"levels": DATA_DIR / "factor_levels.json", "data": DATA_DIR,
                               "repeat": repeat, "sim": sim_dir}
        res = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                             check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _stages(r: dict) -> str:
    return " / ".join(str(s["evaluations"]) for s in r["stages"])


def markdown(record: dict) -> str:
    rows = ["| model | n | fit (s) | cpu (s) | BOBYQA before: cpu (s) | lme4 here: cpu (s) | "
            "speedup (cpu) | evaluations (stage 0 / scaling / Laplace / Hessian) | before | "
            "objective - BOBYQA | objective - reference |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in record["models"].items():
        here = r.get("lme4_here_s")
        before = r.get("before")
        here_s = "" if here is None else f"{here:.3f}"
        here_x = "" if here is None else f"{here / r['cpu_s']:.1f}x"
        ref = r.get("reference_objective")
        ref_s = "" if ref is None else f"{r['objective'] - ref:+.2e}"
        b_cpu = "" if before is None else f"{before['cpu_s']:.3f}"
        b_st = "" if before is None else _stages(before)
        b_obj = "" if before is None else f"{r['objective'] - before['objective']:+.2e}"
        rows.append(
            f"| {key} | {r['nobs']} | {r['fit_s']:.3f} | {r['cpu_s']:.3f} | {b_cpu} | "
            f"{here_s} | {here_x} | {_stages(r)} | {b_st} | {b_obj} | {ref_s} |")
    env = record["environment"]
    head = (f"GLMM fits, median of {record['repeat']} after a warm-up; {env['machine']}, "
            f"BLAS threads {env['blas_threads']}, load average {env['load_before']} before "
            "the run. fit: wall seconds; cpu: this process's CPU seconds; lme4 here: R's "
            "user CPU seconds in the same run (the machine is shared: CPU seconds are the "
            "comparison). 'BOBYQA before' is optimizer='bobyqa', the "
            "derivative-free fit the default used before the exact gradient. Objective "
            "differences are -2 log-likelihood (negative = higher likelihood than the "
            "reference).\n\n")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--with-r", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-before", action="store_true")
    args = ap.parse_args(argv)
    if "numpy" in sys.modules:
        print("warning: numpy already imported, --blas-threads has no effect", file=sys.stderr)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads)
    keys = [k for k in MODELS if not args.only or k in args.only.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    record = {"repeat": args.repeat,
              "models": time_python(keys, args.repeat, before=not args.no_before),
              "environment": {"machine": f"{platform.machine()} {os.cpu_count()} cores",
                              "python": platform.python_version(),
                              "blas_threads": args.blas_threads, "load_before": load}}
    if args.with_r:
        r_times = time_r(args.repeat)
        for key, rec in record["models"].items():
            rec["lme4_here_s"] = r_times.get(key)
            if rec["lme4_here_s"] is not None:
                print(f"{key:22s} lme4 here {rec['lme4_here_s']:.3f} s cpu, "
                      f"x{rec['lme4_here_s'] / rec['cpu_s']:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    args.out.with_suffix(".md").write_text(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

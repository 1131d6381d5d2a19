"""Timings of the inference tools (issue 4): ``python benchmarks/inference_bench.py``.

Targets on the 2-core reference machine:

* profile of the sleepstudy model ``Reaction ~ Days + (Days | Subject)``: under 2 s;
* parametric-bootstrap comparison (``pb_test``) of ``m2`` vs ``m1`` with 1000 replicates on
  2 processes: under 20 s (the seed quotes 41 s for pbkrtest's PBmodcomp).

Also timed: profile confidence intervals, Satterthwaite and Kenward-Roger coefficient tables,
a 1000-replicate bootstrap of all parameters, and the exact RLRT. ``--with-r`` times the same
tasks in R (lme4 profile, PBmodcomp, lmerTest, pbkrtest) for the ratio. Each timing is the
median of ``--repeat`` runs (the PB test and bootstrap run once: they are long). Not a test:
the numbers depend on the machine and its load.

Options: ``--repeat N`` (default 3), ``--nsim N`` (default 1000), ``--jobs N`` (default 2),
``--with-r``, ``--out FILE`` (JSON).
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

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest)})
tm <- function(expr) { t0 <- proc.time()[["elapsed"]]; force(expr); proc.time()[["elapsed"]] - t0 }
fm <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
m2 <- lme4::lmer(Reaction ~ Days + (1|Subject) + (0+Days|Subject), sleepstudy, REML = FALSE)
m1 <- lme4::lmer(Reaction ~ Days + (1|Subject), sleepstudy, REML = FALSE)
lt <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
out <- c(
  profile = median(replicate(%(repeat)d, tm(profile(fm)))),
  confint_profile = median(replicate(%(repeat)d, tm(suppressMessages(confint(fm))))),
  satterthwaite = median(replicate(%(repeat)d, tm(summary(lmerTest::lmer(
      Reaction ~ Days + (Days | Subject), sleepstudy)))))
    - median(replicate(%(repeat)d, tm(lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)))),
  kenward_roger = median(replicate(%(repeat)d, tm(summary(lt, ddf = "Kenward-Roger")))),
  pb_test = tm(PBmodcomp(m2, m1, nsim = %(nsim)d, seed = 1))
)
cat(jsonlite::toJSON(as.list(out), auto_unbox = TRUE, digits = NA))
"""


def _median_time(fun, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fun()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def python_timings(repeat: int, nsim: int, jobs: int) -> dict:
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep, REML=False)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep, REML=False)
    r2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep)
    r1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    out = {
        "profile": _median_time(lambda: m.profile(), repeat),
        "confint_profile": _median_time(lambda: m.confint(), repeat),
        # fresh fits so the cached Hessian / KR matrices are recomputed every time
        "satterthwaite": _median_time(
            lambda: m.refit(m.design.y).coef_table("satterthwaite"), repeat)
        - _median_time(lambda: m.refit(m.design.y), repeat),
        "kenward_roger": _median_time(
            lambda: m.refit(m.design.y).coef_table("kenward-roger"), repeat)
        - _median_time(lambda: m.refit(m.design.y), repeat),
        "rlrt": _median_time(lambda: mm.rlrt(r2, r1, seed=1), repeat),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        t0 = time.perf_counter()
        pb = mm.pb_test(m2, m1, nsim=nsim, seed=1, n_jobs=jobs)
        out["pb_test"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        boot = m.bootstrap(nsim=nsim, seed=1, n_jobs=jobs)
        out["bootstrap_all_parameters"] = time.perf_counter() - t0
    out["pb_test_p_value"] = pb.p_value
    out["pb_test_failed"] = len(pb.failures)
    out["bootstrap_failed"] = boot.n_failed
    return out


def r_timings(repeat: int, nsim: int) -> dict | None:
    script = R_SCRIPT % {"repeat": repeat, "nsim": nsim}
    try:
        res = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                             check=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"R timings unavailable: {exc}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


TARGETS = {"profile": 2.0, "pb_test": 20.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--with-r", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    py = python_timings(args.repeat, args.nsim, args.jobs)
    r = r_timings(args.repeat, args.nsim) if args.with_r else None
    print(f"{'task':28s} {'python s':>10s} {'R s':>10s} {'R/python':>9s} {'target':>8s}")
    for key, val in py.items():
        if not key.endswith(("_value", "_failed")):
            rv = r.get(key) if r else None
            ratio = f"{rv / val:9.1f}" if rv else " " * 9
            rs = f"{rv:10.3f}" if rv else " " * 10
            target = f"< {TARGETS[key]:g} s" if key in TARGETS else ""
            print(f"{key:28s} {val:10.3f} {rs} {ratio} {target:>8s}")
    print(f"pb_test p-value {py['pb_test_p_value']:.4g}; failed replicates: pb "
          f"{py['pb_test_failed']}, bootstrap {py['bootstrap_failed']}")
    if args.out:
        record = {"python": py, "r": r, "nsim": args.nsim, "jobs": args.jobs,
                  "repeat": args.repeat, "cpus": os.cpu_count(), "platform": platform.platform(),
                  "mixedmodels": mm.__version__, "targets": TARGETS}
        args.out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

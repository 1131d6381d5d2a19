"""Compare blmer / bglmer with blme on tools/r/sweep/bayessweep.R's grid (lane bayessweep).

    Rscript tools/r/sweep/bayessweep.R --out=/tmp/bayessweep
    python  tools/r/sweep/bayessweep.py --out /tmp/bayessweep [--only id1,id2] [--bad]
    python  tools/r/sweep/bayessweep.py --out /tmp/bayessweep --dump     # our GLMM optima
    Rscript tools/r/sweep/bayessweep.R --out=/tmp/bayessweep --eval      # blme's devfun there

Per case: ``dev@R`` = our penalized objective at blme's parameters minus blme's deviance
function there (the same function: should be ~1e-9), ``dobj`` = our fitted objective minus
blme's best (negative = ours lower), then the worst relative differences of the fixed effects
(relative to max(|beta|, SE)), SEs, theta (absolute) and sigma. ``!!`` marks a difference
above its tolerance. ``--bad`` runs the bad-prior inputs (no R needed): ``OK`` when the error
is one of the package's own, ``DEEP`` when it is a numpy/scipy error, ``NO ERROR`` otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

import mixedmodels as mm
from mixedmodels._errors import MixedModelsError
from mixedmodels.bayes import priors as P  # noqa: N812 - blme's prior calls, short

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from blme_cases import fit, objective_at, vec

#: the objective at blme's parameters: the same function, relative
DEVFUN_RTOL = 1e-7
#: fitted objective: absolute (deviance units)
OBJ_ATOL = 1e-5
#: fixed effects, relative to max(|beta|, SE)
BETA_RTOL = 1e-5
#: standard errors, relative
SE_RTOL = 1e-4
#: theta, absolute (theta is O(1))
THETA_ATOL = 1e-4
#: sigma, relative
SIGMA_RTOL = 1e-4


def compare(case) -> str:
    flags = []

    def mark(label, value, tol):
        bad = value > tol
        if bad:
            flags.append(label)
        return f"{label}={value:.1e}{'!!' if bad else ''}"

    parts = []
    try:
        dev = max(abs(a - b) / max(abs(b), 1.0) for a, b in objective_at(case))
        parts.append(mark("dev@R", dev, DEVFUN_RTOL))
    except Exception as e:  # a sweep reports every failure
        parts.append(f"dev@R EXC {type(e).__name__}: {e}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit(case)
    dobj = m.objective - case["objective"]
    parts.append(f"dobj={dobj:+.2e}{'!!' if abs(dobj) > OBJ_ATOL else ''}")
    parts.append(mark("theta", float(np.max(np.abs(m.theta - vec(case["theta"])))), THETA_ATOL))
    if not case.get("refit_moved"):
        beta, se = vec(case["beta"]), vec(case["se"])
        parts.append(mark("beta", float(np.max(np.abs(m.beta - beta)
                                               / np.maximum(np.abs(beta), se))), BETA_RTOL))
        parts.append(mark("se", float(np.max(np.abs(m.se.to_numpy() - se) / se)), SE_RTOL))
        if case.get("sigma") is not None:
            parts.append(mark("sigma", abs(m.sigma / case["sigma"] - 1), SIGMA_RTOL))
    else:
        parts.append("(blme refit drifted: objective/theta only)")
    return "  ".join(parts)


def bad_inputs() -> None:
    """Bad prior specifications: each should raise one of the package's own errors."""
    sleep = mm.datasets.load("sleepstudy")
    cbpp = mm.datasets.load("cbpp")
    f2 = "Reaction ~ Days + (Days | Subject)"
    fb = "cbind(incidence, size - incidence) ~ period + (1|herd)"
    cases = {
        "gamma negative rate": lambda: mm.blmer("Reaction ~ Days + (1|Subject)", sleep,
                                               cov_prior=P.gamma(shape=2, rate=-1)),
        "gamma negative shape": lambda: mm.blmer("Reaction ~ Days + (1|Subject)", sleep,
                                                cov_prior=P.gamma(shape=-2)),
        "invgamma negative scale": lambda: mm.blmer("Reaction ~ Days + (1|Subject)", sleep,
                                                   cov_prior=P.invgamma(scale=-3)),
        "wishart negative scale": lambda: mm.blmer(f2, sleep, cov_prior=P.wishart(scale=-2)),
        "wishart 3x3 scale on 2x2 term": lambda: mm.blmer(f2, sleep,
                                                          cov_prior=P.wishart(scale=np.eye(3))),
        "wishart non-symmetric scale": lambda: mm.blmer(
            f2, sleep, cov_prior=P.wishart(scale=np.array([[1.0, 0.5], [0.0, 1.0]]))),
        "wishart indefinite scale": lambda: mm.blmer(
            f2, sleep, cov_prior=P.wishart(scale=np.array([[1.0, 2.0], [2.0, 1.0]]))),
        "invwishart df too small": lambda: mm.blmer(f2, sleep, cov_prior=P.invwishart(df=0.5)),
        "invwishart 1x3 scale": lambda: mm.blmer(f2, sleep,
                                                 cov_prior=P.invwishart(scale=[1.0, 2.0, 3.0])),
        "wishart df negative": lambda: mm.blmer(f2, sleep, cov_prior=P.wishart(df=-1)),
        "gamma on a 2x2 term": lambda: mm.blmer(f2, sleep, cov_prior=P.gamma()),
        "prior on unknown term": lambda: mm.blmer(f2, sleep, cov_prior={"Nope": P.wishart()}),
        "prior dict with a non-prior": lambda: mm.blmer(f2, sleep, cov_prior={"Subject": 3}),
        "cov_prior not a prior": lambda: mm.blmer(f2, sleep, cov_prior="wishart"),
        "normal negative sd": lambda: mm.blmer(f2, sleep, fixef_prior=P.normal(sd=-1)),
        "normal sd wrong length": lambda: mm.blmer(f2, sleep, fixef_prior=P.normal(sd=[1, 2, 3])),
        "normal cov wrong dim": lambda: mm.blmer(f2, sleep, fixef_prior=P.normal(cov=np.eye(3))),
        "normal cov indefinite": lambda: mm.blmer(
            f2, sleep, fixef_prior=P.normal(cov=np.array([[1.0, 3.0], [3.0, 1.0]]))),
        "t negative df": lambda: mm.blmer(f2, sleep, fixef_prior=P.t(df=-2)),
        "t negative scale": lambda: mm.blmer(f2, sleep, fixef_prior=P.t(scale=-1)),
        "t mean wrong length": lambda: mm.blmer(f2, sleep, fixef_prior=P.t(mean=[1, 2, 3])),
        "point negative": lambda: mm.blmer(f2, sleep, resid_prior=P.point(-1)),
        "resid wishart": lambda: mm.blmer(f2, sleep, resid_prior=P.wishart()),
        "fixef gamma": lambda: mm.blmer(f2, sleep, fixef_prior=P.gamma()),
        "bglmer resid_prior kw": lambda: mm.bglmer(fb, cbpp, family="binomial",
                                                   resid_prior=P.point(1.0)),
        "bglmer common_scale wishart": lambda: mm.bglmer(
            fb, cbpp, family="binomial", cov_prior=P.gamma(common_scale=True)),
        "bglmer normal sd wrong length": lambda: mm.bglmer(fb, cbpp, family="binomial",
                                                           fixef_prior=P.normal(sd=[1, 2])),
        "gamma nan rate": lambda: mm.blmer("Reaction ~ Days + (1|Subject)", sleep,
                                          cov_prior=P.gamma(rate=float("nan"))),
    }
    for label, call in cases.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        except MixedModelsError as e:
            print(f"OK        {label}: {type(e).__name__}: {e}")
        except Exception as e:  # a sweep reports every failure
            tb = traceback.extract_tb(e.__traceback__)
            where = tb[-1].filename if tb else "?"
            ours = "/mixedmodels/" in where
            tag = "FOREIGN" if ours else "DEEP"
            print(f"{tag:9s} {label}: {type(e).__name__}: {e} [{Path(where).name}]")
        else:
            print(f"NO ERROR  {label}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/bayessweep")
    ap.add_argument("--only", default="")
    ap.add_argument("--bad", action="store_true")
    ap.add_argument("--dump", action="store_true",
                    help="write <out>/ours.json: our GLMM optimum, for bayessweep.R --eval")
    a = ap.parse_args()
    if a.bad:
        bad_inputs()
        return
    ref = json.loads((Path(a.out) / "ref.json").read_text())
    only = set(filter(None, a.only.split(",")))
    if a.dump:
        ours = {}
        for case in ref["cases"]:
            if case["py"]["fun"] == "bglmer" and (not only or case["name"] in only):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = fit(case)
                ours[case["name"]] = {"par": [*map(float, m.theta), *map(float, m.beta)],
                                      "objective": float(m.objective)}
        (Path(a.out) / "ours.json").write_text(json.dumps(ours, indent=1))
        return
    for case in ref["cases"]:
        if only and case["name"] not in only:
            continue
        try:
            line = compare(case)
        except Exception as e:  # a sweep reports every failure
            line = f"EXC {type(e).__name__}: {e}"
        print(f"{case['name']:34s} {line}", flush=True)


if __name__ == "__main__":
    main()

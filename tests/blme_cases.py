"""Fits of blme fixture cases (tests/fixtures/blme, tests/fixtures/sweep/bayessweep_*):
the JSON spelling of a prior turned into :mod:`mixedmodels.bayes.priors` calls, the case's
data and our ``blmer`` / ``bglmer`` fit. Shared by tests/test_bayes_blme.py,
tests/test_sweep_bayessweep.py and tools/r/sweep/bayessweep.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.bayes import priors as P  # noqa: N812 - blme's prior calls, short
from mixedmodels.bayes.glmm_objective import PenalizedGLMMObjective
from mixedmodels.bayes.lmm_objective import PenalizedLMMObjective
from mixedmodels.bayes.model_priors import resolve_priors
from mixedmodels.design import materialize
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.formula import parse_formula

__all__ = ["data_of", "fit", "objective_at", "prior", "vec"]


def prior(spec):
    """A prior from the fixture spelling: None, "default", ``{"by_group": {...}}`` or
    ``{"dist": name, "args": {...}}`` (nested lists in ``scale`` / ``cov`` as matrices)."""
    if spec is None:
        return None
    if spec == "default":
        return P.DEFAULT
    if "by_group" in spec:
        return {g: prior(s) for g, s in spec["by_group"].items()}
    args = dict(spec.get("args") or {})
    for key in ("scale", "cov"):
        v = args.get(key)
        if isinstance(v, list) and v and isinstance(v[0], list):
            args[key] = np.array(v, float)
    return getattr(P, spec["dist"])(**args)


def data_of(case) -> pd.DataFrame:
    """The case's data: its simulated records, else the bundled data set it names."""
    if "data_records" in case:
        return pd.DataFrame(case["data_records"])
    return mm.datasets.load(case["py"]["data"])


def vec(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def fit(case):
    """Our blmer / bglmer fit of the case."""
    py = case["py"]
    kw = {"cov_prior": prior(py.get("cov_prior")), "fixef_prior": prior(py.get("fixef_prior"))}
    if py["fun"] == "blmer":
        return mm.blmer(py["formula"], data_of(case), REML=py["REML"],
                        resid_prior=prior(py.get("resid_prior")),
                        weights=py.get("weights"), **kw)
    return mm.bglmer(py["formula"], data_of(case), family=py["family"], **kw)


def objective_at(case) -> list[tuple[float, float]]:
    """(ours, blme's) penalized objective at each of blme's recorded parameter vectors."""
    py = case["py"]
    data = data_of(case)
    if py["fun"] == "blmer":
        design = materialize(parse_formula(py["formula"]), data, weights=py.get("weights"))
        pri = resolve_priors(design, prior(py.get("cov_prior")), prior(py.get("fixef_prior")),
                             prior(py.get("resid_prior")))
        obj = PenalizedLMMObjective(design, pri, reml=py["REML"])
    else:
        fam = make_family(py["family"])
        design = glmm_design(py["formula"], data, fam)
        pri = resolve_priors(design, prior(py.get("cov_prior")), prior(py.get("fixef_prior")),
                             glmm=True)
        obj = PenalizedGLMMObjective(design, fam, pri)
    names = case["devfun_params"]
    names = [names] if isinstance(names, str) else names
    k = design.n_theta
    out = []
    for at in case["devfun_at"]:
        par = vec(at["par"])
        if py["fun"] == "bglmer":
            value = obj(par)
        else:
            rest = par[k:]
            beta = sigma = None
            if "beta" in names:
                beta, rest = rest[:design.p], rest[design.p:]
            if "sigma" in names:
                sigma = float(rest[0])
            value = obj.at(par[:k], beta, sigma).objective
        out.append((float(value), float(at["value"])))
    return out

"""Fits of blme fixture cases (tests/fixtures/blme, tests/fixtures/sweep/bayessweep_*):
the JSON spelling of a prior turned into :mod:`mixedmodels.bayes.priors` calls, the case's
data and our ``blmer`` / ``bglmer`` fit. Shared by tests/test_bayes_blme.py,
tests/test_sweep_bayessweep.py and tools/r/sweep/bayessweep.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.bayes import priors as P  # noqa: N812 - blme's prior calls, short

__all__ = ["data_of", "fit", "prior", "vec"]


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

"""R reference values of the term tests, convergence tools and summaries
(``tools/r/terms_fixtures.R`` -> ``tests/fixtures/terms/*.json``) and the fits they
describe, fitted once per test session."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "terms"


@cache
def load(name: str) -> dict:
    """One fixture file (``drop1``, ``anova_wald``, ``exact_lrt``, ``r2_icc``,
    ``re_pca``, ``scale_x``, ``kr_lmm_ml``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def num(x) -> float:
    """R's value, with jsonlite's ``"NA"`` as NaN."""
    return float("nan") if x in ("NA", None) else float(x)


def arr(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def _frozen(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True)


@cache
def _fit(key: str):
    spec = json.loads(key)
    data = mm.datasets.load(spec["data"])
    f = spec["formula"].replace("^", "**")
    ctr = spec.get("contrasts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec["fitter"] == "lmer":
            return mm.lmer(f, data, REML=bool(spec.get("REML", False)), contrasts=ctr)
        if spec["fitter"] == "glmer":
            return mm.glmer(f, data, family=spec["family"], link=spec["link"], contrasts=ctr)
        if spec["fitter"] == "glmer.nb":
            return mm.glmer_nb(f, data, contrasts=ctr)
        return mm.glmmtmb(f, data, family=spec["family"], link=spec["link"],
                          ziformula=spec.get("zi", "~0"), REML=bool(spec.get("REML", False)),
                          contrasts=ctr)


def fit(spec: dict):
    """The Python fit of a fixture's model specification (cached)."""
    return _fit(_frozen(spec))

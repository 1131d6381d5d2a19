"""Models and R fixtures shared by the inference tests (tests/fixtures/inference/*.json,
written by tools/r/inference_fixtures.R), and checks that the fixtures describe the data we
fit."""

from __future__ import annotations

import dataclasses
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "inference"

#: id -> (data set, row filter, formula, REML); row filters mirror the R script's subsets:
#: R drops rows seq(1, n, by = k) (1-based), i.e. Python rows 0, k, 2k, ...
CASES = {
    "ss_reml": ("sleepstudy", None, "Reaction ~ Days + (Days | Subject)", True),
    "ss_ml": ("sleepstudy", None, "Reaction ~ Days + (Days | Subject)", False),
    "ss_uncorr": ("sleepstudy", None, "Reaction ~ Days + (Days || Subject)", True),
    "ss_unbal": ("sleepstudy", 7, "Reaction ~ Days + (Days | Subject)", True),
    "pen": ("Penicillin", None, "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    "ortho": ("Orthodont", None, "distance ~ age * Sex + (age | Subject)", True),
    "ortho_unbal": ("Orthodont", 5, "distance ~ age * Sex + (1 | Subject)", True),
    "ortho_unbal_ml": ("Orthodont", 5, "distance ~ age * Sex + (1 | Subject)", False),
    "cake": ("cake", None, "angle ~ recipe * temperature + (1 | recipe:replicate)", True),
    "pastes": ("Pastes", None, "strength ~ 1 + (1 | batch/cask)", True),
    "dyestuff": ("Dyestuff", None, "Yield ~ 1 + (1 | Batch)", True),
}


@cache
def fixture(name: str) -> dict:
    with (FIXTURES / f"{name}.json").open() as fh:
        return json.load(fh)


def data_for(case: str):
    name, every, _, _ = CASES[case]
    df = mm.datasets.load(name)
    if every:
        df = df.drop(index=df.index[::every])
    return df


@cache
def fit(case: str):
    _, _, formula, reml = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return mm.lmer(formula, data_for(case), REML=reml)


def at_theta(m, theta):
    """The fit ``m`` moved to ``theta`` (R's estimate): isolates a computation from the
    small differences between two optimizers' stopping points."""
    return dataclasses.replace(m, solution=m.objective_function.solve(np.asarray(theta)))


def arr(x) -> np.ndarray:
    """Numbers from a fixture; R's NA (written as the string "NA") becomes NaN."""
    x = [x] if np.isscalar(x) else list(x)
    return np.array([np.nan if v in ("NA", "NaN", None) else float(v) for v in x])


@pytest.mark.parametrize("case", sorted(fixture("ddf")))
def test_fixture_models_are_our_models(case):
    """Same rows and the same fit as R (so the fixtures are about our models). theta is
    compared loosely: where the likelihood is flat (Orthodont) two optimizers stop 1e-3
    apart; the df tests therefore evaluate at R's theta (:func:`at_theta`)."""
    ref = fixture("ddf")[case]
    m = fit(case)
    assert m.nobs == ref["nobs"]
    np.testing.assert_allclose(m.theta, arr(ref["theta"]), rtol=1e-2, atol=1e-4)
    np.testing.assert_allclose(m.fixef.to_numpy(), arr(ref["satterthwaite"]["estimate"]),
                               rtol=1e-6, atol=1e-8)

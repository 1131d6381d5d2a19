"""Gaussian spatial terms (exp / gau / mat(0 + pos | g)) through the profiled-LMM start:
vcov(full=True) against glmmTMB 1.1.5's (tools/r/sweep/spatial_gauss_fixtures.R ->
tests/fixtures/sweep/spatial_gauss_*.json).

Where glmmTMB's Hessian is positive definite every entry matches (relative to the
diagonal scale, ``VCOV_RTOL``). Where it is not (the sweep's exp_gauss / mat_gauss: a
standard deviation runs to 0), ours held the flat parameters and gave the others -- the
fixed effects' block equals glmmTMB's (``sdreport`` inverts the indefinite Hessian; its
fixed-effect entries are those of the flat direction held) -- where we returned an all-NaN
matrix and no fixed-effect standard errors.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
#: entries relative to sqrt(V_ii V_jj) (the sweep's SE tolerance)
VCOV_RTOL = 1e-3
OBJECTIVE_ATOL = 1e-4


def _fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _fit(fx):
    d = pd.read_csv(FIXTURES / fx["data"])
    d["g"] = "a"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb(fx["formula"], d, family="gaussian")


@pytest.mark.parametrize("name", ["spatial_gauss_exp_y2", "spatial_gauss_gau_y2"])
def test_vcov_full_matches_sdreport_where_positive_definite(name):
    fx = _fixture(name)
    assert fx["pdHess"]
    m = _fit(fx)
    assert m.objective == pytest.approx(fx["objective"], abs=OBJECTIVE_ATOL)
    want = np.asarray(fx["vcov_full"], dtype=float)
    got = m.vcov_full.to_numpy()
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    assert np.all(np.abs(got - want) <= VCOV_RTOL * scale)


@pytest.mark.parametrize("name", ["spatial_gauss_exp_y", "spatial_gauss_mat_y"])
def test_flat_spatial_term_keeps_fixed_effect_vcov(name):
    fx = _fixture(name)
    assert not fx["pdHess"]
    m = _fit(fx)
    assert m.objective == pytest.approx(fx["objective"], abs=OBJECTIVE_ATOL)
    V = m.vcov_full
    cond = [c for c in V.index if c.startswith("cond~")]
    want = np.asarray(fx["vcov_full"], dtype=float)[:len(cond), :len(cond)]
    got = V.loc[cond, cond].to_numpy()
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    assert np.all(np.abs(got - want) <= VCOV_RTOL * scale)
    se = m.coef_table()["Std. Error"].to_numpy()
    assert se == pytest.approx(np.asarray(list(fx["se"].values())), rel=VCOV_RTOL)
    # the flat parameters are NaN, the rest finite
    theta = [c for c in V.index if c.startswith("theta_")]
    assert np.isnan(V.loc[theta, theta].to_numpy()).any()
    assert np.all(np.isfinite(V.loc[cond, cond].to_numpy()))


@pytest.mark.slow
def test_matern_large_smoothness_fits():
    """mat() on the simulated exponential field: the smoothness runs off towards the
    Gaussian limit, where gamma(nu) 2^(nu - 1) overflowed a Python float (OverflowError
    from deep inside scipy; glmmTMB itself fails there with an eigen() error). Now a
    fit, at most a hair above the Gaussian correlation's objective (its limit)."""
    gau = _fixture("spatial_gauss_gau_y2")
    fx = dict(gau, formula="y2 ~ x + mat(0 + pos(cx, cy) | g)")
    m = _fit(fx)
    assert np.isfinite(m.objective)
    assert m.objective >= gau["objective"] - OBJECTIVE_ATOL
    assert m.objective <= gau["objective"] + 0.05

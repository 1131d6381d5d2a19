"""The projected BFGS ends a line search lost in the objective's rounding (lane nagq0).

An ``nAGQ=0`` gradient search near its optimum can meet a gradient a little above its
tolerance (PIRLS's mode error moves it by ~1e-5) where every trial value is within rounding
(~1e-11) of the current one: Armijo's test then passes or fails by the luck of that rounding,
and the search used to backtrack 30 times at one point, fail, and refit by BOBYQA
(grouseticks Poisson nAGQ = 0: 49 evaluations, 176 PIRLS iterations; now 10 and 36).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.optim import bounded_bfgs as bb
from mixedmodels.optim.bounded_bfgs import minimize_bounded_bfgs

FIXTURE = Path(__file__).parent / "fixtures" / "sweep" / "nagq0_grouseticks.json"
#: lme4 stops its BOBYQA at ~2e-4 relative in theta; the package's optimum is tighter
THETA_RTOL = 1e-3
#: fixed effects in units of max(|beta|, 1e-2) (as test_glmer_parity's BETA_TOL)
BETA_TOL = 1e-3
#: the package's criterion at its optimum is at most lme4's (its optimizer stops earlier)
OBJECTIVE_SLACK = 1e-6
#: evaluations of the search (10 now; 49 with the failed line search and BOBYQA)
MAX_EVALS = 15


def test_within_rounding_needs_both_changes_below_resolution():
    f = 2000.0
    noise = bb.F_NOISE_REL * f
    assert bb._within_rounding(f, f + 0.5 * noise, -0.5 * noise)
    assert bb._within_rounding(f, f - 0.5 * noise, -0.5 * noise)
    # a resolvable predicted decrease: backtracking can still work
    assert not bb._within_rounding(f, f + 0.5 * noise, -2.0 * noise)
    # a real increase: the step is too long, not lost in rounding
    assert not bb._within_rounding(f, f + 2.0 * noise, -0.5 * noise)
    assert not bb._within_rounding(f, float("nan"), 0.0)
    # small objectives: resolution relative to max(1, |f|)
    assert bb._within_rounding(1e-3, 1e-3 + 0.5 * bb.F_NOISE_REL, 0.0)


def _noisy_quadratic(curvature: float, bias: float):
    """A deviance of size 2000 whose value carries history-dependent rounding of 5e-12
    (PIRLS's warm starts) and whose gradient is off by ``bias`` (its mode error)."""
    calls = [0]
    centre = np.array([0.7, 0.4])

    def fg(x):
        calls[0] += 1
        d = np.asarray(x, float) - centre
        k = (calls[0] * 7919) % 13 - 6
        return 2000.0 + 0.5 * curvature * d @ d + 5e-12 * k / 6, curvature * d + bias

    return fg


@pytest.mark.parametrize("bias", [1.5e-5, 3e-5])
def test_noisy_optimum_ends_without_backtracking_to_the_limit(bias):
    opt, _ = minimize_bounded_bfgs(_noisy_quadratic(50.0, bias), np.ones(2), np.zeros(2))
    assert opt.return_code == "converged (no further decrease)"
    # 26 evaluations before (backtracking at the optimum until a rounding let one pass)
    assert opt.n_evals <= 14
    np.testing.assert_allclose(opt.x, [0.7, 0.4], atol=1e-5)


def test_smooth_quadratic_still_meets_the_gradient_test():
    # no rounding to meet: the gradient test ends the search as before
    opt, _ = minimize_bounded_bfgs(_noisy_quadratic(50.0, 0.0), np.ones(2), np.zeros(2))
    assert opt.fval - 2000.0 < 1e-9
    assert opt.return_code.startswith("converged")


@pytest.fixture(scope="module")
def grouse():
    data = mm.datasets.load("grouseticks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer("TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", data,
                        "poisson", nAGQ=0)


def test_grouseticks_nagq0_gradient_search_does_not_fall_back(grouse):
    assert grouse.opt_stage0.optimizer == "gradient:projected BFGS"
    assert grouse.opt_stage0.return_code.startswith("converged")
    stage = grouse.fit_log[0]
    assert stage["stage"] == "nAGQ=0"
    assert stage["evaluations"] <= MAX_EVALS


def test_grouseticks_nagq0_matches_lme4(grouse):
    ref = json.loads(FIXTURE.read_text())
    assert grouse.objective <= ref["objective"] + OBJECTIVE_SLACK
    np.testing.assert_allclose(grouse.theta, ref["theta"], rtol=THETA_RTOL)
    beta = np.asarray(grouse.beta, float)
    scale = np.maximum(np.abs(ref["beta"]), 1e-2)
    assert np.max(np.abs(beta - ref["beta"]) / scale) < BETA_TOL

"""R-side optimizer paths (helper lane rsopt): the quasi-Newton search on the package's
projected BFGS (fitting/rside_quasi_newton.py), its warm start, and the first step of
PQL's warm-started working fits (fitting/pql_warm.py) against MASS::glmmPQL."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
import rside_fixtures as rf
from mixedmodels.fitting import rside
from mixedmodels.fitting.pql_warm import WARM_STEP_FLOOR, warm_settings
from mixedmodels.optim import minimize_bounded_bfgs
from mixedmodels.optim.summary import OptSummary

FIXTURES = Path(__file__).parent / "fixtures" / "sweep" / "rsopt_pql_warm.json"
#: Largest difference of a fixed effect from glmmPQL's (tools/r/sweep/rsopt_fixtures.R).
#: The working fits' warm starts with NLopt's default first step stopped 1.3e-5 - 1.6e-4
#: away on three of these four models; from the previous fit's move, within 2.4e-6.
PQL_COEF_TOL = 5e-6


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.mark.parametrize("fx", json.loads(FIXTURES.read_text()), ids=lambda f: f["id"])
def test_pql_with_a_correlation_matches_glmmpql(fx):
    d = rf.data(fx["data"])
    m = _quiet(eval, fx["py_call"], {"mm": mm, "d": d})
    # (the same columns in R's order; our names are spelled another way)
    assert len(m.fixef) == len(fx["coef_names"])
    np.testing.assert_allclose(m.fixef.to_numpy(), fx["coef"], rtol=0, atol=PQL_COEF_TOL)
    assert m.converged


def test_warm_fits_take_fewer_evaluations_than_the_default_first_step(monkeypatch):
    """counts_pql_ar1's working fits: NLopt's default first step at every warm start
    (warm_settings disabled) against the previous fit's move."""
    fx = next(f for f in rf.models("pql") if f["name"] == "counts_pql_ar1")
    counts = []
    original = rside._optimize

    def counting(*args, **kw):
        out = original(*args, **kw)
        counts[-1] += out[2].n_evals
        return out

    monkeypatch.setattr(rside, "_optimize", counting)
    results = []
    for disable in (True, False):
        counts.append(0)
        with monkeypatch.context() as mp:
            if disable:
                mp.setattr("mixedmodels.fitting.pql.warm_settings", lambda *a: None)
            results.append(_quiet(rf.fit, fx))
    default, warm = counts
    assert warm < 0.7 * default
    np.testing.assert_allclose(results[1].fixef.to_numpy(), fx["coef"], rtol=0, atol=1e-7)


def _summary(x0, x):
    x0, x = np.asarray(x0, float), np.asarray(x, float)
    return OptSummary("test", x0, np.zeros_like(x0), np.full_like(x0, np.inf), x, 0.0, 1, {},
                      "ok", 0.0)


class _Result:
    def __init__(self, opt):
        self.opt = opt


class _Bound:
    def __init__(self, n_var=0, kinked=False):
        self.n_var, self.kinked = n_var, kinked


def test_warm_settings_step_is_the_move_with_a_floor():
    res = _Result(_summary([1.0, 0.0, -2.0], [0.5, 1e-9, -2.5]))
    step = warm_settings(res, _Bound())["initial_step"]
    np.testing.assert_allclose(step, [0.5, WARM_STEP_FLOOR, 0.5])
    # relative floor for a large parameter that did not move
    res = _Result(_summary([40.0], [40.0]))
    assert warm_settings(res, _Bound())["initial_step"][0] == pytest.approx(
        40.0 * WARM_STEP_FLOOR)


def test_warm_settings_leave_other_searches_alone():
    res = _Result(_summary([1.0, 0.0], [0.5, 0.1]))
    assert warm_settings(res, _Bound(n_var=1)) is None          # relative coordinates
    assert warm_settings(res, _Bound(kinked=True)) is None      # the kink scan's own steps
    assert warm_settings(_Result(None), _Bound()) is None
    assert warm_settings(_Result(_summary([], [])), _Bound()) is None


def test_rside_quasi_newton_runs_on_the_projected_bfgs():
    fx = next(f for f in rf.models("lme") if f["name"] == "orth_lme_symm_nested")
    m = _quiet(rf.fit, fx)
    assert m.opt.optimizer == "gradient:projected BFGS"
    assert m.converged
    assert m.loglik == pytest.approx(fx["logLik"], abs=1e-6)


def test_initial_hessian_is_skipped_at_a_converged_start():
    """A warm start that already meets the gradient tolerance costs one evaluation, not
    the k more of a finite-difference Hessian; elsewhere the Hessian is formed."""
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    calls = []

    def fg(x):
        calls.append(x.copy())
        return 0.5 * float(x @ A @ x), A @ x

    opt, _ = minimize_bounded_bfgs(fg, np.array([1e-9, -1e-9]), np.full(2, -np.inf),
                                   initial_hessian=True)
    assert opt.n_evals == 1 and len(calls) == 1 and opt.return_code == "converged"
    calls.clear()
    opt, _ = minimize_bounded_bfgs(fg, np.array([1.0, -1.0]), np.full(2, -np.inf),
                                   initial_hessian=True)
    # 1 + 2 (the Hessian) + the Newton step from the exact curvature of a quadratic
    assert opt.n_evals <= 5
    np.testing.assert_allclose(opt.x, 0.0, atol=1e-6)


@pytest.mark.parametrize("m", [2, 3, 4, 6])
def test_batched_spherical_steps_equal_the_per_step_factors(m):
    """corSymm's complex-step factors for all parameters at once are the per-step
    factors, bit for bit (so the derivatives and the fits' paths are unchanged)."""
    from mixedmodels.rside.correlation import (
        COMPLEX_STEP,
        _spherical_factor,
        _spherical_factor_steps,
    )

    rng = np.random.default_rng(m)
    n = m * (m - 1) // 2
    for u in (rng.normal(0.0, 2.0, n), np.full(n, 40.0), np.zeros(n)):
        batch = _spherical_factor_steps(u, m, COMPLEX_STEP)
        for j in range(n):
            uj = u.astype(complex)
            uj[j] += 1j * COMPLEX_STEP
            np.testing.assert_array_equal(batch[j], _spherical_factor(uj, m))

"""Cheaper pieces of a glmmtmb fit, each against an independent computation: the
Hessian's forward columns along ``diag`` standard deviations away from zero and along an
AR(1)'s correlation parameter, and its column along a log sd on the boundary taken from
its row (against central differences of the gradient), the marginal-mean start of the
conditional fixed effects (against the lognormal mean), and the banded factorization of
the block-diagonal Laplace Hessian (against dense numpy)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from mixedmodels.fitting import laplace_fit
from mixedmodels.fitting.laplace_boundary import (
    BOUNDARY_LOG_RANGE,
    EVEN_FORWARD_MIN,
    SMOOTH_MAX,
    boundary_log_scales,
    even_scales_off_zero,
    smooth_parameters,
)
from mixedmodels.fitting.laplace_fit import HESSIAN_STEP, gradient_hessian
from mixedmodels.objective.laplace.objective import INNER_STEP_FINAL
from structures_fixtures import fit_fixture, load, load_data

#: The fit's Hessian (forward columns along sds far from zero) against central
#: differences with a longer step: truncation ~2e-5 / sd relative.
HESSIAN_RTOL = 2e-4
#: Banded Cholesky, solve and log-determinant against numpy's dense ones.
LINALG_RTOL = 1e-10

glmmtmb_module = importlib.import_module("mixedmodels.fitting.glmmtmb")


@pytest.fixture(scope="module")
def homdiag():
    fx = load("homdiag_pois")
    return fit_fixture(fx, "glmmtmb", load_data(fx))


def test_diag_sds_away_from_zero_take_forward_differences(homdiag):
    obj = homdiag.objective_function
    x = homdiag.x
    (ts,) = obj.structure.terms
    pos = obj.theta_index(ts).start
    free = list(obj.layout.free_index)
    assert abs(x[pos]) > EVEN_FORWARD_MIN
    assert list(even_scales_off_zero(obj, x)) == [free.index(pos)]
    near_zero = x.copy()
    near_zero[pos] = 0.5 * EVEN_FORWARD_MIN
    assert even_scales_off_zero(obj, near_zero).size == 0


def test_forward_hessian_matches_central_differences(homdiag):
    obj = homdiag.objective_function
    layout = obj.layout
    x = homdiag.x

    def fg(z):
        f, g = obj.value_and_gradient(layout.expand(z, x))
        return f, layout.free(g)

    H_central = gradient_hessian(fg, layout.free(x), HESSIAN_STEP, central=True)
    H = homdiag.fit.hessian
    scale = np.sqrt(np.outer(np.diag(H_central), np.diag(H_central)))
    assert np.max(np.abs(H - H_central) / scale) < HESSIAN_RTOL


def _free_fg(obj, x):
    layout = obj.layout

    def fg(z):
        f, g = obj.value_and_gradient(layout.expand(z, x))
        return f, layout.free(g)

    return fg


def test_forward_hessian_along_a_correlation_matches_central_differences():
    fx = load("ar1_pois")
    m = fit_fixture(fx, "glmmtmb", load_data(fx))
    obj, x = m.objective_function, m.x
    (ts,) = obj.structure.terms
    phi = obj.theta_index(ts).start + 1                # ar1: log sd, then phi's t
    free = list(obj.layout.free_index)
    assert abs(x[phi]) <= SMOOTH_MAX
    assert list(smooth_parameters(obj, x)) == [free.index(phi)]
    far = x.copy()
    far[phi] = 2.0 * SMOOTH_MAX
    assert smooth_parameters(obj, far).size == 0
    H_central = gradient_hessian(_free_fg(obj, x), obj.layout.free(x), HESSIAN_STEP,
                                 central=True)
    H = m.fit.hessian
    scale = np.sqrt(np.outer(np.diag(H_central), np.diag(H_central)))
    assert np.max(np.abs(H - H_central) / scale) < HESSIAN_RTOL


def test_boundary_log_sd_is_held_and_its_column_comes_from_its_row():
    """hetar1's sixth sd goes to zero: the polish neither moves it nor differences the
    other gradients along it (they change by less than their rounding); the Hessian's
    other entries match central differences, and its entries along the boundary sd are
    negligible next to the rest (so the standard errors do not depend on them)."""
    fx = load("hetar1_pois")
    m = fit_fixture(fx, "glmmtmb", load_data(fx))
    obj, x = m.objective_function, m.x
    (ts,) = obj.structure.terms
    sl = obj.theta_index(ts)
    free = list(obj.layout.free_index)
    g = obj.layout.free(obj.value_and_gradient(x)[1])
    (held,) = boundary_log_scales(obj, x, g)
    logsd = x[sl][:6]
    assert free[held] == sl.start + int(np.argmin(logsd))
    assert logsd.min() <= logsd.max() - BOUNDARY_LOG_RANGE
    H_central = gradient_hessian(_free_fg(obj, x), obj.layout.free(x), HESSIAN_STEP,
                                 central=True)
    H = m.fit.hessian
    rest = np.setdiff1d(np.arange(len(free)), [held])
    scale = np.sqrt(np.outer(np.diag(H_central), np.diag(H_central)))[np.ix_(rest, rest)]
    assert np.max(np.abs(H - H_central)[np.ix_(rest, rest)] / scale) < HESSIAN_RTOL
    # the held column: tiny, and its coupling (H_ij^2 / (H_ii H_jj)) far below the
    # standard errors' tolerance
    assert H[held, held] > 0
    coupling = H[rest, held] ** 2 / (np.diag(H)[rest] * H[held, held])
    assert np.max(coupling) < 1e-6
    se = np.sqrt(np.diag(m.fit.vcov))[rest]
    se_rest = np.sqrt(np.diag(2.0 * np.linalg.inv(H[np.ix_(rest, rest)])))
    np.testing.assert_allclose(se, se_rest, rtol=1e-6)


def test_marginal_mean_start_keeps_the_poisson_means():
    """With a log link ``E[y] = exp(x'beta + v/2)``: the shifted start's linear predictor
    plus half the random effects' variance is the start without random effects."""
    fx = load("homdiag_pois")
    m = fit_fixture(fx, "glmmtmb", load_data(fx))
    obj = m.objective_function
    X = m.design.components["cond"].X
    x0 = m.x.copy()
    x0[obj.layout.slice("beta.cond")] = [0.6, 0.35]
    shifted = glmmtmb_module._marginal_mean_start(obj, m.density, m.design.components, x0)
    (ts,) = obj.structure.terms
    sd = abs(x0[obj.theta_index(ts)][0])
    beta0, beta1 = x0[obj.layout.slice("beta.cond")], shifted[obj.layout.slice("beta.cond")]
    # homdiag: every observation's random part has variance sd^2
    np.testing.assert_allclose(X @ beta1 + 0.5 * sd ** 2, X @ beta0, rtol=1e-12)
    keep = np.ones(x0.size, dtype=bool)
    keep[obj.layout.slice("beta.cond")] = False
    np.testing.assert_array_equal(shifted[keep], x0[keep])


def test_banded_block_hessian_matches_dense_linear_algebra(homdiag):
    obj = homdiag.objective_function
    kernel = obj.hessian
    obj.solve(homdiag.x, order=2)
    assert kernel._cb is not None               # the banded path is the one tested
    H = kernel.H                                # (levels, P, P), prior's identity added
    logdet = float(np.sum(np.linalg.slogdet(H)[1]))
    assert kernel.logdet == pytest.approx(logdet, rel=LINALG_RTOL)
    v = np.random.default_rng(1).standard_normal(obj.q)
    dense = np.linalg.solve(H, v[kernel.index][:, :, None])[:, :, 0]
    got = kernel.solve(v)[kernel.index]
    np.testing.assert_allclose(got, dense, rtol=LINALG_RTOL, atol=1e-14)


def test_loose_modes_far_from_the_optimum_reach_the_same_fit(monkeypatch):
    """The quasi-Newton phase's looser inner limit far from the optimum: fewer inner
    Newton iterations, the same optimum and standard errors as the tight limit
    throughout (the log sd on the boundary, along which F is flat, aside)."""
    fx = load("hetar1_pois")
    data = load_data(fx)
    loose = fit_fixture(fx, "glmmtmb", data)
    monkeypatch.setattr(laplace_fit, "LOOSE_INNER_GTOL", np.inf)
    tight = fit_fixture(fx, "glmmtmb", data)
    assert loose.objective_function.n_newton < tight.objective_function.n_newton
    assert loose.objective == pytest.approx(tight.objective, abs=1e-9)
    keep = np.abs(tight.fit.x) < 10.0
    np.testing.assert_allclose(loose.fit.x[keep], tight.fit.x[keep], rtol=0, atol=1e-6)
    se_loose, se_tight = (np.sqrt(np.diag(f.vcov)) for f in (loose.fit, tight.fit))
    np.testing.assert_allclose(se_loose[se_tight < 1e3], se_tight[se_tight < 1e3],
                               rtol=1e-5)


@pytest.mark.parametrize("shift", [0.3, 0.01])
def test_loose_modes_move_the_gradient_by_little(shift):
    """Evaluations with the inner limit the quasi-Newton phase uses at their gradient
    against the tight limit, away from the optimum (covariance parameters shifted): the
    gradient within 1e-4 of its size, F within 1e-7 of it."""
    fx = load("hetar1_pois")
    m = fit_fixture(fx, "glmmtmb", load_data(fx))
    obj = m.objective_function
    x = m.x.copy()
    x[obj.theta_index(obj.structure.terms[0])] += shift

    def evaluate(step):
        obj.u_start = np.zeros(obj.q)            # the same start both times
        obj._ref = None
        obj.inner_step_final = step
        try:
            return obj.value_and_gradient(x)
        finally:
            obj.inner_step_final = INNER_STEP_FINAL

    f_tight, g_tight = evaluate(INNER_STEP_FINAL)
    size = np.max(np.abs(g_tight))
    assert size > laplace_fit.LOOSE_INNER_GTOL
    step = min(laplace_fit.LOOSE_INNER_STEP, np.sqrt(laplace_fit.LOOSE_INNER_COEF * size))
    f_loose, g_loose = evaluate(step)
    assert abs(f_loose - f_tight) < 1e-7 * size
    assert np.max(np.abs(g_loose - g_tight)) < 1e-4 * size

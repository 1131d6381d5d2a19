"""The standard errors' gradient differences in one pass for one scalar term (cbpp8,
objective/glmm_gradient_batch): the batch against the point-by-point gradients at the
predicted modes (the same arithmetic: the same bits), and the gradient at the
Newton-corrected modes against the one at PIRLS's solved modes."""

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from glmm_gradient_setup import fitted_gradient
from mixedmodels.families import make_family
from mixedmodels.objective import glmm_gradient_batch as batch
from mixedmodels.objective.glmm_gradient import LaplaceGradient

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
#: PIRLS's own tolerance on the modes moves the gradient by ~|dg/du| * 1e-10; both
#: corrected and solved modes are within it of the mode, and at the optimum the
#: gradient's entries are O(1) per unit of x
SOLVED_GRAD_ABS = 1e-8


def _sim_pois():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(25), 6)
    x = rng.normal(size=g.size)
    b = rng.normal(scale=0.6, size=25)
    y = rng.poisson(np.exp(0.4 + 0.3 * x + b[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


CASES = [
    (CBPP, "cbpp", "binomial"),
    (CBPP, "cbpp", make_family("binomial", "probit")),
    ("y ~ x + (1 | g)", "sim_pois", "poisson"),
]


def _setup(formula, data, family):
    data = _sim_pois() if data == "sim_pois" else mm.datasets.load(data)
    return fitted_gradient(formula, data, family)


def _points(m, x, h):
    scale = np.r_[np.full(len(m.theta), 0.1), np.sqrt(np.diag(np.asarray(m.vcov_beta)))]
    out = []
    for i in range(x.size):
        p = x.copy()
        p[i] += h * scale[i]
        out.append(p)
    return out


@pytest.mark.parametrize("formula, data, family", CASES)
def test_batch_is_the_point_by_point_gradient(formula, data, family):
    m, obj, grad, x, ref = _setup(formula, data, family)
    assert batch.applies(grad)
    points = _points(m, x, 1e-5)
    rows = [obj.pirls.predicted_rows(*obj.split(p)[:2], ref) for p in points]
    assert all(r is not None for r in rows)
    many = batch.predicted_gradients(grad, points, rows)
    for p, g in zip(points, many, strict=True):
        np.testing.assert_array_equal(g, grad.gradient_at_predicted(p, ref))


@pytest.mark.parametrize("formula, data, family", CASES)
def test_corrected_modes_are_pirls_solution(formula, data, family):
    m, obj, grad, x, ref = _setup(formula, data, family)
    p = _points(m, x, 1e-5)[0]
    rows = obj.pirls.predicted_rows(*obj.split(p)[:2], ref)
    corrected = batch.newton_corrected_rows(grad, p, rows)
    assert corrected is not None
    obj.pirls._ref = ref
    grad._memo.clear()
    g_solved = grad(p)[1]
    solved = grad.last_solve[3]
    assert np.abs(corrected[0] - solved.u).max() <= obj.pirls.tol
    g_corr = batch.predicted_gradients(grad, [p], [corrected])[0]
    assert np.abs(g_corr - g_solved).max() <= SOLVED_GRAD_ABS
    # (and the prediction itself is further from the solution than the correction)
    assert np.abs(rows[0] - solved.u).max() >= np.abs(corrected[0] - solved.u).max()


def test_far_prediction_is_not_corrected():
    # a step of whole standard errors: the predicted modes are off by far more than
    # PIRLS's tolerance, so one Newton step does not make a solution (solve there)
    m, obj, grad, x, ref = _setup(*CASES[0])
    p = _points(m, x, 1.0)[0]
    rows = obj.pirls.predicted_rows(*obj.split(p)[:2], ref)
    assert rows is not None
    assert batch.newton_corrected_rows(grad, p, rows) is None


def test_fit_validates_without_a_solve_and_keeps_the_standard_errors():
    data = mm.datasets.load("cbpp")
    m = mm.glmer(CBPP, data, "binomial")
    log = {r["stage"]: r for r in m.fit_log}
    assert log["Hessian"]["pirls_iterations"] == 0
    # the standard errors against central differences of the exact gradient at solved
    # modes (an independent computation, step 1e-4 in x: error O(h^2))
    obj = m.objective_function
    grad = LaplaceGradient(obj)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    h = 1e-4
    H = np.empty((x.size, x.size))
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        H[:, i] = (grad(x + e)[1] - grad(x - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    se_ref = np.sqrt(np.diag(2.0 * np.linalg.inv(H))[1:])
    np.testing.assert_allclose(np.asarray(m.se), se_ref, rtol=1e-5)


#: the scalar step divides where the dense factor takes square roots and solves:
#: the same numbers to a few ulps
SCALAR_STEP_RTOL = 1e-13


def test_scalar_step_is_the_dense_factor():
    data = mm.datasets.load("cbpp")
    m = mm.glmer(CBPP, data, "binomial")
    pirls = m.objective_function.pirls
    dense = pirls.dense
    assert dense is not None and dense.one_scalar is not None
    theta = np.asarray(m.theta)
    lams = pirls.lambdas(theta)
    rng = np.random.default_rng(5)
    w = rng.uniform(0.5, 3.0, pirls.n)
    r = rng.normal(size=pirls.n)
    f_s = dense.factor_scalar_step(lams, r, w)
    f_d = dense.factor_step(lams, r[:, None], w)
    none = np.zeros(0)
    np.testing.assert_allclose(dense.solve_u(f_s, none), dense.solve_u(f_d, none),
                               rtol=SCALAR_STEP_RTOL)
    assert dense.logdet(f_s) == pytest.approx(dense.logdet(f_d), rel=SCALAR_STEP_RTOL)
    np.testing.assert_allclose(f_s.L11, f_d.L11, rtol=SCALAR_STEP_RTOL)
    B = rng.normal(size=(pirls.q, 3))
    np.testing.assert_allclose(dense.solve_M(f_s, B), dense.solve_M(f_d, B),
                               rtol=SCALAR_STEP_RTOL)
    # weights that make M indefinite: no factor (PIRLS then takes Fisher's step)
    assert dense.factor_scalar_step(lams, r, np.full(pirls.n, -50.0)) is None

"""Small-GLMM speed work (glmmfast lane): the standard errors' gradient differences
predict their modes from the optimum's fresh sensitivity (one PIRLS iteration each), the
dense small-model PIRLS builds ``Z`` without scipy and forms ``Z' v`` densely, and the
helpers that replaced numpy/scipy calls give the same numbers."""

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import _median, glmm_design
from mixedmodels.fitting.glmm_gradient import (
    GRADIENT_FD_STEP,
    _optimum_reference,
    hessian_from_gradient,
)
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.objective.glmm_gradient import LaplaceGradient, level_map
from mixedmodels.objective.pirls import PIRLS

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def grouse():
    return mm.datasets.load("grouseticks")


def _hessian_stage(m):
    return next(r for r in m.fit_log if r["stage"] == "Hessian")


def test_cbpp_hessian_differences_take_one_pirls_iteration_each_with_quadrature(cbpp):
    stage = _hessian_stage(mm.glmer(CBPP, cbpp, family="binomial", nAGQ=25))
    assert stage["evaluations"] == 5
    # one iteration per difference: the prediction from the optimum is within PIRLS's
    # tolerance at this step (it was two each from PIRLS's own, older reference)
    assert stage["pirls_iterations"] == stage["evaluations"]


def test_cbpp_laplace_hessian_differences_at_predicted_modes(cbpp):
    # (cbpp6) the gradients at the predicted modes: one difference at corrected modes
    # validates the prediction (and is the first column; cbpp8: one Newton step of the
    # diagonal H_uu, no PIRLS solve), the other four solve nothing
    stage = _hessian_stage(mm.glmer(CBPP, cbpp, family="binomial"))
    assert stage["evaluations"] == 6
    assert stage["pirls_iterations"] == 0


def test_crossed_poisson_hessian_differences_take_one_pirls_iteration_each(grouse):
    # the prediction's effect on grouseticks' first column (2.3e-4, whitened) is above
    # PREDICTED_HESSIAN_TOL: the six differences solve, one iteration each (after the
    # validating pair: one predicted gradient, one solve)
    stage = _hessian_stage(mm.glmer(GROUSE, grouse, family="poisson"))
    assert stage["evaluations"] == 8
    assert stage["pirls_iterations"] == 7


def test_cbpp_standard_errors_match_converged_central_differences(cbpp):
    # the fit's forward differences (PREDICTED_FD_STEP, whitened, at predicted modes but
    # the first)
    # against central ones in x (error O(h^2)): 7.2e-7 relative (2.1e-6 at
    # GRADIENT_FD_STEP with solved modes, 7.0e-6 at the former step 1e-4, which this
    # tolerance rejects)
    m = mm.glmer(CBPP, cbpp, family="binomial")
    grad = LaplaceGradient(m.objective_function)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    hx = hessian_from_gradient(grad, x, grad(x)[1], np.full(x.size, 1e-4),
                               np.full(x.size, -np.inf), central=True).hessian
    se_ref = np.sqrt(np.diag(2.0 * np.linalg.inv(hx)[1:, 1:]))
    se = np.sqrt(np.diag(np.asarray(m.vcov_beta)))
    assert m.vcov_method == "hessian"
    np.testing.assert_allclose(se, se_ref, rtol=1.5e-6)


def test_optimum_reference_predicts_the_modes_to_second_order(cbpp):
    m = mm.glmer(CBPP, cbpp, family="binomial")
    obj = m.objective_function
    grad = LaplaceGradient(obj)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    grad(x)
    theta0, beta0, u0, J = _optimum_reference(grad, x)
    np.testing.assert_array_equal(beta0, x[1:])
    np.testing.assert_array_equal(theta0, x[:1])
    pirls = obj.pirls
    for h in (1e-3, GRADIENT_FD_STEP):
        step = np.zeros(x.size)
        step[1] = h
        xp = x + step
        exact = pirls.fit(xp[:1], xp[1:], u0=u0, tol=1e-14).u
        predicted = u0 + J @ step
        # the error of a first-order prediction with the exact sensitivity is O(h^2)
        assert np.max(np.abs(predicted - exact)) < 10.0 * h * h


def test_optimum_reference_needs_the_last_solve_at_the_point(cbpp):
    m = mm.glmer(CBPP, cbpp, family="binomial")
    grad = LaplaceGradient(m.objective_function)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    grad(x)
    assert _optimum_reference(grad, x + 1e-3) is None


def test_dense_z_and_lazy_sparse_z_agree(grouse, cbpp):
    for data, formula, fam in ((cbpp, CBPP, "binomial"), (grouse, GROUSE, "poisson")):
        family = make_family(fam, None)
        design = glmm_design(formula, data, family)
        pirls = PIRLS(design, family)
        assert pirls._Zs is None                   # not made until first used
        Zs = pirls.Zs
        np.testing.assert_array_equal(PIRLS._dense_z(design), Zs.toarray())
        v = np.random.default_rng(0).standard_normal((design.nobs, 3))
        np.testing.assert_allclose(pirls._zt(v), pirls.ZsT @ v, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(pirls._zt(v[:, 0]), pirls.ZsT @ v[:, 0], rtol=1e-13,
                                   atol=1e-13)


def test_vector_term_dense_z_matches_sparse():
    df = mm.datasets.load("sleepstudy").assign(
        y=lambda d: (d.Reaction > d.Reaction.median()).astype(float))
    family = make_family("binomial", None)
    design = glmm_design("y ~ Days + (Days | Subject)", df, family)
    np.testing.assert_array_equal(PIRLS._dense_z(design), PIRLS._sparse_z(design).toarray())


def test_level_map_dense_and_sparse_agree():
    codes = np.array([2, 0, 1, 2, 2, 0])
    dense = level_map(codes, 3)
    assert isinstance(dense, np.ndarray)
    expected = np.zeros((3, 6))
    expected[codes, np.arange(6)] = 1.0
    np.testing.assert_array_equal(dense, expected)
    big = np.arange(30_000) % 7
    sparse = level_map(big, 7)
    assert not isinstance(sparse, np.ndarray)
    np.testing.assert_array_equal(sparse[:, :10].toarray(), level_map(big[:10], 7))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 15, 16, 101])
def test_median_is_numpys(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        v = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6)
        assert _median(v) == float(np.median(v))
    assert np.isnan(_median(np.array([1.0, np.nan, 2.0])))


def test_objective_gradients_share_one_random_structure(cbpp):
    family = make_family("binomial", None)
    obj = GLMMObjective(glmm_design(CBPP, cbpp, family), family, 1)
    assert LaplaceGradient(obj).structure is LaplaceGradient(obj).structure

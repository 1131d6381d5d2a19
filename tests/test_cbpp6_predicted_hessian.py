"""The standard errors' gradient differences at modes predicted from the optimum (cbpp6):
the gradient there against the gradient at PIRLS's solved modes, where the shortcut
applies and where it must not."""

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from glmm_gradient_setup import fitted_gradient
from mixedmodels.families import make_family
from mixedmodels.objective.glmm_gradient import LaplaceGradient

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)"
#: The predicted modes are off by O(h^2), the gradient there by as much, relative to the
#: gradient's own size at the step (O(h)) an error O(h): observed ~0.1 h (cbpp) to ~5 h
#: (grouseticks), which is the Hessian differences' relative error from the prediction
GRAD_REL_PER_STEP = 10.0


@pytest.mark.parametrize("formula, data, family", [
    (CBPP, "cbpp", "binomial"),
    (CBPP, "cbpp", make_family("binomial", "probit")),
    (GROUSE, "grouseticks", "poisson"),
])
def test_gradient_at_predicted_modes_matches_solved_modes(formula, data, family):
    m, obj, grad, x, ref = fitted_gradient(formula, mm.datasets.load(data), family)
    assert grad.predicts_modes
    assert obj.pirls.sensitivity_is_exact(grad.last_solve[3])
    rng = np.random.default_rng(0)
    # steps in units of the estimates' uncertainty, as the fit's whitened differences
    # (the standard errors for beta; theta's ~0.1 on these models)
    scale_x = np.r_[np.full(len(m.theta), 0.1), np.sqrt(np.diag(np.asarray(m.vcov_beta)))]
    for h in (1e-5, 1e-4):
        step = h * scale_x * rng.standard_normal(x.size)
        g_pred = grad.gradient_at_predicted(x + step, ref)
        assert g_pred is not None
        obj.pirls._ref = ref
        g_solved = grad(x + step)[1]
        size = float(np.abs(g_solved).max())
        assert np.abs(g_pred - g_solved).max() <= GRAD_REL_PER_STEP * h * size


def test_prediction_leaves_pirls_state_alone():
    _m, obj, grad, x, ref = fitted_gradient(CBPP, mm.datasets.load("cbpp"), "binomial")
    pirls = obj.pirls
    u_start, iters = pirls.u_start.copy(), pirls.n_iter_total
    assert grad.gradient_at_predicted(x + 1e-5, ref) is not None
    np.testing.assert_array_equal(pirls.u_start, u_start)
    assert pirls.n_iter_total == iters


def test_far_point_is_not_predicted():
    # a move of Z Lambda u beyond PREDICT_MAX_DETA: PIRLS must solve there
    _m, _obj, grad, x, ref = fitted_gradient(CBPP, mm.datasets.load("cbpp"), "binomial")
    far = x.copy()
    far[0] += 5.0
    assert grad.gradient_at_predicted(far, ref) is None


def _sim(seed=2, n=300):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"g": rng.integers(0, 15, n).astype(str), "x": rng.normal(size=n)})
    b = rng.normal(scale=0.5, size=15)
    d["y"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + b[d.g.astype(int)]))
    d["y_id"] = rng.poisson(3.0 + d.x.abs() + np.abs(b[d.g.astype(int)]))
    return d


def test_vector_term_is_not_predicted():
    # the sensitivity has no columns for a vector-valued term's theta
    _m, obj, grad, x, ref = fitted_gradient("y ~ x + (x | g)", _sim(), "poisson")
    assert not obj.pirls.predicts_every_theta
    assert not grad.predicts_modes
    assert grad.gradient_at_predicted(x + 1e-5, ref) is None


def test_fisher_weight_sensitivity_is_not_exact():
    # Poisson with identity link: zero counts make some observed weights zero, PIRLS's
    # sensitivity then has Fisher's weights (first order only) and the differences solve
    m, obj, grad, _x, _ref = fitted_gradient("y_id ~ x + (1 | g)", _sim(), make_family("poisson",
                                                                         "identity"))
    d = _sim()
    if not (d.y_id == 0).any():
        pytest.skip("no zero count in the simulated data")
    assert not obj.pirls.sensitivity_is_exact(grad.last_solve[3])
    stage = next(r for r in m.fit_log if r["stage"] == "Hessian")
    assert stage["pirls_iterations"] > 0


def test_dispersion_family_is_not_predicted():
    d = _sim()
    d["yg"] = np.exp(0.2 * d.x) * np.random.default_rng(3).gamma(4.0, 0.25, len(d))
    _m, _obj, grad, _x, _ref = fitted_gradient("yg ~ x + (1 | g)", d, make_family("Gamma", "log"))
    assert not grad.predicts_modes


def test_huge_counts_fall_back_to_solved_modes():
    # counts around 1e9: the gradient's sensitivity to the modes scales with the weights,
    # the predicted first column is off by ~450 (whitened): the differences solve
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_glmm_robustness import huge_counts

    m = mm.glmer("y ~ x + (1 | g)", huge_counts(5, 0.2), family="poisson")
    stage = next(r for r in m.fit_log if r["stage"] == "Hessian")
    # every column solved (one scalar term: the predicted columns, all formed in one
    # pass before the validation rejects them, are not used; cbpp8)
    assert stage["pirls_iterations"] >= len(m.theta) + len(m.beta)
    assert m.vcov_method == "hessian"


def test_grouseticks_standard_errors_match_central_differences():
    # converged central differences at solved modes (their own step 3e-5 in x): 0.7e-6
    # relative (the prediction is rejected there: solved forward differences at 3e-5)
    from mixedmodels.fitting.glmm_gradient import hessian_from_gradient

    m = mm.glmer(GROUSE, mm.datasets.load("grouseticks"), family="poisson")
    grad = LaplaceGradient(m.objective_function)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    hx = hessian_from_gradient(grad, x, grad(x)[1], np.full(x.size, 3e-5),
                               np.full(x.size, -np.inf), central=True).hessian
    k = len(m.theta)
    se_ref = np.sqrt(np.diag(2.0 * np.linalg.inv(hx)[k:, k:]))
    se = np.sqrt(np.diag(np.asarray(m.vcov_beta)))
    assert m.vcov_method == "hessian"
    np.testing.assert_allclose(se, se_ref, rtol=3e-6)


@pytest.mark.parametrize("link", ["logit", "probit", "cauchit", "cloglog", "log", "identity",
                                  "sqrt", "inverse"])
def test_slope_and_curvature_are_inverse_derivatives(link):
    from mixedmodels.families.links import make_link

    lk = make_link(link)
    eta = np.linspace(-3.0, 3.0, 41) if link not in ("sqrt", "inverse") else \
        np.linspace(0.2, 3.0, 41)
    d = lk.inverse_derivatives(eta, 3)
    m1, m2 = lk.slope_and_curvature(eta)
    np.testing.assert_array_equal(m1, d[1])
    np.testing.assert_array_equal(m2, d[2])

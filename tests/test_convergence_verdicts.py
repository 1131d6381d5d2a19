"""Convergence verdicts of issue 9: a saddle with theta on its bound is not converged (and
lmer escapes it), and a fit held at a link's feasible edge is reported."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import mixedmodels as mm
from mixedmodels.diagnostics import check_convergence, check_convergence_gradient
from mixedmodels.diagnostics.link_edge import LinkEdgeWarning, link_edge_message
from mixedmodels.fitting.glmm_vcov import DevianceDerivatives, convergence_report
from mixedmodels.objective import LMMObjective


def crossed(seed: int) -> pd.DataFrame:
    """Two crossed random intercepts, both with real variance."""
    rng = np.random.default_rng(seed)
    n = 120
    a, b, x = rng.integers(0, 10, n), rng.integers(0, 6, n), rng.normal(size=n)
    y = (1 + x + 0.8 * rng.normal(size=10)[a] + 0.5 * rng.normal(size=6)[b]
         + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str)})


FORMULA = "y ~ x + (1 | a) + (1 | b)"


def _saddle(obj: LMMObjective) -> np.ndarray:
    """The best point with the second variance on its bound: stationary there (the
    objective is even in theta_2), a saddle when the optimum has theta_2 > 0."""
    res = optimize.minimize_scalar(lambda t: obj(np.array([t, 0.0])), bounds=(1e-3, 5.0),
                                   method="bounded", options={"xatol": 1e-10})
    return np.array([res.x, 0.0])


@pytest.mark.parametrize("seed", [2, 5])
def test_saddle_on_the_bound_is_not_converged(seed):
    obj = LMMObjective(mm.materialize(mm.parse_formula(FORMULA), crossed(seed)))
    x = _saddle(obj)
    rep = check_convergence(obj, x, obj.lower, obj(x))
    assert not rep.converged
    assert rep.saddle.tolist() == [False, True]
    assert "saddle point" in rep.message
    # the same verdict from the analytic gradient
    grad_obj = LMMObjective(obj.design, method="blocked")
    _, g = grad_obj.value_and_gradient(x)
    rep_g = check_convergence_gradient(grad_obj.value_and_gradient, x, grad_obj.lower, g)
    assert not rep_g.converged and rep_g.saddle.tolist() == [False, True]


def test_true_boundary_optimum_is_converged():
    """With no variance in b the optimum is on the bound: positive curvature, converged."""
    rng = np.random.default_rng(4)
    d = crossed(4)
    d["b"] = rng.permutation(d["b"].to_numpy())      # b carries no signal now
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer(FORMULA, d)
    assert m.theta[1] == 0.0                          # a singular fit, at its optimum
    obj = m.objective_function
    rep = check_convergence(obj, m.theta, obj.lower, m.objective)
    assert rep.converged and rep.saddle is not None and not rep.saddle.any()


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_lbfgsb_escapes_the_saddle(seed):
    d = crossed(seed)
    ref = mm.lmer(FORMULA, d)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.lmer(FORMULA, d, optimizer="lbfgsb", start=[1.0, 0.0])
    assert not [w for w in caught if issubclass(w.category, mm.ConvergenceWarning)]
    assert m.convergence.converged
    assert "saddle point" in m.convergence.note
    assert m.objective == pytest.approx(ref.objective, abs=1e-6)
    np.testing.assert_allclose(m.theta, ref.theta, atol=1e-4)


def test_glmm_report_flags_negative_curvature_with_a_small_gradient():
    d = DevianceDerivatives(np.ones(2, bool), np.array([1e-5, -2e-5]),
                            np.array([[2.0, 0.0], [0.0, -0.5]]), 0)
    rep = convergence_report(d, np.zeros(2), np.full(2, -np.inf))
    assert not rep.converged and "saddle" in rep.message
    ok = DevianceDerivatives(np.ones(2, bool), np.array([1e-5, -2e-5]),
                             np.array([[2.0, 0.0], [0.0, 1.9]]), 0)
    assert convergence_report(ok, np.zeros(2), np.full(2, -np.inf)).converged


# -- link edge ------------------------------------------------------------------------------
def gamma_pinned(seed: int) -> pd.DataFrame:
    """Gamma data whose inverse-link line wants to cross eta = 0 at large x."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(15), 20)
    x = rng.uniform(0, 1, g.size)
    eta = np.maximum(1.02 - x + 0.05 * rng.normal(size=15)[g], 0.001)
    return pd.DataFrame({"y": rng.gamma(2.0, 1.0 / eta / 2.0), "x": x, "g": g.astype(str)})


@pytest.mark.parametrize("seed", [0, 3])
def test_gamma_inverse_link_at_its_edge_is_reported(seed):
    with pytest.warns(LinkEdgeWarning, match=r"edge of the feasible region of the inverse "
                                             r"link.*'log' link"):
        m = mm.glmer("y ~ x + (1 | g)", gamma_pinned(seed), family="Gamma")
    assert not m.convergence.converged
    assert np.min(m.solution.eta) < 0.01 * np.ptp(m.solution.eta)


def test_gamma_inverse_link_inside_is_quiet():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(15), 20)
    x = rng.uniform(0, 1, g.size)
    mu = np.exp(3 * x + 0.2 * rng.normal(size=15)[g])
    d = pd.DataFrame({"y": rng.gamma(5.0, mu / 5.0), "x": x, "g": g.astype(str)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinkEdgeWarning)
        m = mm.glmer("y ~ x + (1 | g)", d, family="Gamma")
    assert m.convergence.converged


def test_link_edge_message_by_family():
    fam = mm.families
    eta_up = np.linspace(-2.0, -1e-4, 50)          # probabilities up to 0.9999
    assert "largest linear predictor" in link_edge_message(fam.Binomial(link="log"), eta_up)
    assert link_edge_message(fam.Binomial(link="log"), np.linspace(-2, -0.5, 50)) is None
    assert link_edge_message(fam.Binomial(), np.linspace(-40, 40, 50)) is None
    pois = link_edge_message(fam.Poisson(link="identity"), np.linspace(1e-5, 3.0, 50))
    assert "smallest linear predictor" in pois and "'log' link" in pois
    assert link_edge_message(fam.Gamma(link="log"), np.linspace(-30, 30, 50)) is None

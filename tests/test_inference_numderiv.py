"""Numerical derivatives against analytic ones, and the delta-method SEs of the variance
components against the GLMM FAQ's computation in R."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.inference.numderiv import hessian, jacobian
from mixedmodels.inference.varcorr_se import VarCorrSEWarning, varcorr_se
from mixedmodels.inference.varpar import SdCorMap
from test_inference_cases import arr, fit, fixture

#: Richardson extrapolation on smooth functions, steps scaled to the curvature
DERIV_RTOL = 1e-7
#: numDeriv's own steps (1e-4 |x|): rounding limits them to about this
NUMDERIV_RTOL = 1e-4
#: delta-method SEs vs R (both from numerical Hessians; R's ML refit of a REML model stops
#: at a slightly different point)
SE_RTOL = 1e-3


def _f(x):
    return np.exp(x[0]) * np.sin(x[1]) + x[0] ** 2 * x[2] + np.log1p(x[2] ** 2)


def _hess(x):
    a, b, c = x
    return np.array([
        [np.exp(a) * np.sin(b) + 2 * c, np.exp(a) * np.cos(b), 2 * a],
        [np.exp(a) * np.cos(b), -np.exp(a) * np.sin(b), 0.0],
        [2 * a, 0.0, 2 * (1 - c * c) / (1 + c * c) ** 2],
    ])


@pytest.mark.parametrize(("steps", "x", "rtol"), [
    (None, [0.3, 1.1, 0.8], NUMDERIV_RTOL),
    # one small, non-zero coordinate: numDeriv's relative step (1e-4 |x|) drowns in rounding
    # there; steps scaled to the curvature do not
    ("curvature", [0.3, 1.1, 0.015], DERIV_RTOL),
])
def test_hessian_matches_analytic(steps, x, rtol):
    x = np.asarray(x)
    np.testing.assert_allclose(hessian(_f, x, steps=steps), _hess(x), rtol=rtol, atol=1e-8)


def test_jacobian_matches_analytic():
    def g(x):
        return np.array([x[0] * x[1], np.exp(x[1]), x[0] ** 3])

    x = np.array([1.5, -0.4])
    want = np.array([[x[1], x[0]], [0.0, np.exp(x[1])], [3 * x[0] ** 2, 0.0]])
    np.testing.assert_allclose(jacobian(g, x), want, rtol=DERIV_RTOL, atol=1e-10)


def test_sdcor_map_round_trip():
    m = fit("ortho")
    smap = SdCorMap(m.design)
    pars = smap.from_theta(m.theta, m.sigma)
    theta, sigma = smap.to_theta(pars)
    np.testing.assert_allclose(theta, m.theta, rtol=1e-12, atol=1e-14)
    assert sigma == m.sigma
    vc = m.varcorr.terms[0]
    np.testing.assert_allclose(pars[[0, 2]], vc.sd, rtol=1e-12)
    assert pars[1] == pytest.approx(vc.corr[1, 0], rel=1e-12)
    # a correlation of -1 is on the boundary, not an error
    edge = pars.copy()
    edge[1] = -1.0
    th, _ = smap.to_theta(edge)
    lam = m.design.terms[0].structure.lambda_(th)
    cov = lam @ lam.T
    assert cov[1, 0] / np.sqrt(cov[0, 0] * cov[1, 1]) == pytest.approx(-1.0)


SE = fixture("varcorr_se")


@pytest.mark.parametrize("case", sorted(SE))
def test_varcorr_se_matches_the_faq(case):
    ref = SE[case]
    with pytest.warns(VarCorrSEWarning, match="skewed"):
        tab = fit(case).varcorr_se()
    assert list(tab.index) == list(ref["names"])
    np.testing.assert_allclose(tab["estimate"], arr(ref["estimate"]), rtol=SE_RTOL)
    np.testing.assert_allclose(tab["se"], arr(ref["se"]), rtol=SE_RTOL)


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
def test_varcorr_se_on_the_boundary_is_nan():
    m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    tab = varcorr_se(m, warn=False)
    assert np.isnan(tab.loc["sd_(Intercept)|Batch", "se"])
    assert np.isfinite(tab.loc["sigma", "se"])

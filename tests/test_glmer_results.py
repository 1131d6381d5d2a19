"""The GLMM result: accessors, residuals, prediction, summary, overdispersion, fit options."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def m(cbpp):
    return mm.glmer(CBPP, cbpp, family="binomial")


def test_accessors(m):
    assert list(m.fixef.index) == ["Intercept", "period[T.2]", "period[T.3]", "period[T.4]"]
    V = m.vcov.to_numpy()
    np.testing.assert_allclose(V, V.T)
    assert np.all(np.linalg.eigvalsh(V) > 0)
    np.testing.assert_allclose(m.se.to_numpy(), np.sqrt(np.diag(V)))
    assert m.vcov_method == "hessian"
    assert m.theta.shape == (1,)
    assert m.loglik == pytest.approx(-0.5 * m.objective)
    assert m.aic == pytest.approx(m.objective + 2 * 5)
    assert m.bic == pytest.approx(m.objective + np.log(56) * 5)
    assert m.df == 5 and m.df_resid == 51
    assert m.sigma == 1.0 and m.residual_sd is None
    assert m.varcorr.sigma is None
    assert m.varcorr.terms[0].sd[0] == pytest.approx(m.theta[0])
    assert m.ngroups == {"herd": 15}
    assert not m.is_singular()
    assert m.converged
    coef = m.coef()["herd"]
    np.testing.assert_allclose(coef["Intercept"] - m.fixef["Intercept"],
                               m.ranef()["herd"]["Intercept"])
    assert [r["stage"] for r in m.fit_log] == ["nAGQ=0", "scaling", "Laplace", "Hessian"]
    # (the scaling reuses the stage-0 search's curvature model: no evaluation of its own;
    # the Hessian's gradients are taken at modes predicted from the optimum, validated
    # against one at the Newton-corrected modes: one scalar term, no PIRLS solve)
    log = {r["stage"]: r for r in m.fit_log}
    assert all(log[s]["evaluations"] > 0 and log[s]["pirls_iterations"] > 0
               for s in ("nAGQ=0", "Laplace"))
    assert log["Hessian"]["evaluations"] == 6 and log["Hessian"]["pirls_iterations"] == 0


def test_ranef_conditional_variances_are_phi_lambda_minv_lambda(m):
    """Conditional sd of b_j for a scalar term: theta / L_jj (Fisher weights at the
    modes), computed here from the dense penalized Hessian."""
    re = m.ranef(cond_var=True)["herd"]
    d = m.design
    mu, eta = m.solution.mu, m.solution.eta
    w = m.objective_function.pirls.prior * (mu * (1 - mu))
    Z = np.zeros((d.nobs, 15))
    Z[np.arange(d.nobs), d.terms[0].grouping.codes] = 1.0
    lam = m.theta[0]
    H = lam**2 * Z.T @ (w[:, None] * Z) + np.eye(15)
    del eta
    np.testing.assert_allclose(re["Intercept_condsd"], lam * np.sqrt(np.diag(np.linalg.inv(H))),
                               rtol=1e-8)


def test_fitted_predict_and_new_data(m, cbpp):
    mu = m.fitted().to_numpy()
    np.testing.assert_allclose(m.predict(type="response").to_numpy(), mu)
    np.testing.assert_allclose(m.predict().to_numpy(), np.log(mu / (1 - mu)), rtol=1e-10)
    np.testing.assert_allclose(m.predict(cbpp, type="response").to_numpy(), mu, rtol=1e-12)
    pop = m.predict(re_form="~0").to_numpy()
    np.testing.assert_allclose(pop, m.design.X @ m.beta)
    new = pd.DataFrame({"herd": ["1", "99"], "period": ["2", "2"], "incidence": [0, 0],
                        "size": [1, 1]})
    with pytest.raises(mm.DataError, match="not seen in the fit"):
        m.predict(new)
    p = m.predict(new, allow_new_levels=True, type="response").to_numpy()
    assert p[1] == pytest.approx(1 / (1 + np.exp(-(m.beta[0] + m.beta[1]))))
    assert p[0] == pytest.approx(mu[1])
    with pytest.raises(ValueError, match="type must be"):
        m.predict(type="probability")


def test_residuals(m):
    y, mu = m.design.y, m.fitted().to_numpy()
    n = m.objective_function.pirls.prior
    np.testing.assert_allclose(m.residuals("response"), y - mu)
    np.testing.assert_allclose(m.residuals("pearson"), (y - mu) * np.sqrt(n / (mu * (1 - mu))))
    np.testing.assert_allclose(m.residuals("working"), (y - mu) / (mu * (1 - mu)))
    dev = m.residuals().to_numpy()   # lme4's default type: deviance
    assert np.sum(dev**2) == pytest.approx(
        np.sum(m.family.dev_resids(y, mu, n)), rel=1e-12)
    np.testing.assert_array_equal(np.sign(dev), np.sign(y - mu))
    with pytest.raises(ValueError, match="unknown residual type"):
        m.residuals("partial")


def test_overdispersion_is_the_faq_formula(m):
    od = m.overdispersion()
    chisq = float(np.sum(m.residuals("pearson") ** 2))
    assert od.chisq == pytest.approx(chisq)
    assert od.rdf == 51
    assert od.ratio == pytest.approx(chisq / 51)
    assert od.p == pytest.approx(stats.chi2.sf(chisq, 51))
    assert "Pearson chi-square" in str(od)


def test_summary(m):
    s = m.summary()
    z = s.coefficients["z value"].to_numpy()
    np.testing.assert_allclose(z, m.fixef / m.se)
    np.testing.assert_allclose(s.coefficients["Pr(>|z|)"], 2 * stats.norm.sf(np.abs(z)))
    text = str(s)
    for line in ("Generalized linear mixed model fit by maximum likelihood (Laplace "
                 "Approximation)", " Family: binomial  ( logit )", "Formula: " + CBPP,
                 "AIC", "df.resid", "Scaled residuals:", "Random effects:",
                 "Number of obs: 56, groups:  herd, 15", "z value", "Pr(>|z|)",
                 "Signif. codes:", "Correlation of Fixed Effects:"):
        assert line in text, line
    assert "Residual" not in text
    assert f"{m.aic:.1f}" in text
    assert "***" in text             # the intercept is far from zero
    assert "<table" in s._repr_html_() and "<td" in s._repr_html_()
    assert "GeneralizedLinearMixedModelResult" in repr(m)


def test_quadrature_summary_title(cbpp):
    s = str(mm.glmer(CBPP, cbpp, family="binomial", nAGQ=7).summary())
    assert "(Adaptive Gauss-Hermite Quadrature, nAGQ = 7)" in s


def test_nagq0_uses_rx_and_calc_derivs(cbpp, m):
    m0 = mm.glmer(CBPP, cbpp, family="binomial", nAGQ=0)
    assert m0.nAGQ == 0 and m0.vcov_method == "RX"
    assert m0.objective > m.objective
    m1 = mm.glmer(CBPP, cbpp, family="binomial", calc_derivs=False)
    assert m1.vcov_method == "RX" and m1.convergence is None
    np.testing.assert_allclose(m1.beta, m.beta, rtol=1e-6)
    # R_X treats theta as known: close to, not equal to, the Hessian-based SEs
    np.testing.assert_allclose(m1.se, m.se, rtol=0.05)


def test_start_values_reach_the_same_optimum(cbpp, m):
    m2 = mm.glmer(CBPP, cbpp, family="binomial",
                  start={"theta": [0.3], "beta": [-1.0, -1.0, -1.0, -1.0]})
    assert m2.objective == pytest.approx(m.objective, abs=1e-7)
    np.testing.assert_allclose(m2.beta, m.beta, atol=1e-4)


def test_gaussian_identity_glmm_is_lmer_by_maximum_likelihood():
    d = mm.datasets.load("sleepstudy")
    lm = mm.lmer("Reaction ~ Days + (Days | Subject)", d, REML=False)
    gm = mm.glmer("Reaction ~ Days + (Days | Subject)", d, family="gaussian")
    assert gm.objective == pytest.approx(lm.objective, abs=1e-6)
    np.testing.assert_allclose(gm.beta, lm.beta, rtol=1e-5)
    np.testing.assert_allclose(gm.theta, lm.theta, rtol=1e-3, atol=1e-5)
    assert gm.sigma == pytest.approx(lm.sigma, rel=1e-5)
    assert gm.df == lm.df
    # the Hessian in (theta, beta) accounts for theta; R_X does not: close, not equal
    np.testing.assert_allclose(gm.se, lm.se, rtol=2e-2)
    assert gm.varcorr.sigma == pytest.approx(lm.sigma, rel=1e-5)


def test_dispersion_family_results():
    d = mm.datasets.load("gammasim")
    g = mm.glmer("y ~ x + (1 | g)", d, family="Gamma", link="log")
    assert g.residual_sd == g.sigma and g.df == 4
    assert g.varcorr.terms[0].sd[0] == pytest.approx(g.theta[0] * g.sigma)
    assert "Residual" in str(g.summary())
    assert " Family: Gamma  ( log )" in str(g.summary())


def test_negative_binomial_result():
    d = mm.datasets.load("grouseticks")
    nb = mm.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", d)
    assert nb.shape_estimated and nb.df == 6
    assert "Negative Binomial(2.05" in str(nb.summary())
    fixed = mm.glmer("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", d,
                     family=mm.families.NegativeBinomial(nb.family.theta))
    assert fixed.objective == pytest.approx(nb.objective, abs=1e-6)
    assert fixed.df == 5
    # lme4: standard errors treat the shape as known
    np.testing.assert_allclose(fixed.se, nb.se, rtol=1e-3)


def test_singular_fit_is_flagged_and_has_standard_errors():
    rng = np.random.default_rng(7)
    d = pd.DataFrame({"y": rng.binomial(1, 0.4, 200), "x": rng.normal(size=200),
                      "g": np.repeat([f"g{i}" for i in range(20)], 10)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = mm.glmer("y ~ x + (1 | g)", d, family="binomial")
    assert s.is_singular()
    assert s.theta[0] == 0.0
    assert any(issubclass(w.category, mm.SingularFitWarning) for w in caught)
    assert np.all(np.isfinite(s.se)) and s.vcov_method == "hessian"
    assert any("singular" in msg for msg in s.messages)

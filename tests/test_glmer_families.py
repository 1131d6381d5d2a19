"""Links and families against scipy.stats densities and numerical derivatives.

Every formula in mixedmodels.families is checked against an independent computation: log
densities from scipy.stats, derivatives by central differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

import mixedmodels as mm
from mixedmodels.families import (
    LINKS,
    Binomial,
    Gamma,
    Gaussian,
    InverseGaussian,
    NegativeBinomial,
    Poisson,
    make_family,
    make_link,
    nb_theta_ml,
)

#: Central-difference step and the agreement expected from it (error ~ h^2 * f''').
FD_STEP = 1e-5
FD_RTOL = 1e-6
#: Agreement of closed forms with scipy's densities (rounding only).
DENSITY_RTOL = 1e-10

RNG = np.random.default_rng(20240601)

# a range of eta inside each link's domain
ETA = {
    "logit": np.linspace(-4, 4, 9), "probit": np.linspace(-3, 3, 9),
    "cauchit": np.linspace(-5, 5, 9), "cloglog": np.linspace(-3, 1.5, 9),
    "log": np.linspace(-3, 3, 9), "identity": np.linspace(0.5, 5, 9),
    "sqrt": np.linspace(0.3, 3, 9), "inverse": np.linspace(0.2, 3, 9),
    "1/mu^2": np.linspace(0.2, 3, 9),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_round_trip_and_derivatives(name):
    link = make_link(name)
    eta = ETA[name]
    mu = link.linkinv(eta)
    np.testing.assert_allclose(link.link(mu), eta, rtol=1e-10, atol=1e-10)
    num1 = (link.linkinv(eta + FD_STEP) - link.linkinv(eta - FD_STEP)) / (2 * FD_STEP)
    np.testing.assert_allclose(link.mu_eta(eta), num1, rtol=FD_RTOL, atol=1e-12)
    num2 = (link.mu_eta(eta + FD_STEP) - link.mu_eta(eta - FD_STEP)) / (2 * FD_STEP)
    np.testing.assert_allclose(link.mu_eta2(eta), num2, rtol=1e-5, atol=1e-9)
    m, d = link.inverse_and_slope(eta)
    np.testing.assert_allclose(m, mu, rtol=1e-15)
    np.testing.assert_allclose(d, link.mu_eta(eta), rtol=1e-15)


def test_bounded_links_stay_inside_the_unit_interval():
    for name in ("logit", "probit", "cauchit", "cloglog"):
        mu = make_link(name).linkinv(np.array([-1e4, 1e4]))
        assert np.all(mu > 0) and np.all(mu < 1), name


def test_unknown_link_is_an_error():
    with pytest.raises(mm.FormulaError, match="unknown link"):
        make_link("logarithm")


def _logpdf(fam, y, mu, w, phi):
    """log p(y | mu) from scipy.stats, prior weights as the family documents them."""
    if isinstance(fam, Binomial):
        return stats.binom.logpmf(np.round(w * y), w, mu)
    if isinstance(fam, Poisson):
        return w * stats.poisson.logpmf(y, mu)
    if isinstance(fam, NegativeBinomial):
        k = fam.theta
        return w * stats.nbinom.logpmf(y, k, k / (k + mu))
    a = w / phi
    if isinstance(fam, Gamma):
        return stats.gamma.logpdf(y, a, scale=mu / a)
    if isinstance(fam, InverseGaussian):
        return stats.invgauss.logpdf(y, mu / a, scale=a)
    if isinstance(fam, Gaussian):
        return stats.norm.logpdf(y, mu, np.sqrt(phi / w))
    raise AssertionError(fam)


def _cases():
    n = 12
    trials = RNG.integers(1, 20, n).astype(float)
    yb = RNG.binomial(trials.astype(int), 0.3) / trials
    yc = RNG.poisson(3.0, n).astype(float)
    yp = RNG.gamma(2.0, 1.5, n)
    return [
        (Binomial(), yb, trials, RNG.uniform(0.1, 0.9, n), 1.0),
        (Binomial(link="probit"), (yb > 0.3).astype(float), np.ones(n),
         RNG.uniform(0.1, 0.9, n), 1.0),
        (Poisson(), yc, np.ones(n), RNG.uniform(0.5, 6, n), 1.0),
        (Poisson(link="sqrt"), yc, RNG.uniform(0.5, 2, n), RNG.uniform(0.5, 6, n), 1.0),
        (NegativeBinomial(2.5), yc, np.ones(n), RNG.uniform(0.5, 6, n), 1.0),
        (Gamma(link="log"), yp, RNG.uniform(0.5, 2, n), RNG.uniform(1, 5, n), 0.4),
        (InverseGaussian(), yp, np.ones(n), RNG.uniform(1, 5, n), 0.3),
        (Gaussian(link="log"), yp, RNG.uniform(0.5, 2, n), RNG.uniform(1, 5, n), 0.7),
    ]


CASES = _cases()
IDS = [f"{c[0].name}-{c[0].link.name}" for c in CASES]


@pytest.mark.parametrize(("fam", "y", "w", "mu", "phi"), CASES, ids=IDS)
def test_minus2_loglik_matches_scipy(fam, y, w, mu, phi):
    expected = -2.0 * np.sum(_logpdf(fam, y, mu, w, phi))
    assert fam.minus2_loglik(y, mu, w, phi) == pytest.approx(expected, rel=DENSITY_RTOL)
    # deviance = 2 (log p at mu = y  -  log p at mu), scaled by phi
    dev = fam.dev_resids(y, mu, w)
    sat = -2.0 * _logpdf(fam, y, np.where(y > 0, y, 1e-300), w, phi)
    np.testing.assert_allclose(dev / phi + sat, -2.0 * _logpdf(fam, y, mu, w, phi),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fam.saturated(y, w, phi), sat, rtol=1e-9, atol=1e-9)
    assert fam.deviance_function(y, w)(mu) == pytest.approx(np.sum(dev), rel=1e-12)


@pytest.mark.parametrize(("fam", "y", "w", "mu", "phi"), CASES, ids=IDS)
def test_weights_are_derivatives_of_the_log_density(fam, y, w, mu, phi):
    eta = fam.link.link(mu)

    def half_dev(e):          # d_i / 2 as a function of eta_i, from scipy
        m = fam.link.linkinv(e)
        return -_logpdf(fam, y, m, w, phi) * phi

    h = 1e-4
    num = (half_dev(eta + h) - 2 * half_dev(eta) + half_dev(eta - h)) / h**2
    np.testing.assert_allclose(fam.observed_weights(y, eta, mu, w), num, rtol=1e-5,
                               atol=1e-6)
    # Fisher weights: the expectation of the observed ones, w mu_eta^2 / V(mu)
    me = fam.link.mu_eta(eta)
    np.testing.assert_allclose(fam.fisher_weights(eta, mu, w), w * me**2 / fam.variance(mu),
                               rtol=1e-14)
    dv = (fam.variance(mu + FD_STEP) - fam.variance(mu - FD_STEP)) / (2 * FD_STEP)
    np.testing.assert_allclose(fam.variance_deriv(mu), dv, rtol=FD_RTOL, atol=1e-12)


@pytest.mark.parametrize("fam", [Gamma(link="log"), InverseGaussian(), Gaussian(link="log")],
                         ids=lambda f: f.name)
def test_profile_dispersion_minimizes_the_profiled_criterion(fam):
    y = RNG.gamma(3.0, 1.0, 50)
    w = RNG.uniform(0.5, 2.0, 50)
    total = 37.5

    def crit(t):
        return total / np.exp(t) + np.sum(fam.saturated(y, w, np.exp(t)))

    best = optimize.minimize_scalar(crit, bounds=(-10, 10), method="bounded",
                                    options={"xatol": 1e-10})
    assert np.log(fam.profile_dispersion(y, w, total)) == pytest.approx(best.x, abs=1e-6)


def test_nb_theta_ml_matches_direct_maximization():
    y = RNG.negative_binomial(2.0, 2.0 / 5.0, 400).astype(float)
    mu = np.full_like(y, y.mean())

    def nll(t):
        k = np.exp(t)
        return -np.sum(stats.nbinom.logpmf(y, k, k / (k + mu)))

    best = optimize.minimize_scalar(nll, bounds=(-5, 5), method="bounded",
                                    options={"xatol": 1e-10})
    assert np.log(nb_theta_ml(y, mu)) == pytest.approx(best.x, abs=1e-6)


def test_make_family_names_links_and_errors():
    assert make_family("binomial") == Binomial()
    assert make_family("Gamma", "log") == Gamma(link="log")
    assert make_family("inverse_gaussian").link.name == "1/mu^2"
    assert make_family(Binomial(link="probit")).link.name == "probit"
    assert make_family(Binomial, "cloglog") == Binomial(link="cloglog")
    assert make_family(NegativeBinomial(3.0), "sqrt").theta == 3.0
    assert Binomial(link="probit").label() == "binomial  ( probit )"
    with pytest.raises(mm.FormulaError, match="unknown family"):
        make_family("bernoulli")
    with pytest.raises(mm.FormulaError, match="does not support the 'logit' link"):
        Poisson(link="logit")
    with pytest.raises(mm.FormulaError, match="does not support"):
        make_family("poisson", "probit")
    with pytest.raises(ValueError, match="positive"):
        NegativeBinomial(-1.0)

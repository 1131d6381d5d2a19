"""Density-based families: values against scipy.stats / independent formulas, exact
derivatives against finite differences, normalization, moments, samplers and cdfs.

Tolerances
----------
* ``LOGPDF_RTOL``: log-densities against scipy or independent sums, relative to
  ``1 + |value|`` (both sides are accurate to ~1e-14; scipy's own error dominates).
* ``FD_*``: central differences with step ``FD_STEP`` in the linear predictors, one
  derivative order at a time (error ``~h^2`` ~ 1e-10 plus rounding ~1e-11), compared
  relative to ``1 + |derivative|``.
* ``MASS_TOL``: total probability by summation or quadrature.
* Monte Carlo: sample means and variances within ``MC_SE`` standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from mixedmodels import DataError, FormulaError
from mixedmodels.families import (
    ModelDensity,
    Poisson,
    Truncated,
    ZeroInflated,
    binomial_response,
    hurdle,
    make_response_family,
)

LOGPDF_RTOL = 1e-9
FD_STEP = 1e-5
FD_TOL = 2e-6
MASS_TOL = 1e-9
MC_SE = 5.0
RNG = np.random.default_rng(20240607)


# -- independent references ---------------------------------------------------------
def nb_ref(y, k, mu):
    return stats.nbinom.logpmf(y, k, k / (k + mu))


def compois_ref(y, mu, nu, kmax=3000):
    """Direct summation on a fixed long grid, rate solved by brentq."""
    k = np.arange(kmax, dtype=float)
    out = []
    lf = special.gammaln(k + 1)

    def logz(ell, nu):
        return special.logsumexp(k * ell - nu * lf)

    def log_mean_gap(ell, nu, mu):
        return (special.logsumexp(k[1:] * ell - nu * lf[1:] + np.log(k[1:]))
                - logz(ell, nu) - np.log(mu))

    for yi, mi, ni in np.broadcast(y, mu, nu):
        ell = optimize.brentq(log_mean_gap, -60, 60, args=(ni, mi), xtol=1e-14, rtol=1e-15)
        out.append(yi * ell - ni * special.gammaln(yi + 1) - logz(ell, ni))
    return np.array(out)


def tweedie_ref(y, mu, phi, p, nmax=4000):
    """Poisson mixture of gammas (independent of Dunn & Smyth's series)."""
    lam = mu ** (2 - p) / (phi * (2 - p))
    shape, scale = (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1)
    out = []
    for yi, li, si, ci in np.broadcast(y, lam, shape, scale):
        if yi == 0:
            out.append(-li)
            continue
        n = np.arange(1, nmax)
        out.append(special.logsumexp(stats.poisson.logpmf(n, li)
                                     + stats.gamma.logpdf(yi, n * si, scale=ci)))
    return np.array(out)


def genpois_ref(y, mu, phi):
    theta, lam = mu / np.sqrt(phi), 1 - 1 / np.sqrt(phi)
    return (np.log(theta) + (y - 1) * np.log(theta + lam * y) - theta - lam * y
            - special.gammaln(y + 1))


def lognormal_ref(y, mu, phi):
    s2 = np.log1p((phi / mu) ** 2)
    return stats.lognorm.logpdf(y, s=np.sqrt(s2), scale=np.exp(np.log(mu) - s2 / 2))


REFS = {
    "gaussian": lambda y, p, n: stats.norm.logpdf(y, p["mu"], np.sqrt(p["phi"])),
    "poisson": lambda y, p, n: stats.poisson.logpmf(y, p["mu"]),
    "binomial": lambda y, p, n: stats.binom.logpmf(y, n, p["mu"]),
    "betabinomial": lambda y, p, n: stats.betabinom.logpmf(
        y, n, p["mu"] * p["phi"], (1 - p["mu"]) * p["phi"]),
    "nbinom2": lambda y, p, n: nb_ref(y, p["phi"], p["mu"]),
    "nbinom1": lambda y, p, n: nb_ref(y, p["mu"] / p["phi"], p["mu"]),
    "nbinom12": lambda y, p, n: nb_ref(y, p["mu"] / (p["phi"] + p["mu"] / p["psi"]), p["mu"]),
    "genpois": lambda y, p, n: genpois_ref(y, p["mu"], p["phi"]),
    "compois": lambda y, p, n: compois_ref(y, p["mu"], 1 / p["phi"]),
    "Gamma": lambda y, p, n: stats.gamma.logpdf(y, p["phi"], scale=p["mu"] / p["phi"]),
    "beta": lambda y, p, n: stats.beta.logpdf(y, p["mu"] * p["phi"],
                                              (1 - p["mu"]) * p["phi"]),
    "tweedie": lambda y, p, n: tweedie_ref(y, p["mu"], p["phi"], p["power"]),
    "lognormal": lambda y, p, n: lognormal_ref(y, p["mu"], p["phi"]),
    "t": lambda y, p, n: stats.t.logpdf(y, p["df"], p["mu"], p["phi"]),
}


def draw_case(name, n=6, rng=RNG):
    """Random natural parameters and responses for family ``name``."""
    u = lambda lo, hi: np.exp(rng.uniform(np.log(lo), np.log(hi), n))  # noqa: E731
    p = {"mu": u(0.2, 30.0)}
    size = None
    if name in ("binomial", "betabinomial"):
        p["mu"] = rng.uniform(0.05, 0.95, n)
        size = rng.integers(1, 25, n).astype(float)
        y = np.floor(rng.uniform(0, 1, n) * (size + 1))
    elif name in ("beta",):
        p["mu"] = rng.uniform(0.05, 0.95, n)
        y = rng.uniform(0.01, 0.99, n)
    elif name in ("gaussian", "t"):
        p["mu"] = rng.normal(0, 3, n)
        y = p["mu"] + rng.normal(0, 2, n)
    elif name in ("Gamma", "lognormal"):
        y = u(0.05, 50.0)
    elif name == "tweedie":
        y = np.where(rng.uniform(size=n) < 0.3, 0.0, u(0.05, 40.0))
    else:
        y = np.floor(u(0.5, 60.0)) - (rng.uniform(size=n) < 0.3) * 1.0
        y = np.maximum(y, 0.0)
    if name not in ("poisson", "binomial"):
        p["phi"] = {"beta": u(0.5, 50.0), "betabinomial": u(0.5, 50.0),
                    "gaussian": u(0.1, 10.0), "Gamma": u(0.3, 20.0),
                    "genpois": u(1.0, 6.0), "compois": u(0.3, 3.0)}.get(name, u(0.1, 5.0))
    if name == "nbinom12":
        p["psi"] = u(0.5, 10.0)
    if name == "tweedie":
        p["power"] = rng.uniform(1.1, 1.9, n)
    if name == "t":
        p["df"] = u(1.5, 40.0)
    return y, p, size


FAMILIES = list(REFS)


def assert_close(got, ref, tol):
    """``|got - ref| <= tol (1 + |ref|)`` elementwise."""
    got, ref = np.asarray(got), np.asarray(ref)
    err = np.abs(got - ref) / (1 + np.abs(ref))
    assert np.all(err <= tol), f"max rel. error {np.max(err):.3g} > {tol:g}:\n{got}\n{ref}"


def etas_of(md, params):
    return {c: md.links[c].link(np.asarray(params[c], dtype=float)) for c in md.channels}


@pytest.mark.parametrize("name", FAMILIES)
def test_log_density_matches_reference(name):
    y, p, size = draw_case(name, n=8)
    md = ModelDensity(make_response_family(name))
    got = md.log_density_value(y, etas_of(md, p), size=size)
    ref = REFS[name](y, p, size)
    assert_close(got, ref, LOGPDF_RTOL)


EXTREMES = {
    # tiny and huge means, dispersions near both limits, y = 0
    "poisson": (np.array([0, 0, 3, 1000]), {"mu": np.array([1e-12, 1e4, 1e-6, 1e3])}),
    "nbinom2": (np.array([0, 5, 300, 2]), {"mu": np.array([1e-8, 4.0, 250.0, 2e3]),
                                            "phi": np.array([1e-4, 1e6, 1e-2, 5e3])}),
    "nbinom1": (np.array([0, 7, 0, 40]), {"mu": np.array([1e-6, 5.0, 300.0, 40.0]),
                                           "phi": np.array([50.0, 1e-6, 1e3, 1e-3])}),
    "Gamma": (np.array([1e-6, 3.0, 1e4, 2.0]), {"mu": np.array([1e-5, 3.0, 5e3, 2.0]),
                                                 "phi": np.array([0.05, 1e5, 2.0, 1e-3])}),
    "beta": (np.array([1e-6, 0.5, 0.999999, 0.3]), {"mu": np.array([1e-3, 0.5, 0.99, 0.3]),
                                                     "phi": np.array([2.0, 1e5, 50.0, 0.05])}),
    "binomial": (np.array([0, 30, 15, 1]), {"mu": np.array([1e-9, 1 - 1e-9, 0.5, 0.999])}),
    "gaussian": (np.array([0.0, 1e3, -1e-3, 5.0]), {"mu": np.array([0.0, 999.0, 0.0, -5.0]),
                                                     "phi": np.array([1e-8, 4.0, 1e-10, 1e4])}),
    "tweedie": (np.array([0.0, 1e-4, 80.0, 2.0]), {"mu": np.array([1e-3, 0.5, 60.0, 2.0]),
                                                    "phi": np.array([0.5, 2.0, 0.3, 30.0]),
                                                    "power": np.array([1.5, 1.05, 1.95, 1.3])}),
    "compois": (np.array([0, 0, 150, 3]), {"mu": np.array([1e-3, 20.0, 140.0, 3.0]),
                                           "phi": np.array([3.0, 0.1, 2.5, 1.0])}),
    "genpois": (np.array([0, 50, 3, 0]), {"mu": np.array([1e-6, 40.0, 3.0, 30.0]),
                                          "phi": np.array([1.0 + 1e-9, 50.0, 1.0, 200.0])}),
    "betabinomial": (np.array([0, 30, 5, 30]), {"mu": np.array([1e-6, 0.999, 0.3, 0.5]),
                                                "phi": np.array([1e6, 0.01, 3.0, 1e-3])}),
    "nbinom12": (np.array([0, 40, 7]), {"mu": np.array([1e-5, 30.0, 6.0]),
                                        "phi": np.array([1e-8, 1e-6, 30.0]),
                                        "psi": np.array([1e8, 1e-3, 1.0])}),
    "t": (np.array([0.0, 1e3, -2.0]), {"mu": np.array([0.0, 0.0, 1.0]),
                                       "phi": np.array([1e-4, 1e3, 1.0]),
                                       "df": np.array([1e6, 0.5, 3.0])}),
    "lognormal": (np.array([1.0, 1e-5, 50.0]), {"mu": np.array([1.0, 1e-5, 20.0]),
                                                "phi": np.array([1e-6, 1e-2, 2e3])}),
}


@pytest.mark.parametrize("name", list(EXTREMES))
def test_log_density_extreme_parameters(name):
    y, p = EXTREMES[name]
    y = np.asarray(y, dtype=float)
    size = np.full(y.shape, 30.0) if name in ("binomial", "betabinomial") else None
    md = ModelDensity(make_response_family(name))
    jet = md.evaluate(y, etas_of(md, p), size=size, order=3)
    ref = REFS[name](y, p, size)
    assert_close(jet.v, ref, 1e-8)
    for g in jet.derivatives():
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("k", [1e3, 1e7, 1e11, 1e15])
def test_nbinom2_poisson_limit_keeps_its_digits(k):
    # d l / d log(k) = k [sum_{i<y} 1/(k+i) - log1p(mu/k) + (mu - y)/(k + mu)], summed
    # exactly (fsum of O(1) terms); a naive digamma difference loses ~1e-16 k digits
    mu, y = 3.7, 6
    md = ModelDensity(make_response_family("nbinom2"))
    jet = md.evaluate(np.array([y], float), {"mu": np.log(mu), "phi": np.log(k)}, order=1)
    terms = [k / (k + i) for i in range(y)] + [-k * math.log1p(mu / k), k * (mu - y) / (k + mu)]
    assert abs(jet.d1[0, 1] - math.fsum(terms)) < 1e-12
    exact = math.fsum([math.log(k + i) for i in range(y)]) - math.lgamma(y + 1) \
        - k * math.log1p(mu / k) + y * (math.log(mu) - math.log(k + mu))
    assert abs(jet.v[0] - exact) < 1e-12 * max(1.0, abs(exact))


# -- derivatives ------------------------------------------------------------------------
def fd_check(md, y, etas, size=None, weights=None):
    """Orders 1-3 (all mixed partials) against central differences of the lower order."""
    jet = md.evaluate(y, etas, size=size, weights=weights, order=3)
    assert jet.d1.shape == (y.size, len(md.channels))
    for a, c in enumerate(md.channels):
        up = dict(etas, **{c: etas[c] + FD_STEP})
        dn = dict(etas, **{c: etas[c] - FD_STEP})
        jp = md.evaluate(y, up, size=size, weights=weights, order=2)
        jm = md.evaluate(y, dn, size=size, weights=weights, order=2)
        for lvl, (hi, lo, an) in enumerate([(jp.v, jm.v, jet.d1[:, a]),
                                            (jp.d1, jm.d1, jet.d2[:, a]),
                                            (jp.d2, jm.d2, jet.d3[:, a])], start=1):
            fd = (hi - lo) / (2 * FD_STEP)
            scale = 1 + np.abs(an)
            np.testing.assert_array_less(np.abs(fd - an), FD_TOL * scale + 1e-7,
                                         err_msg=f"order {lvl} in {c}")
    np.testing.assert_allclose(jet.d2, np.swapaxes(jet.d2, 1, 2), atol=1e-10)
    np.testing.assert_allclose(jet.d3, np.swapaxes(jet.d3, 1, 3), atol=1e-10)
    for order in (0, 1, 2):
        low = md.evaluate(y, etas, size=size, weights=weights, order=order)
        np.testing.assert_allclose(low.v, jet.v, rtol=1e-14, atol=1e-14)
        assert len(low.derivatives()) == order
    return jet


@pytest.mark.parametrize("name", FAMILIES)
def test_derivatives_match_finite_differences(name):
    y, p, size = draw_case(name, n=5, rng=np.random.default_rng(7))
    md = ModelDensity(make_response_family(name))
    fd_check(md, y, etas_of(md, p), size=size)


@pytest.mark.parametrize("link", ["probit", "cloglog", "log"])
def test_binomial_links_derivatives(link):
    y, p, size = draw_case("binomial", n=5, rng=np.random.default_rng(8))
    p["mu"] = p["mu"] * 0.8
    md = ModelDensity(make_response_family("binomial", link=link))
    fd_check(md, y, etas_of(md, p), size=size)
    np.testing.assert_allclose(md.log_density_value(y, etas_of(md, p), size=size),
                               REFS["binomial"](y, p, size), rtol=1e-12)


def _wrapped(kind, base):
    fam = make_response_family(base)
    return {"zi": ZeroInflated, "trunc": Truncated, "hurdle": hurdle}[kind](fam)


WRAPPED = [("zi", "poisson"), ("zi", "nbinom2"), ("zi", "compois"), ("zi", "genpois"),
           ("zi", "tweedie"), ("zi", "binomial"), ("trunc", "poisson"), ("trunc", "nbinom1"),
           ("trunc", "compois"), ("trunc", "genpois"), ("hurdle", "nbinom2"),
           ("hurdle", "Gamma"), ("hurdle", "beta"), ("hurdle", "lognormal")]


def _wrapped_case(kind, base, rng):
    y, p, size = draw_case(base, n=6, rng=rng)
    if kind == "trunc":
        y = np.maximum(y, 1.0)
    else:
        y[:3] = 0.0
        p["zi"] = rng.uniform(0.05, 0.9, y.size)
    return y, p, size


@pytest.mark.parametrize(("kind", "base"), WRAPPED)
def test_wrappers_values_and_derivatives(kind, base):
    y, p, size = _wrapped_case(kind, base, np.random.default_rng(11))
    fam = _wrapped(kind, base)
    md = ModelDensity(fam)
    assert md.channels[0] == "mu" and ("zi" in md.channels) == (kind != "trunc")
    got = md.log_density_value(y, etas_of(md, p), size=size)
    bp = {k: v for k, v in p.items() if k != "zi"}
    lf = REFS[base](y, bp, size)
    lf0 = REFS[base](np.zeros_like(y), bp, size)
    if kind == "trunc":
        ref = lf - np.log(-np.expm1(lf0))
    elif kind == "hurdle":
        positive = lf - np.log(-np.expm1(lf0)) if fam.discrete else lf
        ref = np.where(y == 0, np.log(p["zi"]), np.log1p(-p["zi"]) + positive)
    else:
        ref = np.where(y == 0, np.log(p["zi"] + (1 - p["zi"]) * np.exp(lf0)),
                       np.log1p(-p["zi"]) + lf)
    assert_close(got, ref, 1e-9)
    fd_check(md, y, etas_of(md, p), size=size)


def test_weights_multiply_and_zero_weights_contribute_nothing():
    md = ModelDensity(make_response_family("nbinom2"))
    y = np.array([0.0, 3.0, 7.0])
    etas = {"mu": np.log([1.0, 2.0, 5.0]), "phi": np.array([0.5, 0.5, 0.5])}
    base = md.evaluate(y, etas, order=3)
    w = np.array([2.0, 0.0, 0.5])
    got = md.evaluate(y, etas, weights=w, order=3)
    for a, b in zip(got.derivatives(), base.derivatives(), strict=True):
        np.testing.assert_allclose(a, b * w, rtol=1e-14)
    # a zero-weight observation outside the support stays exactly 0
    tr = ModelDensity(make_response_family("truncated_poisson"))
    out = tr.evaluate(np.array([0.0, 2.0]), {"mu": np.zeros(2)}, weights=np.array([0.0, 1.0]))
    assert out.v[0] == 0.0 and np.all(out.d1[0] == 0)


# -- normalization, moments, cdf --------------------------------------------------------
DISCRETE = {
    "poisson": {"mu": 3.3}, "nbinom2": {"mu": 4.0, "phi": 1.7}, "nbinom1": {"mu": 6.0, "phi": 2.5},
    "nbinom12": {"mu": 5.0, "phi": 0.8, "psi": 3.0}, "genpois": {"mu": 4.0, "phi": 2.2},
    "compois": {"mu": 6.0, "phi": 0.4}, "truncated_poisson": {"mu": 1.3},
    "truncated_nbinom2": {"mu": 2.5, "phi": 0.9}, "truncated_genpois": {"mu": 2.0, "phi": 1.8},
    "truncated_compois": {"mu": 1.5, "phi": 2.0}, "binomial": {"mu": 0.3},
    "betabinomial": {"mu": 0.6, "phi": 2.0},
}


def _pmf_table(name, p, kmax=400):
    fam = make_response_family(name)
    md = ModelDensity(fam)
    k = np.arange(kmax, dtype=float)
    size = np.full(k.shape, 12.0) if fam.needs_size else None
    if size is not None:
        k = k[:13]
        size = size[:13]
    etas = {c: md.links[c].link(np.asarray(v, dtype=float)) for c, v in p.items()}
    return fam, k, np.exp(md.log_density_value(k, etas, size=size)), size


@pytest.mark.parametrize("name", list(DISCRETE))
def test_discrete_pmf_mass_moments_and_cdf(name):
    p = DISCRETE[name]
    fam, k, pmf, size = _pmf_table(name, p)
    n = None if size is None else 12.0
    assert abs(pmf.sum() - 1.0) < MASS_TOL
    mean = np.sum(k * pmf)
    var = np.sum((k - mean) ** 2 * pmf)
    np.testing.assert_allclose(fam.mean(p, size=n), mean, rtol=1e-9)
    np.testing.assert_allclose(fam.variance_of(p, size=n), var, rtol=1e-8)
    pts = np.array([-1.0, 0.0, 1.0, 2.0, 5.0, 9.0])
    cum = np.concatenate([[0.0], np.cumsum(pmf)])
    ref = cum[np.clip(pts + 1, 0, cum.size - 1).astype(int)]
    np.testing.assert_allclose(fam.cdf(pts, p, size=n), ref, atol=1e-10)
    ref_lower = cum[np.clip(pts, 0, cum.size - 1).astype(int)]
    np.testing.assert_allclose(fam.cdf_lower(pts, p, size=n), ref_lower, atol=1e-10)


MOMENT_CASES = {**{k: v for k, v in DISCRETE.items()},
                "gaussian": {"mu": 1.0, "phi": 2.0}, "Gamma": {"mu": 3.0, "phi": 2.5},
                "beta": {"mu": 0.3, "phi": 4.0}, "tweedie": {"mu": 2.0, "phi": 1.5, "power": 1.4},
                "lognormal": {"mu": 2.0, "phi": 1.0}, "t": {"mu": 1.0, "phi": 2.0, "df": 7.0}}


@pytest.mark.parametrize("name", list(MOMENT_CASES))
def test_sample_moments(name):
    fam = make_response_family(name)
    p = MOMENT_CASES[name]
    n = 20000
    size = 12.0 if fam.needs_size else None
    draws = fam.sample(np.random.default_rng(5), {k: np.full(n, v) for k, v in p.items()},
                       size=size)
    assert draws.shape == (n,)
    m, v = fam.mean(p, size=size), fam.variance_of(p, size=size)
    se_m = np.sqrt(v / n)
    c2 = (draws - draws.mean()) ** 2
    se_v = np.std(c2) / np.sqrt(n)
    assert abs(draws.mean() - m) < MC_SE * se_m, (draws.mean(), m)
    assert abs(draws.var() - v) < MC_SE * se_v, (draws.var(), v)


def test_zero_inflated_moments_sample_and_cdf():
    fam = ZeroInflated(make_response_family("nbinom2"))
    p = {"mu": 3.0, "zi": 0.3, "phi": 2.0}
    draws = fam.sample(np.random.default_rng(1), {k: np.full(40000, v) for k, v in p.items()})
    m, v = fam.mean(p), fam.variance_of(p)
    assert abs(draws.mean() - m) < MC_SE * np.sqrt(v / draws.size)
    assert abs(np.mean(draws == 0) - (0.3 + 0.7 * (2 / 5) ** 2)) < 0.01
    np.testing.assert_allclose(fam.cdf(0.0, p), 0.3 + 0.7 * (2 / 5) ** 2, rtol=1e-12)
    assert fam.cdf_lower(0.0, p) == 0.0
    tr = Truncated(make_response_family("nbinom2"))
    d = tr.sample(np.random.default_rng(2), {"mu": np.full(40000, 1.2), "phi": 0.7})
    assert d.min() >= 1
    assert abs(d.mean() - tr.mean({"mu": 1.2, "phi": 0.7})) < 0.03


CONTINUOUS = {"gaussian": ({"mu": 0.5, "phi": 2.0}, (-np.inf, np.inf)),
              "Gamma": ({"mu": 2.0, "phi": 0.7}, (0, np.inf)),
              "beta": ({"mu": 0.3, "phi": 3.0}, (0, 1)),
              "lognormal": ({"mu": 2.0, "phi": 3.0}, (0, np.inf)),
              "t": ({"mu": -1.0, "phi": 0.5, "df": 3.0}, (-np.inf, np.inf)),
              "tweedie": ({"mu": 1.5, "phi": 1.2, "power": 1.6}, (0, np.inf))}


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_continuous_density_integrates_to_one_and_cdf(name):
    p, (lo, hi) = CONTINUOUS[name]
    fam = make_response_family(name)
    md = ModelDensity(fam)
    etas = {c: md.links[c].link(np.asarray(v, dtype=float)) for c, v in p.items()}

    def pdf(x):
        return float(np.exp(md.log_density_value(np.array([x]), etas)[0]))

    atom = pdf(0.0) if name == "tweedie" else 0.0      # Tweedie: P(Y = 0)
    mass, _ = integrate.quad(pdf, lo, hi, limit=200, epsabs=1e-12, epsrel=1e-11)
    assert abs(atom + mass - 1.0) < 1e-8
    for x in (0.2, 0.7, 2.5):
        if x >= hi:
            continue
        part = integrate.quad(pdf, lo, x, epsabs=1e-12, epsrel=1e-11)[0]
        np.testing.assert_allclose(fam.cdf(x, p), atom + part, atol=1e-8)
    if name == "tweedie":
        np.testing.assert_allclose(fam.cdf(0.0, p), atom, rtol=1e-12)
        assert fam.cdf_lower(0.0, p) == 0.0


def test_compois_is_poisson_at_unit_dispersion():
    md = ModelDensity(make_response_family("compois"))
    y = np.arange(0.0, 25.0)
    mu = np.full(y.shape, 7.3)
    got = md.evaluate(y, {"mu": np.log(mu), "phi": np.zeros(y.shape)}, order=1)
    np.testing.assert_allclose(got.v, stats.poisson.logpmf(y, mu), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.d1[:, 0], y - mu, atol=1e-9)


# -- descriptions, registry, checks -------------------------------------------------------
def test_registry_names_aliases_and_errors():
    assert make_response_family("Beta_Family").name == "beta"
    assert make_response_family("t_family").name == "t"
    assert make_response_family("GAMMA").name == "Gamma"
    assert make_response_family("ziGamma").name == "ziGamma"
    assert make_response_family("truncated_nbinom2").name == "truncated_nbinom2"
    assert make_response_family(Poisson(link="sqrt")).link.name == "sqrt"
    assert make_response_family("nbinom2").channels == ("mu", "phi")
    assert make_response_family("tweedie").channels == ("mu", "phi", "power")
    zi = ZeroInflated(make_response_family("tweedie"))
    assert zi.channels == ("mu", "zi", "phi", "power")
    with pytest.raises(FormulaError, match=r"unknown family 'negbin'.*nbinom1.*ziGamma"):
        make_response_family("negbin")
    with pytest.raises(FormulaError, match="does not support the 'logit' link"):
        make_response_family("poisson", link="logit")
    with pytest.raises(FormulaError, match="channels are"):
        ModelDensity(make_response_family("poisson"), links={"phi": "log"})


def test_sigma_as_glmmtmb_reports_it():
    assert make_response_family("gaussian").sigma(4.0) == 2.0          # 1.1.5: phi = sigma^2
    assert make_response_family("gaussian", dispersion="sd").sigma(4.0) == 4.0
    assert make_response_family("Gamma").sigma(4.0) == 0.5              # 1 / sqrt(shape)
    assert make_response_family("nbinom2").sigma(4.0) == 4.0
    assert make_response_family("poisson").sigma(4.0) == 1.0
    assert not make_response_family("poisson").has_dispersion


def test_gaussian_sd_convention_density():
    md = ModelDensity(make_response_family("gaussian", dispersion="sd"))
    y = np.array([0.3, -2.0])
    got = md.log_density_value(y, {"mu": np.zeros(2), "phi": np.log([0.5, 3.0])})
    np.testing.assert_allclose(got, stats.norm.logpdf(y, 0, [0.5, 3.0]), rtol=1e-13)


@pytest.mark.parametrize(("family", "y", "pattern"), [
    ("poisson", [1, -2, 3], "'count' has 1 negative values"),
    ("nbinom2", [1, 2.5, 3], "'count' has 1 non-integer values"),
    ("beta", [0.2, 1.0], "outside \\(0, 1\\).*ordbeta"),
    ("Gamma", [1.0, 0.0], "'count' has 1 zeros.*ziGamma"),
    ("ziGamma", [1.0, 0.0], "only with zero-inflation"),
    ("truncated_poisson", [0, 2], "zeros.*only when zero-inflation is added"),
    ("lognormal", [0.0, 2.0], "values <= 0"),
    ("tweedie", [-1.0, 2.0], "negative values"),
    ("gaussian", [np.nan, 1.0], "missing or infinite"),
])
def test_response_checks_name_the_column(family, y, pattern):
    fam = make_response_family(family)
    with pytest.raises(DataError, match=pattern):
        fam.check_response(np.array(y, dtype=float), "count")


def test_response_checks_accept_valid_and_wrapped_data():
    make_response_family("nbinom2").check_response(np.array([0.0, 3.0]), "n")
    hurdle(make_response_family("Gamma")).check_response(np.array([0.0, 3.0]), "n")
    hurdle(make_response_family("poisson")).check_response(np.array([0.0, 3.0]), "n")
    ZeroInflated(make_response_family("beta")).check_response(np.array([0.0, 0.3]), "n")
    with pytest.warns(UserWarning, match="non-integer"):
        make_response_family("poisson").check_response(np.array([1.5]), "n",
                                                       non_integer="warn")
    fam = make_response_family("binomial")
    with pytest.raises(DataError, match="above their numbers of trials"):
        fam.check_response(np.array([3.0]), "s", size=np.array([2.0]))


def test_binomial_response_conventions():
    y, n, w = binomial_response([0.25, 0.5], weights=[4, 2])
    np.testing.assert_allclose((y, n, w), ([1, 1], [4, 2], [1, 1]))
    y, n, w = binomial_response([0, 1, 1], weights=[2, 2, 2])
    np.testing.assert_allclose((y, n, w), ([0, 1, 1], [1, 1, 1], [2, 2, 2]))
    y, n, _ = binomial_response([3, 0], failures=[1, 4])
    np.testing.assert_allclose((y, n), ([3, 0], [4, 4]))


def test_start_values_are_sensible():
    rng = np.random.default_rng(0)
    mu = np.full(4000, 5.0)
    y = rng.negative_binomial(2.0, 2.0 / 7.0, size=4000).astype(float)
    fam = make_response_family("nbinom2")
    assert 1.5 < fam.start_phi(y, mu) < 2.7
    assert np.all(fam.start_mu(y) > 0)
    g = make_response_family("Gamma")
    yg = rng.gamma(3.0, 5.0 / 3.0, size=4000)
    assert 2.5 < g.start_phi(yg, np.full(4000, 5.0)) < 3.5
    assert make_response_family("tweedie").start_extras(y) == {"power": 1.5}


def test_model_density_links_override_and_natural_parameters():
    md = ModelDensity(make_response_family("nbinom2"), links={"mu": "sqrt", "phi": "identity"})
    assert [lk.name for lk in md.links.values()] == ["sqrt", "identity"]
    y = np.array([0.0, 4.0, 9.0])
    etas = {"mu": np.array([1.0, 2.0, 3.5]), "phi": 2.5}
    nat = md.natural_parameters(etas, n=3)
    np.testing.assert_allclose(nat["mu"], [1.0, 4.0, 12.25])
    np.testing.assert_allclose(md.log_density_value(y, etas), nb_ref(y, 2.5, nat["mu"]),
                               rtol=1e-12)
    fd_check(md, y, {"mu": etas["mu"], "phi": np.full(3, 2.5)})
    with pytest.raises(ValueError, match="missing for channels"):
        md.evaluate(y, {"mu": etas["mu"]})

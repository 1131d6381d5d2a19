"""GLMM fits on hard data (issue 12, items 14, 15, 16, 18, 20): constant responses, counts
around 1e9, complete separation, RLRT on a GLMM, very skewed Gamma responses.

Estimates are checked against independent computations: a Laplace approximation written
here from the densities (per-group Newton for the modes, one scalar random intercept), a
direct Nelder-Mead optimization of it, the fit without the separated rows (the limit a
separated fit must reach), and ``mm.glm`` where the random effect vanishes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

import mixedmodels as mm
from mixedmodels.diagnostics.separation import SeparationWarning

#: the oracle evaluates the same approximation with other algebra: agreement to rounding
#: (the Poisson log-density at counts ~1e9 loses ~1e-6 per row to lgamma's cancellation)
ORACLE_RTOL = 1e-7
#: a direct optimization of the oracle must not find a better point than the fit
OPTIMUM_ATOL = 1e-4


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# -- an independent Laplace approximation for one scalar random intercept ----------------------
def _poisson_terms(y, eta, _phi):
    mu = np.exp(eta)
    return y * eta - mu - special.gammaln(y + 1.0), y - mu, -mu


def _gamma_terms(y, eta, phi):
    a = 1.0 / phi
    e = y * np.exp(-eta)
    logp = a * np.log(a) - special.gammaln(a) + (a - 1.0) * np.log(y) - a * eta - a * e
    return logp, -a + a * e, -a * e


def laplace_oracle(terms, y, X, codes, theta, beta, phi=1.0):
    """``-2 log L`` by the Laplace approximation: ``b ~ N(0, theta^2 phi)`` per level (the
    package's relative parameterization), modes by damped Newton, all levels at once."""
    nlev = codes.max() + 1
    s2 = theta * theta * phi
    base = X @ beta

    def h(b):
        logp, d1, d2 = terms(y, base + b[codes], phi)
        val = np.bincount(codes, logp, minlength=nlev) - 0.5 * b * b / s2
        return (val, np.bincount(codes, d1, minlength=nlev) - b / s2,
                np.bincount(codes, d2, minlength=nlev) - 1.0 / s2)

    b = np.zeros(nlev)
    val, g, H = h(b)
    for _ in range(200):
        step = -g / H
        t = np.ones(nlev)
        for _ in range(60):
            new_val, new_g, new_H = h(b + t * step)
            worse = new_val < val - 1e-12 * np.abs(val)
            if not worse.any():
                break
            t = np.where(worse, 0.5 * t, t)
        b = b + t * step
        val, g, H = new_val, new_g, new_H
        if np.max(np.abs(t * step)) < 1e-12:
            break
    logp, _, _ = terms(y, base + b[codes], phi)
    return float(-2.0 * np.sum(logp) + np.sum(b * b) / s2 + np.sum(np.log(-H * s2)))


def _arrays(m, response):
    d = m.design
    return np.asarray(d.y, float), d.X, d.terms[0].grouping.codes


# -- item 20: Gamma with shape 0.1 --------------------------------------------------------------
def skewed_gamma(seed: int, shape: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), 15)
    x = rng.normal(size=g.size)
    mu = np.exp(1.0 + 0.5 * x + 0.5 * rng.normal(size=20)[g])
    return pd.DataFrame({"y": rng.gamma(shape, mu / shape), "x": x, "g": g.astype(str)})


@pytest.mark.parametrize("seed", [0, 1, 8])
def test_gamma_shape_0_1_fits_the_laplace_optimum(seed):
    d = skewed_gamma(seed)
    assert d.y.min() < 1e-20          # responses spread over 20+ orders of magnitude
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.glmer("y ~ x + (1 | g)", d, family="Gamma", link="log")
    assert not [w for w in caught if issubclass(w.category, mm.ConvergenceWarning)]
    phi = m.solution.phi
    assert 0.08 < 1.0 / phi < 0.125          # glmmTMB's shape on the issue's data: 0.102
    y, X, codes = _arrays(m, "y")
    dev = laplace_oracle(_gamma_terms, y, X, codes, m.theta[0], m.fixef.to_numpy(), phi)
    assert m.objective == pytest.approx(dev, rel=ORACLE_RTOL)

    def f(par):
        theta, b0, b1, log_phi = par
        if theta <= 0:
            return np.inf
        return laplace_oracle(_gamma_terms, y, X, codes, theta, np.array([b0, b1]),
                              np.exp(log_phi))

    start = np.r_[m.theta[0], m.fixef.to_numpy(), np.log(phi)]
    res = optimize.minimize(f, start, method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-8, "maxfev": 800})
    assert res.fun >= m.objective - OPTIMUM_ATOL
    np.testing.assert_allclose(res.x, start, atol=2e-3)


# -- item 15: Poisson counts around 1e9 ------------------------------------------------------------
def huge_counts(seed: int, sd: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=96)
    y = rng.poisson(np.exp(np.log(1e9) + 0.3 * x + sd * rng.normal(size=12)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


@pytest.mark.parametrize("seed", [5, 6])
def test_poisson_counts_around_1e9(seed):
    d = huge_counts(seed, 0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.glmer("y ~ x + (1 | g)", d, family="poisson")
        m9 = mm.glmer("y ~ x + (1 | g)", d, family="poisson", nAGQ=9)
    assert not [w for w in caught if issubclass(w.category, mm.MixedModelsWarning)]
    y, X, codes = _arrays(m, "y")
    dev = laplace_oracle(_poisson_terms, y, X, codes, m.theta[0], m.fixef.to_numpy())
    assert m.objective == pytest.approx(dev, rel=ORACLE_RTOL)
    # counts this large make the Laplace approximation exact: quadrature agrees
    assert m9.objective == pytest.approx(m.objective, abs=1e-6)
    assert m9.theta[0] == pytest.approx(m.theta[0], rel=1e-5)
    assert m.fixef["x"] == pytest.approx(0.3, abs=5e-5)      # SE ~4e-6
    assert 0.1 < m.theta[0] < 0.35


def test_poisson_counts_around_1e9_without_group_effect_match_glm():
    d = huge_counts(7, 0.0)
    m = _quiet(mm.glmer, "y ~ x + (1 | g)", d, family="poisson")
    g = mm.glm("y ~ x", d, family="poisson")
    # theta is ~1e-5, the scale the Poisson noise of 1e9 counts can resolve
    assert m.theta[0] < 3e-5
    np.testing.assert_allclose(m.fixef.to_numpy(), np.asarray(g.beta), rtol=1e-8, atol=1e-6)


# -- item 16: complete separation ---------------------------------------------------------------
def separated(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1000
    g = np.repeat(np.arange(50), 20)
    x = rng.normal(size=n)
    z = np.zeros(n)
    z[137] = 1.0                    # a single 1 among 1,000 rows ...
    eta = -0.5 + 0.8 * x + 0.6 * rng.normal(size=50)[g]
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    y[137] = 0                      # ... whose response is 0: the MLE of z is -infinity
    return pd.DataFrame({"y": y, "x": x, "rare_flag": z, "g": g.astype(str)})


@pytest.mark.parametrize("nagq", [0, 1, 5])
def test_binomial_separation_fits_and_names_the_column(nagq):
    d = separated()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.glmer("y ~ x + rare_flag + (1 | g)", d, family="binomial", nAGQ=nagq)
    ours = [w for w in caught if issubclass(w.category, mm.MixedModelsWarning)]
    assert [w.category for w in ours] == [SeparationWarning]
    msg = str(ours[0].message)
    assert "'rare_flag'" in msg and "not meaningful" in msg and "penalized" in msg
    assert "'x'" not in msg
    assert m.fixef["rare_flag"] < -10
    assert m.se["rare_flag"] > 100
    # the limit of the separated fit is the fit without the separated row
    m0 = mm.glmer("y ~ x + (1 | g)", d.drop(index=137), family="binomial", nAGQ=nagq)
    assert m.objective == pytest.approx(m0.objective, abs=1e-6)
    np.testing.assert_allclose(m.theta, m0.theta, atol=1e-5)
    np.testing.assert_allclose(m.fixef[["Intercept", "x"]], m0.fixef, rtol=1e-5)
    np.testing.assert_allclose(m.se[["Intercept", "x"]], m0.se, rtol=1e-3)


def test_poisson_all_zero_level_is_separated():
    rng = np.random.default_rng(11)
    n, g = 600, np.repeat(np.arange(30), 20)
    x = rng.normal(size=n)
    f = np.array(list("abcd"))[rng.integers(0, 4, n)]
    y = rng.poisson(np.exp(0.3 + 0.5 * x + 0.5 * rng.normal(size=30)[g]))
    y[f == "d"] = 0
    d = pd.DataFrame({"y": y, "x": x, "f": f, "g": g.astype(str)})
    tight = {"xtol_abs": 1e-9, "ftol_abs": 1e-12}     # compare optima, not tolerances
    with pytest.warns(SeparationWarning, match=r"'f\[T\.d\]'"):
        m = mm.glmer("y ~ x + f + (1 | g)", d, family="poisson", optimizer_settings=tight)
    assert m.fixef["f[T.d]"] < -10
    m0 = mm.glmer("y ~ x + f + (1 | g)", d[d.f != "d"], family="poisson",
                  optimizer_settings=tight)
    assert m.objective == pytest.approx(m0.objective, abs=1e-5)
    np.testing.assert_allclose(m.fixef[m0.fixef.index], m0.fixef, rtol=1e-4, atol=1e-5)


def test_no_separation_warning_for_a_rare_but_informative_flag():
    d = separated()
    d.loc[137, "y"] = 1
    d.loc[[5, 400], "rare_flag"] = 1.0       # three 1s with mixed responses
    d.loc[5, "y"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        m = _quiet(mm.glmer, "y ~ x + rare_flag + (1 | g)", d, family="binomial")
    assert abs(m.fixef["rare_flag"]) < 5


# -- item 14: constant responses ----------------------------------------------------------------
def issue_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 8)
    return pd.DataFrame({"x": rng.normal(size=96), "g": [f"g{i}" for i in g],
                         "n": rng.integers(2, 9, 96)})


@pytest.mark.parametrize("family,value", [("binomial", 0), ("binomial", 1), ("poisson", 0),
                                          ("poisson", 4), ("Gamma", 2.5),
                                          ("negative_binomial", 0)])
def test_constant_response_is_a_clear_error(family, value):
    d = issue_frame().assign(y0=value)
    with pytest.raises(mm.DataError, match=r"response 'y0' is constant \(every value is "):
        mm.glmer("y0 ~ x + (1 | g)", d, family=family)


def test_constant_cbind_and_glmer_nb():
    d = issue_frame().assign(s=0)
    with pytest.raises(mm.DataError, match="is constant"):
        mm.glmer("cbind(s, n - s) ~ x + (1 | g)", d, family="binomial")
    with pytest.raises(mm.DataError, match="is constant"):
        mm.glmer_nb("s ~ x + (1 | g)", d)


def test_constant_proportion_inside_0_1_still_fits():
    d = issue_frame()
    d = d.assign(s=d.n // 2 * 0 + 1, n2=2)       # 1 success of 2 trials in every row
    m = _quiet(mm.glmer, "cbind(s, n2 - s) ~ x + (1 | g)", d, family="binomial")
    assert abs(m.fixef["Intercept"]) < 1e-4


# -- item 18: rlrt on GLMMs --------------------------------------------------------------------
def test_rlrt_refuses_glmms_before_refitting():
    d = issue_frame()
    rng = np.random.default_rng(2)
    d["yb"] = rng.binomial(1, 0.5, len(d))
    m = _quiet(mm.glmer, "yb ~ x + (1 | g)", d, family="binomial")
    m0 = mm.glm("yb ~ x", d, family="binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # no "refitting with REML" note first
        with pytest.raises(mm.MixedModelsError,
                           match=r"linear mixed models.*m_full is a binomial.*mm\.pb_test.*"
                                 r"mm\.anova"):
            mm.rlrt(m, m0)
    lmm = _quiet(mm.lmer, "x ~ 1 + (1 | g)", d)
    with pytest.raises(mm.MixedModelsError, match="m_reduced is a binomial"):
        mm.rlrt(lmm, m0)

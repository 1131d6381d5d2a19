"""m.sample(): the samplers (nutpie's NUTS, the default, and the builtin numpy NUTS), their
convergence diagnostics, the log posteriors and their gradients, checked against independent
computations (quadrature over theta, importance sampling from the Laplace approximation,
numerical derivatives, ArviZ, AR(1) theory).

nutpie is in the ``test`` extra, so the default sampler runs here (and in CI); the slow
posterior checks run with both samplers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from bayes_oracles import OneThetaPosterior, importance_means
from mixedmodels._threads import blas_threads
from mixedmodels.bayes import convergence as cv
from mixedmodels.bayes.nuts import NutsSettings, run_chain
from mixedmodels.bayes.sample import BACKENDS, SamplingWarning
from mixedmodels.bayes.targets import SamplingError, target_of

#: Relative agreement of the analytic gradient with central differences.
GRAD_RTOL = 1e-4
#: Monte Carlo agreement: |sampler - oracle| within this many standard errors.
MC_SIGMAS = 4.0
#: Quantile check: the oracle's CDF at the sampled quantile within this of its level.
QUANTILE_ATOL = 0.015
#: ArviZ's diagnostics and ours agree to this relative tolerance (edge handling of the
#: autocorrelation sum differs at the 1e-2 level only for strongly correlated chains).
ARVIZ_RTOL = 1e-2


def _fd_grad(f, z, h=1e-6):
    out = np.empty(z.size)
    for j in range(z.size):
        e = np.zeros(z.size)
        e[j] = h * max(1.0, abs(z[j]))
        out[j] = (f(z + e)[0] - f(z - e)[0]) / (2 * e[j])
    return out


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def dyestuff_fit():
    return mm.lmer("Yield ~ 1 + (1|Batch)", mm.datasets.load("Dyestuff"), REML=False)


# -- log posteriors and gradients -------------------------------------------------------
PRIOR_CASES = [
    dict(),
    dict(fixef_prior=mm.priors.normal(sd=10)),
    dict(cov_prior=mm.priors.invwishart(), resid_prior=mm.priors.gamma(shape=2, rate=0.01)),
    dict(resid_prior=mm.priors.point(20.0)),
    dict(cov_prior=mm.priors.wishart(scale=2.0, posterior_scale="sqrt")),
]


@pytest.mark.parametrize("case", range(len(PRIOR_CASES)))
def test_lmm_gradient_matches_differences(sleep, case):
    kw = PRIOR_CASES[case]
    m = (mm.blmer("Reaction ~ Days + (Days|Subject)", sleep, **kw) if kw
         else mm.lmer("Reaction ~ Days + (Days|Subject)", sleep))
    t = target_of(m)
    z = t.z_hat * 1.07 + 0.013
    with blas_threads():
        lp, g = t(z)
        fd = _fd_grad(t, z)
    assert np.isfinite(lp)
    np.testing.assert_allclose(g, fd, rtol=GRAD_RTOL, atol=GRAD_RTOL * np.abs(fd).max())


def test_lmm_gradient_scalar_terms_and_t_prior(sleep):
    d = sleep.assign(g2=(sleep["Days"] % 3).astype(str))
    m = mm.blmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject) + (1|g2)", d,
                 REML=False, cov_prior=mm.priors.gamma(), fixef_prior=mm.priors.t())
    t = target_of(m)
    z = t.z_hat * 0.9 + 0.02
    with blas_threads():
        np.testing.assert_allclose(t(z)[1], _fd_grad(t, z), rtol=GRAD_RTOL, atol=1e-6)


def test_lmm_log_posterior_is_the_likelihood(sleep):
    """Flat priors: log p(z) = loglik(theta, beta, sigma) + log sigma (the log scale's
    Jacobian); at the ML estimate the likelihood is lmer's."""
    m = mm.lmer("Reaction ~ Days + (Days|Subject)", sleep, REML=False)
    t = target_of(m)
    lp, g = t(t.z_hat)
    assert lp == pytest.approx(m.loglik + np.log(m.sigma), rel=1e-10)
    # the ML estimate is stationary except for the Jacobian's 1 in log sigma
    np.testing.assert_allclose(g[:-1], 0.0, atol=1e-3)


@pytest.mark.parametrize("kw", [dict(), dict(fixef_prior=mm.priors.normal(sd=5)),
                                dict(resid_prior=mm.priors.invgamma(shape=2, scale=100))])
def test_blmer_ml_estimate_is_the_posterior_mode(sleep, kw):
    """blme's prior deviance read as a density in (theta, beta, sigma): the ML blmer
    estimate is where the log posterior is stationary (but for the log-sigma Jacobian)."""
    m = mm.blmer("Reaction ~ Days + (Days|Subject)", sleep, REML=False, **kw)
    t = target_of(m)
    inner = t.inner                      # Wishart default: diagonals sampled as log|theta|
    assert t.coords[0].startswith("log_abs_") and not t.coords[1].startswith("log_abs_")
    g = inner(inner.z_hat)[1]
    scale = np.abs(_fd_grad(inner, inner.z_hat * 1.01)).max()
    np.testing.assert_allclose(g[:-1], 0.0, atol=1e-4 * scale)
    assert g[-1] == pytest.approx(1.0, abs=1e-3)


def test_lmm_weights_and_offset():
    rng = np.random.default_rng(3)
    n, g = 60, 6
    d = pd.DataFrame({"x": rng.normal(size=n), "grp": np.repeat(np.arange(g), n // g),
                      "w": rng.uniform(0.5, 2, n), "off": rng.normal(size=n)})
    d["y"] = 1 + d.x + d.off + rng.normal(size=g)[d.grp] + rng.normal(size=n) / np.sqrt(d.w)
    m = mm.lmer("y ~ x + (1|grp)", d, weights="w", offset="off", REML=False)
    t = target_of(m)
    assert t(t.z_hat)[0] == pytest.approx(m.loglik + np.log(m.sigma), rel=1e-10)
    z = t.z_hat + 0.05
    np.testing.assert_allclose(t(z)[1], _fd_grad(t, z), rtol=GRAD_RTOL, atol=1e-7)


def test_glmm_laplace_posterior(sleep):
    """GLMM: log p at the glmer estimate is glmer's Laplace log-likelihood, and the gradient
    (the Laplace engine's, plus the prior's) matches differences."""
    cbpp = mm.datasets.load("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1|herd)"
    m = mm.glmer(f, cbpp, family="binomial")
    t = target_of(m)
    assert t(t.z_hat)[0] == pytest.approx(m.loglik, rel=1e-8)
    mb = mm.bglmer(f, cbpp, family="binomial", fixef_prior=mm.priors.normal(sd=3))
    tb = target_of(mb)
    z = tb.z_hat * 1.05 + 0.01
    np.testing.assert_allclose(tb(z)[1], _fd_grad(tb, z), rtol=GRAD_RTOL, atol=1e-6)


def _nb_data(seed=4, groups=12, per=15):
    """Negative binomial counts (size 2.5) with a random intercept of sd 0.6."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    mu = np.exp(0.8 + 0.4 * x + 0.6 * rng.normal(size=groups)[g])
    y = rng.poisson(mu * rng.gamma(2.5, 1 / 2.5, size=g.size))
    return pd.DataFrame({"y": y, "x": x, "grp": [f"g{k}" for k in g]})


@pytest.fixture(scope="module")
def gamma_fit(sleep):
    return mm.glmer("Reaction ~ Days + (1|Subject)", sleep, family=mm.families.Gamma(link="log"))


@pytest.fixture(scope="module")
def nb_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer_nb("y ~ x + (1|grp)", _nb_data())


def test_gamma_target_is_glmmtmbs_likelihood(sleep):
    """Gamma GLMM: z = [theta, beta, log sigma] with lme4's b = sigma Lambda(theta) u; at
    glmmTMB's ML estimate (an independent fit) log p - log sigma is glmmTMB's Laplace
    log-likelihood and the gradient is (0, ..., 0, 1) (the log-sigma Jacobian); the
    gradient matches differences away from the mode."""
    f = "Reaction ~ Days + (Days|Subject)"
    m = mm.glmer(f, sleep, family=mm.families.Gamma(link="log"))
    t = target_of(m)
    assert t.param_names == ("sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject",
                             "sd_Days|Subject", "sigma", "Intercept", "Days")
    mt = mm.glmmtmb(f, sleep, family="Gamma", link="log")
    z = np.r_[np.asarray(mt.theta) / mt.sigma, mt.fixef.to_numpy(), np.log(mt.sigma)]
    lp, g = t(z)
    assert lp - z[-1] == pytest.approx(mt.loglik, rel=1e-9)
    np.testing.assert_allclose(g, np.r_[np.zeros(t.dim - 1), 1.0], atol=1e-4)
    # the reported parameters: lme4's VarCorr sds (sigma * theta) and sigma
    P = t.parameters(z[None, :])[0]
    assert P[3] == pytest.approx(mt.sigma)
    assert P[0] == pytest.approx(mt.sigma * z[0])
    z2 = z * 1.03 + 0.01
    np.testing.assert_allclose(t(z2)[1], _fd_grad(t, z2), rtol=GRAD_RTOL, atol=1e-4)


#: glmer's Laplace approximation (Fisher weights for the NB's non-canonical log link) and
#: glmmTMB's (observed Hessian) differ by this much in log-likelihood on the NB data here.
LAPLACE_KIND_ATOL = 0.05


def test_negative_binomial_target(nb_fit):
    """glmer_nb: z = [theta, beta, log alpha], alpha = 1 / nb_theta. At glmmTMB's nbinom2
    estimate (an independent fit) log p - log alpha is glmmTMB's log-likelihood and the
    gradient is (0, ..., 0, 1); at glmer_nb's, it is close to glmer_nb's (another Laplace
    Hessian); the gradient matches differences."""
    t = target_of(nb_fit)
    assert t.param_names == ("sd_(Intercept)|grp", "nb_theta", "Intercept", "x")
    assert t.z_hat[-1] == pytest.approx(-np.log(nb_fit.family.theta))
    mt = mm.glmmtmb("y ~ x + (1|grp)", _nb_data(), family="nbinom2")
    z = np.r_[np.asarray(mt.theta), mt.fixef.to_numpy(), -np.log(mt.sigma)]
    lp, g = t(z)
    assert lp - z[-1] == pytest.approx(mt.loglik, rel=1e-9)
    np.testing.assert_allclose(g, np.r_[np.zeros(t.dim - 1), 1.0], atol=1e-4)
    assert t.parameters(z[None, :])[0, 1] == pytest.approx(mt.sigma)
    lp_hat = t(t.z_hat)[0] - t.z_hat[-1]
    assert lp_hat == pytest.approx(nb_fit.loglik, abs=LAPLACE_KIND_ATOL)
    z = t.z_hat * 1.05 + 0.02
    np.testing.assert_allclose(t(z)[1], _fd_grad(t, z), rtol=GRAD_RTOL, atol=1e-5)
    # a fixed shape (glmer with family=NegativeBinomial(theta)) is not a coordinate
    m = mm.glmer("y ~ x + (1|grp)", _nb_data(), family=mm.families.NegativeBinomial(2.0))
    tf = target_of(m)
    assert tf.dim == 3 and tf.param_names == ("sd_(Intercept)|grp", "Intercept", "x")
    assert tf(tf.z_hat)[0] == pytest.approx(m.loglik, abs=LAPLACE_KIND_ATOL)


def test_unsupported_fits_say_why(sleep):
    cbpp = mm.datasets.load("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1|herd)"
    m = mm.glmer(f, cbpp, family="binomial", nAGQ=5)
    with pytest.raises(SamplingError, match=r"nAGQ=5.*exact gradient.*refit with nAGQ=1"):
        m.sample(draws=10, warmup=10, chains=1)
    d = sleep.assign(y=sleep["Reaction"] / 100)
    mg = mm.glmer("y ~ Days + (1|Subject)", d, family=mm.families.Gaussian(link="log"))
    with pytest.raises(SamplingError, match="only the Gamma and the negative binomial"):
        mg.sample(draws=10, warmup=10, chains=1)


def test_glmm_ranef_draws_refused():
    cbpp = mm.datasets.load("cbpp")
    m = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1|herd)", cbpp, family="binomial")
    with pytest.raises(ValueError, match="LMM fits only"):
        m.sample(draws=5, warmup=5, chains=1, ranef=True)


@pytest.mark.parametrize("kw, match", [
    (dict(draws=0), "draws"), (dict(chains=1.5), "chains"), (dict(warmup=-1), "warmup"),
    (dict(target_accept=1.2), "target_accept"), (dict(draws=True), "draws"),
    (dict(seed="abc"), "seed"), (dict(seed=-3), "seed"),
])
def test_bad_arguments(dyestuff_fit, kw, match):
    with pytest.raises(ValueError, match=match):
        dyestuff_fit.sample(**kw)


def test_ranef_draws_given_parameters(sleep):
    """At the estimates, draws of b | theta, beta, sigma, y have the conditional modes as
    mean and lme4's conditional sds (condVar) as sds."""
    m = mm.lmer("Reaction ~ Days + (Days|Subject)", sleep)
    t = target_of(m)
    rng = np.random.default_rng(0)
    nsim = 2000
    B = np.array([t.ranef(t.z_hat, rng) for _ in range(nsim)])
    re = m.ranef(cond_var=True)["Subject"]
    modes = re[["Intercept", "Days"]].to_numpy().ravel()
    sds = re[["Intercept_condsd", "Days_condsd"]].to_numpy().ravel()
    np.testing.assert_allclose(B.mean(axis=0), modes, atol=MC_SIGMAS * sds.max() / np.sqrt(nsim))
    np.testing.assert_allclose(B.std(axis=0), sds, rtol=0.1)


# -- the sampler on known targets -------------------------------------------------------
def test_nuts_correlated_gaussian():
    """A correlated 3-d Gaussian on very different scales: means and covariance to Monte
    Carlo error, with the dense metric adapted in warmup."""
    sd = np.array([1.0, 10.0, 0.1])
    R = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 1.0]])
    S = sd[:, None] * R * sd[None, :]
    P = np.linalg.inv(S)
    mu = np.array([3.0, -2.0, 0.5])

    def f(x):
        r = x - mu
        return -0.5 * r @ P @ r, -P @ r

    outs = [run_chain(f, np.zeros(3), 600, 400, np.random.default_rng(i)) for i in range(2)]
    X = np.stack([o.x for o in outs])             # (chains, draws, d)
    for j in range(3):
        a = X[:, :, j]
        assert abs(a.mean() - mu[j]) < MC_SIGMAS * cv.mcse_mean(a)
        assert cv.r_hat(a) < 1.02
    C = np.cov(X.reshape(-1, 3).T)
    np.testing.assert_allclose(np.sqrt(np.diag(C)), np.sqrt(np.diag(S)), rtol=0.1)
    assert not any(o.diverging.any() for o in outs)


def test_nuts_settings_validate():
    with pytest.raises(ValueError, match="max_depth"):
        NutsSettings(max_depth=0)


# -- diagnostics ---------------------------------------------------------------------------
def _ar1(phi, chains=4, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((chains, n))
    x = np.zeros((chains, n))
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi ** 2)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_ess_matches_ar1_theory(phi):
    """ESS of an AR(1) chain is N (1 - phi) / (1 + phi)."""
    x = _ar1(phi, seed=int(10 * phi))
    theory = x.size * (1 - phi) / (1 + phi)
    assert cv.ess_mean(x) == pytest.approx(theory, rel=0.15)
    assert cv.ess_bulk(x) == pytest.approx(theory, rel=0.15)
    assert cv.r_hat(x) < 1.02           # agreeing chains (noise ~ 1/ESS)


def test_r_hat_sees_disagreeing_chains():
    x = _ar1(0.3)
    x[0] += 1.0
    assert cv.r_hat(x) > 1.05
    y = _ar1(0.3)
    y[1] *= 3.0                                    # same centre, different scale
    assert cv.r_hat(y) > 1.05


def test_diagnostics_match_arviz():
    az = pytest.importorskip("arviz")
    for phi in (0.0, 0.6, 0.9):
        x = np.exp(_ar1(phi, n=500, seed=3) / 2)
        x[1] += 0.05
        assert cv.r_hat(x) == pytest.approx(float(az.rhat(x)), rel=1e-10)
        assert cv.ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")),
                                               rel=ARVIZ_RTOL)
        assert cv.ess_mean(x) == pytest.approx(float(az.ess(x, method="mean")),
                                               rel=ARVIZ_RTOL)


# -- m.sample() end to end (small) ----------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_result(dyestuff_fit, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        s = dyestuff_fit.sample(draws=60, chains=2, warmup=60, seed=5, ranef=True,
                                backend=backend)
    assert s.backend == backend
    names = ["sd_(Intercept)|Batch", "sigma", "Intercept"]
    assert list(s.draws.columns) == ["chain", "draw", *names]
    assert list(dyestuff_fit.confint(method="wald").index)[-1] == names[-1]
    assert s.draws.shape == (120, 5)
    assert (s.draws["sd_(Intercept)|Batch"] >= 0).all() and (s.draws["sigma"] > 0).all()
    summ = s.summary()
    assert list(summ.columns) == ["mean", "sd", "2.5%", "97.5%", "mcse_mean", "r_hat",
                                  "ess_bulk", "ess_tail"]
    assert list(summ.index) == names
    ci = s.confint(0.9)
    assert (ci["lower"] < ci["upper"]).all()
    assert s.ranef_draws.shape == (120, 2 + 6)
    assert list(s.ranef_draws.columns[2:4]) == ["Intercept|Batch[A]", "Intercept|Batch[B]"]
    mass = s.boundary_mass(0.05)
    assert 0.0 <= mass.iloc[0] <= 1.0
    # same seed, same draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        s2 = dyestuff_fit.sample(draws=60, chains=2, warmup=60, seed=5, backend=backend)
        s3 = dyestuff_fit.sample(draws=60, chains=2, warmup=60, seed=6, backend=backend)
    pd.testing.assert_frame_equal(s.draws, s2.draws)
    assert not np.allclose(s.draws["sigma"], s3.draws["sigma"])
    # the chains start apart (dispersed starting points) and are different chains
    a = s.array("sigma")
    assert not np.allclose(a[0], a[1])
    assert "PosteriorSamples" in repr(s)
    with pytest.raises(KeyError, match="no parameter"):
        s.array("nope")
    with pytest.raises(ValueError, match="level"):
        s.summary(level=1.5)


def test_missing_nutpie_says_how_to_install(dyestuff_fit, monkeypatch):
    """Without the bayes extra the default sampler is refused with the pip line and the
    builtin alternative, before any work; backend='builtin' still samples."""
    import sys

    monkeypatch.setitem(sys.modules, "nutpie", None)      # import nutpie -> ImportError
    with pytest.raises(ImportError, match=r"mixedmodels\[bayes\].*backend='builtin'"):
        dyestuff_fit.sample(draws=10, chains=1, warmup=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        s = dyestuff_fit.sample(draws=10, chains=1, warmup=10, seed=1, backend="builtin")
    assert s.draws.shape == (10, 5)


def test_unknown_backend(dyestuff_fit):
    with pytest.raises(ValueError, match="backend must be one of"):
        dyestuff_fit.sample(draws=10, backend="stan")


def test_to_arviz(dyestuff_fit):
    pytest.importorskip("arviz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        s = dyestuff_fit.sample(draws=30, chains=2, warmup=30, seed=1)
    idata = s.to_arviz()
    assert idata.posterior["sigma"].shape == (2, 30)


# -- the posterior against independent computations (slow: 4 x 1000 draws) ---------------
def _check_one_theta(s, oracle, sd_name):
    means = oracle.means()
    summ = s.summary()
    for name, key in ((sd_name, "sd"), ("sigma", "sigma"), ("Intercept", "beta0")):
        row = summ.loc[name]
        assert abs(row["mean"] - means[key]) < MC_SIGMAS * row["mcse_mean"], name
        assert row["r_hat"] < 1.01 and row["ess_bulk"] > 400, name
    for q, col in ((0.025, "2.5%"), (0.975, "97.5%")):
        assert oracle.cdf_sd(summ.loc[sd_name, col]) == pytest.approx(q, abs=QUANTILE_ATOL)
        assert oracle.cdf_sigma(summ.loc["sigma", col]) == pytest.approx(q,
                                                                           abs=QUANTILE_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_dyestuff_posterior_matches_quadrature(dyestuff_fit, backend):
    s = dyestuff_fit.sample(draws=1000, chains=4, warmup=1000, seed=2024, backend=backend)
    _check_one_theta(s, OneThetaPosterior(dyestuff_fit.design), "sd_(Intercept)|Batch")
    assert s.divergences == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_dyestuff2_chains_cross_zero(backend):
    """Dyestuff2's ML variance is exactly 0: the chains pass through theta = 0 (both signs
    are visited), and the posterior mass near zero is the quadrature's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Yield ~ 1 + (1|Batch)", mm.datasets.load("Dyestuff2"), REML=False)
    s = m.sample(draws=1000, chains=4, warmup=1000, seed=7, backend=backend)
    oracle = OneThetaPosterior(m.design)
    _check_one_theta(s, oracle, "sd_(Intercept)|Batch")
    theta = s.unconstrained["theta[0]"].to_numpy().reshape(4, -1)
    assert all((c > 0).mean() > 0.05 and (c < 0).mean() > 0.05 for c in theta)
    p = oracle.prob_theta_below(0.05)
    mass = s.boundary_mass(0.05).iloc[0]
    assert abs(mass - p) < MC_SIGMAS * np.sqrt(p * (1 - p) / s.summary()["ess_tail"].min())


def _mirror(a, b):
    def f(Z):
        Z = Z.copy()
        Z[:, 0] *= a
        Z[:, 1] *= a
        Z[:, 2] *= b
        return Z
    return f


def _fold(Z):
    Z = Z.copy()
    s = np.sign(Z[:, 0])
    Z[:, 0] *= s
    Z[:, 1] *= s
    Z[:, 2] = np.abs(Z[:, 2])
    return Z


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sleepstudy_posterior_matches_importance_sampling(sleep, backend):
    m = mm.lmer("Reaction ~ Days + (Days|Subject)", sleep)
    s = m.sample(draws=1000, chains=4, warmup=1000, seed=11, backend=backend)
    t = target_of(m)
    with blas_threads():
        mean, se, ess = importance_means(
            t, _fold, [_mirror(a, b) for a in (1, -1) for b in (1, -1)], nsim=8000)
    assert ess > 1000
    summ = s.summary()
    for j, name in enumerate(t.param_names):
        row = summ.loc[name]
        tol = MC_SIGMAS * np.hypot(row["mcse_mean"], se[j])
        assert abs(row["mean"] - mean[j]) < tol, name
        assert row["r_hat"] < 1.01 and row["ess_bulk"] > 400, name


def test_bayes_benchmark_table_renders():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bayes_bench import markdown

    row = {"wall_s": 2.0, "cpu_s": 1.0, "n_evals": 10, "min_ess_bulk": 500.0,
           "max_r_hat": 1.001, "ess_per_cpu_s": 500.0}
    emcee = {"cpu_s": 4.0, "min_ess": 200.0, "ess_per_cpu_s": 50.0, "emcee": "3.1"}
    md = markdown({"machine": "x",
                   "models": {"Dyestuff": {"nutpie": row, "builtin": row, "emcee": emcee,
                                           "blackjax": {**emcee, "blackjax": "1.7",
                                                        "max_r_hat": 1.002}}},
                   "rstanarm": {"Dyestuff": {"wall_s": 3.0, "cpu_s": 2.5, "min_n_eff": 900,
                                             "rstanarm": "2.21"}}})
    assert "| Dyestuff | nutpie | 2.0 | 1.0 | 10 | 500 | 1.001 | 500 | 50000 |" in md
    assert "| Dyestuff | builtin | 2.0 | 1.0 | 10 | 500 | 1.001 | 500 | 50000 |" in md
    assert "| Dyestuff | emcee 3.1 |  | 4.0 |  | 200 |  | 50 |  |" in md
    assert "| Dyestuff | blackjax 1.7 |  | 4.0 |  | 200 | 1.002 | 50 |  |" in md
    assert "| Dyestuff | rstanarm 2.21 | 3.0 | 2.5 |  | 900 |  | 360 |  |" in md


def _flip_first(sign):
    def f(Z):
        Z = Z.copy()
        Z[:, 0] *= sign
        return Z
    return f


def _check_one_scalar_term(m, s):
    """The draws ``s`` of a GLMM with one scalar random-effects term (theta[0]) against
    self-normalized importance sampling from the Laplace approximation of the same
    density, folded over the sign of theta[0]."""
    t = target_of(m)

    def fold(Z):
        Z = Z.copy()
        Z[:, 0] = np.abs(Z[:, 0])
        return Z

    with blas_threads():
        mean, se, ess = importance_means(t, fold, [_flip_first(1), _flip_first(-1)],
                                         nsim=6000)
    assert ess > 1000
    summ = s.summary()
    for j, name in enumerate(t.param_names):
        row = summ.loc[name]
        assert abs(row["mean"] - mean[j]) < MC_SIGMAS * np.hypot(row["mcse_mean"], se[j]), name
        assert row["r_hat"] < 1.01 and row["ess_bulk"] > 400, name


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_cbpp_laplace_posterior_matches_importance_sampling(backend):
    """GLMM: the draws of the Laplace posterior (binomial, one scalar term) against
    importance sampling from the same density."""
    cbpp = mm.datasets.load("cbpp")
    m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", cbpp,
                 family="binomial")
    _check_one_scalar_term(m, m.sample(draws=1000, chains=4, warmup=1000, seed=5,
                                       backend=backend))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["gamma", "nb"])
def test_dispersion_glmm_posterior_matches_importance_sampling(case, gamma_fit, nb_fit):
    """Gamma and negative binomial GLMMs: the draws (nutpie) of the Laplace posterior in
    (theta, beta, log scale) against importance sampling from the same density."""
    m = gamma_fit if case == "gamma" else nb_fit
    _check_one_scalar_term(m, m.sample(draws=1000, chains=4, warmup=1000, seed=3))

"""glmer's exact Laplace (and nAGQ = 0) gradient with structured covariance terms: AR(1),
compound symmetry, Ornstein-Uhlenbeck, the spatial correlations and a known matrix, each
checked against central finite differences of the deviance itself on simulated data; the
gradient-based fit against the derivative-free one; Toeplitz terms keep BOBYQA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.objective.glmm_gradient import (
    LaplaceGradient,
    Stage0Gradient,
    gradient_supported,
    stage0_supported,
)

# the finite differences, tolerances (GRAD_RTOL: relative to max(1, max |difference|),
# which carry ~1e-6; a wrong term shows as 1e-2 to 1) and the one-BLAS-thread fixture of
# the unstructured models' gradient tests
from test_glmer_gradient import (  # noqa: F401  (_one_blas_thread: an autouse fixture)
    GRAD_RTOL,
    OBJECTIVE_SLACK,
    _fd,
    _one_blas_thread,
    _quiet,
    _rel_error,
)

#: Covariance parameters and fixed effects of the two fits (absolute): both stop within
#: ~1e-4 of the optimum's flat directions.
PARAM_ATOL = 2e-3
#: The gradient's deviance against the objective's own evaluation (relative): the same
#: PIRLS modes from another start; the Gaussian spatial correlation's ill-conditioned
#: factor leaves ~1e-12 between them.
VALUE_RTOL = 1e-10


def _longitudinal(seed: int = 11, subjects: int = 24, times: int = 5) -> pd.DataFrame:
    """Counts and binomial successes with an AR(1) subject effect over the times."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(times), np.arange(times)))
    cov = 0.5 * 0.6 ** lag
    b = rng.multivariate_normal(np.zeros(times), cov, size=subjects)
    s = np.repeat(np.arange(subjects), times)
    t = np.tile(np.arange(times), subjects)
    x = rng.standard_normal(s.size)
    eta = 0.4 + 0.3 * x + b[s, t]
    return pd.DataFrame({
        "cnt": rng.poisson(np.exp(eta)),
        "k": rng.binomial(6, 1.0 / (1.0 + np.exp(-(eta - 0.4)))),
        "x": x, "time": t, "tt": 0.7 * t + 0.1 * (t % 2),
        "subj": [f"s{i:02d}" for i in s],
    })


def _spatial(seed: int = 5, n: int = 40) -> pd.DataFrame:
    """The FAQ's spatial Poisson model: eta ~ MVN(a + b x, s^2 exp(-d / r))."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, size=(n, 2))
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    eta = rng.multivariate_normal(np.zeros(n), 0.6 * np.exp(-d / 2.5))
    x1 = rng.standard_normal(n)
    return pd.DataFrame({"cnt": rng.poisson(np.exp(0.8 + 0.4 * x1 + eta)), "x1": x1,
                         "px": xy[:, 0], "py": xy[:, 1],
                         "site": [f"p{i:02d}" for i in range(n)]})


def _known(seed: int = 2, species: int = 12, per: int = 4):
    """Counts on species related by a known (phylogenetic-like) correlation matrix."""
    rng = np.random.default_rng(seed)
    names = [f"sp{i:02d}" for i in range(species)]
    pos = np.arange(species)
    K = 0.3 + 0.7 * 0.5 ** np.abs(np.subtract.outer(pos, pos))
    b = rng.multivariate_normal(np.zeros(species), 0.4 * K)
    sp = np.repeat(np.arange(species), per)
    x = rng.standard_normal(sp.size)
    data = pd.DataFrame({"cnt": rng.poisson(np.exp(0.5 + 0.3 * x + b[sp])), "x": x,
                         "sp": [names[i] for i in sp]})
    return data, {"K": pd.DataFrame(K, index=names, columns=names)}


@pytest.fixture(scope="module")
def datasets():
    data, mats = _known()
    return {"long": (_longitudinal(), None), "spatial": (_spatial(), None),
            "known": (data, mats)}


CASES = {
    "ar1 Poisson": ("cnt ~ x + ar1(0 + factor(time) | subj)", "long", "poisson"),
    "hetar1 Poisson": ("cnt ~ x + ar1(0 + factor(time) | subj, hom = FALSE)", "long",
                       "poisson"),
    "intercept + ar1 on one factor": ("cnt ~ x + (1 | subj) + ar1(0 + factor(time) | subj)",
                                      "long", "poisson"),
    "cs binomial": ("cbind(k, 6 - k) ~ x + cs(0 + factor(time) | subj)", "long",
                    "binomial"),
    "homcs binomial": ("cbind(k, 6 - k) ~ x + homcs(0 + factor(time) | subj)", "long",
                       "binomial"),
    "homdiag Poisson": ("cnt ~ x + diag(0 + factor(time) | subj, hom = TRUE)", "long",
                        "poisson"),
    "ou Poisson": ("cnt ~ x + ou(0 + pos(tt) | subj)", "long", "poisson"),
    "exp spatial Poisson": ("cnt ~ x1 + exp(0 + pos(px, py) | site)", "spatial",
                            "poisson"),
    "gau spatial Poisson": ("cnt ~ x1 + gau(0 + pos(px, py) | site)", "spatial", "poisson"),
    "matern spatial Poisson": ("cnt ~ x1 + mat(0 + pos(px, py) | site)", "spatial",
                               "poisson"),
    "propto known matrix": ("cnt ~ x + propto(1 | sp, K)", "known", "poisson"),
}


def _objective(case, datasets, nagq=1):
    formula, which, family = CASES[case]
    data, mats = datasets[which]
    fam = make_family(family, None)
    design = _quiet(glmm_design, formula, data, fam, covariance_matrices=mats)
    return GLMMObjective(design, fam, nagq)


def _theta_point(obj, seed=1):
    """A covariance point away from the start and the optimum (log sds near -0.4,
    correlation parameters near 0.5)."""
    rng = np.random.default_rng(seed)
    theta = obj.design.theta0().astype(float)
    return theta * 0.7 + 0.3 + 0.1 * rng.standard_normal(theta.size)


@pytest.mark.parametrize("case", list(CASES))
def test_structured_laplace_gradient_matches_finite_differences(case, datasets):
    obj = _objective(case, datasets)
    assert gradient_supported(obj)
    theta = _theta_point(obj)
    s = obj.solve0(theta)
    x = obj.join(s.theta, s.beta + 0.05)
    f, g = LaplaceGradient(obj)(x)
    assert np.isfinite(f)
    assert f == pytest.approx(obj(x), rel=VALUE_RTOL)
    assert _rel_error(g, _fd(obj, x)) < GRAD_RTOL, (g, _fd(obj, x))


@pytest.mark.parametrize("case", ["hetar1 Poisson", "cs binomial", "exp spatial Poisson",
                                  "propto known matrix"])
def test_structured_stage0_gradient_matches_finite_differences(case, datasets):
    obj = _objective(case, datasets, nagq=0)
    assert stage0_supported(obj)
    theta = _theta_point(obj, seed=2)
    f, g = Stage0Gradient(obj)(theta)
    assert f == pytest.approx(obj.stage0(theta), rel=VALUE_RTOL)
    assert _rel_error(g, _fd(obj.stage0, theta)) < GRAD_RTOL


@pytest.mark.parametrize("case", [
    "ar1 Poisson",
    pytest.param("intercept + ar1 on one factor", marks=pytest.mark.slow),
    pytest.param("exp spatial Poisson", marks=pytest.mark.slow)])
def test_structured_gradient_fit_reaches_the_derivative_free_optimum(case, datasets):
    formula, which, family = CASES[case]
    data, mats = datasets[which]
    kw = {"family": family, "covariance_matrices": mats}
    # (optimizer="gradient": glmer's own two stages; "auto" takes the engine's route,
    # fitting/glmm_structured, tested in test_gdoor.py)
    fast = _quiet(mm.glmer, formula, data, optimizer="gradient", **kw)
    slow = _quiet(mm.glmer, formula, data, optimizer="bobyqa", **kw)
    assert fast.opt.optimizer.startswith("gradient:")
    assert fast.objective <= slow.objective + OBJECTIVE_SLACK
    np.testing.assert_allclose(fast.beta, slow.beta, atol=PARAM_ATOL)
    np.testing.assert_allclose(fast.theta, slow.theta, atol=PARAM_ATOL)
    evals = {r["stage"]: r["evaluations"] for r in fast.fit_log}
    evals_slow = {r["stage"]: r["evaluations"] for r in slow.fit_log}
    assert evals["Laplace"] < evals_slow["Laplace"]
    assert fast.convergence.converged


def test_toeplitz_keeps_the_derivative_free_fit(datasets):
    data, _ = datasets["long"]
    formula = "cnt ~ x + homtoep(0 + factor(time) | subj)"
    obj = GLMMObjective(_quiet(glmm_design, formula, data, make_family("poisson", None)),
                        make_family("poisson", None), 1)
    assert not gradient_supported(obj) and not stage0_supported(obj)
    with pytest.raises(ValueError, match="Toeplitz"):
        _quiet(mm.glmer, formula, data, family="poisson", optimizer="gradient")

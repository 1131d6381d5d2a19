r"""Log posterior densities of fitted models in the sampler's coordinates.

A *target* knows a fit's posterior ``log p(z | y)`` (up to a constant) with its exact
gradient, the point ``z`` of the fit's estimates, and how draws of ``z`` become the
reported parameters (named as ``confint``'s rows: ``sd_(Intercept)|Subject``,
``cor_Days.(Intercept)|Subject``, ``sigma``, then the fixed effects).

* LMM (lmer, blmer): ``z = [theta, beta, log sigma]``, the random effects integrated out
  exactly (:mod:`.lmm_density`).
* GLMM (glmer, bglmer; families without a dispersion parameter): ``z = [theta, beta]``,
  the random effects integrated out by the Laplace approximation of the general Laplace
  engine (:class:`~mixedmodels.objective.laplace.LaplaceObjective`, whose gradient is
  exact for that approximation). For lme4's families the engine's ``theta`` is lme4's:
  ``b = Lambda(theta) u``.

The priors are the fit's, with blme's prior deviance read as ``-2 log`` of a density in
lme4's parameters ``(theta, beta, sigma)``: the posterior mode (flat priors: the maximum
likelihood estimate) is then the blmer / bglmer ML estimate. Parameters without a prior
have a flat one on that scale (flat in ``theta``, ``beta`` and ``sigma``).

* GLMM with a dispersion or shape parameter (glmer's Gamma, glmer_nb):
  ``z = [theta, beta, log s]`` (:mod:`.dispersion_target`), flat priors only.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import MixedModelsError
from ..design.lhs import binomial_parts
from ..families.density import ModelDensity
from ..families.registry import make_response_family
from ..inference.varpar import SdCorMap
from ..objective.laplace import LaplaceObjective
from ..objective.laplace.parameters import make_layout
from .dispersion_target import DispersionGLMMTarget
from .lmm_density import LMMLogDensity
from .prior_gradient import prior_deviance_gradient

__all__ = ["GLMMTarget", "LMMTarget", "SamplingError", "target_of"]


class SamplingError(MixedModelsError):
    """A fit that cannot be sampled (what is unsupported and what to do instead)."""


class _Target:
    """What both targets share: the sd columns of the reported parameters."""

    sdcor = None
    has_sigma_scale = False     # sds reported relative to sigma (LMM)

    def sd_names(self) -> tuple[str, ...]:
        return tuple(n for n, k in zip(self.sdcor.names, self.sdcor.kinds, strict=True)
                     if k == "sd")

    def relative_sd(self, Z: np.ndarray) -> np.ndarray:
        """Random-effect sds per draw: relative to sigma for an LMM (the scale of lme4's
        singularity check), on the link scale for a GLMM."""
        mask = np.array([k == "sd" for k in self.sdcor.kinds])
        P = self.parameters(Z)[:, :len(self.sdcor.names)]
        return P[:, mask] / P[:, -1:] if self.has_sigma_scale else P[:, mask]


class LMMTarget(_Target):
    """Posterior of an LMM fit: ``z = [theta, beta, log sigma]``."""

    approximation = "exact"
    has_sigma_scale = True

    def __init__(self, m):
        self.design = m.design
        self.priors = getattr(m, "priors", None)
        self.density = LMMLogDensity(m.design, self.priors)
        self.dim = self.density.dim
        self.k, self.p = m.design.n_theta, m.design.p
        self.has_sigma = self.density.fixed_sigma is None
        self.coords = (tuple(f"theta[{j}]" for j in range(self.k)) + tuple(m.fixef.index)
                       + (("log_sigma",) if self.has_sigma else ()))
        self.sdcor = SdCorMap(m.design, has_sigma=True)
        self.param_names = self.sdcor.names + tuple(m.fixef.index)
        self.z_hat = self.density.join(np.asarray(m.theta, float), np.asarray(m.beta, float),
                                       float(m.sigma))

    def __call__(self, z) -> tuple[float, np.ndarray]:
        return self.density(z)

    @property
    def n_evals(self) -> int:
        return self.density.n_evals

    def parameters(self, Z: np.ndarray) -> np.ndarray:
        """Reported parameters (rows of ``Z`` are draws of ``z``)."""
        out = np.empty((Z.shape[0], len(self.param_names)))
        for i, z in enumerate(Z):       # a loop over draws, after sampling
            theta, beta, sigma = self.density.split(z)
            out[i] = np.r_[self.sdcor.from_theta(theta, sigma), beta]
        return out

    def ranef(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``b | theta, beta, sigma, y``: ``u ~ N(M^{-1} c, sigma^2 M^{-1})``."""
        d = self.density
        theta, beta, sigma = d.split(z)
        lam = d._lambda(theta)
        M = lam.T @ d.A @ lam + np.eye(d.q)
        L = np.linalg.cholesky(M)
        c = lam.T @ (d.ZWy - d.ZWX @ beta)
        mean = np.linalg.solve(L.T, np.linalg.solve(L, c))
        u = mean + sigma * np.linalg.solve(L.T, rng.standard_normal(d.q))
        return lam @ u


class GLMMTarget(_Target):
    """Laplace posterior of a GLMM fit without a dispersion parameter: ``z = [theta, beta]``."""

    approximation = "laplace"

    def __init__(self, m):
        design = m.design
        fam = make_response_family(m.family)
        _check_glmm(m, fam)
        self.design = design
        self.priors = getattr(m, "priors", None)
        if self.priors is not None and not self.priors.any:
            self.priors = None
        comps = design.components
        self.density = ModelDensity(fam)
        y, size, w = _response_parts(design, fam)
        self.layout = make_layout(comps)
        self.objective = LaplaceObjective(self.density, y, comps, self.layout, weights=w,
                                          size=size)
        self.k, self.p = design.n_theta, design.p
        self.dim = self.k + self.p
        self.coords = tuple(f"theta[{j}]" for j in range(self.k)) + tuple(m.fixef.index)
        self.sdcor = SdCorMap(design, has_sigma=False)
        self.param_names = self.sdcor.names + tuple(m.fixef.index)
        self.z_hat = np.r_[np.asarray(m.theta, float), np.asarray(m.beta, float)]

    def _x(self, z):
        return self.layout.pack({"theta.cond": z[:self.k], "beta.cond": z[self.k:]})

    def __call__(self, z) -> tuple[float, np.ndarray]:
        z = np.asarray(z, dtype=float)
        x = self._x(z)
        F, g = self.objective.value_and_gradient(x)
        if not math.isfinite(F) or not np.all(np.isfinite(g)):
            return -math.inf, np.zeros(self.dim)
        gt = self.layout.get(g, "theta.cond")
        gb = self.layout.get(g, "beta.cond")
        lp = -0.5 * F
        grad = -0.5 * np.r_[gt, gb]
        if self.priors is not None:
            D, pt, pb, _ = prior_deviance_gradient(self.priors, self.design, z[:self.k],
                                                   z[self.k:], 1.0)
            if not math.isfinite(D):
                return -math.inf, np.zeros(self.dim)
            lp -= 0.5 * D
            grad = grad - 0.5 * np.r_[pt, pb]
        return float(lp), grad

    @property
    def n_evals(self) -> int:
        return self.objective.n_evals

    def parameters(self, Z: np.ndarray) -> np.ndarray:
        out = np.empty((Z.shape[0], len(self.param_names)))
        for i, z in enumerate(Z):
            out[i] = np.r_[self.sdcor.from_theta(z[:self.k], 1.0), z[self.k:]]
        return out

    ranef = None


#: glmer families with a dispersion or shape parameter that the sampler handles
#: (:mod:`.dispersion_target`).
DISPERSION_FAMILIES = ("Gamma", "negative_binomial")


def _check_glmm(m, fam) -> None:
    """Refuse, with the reason and the alternative, the GLMM fits the sampler cannot
    represent: nAGQ > 1, priors together with a dispersion parameter, and families with a
    dispersion parameter other than the Gamma and negative binomial."""
    name = m.family.name
    if getattr(m, "nAGQ", 1) > 1:
        raise SamplingError(
            f"the fit used nAGQ={m.nAGQ}: the sampler's log density is the Laplace "
            "approximation (nAGQ=1), whose exact gradient NUTS follows (its targets do "
            "not include adaptive Gauss-Hermite quadrature); refit with nAGQ=1 "
            "to sample, or use confint(method='profile') or confint(method='boot') on "
            "the quadrature fit")
    dispersion = m.family.has_dispersion or name in DISPERSION_FAMILIES or fam.extras
    if not dispersion:
        return
    if name not in DISPERSION_FAMILIES:
        raise SamplingError(
            f"sampling a {name} GLMM is not supported: of the families with a dispersion "
            "parameter only the Gamma and the negative binomial (glmer_nb) can be "
            "sampled; fit the model with mm.glmmtmb and use profile or bootstrap "
            "intervals instead")
    pri = getattr(m, "priors", None)
    if pri is not None and pri.any:
        raise SamplingError(
            f"sampling a bglmer fit of the {name} family is not supported: blme's priors "
            "are read here for families without a dispersion parameter only; sample the "
            "glmer fit (flat priors) or use a binomial or poisson model")


def _response_parts(design, fam):
    """``(y, size, weights)`` for the Laplace engine from a glmer design."""
    if fam.needs_size:
        return binomial_parts(design)
    return design.y, None, (None if design.weights is None
                            else np.asarray(design.weights, float))


class LogDiagonal:
    """A target with some theta coordinates (Cholesky diagonals) sampled as ``log|theta|``.

    Used where a covariance prior is zero at a zero sd (blme's Wishart and gamma defaults):
    near zero such a density behaves like ``|theta|^k``, a cusp whose gradient ``k/theta``
    the leapfrog integrator cannot follow (divergences). With ``theta = exp(eta)`` the
    density gains the Jacobian ``|theta|`` and decays smoothly as ``eta -> -inf``:
    ``log p(eta) = log p(theta) + eta``, ``d/d eta = theta d/d theta + 1``.
    """

    def __init__(self, inner, mask: np.ndarray):
        self.inner = inner
        self.mask = np.zeros(inner.dim, dtype=bool)
        self.mask[:mask.size] = mask
        self.dim = inner.dim
        self.k = inner.k
        self.coords = tuple(f"log_abs_{c}" if m else c
                            for c, m in zip(inner.coords, self.mask, strict=True))
        z = np.asarray(inner.z_hat, dtype=float).copy()
        # an estimate exactly at zero (impossible under such a prior, but be safe)
        z[self.mask] = np.log(np.maximum(np.abs(z[self.mask]), 1e-8))
        self.z_hat = z
        for name in ("approximation", "param_names", "sdcor", "has_sigma_scale", "ranef"):
            setattr(self, name, getattr(inner, name))
        if self.ranef is not None:
            self.ranef = lambda z, rng: inner.ranef(self.to_inner(z[None, :])[0], rng)

    def to_inner(self, Z: np.ndarray) -> np.ndarray:
        Z = np.array(Z, dtype=float, copy=True)
        Z[:, self.mask] = np.exp(Z[:, self.mask])
        return Z

    def __call__(self, z) -> tuple[float, np.ndarray]:
        z = np.asarray(z, dtype=float)
        x = self.to_inner(z[None, :])[0]
        lp, g = self.inner(x)
        if not math.isfinite(lp):
            return lp, g
        g = g.copy()
        g[self.mask] = g[self.mask] * x[self.mask] + 1.0
        return lp + float(np.sum(z[self.mask])), g

    @property
    def n_evals(self) -> int:
        return self.inner.n_evals

    def parameters(self, Z):
        return self.inner.parameters(self.to_inner(Z))

    def relative_sd(self, Z):
        return self.inner.relative_sd(self.to_inner(Z))

    def sd_names(self):
        return self.inner.sd_names()


def _log_mask(target) -> np.ndarray | None:
    """Theta entries to sample on the log scale: the Cholesky diagonals of the terms whose
    covariance prior is zero at a zero sd (None: none)."""
    pri = target.priors
    if pri is None:
        return None
    mask = np.zeros(target.k, dtype=bool)
    for prior, t, sl in zip(pri.cov, target.design.terms, target.design.theta_slices(),
                            strict=True):
        if prior is not None and prior.infinite_at_zero():
            mask[sl] = t.structure.boundary_mask()
    return mask if mask.any() else None


def target_of(m):
    """The sampler's target for a fit (lmer, blmer, glmer, bglmer)."""
    if hasattr(m, "family") and m.family is not None:
        fam = make_response_family(m.family)
        _check_glmm(m, fam)
        if m.family.name in DISPERSION_FAMILIES:
            return DispersionGLMMTarget(m, SamplingError, _response_parts)
        target = GLMMTarget(m)
    elif hasattr(m, "sigma") and hasattr(m, "reml"):
        target = LMMTarget(m)
    else:
        raise SamplingError(f"cannot sample a {type(m).__name__}: m.sample() supports lmer, "
                            "blmer, glmer and bglmer fits")
    mask = _log_mask(target)
    return target if mask is None else LogDiagonal(target, mask)

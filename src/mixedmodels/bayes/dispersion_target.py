r"""The Laplace posterior of a GLMM whose family has a dispersion or shape parameter.

Two of glmer's families have one: the Gamma (lme4's ``sigma``, the coefficient of
variation, ``Var(y) = sigma^2 mu^2``) and the negative binomial of ``glmer_nb`` (the shape
``nb_theta``, ``Var(y) = mu + mu^2 / nb_theta``). The sampler's coordinates are lme4's
``theta``, ``beta`` and the log of a scale ``s``,

.. math:: z = [\theta, \beta, \zeta], \qquad s = e^\zeta, \qquad
          s = \sigma\ \text{(Gamma)}, \quad s = \alpha = 1/\text{nb\_theta}\ \text{(NB)},

with a flat prior on ``theta``, ``beta`` and ``s`` (so ``log p(z) = log L + zeta``, the
Jacobian of the log scale). ``s`` is the dispersion on the scale where a flat prior gives a
proper posterior: the likelihood tends to a positive constant as ``nb_theta -> inf`` (the
Poisson limit), so a flat prior on ``nb_theta`` or its log would not be integrable, while
``alpha -> 0`` is a bounded end. For the Gamma, ``sigma`` plays the role of an LMM's
residual sd, whose flat prior is the LMM target's.

The likelihood is the Laplace approximation of the general Laplace engine
(:class:`~mixedmodels.objective.laplace.LaplaceObjective`, exact gradient) in glmmTMB's
parameterization: random effects ``b = Lambda_e u``, ``u ~ N(0, I)``, and the family's
``phi`` channel (the Gamma shape ``1/sigma^2``, the NB size ``nb_theta``) on the log scale.
lme4 writes a Gamma GLMM's random effects as ``b = sigma Lambda(theta) u``, hence
``Lambda_e = sigma Lambda(theta)``: for lme4's covariance terms ``Lambda`` is linear in
``theta`` and ``theta_e = sigma theta``. The chain rule gives, with ``F = -2 log L`` and
its engine gradient ``(F_theta_e, F_beta, F_logphi)``,

.. math:: \partial_\theta \log p = -\tfrac12 e^{a\zeta} F_{\theta_e}, \qquad
          \partial_\zeta \log p = -\tfrac12\left(a\,\theta_e' F_{\theta_e}
          + c\,F_{\log\phi}\right) + 1,

``a = 1, c = -2`` for the Gamma (``log shape = -2 zeta``) and ``a = 0, c = -1`` for the NB
(``log size = -zeta``). The engine's Laplace approximation uses the observed Hessian of
the conditional density (glmmTMB's), glmer's the Fisher weights for a non-canonical link:
the two agree at the optimum to the approximation's own accuracy, not exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..families.density import ModelDensity
from ..families.registry import make_response_family
from ..inference.varpar import SdCorMap
from ..objective.laplace import LaplaceObjective
from ..objective.laplace.parameters import FamilyParameter, make_layout

__all__ = ["DispersionGLMMTarget"]

#: Relative tolerance of the check that a term's Lambda is linear in theta (Gamma).
LINEARITY_RTOL = 1e-10


class DispersionGLMMTarget:
    """Laplace posterior of a Gamma or negative binomial GLMM fit (module docstring).

    Parameters
    ----------
    m : GeneralizedLinearMixedModelResult
        A glmer Gamma fit or a glmer_nb fit (nAGQ = 1, no priors).
    error : type
        The exception to raise for a model this target cannot represent.
    response_parts : callable
        ``(design, family) -> (y, size, weights)`` for the Laplace engine.
    """

    approximation = "laplace"
    has_sigma_scale = False     # sds on the link scale (boundary_mass)
    ranef = None
    priors = None

    def __init__(self, m, error, response_parts):
        design = m.design
        fam = make_response_family(m.family)
        self.gamma = m.family.name == "Gamma"
        self.estimate_scale = self.gamma or bool(getattr(m, "shape_estimated", False))
        # a = exponent of s in theta_e = s^a theta; c: log phi_channel = c * zeta
        self.a, self.c = (1.0, -2.0) if self.gamma else (0.0, -1.0)
        self.design = design
        self.k, self.p = design.n_theta, design.p
        if self.gamma:
            self._check_linear(design, np.asarray(m.theta, float), error)
        comps = design.components
        y, size, w = response_parts(design, fam)
        zeta_hat = (math.log(float(m.sigma)) if self.gamma
                    else -math.log(float(m.family.theta)))
        self.layout = make_layout(comps, [FamilyParameter("phi", self.c * zeta_hat)])
        self.objective = LaplaceObjective(ModelDensity(fam), y, comps, self.layout,
                                          weights=w, size=size)
        self._zeta_fixed = None if self.estimate_scale else zeta_hat
        self.dim = self.k + self.p + int(self.estimate_scale)
        scale_name = "log_sigma" if self.gamma else "log_alpha"
        self.coords = (tuple(f"theta[{j}]" for j in range(self.k)) + tuple(m.fixef.index)
                       + ((scale_name,) if self.estimate_scale else ()))
        self.sdcor = SdCorMap(design, has_sigma=self.gamma)
        extra = ("nb_theta",) if not self.gamma and self.estimate_scale else ()
        self.param_names = self.sdcor.names + extra + tuple(m.fixef.index)
        self.z_hat = np.r_[np.asarray(m.theta, float), np.asarray(m.beta, float),
                           [zeta_hat] if self.estimate_scale else []]

    @staticmethod
    def _check_linear(design, theta, error):
        for t, sl in zip(design.terms, design.theta_slices(), strict=True):
            th = theta[sl] + 0.1
            lam1, lam2 = t.structure.lambda_(th), t.structure.lambda_(2.0 * th)
            if not np.allclose(lam2, 2.0 * lam1, rtol=LINEARITY_RTOL, atol=0.0):
                raise error(
                    f"sampling a Gamma GLMM needs covariance terms whose relative factor "
                    f"is linear in theta (lme4's); the term of {t.group!r} is not: fit "
                    "the model with mm.glmmtmb and use bootstrap intervals instead")

    def _split(self, z):
        theta, beta = z[:self.k], z[self.k:self.k + self.p]
        zeta = z[-1] if self.estimate_scale else self._zeta_fixed
        return theta, beta, float(zeta)

    def __call__(self, z) -> tuple[float, np.ndarray]:
        z = np.asarray(z, dtype=float)
        theta, beta, zeta = self._split(z)
        if not abs(zeta) < 700.0:                   # exp(zeta) would overflow
            return -math.inf, np.zeros(self.dim)
        scale = math.exp(self.a * zeta)
        theta_e = scale * theta
        x = self.layout.pack({"theta.cond": theta_e, "beta.cond": beta,
                              "family.phi": [self.c * zeta]})
        F, g = self.objective.value_and_gradient(x)
        if not math.isfinite(F) or not np.all(np.isfinite(g)):
            return -math.inf, np.zeros(self.dim)
        gt = self.layout.get(g, "theta.cond")
        gb = self.layout.get(g, "beta.cond")
        grad = [-0.5 * scale * gt, -0.5 * gb]
        lp = -0.5 * F
        if self.estimate_scale:
            gphi = float(self.layout.get(g, "family.phi")[0])
            grad.append([-0.5 * (self.a * float(theta_e @ gt) + self.c * gphi) + 1.0])
            lp += zeta
        return float(lp), np.concatenate(grad)

    @property
    def n_evals(self) -> int:
        return self.objective.n_evals

    def parameters(self, Z: np.ndarray) -> np.ndarray:
        """Reported parameters: sds and correlations (Gamma: lme4's ``sigma * theta``
        sds, then ``sigma``), ``nb_theta`` (NB), the fixed effects."""
        out = np.empty((Z.shape[0], len(self.param_names)))
        for i, z in enumerate(Z):       # a loop over draws, after sampling
            theta, beta, zeta = self._split(z)
            s = math.exp(zeta)
            if self.gamma:
                out[i] = np.r_[self.sdcor.from_theta(theta, s), beta]
            else:
                nb = [1.0 / s] if self.estimate_scale else []
                out[i] = np.r_[self.sdcor.from_theta(theta, 1.0), nb, beta]
        return out

    def sd_names(self) -> tuple[str, ...]:
        return tuple(n for n, k in zip(self.sdcor.names, self.sdcor.kinds, strict=True)
                     if k == "sd")

    def relative_sd(self, Z: np.ndarray) -> np.ndarray:
        """Random-effect sds on the link scale, per draw."""
        mask = np.array([k == "sd" for k in self.sdcor.kinds])
        return self.parameters(Z)[:, :len(self.sdcor.names)][:, mask]

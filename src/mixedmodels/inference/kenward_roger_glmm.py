r"""Kenward-Roger F tests for GLMMs on the working linear mixed model (Stroup 2013).

pbkrtest's Kenward-Roger method needs the marginal covariance of a Gaussian response. A
GLMM has none, but at the estimates PIRLS has linearized it: with the Fisher working
weights ``W = w_prior (d mu / d eta)^2 / V(mu)`` and the working response
``z = eta + (y - mu) d eta / d mu``, the fitted GLMM is the weighted LMM

.. math:: z = X \beta + Z b + e, \qquad e \sim N(0, \phi W^{-1}), \qquad
          b \sim N(0, \phi \Lambda \Lambda'),

whose mixed-model equations PIRLS solved at convergence (``phi`` = 1 for binomial, Poisson
and negative binomial families; the estimated dispersion otherwise). This module applies
the Kenward-Roger computation of :mod:`~mixedmodels.inference.kenward_roger` to that model
at the GLMM's estimates (theta, beta, phi), exactly:

* ``Sigma = phi (W^{-1} + Z Lambda Lambda' Z')``, linear in the variance parameters: the
  entries of each term's covariance ``phi Lambda_k Lambda_k'`` and -- only when the family
  has a dispersion parameter -- the residual scale ``phi``; with a known scale the
  information, ``W`` and ``Phi_A`` are computed over the covariance entries alone;
* ``Phi = (X' Sigma^{-1} X)^{-1}`` is the working model's covariance of beta (lme4's
  ``vcov(use.hessian = FALSE)``, from ``R_X``), which the adjustment starts from -- not the
  Hessian-based ``vcov`` glmer reports, so adjusted standard errors and the glmer summary's
  differ by that much too;
* the information of the variance parameters is the expected restricted (REML) information
  of the working model, as in the LMM method, evaluated at the Laplace (ML) estimates.

This is what SAS's GLIMMIX does with ``ddfm=kr`` for pseudo-likelihood fits, which Stroup
(and the GLMM FAQ) report to work reasonably; it is an approximation whose quality depends
on how well the linearization describes the data (poor for binary data with few
observations per group). For a Gaussian identity-link fit ``W`` is the prior weights and
everything reduces to the LMM method at the same estimates (pbkrtest's ``vcovAdj`` at ML
estimates). The negative binomial shape of ``glmer_nb`` enters the weights and is treated
as known, as glmer's standard errors treat it.
"""

from __future__ import annotations

import numpy as np

from .._errors import MixedModelsError
from .kenward_roger import KenwardRogerState, kr_state

__all__ = ["glmm_kenward_roger_state", "working_weights"]


def working_weights(m) -> np.ndarray:
    """Fisher working weights at the estimates, ``w_prior (d mu/d eta)^2 / V(mu)``."""
    sol = m.solution
    fam = sol.family
    prior = m.objective_function.pirls.prior
    me = fam.link.mu_eta(sol.eta)
    return prior * me * me / fam.variance(sol.mu)


def glmm_kenward_roger_state(m) -> KenwardRogerState:
    """Kenward-Roger quantities of a glmer fit's working LMM (module docstring).

    Parameters
    ----------
    m : GeneralizedLinearMixedModelResult

    Returns
    -------
    KenwardRogerState
    """
    pirls = getattr(getattr(m, "objective_function", None), "pirls", None)
    if pirls is None:
        raise MixedModelsError(
            "Kenward-Roger tests of GLMMs use the working model of glmer's PIRLS; this fit "
            f"({type(m).__name__}) has none. Use Wald chi-square tests "
            "(anova_table(test='wald')) or likelihood-ratio tests (drop1, mm.anova)")
    w = working_weights(m)
    return kr_state(m.design, w, m.theta, float(m.phi), m.beta,
                    estimate_scale=bool(m.family.has_dispersion))

r"""bglmer's objective: glmer's Laplace (or quadrature) deviance plus the prior deviance.

A GLMM has no residual scale, so every prior term is a function of ``(theta, beta)`` alone
(blme's covariance priors are then on the random effects' own covariance, its fixed-effect
priors on the coefficients):

.. math:: D(\theta, \beta) = -2\log L(\theta, \beta) + \sum e(\Lambda, \beta) + \pi(\Lambda) + c.

:class:`PenalizedGLMMObjective` is a :class:`~mixedmodels.GLMMObjective` whose criteria --
the nAGQ = 0 criterion of theta (beta estimated inside PIRLS, with a normal fixed-effect
prior as a ridge penalty there -- blme leaves the prior out of this stage, which then
fails under complete separation; it only provides starting values unless ``nAGQ=0``) and
the Laplace deviance of ``[theta, beta]`` -- include that penalty, so glmer's two-stage
fit, its Hessian-based standard errors and its convergence check apply unchanged to the
penalized objective. The
covariance priors depend on ``Lambda`` only through ``Sigma = Lambda Lambda'`` (or the
absolute values of its diagonal), so the penalty keeps the deviance's symmetry under sign
changes of Lambda's columns, which the Laplace stage relies on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..families import Family
from ..objective.glmm import GLMMObjective, GLMMSolution
from .model_priors import ModelPriors

__all__ = ["PenalizedGLMMObjective"]


class PenalizedGLMMObjective(GLMMObjective):
    """glmer's deviance functions with the prior deviance added (module docstring).

    Parameters
    ----------
    design : Design
    family : Family
    priors : ModelPriors
        Resolved for a GLMM (no residual prior).
    nAGQ : int
    """

    def __init__(self, design, family: Family, priors: ModelPriors, nAGQ: int = 1):
        super().__init__(design, family, nAGQ)
        self.priors = priors
        self._slices = design.theta_slices()
        normal = priors.normal_fixef
        if normal is not None:
            # the nAGQ = 0 stage estimates beta inside PIRLS: with the prior there too it
            # stays finite under complete separation (blme leaves it out of that stage)
            self.pirls.beta_prior_root = normal.precision_root

    def penalty(self, theta, beta) -> float:
        """The prior deviance at ``(theta, beta)``."""
        theta = np.asarray(theta, dtype=float)
        lams = [t.structure.lambda_(theta[sl])
                for t, sl in zip(self.design.terms, self._slices, strict=True)]
        return float(self.priors.parts(lams, np.asarray(beta, dtype=float)).total(1.0))

    def __call__(self, x) -> float:
        theta, beta, _, _ = self.split(x)
        pen = self.penalty(theta, beta)
        if not np.isfinite(pen):
            self.n_evals += 1
            return np.inf
        return super().__call__(x) + pen

    def stage0(self, theta, family: Family | None = None) -> float:
        """The nAGQ = 0 criterion plus the prior at PIRLS's (penalized) estimate of beta."""
        if not np.isfinite(self.penalty(theta, np.zeros(self.p))):
            self.n_evals += 1
            return np.inf
        value = super().stage0(theta, family)
        if not np.isfinite(value):
            return np.inf
        return value + self.penalty(theta, self.pirls.beta_start)

    def _penalized(self, sol: GLMMSolution, beta) -> GLMMSolution:
        return dataclasses.replace(sol, objective=sol.objective + self.penalty(sol.theta, beta))

    def solve(self, x) -> GLMMSolution:
        sol = super().solve(x)
        return self._penalized(sol, sol.beta)

    def solve0(self, theta, family: Family | None = None) -> GLMMSolution:
        sol = super().solve0(theta, family)
        return self._penalized(sol, sol.beta)

"""The frozen result of a generalized linear mixed-model fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..design import Design
from ..diagnostics import ConvergenceReport
from ..families import Family
from ..methods import InferenceMixin
from ..objective.glmm import GLMMObjective, GLMMSolution
from ..optim import OptSummary
from ..term_methods import TermsMixin
from .base import MixedModelResultBase
from .recipe import FitRecipe

__all__ = ["RESIDUAL_TYPES", "GeneralizedLinearMixedModelResult", "check_residual_type",
           "glmm_residuals"]

#: Residual types of :meth:`GeneralizedLinearMixedModelResult.residuals`.
RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


def check_residual_type(type: str) -> None:
    """Raise a ValueError naming the valid residual types."""
    if type not in RESIDUAL_TYPES:
        raise ValueError(f"unknown residual type {type!r}; use one of "
                         f"{', '.join(RESIDUAL_TYPES)}")


def glmm_residuals(type: str, y, mu, eta, family: Family, w) -> np.ndarray:
    """Residuals of ``type`` (:data:`RESIDUAL_TYPES`; see
    :meth:`GeneralizedLinearMixedModelResult.residuals`) from the rows' arrays."""
    if type == "response":
        return y - mu
    if type == "pearson":
        return (y - mu) * np.sqrt(w / family.variance(mu))
    if type == "deviance":
        return np.sign(y - mu) * np.sqrt(np.maximum(family.dev_resids(y, mu, w), 0.0))
    return (y - mu) / family.link.mu_eta(eta)


@dataclass(frozen=True, eq=False, repr=False)
class GeneralizedLinearMixedModelResult(MixedModelResultBase, InferenceMixin, TermsMixin):
    """A fitted GLMM (what :func:`mixedmodels.glmer` and :func:`mixedmodels.glmer_nb`
    return).

    Attributes
    ----------
    design : Design
    family : Family
        The family at the estimate (for ``glmer_nb`` it carries the estimated shape).
    nAGQ : int
        0 (fast mode), 1 (Laplace) or the number of quadrature nodes.
    solution : GLMMSolution
        theta, beta, dispersion, conditional modes and the Cholesky factor at the optimum.
    opt : OptSummary
        The final optimization (the Laplace/quadrature stage; stage 1 for nAGQ = 0).
    opt_stage0 : OptSummary
        The nAGQ = 0 stage that provided the starting values.
    convergence : ConvergenceReport or None
    vcov_beta : ndarray
        Covariance of the fixed effects.
    vcov_method : str
        ``"hessian"`` (from the deviance's Hessian in theta and beta, lme4's default) or
        ``"RX"`` (conditional on theta).
    derivatives : DevianceDerivatives or None
        Gradient and Hessian of the deviance at the optimum.
    objective_function : GLMMObjective
        Reusable for profiling and refitting.
    shape_estimated : bool
        The negative binomial shape was estimated (``glmer_nb``); it counts as a parameter.
    fit_log : tuple of dict
        Per fitting stage: evaluations, PIRLS iterations and seconds.
    messages : tuple of str
    recipe : FitRecipe or None
        The fitting function and its exact arguments (``update``, ``refit`` and the
        bootstrap refit with it).
    """

    design: Design
    family: Family
    nAGQ: int
    solution: GLMMSolution
    opt: OptSummary
    opt_stage0: OptSummary
    convergence: ConvergenceReport | None
    vcov_beta: np.ndarray
    vcov_method: str
    derivatives: object = field(repr=False)
    objective_function: GLMMObjective = field(repr=False)
    shape_estimated: bool = False
    fit_log: tuple = ()
    messages: tuple[str, ...] = ()
    recipe: FitRecipe | None = field(default=None, repr=False)

    # -- the interface MixedModelResultBase needs ----------------------------------------
    @property
    def phi(self) -> float:
        """Dispersion parameter (1 for binomial, Poisson and negative binomial)."""
        return self.solution.phi

    @property
    def sigma(self) -> float:
        """``sqrt(phi)``: lme4's ``sigma()`` (1 for binomial / Poisson, the coefficient of
        variation for Gamma, the residual sd for Gaussian)."""
        return float(np.sqrt(self.solution.phi))

    @property
    def residual_sd(self) -> float | None:
        """The residual line of VarCorr: ``sigma`` for families with a dispersion
        parameter, None for the others."""
        return self.sigma if self.family.has_dispersion else None

    def _re_scale(self) -> float:
        return self.solution.phi

    def _vcov_matrix(self) -> np.ndarray:
        return self.vcov_beta

    def _rebuild_objective(self, method: str | None) -> GLMMObjective:
        del method  # one factorization for GLMMs
        return GLMMObjective(self.design, self.family, self.nAGQ,
                             estimate_shape=self.shape_estimated)

    def _cond_var_blocks(self) -> list:
        """``phi Lambda (L L')^{-1} Lambda'`` per term, with the Laplace factor."""
        sol = self.solution
        return self.design.scale_spherical(
            sol.theta, self.objective_function.pirls.system.cond_var_u(sol.factor), sol.phi)

    # -- likelihood ---------------------------------------------------------------------
    @property
    def objective(self) -> float:
        """``-2 log L`` (Laplace or quadrature; the same scale for every nAGQ)."""
        return self.solution.objective

    @property
    def deviance(self) -> float:
        """``-2 log L`` (what lme4's glmer summary prints as deviance)."""
        return self.solution.objective

    @property
    def df(self) -> int:
        """Parameters: fixed effects, theta, dispersion, negative binomial shape."""
        return (self.design.p + self.design.n_theta + int(self.family.has_dispersion)
                + int(self.shape_estimated))

    @property
    def converged(self) -> bool:
        """The convergence check at the optimum passed (True when it was skipped)."""
        return self.convergence is None or self.convergence.converged

    # -- fitted values, residuals, prediction --------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted means ``mu = g^{-1}(X beta + Z b + offset)`` (response scale, with the
        random effects), as lme4's ``fitted()``.

        Returns
        -------
        pandas.Series
            Indexed like the rows used in the fit (binomial: probabilities).
        """
        return pd.Series(self.solution.mu, index=self._index(), name="fitted")

    def _prior(self) -> np.ndarray:
        return self.objective_function.pirls.prior

    def residuals(self, type: str = "deviance", scaled: bool = False) -> pd.Series:
        """Residuals of the fit, as R's ``residuals.glmerMod``.

        Parameters
        ----------
        type : {"deviance", "pearson", "response", "working"}
            ``deviance``: ``sign(y - mu) sqrt(d_i)`` (lme4's default);
            ``pearson``: ``(y - mu) sqrt(w / V(mu))``; ``response``: ``y - mu``;
            ``working``: ``(y - mu) / mu_eta``.
        scaled : bool
            Divide by ``sigma`` (the summary's scaled residuals).

        Returns
        -------
        pandas.Series
            Indexed like the rows used in the fit.
        """
        check_residual_type(type)
        r = glmm_residuals(type, self.design.y, self.solution.mu, self.solution.eta,
                           self.family, self._prior())
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self._index(), name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link", re_form=None,
                allow_new_levels: bool = False, offset=None, *, se_fit: bool = False,
                interval: str | None = None, level: float = 0.95, method: str = "wald",
                nsim: int = 500, seed=None, n_jobs: int = 1, progress=None):
        """Predictions on the link (``type="link"``, lme4's default) or response scale,
        optionally with standard errors and confidence intervals
        (:mod:`mixedmodels.prediction.joint` has the maths).

        Parameters
        ----------
        newdata : DataFrame, optional
            Data to predict for (default: the fitting data; the response columns are not
            needed).
        type : {"link", "response"}
            ``eta = X beta + Z b + offset``, or ``mu = g^{-1}(eta)``.
        re_form : None, str or False
            Which random effects to include: None (all), ``"~0"`` (population level) or a
            formula listing terms.
        allow_new_levels : bool
            Predict levels not seen in the fit at the population level instead of raising.
        offset : str or array-like, optional
            Offset for ``newdata`` when the fit used an ``offset=`` argument.
        se_fit : bool
            Add standard errors: on the link scale ``sqrt(x V x')`` at the population level
            (the FAQ's recipe, ``V`` = :attr:`vcov`) or from the joint covariance of the
            fixed and random effects (lme4's ``vcov(full = TRUE)``); on the response scale
            times ``|d mu / d eta|`` (the delta method, as lme4).
        interval : {None, "confidence", "prediction"}
            Add ``lower`` and ``upper``: the link-scale interval ``eta -+ z se``, its ends
            through the inverse link for ``type="response"`` (the FAQ: the ends, not the
            standard error). Prediction intervals need a Gaussian response.
        level : float
            Coverage of the intervals.
        method : {"wald", "boot"}
            Normal approximation at the estimated variance parameters, or the parametric
            bootstrap (percentile intervals of ``nsim`` refits).
        nsim, seed, n_jobs, progress
            Bootstrap settings (``method="boot"``).

        Returns
        -------
        pandas.Series or pandas.DataFrame
            Indexed like ``newdata``; with ``se_fit`` or ``interval`` a DataFrame with
            columns ``fit``, ``se_fit`` and/or ``lower``, ``upper``.
        """
        from ..prediction.lme4 import predict_lme4

        return predict_lme4(self, newdata, re_form, type, se_fit=se_fit, interval=interval,
                            level=level, allow_new_levels=allow_new_levels, offset=offset,
                            method=method, nsim=nsim, seed=seed, n_jobs=n_jobs,
                            progress=progress)

    # -- diagnostics and display ----------------------------------------------------------
    def summary_residuals(self) -> np.ndarray:
        """The scaled Pearson residuals whose quantiles the summary prints.

        Returns
        -------
        ndarray
        """
        return self.residuals("pearson", scaled=True).to_numpy()

    def overdispersion(self):
        """The GLMM FAQ's Pearson chi-square test of overdispersion
        (:func:`mixedmodels.diagnostics.overdispersion_test`).

        ``chisq = sum_i r_i^2`` over the Pearson residuals, compared with a chi-square on
        ``df_resid = nobs - df`` degrees of freedom.

        Returns
        -------
        OverdispersionTest
            ``chisq``, ``ratio = chisq / rdf`` (about 1 without overdispersion), ``rdf``
            and the upper-tail ``p``.
        """
        from ..diagnostics.overdispersion import overdispersion_test

        return overdispersion_test(self)

    def summary(self, ddf: str | None = "lme4"):
        """lme4-style summary (print it, or use its tables): Wald z tests of the fixed
        effects, as glmer's.

        Parameters
        ----------
        ddf : {"lme4", None}
            Accepted for symmetry with the LMM summary; GLMMs have no denominator degrees
            of freedom, so only ``"lme4"`` (or None) is valid.

        Returns
        -------
        GLMMSummary
        """
        if ddf not in ("lme4", None, "auto"):
            raise ValueError(f"summary(ddf={ddf!r}): GLMM coefficients are tested with z "
                             "statistics; denominator degrees of freedom apply to linear "
                             "mixed models only (use ddf='lme4')")
        from .glmm_summary import GLMMSummary

        return GLMMSummary.from_result(self)

    def _kind(self) -> str:
        return f"{self.family.label()}, nAGQ={self.nAGQ}"

    def __str__(self) -> str:
        return str(self.summary())

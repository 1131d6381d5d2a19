"""The frozen result of a linear mixed-model fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..design import Design
from ..diagnostics import ConvergenceReport
from ..methods import InferenceMixin
from ..objective.lmm import LMMObjective, LMMSolution
from ..optim import OptSummary
from ..term_methods import TermsMixin
from .base import MixedModelResultBase
from .recipe import FitRecipe

#: lme4's residual types of an lmer fit (``partial`` is not implemented there either).
LMM_RESIDUAL_TYPES = ("response", "pearson", "deviance", "working")

__all__ = ["LMM_RESIDUAL_TYPES", "LinearMixedModelResult", "check_lmm_residual_type",
           "lmm_residuals"]


def check_lmm_residual_type(type: str) -> None:
    """Raise a ValueError naming :data:`LMM_RESIDUAL_TYPES` when ``type`` is not one
    (shared by the in-memory and the Dask result, so both say the same)."""
    if type not in LMM_RESIDUAL_TYPES:
        raise ValueError(f"unknown residual type {type!r}; use one of "
                         f"{', '.join(LMM_RESIDUAL_TYPES)}")


def lmm_residuals(type: str, y, eta, weights) -> np.ndarray:
    """Residuals of ``type`` (:data:`LMM_RESIDUAL_TYPES`) from the rows' arrays.

    ``response`` and ``working``: ``y - eta`` (the identity link makes the working
    residual the response residual); ``pearson`` and ``deviance``:
    ``sqrt(w) (y - eta)`` with the prior weights ``w`` (None: unit weights).
    """
    r = y - eta
    if type in ("pearson", "deviance") and weights is not None:
        r = r * np.sqrt(weights)
    return r


@dataclass(frozen=True, eq=False, repr=False)
class LinearMixedModelResult(MixedModelResultBase, InferenceMixin, TermsMixin):
    """A fitted linear mixed model (what :func:`mixedmodels.lmer` returns).

    Attributes
    ----------
    design : Design
        Data and model matrices the fit used.
    reml : bool
        Fitted by REML (True) or maximum likelihood.
    solution : LMMSolution
        theta, beta, random effects, sigma and the Cholesky factor at the optimum.
    opt : OptSummary
        Optimizer settings, evaluations and return code.
    convergence : ConvergenceReport or None
        Derivative check at the optimum (None when skipped).
    objective_function : LMMObjective
        The objective, reusable for profiling and refitting.
    messages : tuple of str
        Warnings raised during the fit (singular fit, convergence, dropped rows).
    recipe : FitRecipe or None
        The fitting function and its exact arguments (``update``, ``refit`` and the
        bootstrap refit with it).
    """

    design: Design
    reml: bool
    solution: LMMSolution
    opt: OptSummary
    convergence: ConvergenceReport | None
    objective_function: LMMObjective = field(repr=False)
    messages: tuple[str, ...] = ()
    recipe: FitRecipe | None = field(default=None, repr=False)

    # -- the interface MixedModelResultBase needs ----------------------------------------
    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return self.solution.sigma

    @property
    def residual_sd(self) -> float:
        """The residual standard deviation VarCorr shows (``sigma``)."""
        return self.solution.sigma

    def _re_scale(self) -> float:
        return self.sigma ** 2

    def _vcov_matrix(self) -> np.ndarray:
        """``sigma^2 (R_X' R_X)^{-1}``."""
        Ri = self.solution.RX_inv
        return self.sigma ** 2 * (Ri @ Ri.T)

    def _cond_var_blocks(self) -> list:
        """``sigma^2 Lambda (L_Z L_Z')^{-1} Lambda'`` per term (lme4's ``condVar``,
        conditional on the fixed effects)."""
        return self.objective_function.cond_var(self.solution)

    def _draw_residuals(self, rng: np.random.Generator) -> np.ndarray:
        """One draw of the residuals, ``sigma e / sqrt(w)`` (what ``simulate`` adds to the
        linear predictor; a residual structure overrides it)."""
        noise = rng.standard_normal(self.design.nobs)
        if self.design.weights is not None:
            noise /= np.sqrt(self.design.weights)
        return self.sigma * noise

    def _rebuild_objective(self, method: str | None) -> LMMObjective:
        return LMMObjective(self.design, reml=self.reml, method=method or "auto")

    # -- likelihood ---------------------------------------------------------------------
    @property
    def objective(self) -> float:
        """REML criterion (REML fits) or deviance, the quantity minimized (as lme4)."""
        return self.solution.objective

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects + theta + residual variance."""
        return self.design.p + self.design.n_theta + 1

    @cached_property
    def deviance(self) -> float:
        """-2 log-likelihood; for REML fits evaluated at the REML estimates with ML's
        profiled formula (lme4's ``deviance(m, REML = FALSE)``)."""
        if not self.reml:
            return self.objective
        return LMMObjective(self.design, reml=False)(self.theta)

    # -- fitted values, residuals, prediction --------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted values ``X beta + Z b + offset``, with the random effects.

        Returns
        -------
        pandas.Series
            Indexed like the rows used in the fit.
        """
        return pd.Series(self._eta(), index=self._index(), name="fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals ``y - fitted``, conditional on the random effects (lme4's
        ``residuals.merMod`` types).

        Parameters
        ----------
        type : {"response", "pearson", "deviance", "working"}
            ``"response"`` and ``"working"``: ``y - fitted`` (the identity link makes the
            working residual the response residual); ``"pearson"`` and ``"deviance"``:
            ``sqrt(w) (y - fitted)`` with the prior weights ``w`` (the Gaussian deviance
            residual is the weighted one; lme4 returns its ``wtres`` for both).
        scaled : bool
            Divide by sigma (the "scaled residuals" of the summary).

        Returns
        -------
        pandas.Series
            Indexed like the rows used in the fit.
        """
        check_lmm_residual_type(type)
        r = lmm_residuals(type, self.design.y, self._eta(), self.design.weights)
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self._index(), name="residuals")

    def summary_residuals(self) -> np.ndarray:
        """The scaled Pearson residuals whose quantiles the summary prints.

        Returns
        -------
        ndarray
        """
        return self.residuals("pearson", scaled=True).to_numpy()

    def predict(self, newdata: pd.DataFrame | None = None, re_form=None,
                allow_new_levels: bool = False, offset=None, *, type: str = "response",
                se_fit: bool = False, interval: str | None = None, level: float = 0.95,
                method: str = "wald", nsim: int = 500, seed=None, n_jobs: int = 1,
                progress=None):
        """Predictions with the random effects in ``re_form`` (None: all, ``"~0"``: none),
        optionally with standard errors and intervals
        (:mod:`mixedmodels.prediction.joint` has the maths).

        Parameters
        ----------
        newdata : DataFrame, optional
            Data to predict for (default: the fitting data).
        re_form : None, str or False
            Which random effects to include: None (all), ``"~0"`` (population level) or a
            formula listing terms, e.g. ``"~(1 | Subject)"``.
        allow_new_levels : bool
            Predict levels not seen in the fit at the population level instead of raising.
        offset : str or array-like, optional
            Offset for ``newdata`` when the fit used an ``offset=`` argument.
        type : {"response", "link"}
            The same for a linear mixed model (accepted for symmetry with GLMMs).
        se_fit : bool
            Add the standard errors: ``sqrt(x V x')`` at the population level (the GLMM
            FAQ's recipe), and from the joint covariance of the fixed and random effects
            (lme4's ``vcov(full = TRUE)``) when random effects are included.
        interval : {None, "confidence", "prediction"}
            Add ``lower`` and ``upper``: ``fit -+ z se`` (confidence) or
            ``fit -+ z sqrt(se^2 + sigma^2)`` (prediction, the FAQ's ``SE2``).
        level : float
            Coverage of the intervals.
        method : {"wald", "boot"}
            Normal-approximation standard errors and intervals at the estimated variance
            parameters, or the parametric bootstrap (percentile intervals, ``nsim``
            replicates; carries the variance parameters' uncertainty too).
        nsim, seed, n_jobs, progress
            Bootstrap replicates, seed, worker processes and progress bar
            (``method="boot"``).

        Returns
        -------
        pandas.Series or pandas.DataFrame
            ``X beta + Z b + offset`` per row of ``newdata``, indexed like it (missing
            predictors give a missing prediction); with ``se_fit`` or ``interval`` a
            DataFrame with columns ``fit``, ``se_fit`` and/or ``lower``, ``upper``.
        """
        from ..prediction.lme4 import predict_lme4

        return predict_lme4(self, newdata, re_form, type, se_fit=se_fit, interval=interval,
                            level=level, allow_new_levels=allow_new_levels, offset=offset,
                            method=method, nsim=nsim, seed=seed, n_jobs=n_jobs,
                            progress=progress)

    @property
    def converged(self) -> bool:
        """The convergence check at the optimum passed (True when it was skipped)."""
        return self.convergence is None or self.convergence.converged

    # -- display --------------------------------------------------------------------------
    def summary(self, ddf: str | None = "lme4"):
        """lme4-style summary (print it, or use its tables).

        Parameters
        ----------
        ddf : {"lme4", "satterthwaite", "kenward-roger", "containment"}
            ``"lme4"`` (default): lme4's fixed-effects table (estimate, standard error,
            t value). The others add lmerTest's ``df`` and ``Pr(>|t|)`` columns with that
            method's denominator degrees of freedom (Kenward-Roger also adjusts the
            standard errors), as ``summary()`` of an lmerTest fit.

        Returns
        -------
        LMMSummary
        """
        from .summary import LMMSummary

        return LMMSummary.from_result(self, ddf=ddf)

    def _kind(self) -> str:
        return "REML" if self.reml else "ML"

    def __str__(self) -> str:
        return str(self.summary())

"""The frozen result of a linear mixed-model fit and its lme4-style accessors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..design import Design
from ..diagnostics import SINGULAR_TOL, ConvergenceReport, is_singular_theta
from ..objective.lmm import LMMObjective, LMMSolution
from ..optim import OptSummary
from .predict import linear_predictor
from .varcorr import VarCorr, VarCorrTerm, term_group_labels

__all__ = ["LinearMixedModelResult"]


@dataclass(frozen=True, eq=False)
class LinearMixedModelResult:
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
    """

    design: Design
    reml: bool
    solution: LMMSolution
    opt: OptSummary
    convergence: ConvergenceReport | None
    objective_function: LMMObjective = field(repr=False)
    messages: tuple[str, ...] = ()

    # -- parameters -------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """Relative covariance parameters (lme4's ``getME(m, "theta")``, lme4's order)."""
        return self.solution.theta

    @property
    def beta(self) -> np.ndarray:
        """Fixed effects as an array (see :attr:`fixef` for the named version)."""
        return self.solution.beta

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return self.solution.sigma

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, named as formulaic names the columns."""
        return pd.Series(self.solution.beta, index=list(self.design.fixed.names), name="fixef")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects, ``sigma^2 (R_X' R_X)^{-1}``."""
        Ri = self.solution.RX_inv
        names = list(self.design.fixed.names)
        return pd.DataFrame(self.sigma ** 2 * (Ri @ Ri.T), index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="se")

    # -- likelihood ---------------------------------------------------------------------
    @property
    def objective(self) -> float:
        """REML criterion (REML fits) or deviance, the quantity minimized (as lme4)."""
        return self.solution.objective

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects + theta + residual variance."""
        return self.design.p + self.design.n_theta + 1

    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted log-likelihood for REML fits, as lme4's logLik)."""
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.df

    @cached_property
    def deviance(self) -> float:
        """-2 log-likelihood; for REML fits evaluated at the REML estimates with ML's
        profiled formula (lme4's ``deviance(m, REML = FALSE)``)."""
        if not self.reml:
            return self.objective
        obj = LMMObjective(self.design, reml=False)
        return obj(self.theta)

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        return self.nobs - self.df

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor (lme4's ``ngrps``)."""
        out: dict[str, int] = {}
        for t in self.design.terms:
            out.setdefault(t.group, t.nlevels)
        return out

    # -- random effects -----------------------------------------------------------------
    @cached_property
    def varcorr(self) -> VarCorr:
        """Estimated variance components: sd and correlations per term, residual sigma."""
        labels = term_group_labels([t.group for t in self.design.terms])
        terms = []
        for t, sl, lab in zip(self.design.terms, self.design.theta_slices(), labels,
                              strict=True):
            lam = t.structure.lambda_(self.theta[sl])
            terms.append(VarCorrTerm(lab, t.group, t.names, self.sigma ** 2 * lam @ lam.T))
        return VarCorr(tuple(terms), self.sigma)

    @cached_property
    def _cond_var(self) -> list:
        return self.objective_function.cond_var(self.solution)

    def ranef_cond_var(self) -> dict[str, np.ndarray]:
        """Conditional covariance matrices of the random effects, per term label:
        arrays (levels, p, p) (lme4's ``postVar``)."""
        labels = term_group_labels([t.group for t in self.design.terms])
        return dict(zip(labels, self._cond_var, strict=True))

    def ranef(self, cond_var: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor.

        Parameters
        ----------
        cond_var : bool
            Also return conditional standard deviations, in columns named
            ``"<effect>_condsd"`` (lme4's ``condVar``).

        Returns
        -------
        dict of str -> DataFrame
            Index: the grouping factor's levels; columns: the random effects (terms with
            the same grouping factor are joined, as in lme4).
        """
        out: dict[str, pd.DataFrame] = {}
        cv = self._cond_var if cond_var else None
        for k, t in enumerate(self.design.terms):
            frame = pd.DataFrame(self.solution.b[k], index=t.grouping.levels,
                                 columns=list(t.names))
            if cv is not None:
                sd = np.sqrt(np.maximum(np.diagonal(cv[k], axis1=1, axis2=2), 0.0))
                for j, n in enumerate(t.names):
                    frame[f"{n}_condsd"] = sd[:, j]
            frame.index.name = t.group
            if t.group in out:
                out[t.group] = out[t.group].join(frame, how="outer")
            else:
                out[t.group] = frame
        if cond_var:
            for g, frame in out.items():
                modes = [c for c in frame.columns if not c.endswith("_condsd")]
                out[g] = frame[modes + [c for c in frame.columns if c.endswith("_condsd")]]
        return out

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients: fixed effects plus the group's random effects."""
        fe = self.fixef
        out = {}
        for g, re in self.ranef().items():
            frame = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index,
                                 columns=fe.index)
            for c in re.columns:
                if c in frame.columns:
                    frame[c] = frame[c] + re[c].to_numpy()
                else:
                    frame[c] = re[c].to_numpy()
            out[g] = frame
        return out

    # -- fitted values, residuals, prediction --------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted values with random effects, indexed like the rows used in the fit."""
        eta = linear_predictor(self.design, self.beta, self.solution.b)
        return pd.Series(eta, index=self.design.frame.index, name="fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals: ``"response"`` (y - fitted) or ``"pearson"`` (times sqrt(weights)).

        ``scaled=True`` divides by sigma (the "scaled residuals" of the summary).
        """
        r = self.design.y - self.fitted().to_numpy()
        if type == "pearson":
            if self.design.weights is not None:
                r = r * np.sqrt(self.design.weights)
        elif type != "response":
            raise ValueError(f"unknown residual type {type!r}; use 'response' or 'pearson'")
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self.design.frame.index, name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, re_form=None,
                allow_new_levels: bool = False, offset=None) -> pd.Series:
        """Predictions with the random effects in ``re_form`` (None: all, ``"~0"``: none).

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
        """
        eta = linear_predictor(self.design, self.beta, self.solution.b, newdata, re_form,
                               allow_new_levels, offset)
        index = self.design.frame.index if newdata is None else pd.DataFrame(newdata).index
        return pd.Series(eta, index=index, name="prediction")

    # -- diagnostics ----------------------------------------------------------------------
    def is_singular(self, tol: float = SINGULAR_TOL) -> bool:
        """True when a variance is (nearly) zero or a correlation is +-1 (lme4's rule)."""
        return is_singular_theta(self.theta, self.design.theta_lower(), tol)

    @property
    def converged(self) -> bool:
        return self.convergence is None or self.convergence.converged

    # -- display --------------------------------------------------------------------------
    def summary(self):
        """lme4-style summary (print it, or use its tables)."""
        from .summary import LMMSummary

        return LMMSummary.from_result(self)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<LinearMixedModelResult {self.design.spec.formula!r} ({kind}), "
                f"nobs={self.nobs}, objective={self.objective:.4f}>")

    def __str__(self) -> str:
        return str(self.summary())

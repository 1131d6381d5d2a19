"""Frozen results of models with a residual structure: ``lmer(correlation=, variance=,
sigma=)`` and ``gls``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..design import Design
from ..diagnostics import ConvergenceReport
from ..methods import containment_df_columns, residual_model_intervals
from ..optim import OptSummary
from ..results.fit_stats import FitStatsMixin
from ..results.lmm import LinearMixedModelResult
from ..results.predict import linear_predictor
from ..results.recipe import FitRecipe, RecipeMixin
from ..results.summary import LMMSummary
from .objective import GLSObjective, GLSSolution, RSideLMMObjective
from .residual import BoundResidual

__all__ = ["GLSResult", "PQLResult", "RSideLMMResult", "structure_lines"]


def structure_lines(residual: BoundResidual, phi: np.ndarray) -> list[str]:
    """The summary's lines on the residual model (nlme's "Correlation Structure" and
    "Variance function" blocks, and a known sigma).

    Parameters
    ----------
    residual : BoundResidual
    phi : ndarray

    Returns
    -------
    list of str
    """
    lines: list[str] = []
    if residual.correlation is not None:
        c = residual.correlation
        lines += [f"Correlation structure: {c.spec.label} ({c.spec.nlme_name}), form "
                  f"{c.form.text}",
                  "  " + "  ".join(f"{k} = {v:.6g}" for k, v in
                                   residual.cor_params(phi).items())
                  + ("  (fixed)" if c.spec.fixed else "")]
    if residual.variance is not None:
        v = residual.variance
        lines += [f"Variance function: {v.spec.describe()}",
                  "  " + "  ".join(f"{k} = {x:.6g}" for k, x in
                                   residual.var_params(phi).items())]
    if residual.spec.sigma is not None:
        lines.append(f"Residual standard deviation fixed at {residual.spec.sigma:g}")
    return lines


def _residuals(r: np.ndarray, residual: BoundResidual, phi, sigma, type: str,
               scaled: bool) -> np.ndarray:
    """nlme's residual types: response, pearson (over the variance function and weights),
    normalized (whitened by the Cholesky factors of the correlation, over sigma)."""
    if type == "response":
        out = r
    elif type == "pearson":
        log_d = residual.log_sd(phi)
        out = r if log_d is None else r * np.exp(-log_d)
    elif type == "normalized":
        return residual.normalize(phi, r) / sigma
    else:
        raise ValueError(f"unknown residual type {type!r}; use 'response', 'pearson' or "
                         "'normalized'")
    return out / sigma if scaled else out


class _ResidualModelMixin:
    """``cor_params``, ``var_params`` and nlme's ``intervals`` for both result classes."""

    @property
    def cor_params(self) -> dict[str, float]:
        """Correlation parameters on nlme's natural scale: ``phi`` (AR(1), CAR(1)),
        ``phi1.., theta1..`` (ARMA), ``rho`` (compound symmetry), ``cor(i,j)`` (general),
        ``range`` and ``nugget`` (spatial). Empty without a correlation structure."""
        return self.residual.cor_params(self.phi)

    @property
    def var_params(self) -> dict[str, float]:
        """Variance-function parameters on nlme's natural scale: varIdent's standard
        deviation ratio per stratum (the reference stratum's is 1), ``power``, ``expon``,
        ``const``. Empty without a variance function."""
        return self.residual.var_params(self.phi)

    def intervals(self, level: float = 0.95) -> dict[str, pd.DataFrame]:
        """Approximate confidence intervals as nlme's ``intervals()``.

        Fixed effects: ``estimate -/+ t_{df} se`` (``gls``: ``df = n - p``; ``lmer``: the
        containment df, nlme's). Variance parameters -- random-effect standard deviations
        and correlations, the correlation and variance-function parameters, sigma -- are
        Wald intervals on nlme's transformed scale (log standard deviations, Fisher-z
        correlations, the structures' unconstrained scales, log sigma) with the covariance
        from the Hessian of the (restricted) log-likelihood there, mapped back to the
        natural scale (:mod:`mixedmodels.inference.rside_intervals`).

        Parameters
        ----------
        level : float
            Coverage probability.

        Returns
        -------
        dict of str -> pandas.DataFrame
            ``"fixed"``, ``"random"`` (lmer fits), ``"correlation"``, ``"variance"``,
            ``"sigma"``: each with columns ``lower``, ``est.``, ``upper``.
        """
        return residual_model_intervals(self, level)


@dataclass(frozen=True, eq=False, repr=False)
class RSideLMMResult(_ResidualModelMixin, LinearMixedModelResult):
    """A linear mixed model with a residual correlation structure, a variance function or
    a known residual standard deviation (what :func:`~mixedmodels.lmer` returns when given
    ``correlation=``, ``variance=`` or ``sigma=``).

    Everything of :class:`~mixedmodels.LinearMixedModelResult` applies; the residual model
    adds :attr:`cor_params`, :attr:`var_params`, :meth:`intervals` and normalized
    residuals. Satterthwaite / Kenward-Roger df and likelihood profiles assume independent
    residuals with a profiled sigma and are not available; t tests use nlme's containment
    df.

    Attributes
    ----------
    residual : BoundResidual
        The residual model on the fit's rows.
    phi : ndarray
        Its estimated parameters on the unconstrained scale.
    """

    residual: BoundResidual = field(default=None, repr=False)
    phi: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _cond_var_blocks(self) -> list:
        return self.objective_function.cond_var(self.solution, self.phi)

    def _rebuild_objective(self, method: str | None) -> RSideLMMObjective:
        return RSideLMMObjective(self.design, self.residual, self.reml, method or "auto")

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects, theta, residual-model parameters and the
        residual variance (unless it is known)."""
        return (self.design.p + self.design.n_theta + self.residual.n_par
                + (self.residual.spec.sigma is None))

    @cached_property
    def deviance(self) -> float:
        """-2 log-likelihood (for REML fits at the REML estimates, with ML's formula)."""
        if not self.reml:
            return self.objective
        obj = RSideLMMObjective(self.design, self.residual, reml=False)
        return obj(np.concatenate([self.theta, self.phi]))

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals ``y - fitted`` (conditional on the random effects).

        Parameters
        ----------
        type : {"response", "pearson", "normalized"}
            ``"pearson"``: divided by the variance function and ``1 / sqrt(weights)``;
            ``"normalized"``: also whitened by the Cholesky factors of the correlation
            matrices and divided by sigma (nlme's ``type = "normalized"``).
        scaled : bool
            Divide response / Pearson residuals by sigma.

        Returns
        -------
        pandas.Series
        """
        r = self.design.y - self._eta()
        out = _residuals(r, self.residual, self.phi, self.sigma, type, scaled)
        return pd.Series(out, index=self._index(), name="residuals")

    def _draw_residuals(self, rng: np.random.Generator) -> np.ndarray:
        return self.sigma * self.residual.draw(self.phi, rng)

    # -- inference that assumes independent residuals and a profiled sigma ------------------
    def _unavailable(self, what: str):
        raise NotImplementedError(
            f"{what} is not available for models with a residual correlation structure, a "
            "variance function or a known sigma; use m.intervals() (nlme's Wald "
            "intervals), m.coef_table(ddf='containment') or confint(method='boot')")

    @cached_property
    def _satterthwaite(self):
        self._unavailable("Satterthwaite's df")

    @cached_property
    def _kenward_roger(self):
        self._unavailable("The Kenward-Roger method")

    def coef_table(self, ddf="auto") -> pd.DataFrame:
        """Fixed-effects t tests; ``"auto"`` uses nlme's containment df.

        Parameters
        ----------
        ddf : {"auto", "containment", None}

        Returns
        -------
        pandas.DataFrame
        """
        return super().coef_table("containment" if ddf == "auto" else ddf)

    def anova_table(self, type=3, ddf="auto") -> pd.DataFrame:
        """F tests of the fixed-effect terms; ``"auto"`` uses the containment df.

        Parameters
        ----------
        type : {3, 2, 1}
        ddf : {"auto", "containment"}

        Returns
        -------
        pandas.DataFrame
        """
        return super().anova_table(type, "containment" if ddf == "auto" else ddf)

    def profile(self, which=None, alphamax: float = 0.01, progress=None):
        """Not available (see the class docstring); use :meth:`intervals`.

        Parameters
        ----------
        which, alphamax, progress
            As for :meth:`LinearMixedModelResult.profile`.

        Returns
        -------
        None
            Always raises NotImplementedError.
        """
        self._unavailable("Likelihood profiling")

    def varcorr_se(self) -> pd.DataFrame:
        """Not available (see the class docstring); :meth:`intervals` gives nlme's.

        Returns
        -------
        None
            Always raises NotImplementedError.
        """
        self._unavailable("varcorr_se")

    def confint(self, parm=None, level: float = 0.95, method: str = "wald",
                nsim: int = 500, seed=None, n_jobs: int = 1, progress=None) -> pd.DataFrame:
        """Confidence intervals: ``"wald"`` (fixed effects) or ``"boot"``; for the
        variance parameters see :meth:`intervals`.

        Parameters
        ----------
        parm, level, method, nsim, seed, n_jobs, progress
            As for :meth:`LinearMixedModelResult.confint`; ``method="profile"`` is not
            available.

        Returns
        -------
        pandas.DataFrame
        """
        if method == "profile":
            self._unavailable("confint(method='profile')")
        return super().confint(parm, level, method, nsim, seed, n_jobs, progress)

    def summary(self, ddf: str | None = "lme4"):
        """lme4-style summary with the residual model's parameters.

        Parameters
        ----------
        ddf : {"lme4", "containment"}

        Returns
        -------
        LMMSummary
        """
        base = LMMSummary.from_result(self, ddf=ddf)
        return RSideLMMSummary(**{f: getattr(base, f) for f in base.__dataclass_fields__},
                               structure=tuple(structure_lines(self.residual, self.phi)))


@dataclass(frozen=True, repr=False)
class RSideLMMSummary(LMMSummary):
    """:class:`LMMSummary` with the residual model's lines after the random effects."""

    structure: tuple[str, ...] = ()

    def report(self):
        """The printed layout (see ``ReportDisplay``)."""
        rep = super().report()
        blocks = list(rep.blocks)
        at = next((i for i, b in enumerate(blocks)
                   if isinstance(b, str) and b.startswith("Number of obs")), len(blocks))
        blocks[at + 1:at + 1] = ["", *self.structure] if self.structure else []
        return type(rep)(tuple(blocks))


# -- gls -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GLSResult(_ResidualModelMixin, FitStatsMixin, RecipeMixin):
    """A linear model fitted by generalized least squares with a residual correlation
    structure and/or variance function (what :func:`~mixedmodels.gls` returns; nlme's
    ``gls``).

    Attributes
    ----------
    design : Design
        Data and model matrix (no random effects).
    reml : bool
    solution : GLSSolution
        Estimates at the optimum.
    residual : BoundResidual
    phi : ndarray
        Residual-model parameters (unconstrained scale).
    opt : OptSummary
    convergence : ConvergenceReport or None
    objective_function : GLSObjective
        The criterion in ``phi`` (a property; see :attr:`objective_function`).
    messages : tuple of str
    recipe : FitRecipe or None
    """

    design: Design
    reml: bool
    solution: GLSSolution
    residual: BoundResidual
    phi: np.ndarray
    opt: OptSummary
    convergence: ConvergenceReport | None
    #: the fit's criterion, or None for a fit in closed form (.closed_form): then
    #: :attr:`objective_function` builds it when first asked for
    criterion: GLSObjective | None = field(repr=False)
    messages: tuple[str, ...] = ()
    recipe: FitRecipe | None = field(default=None, repr=False)

    @cached_property
    def objective_function(self) -> GLSObjective:
        """The criterion ``phi -> -2 (restricted) log-likelihood`` of this model (what
        :meth:`intervals` differentiates). A model whose residual model has no free
        parameter is fitted in closed form (:mod:`~mixedmodels.rside.closed_form`)
        without it; it is then built here on first use, from the same rows."""
        if self.criterion is not None:
            return self.criterion
        return GLSObjective(self.design.X, self.design.y - self.design.offset,
                            self.residual, reml=self.reml)

    @property
    def beta(self) -> np.ndarray:
        """Coefficients as an array (:attr:`fixef` names them)."""
        return self.solution.beta

    @property
    def theta(self) -> np.ndarray:
        """No random effects: empty."""
        return np.zeros(0)

    @property
    def sigma(self) -> float:
        """Residual standard deviation (ML: ``sqrt(RSS / n)``, REML ``/(n - p)``)."""
        return self.solution.sigma

    @property
    def objective(self) -> float:
        """-2 (restricted) log-likelihood, the criterion minimized."""
        return self.solution.objective

    @property
    def loglik(self) -> float:
        """(Restricted) log-likelihood, as nlme's ``logLik(gls)``."""
        return -0.5 * self.objective

    @property
    def df(self) -> int:
        """Coefficients, residual-model parameters and the residual variance."""
        return self.design.p + self.residual.n_par + (self.residual.spec.sigma is None)

    @cached_property
    def deviance(self) -> float:
        """-2 log-likelihood (for REML fits at the REML estimates, with ML's formula)."""
        if not self.reml:
            return self.objective
        ml = GLSObjective(self.design.X, self.design.y - self.design.offset, self.residual,
                          reml=False)
        return ml(self.phi)

    @property
    def converged(self) -> bool:
        """The convergence check passed (True when skipped)."""
        return self.convergence is None or self.convergence.converged

    def _vcov_matrix(self) -> np.ndarray:
        """nlme's ``varBeta``: ``RSS / (n - p) (X' V^{-1} X)^{-1}`` for REML and ML fits
        alike (``sigma^2 (X' V^{-1} X)^{-1}`` when sigma is known)."""
        Ri = self.solution.RX_inv
        n, p = self.design.nobs, self.design.p
        s2 = self.sigma ** 2 if self.residual.spec.sigma is not None else \
            self.solution.pwrss / (n - p)
        return s2 * (Ri @ Ri.T)

    def fitted(self) -> pd.Series:
        """Fitted values ``X beta + offset``.

        Returns
        -------
        pandas.Series
        """
        eta = self.design.X @ self.beta + self.design.offset
        return pd.Series(eta, index=self.design.frame.index, name="fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals ``y - fitted``.

        Parameters
        ----------
        type : {"response", "pearson", "normalized"}
            As for :meth:`RSideLMMResult.residuals`.
        scaled : bool
            Divide by sigma.

        Returns
        -------
        pandas.Series
        """
        r = self.design.y - self.fitted().to_numpy()
        out = _residuals(r, self.residual, self.phi, self.sigma, type, scaled)
        return pd.Series(out, index=self.design.frame.index, name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, offset=None) -> pd.Series:
        """Predictions ``X beta + offset`` (on ``newdata`` when given).

        Parameters
        ----------
        newdata : DataFrame, optional
        offset : str or array-like, optional
            Offset for ``newdata``.

        Returns
        -------
        pandas.Series
        """
        eta = linear_predictor(self.design, self.beta, [], newdata, None, False, offset)
        index = self.design.frame.index if newdata is None else pd.DataFrame(newdata).index
        return pd.Series(eta, index=index, name="prediction")

    def coef_table(self) -> pd.DataFrame:
        """Coefficients with t tests on ``n - p`` df (nlme's ``summary(gls)``).

        Returns
        -------
        pandas.DataFrame
            ``Value``, ``Std.Error``, ``t-value``, ``p-value`` per coefficient.
        """
        from scipy import stats

        se = self.se
        t = self.fixef / se
        df = self.nobs - self.design.p
        return pd.DataFrame({"Value": self.fixef, "Std.Error": se, "t-value": t,
                             "p-value": 2.0 * stats.t.sf(np.abs(t), df)})

    def summary(self) -> str:
        """nlme-style text summary: criteria, residual model, coefficients.

        Returns
        -------
        str
        """
        kind = "REML" if self.reml else "maximum likelihood"
        lines = [f"Generalized least squares fit by {kind}",
                 f"  Model: {self.design.spec.formula}",
                 f"  AIC {self.aic:.4f}  BIC {self.bic:.4f}  logLik {self.loglik:.4f}", ""]
        lines += structure_lines(self.residual, self.phi)
        lines += ["", "Coefficients:", self.coef_table().to_string(), "",
                  f"Residual standard error: {self.sigma:.6g}",
                  f"Degrees of freedom: {self.nobs} total; {self.nobs - self.design.p} "
                  "residual"]
        lines += [m for m in self.messages]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<GLSResult {self.design.spec.formula!r} ({'REML' if self.reml else 'ML'}), "
                f"nobs={self.nobs}, objective={self.objective:.4f}>")


# -- glmm_pql --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PQLResult(RecipeMixin):
    """A GLMM fitted by penalized quasi-likelihood (what :func:`~mixedmodels.glmm_pql`
    returns; ``MASS::glmmPQL``).

    The estimates are those of the last working linear mixed model, fitted by maximum
    likelihood; there is no likelihood of the data (``loglik`` is NaN, as glmmPQL's).

    Attributes
    ----------
    design : Design
        The GLMM's design (response, trials, offset).
    family : Family
    lmm : LinearMixedModelResult
        The final working LMM (working response and weights).
    iterations : int
        Working LMMs fitted.
    converged : bool
        The linear predictor settled before ``niter`` fits.
    messages : tuple of str
    recipe : FitRecipe or None
    """

    design: Design
    family: object
    lmm: LinearMixedModelResult
    iterations: int
    converged: bool
    messages: tuple[str, ...] = ()
    recipe: FitRecipe | None = field(default=None, repr=False)

    @property
    def fixef(self) -> pd.Series:
        """Fixed effects (link scale)."""
        return self.lmm.fixef

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects (the working LMM's)."""
        return self.lmm.vcov

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return self.lmm.se

    @property
    def varcorr(self):
        """Random-effect standard deviations and correlations, and the residual (working)
        standard deviation."""
        return self.lmm.varcorr

    @property
    def sigma(self) -> float:
        """Residual standard deviation of the working model (the quasi-likelihood scale;
        near 1 for binomial / Poisson data without overdispersion)."""
        return self.lmm.sigma

    @property
    def cor_params(self) -> dict[str, float]:
        """Correlation parameters of the working model's residuals (nlme's scale)."""
        return getattr(self.lmm, "cor_params", {})

    @property
    def var_params(self) -> dict[str, float]:
        """Variance-function parameters besides the working weights."""
        return getattr(self.lmm, "var_params", {})

    @property
    def loglik(self) -> float:
        """NaN: PQL maximizes no likelihood of the data (glmmPQL's ``logLik`` is NA)."""
        return float("nan")

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.design.nobs

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects (link scale), per grouping factor.

        Returns
        -------
        dict of str -> pandas.DataFrame
        """
        return self.lmm.ranef()

    def fitted(self, type: str = "response") -> pd.Series:
        """Fitted values with the random effects: means (``"response"``) or the linear
        predictor (``"link"``).

        Parameters
        ----------
        type : {"response", "link"}

        Returns
        -------
        pandas.Series
        """
        eta = self.lmm.fitted().to_numpy() + self.design.offset
        if type == "link":
            out = eta
        elif type == "response":
            out = self.family.link.linkinv(eta)
        else:
            raise ValueError(f"type must be 'response' or 'link', not {type!r}")
        return pd.Series(out, index=self.design.frame.index, name="fitted")

    def coef_table(self) -> pd.DataFrame:
        """Fixed effects with t tests on the containment df (glmmPQL's ``summary``, an lme
        summary).

        Returns
        -------
        pandas.DataFrame
        """
        from scipy import stats

        df = containment_df_columns(self.lmm.design)
        t = self.fixef / self.se
        return pd.DataFrame({"Value": self.fixef, "Std.Error": self.se, "DF": df,
                             "t-value": t, "p-value": 2.0 * stats.t.sf(np.abs(t), df)})

    def summary(self) -> str:
        """Text summary: family, random effects, residual structure, coefficients.

        Returns
        -------
        str
        """
        lines = [f"Generalized linear mixed model fit by penalized quasi-likelihood "
                 f"({self.iterations} iterations{'' if self.converged else ', not converged'})",
                 f"  Family: {self.family.label()}",
                 f"  Formula: {self.design.spec.formula}", "",
                 "Random effects:", self.varcorr.table(digits=4).to_text()]
        if isinstance(self.lmm, RSideLMMResult):
            lines += ["", *structure_lines(self.lmm.residual, self.lmm.phi)]
        lines += ["", "Fixed effects:", self.coef_table().to_string()]
        return "\n".join(lines + list(self.messages))

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<PQLResult {self.design.spec.formula!r} ({self.family.label()}), "
                f"nobs={self.nobs}, iterations={self.iterations}>")

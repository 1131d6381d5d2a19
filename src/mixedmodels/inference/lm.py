r"""``lm``: the ordinary (weighted) least-squares fit of a model without random effects.

It is the null model of likelihood-ratio tests of random effects (``mm.anova(m1, m0)``) and
of parametric-bootstrap comparisons, so it offers what those need: ``loglik``, ``df``,
``nobs``, ``design``, ``simulate`` and ``refit``.

With prior weights ``w`` and ``W = diag(w)`` the fit is ``beta = (X'WX)^{-1} X'Wy``. The
log-likelihood is R's ``logLik.lm`` (maximum likelihood, ``sigma^2 = RSS / n``):

.. math:: \ell = \tfrac12 \Big[\sum_i \log w_i - n \big(\log 2\pi + 1 - \log n
          + \log \textstyle\sum_i w_i r_i^2\big)\Big]

while ``sigma`` and ``vcov`` use the unbiased ``RSS / (n - p)`` as ``summary.lm`` does.
``df`` counts the coefficients and the residual variance (``p + 1``), as R's ``logLik``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import DataError, FormulaError
from ..design import Design, materialize
from ..formula import parse_formula
from ..results.fit_stats import FitStatsMixin
from ..results.recipe import FitRecipe, RecipeMixin

__all__ = ["LinearModelResult", "fit_lm", "lm"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class LinearModelResult(FitStatsMixin, RecipeMixin):
    """A fitted linear model without random effects (what :func:`lm` returns).

    Attributes
    ----------
    design : Design
        Data and model matrix (``design.terms`` is empty).
    beta : ndarray (p,)
        Least-squares coefficients.
    rss : float
        Weighted residual sum of squares ``sum w_i r_i^2``.
    RX_inv : ndarray (p, p)
        Inverse of the triangular factor ``R`` of ``W^{1/2} X = Q R``:
        ``(X'WX)^{-1} = RX_inv RX_inv'``.
    recipe : FitRecipe or None
        ``lm`` and its arguments (for :meth:`update`).
    """

    design: Design
    beta: np.ndarray
    rss: float
    RX_inv: np.ndarray
    recipe: FitRecipe | None = field(default=None, repr=False)

    reml = False

    # -- sizes and likelihood ------------------------------------------------------------
    @property
    def p(self) -> int:
        """Number of coefficients (columns of ``X`` after dropping aliased ones)."""
        return self.design.p

    @property
    def df(self) -> int:
        """Number of parameters: coefficients and the residual variance."""
        return self.p + 1

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom ``n - p`` (R's ``df.residual``)."""
        return self.nobs - self.p

    @property
    def theta(self) -> np.ndarray:
        """No random effects: an empty theta (lets generic inference code treat fits alike)."""
        return np.zeros(0)

    @cached_property
    def loglik(self) -> float:
        """Maximum-likelihood log-likelihood (R's ``logLik(lm)``)."""
        n = self.nobs
        w = self.design.weights
        sum_log_w = 0.0 if w is None else float(np.sum(np.log(w)))
        return 0.5 * (sum_log_w - n * (_LOG_2PI + 1.0 - np.log(n) + np.log(self.rss)))

    @cached_property
    def restricted_loglik(self) -> float:
        r"""REML log-likelihood at ``sigma^2 = RSS / (n - p)``:
        ``-[(n-p)(1 + log(2 pi RSS/(n-p))) + log|X'WX| - log|W|] / 2`` (the null model of an
        RLRT; RLRsim's ``reml.H0 / 2``)."""
        n, p = self.nobs, self.p
        w = self.design.weights
        sum_log_w = 0.0 if w is None else float(np.sum(np.log(w)))
        logdet_xtx = -2.0 * float(np.sum(np.log(np.abs(np.diag(self.RX_inv)))))
        dof = n - p
        return -0.5 * (dof * (1.0 + _LOG_2PI + np.log(self.rss / dof)) + logdet_xtx - sum_log_w)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the column lme4's ``anova`` shows; R's ``deviance(lm)`` is the
        residual sum of squares, available as :attr:`rss`)."""
        return -2.0 * self.loglik

    @property
    def objective(self) -> float:
        """The deviance, ``-2 log L``: the criterion a mixed model's ``objective`` is
        compared with in likelihood-ratio tests."""
        return self.deviance

    # -- coefficients --------------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Residual standard error ``sqrt(RSS / (n - p))``."""
        return float(np.sqrt(self.rss / self.df_resid))

    def _vcov_matrix(self) -> np.ndarray:
        return self.sigma ** 2 * (self.RX_inv @ self.RX_inv.T)

    def coef_table(self) -> pd.DataFrame:
        """t tests of the coefficients, as R's ``summary.lm``.

        Returns
        -------
        pandas.DataFrame
            One row per coefficient; columns ``Estimate``, ``Std. Error``, ``df`` (``n - p``),
            ``t value`` (estimate / SE) and ``Pr(>|t|)`` (two-sided, Student's t on ``df``).
        """
        est, se = self.fixef, self.se
        t = est / se
        df = float(self.df_resid)
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                             "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(t), df)})

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """t-based intervals for the coefficients (R's ``confint.lm``).

        ``estimate +- t_{(1 + level)/2, n - p} * SE``.

        Parameters
        ----------
        level : float
            Coverage probability.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, one row per coefficient.
        """
        q = stats.t.ppf(0.5 + level / 2.0, self.df_resid)
        est, se = self.fixef, self.se
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se})

    # -- fitted values, simulation, refitting -------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted values ``X beta + offset``.

        Returns
        -------
        pandas.Series
            Indexed like the rows of the data the model used.
        """
        return pd.Series(self.design.X @ self.beta + self.design.offset,
                         index=self.design.frame.index, name="fitted")

    def residuals(self) -> pd.Series:
        """Response residuals ``y - X beta - offset`` (unweighted).

        Returns
        -------
        pandas.Series
            Indexed like the rows of the data the model used.
        """
        return pd.Series(self.design.y - self.fitted().to_numpy(),
                         index=self.design.frame.index, name="residuals")

    def simulate(self, nsim: int = 1, seed=None, re_form=None) -> pd.DataFrame:
        """New responses ``X beta + offset + sigma e / sqrt(w)``, one column per replicate.

        Uses the same per-replicate random streams as the mixed-model ``simulate``, so
        replicate ``i`` of a seed is the same whatever ``nsim`` is.

        Parameters
        ----------
        nsim : int
            Number of simulated responses.
        seed : int or numpy.random.SeedSequence, optional
            Seed of the replicate streams; None draws fresh entropy.
        re_form : None
            Accepted for the mixed-model signature; a linear model has no random effects.

        Returns
        -------
        pandas.DataFrame
            Columns ``sim_1 ... sim_nsim``, rows as the fitting data.
        """
        from .simulate import simulate_frame, simulate_lm_one

        del re_form  # no random effects to condition on
        return simulate_frame(self, nsim, seed, lambda rng: simulate_lm_one(self, rng))

    def refit(self, y) -> LinearModelResult:
        """The same model fitted to a new response (same rows, same model matrix).

        Parameters
        ----------
        y : array-like (n,)
            New response, one value per row the model used.

        Returns
        -------
        LinearModelResult
        """
        return self._require_recipe().fit_design(
            self.design.with_response(np.asarray(y, dtype=float)))

    def __repr__(self) -> str:
        return (f"<LinearModelResult {self.design.spec.formula!r}, nobs={self.nobs}, "
                f"logLik={self.loglik:.4f}>")

    def _repr_html_(self) -> str:
        from .format import frame_cells

        return (f"<p>{html.escape(repr(self))}</p>"
                + frame_cells(self.coef_table(), digits=4, title="Coefficients").to_html())


def fit_lm(design: Design) -> LinearModelResult:
    """Least-squares fit of a materialized design (QR of ``W^{1/2} X``).

    Parameters
    ----------
    design : Design
        A design without random-effects terms (``materialize(..., require_random=False)``).

    Returns
    -------
    LinearModelResult
    """
    X, y = design.X, design.y - design.offset
    w = design.weights
    if w is not None:
        sw = np.sqrt(w)
        X, y = X * sw[:, None], y * sw
    if design.p == 0:
        return LinearModelResult(design, np.zeros(0), float(y @ y), np.zeros((0, 0)))
    Q, R = np.linalg.qr(X)
    beta = np.linalg.solve(R, Q.T @ y)
    resid = y - X @ beta
    RX_inv = np.linalg.inv(R)
    return LinearModelResult(design, beta, float(resid @ resid), RX_inv,
                             recipe=FitRecipe.make(None, design.spec.formula, None, {},
                                                   fit_lm, {}))


def lm(formula: str, data: pd.DataFrame, *, weights=None, offset=None,
       contrasts: dict | None = None) -> LinearModelResult:
    """Fit a linear model without random effects (R's ``lm``).

    Parameters
    ----------
    formula : str
        ``"response ~ terms"`` in formulaic's syntax (treatment contrasts as in R);
        ``offset(...)`` terms are allowed. Random-effects terms are refused.
    data : pandas.DataFrame
    weights, offset : str or array-like, optional
        Prior weights / offset, as in :func:`mixedmodels.lmer`.
    contrasts : dict, optional
        Contrasts of categorical predictors by column, as in :func:`mixedmodels.lmer`.

    Returns
    -------
    LinearModelResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m0 = mm.lm("Reaction ~ Days", mm.datasets.load("sleepstudy"))
    >>> round(m0.loglik, 2)
    -950.15
    """
    spec = parse_formula(formula)
    if spec.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms; fit it with mm.lmer(), or drop "
            "the (... | group) terms for an ordinary linear model"
        )
    design = materialize(spec, data, weights=weights, offset=offset, require_random=False,
                         contrasts=contrasts)
    if design.p >= design.nobs:
        raise DataError(f"{design.p} coefficients for {design.nobs} observations: too few "
                        "observations for a least-squares fit")
    recipe = FitRecipe.make(lm, formula, data, {"weights": weights, "offset": offset},
                            fit_lm, {})
    return fit_lm(design).with_recipe(recipe)

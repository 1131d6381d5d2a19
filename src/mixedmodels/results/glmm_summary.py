"""lme4-style summary of a GLMM fit: tables as DataFrames, text laid out as lme4 prints it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..display.tables import Report
from .format import r_format
from .summary import (
    SIGNIF_LEGEND,
    SummaryDisplay,
    _corr_blocks,
    coef_table_cells,
    fit_header_table,
    fit_statistics,
    fixef_correlation,
    format_groups_line,
    resid_table,
    significance_stars,
)
from .varcorr import VarCorr

__all__ = ["GLMMSummary", "format_z_table", "significance_stars"]


def format_z_table(table: pd.DataFrame, digits: int = 4) -> str:
    """Estimate / Std. Error / z value / Pr(>|z|) with significance stars."""
    return coef_table_cells(table, digits).to_text()


def _method_title(nagq: int) -> str:
    base = "Generalized linear mixed model fit by maximum likelihood"
    if nagq == 1:
        return base + " (Laplace Approximation)"
    if nagq > 1:
        return base + f" (Adaptive Gauss-Hermite Quadrature, nAGQ = {nagq})"
    return base + " (nAGQ = 0: fixed effects estimated in PIRLS)"


@dataclass(frozen=True, repr=False)
class GLMMSummary(SummaryDisplay):
    """Summary of a :class:`~mixedmodels.results.glmm.GeneralizedLinearMixedModelResult`.

    Attributes
    ----------
    coefficients : DataFrame
        Estimate, Std. Error, z value, Pr(>|z|) (Wald tests).
    varcorr : VarCorr
    fixef_corr : DataFrame
        Correlation of the fixed-effect estimates.
    scaled_residuals : ndarray
        Pearson residuals divided by sigma.
    fit_stats : dict
        AIC, BIC, logLik, deviance (-2 logLik), df.resid.
    """

    formula: str
    family: str
    nagq: int
    fit_stats: dict
    coefficients: pd.DataFrame
    varcorr: VarCorr
    fixef_corr: pd.DataFrame
    scaled_residuals: np.ndarray
    nobs: int
    ngroups: dict
    messages: tuple

    @classmethod
    def from_result(cls, m) -> GLMMSummary:
        """The summary of a fit (what ``m.summary()`` returns).

        Parameters
        ----------
        m : GeneralizedLinearMixedModelResult
            A fitted model.

        Returns
        -------
        GLMMSummary
        """
        se = m.se
        z = m.fixef / se
        coefs = pd.DataFrame({"Estimate": m.fixef, "Std. Error": se, "z value": z,
                              "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z.to_numpy()))})
        corr = fixef_correlation(m.vcov)
        fit = fit_statistics(m)
        return cls(m.design.spec.formula, m.family.label(), m.nAGQ, fit, coefs, m.varcorr,
                   corr, m.summary_residuals(), m.nobs, m.ngroups,
                   m.messages)

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        q = np.quantile(self.scaled_residuals, [0, 0.25, 0.5, 0.75, 1.0])
        blocks = [_method_title(self.nagq), f" Family: {self.family}",
                  f"Formula: {self.formula}", "", fit_header_table(self.fit_stats), "",
                  "Scaled residuals: ", resid_table(r_format(np.round(q, 4), 4)), "",
                  "Random effects:", self.varcorr.table(digits=4, variance=True),
                  format_groups_line(self.nobs, self.ngroups), "", "Fixed effects:",
                  coef_table_cells(self.coefficients), "---", SIGNIF_LEGEND]
        blocks += _corr_blocks(self.fixef_corr)
        for msg in self.messages:
            blocks += ["", msg]
        return Report(tuple(blocks))

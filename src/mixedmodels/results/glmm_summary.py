"""lme4-style summary of a GLMM fit: tables as DataFrames, text laid out as lme4 prints it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .format import format_table, r_format
from .summary import (
    fit_statistics,
    fixef_correlation,
    format_fit_header,
    format_fixef_corr,
    format_groups_line,
)
from .varcorr import VarCorr

__all__ = ["GLMMSummary", "format_z_table", "significance_stars"]

#: R's significance codes: (upper p-value bound, symbol).
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " "))
#: Smallest p-value R prints as a number (``.Machine$double.eps``).
_P_FLOOR = 2.2e-16
#: Significant digits of printed p-values (R's ``format.pval(digits = 3)``).
_P_DIGITS = 3
#: Below this R switches p-values to scientific notation.
_P_SCI = 1e-4


def significance_stars(p: float) -> str:
    for bound, sym in _STARS:
        if p < bound:
            return sym
    return " "


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    if p < _P_FLOOR:
        return "<2e-16"
    if p < _P_SCI:
        return f"{p:.{_P_DIGITS - 1}e}"
    return f"{p:.{_P_DIGITS}g}"


def format_z_table(table: pd.DataFrame, digits: int = 4) -> str:
    """Estimate / Std. Error / z value / Pr(>|z|) with significance stars."""
    k = len(table)
    est_se = r_format(np.concatenate([table["Estimate"], table["Std. Error"]]), digits)
    z = r_format(np.round(table["z value"].to_numpy(float), 3), digits)
    p = table["Pr(>|z|)"].to_numpy(float)
    rows = [[str(idx), est_se[i], est_se[k + i], z[i], _format_p(p[i]),
             significance_stars(p[i])] for i, idx in enumerate(table.index)]
    return format_table(["", "Estimate", "Std. Error", "z value", "Pr(>|z|)", ""], rows,
                        left_cols=1)


def _method_title(nagq: int) -> str:
    base = "Generalized linear mixed model fit by maximum likelihood"
    if nagq == 1:
        return base + " (Laplace Approximation)"
    if nagq > 1:
        return base + f" (Adaptive Gauss-Hermite Quadrature, nAGQ = {nagq})"
    return base + " (nAGQ = 0: fixed effects estimated in PIRLS)"


@dataclass(frozen=True)
class GLMMSummary:
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
                   corr, m.residuals("pearson", scaled=True).to_numpy(), m.nobs, m.ngroups,
                   m.messages)

    def _resid_block(self) -> str:
        q = np.quantile(self.scaled_residuals, [0, 0.25, 0.5, 0.75, 1.0])
        vals = r_format(np.round(q, 4), 4)
        names = ["Min", "1Q", "Median", "3Q", "Max"]
        width = max(len(v) for v in vals)
        return " ".join(n.rjust(width) for n in names) + "\n" + " ".join(
            v.rjust(width) for v in vals)

    def __str__(self) -> str:
        lines = [_method_title(self.nagq), f" Family: {self.family}",
                 f"Formula: {self.formula}", "", format_fit_header(self.fit_stats), "",
                 "Scaled residuals: ", self._resid_block(), "", "Random effects:",
                 self.varcorr.to_text(digits=4, variance=True)]
        lines.append(format_groups_line(self.nobs, self.ngroups))
        lines += ["", "Fixed effects:", format_z_table(self.coefficients), "---",
                  "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
        lines += format_fixef_corr(self.fixef_corr)
        for msg in self.messages:
            lines += ["", msg]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

"""lme4-style summary of a linear mixed-model fit: tables as DataFrames, text as lme4 prints."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .format import format_table, r_format
from .varcorr import VarCorr

__all__ = [
    "LMMSummary",
    "fit_statistics",
    "fixef_correlation",
    "format_coef_table",
    "format_fit_header",
    "format_fixef_corr",
    "format_groups_line",
]

#: lme4 does not print the correlation of fixed effects above this many coefficients.
MAX_CORR_PRINT = 12


_VOWELS = set("aeiou")


def _abbreviate(name: str, width: int = 6) -> str:
    """Column labels of the correlation table as lme4 prints them (R's ``abbreviate``:
    formulaic's ``period[T.2]`` -> ``period2`` -> drop lower-case vowels from the right,
    then lower-case letters, then truncate: ``perid2``)."""
    if name == "Intercept":
        return "(Intr)"
    r_name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name).replace("**", "^")
    chars = list(r_name.replace(" ", ""))
    for drop in (lambda c: c in _VOWELS, str.islower):
        i = len(chars) - 1
        while len(chars) > width and i > 0:
            if drop(chars[i]):
                del chars[i]
            i -= 1
    return "".join(chars[:width])


def fit_statistics(m) -> dict[str, float]:
    """The ``AIC BIC logLik deviance df.resid`` line's values for a fit."""
    return {"AIC": m.aic, "BIC": m.bic, "logLik": m.loglik, "deviance": m.deviance,
            "df.resid": m.df_resid}


def fixef_correlation(vcov: pd.DataFrame) -> pd.DataFrame:
    """Correlation matrix of the fixed-effect estimates from their covariance."""
    v = vcov.to_numpy()
    d = np.sqrt(np.diag(v))
    return pd.DataFrame(v / np.outer(d, d), index=vcov.index, columns=vcov.columns)


def format_groups_line(nobs: int, ngroups: dict) -> str:
    """``Number of obs: 180, groups:  Subject, 18`` (lme4 separates factors by ``; ``)."""
    groups = "; ".join(f"{g}, {n}" for g, n in ngroups.items())
    return f"Number of obs: {nobs}, groups:  {groups}"


def format_fixef_corr(corr: pd.DataFrame) -> list[str]:
    """lme4's "Correlation of Fixed Effects" block (lines, possibly empty): the lower
    triangle to 3 decimals with abbreviated column labels, or a note above
    ``MAX_CORR_PRINT`` coefficients."""
    p = len(corr)
    if p > MAX_CORR_PRINT:
        return ["", f"Correlation matrix not shown by default, as p = {p} > {MAX_CORR_PRINT}."]
    if p <= 1:
        return []
    names = list(corr.index)
    rows = []
    for i in range(1, p):
        cells = [f"{corr.iloc[i, j]:.3f}" for j in range(i)]
        rows.append([names[i]] + cells + [""] * (p - 1 - i))
    header = [""] + [_abbreviate(n) for n in names[:-1]]
    return ["", "Correlation of Fixed Effects:", format_table(header, rows, left_cols=1)]


def format_coef_table(table: pd.DataFrame, digits: int = 4) -> str:
    """Fixed-effects table with estimate and standard error formatted together (R's rule)."""
    est_se = r_format(np.concatenate([table.iloc[:, 0], table.iloc[:, 1]]), digits)
    k = len(table)
    cols = [est_se[:k], est_se[k:]]
    for j in range(2, table.shape[1]):
        name = table.columns[j]
        vals = table.iloc[:, j].to_numpy(dtype=float)
        if name.startswith("Pr("):
            cols.append([_format_p(v) for v in vals])
        elif name == "df":
            cols.append(r_format(vals, digits))
        else:
            cols.append(r_format(np.round(vals, 3), digits))
    rows = [[str(idx)] + [c[i] for c in cols] for i, idx in enumerate(table.index)]
    return format_table(["", *list(table.columns)], rows, left_cols=1)


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    if p < 2e-16:
        return "<2e-16"
    if p < 1e-4:
        return f"{p:.2e}"
    return f"{p:.4f}" if p < 0.001 else f"{p:.3f}"


def format_fit_header(stats: dict[str, float]) -> str:
    """``AIC BIC logLik deviance df.resid`` line of an ML summary."""
    names = list(stats)
    vals = []
    for n in names:
        v = stats[n]
        vals.append(f"{v:.0f}" if n == "df.resid" else f"{v:.1f}")
    width = max(8, *(len(v) for v in vals))
    head = " ".join(n.rjust(width) for n in names)
    body = " ".join(v.rjust(width) for v in vals)
    return head + "\n" + body


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits - log10(max |x|)`` decimals (R rounds the
    fractional number of decimals to the nearest integer)."""
    mx = float(np.max(np.abs(x)))
    if mx <= 0:
        return np.round(x, digits)
    return np.round(x, max(0, int(np.floor(digits - np.log10(mx) + 0.5))))


def _r_number(x: float) -> str:
    """R's default ``format`` of one number (up to 7 significant digits, no trailing .0)."""
    text = f"{x:.7g}" if abs(x) < 1e15 else repr(x)
    if "e" not in text and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _resid_quantiles(r: np.ndarray, digits: int = 4) -> str:
    # lme4 prints zapsmall(quantile(r), digits + 1) with print(digits = digits)
    q = _zapsmall(np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0]), digits + 1)
    vals = r_format(q, digits)
    names = ["Min", "1Q", "Median", "3Q", "Max"]
    width = max(len(v) for v in vals)
    return " ".join(n.rjust(width) for n in names) + "\n" + " ".join(
        v.rjust(width) for v in vals)


@dataclass(frozen=True)
class LMMSummary:
    """Summary of a :class:`LinearMixedModelResult`.

    Attributes
    ----------
    coefficients : DataFrame
        Estimate, Std. Error, t value (one row per fixed effect).
    varcorr : VarCorr
    fixef_corr : DataFrame
        Correlation of the fixed-effect estimates.
    scaled_residuals : ndarray
        Pearson residuals divided by sigma.
    """

    formula: str
    reml: bool
    objective: float
    fit_stats: dict
    coefficients: pd.DataFrame
    varcorr: VarCorr
    fixef_corr: pd.DataFrame
    scaled_residuals: np.ndarray
    nobs: int
    ngroups: dict
    messages: tuple

    @classmethod
    def from_result(cls, m) -> LMMSummary:
        """The summary of a fit (what ``m.summary()`` returns).

        Parameters
        ----------
        m : LinearMixedModelResult
            A fitted model.

        Returns
        -------
        LMMSummary
        """
        se = m.se
        coefs = pd.DataFrame({"Estimate": m.fixef, "Std. Error": se,
                              "t value": m.fixef / se})
        corr = fixef_correlation(m.vcov)
        stats = fit_statistics(m)
        return cls(m.design.spec.formula, m.reml, m.objective, stats, coefs, m.varcorr, corr,
                   m.residuals("pearson", scaled=True).to_numpy(), m.nobs, m.ngroups,
                   m.messages)

    def __str__(self) -> str:
        lines = [
            f"Linear mixed model fit by {'REML' if self.reml else 'maximum likelihood'}",
            f"Formula: {self.formula}",
            "",
        ]
        if self.reml:
            lines.append(f"REML criterion at convergence: {_r_number(round(self.objective, 1))}")
        else:
            lines.append(format_fit_header(self.fit_stats))
        lines += ["", "Scaled residuals: ", _resid_quantiles(self.scaled_residuals), "",
                  "Random effects:", self.varcorr.to_text(digits=4, variance=True)]
        lines.append(format_groups_line(self.nobs, self.ngroups))
        lines += ["", "Fixed effects:", format_coef_table(self.coefficients)]
        lines += format_fixef_corr(self.fixef_corr)
        for msg in self.messages:
            lines += ["", msg]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

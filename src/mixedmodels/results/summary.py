"""lme4-style summary of a linear mixed-model fit: tables as DataFrames, text as lme4 prints."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..display.tables import Report, ReportDisplay, Table
from .format import cell_table, r_format
from .varcorr import VarCorr

__all__ = [
    "DDF_TITLES",
    "SIGNIF_LEGEND",
    "LMMSummary",
    "coef_table_cells",
    "fit_statistics",
    "fixef_corr_table",
    "fixef_correlation",
    "format_coef_table",
    "format_fit_header",
    "format_fixef_corr",
    "format_groups_line",
    "significance_stars",
]

#: lme4 does not print the correlation of fixed effects above this many coefficients.
MAX_CORR_PRINT = 12
#: lmerTest's title suffix per df method.
DDF_TITLES = {"satterthwaite": "Satterthwaite's method",
              "kenward-roger": "Kenward-Roger's method",
              "containment": "the containment (inner-outer) method"}
#: R's legend of the significance codes.
SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"
#: R's significance codes: (upper p-value bound, symbol).
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " "))


def significance_stars(p: float) -> str:
    """R's significance code of a p-value (blank for NaN)."""
    if not np.isfinite(p):
        return ""
    for bound, sym in _STARS:
        if p < bound:
            return sym
    return " "


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


def fixef_corr_table(corr: pd.DataFrame) -> Table | None:
    """lme4's "Correlation of Fixed Effects" table: the lower triangle to 3 decimals with
    abbreviated column labels; None when not shown (one coefficient, or above
    ``MAX_CORR_PRINT``)."""
    p = len(corr)
    if p <= 1 or p > MAX_CORR_PRINT:
        return None
    names = list(corr.index)
    rows = []
    for i in range(1, p):
        cells = [f"{corr.iloc[i, j]:.3f}" for j in range(i)]
        rows.append([names[i]] + cells + [""] * (p - 1 - i))
    header = [""] + [_abbreviate(n) for n in names[:-1]]
    return cell_table(header, rows, left_cols=1, title="Correlation of Fixed Effects")


def format_fixef_corr(corr: pd.DataFrame) -> list[str]:
    """lme4's "Correlation of Fixed Effects" block (lines, possibly empty), or a note above
    ``MAX_CORR_PRINT`` coefficients."""
    p = len(corr)
    if p > MAX_CORR_PRINT:
        return ["", f"Correlation matrix not shown by default, as p = {p} > {MAX_CORR_PRINT}."]
    table = fixef_corr_table(corr)
    return [] if table is None else ["", "Correlation of Fixed Effects:", table.to_text()]


def _corr_blocks(corr: pd.DataFrame) -> list:
    p = len(corr)
    if p > MAX_CORR_PRINT:
        return ["", f"Correlation matrix not shown by default, as p = {p} > {MAX_CORR_PRINT}."]
    table = fixef_corr_table(corr)
    return [] if table is None else ["", "Correlation of Fixed Effects:", table]


def coef_table_cells(table: pd.DataFrame, digits: int = 4, stars: bool = True) -> Table:
    """Fixed-effects table with estimate and standard error formatted together (R's rule),
    p-values as R prints them and, when there are p-values, significance stars."""
    est_se = r_format(np.concatenate([table.iloc[:, 0], table.iloc[:, 1]]), digits)
    k = len(table)
    cols = [est_se[:k], est_se[k:]]
    pcol = None
    for j in range(2, table.shape[1]):
        name = table.columns[j]
        vals = table.iloc[:, j].to_numpy(dtype=float)
        if name.startswith("Pr("):
            cols.append([_format_p(v) for v in vals])
            pcol = vals
        elif name == "df":
            cols.append(r_format(np.round(vals, 3), digits))
        else:
            cols.append(r_format(np.round(vals, 3), digits))
    header = ["", *list(table.columns)]
    rows = [[str(idx)] + [c[i] for c in cols] for i, idx in enumerate(table.index)]
    if stars and pcol is not None:
        header.append("")
        for row, p in zip(rows, pcol, strict=True):
            row.append(significance_stars(p))
    return cell_table(header, rows, left_cols=1, title="Fixed effects")


def format_coef_table(table: pd.DataFrame, digits: int = 4) -> str:
    """Fixed-effects table with estimate and standard error formatted together (R's rule)."""
    return coef_table_cells(table, digits).to_text()


#: Smallest p-value R prints as a number (``.Machine$double.eps``).
_P_FLOOR = 2.2e-16
#: Significant digits of printed p-values (``printCoefmat``'s ``format.pval(digits = 3)``).
_P_DIGITS = 3
#: Below this R switches p-values to scientific notation.
_P_SCI = 1e-4


def _format_p(p: float) -> str:
    """A p-value as R's ``printCoefmat`` prints it."""
    if not np.isfinite(p):
        return "NA"
    if p < _P_FLOOR:
        return "<2e-16"
    if p < _P_SCI:
        return f"{p:.{_P_DIGITS - 1}e}"
    return f"{p:.{_P_DIGITS}g}"


def format_fit_header(stats: dict[str, float]) -> str:
    """``AIC BIC logLik deviance df.resid`` line of an ML summary."""
    return fit_header_table(stats).to_text()


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


def resid_table(vals: list[str]) -> Table:
    """The scaled-residual quantiles as a table whose text layout is R's named vector
    (every column as wide as the widest)."""
    names = ["Min", "1Q", "Median", "3Q", "Max"]
    width = max(len(v) for v in vals)
    return Table(tuple(n.rjust(width) for n in names), (tuple(v.rjust(width) for v in vals),),
                 "rrrrr", "Scaled residuals")


def _resid_quantiles(r: np.ndarray, digits: int = 4) -> Table:
    # lme4 prints zapsmall(quantile(r), digits + 1) with print(digits = digits)
    q = _zapsmall(np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0]), digits + 1)
    return resid_table(r_format(q, digits))


def fit_header_table(stats: dict[str, float]) -> Table:
    """The ``AIC BIC logLik deviance df.resid`` line as a one-row table."""
    vals = [f"{v:.0f}" if n == "df.resid" else f"{v:.1f}" for n, v in stats.items()]
    width = max(8, *(len(v) for v in vals))
    return Table(tuple(n.rjust(width) for n in stats), (tuple(v.rjust(width) for v in vals),),
                 "r" * len(vals), "Fit statistics")


#: Text, HTML, Markdown and LaTeX of a summary from its ``report()``.
SummaryDisplay = ReportDisplay


@dataclass(frozen=True, repr=False)
class LMMSummary(SummaryDisplay):
    """Summary of a :class:`LinearMixedModelResult`.

    Attributes
    ----------
    coefficients : DataFrame
        Estimate, Std. Error, t value (one row per fixed effect); with a df method also
        lmerTest's df and Pr(>|t|).
    varcorr : VarCorr
    fixef_corr : DataFrame
        Correlation of the fixed-effect estimates.
    scaled_residuals : ndarray
        Pearson residuals divided by sigma.
    ddf : str or None
        The denominator-df method of the t tests (None: lme4's table).
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
    ddf: str | None = None

    @classmethod
    def from_result(cls, m, ddf: str | None = "lme4") -> LMMSummary:
        """The summary of a fit (what ``m.summary(ddf)`` returns).

        Parameters
        ----------
        m : LinearMixedModelResult
            A fitted model.
        ddf : str or None
            ``"lme4"``/None for lme4's table, else a df method of ``m.coef_table``.

        Returns
        -------
        LMMSummary
        """
        method = None
        if ddf is None or (isinstance(ddf, str) and ddf.lower() == "lme4"):
            se = m.se
            coefs = pd.DataFrame({"Estimate": m.fixef, "Std. Error": se,
                                  "t value": m.fixef / se})
        else:
            coefs = m.coef_table(ddf=ddf)          # validates ddf; names the method
            method = coefs.attrs.get("ddf")
        corr = fixef_correlation(m.vcov)
        stats = fit_statistics(m)
        return cls(m.design.spec.formula, m.reml, m.objective, stats, coefs, m.varcorr, corr,
                   m.summary_residuals(), m.nobs, m.ngroups,
                   m.messages, method)

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        title = f"Linear mixed model fit by {'REML' if self.reml else 'maximum likelihood'}"
        if self.ddf is not None:
            title += f". t-tests use {DDF_TITLES.get(self.ddf, self.ddf)}"
        blocks: list = [title, f"Formula: {self.formula}", ""]
        if self.reml:
            blocks.append(f"REML criterion at convergence: {_r_number(round(self.objective, 1))}")
        else:
            blocks.append(fit_header_table(self.fit_stats))
        blocks += ["", "Scaled residuals: ", _resid_quantiles(self.scaled_residuals), "",
                   "Random effects:", self.varcorr.table(digits=4, variance=True),
                   format_groups_line(self.nobs, self.ngroups), "", "Fixed effects:",
                   coef_table_cells(self.coefficients)]
        if any(str(c).startswith("Pr(") for c in self.coefficients.columns):
            blocks += ["---", SIGNIF_LEGEND]
        blocks += _corr_blocks(self.fixef_corr)
        for msg in self.messages:
            blocks += ["", msg]
        return Report(tuple(blocks))

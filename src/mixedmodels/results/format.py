"""Text formatting of results in the layout lme4 prints.

Numbers follow R's ``format(x, digits=)`` rule: each column gets one number of decimals,
the smallest that shows every entry to ``digits`` significant digits (trailing zeros
dropped), so the printed values are the ones an lme4 user compares against.
"""

from __future__ import annotations

import math

import numpy as np

from ..display.tables import Table

__all__ = ["cell_table", "format_table", "format_varcorr", "r_format", "varcorr_table"]

#: R prints at most this many decimals when formatting a column.
_MAX_DECIMALS = 15


def _decimals_needed(x: float, digits: int) -> int:
    if not np.isfinite(x) or x == 0:
        return 0
    mag = math.floor(math.log10(abs(x)))
    dec = max(0, digits - 1 - mag)
    text = f"{abs(x):.{dec}f}"
    if "." in text:
        frac = text.split(".")[1].rstrip("0")
        dec = len(frac)
    return min(dec, _MAX_DECIMALS)


def r_format(values, digits: int = 4) -> list[str]:
    """Format a column of numbers with a common number of decimals, R's way."""
    vals = [float(v) for v in values]
    dec = max((_decimals_needed(v, digits) for v in vals), default=0)
    out = []
    for v in vals:
        if np.isnan(v):
            out.append("NaN")
        elif np.isinf(v):
            out.append("Inf" if v > 0 else "-Inf")
        else:
            out.append(f"{v:.{dec}f}")
    return out


def cell_table(header: list[str], rows: list[list[str]], left_cols: int = 1,
               indent: str = "", title: str = "") -> Table:
    """A :class:`~mixedmodels.display.Table` of formatted cells, the first ``left_cols``
    columns left-aligned and the rest right-aligned (R's layout)."""
    ncol = len(header)
    align = "l" * min(left_cols, ncol) + "r" * max(ncol - left_cols, 0)
    return Table(tuple(header), tuple(tuple(r) for r in rows), align, title, indent)


def format_table(header: list[str], rows: list[list[str]], left_cols: int = 1,
                 indent: str = "") -> str:
    """Align a table: the first ``left_cols`` columns left-justified, the rest right."""
    return cell_table(header, rows, left_cols, indent).to_text()


#: Columns of a structured term listed in the table (its parameters say the rest).
STRUCTURED_ROWS = 4


def format_varcorr(vc, digits: int = 4, variance: bool = False) -> str:
    """lme4's random-effects table (Groups / Name / Variance / Std.Dev. / Corr)."""
    return varcorr_table(vc, digits, variance).to_text()


def varcorr_table(vc, digits: int = 4, variance: bool = False) -> Table:
    """The cells of lme4's random-effects table (see :func:`format_varcorr`)."""
    groups, names, var, sd, corr_rows = [], [], [], [], []
    max_p = max((1 if t.structured else len(t.names) for t in vc.terms), default=1)
    notes = {}
    for t in vc.terms:
        c = t.corr
        shown = t.names[:STRUCTURED_ROWS] if t.structured else t.names
        for i, n in enumerate(shown):
            groups.append(t.group if i == 0 else "")
            names.append(n)
            var.append(t.cov[i, i])
            sd.append(math.sqrt(max(t.cov[i, i], 0.0)))
            corr_rows.append([] if t.structured else [c[i, j] for j in range(i)])
            if t.structured and i == 0:
                pars = " ".join(f"{k}={v:.{max(2, digits - 1)}g}" for k, v in t.parameters)
                notes[len(groups) - 1] = f"{pars} ({t.structure})".strip()
        if t.structured and len(t.names) > len(shown):
            groups.append("")
            names.append(f"... ({len(t.names)} columns)")
            var.append(float("nan"))
            sd.append(float("nan"))
            corr_rows.append([])
    if vc.sigma is not None:
        groups.append("Residual")
        names.append("")
        var.append(vc.sigma ** 2)
        sd.append(vc.sigma)
        corr_rows.append([])
    corr_digits = max(2, digits - 2)
    var_s = [s if v == v else "" for s, v in zip(r_format(var, digits), var, strict=True)]
    sd_s = [s if v == v else "" for s, v in zip(r_format(sd, digits), sd, strict=True)]
    if vc.sigma is not None and vc.sigma != vc.sigma:
        # glmmTMB's Residual line when the dispersion has covariates (no single sigma)
        var_s[-1] = sd_s[-1] = "NA"
    header = ["Groups", "Name"] + (["Variance"] if variance else []) + ["Std.Dev."]
    ncorr = max(max_p - 1, 1 if notes else 0)
    if ncorr > 0:
        header += ["Corr"] + [""] * (ncorr - 1)
    rows = []
    for k in range(len(groups)):
        row = [groups[k], names[k]] + ([var_s[k]] if variance else []) + [sd_s[k]]
        if ncorr > 0:
            cells = [f"{round(v, corr_digits):.{corr_digits}f}" for v in corr_rows[k]]
            if k in notes:
                cells = [notes[k]]
            row += cells + [""] * (ncorr - len(cells))
        rows.append(row)
    return cell_table(header, rows, left_cols=2, indent=" ", title="Random effects")

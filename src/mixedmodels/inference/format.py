"""Text layout of inference tables, close to what R prints (``printCoefmat`` style)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..display.tables import Table
from ..results.format import cell_table, r_format
from ..results.summary import SIGNIF_LEGEND, significance_stars

__all__ = ["SIGNIF_LEGEND", "format_anova", "format_frame", "format_pvalue", "frame_cells",
           "signif_stars"]

#: R's ``format.pval`` prints p-values below this as ``< 2.2e-16`` (machine epsilon).
P_FLOOR = 2.2e-16


def format_pvalue(p: float, digits: int = 4) -> str:
    """R's ``format.pval``: ``< 2.2e-16`` below machine precision, else ``digits``
    significant digits."""
    if not np.isfinite(p):
        return ""
    if p < P_FLOOR:
        return "< 2.2e-16"
    return f"{p:.{digits}g}" if p >= 1e-4 else f"{p:.{digits - 1}e}"


def signif_stars(p: float) -> str:
    """R's significance code of ``p`` (empty above 0.1 and for NaN)."""
    return significance_stars(p).strip()


def _column(values: np.ndarray, name: str, digits: int) -> list[str]:
    vals = np.asarray(values, dtype=float)
    if name.startswith("Pr("):
        return [format_pvalue(v) for v in vals]
    if name in ("npar", "Df", "NumDF") and np.all(np.isnan(vals) | (vals == np.round(vals))):
        return ["" if np.isnan(v) else str(int(v)) for v in vals]
    finite = vals[np.isfinite(vals)]
    text = r_format(np.round(finite, 4) if finite.size else finite, digits)
    out, it = [], iter(text)
    for v in vals:
        out.append(next(it) if np.isfinite(v) else "")
    return out


def frame_cells(table: pd.DataFrame, digits: int = 5, stars: bool = True,
                title: str = "") -> Table:
    """A test table with R-like number formatting (and significance stars when it has a
    p-value column) as a :class:`~mixedmodels.display.Table`."""
    cols = [_column(table[c].to_numpy(), c, digits) for c in table.columns]
    header = ["", *[str(c) for c in table.columns]]
    pcol = next((c for c in table.columns if str(c).startswith("Pr(")), None)
    rows = []
    for i, idx in enumerate(table.index):
        row = [str(idx)] + [c[i] for c in cols]
        if stars and pcol is not None:
            row.append(signif_stars(float(table[pcol].iloc[i])))
        rows.append(row)
    if stars and pcol is not None:
        header.append("")
    return cell_table(header, rows, left_cols=1, title=title)


def has_stars(table: pd.DataFrame, stars: bool = True) -> bool:
    return stars and any(str(c).startswith("Pr(") for c in table.columns)


def format_frame(table: pd.DataFrame, digits: int = 5, stars: bool = True) -> str:
    """Right-aligned table with R-like number formatting and significance stars."""
    text = frame_cells(table, digits, stars).to_text()
    if has_stars(table, stars):
        text += "\n---\n" + SIGNIF_LEGEND
    return text


def format_anova(table: pd.DataFrame) -> str:
    """lme4's ``anova`` table."""
    return format_frame(table, digits=5)

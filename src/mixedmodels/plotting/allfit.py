"""The allfit comparison: each optimizer's estimates against those of the best fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import SIGNAL, given_axes, grid_shape, new_figure

__all__ = ["allfit_plot"]

#: Columns of an allfit table that are estimates (one panel each), by prefix or name.
ESTIMATE_PREFIXES = ("theta[", "beta[")
ESTIMATE_NAMES = ("sigma", "nb_theta")


def _table(result) -> pd.DataFrame:
    table = getattr(result, "table", result)
    if not isinstance(table, pd.DataFrame) or "objective" not in table.columns:
        raise TypeError("allfit_plot needs the result of mm.allfit (or its .table: a "
                        "DataFrame with a row per optimizer and an 'objective' column), got "
                        f"{type(result).__name__}")
    if table.empty:
        raise ValueError("the allfit table has no rows")
    return table


def allfit_plot(result, params=None, ax=None):
    """Each optimizer's objective and estimates as differences from the best fit (the
    lowest objective), one panel per quantity (lme4's ``summary(allFit(m))`` drawn).

    Optimizers that agree sit on the zero line; a fit that stopped elsewhere stands out in
    every panel it differs in. Optimizers whose fit did not converge (``converged`` False)
    are drawn as red crosses; failed fits (missing objective) are labelled "(failed)" and
    have no point.

    Parameters
    ----------
    result : AllFitResult or pandas.DataFrame
        ``mm.allfit(m)`` or its ``.table``: a row per optimizer with ``objective`` and
        estimate columns ``theta[...]``, ``beta[...]`` (and ``sigma``, ``nb_theta`` where
        present), optionally ``converged``.
    params : sequence of str, optional
        Columns to draw (default: ``objective`` and every estimate column).
    ax : matplotlib Axes or array of Axes, optional
        One per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = _table(result)
    if params is None:
        names = ["objective", *[c for c in table.columns
                                if str(c).startswith(ESTIMATE_PREFIXES)
                                or c in ESTIMATE_NAMES]]
    else:
        names = list(params)
        unknown = [n for n in names if n not in table.columns]
        if unknown:
            raise KeyError(f"no allfit column {unknown}; columns: {list(table.columns)}")
    values = table[names].apply(pd.to_numeric, errors="coerce")
    objective = pd.to_numeric(table["objective"], errors="coerce")
    if objective.notna().sum() == 0:
        raise ValueError("no optimizer produced a fit: nothing to compare")
    best = objective.idxmin()
    converged = (table["converged"].astype(bool).to_numpy() if "converged" in table
                 else np.ones(len(table), dtype=bool)) & objective.notna().to_numpy()
    if ax is None:
        rows, cols = grid_shape(len(names))
        fig, axes = new_figure(rows, cols, panel=(3.0, max(2.0, 0.3 * len(table) + 1.0)),
                               sharey=True)
        axes = list(axes.ravel())
        for extra in axes[len(names):]:
            extra.set_visible(False)
    else:
        fig, axes = given_axes(ax, len(names))
    y = np.arange(len(table))
    for a, n in zip(axes, names, strict=False):
        d = (values[n] - values.loc[best, n]).to_numpy(dtype=float)
        a.axvline(0.0, color="grey", lw=0.6)
        a.scatter(d[converged], y[converged], s=18, color="C0", zorder=3)
        a.scatter(d[~converged], y[~converged], s=24, marker="x", color=SIGNAL, zorder=3)
        a.set_title(str(n), fontsize=8)
        a.set_xlabel(f"difference from {best}", fontsize=7)
        a.tick_params(labelsize=7)
        a.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    failed = objective.isna().to_numpy()
    axes[0].set_yticks(y, [f"{i} (failed)" if bad else str(i)
                           for i, bad in zip(table.index, failed, strict=True)])
    axes[0].invert_yaxis()
    return fig

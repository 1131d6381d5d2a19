"""Effect plots: predictions over one predictor, with confidence bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import given_axes, new_figure

__all__ = ["effect_grid", "effect_plot"]

#: Points of the grid of a numeric predictor.
GRID_POINTS = 50


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def effect_grid(m, x: str, by: str | None = None, at: dict | None = None,
                n: int = GRID_POINTS) -> pd.DataFrame:
    """New data for an effect plot: ``x`` over its observed range (or its levels), ``by``
    over its levels, every other column of the model frame at a typical value (numeric:
    the mean; categorical: the first level, the reference) unless ``at`` sets it.

    Parameters
    ----------
    m : fitted model
    x : str
        The predictor on the horizontal axis (a column of the model frame).
    by : str, optional
        A categorical column: one curve per level.
    at : dict, optional
        Values of other columns (``{"Sex": "Female"}``, a grouping level for conditional
        predictions).
    n : int
        Grid points of a numeric ``x``.

    Returns
    -------
    pandas.DataFrame
    """
    frame = m.design.frame
    for col in [x] + ([by] if by else []):
        if col not in frame.columns:
            raise KeyError(f"{col!r} is not a column of the model frame "
                           f"({', '.join(map(str, frame.columns))})")
    at = dict(at or {})
    unknown = [k for k in at if k not in frame.columns]
    if unknown:
        raise KeyError(f"at= names columns the model does not use: {unknown}")
    xs = (np.linspace(frame[x].min(), frame[x].max(), n) if _is_numeric(frame[x])
          else _levels(frame[x]))
    bys = _levels(frame[by]) if by else [None]
    rows = []
    for b in bys:
        for v in xs:
            row = {}
            for col in frame.columns:
                s = frame[col]
                if col in at:
                    row[col] = at[col]
                elif _is_numeric(s):
                    row[col] = float(s.mean())
                else:
                    row[col] = _levels(s)[0]
            row[x] = v
            if by:
                row[by] = b
            rows.append(row)
    out = pd.DataFrame(rows)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            out[col] = pd.Categorical(out[col], categories=frame[col].cat.categories)
    return out


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return list(pd.unique(s.dropna()))


def effect_plot(m, x: str, by: str | None = None, at: dict | None = None,
                type: str = "response", re_form="~0", level: float = 0.95,
                n: int = GRID_POINTS, data: bool = False, ax=None):
    """Predictions of ``m`` over ``x`` with their confidence band (population level by
    default), other predictors held at typical values (:func:`effect_grid`).

    The band is ``predict(..., interval="confidence")``: the link-scale interval's ends
    through the inverse link for ``type="response"`` (the GLMM FAQ's recipe).

    Parameters
    ----------
    m : fitted model
    x : str
        Predictor on the horizontal axis; a categorical ``x`` gives points with error
        bars.
    by : str, optional
        Categorical column: one curve per level.
    at : dict, optional
        Values of other columns.
    type : str
        ``predict``'s ``type`` (``"response"``: lmer's identity, glmer's inverse link).
    re_form : None or str
        ``"~0"`` (default): population level; None with a grouping level in ``at``:
        that group's curve.
    level : float
        Coverage of the band.
    n : int
        Grid points.
    data : bool
        Also draw the observations (response scale).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = effect_grid(m, x, by, at, n)
    pred = m.predict(grid, type=type, re_form=re_form, interval="confidence", level=level)
    if ax is None:
        fig, axes = new_figure(1, 1, panel=(4.5, 3.4))
        a = axes[0, 0]
    else:
        fig, (a,) = given_axes(ax, 1)
    numeric = _is_numeric(m.design.frame[x])
    groups = [None] if by is None else _levels(m.design.frame[by])
    for k, b in enumerate(groups):
        sel = np.ones(len(grid), dtype=bool) if b is None else (grid[by] == b).to_numpy()
        xv = grid.loc[sel, x].to_numpy()
        p = pred.loc[sel]
        label = None if b is None else f"{by} = {b}"
        colour = f"C{k % 10}"
        if numeric:
            a.plot(xv, p["fit"], color=colour, label=label)
            a.fill_between(xv, p["lower"], p["upper"], color=colour, alpha=0.2, lw=0)
        else:
            pos = np.arange(len(xv)) + (k - (len(groups) - 1) / 2) * 0.15
            a.errorbar(pos, p["fit"], yerr=[p["fit"] - p["lower"], p["upper"] - p["fit"]],
                       fmt="o", color=colour, capsize=3, label=label)
            a.set_xticks(np.arange(len(xv)), [str(v) for v in xv])
    if data:
        y = m.design.y
        xd = m.design.frame[x]
        if numeric:
            a.scatter(xd, y, s=6, color="grey", alpha=0.4, zorder=0)
    a.set_xlabel(x)
    a.set_ylabel(f"prediction ({type})")
    if by is not None:
        a.legend(fontsize=7)
    return fig

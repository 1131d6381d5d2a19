"""Likelihood-profile zeta plots with the profile intervals marked."""

from __future__ import annotations

import textwrap

import numpy as np
from scipy import stats

from ._base import SIGNAL, given_axes, grid_shape, new_figure

__all__ = ["profile_plot"]

#: Characters per line of a wrapped axis label (long parameter names such as
#: ``cor_Days.(Intercept)|Subject`` would overlap their neighbours).
LABEL_WIDTH = 22


def _wrapped(name: str) -> str:
    """A long parameter name on two lines, broken before its grouping factor."""
    if len(name) <= LABEL_WIDTH:
        return name
    if "|" in name:
        head, _, group = name.rpartition("|")
        return f"{head}\n|{group}"
    return "\n".join(textwrap.wrap(name, LABEL_WIDTH, break_long_words=True))


def profile_plot(profile, params=None, level: float = 0.95, ax=None):
    """``zeta`` against each profiled parameter, with the ``level`` profile interval:
    horizontal lines at ``-+ z`` and vertical lines at the interval's ends (lme4's
    ``xyplot`` of a profile).

    Parameters
    ----------
    profile : LikelihoodProfile
    params : sequence of str, optional
        Parameters to plot (default: every curve).
    level : float
        The interval marked.
    ax : matplotlib Axes or array of Axes, optional
        One per parameter.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(profile.curves) if params is None else list(params)
    unknown = [n for n in names if n not in profile.curves]
    if unknown:
        raise KeyError(f"no profile for {unknown}; profiled: {list(profile.curves)}")
    if ax is None:
        rows, cols = grid_shape(len(names))
        fig, axes = new_figure(rows, cols, panel=(3.0, 2.6), sharey=True)
        axes = list(axes.ravel())
        for extra in axes[len(names):]:
            extra.set_visible(False)
    else:
        fig, axes = given_axes(ax, len(names))
    z = stats.norm.ppf(0.5 + level / 2.0)
    ci = profile.confint(level)
    for a, n in zip(axes, names, strict=False):
        c = profile.curves[n]
        a.plot(c.values, c.zeta, "-o", ms=2, lw=1)
        a.axhline(0.0, color="grey", lw=0.5)
        for s in (-z, z):
            a.axhline(s, color="grey", lw=0.5, ls=":")
        for end in ci.loc[n, ["lower", "upper"]]:
            if np.isfinite(end):
                a.axvline(end, color=SIGNAL, lw=0.8, ls="--")
        a.set_xlabel(_wrapped(n), fontsize=8)
        a.tick_params(labelsize=7)
    axes[0].set_ylabel("zeta")
    return fig

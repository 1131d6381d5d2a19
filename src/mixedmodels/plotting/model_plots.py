"""Caterpillar plots of the random effects and the residual panel of a fit."""

from __future__ import annotations

import numpy as np
from scipy import stats

from ._base import SIGNAL, given_axes, grid_shape, new_figure

__all__ = ["caterpillar", "residual_panel", "residuals"]

#: Above this many levels the level labels are left off the caterpillar plot.
MAX_LABELLED_LEVELS = 40
#: Points flagged by label in the residual panel (largest absolute residuals).
FLAGGED = 3


def _ranef_frames(m, component: str) -> dict:
    from ..results.glmmtmb import GlmmTMBResult

    if isinstance(m, GlmmTMBResult):
        return m.ranef(component, cond_var=True)
    if component != "cond":
        raise ValueError(f"{type(m).__name__} has one component, 'cond'; got {component!r}")
    return m.ranef(cond_var=True)


def caterpillar(m, component: str = "cond", level: float = 0.95, ax=None):
    """Conditional modes of the random effects with conditional intervals, one panel per
    grouping factor and effect, levels ordered by the first effect (lme4's
    ``dotplot(ranef(m, condVar = TRUE))``).

    The intervals are ``mode -+ z sd`` with ``sd`` the conditional standard deviation
    (``ranef(cond_var=True)``) and ``z`` the normal quantile of ``level``.

    Parameters
    ----------
    m : fitted model
        lmer, glmer or glmmtmb.
    component : {"cond", "zi"}
        glmmtmb: which component's random effects.
    level : float
        Coverage of the intervals.
    ax : matplotlib Axes or array of Axes, optional
        One per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    frames = _ranef_frames(m, component)
    if not frames:
        raise ValueError("the model has no random effects to plot")
    panels = []
    for group, frame in frames.items():
        effects = [c for c in frame.columns if not c.endswith("_condsd")]
        order = np.argsort(frame[effects[0]].to_numpy(), kind="stable")
        panels.extend((group, e, frame.iloc[order]) for e in effects)
    z = stats.norm.ppf(0.5 + level / 2.0)
    if ax is None:
        rows, cols = grid_shape(len(panels))
        height = max(2.8, min(9.0, 0.16 * max(len(f) for _, _, f in panels)))
        fig, axes = new_figure(rows, cols, panel=(3.2, height))
        axes = list(axes.ravel())
        for extra in axes[len(panels):]:
            extra.set_visible(False)
    else:
        fig, axes = given_axes(ax, len(panels))
    for a, (group, effect, frame) in zip(axes, panels, strict=False):
        mode = frame[effect].to_numpy()
        sd = frame[f"{effect}_condsd"].to_numpy()
        y = np.arange(len(frame))
        a.errorbar(mode, y, xerr=z * sd, fmt="o", ms=3, lw=0.8, capsize=0, color="C0")
        a.axvline(0.0, color="grey", lw=0.6, ls="--")
        a.set_title(f"{group}: {effect}", fontsize=9)
        if len(frame) <= MAX_LABELLED_LEVELS:
            a.set_yticks(y, [str(v) for v in frame.index], fontsize=7)
        else:
            a.set_yticks([])
        a.set_xlabel("conditional mode")
    return fig


def _residuals_and_fitted(m):
    from ..results.glmmtmb import GlmmTMBResult

    fitted = m.fitted().to_numpy()
    if isinstance(m, GlmmTMBResult):
        return m.residuals("pearson").to_numpy(), fitted, "Pearson residuals"
    if getattr(m, "family", None) is None:
        return m.residuals("pearson", scaled=True).to_numpy(), fitted, "scaled residuals"
    return m.residuals("pearson").to_numpy(), fitted, "Pearson residuals"


def residual_panel(m, ax=None):
    """Residuals against fitted values, their normal QQ plot and the scale-location plot
    (``sqrt|r|`` against fitted values), with the largest residuals labelled.

    LMMs: residuals scaled by sigma (the summary's); GLMMs: Pearson residuals. The
    residuals are conditional on the random effects (their modes).

    Parameters
    ----------
    m : fitted model
        lmer, glmer or glmmtmb.
    ax : array of 3 matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    r, f, label = _residuals_and_fitted(m)
    ok = np.isfinite(r) & np.isfinite(f)
    r, f = r[ok], f[ok]
    if ax is None:
        fig, axes = new_figure(1, 3)
        axes = list(axes.ravel())
    else:
        fig, axes = given_axes(ax, 3)
    flagged = np.argsort(-np.abs(r))[:FLAGGED]
    index = np.asarray(m.design.frame.index)[ok]
    a = axes[0]
    a.scatter(f, r, s=8, alpha=0.6)
    a.axhline(0.0, color="grey", lw=0.6)
    a.set(xlabel="fitted values", ylabel=label, title="Residuals vs fitted")
    for i in flagged:
        a.annotate(str(index[i]), (f[i], r[i]), fontsize=7, color=SIGNAL)
    a = axes[1]
    (osm, osr), (slope, icpt, _) = stats.probplot(r, dist="norm")
    a.scatter(osm, osr, s=8, alpha=0.6)
    a.plot(osm, icpt + slope * osm, color=SIGNAL, lw=0.8)
    a.set(xlabel="normal quantiles", ylabel=label, title="Normal QQ")
    a = axes[2]
    a.scatter(f, np.sqrt(np.abs(r)), s=8, alpha=0.6)
    a.set(xlabel="fitted values", ylabel=f"sqrt(|{label}|)", title="Scale-location")
    return fig



#: The issue's and R's name of the residual panel (the same function).
residuals = residual_panel

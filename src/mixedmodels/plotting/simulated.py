"""DHARMa's plot of simulated residuals: uniform QQ plot with tests, residuals against the
rank-transformed predictions with quantile curves."""

from __future__ import annotations

import numpy as np

from ._base import SIGNAL, given_axes, new_figure

__all__ = ["simulated_residuals_panel"]


def _verdict(t) -> str:
    return f"{t.name}: p = {t.p_value:.3g}" + (" (significant)" if t.significant else "")


def simulated_residuals_panel(res, quantiles=(0.25, 0.5, 0.75), ax=None):
    """The two panels of DHARMa's ``plot(simulationOutput)``.

    Left: the scaled residuals' quantiles against U(0, 1) quantiles, with the KS
    (uniformity), dispersion and outlier tests printed (red when significant). Right: the
    residuals against the rank-transformed fitted values, horizontal lines at the
    ``quantiles`` and the fitted quantile curves (red when the quantile test is
    significant); outliers (residuals at 0 or 1) in red.

    Parameters
    ----------
    res : SimulatedResiduals
    quantiles : sequence of float
    ax : array of 2 matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..diagnostics.quantile_tests import quantile_curves, rank_transform

    r = np.asarray(res.scaled, dtype=float)
    if ax is None:
        fig, axes = new_figure(1, 2, panel=(4.2, 3.8))
        axes = list(axes.ravel())
    else:
        fig, axes = given_axes(ax, 2)
    a = axes[0]
    n = r.size
    expected = (np.arange(1, n + 1) - 0.5) / n
    a.scatter(expected, np.sort(r), s=6, marker="^", facecolors="none", edgecolors="C0")
    a.plot([0, 1], [0, 1], color=SIGNAL, lw=0.8)
    a.set(xlim=(0, 1), ylim=(0, 1), xlabel="expected", ylabel="observed",
          title="QQ plot of the residuals")
    for k, t in enumerate((res.test_uniformity(), res.test_dispersion(), res.test_outliers())):
        a.text(0.03, 0.97 - 0.07 * k, _verdict(t), transform=a.transAxes, fontsize=7,
               va="top", color=SIGNAL if t.significant else "black")
    a = axes[1]
    x = rank_transform(res.fitted)
    out = (r == 0) | (r == 1)
    a.scatter(x[~out], r[~out], s=6, alpha=0.5, color="C0")
    a.scatter(x[out], r[out], s=14, marker="*", color=SIGNAL)
    test = res.test_quantiles(quantiles=quantiles)
    colour = SIGNAL if test.significant else "black"
    xs, curves = quantile_curves(r, res.fitted, quantiles)
    for tau in quantiles:
        a.axhline(tau, color="grey", lw=0.6, ls="--")
        a.plot(xs, curves[tau], color=colour, lw=1.2)
    a.set(ylim=(0, 1), xlabel="model predictions (rank transformed)",
          ylabel="scaled residual",
          title=f"Residuals vs predicted ({_verdict(test)})")
    a.title.set_fontsize(8)
    return fig

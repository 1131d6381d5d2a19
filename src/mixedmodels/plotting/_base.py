"""Figure creation shared by the plots: matplotlib imported lazily, figures outside pyplot."""

from __future__ import annotations

import numpy as np

__all__ = ["SIGNAL", "given_axes", "grid_shape", "new_figure", "require_matplotlib"]

#: Colour of significant tests and flagged points (DHARMa's red).
SIGNAL = "#d62728"
#: Panels per row of multi-panel figures.
MAX_COLUMNS = 4


def require_matplotlib():
    """The ``matplotlib`` module, or an ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("plots need matplotlib: pip install 'mixedmodels[plot]'") from exc
    return matplotlib


def grid_shape(k: int, max_columns: int = MAX_COLUMNS) -> tuple[int, int]:
    """Rows and columns for ``k`` panels."""
    cols = max(1, min(k, max_columns))
    return int(np.ceil(k / cols)), cols


def new_figure(nrows: int, ncols: int, panel=(3.2, 2.8), **kw):
    """A constrained-layout Figure (not registered with pyplot) and its axes array."""
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def given_axes(ax, k: int):
    """``(figure, flat list of k axes)`` from user axes."""
    axes = list(np.atleast_1d(ax).ravel())
    if len(axes) < k:
        raise ValueError(f"this plot needs {k} axes, {len(axes)} were given")
    return axes[0].figure, axes[:k]

"""Vectorized sums over windows of a discrete support, in bounded memory.

Families without a closed-form cdf or sampler (generalized Poisson, Conway-Maxwell-Poisson,
Tweedie's Poisson mixture) sum their terms over a window ``[lo_i, hi_i]`` per observation.
The windows have different widths; rows are processed sorted by width in chunks of at most
:data:`MAX_CHUNK_ELEMENTS` grid cells, each chunk as one dense ``(rows, width)`` grid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = [
    "MAX_CHUNK_ELEMENTS",
    "TAIL_SDS",
    "count_window",
    "poisson_drop_edges",
    "row_chunks",
    "window_quantile",
    "window_sum",
]

#: Grid cells per chunk (times ~10 temporaries of 8 bytes: tens of MB at most).
MAX_CHUNK_ELEMENTS = 2 ** 18
#: Half-width of a count window in standard deviations: the mass outside is negligible
#: (< 1e-30) for the light-tailed count families here.
TAIL_SDS = 40.0
#: Extra cells beyond the standard-deviation window (small means).
TAIL_PAD = 50
#: Newton steps locating the edges in :func:`poisson_drop_edges` (from starting points
#: within a factor ~2 of the edges; converged to well under one term).
DROP_NEWTON_STEPS = 6


def row_chunks(widths: np.ndarray, max_elements: int = MAX_CHUNK_ELEMENTS
               ) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(rows, width)``: row indices (sorted by width) and the chunk's grid width."""
    widths = np.maximum(np.asarray(widths, dtype=np.int64), 1)
    order = np.argsort(widths, kind="stable")
    ws = widths[order]
    start, n = 0, order.size
    while start < n:
        # rows start..stop-1 (widths ascending): the grid is (stop - start) x ws[stop - 1]
        cand = np.arange(start + 1, n + 1)
        cost = (cand - start) * ws[cand - 1]
        stop = int(start + max(1, np.searchsorted(cost, max_elements, side="right")))
        yield order[start:stop], int(ws[stop - 1])
        start = stop


def count_window(mean, sd) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi]`` integer windows holding all but a negligible mass of a count law."""
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    lo = np.maximum(0.0, np.floor(mean - TAIL_SDS * sd))
    hi = np.ceil(mean + TAIL_SDS * sd) + TAIL_PAD
    return lo, hi


def _poisson_drop(y, m):
    """``y log(y/m) - (y - m)``: Stirling's form of ``log Pois(m; m) - log Pois(y; m)``
    (the caller ignores the division warnings of ``y = 0``)."""
    return np.where(y > 0, y * np.log(y / m), 0.0) - (y - m)


def poisson_drop_edges(m, target):
    """``y_lo <= m <= y_hi`` where the Poisson(``m``) log-terms have dropped by
    ``target`` below their peak (Newton from the outside: the drop is convex with its
    minimum at ``m``). Series whose log-terms are ``nu`` times Poisson log-terms up to
    slowly varying corrections (Conway-Maxwell-Poisson, Tweedie's W) are summed over
    ``[y_lo, y_hi]`` with ``target = drop / nu``."""
    t = np.sqrt(2.0 * m * target)
    hi = m + t + 2.0 * target           # drop(hi) >= target, since drop >= (y-m)^2/(2y)
    lo = np.maximum(m - t, 0.0)         # drop(lo) >= target, since drop >= (y-m)^2/(2m)
    # one errstate for the whole loop (lo = 0 divides by zero; entering a context costs
    # microseconds, and series solvers call this at every iteration)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(DROP_NEWTON_STEPS):
            hi = hi - (_poisson_drop(hi, m) - target) / np.log(hi / m)
            step = (_poisson_drop(lo, m) - target) / np.log(lo / m)
            lo = np.where(lo > 0, np.maximum(lo - np.nan_to_num(step), 0.0), 0.0)
    return lo, hi


LogPmf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _window_logpmf(logpmf: LogPmf, lo, hi, rows, w) -> np.ndarray:
    """Log-probabilities on the ``(rows, w)`` grid from ``lo``; ``-inf`` beyond ``hi``."""
    k = lo[rows, None] + np.arange(w)
    ok = k <= hi[rows, None]
    with np.errstate(all="ignore"):
        return np.where(ok, logpmf(np.where(ok, k, lo[rows, None]), rows), -np.inf)


def window_sum(logpmf: LogPmf, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``sum_{k=lo_i}^{hi_i} exp(logpmf(k, i))`` per row (empty windows give 0).

    ``logpmf(k, rows)`` gets a ``(len(rows), width)`` grid of support points and the row
    indices (to pick the rows' parameters) and returns log-probabilities.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    out = np.zeros(lo.shape)
    widths = np.maximum(hi - lo + 1.0, 0.0).astype(np.int64)
    for rows, w in row_chunks(widths):
        out[rows] = np.sum(np.exp(_window_logpmf(logpmf, lo, hi, rows, w)), axis=1)
    return out


def window_quantile(logpmf: LogPmf, lo: np.ndarray, hi: np.ndarray, u: np.ndarray,
                    base: np.ndarray | None = None) -> np.ndarray:
    """Smallest ``k`` in ``[lo_i, hi_i]`` with ``base_i + sum_{j=lo_i}^{k} p_j >= u_i``
    (``hi_i`` when the window's mass falls short)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    u = np.asarray(u, dtype=float)
    base = np.zeros(lo.shape) if base is None else np.asarray(base, dtype=float)
    out = hi.copy()
    widths = np.maximum(hi - lo + 1.0, 1.0).astype(np.int64)
    for rows, w in row_chunks(widths):
        lp = _window_logpmf(logpmf, lo, hi, rows, w)
        cum = base[rows, None] + np.cumsum(np.exp(lp), axis=1)
        hit = cum >= u[rows, None]
        first = np.argmax(hit, axis=1)
        found = hit[np.arange(rows.size), first]
        out[rows] = np.where(found, lo[rows] + first, hi[rows])
    return out

"""A probe for a gradient search that stopped where it started.

A gradient cannot tell a minimum from a maximum: where the start is a stationary point a
quasi-Newton search accepts it after one evaluation. R-side criteria have such starts: an
AR(1) coefficient starts at ``phi = 0`` (nlme's default), and where every within-group
gap of the times shares a factor ``k >= 2`` (ages 8, 10, 12, 14; visits in even weeks) the
criterion depends on ``phi`` only through ``phi^k`` -- flat at 0, even in ``phi`` for
even ``k`` -- so the fit stayed at independence, its worst correlation (Orthodont,
``gls(distance ~ age, correlation = cor_ar1(form = "~ age | Subject"))``: log-likelihood
-254.58 at 0 against -228.56 at ``phi = 0.836``; nlme stops at 0 too). Each coordinate
the search left exactly where it started is probed :data:`STATIONARY_PROBE` to either
side, where its derivative vanishes to rounding; where a probe is lower the caller
searches again from it. A search that moved every coordinate, or stopped at once at a warm
start's small but non-zero gradient, costs nothing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STATIONARY_PROBE", "probe_stationary"]

#: Step (on nlme's unconstrained scale) of the probes to either side of a coordinate the
#: search never moved from a stationary start: an AR(1) coefficient's logit scale, 0.5 is
#: phi = tanh(0.25) = 0.24 -- far enough that phi^k changes the criterion well above
#: rounding, near enough to stay in the start's basin.
STATIONARY_PROBE = 0.5
#: A derivative this small relative to ``max(1, |f|)`` vanishes to rounding: a stationary
#: point of the criterion's form (``phi^k`` at 0), not a converged search's remainder (a
#: warm start at a previous optimum keeps a gradient near the search's tolerance, ~1e-6
#: relative, and is not probed)
STATIONARY_GRAD = 1e-12


def probe_stationary(fg, x: np.ndarray, x0: np.ndarray, f: float, g: np.ndarray | None,
                     lower: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The lowest of the probes ``x +- STATIONARY_PROBE e_i`` (within ``lower``) for the
    coordinates ``i`` with ``x_i == x0_i`` (never moved) and a derivative that vanishes
    to rounding (:data:`STATIONARY_GRAD`), if lower than ``f``.

    Parameters
    ----------
    fg : callable
        ``x -> (f, g)``; only ``f`` is read.
    x, x0 : ndarray
        The search's end and start.
    f : float
        The criterion at ``x``.
    g : ndarray or None
        Its gradient there (None: no probe).
    lower : ndarray
        Lower bounds (``-inf`` for none).

    Returns
    -------
    tuple
        ``(probe or None, evaluations spent)``.
    """
    best, f_best, n = None, f, 0
    if g is None:
        return None, 0
    flat = np.abs(np.asarray(g, dtype=float)) <= STATIONARY_GRAD * max(1.0, abs(f))
    for i in np.flatnonzero((x == x0) & flat):
        for sign in (1.0, -1.0):
            trial = x.copy()
            trial[i] = max(x[i] + sign * STATIONARY_PROBE, lower[i])
            if trial[i] == x[i]:
                continue
            ft = float(fg(trial)[0])
            n += 1
            if np.isfinite(ft) and ft < f_best:
                best, f_best = trial, ft
    return best, n

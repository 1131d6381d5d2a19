r"""A global start for criteria whose range parameter has dense kinks (``cor_lin``).

With the linear spatial correlation ``(1 - nugget)(1 - d / range)_+`` the criterion's
slope in the range jumps at every distinct distance between two rows of a group: thousands
of kinks ~1e-3 apart on the log scale of the range for a few dozen scattered sites. On
top of that the linear class is not positive definite in two dimensions, and the
criterion is multimodal on a coarser scale too: on ``field_gls_lin_nugget`` the profile in
the log range has minima at 0.80, 1.17, 1.41 and 2.48 (deviance 182.4, 180.5, 178.7,
179.4) and a plateau (180.4, where nlme stops) beyond the largest distance. A local search
from nlme's start (``range = 1.1 d_min``, nugget 0.1) reaches whichever basin its first
steps happen to find; on nine of ten simulated cor_lin models it ended 0.6 - 23 deviance
units above the best optimum known (a fine profile grid's, or this module's).

So the search starts from a scan: the criterion at the ranges at
:data:`SCAN_QUANTILES` of the kinks (which are the distinct distances), and one
:data:`BEYOND` the largest -- each with the other parameters at their start and, with a
nugget, again with the nugget at :data:`NUGGET_LEVEL` on its logit scale (a nugget far
from 0.1 moves the profile's basins: five of the simulated models' best optima have
nuggets of 0.28 - 0.73); the start itself (nlme's, a user's, or a previous fit's
optimum in ``fitted(.)`` iterations) is one more point. From the :data:`N_STARTS` best
scan points within
:data:`START_GAP` of the best, BOBYQA with a loose tolerance (:data:`LOOSE`: it only has
to settle in a basin) and a first step of half the scan's spacing in the range. The best
end is finished on the kinks by :func:`settle_on_kink`: the pieces between kinks are so
narrow that a piece's minimum is almost always at a kink, so the range is put on the
end of its piece with the lower criterion, the other parameters are optimized with it
held there (a smooth problem), and two probes into the neighbouring pieces confirm a
kink minimum -- or the search hops on to the next kink, and hands over to the caller's
walk on the smooth pieces (``fitting.rside._walk_kinks``) where a piece holds a smooth
minimum.

Measured against the previous search (BOBYQA from nlme's start, walks on the pieces,
Nelder-Mead probes): field_gls_lin_nugget 223 -> 48 evaluations, spatial_lme_lin_nugget
236 -> 130, at the same optima (deviance within 3e-7); over ten simulated cor_lin models
(6 single-field gls, 3 lmer, 1 grouped gls; 50-240 rows, coordinates in units of 1 to
100) 1604 -> 965 evaluations, every deviance lower or equal, by up to 23, and equal to a
fine profile grid's optimum (polished by Nelder-Mead) on eight of the nine where that
oracle was computed, 0.013 above it on the ninth (the old search missed it by 0.6 - 23
on all nine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..optim import OptSummary, minimize

__all__ = ["BEYOND", "KINK_PROBE", "LOOSE", "NUGGET_LEVEL", "N_STARTS", "SCAN_QUANTILES",
           "START_GAP", "kinked_range_search", "scan_ranges", "settle_on_kink"]

#: Quantiles of the kinks (distinct distances, on the range's unconstrained scale) tried
#: as ranges: denser at short ranges, where the log scale spreads the distances least.
SCAN_QUANTILES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0)
#: One more range this far beyond the largest kink (log scale: e times the largest
#: distance), where every pair is correlated -- the plateau a range run off ends on.
BEYOND = 1.0
#: The nugget's second scan level (logit scale: a nugget of 0.5).
NUGGET_LEVEL = 0.0
#: Most scan points a search starts from ...
N_STARTS = 2
#: ... each within this many deviance units of the best scan point: a start that much
#: worse rarely leads to the better basin (over the fixtures and simulated models none
#: did) and each search costs 10-50 evaluations.
START_GAP = 3.0
#: BOBYQA's stopping tolerances from a scan point (absolute, deviance and parameters):
#: the walk on the kinks that follows finds the last digits.
LOOSE = {"ftol_abs": 1e-3, "xtol_abs": 1e-5}
#: First step (unconstrained scales) of the parameters other than the range.
OTHER_STEP = 0.3
#: :func:`settle_on_kink` probes either side of its kink at this fraction of the
#: neighbouring piece's width: far inside the piece (no other kink is crossed), close
#: enough that the criterion's curvature along the piece does not matter.
KINK_PROBE = 0.25
#: BOBYQA's settings for the parameters other than the range with the range on a kink
#: (a smooth criterion): lme4's deviance tolerance and a small first step (the loose
#: search's end is near their optimum).
ON_KINK = {"ftol_abs": 1e-6, "xtol_abs": 1e-6}
ON_KINK_STEP = 0.05
#: Most kinks :func:`settle_on_kink` moves on before it hands over to its fallback.
KINK_MAX_HOPS = 5


def _piece_ends(kinks: np.ndarray, u: float, lower: float) -> list[float]:
    """The kinks at the ends of the smooth piece holding ``u`` (those above ``lower``)."""
    j = int(np.searchsorted(kinks, u))
    return [kinks[k] for k in (j - 1, j) if 0 <= k < kinks.size and kinks[k] > lower]


def _width(kinks: np.ndarray, k: float, side: int) -> float:
    """Width of the piece beside kink ``k`` (``side`` -1: below, +1: above; the last
    piece above is unbounded: the width of the one below)."""
    j = int(np.searchsorted(kinks, k))
    if side > 0:
        return kinks[j + 1] - k if j + 1 < kinks.size else k - kinks[j - 1]
    return k - kinks[j - 1] if j > 0 else kinks[j + 1] - k


def settle_on_kink(
    fun: Callable[[np.ndarray], float],
    opt: OptSummary,
    lower: np.ndarray,
    i: int,
    kinks: np.ndarray,
    settings: dict,
    fallback: Callable[[OptSummary], OptSummary],
) -> OptSummary:
    r"""Finish a search that ended near a kink minimum (its evaluations counted from 0).

    Between neighbouring kinks the criterion is smooth, and the pieces are so narrow that
    along one its slope in the range barely changes: its minimum there is at one of its
    ends. So: the criterion at both ends of the piece holding ``opt.x[i]`` (the other
    parameters ``w`` as they are); at the end ``k`` with the lower criterion the other
    parameters optimized
    with the range held there (a smooth problem: BOBYQA with :data:`ON_KINK`); then a
    probe either side of ``k`` (:data:`KINK_PROBE`). With ``w`` at its optimum on the
    kink the criterion's one-sided slopes in the range are those of its profile
    (``d/du min_w f = df/du`` where ``df/dw = 0``), so two probes no lower than the kink
    make it a local minimum of the criterion. Where an end is not lower than
    ``opt`` (a smooth minimum inside the piece) or a probe is lower (the minimum lies
    further on), ``fallback`` from the best point so far.
    """
    x = np.array(opt.x, dtype=float)
    n_evals, best = 0, opt
    ends = []
    for k in _piece_ends(kinks, x[i], lower[i]):
        trial = x.copy()
        trial[i] = k
        ends.append((fun(trial), k))
        n_evals += 1
    if not ends or min(ends)[0] > opt.fval:
        done = fallback(replace(opt, n_evals=0))
        return replace(done, n_evals=n_evals + done.n_evals)
    f_k, k = min(ends)
    others = np.delete(np.arange(x.size), i)

    def on_kink(w):
        full = x.copy()
        full[others] = w
        return fun(full)

    best = opt
    for _ in range(KINK_MAX_HOPS):
        x[i] = k
        if others.size:
            sub = minimize(on_kink, x[others], lower[others], optimizer="bobyqa",
                           settings={**settings, **ON_KINK,
                                     "initial_step": np.full(others.size, ON_KINK_STEP)})
            n_evals += sub.n_evals
            if sub.fval < f_k:
                x[others], f_k = sub.x, sub.fval
        if f_k <= best.fval:
            best = replace(opt, x=x.copy(), fval=f_k)
        elif best is not opt:
            break                       # the kink hopped to is worse than the last one
        down, f_down = None, f_k
        for side in (-1, 1):
            trial = x.copy()
            trial[i] = k + side * KINK_PROBE * _width(kinks, k, side)
            if trial[i] < lower[i]:
                continue
            f = fun(trial)
            n_evals += 1
            if f < f_down:
                down, f_down = side, f
        if down is None:
            return replace(best, n_evals=n_evals)        # a kink minimum
        # the criterion falls into the piece beyond: its far end, if lower, is the next
        # kink to settle on; else the piece holds a smooth minimum
        j = int(np.searchsorted(kinks, k)) + down
        if not 0 <= j < kinks.size or kinks[j] <= lower[i]:
            break
        trial = x.copy()
        trial[i] = kinks[j]
        f = fun(trial)
        n_evals += 1
        if not f < f_k:
            break
        k, f_k = kinks[j], f
    done = fallback(replace(best, n_evals=0))
    return replace(done, n_evals=n_evals + done.n_evals)


def scan_ranges(kinks: np.ndarray, lower: float) -> np.ndarray:
    """The scan's ranges (unconstrained scale, sorted): :data:`SCAN_QUANTILES` of the
    sorted ``kinks`` and :data:`BEYOND` past the last, those above ``lower``."""
    q = np.quantile(kinks, SCAN_QUANTILES, method="inverted_cdf")
    pts = np.unique(np.r_[q, kinks[-1] + BEYOND])
    return pts[pts > lower]


def kinked_range_search(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    i: int,
    kinks: np.ndarray,
    settings: dict,
    finish: Callable[[OptSummary], OptSummary],
    nugget_index: int | None = None,
) -> OptSummary | None:
    """Minimize ``fun`` from the scan of the module docstring.

    Parameters
    ----------
    fun : callable
        The criterion.
    x0 : ndarray
        The start: a candidate next to the scan's points.
    lower : ndarray
        Lower bounds (the range is unbounded below: ``lower[i] = -inf`` or a bound).
    i : int
        Index of the kinked parameter (the range on its unconstrained scale).
    kinks : ndarray
        Its kinks, sorted.
    settings : dict
        BOBYQA's settings (:data:`LOOSE` overrides the tolerances).
    finish : callable
        ``OptSummary -> OptSummary`` run on the best search's end (counting its own
        evaluations from 0).
    nugget_index : int, optional
        Index of the nugget's logit, scanned at a second level.

    Returns
    -------
    OptSummary or None
        The fit, all evaluations counted; None where no scan point has a finite
        criterion.
    """
    x0 = np.asarray(x0, dtype=float)
    ranges = scan_ranges(kinks, lower[i])
    levels = [None] if nugget_index is None else [None, NUGGET_LEVEL]
    gaps = np.diff(ranges)
    # the start itself competes too (a user's start, a previous fit's optimum)
    starts, vals = [x0], [fun(x0)]
    half_gap = [0.5 * float(np.median(gaps)) if gaps.size else 0.5]
    for level in levels:
        for r, u in enumerate(ranges):
            x = x0.copy()
            x[i] = u
            if level is not None:
                x[nugget_index] = level
            starts.append(x)
            vals.append(fun(x))
            # the first step in the range: half the spacing to the scan's next point below
            half_gap.append(0.5 * (gaps[r - 1] if r > 0 else gaps[0]) if gaps.size else 0.5)
    vals = np.asarray(vals)
    n_evals = vals.size
    if not np.any(np.isfinite(vals)):
        return None
    order = np.argsort(vals)
    best = None
    for r in order[:N_STARTS]:
        if not vals[r] <= vals[order[0]] + START_GAP:
            continue
        step = np.full(x0.size, OTHER_STEP)
        step[i] = half_gap[r]
        opt = minimize(fun, starts[r], lower, optimizer="bobyqa",
                       settings={**settings, **LOOSE, "initial_step": step})
        n_evals += opt.n_evals
        if best is None or opt.fval < best.fval:
            best = opt
    done = finish(replace(best, n_evals=0))
    if done.fval > best.fval:
        done = replace(best, n_evals=done.n_evals)
    return replace(done, x0=x0, n_evals=n_evals + done.n_evals)

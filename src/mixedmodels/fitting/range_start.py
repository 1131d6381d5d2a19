r"""A check, after a fit, that a distance-based covariance term (``exp``, ``gau``, ``mat``,
``ou``) did not settle in the wrong one of its range's optima.

The marginal likelihood of a spatial or continuous-time term can have two optima in its
range: a short range (neighbouring positions alike, a sizeable standard deviation) and a
long one (a smooth trend, often with a small standard deviation), and which one the
optimizer reaches depends on where it starts. glmmTMB starts every range at 1 whatever
the units of the positions; this package at the median pairwise distance, which on the
sweep's ``gau_pois`` (60 sites in a 10 x 10 square; fixture ``gau_pois_short`` of
tests/fixtures/sweep) leads to the long-range optimum, 1.94 in deviance worse than the short one
glmmTMB finds.

Choosing the start among a few ranges by the objective was measured and rejected: the
better start is often not in the better basin's path, and on the structures benchmark it
moved the fits' paths (``gau_pois``, ``mat_pois``: 19 and 25 gradients became 37 and 43)
for the same optima. The check here leaves every fit's path alone and costs a few
objective evaluations: at the optimum ``x*``, for each such term, the standard deviation
and range are replaced by each pair of :data:`SD_OFFSETS` (added to the log standard
deviation the fit started from) and the lengths of
:meth:`~mixedmodels.covariance.spatial._Positional.range_lengths` shorter than the fitted
range by more than the factor :data:`RANGE_GAP` (the term's other parameters, the fixed
effects and the other terms stay at ``x*``; :func:`trial_points`). Only shorter ranges --
unless the fitted correlation has collapsed to the identity, an independent effect per
position (:func:`collapsed`) -- the optimizer, started
at the median distance, reaches a long-range optimum easily (towards long ranges the
objective flattens out as the correlations approach one), while the short-range basin
lies behind a barrier (as ``gau_pois`` shows); and each evaluation is a mode solve of a
few Newton steps (about 2.5 ms, a twentieth of the structures benchmark's 60 ms spatial
Poisson fits), so the check must stay small: there it is two evaluations, the last at
``x*`` to leave the objective's workspace at the optimum. Only where one trial point
lowers the objective below ``F(x*)`` by more than :data:`ESCAPE_TOLERANCE` -- ``x*`` is
then not the global optimum -- is the model fitted again from the best one, and the
better of the two fits kept.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLLAPSED_CORRELATION", "COLLAPSED_QUANTILES", "ESCAPE_TOLERANCE", "RANGE_GAP",
           "SD_OFFSETS", "collapsed", "design_positional_terms", "positional_terms",
           "range_escape_start", "trial_points"]

#: Offsets of the log standard deviation (from the start's) tried with each range. One,
#: because each trial is a mode solve (see the module docstring); -0.5 because a
#: short-range optimum tends to have a smaller standard deviation than the start's
#: (``gau_pois``: log sd -0.83 against the start's -0.35; there this trial lowers the
#: objective by about 1.0 below the long-range optimum's, offset -1 by 1.3, while
#: offset 0 raises it by 1.9).
SD_OFFSETS = (-0.5,)
#: Lengths within this factor of the fitted range are the optimizer's own neighbourhood
#: and are not tried.
RANGE_GAP = 2.0
#: Quantiles of the nearest-neighbour distances tried (with the range lengths) from a
#: collapsed range (:func:`collapsed`).
COLLAPSED_QUANTILES = (0.1, 0.5)
#: Largest correlation between positions below which a fitted term counts as collapsed.
COLLAPSED_CORRELATION = 1e-3
#: A trial point must lower the objective (deviance units) by more than this to start a
#: second fit: far above the optimizer's tolerance, far below a real second optimum.
ESCAPE_TOLERANCE = 1e-2


def positional_terms(obj, components: dict):
    """``(slice of the term's parameters in the layout vector, structure)`` of each
    distance-based term (those with ``range_lengths``) of a glmmtmb objective."""
    for name, lp in components.items():
        block = f"theta.{name}"
        if not lp.terms or block not in obj.layout:
            continue
        at = obj.layout.slice(block).start
        for term in lp.terms:
            s = term.structure
            n = s.n_theta
            if hasattr(s, "range_lengths"):
                yield slice(at, at + n), s
            at += n


def design_positional_terms(design):
    """The same for a design whose parameter vector starts with ``theta`` (glmer's
    ``[theta, beta]``)."""
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        if hasattr(t.structure, "range_lengths"):
            yield sl, t.structure


def collapsed(s, cor: np.ndarray) -> bool:
    """The fitted correlation is the identity to :data:`COLLAPSED_CORRELATION`: the term is
    then an independent effect per position -- the limit of a range run to 0 (where
    glmer's start went on ``gau_pois``, 0.18 above the optimum at a range of 0.21), or of
    a Matern smoothness run to 0 at any range."""
    try:
        R = s.correlation(np.asarray(cor, dtype=float))
    except np.linalg.LinAlgError:
        return False
    off = R[~np.eye(R.shape[0], dtype=bool)]
    return bool(off.size) and float(np.max(np.abs(off))) < COLLAPSED_CORRELATION


def trial_points(s, x_sl: np.ndarray, start_sl: np.ndarray):
    """``(log sd, correlation parameters)`` tried for one term fitted at ``x_sl`` (started
    at ``start_sl``).

    Ordinarily the lengths of ``s.range_lengths()`` shorter than the fitted range by more
    than :data:`RANGE_GAP`, with the start's log sd plus :data:`SD_OFFSETS`. With a
    collapsed correlation (:func:`collapsed`) the short-range optimum
    then lies near the nearest-neighbour distances (:data:`COLLAPSED_QUANTILES` of them,
    and the range lengths), the independent effect's standard deviation -- the fit's
    own -- is the spatial one's there, and the correlation's other parameters restart.
    """
    cor0 = np.array(x_sl[1:], dtype=float)
    lengths = s.range_lengths()
    if collapsed(s, cor0):
        off = s.dist > 0
        nearest = np.where(off, s.dist, np.inf).min(axis=1)
        nearest = nearest[np.isfinite(nearest)]
        extra = np.quantile(nearest, COLLAPSED_QUANTILES) if nearest.size else []
        for length in np.unique(np.r_[extra, lengths]):
            # the correlation's other parameters (a Matern smoothness) from their start:
            # a collapsed fit's are degenerate too (a smoothness run to 0)
            yield float(x_sl[0]), s.cor_at_range(length)
        return
    for length in lengths[lengths < s.range_of(cor0) / RANGE_GAP]:
        cor = cor0.copy()
        cor[0] = s.cor_at_range(length)[0]       # other parameters stay at x*
        for offset in SD_OFFSETS:
            yield float(start_sl[0]) + offset, cor


def range_escape_start(fun, terms, x_opt: np.ndarray, f_opt: float,
                       x_start: np.ndarray) -> np.ndarray | None:
    """The best trial point of the module docstring's check when it beats ``f_opt`` (the
    objective at the optimum ``x_opt``) by more than :data:`ESCAPE_TOLERANCE`, else None.

    Parameters
    ----------
    fun : callable
        The objective on the parameter vector.
    terms : iterable of (slice, structure)
        The distance-based terms (:func:`positional_terms`, :func:`design_positional_terms`).
    x_opt : ndarray
    f_opt : float
    x_start : ndarray
        The vector the fit started from (its log standard deviations anchor
        :data:`SD_OFFSETS`).
    """
    best_f, best_x = f_opt - ESCAPE_TOLERANCE, None
    for sl, s in terms:
        for log_sd, cor in trial_points(s, x_opt[sl], x_start[sl]):
            trial = np.array(x_opt, dtype=float)
            trial[sl] = np.concatenate([[log_sd], cor])
            f = fun(trial)
            if f < best_f:
                best_f, best_x = f, trial
    return best_x

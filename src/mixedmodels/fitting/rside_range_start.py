"""The starting range of a spatial residual correlation in ``lmer(correlation=)``.

nlme starts a spatial range at 0.9 (spherical, linear: 1.1) times the smallest distance
between two rows of a group. There the correlation of almost every pair is nil, the
criterion nearly flat in the range and the nugget, and BOBYQA wanders before it finds the
way out: on the spatial fixture (ranges 42-113 fitted, smallest distance 5.9) the spherical
class took 150 evaluations. Here the criterion is also evaluated with the range at the
:data:`RANGE_QUANTILES` of the within-group distances (every other parameter at its start)
and the search starts from the lowest of the three: spherical 150 -> 65 evaluations,
exponential 53 -> 43, Gaussian 52 -> 46, rational quadratic 49 -> 46, BodyWeight's
exponential in Time 100 -> 46 (the two extra evaluations counted), the same optima (1e-9).

Only for nlme's default start (no ``start=``, no ``value=``) and smooth classes: the linear
class's kinks make its search depend on the path (from a start at a quantile it took
273-357 evaluations instead of 232).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RANGE_QUANTILES", "spatial_range_start"]

#: Quantiles of the within-group distances tried as starting ranges.
RANGE_QUANTILES = (0.1, 0.25)


def spatial_range_start(obj, x0: np.ndarray) -> tuple[np.ndarray, int]:
    """The start among ``x0`` and ``x0`` with the range at each of :data:`RANGE_QUANTILES`
    with the lowest criterion ``obj``, and the evaluations spent (0 where the model has no
    estimated range of a smooth spatial correlation at nlme's start).

    Parameters
    ----------
    obj : RSideLMMObjective
        The criterion in ``[theta, phi]`` (the range is ``phi``'s first parameter).
    x0 : ndarray
        The default start.

    Returns
    -------
    tuple
        ``(start, evaluations)``.
    """
    res = obj.residual
    cor = res.correlation
    if (
        cor is None
        or not hasattr(cor, "distance_quantiles")
        or res.kinked
        or cor.spec.value is not None
        or cor.spec.fixed
        or not res.n_cor
    ):
        return x0, 0
    k = obj.n_theta
    nat = cor.natural(cor.full(x0[k : k + res.n_cor]))
    best, f_best = x0, obj(x0)
    n = 1
    for r in cor.distance_quantiles(RANGE_QUANTILES):
        trial_nat = nat.copy()
        trial_nat[0] = r
        try:
            u = cor.unconstrained(trial_nat)
        except ValueError:  # a quantile at the spherical class's smallest distance
            continue
        trial = np.array(x0, dtype=float)
        trial[k : k + res.n_cor] = u
        f = obj(trial)
        n += 1
        if f < f_best:
            best, f_best = trial, f
    return best, n

"""A second search for an R-side LMM whose first fit fails its convergence check.

A variance function's criterion can have more than one basin: on BodyWeight with
``var_const_power(~ Time)`` BOBYQA's first trust-region steps from nlme's start
(``c = 0.1``, ``delta = 0``) extrapolate along the power and run it to -40 (the standard
deviation a step in Time: log-likelihood -675.08, a Hessian that is not positive definite),
while a descent path from the same start -- nlme's quasi-Newton, or ours with the exact
gradient -- ends in the interior optimum (-674.38). Where the first search's result fails
the convergence check *and* has run some variance parameter off (the log standard deviations
spread by more than e^:data:`RUNOFF` over the rows), a second search from the same start by
quasi-Newton with the exact gradient runs, and the better of the two is the fit; the first
search's warnings are replayed only if its result is kept. A fit that passes the check, or
fails it at an interior point, costs nothing more: on Orthodont with
``var_const_power(~ age)`` nlme's optimum (which the first search finds) is a saddle on a
valley descending to a spike of the likelihood (a power of -15 that fits each subject's
last visit exactly), which quasi-Newton follows at 4x BOBYQA's cost only to fail its check.

A correlation structure's criterion can stop BOBYQA short of any optimum: where part of
the parameter space gives a correlation matrix that is not positive definite (a Gaussian
or rational-quadratic correlation of Manhattan or maximum distances, which are not
Euclidean) the criterion is infinite there, and an infinite value in the interpolation set
ends the search at a point that is no minimum (sweep ``gls_ratio_max_nug``: 18.3
log-likelihood units below nlme's optimum, its Hessian indefinite). Where such a fit fails
its check (:func:`restart_from_end`), quasi-Newton with the exact gradient continues from
where BOBYQA stopped, and the better of the two is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .._errors import ConvergenceWarning
from .._messages import held, replay

__all__ = ["RUNOFF", "best_of_two_searches", "restart_from_end"]

#: A variance parameter whose unit-spread coordinate (``fitting.rside._variance_spread``)
#: reaches this magnitude has run off: the standard deviations it sets differ by a factor
#: of about e^RUNOFF over the rows (BodyWeight's power of -40: a step at the first day).
RUNOFF = 10.0

def restart_from_end(residual) -> bool:
    """Whether a fit with this residual model that fails its convergence check searches
    again by quasi-Newton from where the first search ended: it has estimated
    correlation parameters and no variance constant that may reach 0 (varConstPower's,
    whose valley to a spike of the likelihood quasi-Newton would follow: see the module
    docstring).

    Parameters
    ----------
    residual : BoundResidual

    Returns
    -------
    bool
    """
    return bool(residual.n_cor > 0 and not np.any(residual.zero_limits))


#: ``(x, fval, OptSummary, ConvergenceCheck or None)`` of a search, or None (no result).
Search = Callable[[], tuple | None]


def best_of_two_searches(
    first: Search, second: Search | None, ran_off: Callable[[np.ndarray], bool] | None = None
) -> tuple:
    """``first()``; where its convergence check failed, ``ran_off`` holds at its
    optimum and ``second`` is given, also ``second()``, keeping the result with the lower
    criterion (its summary counting both searches' evaluations).

    Parameters
    ----------
    first : callable
        The default search; returns ``(x, fval, opt, conv)``.
    second : callable or None
        The second search, run only after ``first``'s check failed; returns
        ``(x, fval, opt, conv)`` or None when it found nothing usable.
    ran_off : callable, optional
        ``x -> bool``: the first search's optimum is suspect (default: always).

    Returns
    -------
    tuple
        ``(x, fval, opt, conv)`` of the kept search.
    """
    if second is None:
        return first()
    # the first search's warnings wait until its result is known to be kept
    with held() as log:
        found = first()
    conv = found[3]
    failed = conv is not None and not conv.converged
    if failed and (ran_off is None or ran_off(found[0])):
        other = second()
        if other is not None and other[1] < found[1]:
            n_evals = found[2].n_evals + other[2].n_evals
            found = (*other[:2], replace(other[2], n_evals=n_evals), other[3])
            log = [w for w in log if not issubclass(w.category, ConvergenceWarning)]
        elif other is not None:
            n_evals = found[2].n_evals + other[2].n_evals
            found = (*found[:2], replace(found[2], n_evals=n_evals), found[3])
    replay(log)
    return found

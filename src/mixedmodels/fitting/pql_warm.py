"""BOBYQA's first step for PQL's warm-started working fits.

Every PQL iteration after the first fits its working LMM from the previous iteration's
optimum (:mod:`.pql`). NLopt's default first step is scale-free but blind to that:
``0.75 theta`` for theta and ``|phi|`` (1 at 0) for a correlation parameter, so each warm
fit rebuilds a trust region far wider than the distance left to go and shrinks it level by
level to the tolerance (counts_pql_ar1's four warm fits: 53, 41, 30 and 13 evaluations for
moves of 0.06, 0.03, 0.004 and 7e-5). PQL's iterations contract, so the previous
working fit's own move -- from its start to its optimum -- bounds the next one's; that move
(at least :data:`WARM_STEP_FLOOR`, relative) is the first step. counts_pql_ar1's warm fits
then take 19, 15, 10 and 6 evaluations.

Where the working fits' search is not plain BOBYQA on the model's coordinates -- a variance
function (optimized in relative coordinates, sometimes on :mod:`.limit_scale`'s scale), or
a linear spatial correlation (a scan over the kinks, its own first steps) -- NLopt's default
stays (:func:`warm_settings` returns None).
"""

from __future__ import annotations

import numpy as np

from ..rside.residual import BoundResidual
from ..rside.results import RSideLMMResult

__all__ = ["WARM_STEP_FLOOR", "warm_settings"]

#: Smallest first step, relative to ``max(|x|, 1)``: a parameter the previous fit did not
#: move (a range on a flat stretch of the criterion) still gets a trust region well above
#: the tolerances (``xtol_abs`` 1e-6).
WARM_STEP_FLOOR = 1e-3


def warm_settings(result: RSideLMMResult, bound: BoundResidual) -> dict | None:
    """Optimizer settings of the next working fit, which starts at ``result``'s optimum:
    ``{"initial_step": ...}`` (module docstring), or None where NLopt's default stays.

    Parameters
    ----------
    result : RSideLMMResult
        The previous working fit (its ``opt`` holds its start and optimum as
        ``[theta, phi]``).
    bound : BoundResidual
        The working fits' residual model.
    """
    opt = result.opt
    if bound.n_var or bound.kinked or opt is None or opt.x.size == 0 \
            or opt.x.shape != opt.x0.shape:
        return None
    x = np.asarray(opt.x, dtype=float)
    step = np.maximum(np.abs(x - np.asarray(opt.x0, dtype=float)),
                      WARM_STEP_FLOOR * np.maximum(np.abs(x), 1.0))
    return {"initial_step": step} if np.all(np.isfinite(step)) else None

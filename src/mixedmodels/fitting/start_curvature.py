r"""The first inverse Hessian of the gradient search of large LMMs.

scipy's BFGS starts from the identity as inverse Hessian, so its first line search tries a
step of length ~1 in ``log theta`` along the gradient. From InstEval's moment start
(within 5% of the optimum) that step took ``theta_s`` to 0.11 (optimum 0.28), and the search
spent 10 value+gradient evaluations in all. With the diagonal curvature estimate of
:func:`~mixedmodels.objective.lmm_gradient.shrinkage_curvature` at the start (computed by
the start's own evaluation, from the diagonal of ``M^{-1}`` the gradient forms anyway) the
first step is a Newton step of that estimate: 6 evaluations (the start's included), the
same optimum (2e-10 apart); crossed_1m 7 -> 3, crossed_100k 8 -> 4, crossed_interaction10k
(no moment start) 21 -> 15. Vector-valued terms get the per-level Fisher information of
:func:`~mixedmodels.objective.lmm_gradient.fisher_curvature` (within 15% of the Hessian's
diagonal on crossed_slopes_200k's moment start): its search 14 -> 6 evaluations (5.0 ->
2.7 s on one thread), crossed_slopes_20k 14 -> 4, crossed_slopes2_10k and
vector_crossed_50k 17 -> 6, the same optima (to 4e-16 relative).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CURVATURE_FLOOR", "start_curvature"]

#: Smallest curvature entry handed to the search (per unit of ``log theta``): the
#: identity's, where a term's random effects are all shrunk to nothing (``theta_k`` ~ 0).
CURVATURE_FLOOR = 1.0


def start_curvature(estimate: np.ndarray | None) -> np.ndarray | None:
    """``estimate`` floored at :data:`CURVATURE_FLOOR`, or None where the objective gave
    none (NaN entries: paths without the estimate keep BFGS's identity)."""
    if estimate is None or not np.all(np.isfinite(estimate)):
        return None
    return np.maximum(estimate, CURVATURE_FLOOR)

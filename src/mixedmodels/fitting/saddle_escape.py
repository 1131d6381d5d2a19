r"""Leave a saddle point of the Laplace deviance along its direction of negative curvature.

A random-slope term's Cholesky diagonal ``l_jj`` enters the deviance evenly (flipping the
sign of column ``j`` of Lambda changes nothing), so ``dF/dl_jj = 0`` at ``l_jj = 0`` for
every other parameter value: the singular fit with that diagonal at zero is a *stationary*
point whether or not it is a minimum. A gradient search that drives ``l_jj`` towards zero
early (while the other parameters are still far off) can converge there -- its gradient
vanishes -- although, with the others at their values, the deviance now falls as ``l_jj``
leaves zero. The Hessian the fit computes for its standard errors shows it: an eigenvalue
below ``-NEGATIVE_CURVATURE_TOL`` (lme4's nloptwrap stops at the same saddle on
Contraception ``use ~ age + urban + (age | district)``; its BOBYQA does not).

:func:`escape_start` then steps from the saddle ``z = 0`` along the unit eigenvector ``v``
of the most negative eigenvalue ``lambda`` (whitened coordinates, approximately standard
errors), first on the side where the gradient does not rise, then on the other (a bound
can block one), by ``t`` in :data:`ESCAPE_STEPS`:
along it the deviance is ``F(t v) ~ F(0) + t g'v + lambda t^2 / 2``, lower by about
``|lambda| t^2 / 2`` at the first step. The first trial that lowers the deviance by more
than :data:`ESCAPE_MIN_DECREASE` is the start of a fresh search; none, and the point stands
(the negative curvature was the difference's noise, or the saddle is the best there is
along that line).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..diagnostics.convergence import NEGATIVE_CURVATURE_TOL
from .glmm_vcov import DevianceDerivatives

__all__ = ["ESCAPE_MIN_DECREASE", "ESCAPE_STEPS", "MAX_ESCAPES", "escape_start"]

#: Step lengths (whitened units, ~standard errors) tried along the eigenvector, in order:
#: one standard error first (where the quadratic model predicts a decrease of
#: ``|lambda| / 2``), then shorter steps for a saddle whose valley is narrow, then a
#: longer one for a shallow one.
ESCAPE_STEPS = (1.0, 0.3, 0.1, 3.0)
#: Decrease of the deviance a trial must achieve to be taken (well above the deviance's
#: rounding and PIRLS's tolerance, so that noise never restarts a search).
ESCAPE_MIN_DECREASE = 1e-7
#: Escapes tried per fit (each one costs a search and a Hessian).
MAX_ESCAPES = 2


def escape_start(fun: Callable[[np.ndarray], float], derivs: DevianceDerivatives,
                 f0: float, lower: np.ndarray) -> np.ndarray | None:
    """A point ``z`` below the saddle at ``z = 0`` along its most negative curvature, or
    None (module docstring).

    Parameters
    ----------
    fun : callable
        ``z -> F`` over the differentiated parameters (those of ``derivs``).
    derivs : DevianceDerivatives
        The gradient and Hessian at ``z = 0``.
    f0 : float
        ``F(0)``.
    lower : ndarray
        Lower bounds of ``z`` (``-inf`` where none); trials are clipped to them.
    """
    H = derivs.hessian
    if not H.size or not np.all(np.isfinite(H)):
        return None
    Hs = 0.5 * (H + H.T)
    try:
        # the usual case, cheaply (a factorization, not an eigendecomposition): the
        # smallest eigenvalue is above -tol exactly when H + tol I is positive definite
        np.linalg.cholesky(Hs + NEGATIVE_CURVATURE_TOL * np.eye(Hs.shape[0]))
        return None
    except np.linalg.LinAlgError:
        pass
    w, V = np.linalg.eigh(Hs)
    if not w[0] < -NEGATIVE_CURVATURE_TOL:
        return None
    v = np.zeros(derivs.free.size)
    v[derivs.free] = V[:, 0]
    if float(derivs.gradient @ v) > 0.0:
        v = -v                          # the side along which F does not rise
    for t in ESCAPE_STEPS:
        for side in (v, -v):
            # the other side too: the gradient is ~0 at a saddle, and a bound can block one
            z = np.maximum(t * side, lower)
            f = fun(z)
            if np.isfinite(f) and f < f0 - ESCAPE_MIN_DECREASE:
                return z
    return None

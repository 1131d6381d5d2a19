"""Quasi-Newton fits of ``gls`` criteria whose exact gradient costs a few evaluations of
the value (:attr:`~mixedmodels.rside.objective.GLSObjective.fast_gradient`).

There the derivative-free search is the wrong trade: BOBYQA spends ``2k + 1``
evaluations on its first quadratic model and then creeps (a variance power of 3
strata: 47 evaluations, then the convergence check's finite differences), where BFGS
with the exact gradient settles in 5-15. The search is the small projected BFGS of
:func:`~mixedmodels.optim.minimize_bounded_bfgs`, whose loop on Python floats costs a few
microseconds per iteration (scipy's ``minimize`` costs more in set-up than a dozen
evaluations of these criteria) -- for a single parameter the cubic steps of
:mod:`.gls_scalar`, which use the values as well as the derivatives (Ovary's AR(1): 9
evaluations -> 7, a variance power 7 -> 4) -- and the convergence check is the one from
the exact gradient (a gradient below its tolerance is accepted at once, no finite
differences).
"""

from __future__ import annotations

import numpy as np

from ..diagnostics.convergence import check_convergence_gradient
from ..optim import minimize_bounded_bfgs
from .gls_scalar import minimize_scalar_with_gradient
from .trace import traced

__all__ = ["optimize_fast_gradient"]


def optimize_fast_gradient(obj, x0: np.ndarray, lower: np.ndarray, check_conv: bool, stage: str):
    """BFGS (one parameter: :func:`~.gls_scalar.minimize_scalar_with_gradient`) with
    ``obj.value_and_gradient`` from ``x0`` and the gradient's convergence check:
    ``(x, fval, OptSummary, ConvergenceReport or None)``, or None when the search ends
    without converging or the check fails (the caller then runs BOBYQA from ``x0``, as
    before this path existed). A warm start (``obj.warm``) begins from curvature: a
    finite-difference Hessian, or the scalar search's small first probe.

    Parameters
    ----------
    obj : GLSObjective
    x0, lower : ndarray
        Start and lower bounds of the residual parameters (``-inf``: nlme's scale is
        unconstrained).
    check_conv : bool
    stage : str
        Trace label.
    """
    fg = traced(obj.value_and_gradient, stage, gradient=True)
    warm = getattr(obj, "warm", False)
    if x0.size == 1 and not np.isfinite(lower[0]):
        opt, grad = minimize_scalar_with_gradient(fg, x0, warm=warm)
    else:
        opt, grad = minimize_bounded_bfgs(fg, x0, lower, initial_hessian=warm)
    if not np.isfinite(opt.fval) or not opt.return_code.startswith("converged"):
        return None
    conv = None
    if check_conv:
        conv = check_convergence_gradient(fg, opt.x, lower, grad)
        if not conv.converged:
            return None
    return opt.x, opt.fval, opt, conv

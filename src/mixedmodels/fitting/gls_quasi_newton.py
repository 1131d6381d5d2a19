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

A gradient cannot tell a minimum from a maximum. Where the start is itself a stationary
point the search stops there after one evaluation: an AR(1) coefficient starts at
``phi = 0``, and where every within-group gap of the times shares a factor ``k >= 2``
(ages 8, 10, 12, 14) the criterion depends on ``phi`` only through ``phi^k`` -- flat at 0,
even in ``phi`` for even ``k`` -- so the fit stayed at independence, its worst
correlation (Orthodont, ``cor_ar1(form="~ age | Subject")``: log-likelihood -254.58
against -228.56 at ``phi = 0.698``; nlme stops there too). Each coordinate the search
left where it started, at a vanishing derivative, is probed :data:`STATIONARY_PROBE` to
either side (:func:`~.stationary_probe.probe_stationary`); where a probe is lower the
search runs again from it. A search that moved every coordinate costs nothing more.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..diagnostics.convergence import check_convergence_gradient
from ..optim import minimize_bounded_bfgs
from .gls_scalar import minimize_scalar_with_gradient
from .stationary_probe import probe_stationary
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
    def search(start, warm_start):
        if start.size == 1 and not np.isfinite(lower[0]):
            return minimize_scalar_with_gradient(fg, start, warm=warm_start)
        return minimize_bounded_bfgs(fg, start, lower, initial_hessian=warm_start)

    opt, grad = search(x0, warm)
    if not np.isfinite(opt.fval) or not opt.return_code.startswith("converged"):
        return None
    probe, n_probe = probe_stationary(fg, opt.x, np.asarray(x0, dtype=float), opt.fval,
                                      None if warm else grad, lower)
    if probe is not None:
        again, grad_again = search(probe, False)
        if np.isfinite(again.fval) and again.fval < opt.fval \
                and again.return_code.startswith("converged"):
            opt, grad = replace(again, x0=opt.x0), grad_again
        opt = replace(opt, n_evals=opt.n_evals + n_probe + again.n_evals)
    elif n_probe:
        opt = replace(opt, n_evals=opt.n_evals + n_probe)
    conv = None
    if check_conv:
        conv = check_convergence_gradient(fg, opt.x, lower, grad)
        if not conv.converged:
            return None
    return opt.x, opt.fval, opt, conv

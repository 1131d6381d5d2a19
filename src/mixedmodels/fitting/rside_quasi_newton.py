"""Quasi-Newton fits of R-side criteria with the exact gradient (``gls`` with four or more
residual parameters, ``lmer(correlation=, variance=)`` with five or more parameters, and
the second searches of :mod:`.rside_second_start`).

The search is the package's projected BFGS (:func:`~mixedmodels.optim.minimize_bounded_bfgs`,
log scale for the bounded theta, its loop on Python floats), not scipy's ``minimize``:
scipy's BFGS and line search cost about 4 ms of orth_lme_symm_nested's ~16 ms fit
(lmeopt_notes.md), as much as several evaluations of value and gradient. A warm start (the
``fitted(.)`` iterations of a variance covariate, which restart from the previous
iteration's optimum) begins from a finite-difference Hessian of the gradient instead of a
gradient step, which from a point already near the optimum overshoots: on BodyWeight
with ``(Time | Rat)``, CAR(1) and a power of the fitted values a gradient step made the
three warm fits take 32, 21 and 13 evaluations (the outer loop then needed three more
iterations), the Hessian 9, 8 and 7. When the start already meets the gradient tolerance
no Hessian is formed (:func:`~mixedmodels.optim.minimize_bounded_bfgs`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._errors import ConvergenceWarning
from .._messages import emit_warning
from ..diagnostics.convergence import check_convergence_gradient
from ..optim import minimize_bounded_bfgs
from .stationary_probe import probe_stationary
from .trace import traced

__all__ = ["quasi_newton_search"]


def quasi_newton_search(obj, x0: np.ndarray, lower: np.ndarray, check_conv: bool, stage: str,
                        *, gtol: float, gtol_rel: float, fallback: bool = True,
                        warm: bool = False):
    """Projected BFGS with ``obj.value_and_gradient`` from ``x0``, then the convergence
    check from the exact gradient (with the search's inverse-Hessian model).

    Parameters
    ----------
    obj
        An R-side criterion (or its optimizer coordinates) with ``value_and_gradient``.
    x0, lower : ndarray
        Start and lower bounds (0 for theta on a bound, ``-inf`` for the unconstrained
        residual parameters).
    check_conv : bool
    stage : str
        Trace label.
    gtol, gtol_rel : float
        The search stops when the projected gradient is below
        ``max(gtol, gtol_rel |f(x0)|)``: the criterion carries rounding of its terms, and a
        gradient that noise cannot resolve makes the line search fail over and over.
    fallback : bool
        None (instead of a result) when the search ends without a finite value or the
        check fails: the caller then runs the derivative-free search. Without (the user
        asked for ``optimizer="gradient"``) the result, with the check's warning.
    warm : bool
        ``x0`` is a previous fit's optimum: start from curvature (module docstring).

    Returns
    -------
    tuple or None
        ``(x, fval, OptSummary, ConvergenceReport or None)``.
    """
    fg = traced(obj.value_and_gradient, stage, gradient=True)
    model: dict = {}
    opt, grad = minimize_bounded_bfgs(fg, x0, lower, gtol=gtol, gtol_rel=gtol_rel,
                                      initial_hessian=warm, model=model)
    # a coordinate left at a stationary start may sit on a maximum (stationary_probe)
    probe, n_probe = (None, 0) if warm or not np.isfinite(opt.fval) else \
        probe_stationary(fg, opt.x, np.asarray(x0, dtype=float), opt.fval, grad, lower)
    if probe is not None:
        model_again: dict = {}
        again, grad_again = minimize_bounded_bfgs(fg, probe, lower, gtol=gtol,
                                                  gtol_rel=gtol_rel, model=model_again)
        n_evals = opt.n_evals + n_probe + again.n_evals
        if np.isfinite(again.fval) and again.fval < opt.fval and grad_again is not None:
            opt, grad, model = replace(again, x0=opt.x0), grad_again, model_again
        opt = replace(opt, n_evals=n_evals)
    if not np.isfinite(opt.fval):
        if fallback:
            return None
        grad = None
    conv = None
    if check_conv and grad is not None:
        conv = check_convergence_gradient(fg, opt.x, lower, grad, model.get("hess_inv"))
        if not conv.converged:
            if fallback:
                return None
            emit_warning(conv.message, ConvergenceWarning, stacklevel=7)
    return opt.x, opt.fval, opt, conv

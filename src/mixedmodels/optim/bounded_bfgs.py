r"""A small projected BFGS for objectives with an exact gradient and lower bounds.

For the few covariance parameters of a small linear mixed model an evaluation costs tens of
microseconds, so the optimizer's own overhead matters as much as the number of evaluations:
scipy's ``minimize`` spends about as long in its set-up and line search as forty of those
evaluations. This is the textbook method in a few numpy calls per iteration.

Each iteration splits the parameters into *active* ones (on their lower bound with the
gradient pushing outward) and free ones, takes the quasi-Newton step on the free ones,

.. math:: d_F = -B_{FF}^{-1} g_F, \qquad x(\alpha) = \max(x + \alpha d, l),

and backtracks along the projected path until Armijo's condition
``f(x(alpha)) <= f(x) + c_1 g'(x(alpha) - x)`` holds. ``B`` is the BFGS approximation of
the Hessian (full, so that the reduced block of a newly freed parameter keeps its
curvature), scaled after the first step by ``y'y / s'y`` and updated only when the
curvature condition ``s'y > 0`` holds; its inverse is what is kept (the step of the free
parameters from the inverse's Schur complement when some are active), so an iteration
costs no factorization. It stops when the projected gradient (zero on active
parameters) is below ``gtol``, or when a step no longer lowers the objective by more than
its rounding (:data:`FTOL_REL`).

A parameter whose optimum is on its bound (a singular fit) is put there exactly by the
projection; one whose objective is even about the bound (a scalar term's theta) has a zero
gradient there, which the caller's convergence check examines for negative curvature.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .summary import OptSummary

__all__ = ["BFGS_GTOL", "BFGS_GTOL_REL", "minimize_bounded_bfgs"]

#: Projected-gradient tolerance (objective units per unit of the parameter).
BFGS_GTOL = 1e-5
#: Its relative version (times ``|f|``): the analytic gradient of a deviance of size ``f``
#: carries rounding of ~1e-12 |f|, and asking for far less than ``|f|`` allows makes the
#: line search meet noise.
BFGS_GTOL_REL = 1e-9
#: A step that lowers the objective by less than this times ``max(1, |f|)`` ends the search
#: (the remaining decrease is rounding).
FTOL_REL = 1e-15
#: Smallest ``s'y / (|s| |y|)`` for a BFGS update (below it the curvature information is
#: rounding, and the update could break positive definiteness).
CURVATURE_MIN = 1e-12
#: Armijo's sufficient-decrease constant.
ARMIJO_C1 = 1e-4
#: Backtracking steps of one line search before it gives up.
MAX_BACKTRACK = 30
#: Largest change of any parameter in the first step (taken along the gradient, before any
#: curvature is known): theta are relative standard deviations, of order one.
FIRST_STEP = 0.5
#: Parameters bounded at zero are searched on the log scale while above this (and start
#: there when their start is above it).
LOG_SCALE_FLOOR = 1e-4
#: A log-scale parameter below this whose gradient pushes it down moves to the linear
#: scale (it may belong on its bound).
LOG_SCALE_HANDOVER = 0.1
#: Relative step of the forward differences of the starting Hessian.
INITIAL_HESSIAN_STEP = 1e-4
#: Largest change of any parameter in one step later on: a guard against a poor curvature
#: estimate sending the search to absurd values (where the profiled deviance is flat).
MAX_STEP = 1.0


def _direction(H: np.ndarray, g: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The quasi-Newton step ``-B_FF^{-1} g_F`` on the free parameters (0 elsewhere) from
    the inverse ``H = B^{-1}``: ``B_FF^{-1} = H_FF - H_FA H_AA^{-1} H_AF`` (the Schur
    complement; with nothing active simply ``-H g``)."""
    if free.all():
        return -(H @ g)
    f, a = np.flatnonzero(free), np.flatnonzero(~free)
    Hff = H[np.ix_(f, f)] - H[np.ix_(f, a)] @ np.linalg.solve(H[np.ix_(a, a)],
                                                               H[np.ix_(a, f)])
    d = np.zeros_like(g)
    d[f] = -(Hff @ g[f])
    return d


def _initial_inverse_hessian(fg, u: np.ndarray, gu: np.ndarray, logm: np.ndarray
                             ) -> tuple[np.ndarray | None, int]:
    """The inverse of the forward-difference Hessian (in the search's scale: ``u`` is
    ``log x`` where ``logm``) of the gradient at ``u`` (steps
    ``INITIAL_HESSIAN_STEP * max(|u_i|, 1)`` upwards, so inside the box), symmetrized;
    None when it is not positive definite. Returns it and the evaluations used."""
    k = u.size
    Hs = np.empty((k, k))
    steps = INITIAL_HESSIAN_STEP * np.maximum(np.abs(u), 1.0)
    for i in range(k):
        ui = u.copy()
        ui[i] += steps[i]
        xi = np.where(logm, np.exp(ui), ui)
        fi, gi = fg(xi)
        if not math.isfinite(fi):
            return None, i + 1
        Hs[:, i] = (np.where(logm, gi * xi, gi) - gu) / steps[i]
    Hs = 0.5 * (Hs + Hs.T)
    try:
        c = np.linalg.cholesky(Hs)
    except np.linalg.LinAlgError:
        return None, k
    ci = np.linalg.inv(c)
    return ci.T @ ci, k


def minimize_bounded_bfgs(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    gtol: float = BFGS_GTOL,
    gtol_rel: float = BFGS_GTOL_REL,
    maxiter: int = 200,
    initial_hessian: bool = False,
) -> tuple[OptSummary, np.ndarray]:
    """Minimize ``fg`` (value and gradient) over ``x >= lower`` (module docstring).

    Parameters
    ----------
    fg : callable
        ``x -> (f, g)``; a non-finite ``f`` marks a point outside the domain (the line
        search shortens the step).
    x0, lower : ndarray
        Start (clipped into the box) and lower bounds (``-inf`` for none).
    gtol, gtol_rel : float
        The search stops when ``max |projected gradient| <= max(gtol, gtol_rel |f|)``.
    maxiter : int
        Iterations (each one gradient and, when the first trial step is accepted, no
        more) before it gives up.
    initial_hessian : bool
        Start from the inverse of a forward-difference Hessian of the gradient at ``x0``
        (``k`` gradient evaluations; :func:`_initial_inverse_hessian`) rather than from
        a gradient step.

    Returns
    -------
    OptSummary, ndarray
        The record (``return_code`` ``"converged"`` when the gradient test passed,
        ``"converged (no further decrease)"`` when the objective stopped decreasing
        within rounding, else the reason it stopped), and the gradient at ``x``.
    """
    t0 = time.perf_counter()
    lower = np.asarray(lower, dtype=float)
    x = np.maximum(np.asarray(x0, dtype=float), lower)
    bounded = np.isfinite(lower)
    # log scale for parameters bounded at zero (module docstring), linear for the others
    logm = bounded & (lower == 0.0) & (x > LOG_SCALE_FLOOR)
    u = x.copy()
    u[logm] = np.log(x[logm])
    f, g = fg(x)
    n_evals = 1
    code = "maximum iterations reached"
    H = None
    if not math.isfinite(f):
        code = "no finite objective value at the start"
        maxiter = 0
    tol = max(gtol, gtol_rel * abs(f)) if math.isfinite(f) else gtol
    gu = np.where(logm, g * x, g)
    if maxiter and initial_hessian:
        H, used = _initial_inverse_hessian(fg, u, gu, logm)
        n_evals += used
    # the loop is written for few parameters: every numpy call costs about as much as
    # the arithmetic, so masks are kept as vectors (``floor_u``: the bound of linear-scale
    # bounded parameters, -inf elsewhere) and updated only when a parameter changes scale
    floor_u = np.where(bounded & ~logm, lower, -np.inf)
    lin_free = bool(logm.any())
    for _ in range(maxiter):
        active = (u <= floor_u) & (gu > 0)
        any_active = bool(active.any())
        gfree = np.where(active, 0.0, g) if any_active else g
        if float(np.abs(gfree).max(initial=0.0)) <= tol:
            code = "converged"
            break
        d = None
        if H is not None:
            d = _direction(H, gu, ~active) if any_active else -(H @ gu)
        if d is None or not float(gu @ d) < 0.0:
            # no curvature yet (or a broken one): along the gradient, at most FIRST_STEP
            H = None
            d = np.where(active, 0.0, -gu)
            d *= FIRST_STEP / float(np.abs(d).max())
        big = float(np.abs(d).max())
        if big > MAX_STEP:
            d *= MAX_STEP / big
        alpha = 1.0
        for _ in range(MAX_BACKTRACK):
            u_new = u + alpha * d
            np.maximum(u_new, floor_u, out=u_new)
            if lin_free:
                x_new = u_new.copy()
                np.exp(u_new, out=x_new, where=logm)
            else:
                x_new = u_new
            f_new, g_new = fg(x_new)
            n_evals += 1
            decrease = float(gu @ (u_new - u))
            if math.isfinite(f_new) and f_new <= f + ARMIJO_C1 * decrease:
                break
            if math.isfinite(f_new) and f_new > f:
                # the minimum of the quadratic through f, its slope and f_new, kept within
                # [0.1, 0.5] of the step (the usual safeguards)
                slope = decrease / alpha
                denom = 2.0 * (f_new - f - slope * alpha)
                shrink = -slope * alpha / denom if denom > 0 else 0.5
                alpha *= min(0.5, max(0.1, shrink))
            else:
                alpha *= 0.1 if not math.isfinite(f_new) else 0.5
        else:
            code = "line search failed"
            break
        gu_new = np.where(logm, g_new * x_new, g_new) if lin_free else g_new
        s, y = u_new - u, gu_new - gu
        f_old = f
        u, x, f, g, gu = u_new, x_new, f_new, g_new, gu_new
        sy = float(s @ y)
        yy = float(y @ y)
        if sy > CURVATURE_MIN * math.sqrt(float(s @ s) * yy):
            if H is None:
                H = np.eye(x.size) * (sy / yy)
            # inverse BFGS update: H+ = (I - s y'/sy) H (I - y s'/sy) + s s'/sy
            Hy = H @ y
            sHy = np.multiply.outer(s, Hy)
            H += ((sy + float(y @ Hy)) / sy ** 2) * np.multiply.outer(s, s) \
                - (sHy + sHy.T) / sy
        if lin_free:
            # a log-scale parameter heading for zero goes to the linear scale, where the
            # projection can put it on the bound (its log-scale gradient vanishes like x^2)
            handover = logm & (((x < LOG_SCALE_HANDOVER) & (g > 0)) | (x < LOG_SCALE_FLOOR))
            if handover.any():
                logm = logm & ~handover
                lin_free = bool(logm.any())
                u = np.where(handover, x, u)
                gu = np.where(handover, g, gu)
                floor_u = np.where(bounded & ~logm, lower, -np.inf)
                if H is not None:
                    jac = np.where(handover, x, 1.0)       # d x / d u = x on the log scale
                    H = jac[:, None] * H * jac[None, :]
        if f_old - f <= FTOL_REL * max(1.0, abs(f)):
            active = (u <= floor_u) & (gu > 0)
            code = ("converged" if float(np.abs(np.where(active, 0.0, g)).max()) <= tol
                    else "converged (no further decrease)")
            break
    summary = OptSummary(
        optimizer="gradient:projected BFGS", x0=np.asarray(x0, dtype=float), lower=lower,
        upper=np.full_like(lower, np.inf), x=x, fval=float(f), n_evals=n_evals,
        settings={"gtol": gtol, "gtol_rel": gtol_rel, "ftol_rel": FTOL_REL,
                  "maxiter": maxiter},
        return_code=code, seconds=time.perf_counter() - t0,
    )
    return summary, g

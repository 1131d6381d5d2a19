r"""A small projected BFGS for objectives with an exact gradient and lower bounds.

For the few covariance parameters of a small linear mixed model an evaluation costs tens of
microseconds, so the optimizer's own overhead matters as much as the number of evaluations:
scipy's ``minimize`` spends about as long in its set-up and line search as forty of those
evaluations. This is the textbook method, its loop on Python floats (for a handful of
parameters a numpy call costs more than its arithmetic).

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
its rounding (:data:`FTOL_REL`), or when a rejected trial step's predicted and actual
changes are both within that rounding (:data:`F_NOISE_REL`: near the optimum a gradient
carrying an inner solver's error can stay just above ``gtol`` where no step can be
resolved; the trial point is returned).

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
#: Resolution of the objective, relative to ``max(1, |f|)``: two values closer than this are
#: equal within the rounding of their sums (a deviance of n terms carries ~sqrt(n) eps |f|,
#: 5e-15 observed on 400-5000 rows, at most n eps). A trial step whose predicted decrease
#: ``|g'(x(alpha) - x)|`` and actual change are both below it cannot pass Armijo's test but
#: by luck of that rounding: the search ends there (:func:`_within_rounding`), where it
#: would otherwise backtrack to its limit (30 evaluations at one point) and fail.
F_NOISE_REL = 1e-13
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


def _dot(a: list, b: list) -> float:
    """``sum(a_i b_i)`` of two float lists, accumulated left to right from 0 exactly as
    ``sum`` of the products would be (a plain loop: no generator frame per element)."""
    acc = 0
    for ai, bi in zip(a, b, strict=True):
        acc += ai * bi
    return acc


# :func:`_dot` unrolled for the few parameters of most models: the same sum in the same
# order (``0.0 + x`` is what the loop's ``0 + x`` gives, a zero's sign included), without
# the loop and its ``zip`` -- about a fifth of the loop's cost, and an iteration takes ten
# or more of these (sleepstudy: ~140 per search). Unpacking refuses lists of another
# length, as ``zip(strict=True)`` does.
def _dot1(a: list, b: list) -> float:
    (a0,), (b0,) = a, b
    return 0.0 + a0 * b0


def _dot2(a: list, b: list) -> float:
    (a0, a1), (b0, b1) = a, b
    return 0.0 + a0 * b0 + a1 * b1


def _dot3(a: list, b: list) -> float:
    (a0, a1, a2), (b0, b1, b2) = a, b
    return 0.0 + a0 * b0 + a1 * b1 + a2 * b2


def _dot4(a: list, b: list) -> float:
    (a0, a1, a2, a3), (b0, b1, b2, b3) = a, b
    return 0.0 + a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3


_DOTS = {1: _dot1, 2: _dot2, 3: _dot3, 4: _dot4}


def dot_of_size(k: int) -> Callable[[list, list], float]:
    """:func:`_dot` for lists of length ``k`` (unrolled up to 4, bit-identical)."""
    return _DOTS.get(k, _dot)


def _free_max(g: list, active: list) -> float:
    """``max(|g_i|)`` over the parameters not active, 0 when all are: what
    ``max((abs(g[i]) for i in ... if not active[i]), default=0.0)`` gives (a NaN kept or
    passed over exactly as there: the first value stays unless a later one is larger),
    without the generator's frame."""
    out = None
    for i in range(len(g)):     # (indexing: a zip with its keyword costs more here)
        if not active[i]:
            v = abs(g[i])
            if out is None or v > out:
                out = v
    return 0.0 if out is None else out


def _within_rounding(f: float, f_new: float, decrease: float) -> bool:
    """Whether a rejected trial step is lost in the objective's rounding: its predicted
    first-order change ``decrease = g'(x(alpha) - x)`` and its actual change
    ``f_new - f`` are both within :data:`F_NOISE_REL` of ``max(1, |f|)``. Armijo's test
    compares the two at the resolution of ``f`` itself then, and no shorter step can
    do better: the trial point is as good as the current one within rounding (and its
    gradient, the quasi-Newton step's, usually smaller: the optimum to that resolution)."""
    noise = F_NOISE_REL * max(1.0, abs(f))
    return math.isfinite(f_new) and abs(f_new - f) <= noise and -decrease <= noise


def _direction(H: list, g: list, free: list, dot=_dot) -> list:
    """The quasi-Newton step ``-B_FF^{-1} g_F`` on the free parameters (0 elsewhere) from
    the inverse ``H = B^{-1}``: ``B_FF^{-1} = H_FF - H_FA H_AA^{-1} H_AF`` (the Schur
    complement; with nothing active simply ``-H g``). Lists of floats (few parameters);
    ``dot`` is :func:`_dot` or its unrolled form for ``len(g)``."""
    k = len(g)
    if all(free):
        return [-dot(Hi, g) for Hi in H]
    f = [i for i in range(k) if free[i]]
    a = [i for i in range(k) if not free[i]]
    Hn = np.array(H)
    Hff = Hn[np.ix_(f, f)] - Hn[np.ix_(f, a)] @ np.linalg.solve(Hn[np.ix_(a, a)],
                                                                 Hn[np.ix_(a, f)])
    d = [0.0] * k
    df = -(Hff @ np.array([g[i] for i in f]))
    for i, v in zip(f, df.tolist(), strict=True):
        d[i] = v
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
    model: dict | None = None,
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
        a gradient step -- unless the projected gradient at ``x0`` already meets the
        tolerance (then the search ends there without it).
    model : dict, optional
        Receives ``"hess_inv"``: the search's BFGS model of the inverse Hessian at the
        end, in ``x`` (``J H_u J`` with ``J = diag(x)`` on the log-scale parameters), or
        None when no curvature pair was accepted.

    Returns
    -------
    OptSummary, ndarray
        The record (``return_code`` ``"converged"`` when the gradient test passed,
        ``"converged (no further decrease)"`` when the objective stopped decreasing
        within rounding, else the reason it stopped), and the gradient at ``x``.
    """
    t0 = time.perf_counter()
    lower = np.asarray(lower, dtype=float)
    x_arr = np.maximum(np.asarray(x0, dtype=float), lower)
    k = x_arr.size
    rng = range(k)
    dot = dot_of_size(k)
    # the loop runs on Python floats: with the few parameters of a small model every numpy
    # call on a k-vector costs more than its arithmetic (measured on sleepstudy: ~70 us of
    # numpy overhead per iteration against ~15 us as scalars)
    lo = lower.tolist()
    bounded = [math.isfinite(v) for v in lo]
    x = x_arr.tolist()
    # log scale for parameters bounded at zero (module docstring), linear for the others
    logm = [bounded[i] and lo[i] == 0.0 and x[i] > LOG_SCALE_FLOOR for i in rng]
    u = [math.log(x[i]) if logm[i] else x[i] for i in rng]
    f, g_arr = fg(x_arr)
    f = float(f)
    g = np.asarray(g_arr, dtype=float).tolist()
    n_evals = 1
    code = "maximum iterations reached"
    H = None
    if not math.isfinite(f):
        code = "no finite objective value at the start"
        maxiter = 0
    tol = max(gtol, gtol_rel * abs(f)) if math.isfinite(f) else gtol
    gu = [g[i] * x[i] if logm[i] else g[i] for i in rng]
    if maxiter and initial_hessian and _free_max(g, [lo_i == x_i and g_i > 0 for lo_i, x_i, g_i
                                                    in zip(lo, x, g, strict=True)]) > tol:
        # (a start that already meets the tolerance needs no curvature: the loop stops at
        # once, and a warm start there is the usual last fitted(.) iteration)
        Hn, used = _initial_inverse_hessian(fg, np.array(u), np.array(gu), np.array(logm))
        n_evals += used
        H = None if Hn is None else Hn.tolist()
    # ``floor_u``: the bound of linear-scale bounded parameters, -inf elsewhere
    floor_u = [lo[i] if bounded[i] and not logm[i] else -math.inf for i in rng]
    for _ in range(maxiter):
        active = [u[i] <= floor_u[i] and gu[i] > 0 for i in rng]
        gmax = _free_max(g, active)
        if gmax <= tol:
            code = "converged"
            break
        d = None
        if H is not None:
            d = _direction(H, gu, [not a for a in active], dot)
        if d is None or not dot(gu, d) < 0.0:
            # no curvature yet (or a broken one): along the gradient, at most FIRST_STEP
            H = None
            d = [0.0 if active[i] else -gu[i] for i in rng]
            scale = FIRST_STEP / max(map(abs, d))
            d = [v * scale for v in d]
        big = max(map(abs, d))
        if big > MAX_STEP:
            d = [v * (MAX_STEP / big) for v in d]
        alpha, resolved = 1.0, False
        for _ in range(MAX_BACKTRACK):
            u_new = [max(u[i] + alpha * d[i], floor_u[i]) for i in rng]
            x_new = [math.exp(u_new[i]) if logm[i] else u_new[i] for i in rng]
            f_new, g_arr = fg(np.array(x_new))
            f_new = float(f_new)
            n_evals += 1
            # (index comprehensions: zip's strict keyword costs more than the k subtractions)
            decrease = dot(gu, [u_new[i] - u[i] for i in rng])
            if math.isfinite(f_new) and f_new <= f + ARMIJO_C1 * decrease:
                break
            if _within_rounding(f, f_new, decrease):
                # the step cannot be resolved: the search has converged to rounding; it
                # returns the trial point, its last evaluation (callers reuse that solve)
                code, resolved = "converged (no further decrease)", True
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
        g_new = np.asarray(g_arr, dtype=float).tolist()
        if resolved:
            x, f, g = x_new, f_new, g_new
            break
        gu_new = [g_new[i] * x_new[i] if logm[i] else g_new[i] for i in rng]
        s = [u_new[i] - u[i] for i in rng]
        y = [gu_new[i] - gu[i] for i in rng]
        f_old = f
        u, x, f, g, gu = u_new, x_new, f_new, g_new, gu_new
        sy = dot(s, y)
        yy = dot(y, y)
        if sy > CURVATURE_MIN * math.sqrt(dot(s, s) * yy):
            if H is None:
                h0 = sy / yy
                H = [[h0 if i == j else 0.0 for j in rng] for i in rng]
            # inverse BFGS update: H+ = (I - s y'/sy) H (I - y s'/sy) + s s'/sy
            Hy = [dot(Hi, y) for Hi in H]
            a_ss = (sy + dot(y, Hy)) / sy ** 2
            for i in rng:
                Hi, si, hyi = H[i], s[i], Hy[i]
                for j in rng:
                    Hi[j] += a_ss * si * s[j] - (si * Hy[j] + s[j] * hyi) / sy
        if any(logm):
            # a log-scale parameter heading for zero goes to the linear scale, where the
            # projection can put it on the bound (its log-scale gradient vanishes like x^2)
            handover = [logm[i] and ((x[i] < LOG_SCALE_HANDOVER and g[i] > 0)
                                     or x[i] < LOG_SCALE_FLOOR) for i in rng]
            if any(handover):
                logm = [logm[i] and not handover[i] for i in rng]
                u = [x[i] if handover[i] else u[i] for i in rng]
                gu = [g[i] if handover[i] else gu[i] for i in rng]
                floor_u = [lo[i] if bounded[i] and not logm[i] else -math.inf for i in rng]
                if H is not None:
                    jac = [x[i] if handover[i] else 1.0 for i in rng]   # dx/du = x (log)
                    H = [[jac[i] * H[i][j] * jac[j] for j in rng] for i in rng]
        if f_old - f <= FTOL_REL * max(1.0, abs(f)):
            active = [u[i] <= floor_u[i] and gu[i] > 0 for i in rng]
            gmax = _free_max(g, active)
            code = "converged" if gmax <= tol else "converged (no further decrease)"
            break
    if model is not None:
        model["hess_inv"] = None if H is None else \
            np.array([[(x[i] if logm[i] else 1.0) * H[i][j] * (x[j] if logm[j] else 1.0)
                       for j in rng] for i in rng])
    summary = OptSummary(
        optimizer="gradient:projected BFGS", x0=np.asarray(x0, dtype=float), lower=lower,
        upper=np.full_like(lower, np.inf), x=np.array(x), fval=float(f), n_evals=n_evals,
        settings={"gtol": gtol, "gtol_rel": gtol_rel, "ftol_rel": FTOL_REL,
                  "maxiter": maxiter},
        return_code=code, seconds=time.perf_counter() - t0,
    )
    return summary, np.array(g)

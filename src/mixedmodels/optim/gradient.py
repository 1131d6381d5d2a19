r"""Gradient-based optimization of theta for objectives with an analytic gradient.

Two phases:

1. BFGS on ``z = log(theta)``. Relative covariance parameters act multiplicatively, so the
   objective is far better conditioned in ``log theta`` (on InstEval the Hessian in theta
   spans a factor 14 and BFGS from theta = 1 needs ~13 gradient evaluations in log scale
   against ~120 derivative-free evaluations in theta). The phase stops early when a
   parameter heads for zero, which the log scale cannot reach.
2. L-BFGS-B on theta itself with the lower bounds: polishes, and puts parameters whose
   optimum is on the boundary (singular fits) exactly there. From a converged phase 1 it
   takes one or two evaluations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize as sp_minimize

from .summary import OptSummary

__all__ = ["LOG_PHASE_FLOOR", "minimize_with_gradient"]

#: Leave the log-scale phase when a parameter falls below this (it may belong on the bound).
LOG_PHASE_FLOOR = 1e-4
#: Gradient tolerance (objective units per unit of log theta) of the log-scale phase, and
#: its relative version: the objective's rounding noise grows with its size (a deviance of
#: 2e5 carries noise of ~1e-10), and asking for less gradient than that noise supports only
#: makes the line search fail repeatedly.
LOG_PHASE_GTOL = 1e-5
LOG_PHASE_GTOL_REL = 1e-8
#: After the log phase, a parameter below this with a gradient pushing it down may belong on
#: the bound (in log scale its gradient vanishes like theta^2): polish in theta.
POLISH_CANDIDATE = 1e-2
#: An accepted iterate of the log phase with a parameter below this whose gradient still
#: pushes it towards zero hands over to the bounded polish at once.
LOG_PHASE_HANDOVER = 1e-2
#: Projected-gradient tolerance of the bounded polish (objective units per unit of theta).
POLISH_GTOL = 1e-5
#: Relative objective reduction below which the polish stops (scipy's ``ftol``).
POLISH_FTOL = 1e-14
#: Points whose value and gradient the log phase remembers (the start point, and the
#: current point and failed trial step of a line search that scipy retries).
MEMO_POINTS = 4


class _HeadingToBoundError(Exception):
    pass


def _polish(fg, track, best, lower, maxiter) -> None:
    """Bounded L-BFGS-B in theta from the best point so far (updates ``best``)."""

    def fg_plain(x):
        f, g = fg(x)
        track(x, f, g)
        return (f, g) if np.isfinite(f) else (1e300, np.zeros_like(x))

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    # Start from the best point as it is: the profiled objective depends on a scalar
    # term's theta only through theta^2, so its gradient vanishes at exactly zero and a
    # start on the bound could never leave it.
    sp_minimize(fg_plain, best["x"].copy(), jac=True, method="L-BFGS-B", bounds=bounds,
                options={"gtol": POLISH_GTOL, "ftol": POLISH_FTOL, "maxiter": maxiter})


def minimize_with_gradient(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    maxiter: int = 500,
    gtol: float | None = None,
    max_log_step: float | None = None,
    curvature0: np.ndarray | None = None,
) -> tuple[OptSummary, np.ndarray, np.ndarray | None]:
    """Minimize ``fg`` (returning value and gradient) over ``x >= lower``.

    Only parameters with lower bound 0 use the log scale; others stay as they are.
    ``gtol`` replaces the log phase's gradient tolerance (:data:`LOG_PHASE_GTOL` and its
    relative version) where a rougher optimum suffices (starting values). ``max_log_step``
    is a trust radius of the log phase: a trial point whose log-scale parameters lie
    farther than this (max norm) from the best point so far is refused without evaluating
    ``fg`` (answered like a failed evaluation, so the line search shortens the step). It
    changes the path, not the optimum: every point within the radius of an iterate stays
    reachable. ``curvature0`` (positive, one entry per parameter: per unit of ``log
    theta`` for the log-scale ones) is a diagonal estimate of the Hessian at ``x0``; its
    inverse replaces the identity as BFGS's first inverse Hessian, so the first step is
    a Newton step of that estimate instead of one of length ~1 along the gradient. It
    changes the path, not the optimum.

    Returns
    -------
    OptSummary, ndarray, ndarray or None
        The record, the gradient at the solution, and BFGS's approximation of the inverse
        Hessian in theta (None when the bounded polish ran last).
    """
    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    logp = lower == 0.0
    n_evals = [0]
    best = {"x": x0.copy(), "f": np.inf, "g": None}
    t0 = time.perf_counter()

    def track(x, f, g):
        n_evals[0] += 1
        if f < best["f"]:
            best.update(x=x.copy(), f=f, g=g.copy())

    memo = {}

    def fg_log(z):
        # BFGS starts by evaluating the start point, which the tolerance below already
        # needed; and when a Wolfe line search fails, scipy's fallback search re-evaluates
        # the current point and the trial step that failed (often a failed PIRLS: ~100
        # iterations at an absurd theta): answer the last MEMO_POINTS points from memory
        key = z.tobytes()
        if key not in memo:
            if len(memo) >= MEMO_POINTS:
                memo.pop(next(iter(memo)))
            memo[key] = _fg_log(z)
        f, g = memo[key]
        return f, g.copy()     # the caller may keep (or change) the gradient it gets

    def _fg_log(z):
        if max_log_step is not None and best["g"] is not None:
            zb = np.log(np.maximum(best["x"][logp], LOG_PHASE_FLOOR))
            if np.max(np.abs(z[logp] - zb), initial=0.0) > max_log_step:
                return 1e300, np.zeros_like(z)
        x = z.copy()
        x[logp] = np.exp(z[logp])
        f, g = fg(x)
        track(x, f, g)
        gz = g.copy()
        gz[logp] = g[logp] * x[logp]
        return (f, gz) if np.isfinite(f) else (1e300, np.zeros_like(z))

    def stop_near_bound(intermediate_result):
        z = intermediate_result.x
        if np.any(z[logp] < np.log(LOG_PHASE_FLOOR)):
            raise _HeadingToBoundError
        # an accepted iterate whose small parameter is still pushed down: in log scale
        # its gradient vanishes like theta^2 and BFGS only creeps towards the bound (a
        # factor ~0.7 per evaluation, a dozen evaluations from 1e-2 to the floor), while
        # the bounded polish in theta lands on it in a few
        hit = memo.get(z.tobytes())
        if hit is not None and np.any((z[logp] < np.log(LOG_PHASE_HANDOVER))
                                      & (hit[1][logp] > 0)):
            raise _HeadingToBoundError

    start = np.where(logp, np.log(np.maximum(x0, LOG_PHASE_FLOOR)), x0)
    f0, _ = fg_log(start)
    if gtol is None:
        gtol = max(LOG_PHASE_GTOL, LOG_PHASE_GTOL_REL * abs(f0))
    code = "converged"
    hess_inv = None
    options = {"gtol": gtol, "maxiter": maxiter}
    if curvature0 is not None:
        options["hess_inv0"] = np.diag(1.0 / np.asarray(curvature0, dtype=float))
    try:
        res = sp_minimize(fg_log, start, jac=True, method="BFGS", callback=stop_near_bound,
                          options=options)
        # "precision loss" means the line search met rounding noise at the optimum; the
        # convergence check after the fit judges the point on its merits.
        if not res.success and "precision" not in str(res.message):
            code = "log phase: " + str(res.message)
        # d theta = theta dz on the log scale, so H_theta^{-1} = J H_z^{-1} J
        jac = np.where(logp, best["x"], 1.0)
        hess_inv = jac[:, None] * np.asarray(res.hess_inv) * jac[None, :]
    except _HeadingToBoundError:
        code = "log phase left near a bound"

    if best["g"] is None:
        # no finite value anywhere: nothing to polish (the caller sees fval = inf)
        small = np.zeros_like(logp)
        code = "no finite objective value"
    else:
        small = logp & (best["x"] < POLISH_CANDIDATE) & (best["g"] > 0)
    if code == "log phase left near a bound" or small.any():
        _polish(fg, track, best, lower, maxiter)
        hess_inv = None
    seconds = time.perf_counter() - t0
    summary = OptSummary(
        optimizer="gradient:BFGS(log theta)+L-BFGS-B",
        x0=x0, lower=lower, upper=np.full_like(x0, np.inf), x=best["x"], fval=best["f"],
        n_evals=n_evals[0],
        settings={"log_phase_gtol": gtol, "polish_gtol": POLISH_GTOL,
                  "polish_ftol": POLISH_FTOL, "maxiter": maxiter},
        return_code=code, seconds=seconds,
    )
    return summary, best["g"], hess_inv

r"""Minimization of a ``gls`` criterion in one unconstrained parameter, with its exact
derivative: cubic Hermite steps.

Most ``gls`` fits with a cheap gradient have a single residual parameter (an AR(1) or
CAR(1) coefficient, a compound-symmetry correlation, a variance power). Quasi-Newton in one
dimension is the secant method on the derivative, which ignores the two values it has and
converges slowly where the criterion is far from quadratic (the AR(1) coefficient's logit
scale near strong correlation: nine evaluations on Ovary). With the values and derivatives
at two points, ``(a, f_a, g_a)`` and ``(b, f_b, g_b)``, the minimizer of the cubic that
interpolates all four is (Nocedal & Wright, eq. 3.59)

.. math:: x^+ = b - (b - a)\,\frac{g_b + d_2 - d_1}{g_b - g_a + 2 d_2}, \qquad
          d_1 = g_a + g_b - 3\,\frac{f_a - f_b}{a - b}, \quad
          d_2 = \mathrm{sign}(b - a) \sqrt{d_1^2 - g_a g_b},

exact for a cubic and of order about two near a minimum. Each step is safeguarded: it
goes downhill from the best point, at most :data:`MAX_STEP` (else the secant step, else
doubling the last one), and a trial that fails Armijo's test is kept as the far end of
the next cubic, which then interpolates between it and the best point. The loop runs on
Python floats (a numpy call costs more than the arithmetic of one parameter).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from ..optim import OptSummary
from ..optim.bounded_bfgs import ARMIJO_C1, BFGS_GTOL, BFGS_GTOL_REL, FIRST_STEP, FTOL_REL

__all__ = ["MAX_STEP", "WARM_STEP", "minimize_scalar_with_gradient"]

#: Largest step (the parameters are on nlme's unconstrained scales: logs, logits).
MAX_STEP = 1.0
#: First step from a warm start (a previous fit's optimum), relative to ``max(1, |x|)``:
#: a probe that gives the curvature, so the first cubic step lands near the optimum
#: rather than overshooting with :data:`~mixedmodels.optim.bounded_bfgs.FIRST_STEP`.
WARM_STEP = 1e-4
#: Trials that give no finite value before the search gives up (each shortens the step
#: tenfold).
MAX_SHRINK = 30


def _cubic_step(a, fa, ga, b, fb, gb) -> float | None:
    """Minimizer of the cubic through ``(a, fa, ga)`` and ``(b, fb, gb)``, or None when
    it has none (no real stationary point, or a degenerate denominator)."""
    if a == b:
        return None
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if not disc >= 0.0:
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    den = gb - ga + 2.0 * d2
    if den == 0.0:
        return None
    x = b - (b - a) * (gb + d2 - d1) / den
    return x if math.isfinite(x) else None


def minimize_scalar_with_gradient(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    gtol: float = BFGS_GTOL,
    gtol_rel: float = BFGS_GTOL_REL,
    maxiter: int = 100,
    warm: bool = False,
) -> tuple[OptSummary, np.ndarray]:
    """Minimize ``fg`` (value and derivative) over one unconstrained parameter (module
    docstring).

    Parameters
    ----------
    fg : callable
        ``x -> (f, g)`` of a 1-element array; a non-finite ``f`` marks a point outside
        the domain (the step is shortened).
    x0 : ndarray (1,)
    gtol, gtol_rel : float
        Stop when ``|g| <= max(gtol, gtol_rel |f|)`` (the quasi-Newton search's).
    maxiter : int
        Evaluations after the first.
    warm : bool
        ``x0`` is a previous fit's optimum: the first step is a small probe
        (:data:`WARM_STEP`).

    Returns
    -------
    OptSummary, ndarray
        As :func:`~mixedmodels.optim.minimize_bounded_bfgs`.
    """
    t0 = time.perf_counter()

    def call(x: float) -> tuple[float, float]:
        f, g = fg(np.array([x]))
        f = float(f)
        return f, (float(np.asarray(g)[0]) if math.isfinite(f) else math.nan)

    x = float(np.asarray(x0, dtype=float)[0])
    f, g = call(x)
    n_evals = 1
    code = "maximum iterations reached"
    tol = max(gtol, gtol_rel * abs(f)) if math.isfinite(f) else gtol
    if not math.isfinite(f):
        code, maxiter = "no finite objective value at the start", 0
    other = None                # the other end of the cubic: (x, f, g)
    last = 0.0
    while n_evals <= maxiter:
        if abs(g) <= tol:
            code = "converged"
            break
        down = -math.copysign(1.0, g)
        if other is None:
            s = (WARM_STEP * max(1.0, abs(x)) if warm else FIRST_STEP) * down
        else:
            s = None
            xo, fo, go = other
            c = _cubic_step(xo, fo, go, x, f, g)
            if c is not None and (c - x) * down > 0.0:
                s = c - x
            elif (go - g) * (xo - x) > 0.0:
                s = -g * (xo - x) / (go - g)                       # secant
            if s is None or s * down <= 0.0:
                s = 2.0 * abs(last) * down
        s = max(-MAX_STEP, min(MAX_STEP, s))
        for _ in range(MAX_SHRINK):
            f_new, g_new = call(x + s)
            n_evals += 1
            if math.isfinite(f_new):
                break
            s *= 0.1
        else:
            code = "no finite objective value near the best point"
            break
        last = s
        if f_new <= f + ARMIJO_C1 * g * s:
            decrease = f - f_new
            other, (x, f, g) = (x, f, g), (x + s, f_new, g_new)
            if decrease <= FTOL_REL * max(1.0, abs(f)):
                code = "converged" if abs(g) <= tol else "converged (no further decrease)"
                break
        else:
            other = (x + s, f_new, g_new)      # the minimum lies between: interpolate
    summary = OptSummary(
        optimizer="gradient:1-D cubic", x0=np.asarray(x0, dtype=float),
        lower=np.full(1, -np.inf), upper=np.full(1, np.inf), x=np.array([x]), fval=f,
        n_evals=n_evals,
        settings={"gtol": gtol, "gtol_rel": gtol_rel, "ftol_rel": FTOL_REL,
                  "maxiter": maxiter},
        return_code=code, seconds=time.perf_counter() - t0,
    )
    return summary, np.array([g])

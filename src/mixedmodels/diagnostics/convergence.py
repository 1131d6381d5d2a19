r"""Convergence checks at the optimum: gradient and Hessian by finite differences.

lme4 warns when ``max |H^{-1/2} g|`` exceeds 0.002. That quantity grows like
``sqrt(n)`` for the same relative accuracy, so lme4 raises false alarms on large data. We
judge convergence by what matters for inference: the decrease in the objective that a Newton
step would still achieve, ``g' H^{-1} g / 2`` (deviance units, the scale of likelihood-ratio
statistics), over the parameters not held at a bound.

A small gradient is not enough at a bound. The profiled deviance is even in the theta of a
scalar term, so at ``theta_k = 0`` its derivative vanishes whether that point is a minimum
or a saddle: a gradient-based optimizer started there (or reaching it) stops with a zero
gradient while the objective still *decreases* into the feasible region (issue 9: L-BFGS-B
0.22 deviance units short of the optimum). Parameters at a bound with a small gradient
("bound-stationary") therefore get a one-sided second difference into the region; a
curvature below ``-NEGATIVE_CURVATURE_TOL`` makes the point a saddle, not converged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "CONV_GRAD_TOL",
    "CONV_NEWTON_TOL",
    "FD_STEP",
    "NEGATIVE_CURVATURE_TOL",
    "ConvergenceReport",
    "check_convergence",
    "check_convergence_gradient",
    "finite_difference_derivatives",
]

#: np.max's own reduction, without its wrapper
_max_reduce = np.maximum.reduce

#: Relative finite-difference step (lme4's ``deriv12`` uses 1e-4).
FD_STEP = 1e-4
#: Up to this many parameters the bound and gradient tests run on Python floats (the same
#: operations as numpy's, element by element): cheaper than numpy's calls on a few numbers.
SCALAR_CHECK_MAX = 16
#: Gradient below this (per unit of theta) needs no Hessian to be accepted.
CONV_GRAD_TOL = 1e-3
#: Largest predicted improvement of the objective (deviance units) still called converged.
CONV_NEWTON_TOL = 1e-3
#: A second derivative (deviance units per unit of the parameter squared) below minus this
#: into the feasible region makes a bound-stationary point a saddle. Rounding noise of the
#: second difference at FD_STEP is ~1e-5 for objectives of a few hundred units; a saddle
#: worth CONV_NEWTON_TOL of deviance within 0.1 of the bound has curvature ~0.2.
NEGATIVE_CURVATURE_TOL = 1e-2


@dataclass(frozen=True, repr=False)
class ConvergenceReport:
    """Derivatives at the optimum and the verdict.

    Attributes
    ----------
    gradient : ndarray
    hessian : ndarray or None
        Only computed when the gradient alone does not settle the question.
    active : ndarray of bool
        Parameters at a bound with the gradient pushing outward (left out of the check).
    newton_decrement : float
        ``g' H^{-1} g / 2`` over the free parameters (0 when the gradient is tiny).
    converged : bool
    message : str
    n_evals : int
        Objective evaluations the check used.
    saddle : ndarray of bool or None
        Bound-stationary parameters whose curvature into the feasible region is negative
        (module docstring); None when no parameter was bound-stationary.
    note : str
        What the fitting function did about a failed check (e.g. escaped a saddle).
    """

    gradient: np.ndarray
    hessian: np.ndarray | None
    active: np.ndarray
    newton_decrement: float
    converged: bool
    message: str
    n_evals: int
    saddle: np.ndarray | None = None
    note: str = ""

    def __repr__(self) -> str:
        grad = float(np.max(np.abs(self.gradient))) if np.size(self.gradient) else 0.0
        verdict = "converged" if self.converged else "NOT converged"
        return (f"<ConvergenceReport {verdict}: max |gradient| {grad:.3g}, Newton decrement "
                f"{self.newton_decrement:.3g}, {self.n_evals} evaluations>")


def finite_difference_derivatives(
    fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, f0: float,
    hessian: bool = True, step: float = FD_STEP,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Central-difference gradient (and Hessian) of ``fun`` at ``x``.

    Near a lower bound the points are shifted inside the box (one-sided differences), so
    the objective is never evaluated outside its domain.
    """
    k = x.size
    h = step * np.maximum(np.abs(x), 1.0)
    # distance of the centre from the lower bound must be >= h for central differences
    centre = np.array(x, dtype=float)
    evals = 0
    g = np.empty(k)
    fp = np.empty(k)
    fm = np.empty(k)
    one_sided = centre - h < lower
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        if one_sided[i]:
            f1, f2 = fun(centre + e), fun(centre + 2 * e)
            evals += 2
            g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * h[i])
            fp[i], fm[i] = f1, np.nan
        else:
            fp[i], fm[i] = fun(centre + e), fun(centre - e)
            evals += 2
            g[i] = (fp[i] - fm[i]) / (2 * h[i])
    if not hessian:
        return g, None, evals
    H = np.empty((k, k))
    for i in range(k):
        if one_sided[i]:
            e = np.zeros(k)
            e[i] = h[i]
            f2 = fun(centre + 2 * e)
            evals += 1
            H[i, i] = (f0 - 2 * fp[i] + f2) / h[i] ** 2
        else:
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
        for j in range(i):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            # forward-forward difference, reusing f(x + h_i) and f(x + h_j) from the
            # gradient: one evaluation per pair, O(h) accurate -- ample for judging a Newton
            # decrement against CONV_NEWTON_TOL
            val = (fun(centre + ei + ej) - fp[i] - fp[j] + f0) / (h[i] * h[j])
            evals += 1
            H[i, j] = H[j, i] = val
    return g, H, evals


def check_convergence(
    fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, f0: float,
    grad_tol: float = CONV_GRAD_TOL, newton_tol: float = CONV_NEWTON_TOL,
) -> ConvergenceReport:
    """Check that ``x`` is a (bound-constrained) minimum of ``fun``; see module docstring.

    The gradient, the curvatures at the bounds and the Hessian share their points (the
    Hessian's differences reuse ``f(x +- h_i)``): each distinct point is evaluated once
    (``n_evals`` counts those), with the same values a fresh evaluation would give."""
    memo = _Memo(fun)
    g, _, _ = finite_difference_derivatives(memo, x, lower, f0, hessian=False)
    active, stationary, curv = _bound_curvatures(
        x, lower, g, lambda i, e: (f0 - 2.0 * memo(x + e) + memo(x + 2.0 * e)) / e[i] ** 2)
    free = ~active
    if not free.any() or np.max(np.abs(g[free])) <= grad_tol:
        report = ConvergenceReport(g, None, active, 0.0, True, "", memo.n_evals)
    else:
        _, H, _ = finite_difference_derivatives(memo, x, lower, f0, hessian=True)
        report = _verdict(g, H, active, newton_tol, memo.n_evals)
    return _with_saddle(report, stationary, curv)


class _Memo:
    """``fun`` evaluated once per distinct point (the objective is deterministic)."""

    def __init__(self, fun: Callable[[np.ndarray], float]):
        self.fun, self.values = fun, {}

    @property
    def n_evals(self) -> int:
        return len(self.values)

    def __call__(self, x: np.ndarray) -> float:
        key = np.asarray(x, dtype=float).tobytes()
        if key not in self.values:
            self.values[key] = self.fun(x)
        return self.values[key]


def _bound_curvatures(x, lower, g, second) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(active, bound-stationary, curvature)``: parameters at a bound with the gradient
    pushing outward, those at a bound with a small gradient, and ``second(i, e)`` -- the
    second derivative along the step ``e`` into the region -- for the latter (NaN
    elsewhere)."""
    if x.size <= SCALAR_CHECK_MAX:
        return _bound_curvatures_scalar(x, lower, g, second)
    h = FD_STEP * np.maximum(np.abs(x), 1.0)
    at_bound = np.isfinite(lower) & (x - lower <= h)
    stationary = at_bound & (np.abs(g) <= CONV_GRAD_TOL)
    curv = np.empty(x.size)
    curv.fill(np.nan)
    # (array methods: np.full and np.flatnonzero's wrappers cost more than the work on
    # the few parameters of most models, and this runs once per fit)
    for i in stationary.nonzero()[0]:
        e = np.zeros(x.size)
        e[i] = h[i]
        curv[i] = second(i, e)
    return at_bound & (g > 0), stationary, curv


def _bound_curvatures_scalar(x, lower, g, second):
    """:func:`_bound_curvatures` on Python floats (the same operations, element by element:
    the same answer bit for bit), for the few parameters of most models, where a dozen
    numpy calls on three numbers cost more than the fit's final checks' arithmetic."""
    xs, lows, gs = x.tolist(), lower.tolist(), g.tolist()
    at_bound, stationary, outward = [], [], []
    curv = [math.nan] * len(xs)
    for i, (xi, lo, gi) in enumerate(zip(xs, lows, gs, strict=True)):
        h = FD_STEP * max(abs(xi), 1.0)     # (abs first: a NaN stays NaN, as np.maximum)
        b = math.isfinite(lo) and xi - lo <= h
        st = b and abs(gi) <= CONV_GRAD_TOL
        at_bound.append(b)
        stationary.append(st)
        outward.append(b and gi > 0)
        if st:
            e = np.zeros(x.size)
            e[i] = h
            curv[i] = second(i, e)
    return np.array(outward, dtype=bool), np.array(stationary, dtype=bool), np.array(curv)


def _with_saddle(report: ConvergenceReport, stationary: np.ndarray, curv: np.ndarray
                 ) -> ConvergenceReport:
    """Mark bound-stationary parameters with negative curvature (module docstring)."""
    if not stationary.any():
        return report
    saddle = stationary & (curv < -NEGATIVE_CURVATURE_TOL)
    if not saddle.any():
        return replace(report, saddle=saddle)
    which = ", ".join(f"parameter {i + 1} (curvature {curv[i]:.3g})"
                      for i in np.flatnonzero(saddle))
    msg = ("the optimizer stopped at a saddle point, not a minimum: " + which + " sits on "
           "its bound with a zero gradient, but the objective decreases into the feasible "
           "region (a variance set to zero that the data support). Refit with "
           "optimizer='bobyqa' or from a start with that parameter away from its bound")
    return replace(report, converged=False, message=msg, saddle=saddle)


def _verdict(g, H, active, newton_tol, evals) -> ConvergenceReport:
    """Judge the Newton decrement over the free parameters (see module docstring)."""
    free = ~active
    Hf = H[np.ix_(free, free)]
    gf = g[free]
    try:
        z = np.linalg.solve(np.linalg.cholesky(Hf), gf)
        dec, pd = 0.5 * float(z @ z), True
    except np.linalg.LinAlgError:
        dec, pd = np.inf, False
    if pd and dec <= newton_tol:
        return ConvergenceReport(g, H, active, dec, True, "", evals)
    if not pd:
        msg = ("the Hessian of the objective at the optimum is not positive definite: the "
               "fit may be at a saddle point or the model may be overparameterized; check "
               "the variance components, simplify the random effects, or try another "
               "optimizer")
    else:
        msg = (f"model may not have converged: a Newton step would still lower the objective "
               f"by {dec:.3g} (tolerance {newton_tol:g}; max|gradient| = "
               f"{np.max(np.abs(gf)):.3g}); try another optimizer, rescale predictors, or "
               "refit starting from this solution")
    return ConvergenceReport(g, H, active, dec, False, msg, evals)


def check_convergence_gradient(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, lower: np.ndarray,
    g: np.ndarray, hess_inv: np.ndarray | None = None,
    grad_tol: float = CONV_GRAD_TOL, newton_tol: float = CONV_NEWTON_TOL,
) -> ConvergenceReport:
    """Convergence check with an analytic gradient ``g`` at ``x``.

    Accepts a small gradient at once; otherwise estimates the Newton decrement with the
    optimizer's inverse-Hessian approximation ``hess_inv`` when one is given, and only when
    that does not settle it, with a Hessian from forward differences of the gradient
    (one gradient evaluation per parameter).
    """
    active, stationary, curv = _bound_curvatures(
        x, lower, g, lambda i, e: (fg(x + e)[1][i] - g[i]) / e[i])
    report = _gradient_verdict(fg, x, g, active, hess_inv, grad_tol, newton_tol)
    return _with_saddle(report, stationary, curv)


def _gradient_verdict(fg, x, g, active, hess_inv, grad_tol, newton_tol) -> ConvergenceReport:
    free = ~active
    if g.size <= SCALAR_CHECK_MAX:
        # every free |g_i| <= grad_tol (a NaN fails it, as numpy's NaN maximum does);
        # also true when nothing is free
        small = all(abs(gi) <= grad_tol
                    for gi, a in zip(g.tolist(), active.tolist(), strict=True) if not a)
    else:
        small = not free.any() or _max_reduce(np.abs(g[free])) <= grad_tol
    if small:
        return ConvergenceReport(g, None, active, 0.0, True, "", 0)
    if hess_inv is not None and not active.any():
        dec = 0.5 * float(g @ hess_inv @ g)
        if 0.0 <= dec <= newton_tol:
            return ConvergenceReport(g, None, active, dec, True, "", 0)
    k = x.size
    H = np.empty((k, k))
    h = FD_STEP * np.maximum(np.abs(x), 1.0)
    for i in range(k):
        step = np.zeros(k)
        step[i] = h[i]
        _, gi = fg(x + step)
        H[:, i] = (gi - g) / h[i]
    H = 0.5 * (H + H.T)
    return _verdict(g, H, active, newton_tol, k)

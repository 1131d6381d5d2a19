r"""Finite-difference derivatives of the GLMM deviance and the covariance of beta.

lme4 (``glmerControl(calc.derivs = TRUE)``, ``vcov(use.hessian = TRUE)``) estimates the
covariance of the fixed effects from the Hessian ``H`` of the Laplace deviance in
``(theta, beta)``: ``vcov(beta) = [2 H^{-1}]_{beta beta}``, which accounts for the
uncertainty in ``theta``. We compute ``H`` by central differences in the whitened coordinates
the optimizer works in (``x = x* + T z`` with ``T`` scaled by the parameters' approximate
standard errors, see :mod:`~mixedmodels.fitting.glmm`), so one step size ``h`` probes the same
relative curvature for every parameter, and the off-diagonals from the second-order formula

.. math::

    H_{ij} \approx \frac{f(x + h_i + h_j) + f(x - h_i - h_j) - f(x \pm h_i) - f(x \pm h_j)
                          + 2 f(x)}{2 h_i h_j},

which reuses the diagonal evaluations and costs two evaluations per pair. Parameters on
their lower bound (a zero variance) are held fixed: for a scalar term the deviance is even in
its ``theta``, so its cross-derivatives with ``beta`` vanish there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..diagnostics.convergence import (
    CONV_GRAD_TOL,
    CONV_NEWTON_TOL,
    NEGATIVE_CURVATURE_TOL,
    ConvergenceReport,
)

__all__ = ["FD_STEP_WHITENED", "DevianceDerivatives", "convergence_report",
           "deviance_derivatives", "vcov_from_hessian"]

#: Finite-difference step in whitened coordinates (units of approximate standard errors).
#: The deviance is accurate to ~1e-8 (PIRLS tolerance), so the rounding error of the second
#: differences is ~1e-3 of the curvature (~2 per unit); the off-diagonals use one-sided
#: differences (one evaluation per pair instead of two), whose O(h) truncation error is
#: ~1e-4 of the standard errors at this step on the reference models (checked against the
#: two-sided formula).
FD_STEP_WHITENED = 3e-3


@dataclass(frozen=True)
class DevianceDerivatives:
    """Gradient and Hessian of the deviance over the free parameters.

    Attributes
    ----------
    free : ndarray of bool
        Parameters differentiated (the others sit on a bound and are held fixed).
    gradient : ndarray (k,)
        Over all parameters (one-sided for those on a bound).
    hessian : ndarray (k_free, k_free)
    n_evals : int
    """

    free: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray
    n_evals: int


def deviance_derivatives(fun: Callable[[np.ndarray], float], x: np.ndarray, f0: float,
                         steps: np.ndarray, lower: np.ndarray, pairs: str | None = "central"
                         ) -> DevianceDerivatives:
    """Central-difference gradient and Hessian (module docstring).

    ``pairs``: ``"central"`` (two evaluations per off-diagonal element, error O(h^2)),
    ``"forward"`` (one, ``f(x + h_i + h_j) - f(x + h_i) - f(x + h_j) + f(x)``, error O(h))
    or None (a diagonal Hessian, for scaling).
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    free = ~(np.isfinite(lower) & (x - steps < lower))
    g = np.zeros(k)
    evals = 0
    idx = np.flatnonzero(free)
    fp, fm = {}, {}
    for i in range(k):
        e = np.zeros(k)
        e[i] = steps[i]
        if free[i]:
            fp[i], fm[i] = fun(x + e), fun(x - e)
            evals += 2
            g[i] = (fp[i] - fm[i]) / (2.0 * steps[i])
        else:
            g[i] = (fun(x + e) - f0) / steps[i]
            evals += 1
    m = idx.size
    H = np.zeros((m, m))
    for a, i in enumerate(idx):
        H[a, a] = (fp[i] - 2.0 * f0 + fm[i]) / steps[i] ** 2
        for b_, j in enumerate(idx[:a] if pairs else ()):
            e = np.zeros(k)
            e[i], e[j] = steps[i], steps[j]
            if pairs == "forward":
                H[a, b_] = H[b_, a] = (fun(x + e) - fp[i] - fp[j] + f0) / (steps[i] * steps[j])
                evals += 1
                continue
            fpp, fmm = fun(x + e), fun(x - e)
            evals += 2
            H[a, b_] = H[b_, a] = (fpp + fmm - fp[i] - fm[i] - fp[j] - fm[j] + 2.0 * f0) / (
                2.0 * steps[i] * steps[j])
    return DevianceDerivatives(free, g, H, evals)


def convergence_report(d: DevianceDerivatives, x: np.ndarray, lower: np.ndarray,
                       grad_tol: float = CONV_GRAD_TOL, newton_tol: float = CONV_NEWTON_TOL
                       ) -> ConvergenceReport:
    """Judge convergence from the derivatives, by the rule of
    :func:`mixedmodels.diagnostics.check_convergence` (predicted Newton decrease)."""
    g = d.gradient
    active = ~d.free & (g > 0)
    gf = g[d.free]
    if gf.size and d.hessian.size and np.all(np.isfinite(d.hessian)):
        low = float(np.linalg.eigvalsh(0.5 * (d.hessian + d.hessian.T))[0])
        if low < -NEGATIVE_CURVATURE_TOL:
            # a small gradient does not make a saddle a minimum (see
            # mixedmodels.diagnostics.convergence)
            msg = (f"the deviance has negative curvature ({low:.3g} in units of approximate "
                   "standard errors) at the optimum: the fit stopped at a saddle point, not "
                   "a minimum; try another optimizer or refit from a perturbed start")
            return ConvergenceReport(g, d.hessian, active, np.inf, False, msg, d.n_evals)
    if gf.size == 0 or np.max(np.abs(gf)) <= grad_tol:
        return ConvergenceReport(g, d.hessian, active, 0.0, True, "", d.n_evals)
    try:
        chol = np.linalg.cholesky(d.hessian)
        z = np.linalg.solve(chol, gf)
        dec = 0.5 * float(z @ z)
    except np.linalg.LinAlgError:
        msg = ("the Hessian of the deviance at the optimum is not positive definite: the fit "
               "may be at a saddle point or the model overparameterized; check the variance "
               "components, simplify the random effects, or rescale predictors")
        return ConvergenceReport(g, d.hessian, active, np.inf, False, msg, d.n_evals)
    if dec <= newton_tol:
        return ConvergenceReport(g, d.hessian, active, dec, True, "", d.n_evals)
    msg = (f"model may not have converged: a Newton step would still lower the deviance by "
           f"{dec:.3g} (tolerance {newton_tol:g}; max|gradient| = {np.max(np.abs(gf)):.3g}); "
           "try rescaling predictors or refitting from this solution")
    return ConvergenceReport(g, d.hessian, active, dec, False, msg, d.n_evals)


def vcov_from_hessian(d: DevianceDerivatives, T: np.ndarray, beta_index: np.ndarray
                      ) -> np.ndarray | None:
    """``T [2 H_z^{-1}] T'`` restricted to ``beta_index``, for a Hessian ``H_z`` in the
    coordinates ``x = x* + T z``; None when the Hessian is not positive definite (lme4 then
    falls back to ``R_X``). Parameters held fixed (on a bound) get no variance."""
    try:
        chol = np.linalg.cholesky(d.hessian)
    except np.linalg.LinAlgError:
        return None
    inv = np.linalg.inv(chol)
    cov_z = np.zeros((d.free.size, d.free.size))
    cov_z[np.ix_(d.free, d.free)] = 2.0 * (inv.T @ inv)
    Tb = T[beta_index]
    V = Tb @ cov_z @ Tb.T
    return 0.5 * (V + V.T)

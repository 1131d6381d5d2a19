r"""Optimizing the general Laplace objective: quasi-Newton with the exact gradient, then
Newton steps with the finite-difference Hessian of that gradient.

1. L-BFGS-B over the free parameters of the layout (glmmTMB's ``nlminb`` plays this role),
   with the analytic gradient of :class:`~mixedmodels.objective.laplace.LaplaceObjective`.
   Covariance parameters are unbounded when their structure is sign-symmetric (the
   objective is even in each column of ``Lambda``); they are put in canonical form after.
2. The Hessian ``H`` of ``F`` by central differences of the gradient (``2k`` gradient
   evaluations for ``k`` free parameters -- what TMB's ``sdreport`` does with its
   automatic derivatives), and up to :data:`NEWTON_POLISH_STEPS` Newton steps ``-H^{-1} g``
   while they lower ``F``: quadratic convergence from where the quasi-Newton method stopped,
   so the reported optimum does not depend on its tolerances.
3. ``vcov_full = 2 H^{-1}`` (``F`` is minus twice the log-likelihood).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize as sp_minimize

from ..objective.laplace import LaplaceObjective, LaplaceSolution
from ..optim import OptSummary

__all__ = ["HESSIAN_STEP", "NEWTON_POLISH_STEPS", "LaplaceFit", "optimize_laplace"]

#: Relative step of the central differences of the gradient (the gradient is accurate to
#: ~1e-9, the inner tolerance; truncation error ~h^2 and rounding ~1e-9/h balance here).
HESSIAN_STEP = 1e-4
#: Newton steps tried after the quasi-Newton phase.
NEWTON_POLISH_STEPS = 3
#: Predicted decrease of F (deviance units) below which Newton polishing stops.
NEWTON_DONE = 1e-10
#: L-BFGS-B tolerances: gradient (deviance units per unit of parameter) and relative
#: decrease of F.
LBFGS_GTOL = 1e-6
LBFGS_FTOL = 1e-15
LBFGS_MAXITER = 2000
#: Predicted decrease of F above which the fit is reported as not converged.
CONVERGENCE_TOL = 1e-3


@dataclass(frozen=True, eq=False)
class LaplaceFit:
    """The optimum of a Laplace objective.

    Attributes
    ----------
    x : ndarray
        Full parameter vector at the optimum (canonical covariance parameters).
    solution : LaplaceSolution
    gradient : ndarray
        ``dF/dx`` over the free parameters.
    hessian : ndarray or None
        ``d^2 F / dx^2`` over the free parameters (None when not requested).
    vcov : ndarray or None
        ``2 H^{-1}``: covariance of the free parameters (None when ``H`` is not positive
        definite).
    newton_decrement : float
        ``g' H^{-1} g / 2`` at the optimum (deviance units).
    converged : bool
    message : str
    opt : OptSummary
    n_gradients : int
    """

    x: np.ndarray
    solution: LaplaceSolution
    gradient: np.ndarray
    hessian: np.ndarray | None
    vcov: np.ndarray | None
    newton_decrement: float
    converged: bool
    message: str
    opt: OptSummary
    n_gradients: int


def _free_fg(obj: LaplaceObjective, base: np.ndarray):
    layout = obj.layout

    def fg(z):
        f, g = obj.value_and_gradient(layout.expand(z, base))
        if not np.isfinite(f):
            return 1e300, np.zeros_like(z)
        return f, layout.free(g)

    return fg


def canonical_parameters(obj: LaplaceObjective, x: np.ndarray) -> np.ndarray:
    """``x`` with every sign-symmetric term's parameters in canonical form."""
    x = np.array(x, dtype=float)
    for ts in obj.structure.terms:
        idx = obj.theta_index(ts)
        x[idx] = ts.term.structure.canonical(x[idx])
    return x


def gradient_hessian(fg, z: np.ndarray, step: float = HESSIAN_STEP) -> np.ndarray:
    """Central differences of the gradient ``fg(z)[1]``, symmetrized."""
    k = z.size
    H = np.empty((k, k))
    for j in range(k):
        h = step * max(1.0, abs(z[j]))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (fg(z + e)[1] - fg(z - e)[1]) / (2.0 * h)
    return 0.5 * (H + H.T)


def _newton_step(H: np.ndarray, g: np.ndarray):
    """Newton step and predicted decrease, or None when ``H`` is not positive definite."""
    try:
        C = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    step = np.linalg.solve(C.T, np.linalg.solve(C, g))
    return -step, 0.5 * float(g @ step)


def optimize_laplace(obj: LaplaceObjective, x0: np.ndarray, *, hessian: bool = True,
                     maxiter: int = LBFGS_MAXITER) -> LaplaceFit:
    """Minimize ``obj`` from ``x0`` (a full layout vector; see the module docstring)."""
    layout = obj.layout
    x0 = np.asarray(x0, dtype=float)
    t0 = time.perf_counter()
    grads0 = obj.n_grads
    fg = _free_fg(obj, x0)
    z0 = layout.free(x0)
    lower, upper = layout.free(layout.lower), layout.free(layout.upper)
    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(lower, upper, strict=True)]
    f_start, _ = fg(z0)
    if f_start >= 1e300:
        obj.solve(x0)          # raises the reason the start is infeasible
    res = sp_minimize(fg, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"gtol": LBFGS_GTOL, "ftol": LBFGS_FTOL, "maxiter": maxiter,
                               "maxcor": 20})
    x = canonical_parameters(obj, layout.expand(res.x, x0))
    fg = _free_fg(obj, x)
    z = layout.free(x)
    f, g = fg(z)
    code = "converged" if res.success else str(res.message)
    H = None
    decrement = np.nan
    if hessian and z.size:
        for _ in range(NEWTON_POLISH_STEPS + 1):
            H = gradient_hessian(fg, z)
            newton = _newton_step(H, g)
            if newton is None:
                break
            step, decrement = newton
            if decrement < NEWTON_DONE:
                break
            z_new = np.clip(z + step, lower, upper)
            f_new, g_new = fg(z_new)
            if not f_new < f:
                break
            z, f, g = z_new, f_new, g_new
        x = canonical_parameters(obj, layout.expand(z, x))
    sol, _, _ = obj.solve(x)
    vcov = None
    if H is not None:
        try:
            vcov = 2.0 * np.linalg.inv(H)
            if not np.all(np.linalg.eigvalsh(vcov) > 0):
                vcov = None
        except np.linalg.LinAlgError:
            vcov = None
    converged = bool(np.isfinite(sol.objective)) and (
        (np.isfinite(decrement) and decrement < CONVERGENCE_TOL)
        or (H is None and res.success))
    if H is not None and vcov is None:
        message = ("the Hessian of the objective is not positive definite at the optimum "
                   "(glmmTMB's 'non-positive-definite Hessian'): standard errors are not "
                   "available; the model may be overparameterized or a variance is at zero")
    elif not converged:
        message = (f"the optimizer stopped ({code}) where a Newton step would still lower "
                   f"the objective by {decrement:.2g}")
    else:
        message = ""
    opt = OptSummary(
        optimizer="L-BFGS-B (exact gradient) + Newton", x0=x0, lower=layout.lower,
        upper=layout.upper, x=x, fval=sol.objective, n_evals=int(res.nfev),
        settings={"gtol": LBFGS_GTOL, "ftol": LBFGS_FTOL, "maxiter": maxiter,
                  "hessian_step": HESSIAN_STEP}, return_code=code,
        seconds=time.perf_counter() - t0)
    return LaplaceFit(x, sol, g, H, vcov, float(decrement), converged, message, opt,
                      obj.n_grads - grads0)

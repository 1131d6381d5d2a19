r"""glmer's Laplace stage with the exact gradient: quasi-Newton in whitened coordinates.

The Laplace stage of :func:`~mixedmodels.fitting.glmm.fit_glmm` works in whitened
coordinates ``x = x0 + T z`` (``T`` from stage 1's covariances: the deviance's Hessian in
``z`` is close to ``2 I``). With the exact gradient of
:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient` (``dF/dz = T' dF/dx``),

* sign-symmetric models (theta unbounded in ``z``, as the derivative-free path) are
  minimized by BFGS (:func:`whitened_bfgs`, a lean one: the model ``I / 2`` makes
  unit steps right from the start) -- a handful of iterations;
* models whose bounds stay a box in ``z`` use L-BFGS-B with those bounds;
* a theta that BFGS drives to zero is put on its bound by the caller's
  ``snap_to_boundary``; a bounded L-BFGS-B polish from the best point follows when the
  unbounded phase stopped without converging.

When the gradient path does not reach a finite optimum (PIRLS failures along the line
search, a failed line search far from the optimum) the caller falls back to BOBYQA from
the best point seen.

The Hessian for the standard errors (lme4's ``calc.derivs``) is the forward difference of
the exact gradient, ``H e_i = [g(z + h e_i) - g(z)] / h`` with ``h =``
:data:`GRADIENT_FD_STEP`, symmetrized: ``k`` gradients for ``k`` parameters instead of
``k (k + 3) / 2`` deviances (a gradient costs 2-4 deviances). Its error is ``O(h)``, and
the gradient is smooth to ~1e-9, so ``h`` can be small: on cbpp the standard errors are
2e-6 (relative) from the converged central differences, against 1.2e-4 for the
deviance-based Hessian at its step (whose off-diagonals are ``O(h)`` too, with rounding
that forbids a smaller step). The theta scaling of the Laplace stage uses the same
differences where the stage-0 search's own inverse-Hessian model is not available
(:func:`~mixedmodels.fitting.glmm._stage0_covariance`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from scipy.optimize import minimize as sp_minimize

from ..diagnostics.link_edge import link_edge_message
from ..objective.glmm_gradient import (
    LaplaceGradient,
    Stage0Gradient,
)
from ..objective.pirls import PIRLSError
from ..optim import OptSummary
from .glmm_vcov import FD_STEP_WHITENED, DevianceDerivatives, deviance_derivatives

__all__ = [
    "GRADIENT_FD_STEP",
    "GRADIENT_GTOL",
    "GRADIENT_GTOL_REL",
    "at_link_edge",
    "hessian_from_gradient",
    "laplace_gradient",
    "minimize_whitened",
    "reset_pirls",
    "stage0_gradient",
    "use_gradient",
    "whitened_bfgs",
    "whitened_derivatives",
]

#: Gradient tolerance in whitened coordinates (deviance per approximate standard error):
#: the Hessian there is ~2 I, so the deviance is then within ~g^2/4 = 2.5e-11 of the
#: optimum ...
GRADIENT_GTOL = 1e-5
#: ... or, relative to the deviance, its rounding noise (a deviance of 1e4 carries noise of
#: ~1e-11 per evaluation, and line searches cannot resolve gradients below its square root
#: times the step).
GRADIENT_GTOL_REL = 1e-9
#: Step (whitened units, ~standard errors) of the gradient differences for the Hessian:
#: truncation error ~h (2e-6 of the standard errors on cbpp, 7e-6 at 1e-4), rounding
#: ~1e-9 / h. At this step the modes predicted from the optimum's sensitivity are within
#: PIRLS's tolerance (second-order error ~h^2), so each difference costs one PIRLS
#: iteration (two at 1e-4) on the 14 corpus GLMMs checked (see whitened_derivatives).
GRADIENT_FD_STEP = 3e-5
#: The step where the differences' gradients are taken at modes predicted from the
#: optimum without a PIRLS solve (:meth:`~mixedmodels.objective.glmm_gradient.
#: LaplaceGradient.gradient_at_predicted`): the prediction's error adds another ``O(h)``
#: to the truncation error, and neither rounding nor PIRLS's convergence limits the step
#: (the predicted modes are affine in x), so the step is smaller: cbpp's standard errors
#: 7.2e-7 from converged central differences (2.1e-6 at 3e-5 with solved modes),
#: grouseticks 1.1e-6 (0.7e-6; the central reference itself moves by ~5e-6 between steps
#: 1e-4 and 3e-5 there).
PREDICTED_FD_STEP = 1e-5
#: Largest effect of the predicted modes on the first Hessian column (whitened units, the
#: Hessian ~2 I there; :func:`_prediction_validated`) for the differences to use them:
#: 5e-5 relative. Observed 5.6e-7 (cbpp logit), 7.6e-7 (cbpp probit), 2.3e-4
#: (grouseticks' crossed terms: solved), 452 (Poisson counts around 1e9: solved).
PREDICTED_HESSIAN_TOL = 1e-4
#: Curvature of the deviance in whitened coordinates (``T`` is the root of ``2 H^{-1}``).
WHITENED_CURVATURE = 2.0
#: Iteration limit of the quasi-Newton phases.
GRADIENT_MAXITER = 200
#: Value handed to scipy where the deviance is not finite (a failed line-search trial).
INFEASIBLE = 1e300
#: Sufficient-decrease constant of :func:`whitened_bfgs`'s line search (scipy's c1).
ARMIJO_C1 = 1e-4
#: Trials of one line search, and the range (fractions of the last step) of the next.
LINE_SEARCH_STEPS = 30
BACKTRACK_SHRINK = (0.1, 0.5)
#: A step below this (max norm, whitened units ~ standard errors) whose deviance change
#: is within rounding has reached the deviance's resolution.
STEP_NOISE = 1e-6
#: A search stopped by rounding counts as converged when the gradient is within this
#: multiple of the tolerance (the check :func:`minimize_whitened` applies afterwards).
PRECISION_GTOL_FACTOR = 10.0


def minimize_whitened(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], n: int,
                      lower: np.ndarray) -> tuple[OptSummary, dict]:
    """Minimize ``fg(z) -> (F, dF/dz)`` from ``z = 0`` (module docstring).

    Parameters
    ----------
    fg : callable
    n : int
        Length of ``z``.
    lower : ndarray (n,)
        Lower bounds of ``z`` (all ``-inf``: unbounded BFGS).

    Returns
    -------
    OptSummary, dict
        The record (``x`` the best point seen) and ``{"x", "f", "g"}`` of that point
        (``f`` inf when no finite value was found).
    """
    lower = np.asarray(lower, dtype=float)
    best = {"x": np.zeros(n), "f": np.inf, "g": None}
    count = [0]
    memo: dict = {}
    t0 = time.perf_counter()

    def fun(z):
        key = z.tobytes()
        if key not in memo:
            memo.clear()
            f, g = fg(z)
            count[0] += 1
            if np.isfinite(f) and f < best["f"]:
                best.update(x=z.copy(), f=float(f), g=g.copy())
            memo[key] = (f, g) if np.isfinite(f) else (INFEASIBLE, np.zeros(n))
        f, g = memo[key]
        return f, g.copy()

    f0, _ = fun(np.zeros(n))
    code = "failed"
    if np.isfinite(f0) and f0 < INFEASIBLE:
        gtol = max(GRADIENT_GTOL, GRADIENT_GTOL_REL * abs(f0))
        bounded = bool(np.any(np.isfinite(lower)))
        with warnings.catch_warnings():
            # scipy's "precision loss" means the line search met rounding noise at the
            # optimum; the convergence check after the fit judges the point on its merits
            warnings.simplefilter("ignore", RuntimeWarning)
            if not bounded:
                # the whitened Hessian is ~2 I: start BFGS's inverse-Hessian model there
                res = whitened_bfgs(fun, n, gtol)
                converged = bool(res.success)
                method = "BFGS"
            if bounded or not converged:
                bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
                res = sp_minimize(fun, best["x"].copy(), jac=True, method="L-BFGS-B",
                                  bounds=bounds,
                                  options={"gtol": gtol, "ftol": 1e-15,
                                           "maxiter": GRADIENT_MAXITER})
                method = "BFGS+L-BFGS-B" if not bounded else "L-BFGS-B"
        g = best["g"]
        if g is not None:
            proj = np.where(np.isfinite(lower) & (best["x"] <= lower) & (g > 0), 0.0, g)
            code = "converged" if np.max(np.abs(proj), initial=0.0) <= 10.0 * gtol \
                else f"stopped: {res.message}"
        label = f"gradient:{method}(whitened)"
    else:
        label = "gradient"
    summary = OptSummary(
        optimizer=label, x0=np.zeros(n), lower=lower, upper=np.full(n, np.inf),
        x=best["x"], fval=best["f"], n_evals=count[0],
        settings={"gtol": GRADIENT_GTOL, "gtol_rel": GRADIENT_GTOL_REL,
                  "maxiter": GRADIENT_MAXITER},
        return_code=code, seconds=time.perf_counter() - t0,
    )
    return summary, best


def whitened_bfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], n: int,
                  gtol: float, maxiter: int = GRADIENT_MAXITER) -> SimpleNamespace:
    r"""BFGS from ``z = 0`` with the inverse-Hessian model ``I / 2`` and a backtracking
    line search: the unbounded phase of :func:`minimize_whitened`.

    In the whitened coordinates the deviance's Hessian is close to ``2 I`` from the
    start, so the quasi-Newton step is accepted at unit length almost always; a
    backtracking search on the sufficient-decrease (Armijo) condition,
    :math:`F(z + \alpha p) \le F(z) + c_1 \alpha g'p`, with the minimizer of the
    interpolating quadratic as the next trial (kept within
    :data:`BACKTRACK_SHRINK`), costs one evaluation per iteration where scipy's Wolfe
    search, general-purpose, spent about as much time in its own Python as the
    evaluations of a small model (cbpp: 1.8 ms a fit). The BFGS update is skipped when
    the curvature ``s'y`` is not positive (the model stays positive definite).

    Stops when ``max |g| <= gtol`` (success), when a step no longer changes the
    deviance beyond its rounding (success: the rounding noise at the optimum, scipy's
    "precision loss"), or when the line search fails or ``maxiter`` is reached.

    Returns
    -------
    SimpleNamespace
        ``x``, ``fun``, ``jac``, ``success``, ``message``, ``nit``.
    """
    x = np.zeros(n)
    f, g = fun(x)
    Hinv = np.eye(n) / WHITENED_CURVATURE
    message, success = "iteration limit", False
    nit = 0
    while nit < maxiter:
        nit += 1
        if np.max(np.abs(g), initial=0.0) <= gtol:
            message, success = "converged", True
            break
        p = -Hinv @ g
        slope = float(g @ p)
        if not slope < 0.0:
            # the model lost positive definiteness to rounding: restart it
            Hinv = np.eye(n) / WHITENED_CURVATURE
            p = -Hinv @ g
            slope = float(g @ p)
        alpha = 1.0
        for _ in range(LINE_SEARCH_STEPS):
            xn = x + alpha * p
            fn, gn = fun(xn)
            if fn <= f + ARMIJO_C1 * alpha * slope:
                break
            if abs(fn - f) <= _rounding(f) and alpha * np.max(np.abs(p)) < STEP_NOISE:
                fn = np.inf         # a step lost in the deviance's rounding
                break
            # minimizer of the quadratic through f, the slope and fn (inf: shrink)
            denom = fn - f - alpha * slope
            trial = -slope * alpha * alpha / (2.0 * denom) if np.isfinite(fn) and \
                denom > 0 else BACKTRACK_SHRINK[0] * alpha
            alpha = min(max(trial, BACKTRACK_SHRINK[0] * alpha), BACKTRACK_SHRINK[1] * alpha)
        else:
            fn = np.inf
        if not fn <= f:
            # no sufficient decrease along a descent direction: at the optimum to the
            # deviance's rounding when the gradient is small (scipy's "precision loss")
            success = bool(np.max(np.abs(g), initial=0.0) <= PRECISION_GTOL_FACTOR * gtol)
            message = "precision loss" if success else "line search failed"
            break
        s, y = xn - x, gn - g
        sy = float(s @ y)
        if sy > 0.0:
            Hy = Hinv @ y
            rho = 1.0 / sy
            Hinv = Hinv + (rho * rho * float(y @ Hy) + rho) * np.outer(s, s) \
                - rho * (np.outer(Hy, s) + np.outer(s, Hy))
        x, f, g = xn, fn, gn
    return SimpleNamespace(x=x, fun=f, jac=g, success=success, message=message, nit=nit)


def _rounding(f: float) -> float:
    """Rounding noise of a deviance ``f`` (relative :data:`GRADIENT_GTOL_REL`)."""
    return GRADIENT_GTOL_REL * max(1.0, abs(f))


def hessian_from_gradient(fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
                          z: np.ndarray, g0: np.ndarray, steps: np.ndarray,
                          lower: np.ndarray, central: bool = True
                          ) -> DevianceDerivatives | None:
    """Differences of the exact gradient at ``z`` (module docstring), symmetrized, over the
    parameters not on a bound (the others are held fixed, as
    :func:`~mixedmodels.fitting.glmm_vcov.deviance_derivatives` does); None when a
    gradient is not finite.

    Parameters
    ----------
    fg : callable
        ``z -> (F, dF/dz)``; ``F`` may be None (a gradient without its value, which the
        differences do not need; a failed one is an infinite ``F``).
    z : ndarray
    g0 : ndarray
        The gradient at ``z``.
    steps, lower : ndarray
    central : bool
        Central differences (2 gradients per parameter, error ``O(h^2)``) or forward ones
        (1 gradient, error ``O(h)``: enough for scaling the optimizer).
    """
    z = np.asarray(z, dtype=float)
    g0 = np.asarray(g0, dtype=float)
    idx = np.flatnonzero(_free(z, steps, lower))
    cols = []
    for i in idx:
        e = np.zeros(z.size)
        e[i] = steps[i]
        fp, gp = fg(z + e)
        if central:
            fm, gm = fg(z - e)
        else:
            fm, gm = fp, g0
        if not (_finite(fp) and _finite(fm)):
            return None
        cols.append((gp - gm)[idx] / ((2.0 if central else 1.0) * steps[i]))
    H = np.column_stack(cols) if cols else np.zeros((0, 0))
    H = 0.5 * (H + H.T)
    return DevianceDerivatives(_free(z, steps, lower), g0, H, (2 if central else 1) * idx.size)


def _free(z: np.ndarray, steps: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The parameters :func:`hessian_from_gradient` differences (not on a bound)."""
    return ~(np.isfinite(lower) & (z - steps < lower))


def _finite(f: float | None) -> bool:
    """A difference's value is finite, or absent (a gradient without a value: the
    differences at predicted modes, :func:`whitened_derivatives`)."""
    return f is None or bool(np.isfinite(f))


def use_gradient(optimizer: str, supported: bool, settings_given: bool, needs: str) -> bool:
    """Whether a stage uses its exact gradient: ``"gradient"`` (an error when the model
    has none: ``needs`` says what it takes) or ``"auto"`` without the user's settings for a
    derivative-free search."""
    if optimizer not in ("auto", "gradient"):
        return False
    if not supported:
        if optimizer == "gradient":
            raise ValueError(f"optimizer='gradient' needs {needs}; use 'auto' or 'bobyqa'")
        return False
    return optimizer == "gradient" or not settings_given


def stage0_gradient(obj, optimizer: str, user_settings: bool) -> Stage0Gradient | None:
    """The exact gradient of the nAGQ = 0 criterion (see :func:`use_gradient`). The stage
    that only starts the Laplace fit uses it too, to a loose gradient tolerance (measured
    faster than BOBYQA with a loose PIRLS tolerance: VerbAgg 11 gradients against 27
    evaluations, the 625-row crossed Poisson 12 against 45)."""
    factory = obj.stage0_gradient_factory()     # the Dask backend's for rows on a cluster
    use = use_gradient(optimizer, factory is not None, user_settings,
                       "glmer's own deviance with theta (and beta) as the only parameters "
                       "(not glmer_nb's estimated shape, Toeplitz covariance terms or a "
                       "penalized objective; on Dask input also no vector-valued term "
                       "outside the first grouping factor)")
    return factory(obj) if use else None


def laplace_gradient(obj, optimizer: str, user_settings: bool) -> LaplaceGradient | None:
    """The exact gradient of the Laplace (or quadrature) stage (see
    :func:`use_gradient`): the objective's own (``obj.laplace_gradient_factory()``, the
    Dask backend's for rows on a cluster)."""
    factory = obj.laplace_gradient_factory()
    use = use_gradient(optimizer, factory is not None, user_settings,
                       "the Laplace approximation (nAGQ=1) or quadrature of glmer's own "
                       "deviance (not quadrature with a dispersion family, Toeplitz "
                       "covariance terms or a penalized objective; on Dask input also no "
                       "vector-valued term outside the first grouping factor, no "
                       "estimated negative binomial shape)")
    return factory(obj) if use else None


def reset_pirls(obj) -> None:
    """Start PIRLS afresh (lme4's start), forgetting the modes of earlier solves."""
    pirls = obj.pirls
    pirls.u_start = np.zeros(pirls.q)
    pirls.beta_start = None
    pirls._ref = None
    pirls._ref_joint = None
    pirls._ref_joint_pending = None


def at_link_edge(obj, theta: np.ndarray, family) -> bool:
    """Whether the nAGQ = 0 estimates at ``theta`` put the mean at the edge of the link's
    range (:func:`~mixedmodels.diagnostics.link_edge.link_edge_message`)."""
    if obj.pirls.link_keeps_range:
        return False
    try:
        sol = obj.solve0(theta, family)
    except PIRLSError:
        return True
    eta = obj.eta_range(sol) if hasattr(obj, "eta_range") else sol.eta   # (Dask: no rows)
    return link_edge_message(sol.family, eta) is not None


def _optimum_reference(grad, xs: np.ndarray):
    """PIRLS's reference for predicting the modes, ``(theta, beta, u, du/d[theta,
    beta])``, computed afresh at the optimum ``xs`` from the gradient's last solve there
    (:meth:`~mixedmodels.objective.pirls.PIRLS.reference_of`); None where that solve is
    not at ``xs`` or the rows are not in memory (the Dask backend keeps its own)."""
    from ..objective.pirls import PIRLS

    pirls = grad.obj.pirls
    last = getattr(grad, "last_solve", None)
    if type(pirls) is not PIRLS or last is None or last[1] is not None or \
            not np.array_equal(last[0], xs):
        return None
    return pirls.reference_of(last[3])


def _prediction_validated(fg, solved_fg, size: int, h: float, solved: dict) -> bool:
    """Whether the first difference (theta's, whose modes move the least linearly) at the
    predicted modes agrees with the same difference at PIRLS's solved modes to
    :data:`PREDICTED_HESSIAN_TOL` (whitened units: the Hessian there is ~2 I). The
    prediction's effect on the gradient is ``(d grad/d u) e`` with the modes' error
    ``e = O(h^2)``: small against the whitened Hessian where the weights are moderate
    (cbpp), not where they are huge (Poisson counts around 1e9: ``d grad/d u`` scales
    with the weights), so it is measured, not assumed. The solved gradient is kept in
    ``solved`` for the Hessian's first column (no second solve there)."""
    z = np.zeros(size)
    z[0] = h
    f_p, g_p = fg(z)                    # (predicted: no value, unless it fell back)
    f_s, g_s = solved_fg(z)
    if not np.isfinite(g_s).all():
        return False
    solved[z.tobytes()] = (f_s, g_s)
    return f_p is None and _agrees(g_p, g_s, h)


def _agrees(g_p: np.ndarray | None, g_s: np.ndarray, h: float) -> bool:
    """The test of :func:`_prediction_validated`: the predicted difference ``g_p`` is
    finite and within :data:`PREDICTED_HESSIAN_TOL` of the solved one ``g_s``."""
    return g_p is not None and bool(np.isfinite(g_p).all()) and \
        float(np.abs(g_p - g_s).max()) / h <= PREDICTED_HESSIAN_TOL


def _predicted_columns(grad, xs, Td, n_diff: int, ref, h: float, lower: np.ndarray,
                       size: int) -> tuple[dict, np.ndarray | None] | None:
    """The differences' gradients at the predicted modes in one pass, for one scalar
    term (:mod:`~mixedmodels.objective.glmm_gradient_batch`; None where that does not
    apply): ``({z bytes: whitened gradient}, corrected)`` over the first column and the
    free ones (a column whose modes are not predicted or whose gradient is not finite is
    left out: it is solved, as point by point), ``corrected`` the first column's
    gradient at the Newton-corrected modes (PIRLS's solution there; None: solve it)."""
    from ..objective import glmm_gradient_batch as batch

    if not batch.applies(grad):
        return None
    obj = grad.obj
    free = _free(np.zeros(size), np.full(size, h), lower)
    free[0] = True
    keys, points, rows = [], [], []
    for i in np.flatnonzero(free):
        z = np.zeros(size)
        z[i] = h
        out = xs.copy()
        out[:n_diff] += Td @ z
        theta, beta, _, fam = obj.split(out)
        obj._use_family(fam)
        r = obj.pirls.predicted_rows(theta, beta, ref)
        if r is not None:
            keys.append((i, z.tobytes()))
            points.append(out)
            rows.append(r)
    first = bool(keys) and keys[0][0] == 0
    corrected = batch.newton_corrected_rows(grad, points[0], rows[0]) if first else None
    if corrected is not None:
        points.append(points[0])
        rows.append(corrected)
    gs = batch.predicted_gradients(grad, points, rows)
    cols = {key: Td.T @ g[:n_diff]
            for (_, key), g in zip(keys, gs[:len(keys)], strict=True) if g is not None}
    g_c = gs[-1] if corrected is not None else None
    return cols, None if g_c is None else Td.T @ g_c[:n_diff]


def _columns_validated(pre: tuple[dict, np.ndarray | None], solved_fg, size: int, h: float,
                       solved: dict) -> bool:
    """:func:`_prediction_validated` on the columns of :func:`_predicted_columns`: the
    first against its gradient at the corrected modes (a PIRLS solve only where there is
    none); when it passes, every column goes into ``solved`` for the differences."""
    cols, g_c = pre
    z = np.zeros(size)
    z[0] = h
    key = z.tobytes()
    f_s, g_s = (None, g_c) if g_c is not None else solved_fg(z)
    if not np.isfinite(g_s).all():
        return False
    ok = _agrees(cols.pop(key, None), g_s, h)
    if ok:
        solved.update((k, (None, g)) for k, g in cols.items())
    solved[key] = (f_s, g_s)
    return ok


def whitened_derivatives(sub, grad, xs, Td, n_diff, keep_d, f0, lower
                         ) -> DevianceDerivatives:
    """Gradient and Hessian of the deviance in the whitened coordinates ``z`` at ``xs``
    (``x = xs + Td z`` on the first ``n_diff`` entries): forward differences of the exact
    gradient ``grad`` when there is one (:func:`hessian_from_gradient`), else lme4's
    differences of the deviance ``sub(z)``.

    Each difference's PIRLS solve starts from the modes predicted from the optimum,
    ``u* + (du/dx)(x - xs)``, with the sensitivity computed afresh there
    (:func:`_optimum_reference`): the prediction is then off by ``O(h^2)`` only, within
    PIRLS's tolerance at :data:`GRADIENT_FD_STEP`, and one iteration confirms it. (PIRLS
    on its own predicts from the previous solve with a sensitivity refreshed only when
    stale: off by ~1e-8 at these steps, two iterations each.)"""
    if grad is not None:
        ref = [None]
        predicts = [False]      # gradients at predicted modes (set with the reference)
        solved: dict = {}       # the validating difference's solved gradient

        def fg(z):
            out = xs.copy()
            out[:n_diff] += Td @ z
            if ref[0] is not None:
                hit = solved.get(z.tobytes())
                if hit is not None:
                    return hit
                # the gradient at the modes predicted from the optimum (no PIRLS solve;
                # no value: the differences need none)
                g = grad.gradient_at_predicted(out, ref[0]) if predicts[0] else None
                if g is not None:
                    return None, Td.T @ g[:n_diff]
            return _solved(z)

        def _solved(z):
            out = xs.copy()
            out[:n_diff] += Td @ z
            if ref[0] is not None:
                # every difference's solve starts from the modes predicted from the
                # optimum's fresh sensitivity, not from the previous difference's point
                grad.obj.pirls._ref = ref[0]
            f, g = grad(out)
            return f, Td.T @ g[:n_diff]

        _, g0 = fg(np.zeros(keep_d.size))
        if np.isfinite(g0).all():
            ref[0] = _optimum_reference(grad, xs)
            # (the reference's sensitivity must be the modes' exact derivative: else the
            # prediction is off by O(h), and so would the Hessian be)
            predicts[0] = ref[0] is not None and getattr(grad, "predicts_modes", False) \
                and grad.obj.pirls.sensitivity_is_exact(grad.last_solve[3])
            h = PREDICTED_FD_STEP if predicts[0] else GRADIENT_FD_STEP
            if predicts[0] and keep_d.size:
                # (one scalar term: every column in one pass, validated at the corrected
                # modes without a PIRLS solve)
                pre = _predicted_columns(grad, xs, Td, n_diff, ref[0], h, lower,
                                         keep_d.size)
                predicts[0] = _prediction_validated(fg, _solved, keep_d.size, h, solved) \
                    if pre is None else _columns_validated(pre, _solved, keep_d.size, h,
                                                           solved)
                if not predicts[0]:
                    h = GRADIENT_FD_STEP
                    solved.clear()
            d = hessian_from_gradient(fg, np.zeros(keep_d.size), g0,
                                      np.full(keep_d.size, h), lower, central=False)
            if d is not None:
                return d
    return deviance_derivatives(sub, np.zeros(keep_d.size), f0,
                                np.full(keep_d.size, FD_STEP_WHITENED), lower,
                                pairs="forward")

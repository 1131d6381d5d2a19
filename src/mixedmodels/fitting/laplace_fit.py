r"""Optimizing the general Laplace objective: quasi-Newton with the exact gradient, then
Newton steps with the finite-difference Hessian of that gradient.

1. BFGS over the free parameters of the layout (:mod:`.laplace_bfgs`: scipy's BFGS
   conventions and line search without ``minimize``'s per-call wrapping; L-BFGS-B when
   some are bounded; glmmTMB's ``nlminb`` plays this role; a model without random
   effects uses Newton's method with its exact Hessian instead), with the analytic gradient of
   :class:`~mixedmodels.objective.laplace.LaplaceObjective`, whose modes it asks for to a
   looser final step while its gradients are large (:data:`LOOSE_INNER_GTOL`).
   Covariance parameters are unbounded when their structure is sign-symmetric (the
   objective is even in each column of ``Lambda``); they are put in canonical form after.
   A log standard deviation crawling toward a zero variance is moved ahead
   (:mod:`mixedmodels.fitting.laplace_boundary`); a search whose line searches have
   reached the objective's rounding noise is stopped (:mod:`.laplace_noise`). BFGS starts
   from the Gauss-Newton Hessian in the fixed effects and the expected information in the
   covariance parameters (:func:`start_inverse_hessian`).
2. The Hessian ``H`` of ``F`` by differences of the gradient (what TMB's ``sdreport``
   does with its automatic derivatives; :func:`hessian_at`: forward differences, one
   gradient per free parameter, central ones along covariance parameters where ``F`` is
   even or curves fast, and none but its diagonal along a log sd on the boundary), and up
   to :data:`NEWTON_POLISH_STEPS` Newton steps ``-H^{-1} g`` while they lower ``F`` (a log
   sd on the boundary held): quadratic convergence from where the quasi-Newton method
   stopped, so the reported optimum does not depend on its tolerances.
3. ``vcov_full = 2 H^{-1}`` (``F`` is minus twice the log-likelihood).

All three work on the fixed effects of the well-conditioned basis of
:mod:`mixedmodels.objective.laplace.basis` (``X~ = sqrt(N) X R^{-1}``, orthogonal columns):
a predictor far from zero leaves the optimizer's path, the finite-difference steps and the
inversion of ``H`` unaffected, and the results are mapped back to the user's ``beta``
exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize as sp_minimize

from ..objective.laplace import LaplaceObjective, LaplaceSolution, ModesError
from ..objective.laplace.basis import LayoutBasis, fixed_effects_basis, objective_in_basis
from ..objective.laplace.information import theta_information
from ..optim import OptSummary
from .laplace_bfgs import BFGS_CALLBACK_STOP, dense_bfgs
from .laplace_boundary import (
    MAX_JUMPS,
    CrawlWatch,
    boundary_log_scales,
    comparable_log_scales,
    even_scales_off_zero,
    jump_ahead,
    log_scale_index,
    smooth_parameters,
)
from .laplace_noise import NoiseWatch, StalledInNoiseError

__all__ = ["BFGS_HANDOVER_GTOL", "HESSIAN_STEP", "NEWTON_POLISH_STEPS", "LaplaceFit",
           "bfgs_with_jumps", "optimize_laplace"]

#: Relative step of the central differences of the gradient (the gradient is accurate to
#: ~1e-9, the inner tolerance; truncation error ~h^2 and rounding ~1e-9/h balance here).
HESSIAN_STEP = 1e-4
#: Central (two gradients per parameter) instead of forward differences (one, half the
#: cost). Forward differences truncate at ~h times the third derivative: at
#: FORWARD_STEP the standard errors of the reference models move by < 5e-5 relative
#: against central differences, and the gradient's ~1e-9 rounding costs < 1e-4.
HESSIAN_CENTRAL = False
#: Relative asymmetry of the forward-difference Hessian above which central differences
#: are used instead.
HESSIAN_SYMMETRY_TOL = 1e-4
#: Relative step of the forward differences.
FORWARD_STEP = 2e-5
#: Newton steps tried after the quasi-Newton phase.
NEWTON_POLISH_STEPS = 3
#: Predicted decrease of F (deviance units) below which Newton polishing stops.
NEWTON_DONE = 1e-10
#: Below this predicted decrease the Hessian is not recomputed after the Newton step.
NEWTON_REUSE = 1e-5
#: L-BFGS-B tolerances: gradient (deviance units per unit of parameter) and relative
#: decrease of F.
LBFGS_GTOL = 1e-6
LBFGS_FTOL = 1e-15
LBFGS_MAXITER = 2000
#: Gradient tolerance of the dense BFGS phase (the Newton polish finishes the job).
BFGS_GTOL = 1e-5
#: ... where the Hessian follows (its forward differences and up to
#: :data:`NEWTON_POLISH_STEPS` Newton steps): BFGS hands over once the gradient is this
#: small, where its last iterations would only creep to ``BFGS_GTOL`` (over the structures
#: fixtures 20 of 331 gradients saved, exp_pois_faq 21 -> 13, gau_pois 27 -> 18, none
#: more; objectives within 5e-10, standard errors within 6e-5 relative). The Hessian is
#: then taken before the last Newton step: at 1e-3 that moved the standard errors of
#: predictions of Salamanders' zero-inflated NB2 by 1.3e-4 (against 3e-5 here). Where
#: the polish cannot finish (``H`` not positive definite, or a step that would need a
#: fresh Hessian but does not lower ``F``), BFGS resumes to ``BFGS_GTOL`` and the
#: polish is made again.
BFGS_HANDOVER_GTOL = 3e-4
#: While every gradient of the quasi-Newton phase is above LOOSE_INNER_GTOL (deviance
#: units per unit of parameter), the modes of its evaluations end at a full Newton step
#: below ``sqrt(LOOSE_INNER_COEF g)`` (``g`` the smallest gradient seen, at most
#: LOOSE_INNER_STEP; the objective's own limit is 1e-5) instead of one more inner
#: iteration: such a step leaves the modes ~its square from the exact ones, which moves
#: the gradient by < 1e-5 of ``g`` and ``F`` (stationary in the modes) by < 1e-7 of it
#: on hetar1_pois (tests/test_laplace_economy.py) -- nothing to a search whose steps
#: lower ``F`` by ~``g``. Below LOOSE_INNER_GTOL the handover's point and the Hessian's
#: centre are evaluated with the tight limit. hetar1_pois: 46 -> 38 inner iterations in
#: 26 evaluations; over the structures fixtures the same gradient counts, objectives
#: within 5e-11 and standard errors within 2.3e-6.
LOOSE_INNER_GTOL = 0.01
LOOSE_INNER_STEP = 1e-2
LOOSE_INNER_COEF = 1e-5
#: Evaluations of ``(F, dF/dx)`` remembered (see :class:`_GradientMemo`).
GRADIENT_MEMO_SIZE = 4
#: Smallest eigenvalue of a modified Newton step's Hessian, relative to its largest.
MODIFIED_NEWTON_FLOOR = 1e-8
#: Longest step of Newton's method without random effects (largest entry; the fixed
#: effects of the basis are on the scale of the linear predictor, family parameters on
#: their link scale). Far from the optimum the full step overshoots and is halved, one
#: density evaluation per halving (Tweedie's start: 7.7 on log phi, accepted at 1/8);
#: measured over the 18 benchmark models' first stages: 121 evaluations uncapped, 95 at
#: 1, 111 at 2, none more at 1 than uncapped.
FIXED_NEWTON_MAX_STEP = 1.0
#: Predicted decrease of F above which the fit is reported as not converged.
CONVERGENCE_TOL = 1e-3
#: Relative step of the forward differences that give BFGS's start Hessian its diagonal in
#: the covariance parameters.
START_THETA_STEP = 1e-3
#: BFGS's start Hessian takes the covariance parameters' block from their expected
#: information (:mod:`mixedmodels.objective.laplace.information`), where it covers them,
#: instead of forward differences of the gradient (one gradient each).
START_THETA_INFORMATION = True
#: Smallest curvature (deviance units) on that diagonal (F may be concave in a covariance
#: parameter far from the optimum).
START_MIN_CURVATURE = 1.0
#: Smallest eigenvalue of the start Hessian, relative to its largest.
START_EIGEN_FLOOR = 1e-6
#: Largest gradient at the start (deviance units per unit of parameter) from which the
#: quasi-Newton phase is skipped for the Newton polish.
START_POLISH_GTOL = 1e-3


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


@dataclass(frozen=True)
class _NewtonResult:
    """The fields of scipy's result the driver reads."""

    x: np.ndarray
    nfev: int
    success: bool = True
    message: str = "converged"
    #: the search stopped in the objective's rounding noise (:mod:`.laplace_noise`)
    noisy: bool = False


class _LooseInner:
    """``fg`` for the quasi-Newton phase: while every gradient seen is larger than
    :data:`LOOSE_INNER_GTOL` the objective's modes end at a full Newton step below
    :data:`LOOSE_INNER_STEP` instead of its own ``inner_step_final`` (see there)."""

    def __init__(self, obj: LaplaceObjective, fg):
        self.obj, self.fg = obj, fg
        self.g_min = np.inf

    def __call__(self, z: np.ndarray):
        tight = self.obj.inner_step_final
        if self.g_min > LOOSE_INNER_GTOL:
            self.obj.inner_step_final = max(tight, min(
                LOOSE_INNER_STEP, float(np.sqrt(LOOSE_INNER_COEF * self.g_min))))
        try:
            f, g = self.fg(z)
        finally:
            self.obj.inner_step_final = tight
        if f < 1e300:
            self.g_min = min(self.g_min, float(np.max(np.abs(g), initial=0.0)))
        return f, g


class _GradientMemo:
    """The last few ``(x, F, dF/dx)`` of an objective: scipy's BFGS evaluates its start
    again (the driver already has it), and the point BFGS returns is evaluated again once
    its covariance parameters are in canonical form (usually unchanged) -- two gradients
    of every fit. Reusing them leaves the objective's workspace consistent: its reference
    solution (for predicted modes) is still the last one it computed."""

    def __init__(self, obj: LaplaceObjective):
        self.obj = obj
        self.store: dict[bytes, tuple[float, np.ndarray]] = {}
        #: the first point evaluated (the start) is never evicted: the start Hessian's
        #: differences (one gradient per covariance parameter) come between the driver's
        #: evaluation of it and BFGS's
        self.pinned: bytes | None = None

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        key = np.ascontiguousarray(x, dtype=float).tobytes()
        hit = self.store.get(key)
        # (an evaluation with looser modes than now asked for is made again)
        if hit is None or hit[2] > self.obj.inner_step_final:
            f, g = self.obj.value_and_gradient(x)
            hit = (f, np.array(g, dtype=float), self.obj.inner_step_final)
            if self.pinned is None:
                self.pinned = key
            if len(self.store) >= GRADIENT_MEMO_SIZE:
                self.store.pop(next(k for k in self.store if k != self.pinned))
            self.store[key] = hit
        return hit[0], hit[1].copy()

    def put(self, x: np.ndarray, f: float, g: np.ndarray) -> None:
        """Remember ``(F, dF/dx)`` at ``x`` computed by another evaluation of the
        objective at the current inner tolerance (Newton's method without random effects
        has them from its value-gradient-Hessian evaluations)."""
        key = np.ascontiguousarray(x, dtype=float).tobytes()
        if self.pinned is None:
            self.pinned = key
        if key not in self.store and len(self.store) >= GRADIENT_MEMO_SIZE:
            self.store.pop(next(k for k in self.store if k != self.pinned))
        self.store[key] = (float(f), np.array(g, dtype=float), self.obj.inner_step_final)


def _free_fg(obj: LaplaceObjective, base: np.ndarray, memo: _GradientMemo | None = None):
    layout = obj.layout
    value_and_gradient = obj.value_and_gradient if memo is None else memo

    def fg(z):
        f, g = value_and_gradient(layout.expand(z, base))
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


def gradient_hessian(fg, z: np.ndarray, step: float = HESSIAN_STEP, g0=None,
                     central: bool = False) -> np.ndarray:
    """Differences of the gradient ``fg(z)[1]``, symmetrized: forward differences from
    ``g0 = fg(z)[1]`` (one gradient per parameter), or central ones (two)."""
    k = z.size
    H = np.empty((k, k))
    if g0 is None and not central:
        g0 = fg(z)[1]
    for j in range(k):
        h = step * max(1.0, abs(z[j]))
        e = np.zeros(k)
        e[j] = h
        if central:
            H[:, j] = (fg(z + e)[1] - fg(z - e)[1]) / (2.0 * h)
        else:
            H[:, j] = (fg(z + e)[1] - g0) / h
    return 0.5 * (H + H.T)


def _asymmetry(H: np.ndarray) -> float:
    """Largest ``|H_ij - H_ji|`` relative to ``sqrt(|H_ii H_jj|)``."""
    d = np.sqrt(np.abs(np.outer(np.diag(H), np.diag(H))))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(H - H.T) / d
    return float(np.nanmax(r)) if r.size else 0.0


def hessian_at(fg, z: np.ndarray, g0: np.ndarray, central=None, flat=None) -> np.ndarray:
    """The Hessian by forward differences of the gradient, or by central differences
    when the forward one is not symmetric to :data:`HESSIAN_SYMMETRY_TOL` (its
    asymmetry is its truncation error showing: a near-flat or strongly curved direction,
    such as a zero-inflation coefficient heading for separation).

    ``central`` (a boolean mask) marks the columns taken by central differences in any
    case: the covariance parameters, along which ``F`` is even about zero and its
    curvature changes fastest when a variance is small (Salamanders' hurdle NB2, sd
    0.07: forward differences put its SE 1.7e-4 off, central ones 1e-6).

    ``flat`` (a boolean mask) marks parameters along which ``F`` is flat to ~1e-9 (a log
    sd on the boundary, :func:`~.laplace_boundary.boundary_log_scales`): a step along
    one changes the other gradients by less than their rounding, so its column's
    off-diagonal entries are taken from its row (its own gradient's differences along
    the others, which are exact to its much smaller rounding) and left out of the
    symmetry test; only the diagonal entry comes from its own column."""
    if HESSIAN_CENTRAL:
        return gradient_hessian(fg, z, HESSIAN_STEP, central=True)
    k = z.size
    central = np.zeros(k, dtype=bool) if central is None else central
    tested = np.ones(k, dtype=bool) if flat is None else ~flat
    H = np.empty((k, k))
    asymmetric = False
    for j in range(k):
        h = FORWARD_STEP * max(1.0, abs(z[j]))
        e = np.zeros(k)
        e[j] = h
        if central[j]:
            H[:, j] = (fg(z + e)[1] - fg(z - e)[1]) / (2.0 * h)
        else:
            H[:, j] = (fg(z + e)[1] - g0) / h
        # the columns so far are already asymmetric: the rest would be spent on a
        # matrix that is thrown away (toep_disp0 without the noise stop: 13 gradients)
        t = tested[:j + 1]
        if j and _asymmetry(H[:j + 1, :j + 1][np.ix_(t, t)]) > HESSIAN_SYMMETRY_TOL:
            asymmetric = True
            break
    if not asymmetric:
        for j in np.flatnonzero(~tested):
            d = H[j, j]
            H[:, j] = H[j, :]
            H[j, j] = d
    H = 0.5 * (H + H.T) if not asymmetric and \
        _asymmetry(H[np.ix_(tested, tested)]) <= HESSIAN_SYMMETRY_TOL else None
    if H is None or not _positive_definite(H):
        # the forward differences' truncation error shows as asymmetry, or (gradients
        # noisy at the step's scale: a nearly singular inner Hessian) as a spurious
        # negative curvature: central differences with a longer step
        central = gradient_hessian(fg, z, HESSIAN_STEP, central=True)
        if H is None or _positive_definite(central):
            return central
    return H


def _positive_definite(H: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    return True


def _newton_step(H: np.ndarray, g: np.ndarray, held=()):
    """Newton step and predicted decrease, or None when ``H`` is not positive definite;
    the parameters at positions ``held`` stay where they are (the step is Newton's in the
    others)."""
    if len(held):
        free = np.setdiff1d(np.arange(g.size), held)
        newton = _newton_step(H[np.ix_(free, free)], g[free])
        if newton is None:
            return None
        step = np.zeros(g.size)
        step[free] = newton[0]
        return step, newton[1]
    try:
        C = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    step = np.linalg.solve(C.T, np.linalg.solve(C, g))
    return -step, 0.5 * float(g @ step)


def _modified_newton_step(H: np.ndarray, g: np.ndarray):
    """Newton step with ``H``'s eigenvalues floored at a fraction of the largest (a
    descent direction where ``H`` is indefinite: zero-inflated likelihoods are not
    concave away from the optimum) and the decrease it predicts."""
    newton = _newton_step(H, g)
    if newton is not None:
        return newton
    vals, vecs = np.linalg.eigh(H)
    if not np.all(np.isfinite(vals)) or vals.max() <= 0:
        return None
    vals = np.maximum(np.abs(vals), MODIFIED_NEWTON_FLOOR * vals.max())
    step = vecs @ ((vecs.T @ g) / vals)
    return -step, 0.5 * float(g @ step)


def _newton_fixed(obj: LaplaceObjective, x0: np.ndarray, maxiter: int = 100,
                  first=None, memo: _GradientMemo | None = None):
    """Newton's method with the exact Hessian for a model without random effects
    (eigenvalues floored where it is indefinite); None when no descent step can be made
    (the caller then uses the quasi-Newton method). ``first``: ``(F, dF/dx, H)`` at
    ``x0`` where the caller has them; with ``memo`` the value and gradient at the point
    returned are put there (the caller's next evaluation is at that point)."""
    layout = obj.layout
    free = layout.free_index
    lower, upper = layout.free(layout.lower), layout.free(layout.upper)
    x = x0.copy()
    # each iterate's value, gradient and Hessian come from one evaluation of the density
    f, g, H = obj.value_gradient_hessian(x) if first is None else first
    if not np.isfinite(f):
        return None
    for _ in range(maxiter):
        newton = _modified_newton_step(H[np.ix_(free, free)], layout.free(g))
        if newton is None:
            return None
        step, dec = newton
        if dec < NEWTON_DONE:
            if memo is not None:
                memo.put(x, f, g)
            return x
        size = float(np.max(np.abs(step), initial=0.0))
        t = min(1.0, FIXED_NEWTON_MAX_STEP / size) if size > 0 else 1.0
        for _ in range(60):
            trial = layout.expand(np.clip(layout.free(x) + t * step, lower, upper), x)
            f_new, g_new, H_new = obj.value_gradient_hessian(trial)
            if f_new <= f:
                break
            t *= 0.5
            # what a shorter step could gain is below the stopping rule: F's rounding
            # (e.g. Tweedie near p = 2, whose log W and lambda run to millions and cancel)
            # is what rejects the steps, not the model
            if t * dec < NEWTON_DONE:
                return x
        else:
            return x
        x, f, g, H = trial, f_new, g_new, H_new
    return x


def _fixed_start(obj: LaplaceObjective, memo: _GradientMemo, x0: np.ndarray):
    """``(F, dF/dx, H)`` at ``x0`` of a model without random effects, its value and
    gradient put in ``memo``; None where ``F`` is not finite there."""
    f, g, H = obj.value_gradient_hessian(x0)
    if not np.isfinite(f):
        return None
    memo.put(x0, f, g)
    return f, g, H


def start_inverse_hessian(obj: LaplaceObjective, x0: np.ndarray, fg, z0: np.ndarray,
                          g0: np.ndarray) -> np.ndarray | None:
    """BFGS's first inverse Hessian: the Gauss-Newton Hessian of ``F`` in the fixed effects
    and family parameters with the modes following them
    (:meth:`~mixedmodels.objective.laplace.LaplaceObjective.marginal_fixed_hessian`), and
    forward differences of the gradient (:data:`START_THETA_STEP`) on the diagonal of the
    covariance parameters, at least :data:`START_MIN_CURVATURE`; eigenvalues floored at
    :data:`START_EIGEN_FLOOR` of the largest. Where the expected information of the
    covariance parameters is available (:data:`START_THETA_INFORMATION`) their block is
    that instead (no gradient; with its cross terms): on the structures fixtures it saves
    one gradient per covariance parameter and a few BFGS iterations (cs_binom: 7 + 17
    gradients -> 13, toep_disp0: 11 + 33 -> 28). The identity start of plain BFGS has no
    scale: on the reference models this start halves the quasi-Newton gradients
    (Salamanders ZIP: 51 -> 20, ZINB 36 -> 19, ziGamma 26 -> 11). None when the
    Hessian cannot be formed (BFGS then starts from the identity)."""
    free = np.asarray(obj.layout.free_index)
    try:
        H = obj.marginal_fixed_hessian(x0)[np.ix_(free, free)]
        # (the factor of H at x0's modes is now in the workspace)
        info = theta_information(obj, x0) if START_THETA_INFORMATION else None
    except (ModesError, np.linalg.LinAlgError, FloatingPointError):
        return None
    if info is not None:
        pos, block = info
        inside = np.isin(pos, free)
        z_pos = np.searchsorted(free, pos[inside])
        block = block[np.ix_(inside, inside)]
        # the floor of the differences' diagonal below (raising a diagonal keeps the
        # block positive semi-definite)
        d = np.diag(block)
        block[np.diag_indices_from(block)] += np.maximum(START_MIN_CURVATURE - d, 0.0)
        H[np.ix_(z_pos, z_pos)] = block
    for j in np.flatnonzero(np.diag(H) == 0):       # covariance parameters
        h = START_THETA_STEP * max(1.0, abs(z0[j]))
        e = np.zeros(z0.size)
        e[j] = h
        f, g = fg(z0 + e)
        curv = abs(g[j] - g0[j]) / h if f < 1e300 else np.nan
        H[j, j] = max(curv, START_MIN_CURVATURE) if np.isfinite(curv) else \
            START_MIN_CURVATURE
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        return None
    vals, vecs = np.linalg.eigh(H)
    if vals.max() <= 0:
        return None
    vals = np.maximum(vals, START_EIGEN_FLOOR * vals.max())
    Hi = (vecs / vals) @ vecs.T
    return 0.5 * (Hi + Hi.T)


def optimize_laplace(obj: LaplaceObjective, x0: np.ndarray, *, hessian: bool = True,
                     maxiter: int = LBFGS_MAXITER, basis: bool = True) -> LaplaceFit:
    """Minimize ``obj`` from ``x0`` (a full layout vector; see the module docstring).

    With ``basis`` (the default) the optimizer and the Hessian work on the fixed effects
    of the well-conditioned basis of :mod:`~mixedmodels.objective.laplace.basis`, and the
    optimum, gradient, Hessian and ``vcov`` are mapped back to the user's coordinates
    exactly (``vcov`` is inverted in the basis, where the Hessian is well conditioned)."""
    x0 = np.asarray(x0, dtype=float)
    t0 = time.perf_counter()
    grads0 = obj.n_grads
    B = fixed_effects_basis(obj) if basis else LayoutBasis(obj.layout.size, ())
    work = obj if B.is_identity else objective_in_basis(obj, B)
    xt, g, H, decrement, res, code = _optimize(work, B.from_user(x0), hessian, maxiter)
    if work is not obj:
        obj.n_evals += work.n_evals
        obj.n_grads += work.n_grads
        obj.n_newton += work.n_newton
        obj.u_start = work.u_start
    x = B.to_user(xt)
    sol, _, _ = obj.solve(x)
    vcov = None
    if H is not None:
        try:
            vcov = 2.0 * np.linalg.inv(H)
            if not np.all(np.linalg.eigvalsh(vcov) > 0):
                vcov = None
        except np.linalg.LinAlgError:
            vcov = None
    if not B.is_identity:
        free = obj.layout.free_index
        T = B.matrix()[np.ix_(free, free)]
        T_inv = B.inverse_matrix()[np.ix_(free, free)]
        g = T_inv.T @ g
        if H is not None:
            H = T_inv.T @ H @ T_inv
            H = 0.5 * (H + H.T)
        if vcov is not None:
            vcov = T @ vcov @ T.T
            vcov = 0.5 * (vcov + vcov.T)
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
        optimizer="BFGS (exact gradient) + Newton", x0=x0, lower=obj.layout.lower,
        upper=obj.layout.upper, x=x, fval=sol.objective, n_evals=int(res.nfev),
        settings={"gtol": LBFGS_GTOL, "ftol": LBFGS_FTOL, "maxiter": maxiter,
                  "hessian_step": HESSIAN_STEP, "fixed_basis": not B.is_identity},
        return_code=code, seconds=time.perf_counter() - t0)
    return LaplaceFit(x, sol, g, H, vcov, float(decrement), converged, message, opt,
                      obj.n_grads - grads0)


def _positive_part(Hi: np.ndarray) -> np.ndarray:
    """A BFGS inverse Hessian made symmetric with its eigenvalues floored at
    :data:`START_EIGEN_FLOOR` of the largest (its updates lose definiteness to rounding
    when a curvature is as small as a crawling log sd's)."""
    Hi = 0.5 * (Hi + Hi.T)
    vals, vecs = np.linalg.eigh(Hi)
    vals = np.maximum(vals, START_EIGEN_FLOOR * max(float(vals.max()), 1.0))
    out = (vecs * vals) @ vecs.T
    return 0.5 * (out + out.T)


def bfgs_with_jumps(fg, z0: np.ndarray, opts: dict, index: np.ndarray) -> _NewtonResult:
    """Dense BFGS from ``z0``, stopped where a log standard deviation (positions
    ``index`` of ``z``) crawls toward zero and moved ahead along it
    (:mod:`.laplace_boundary`; at most ``MAX_JUMPS`` times, and not again along a
    parameter whose jump was refused), then resumed with the inverse Hessian it had."""
    index = np.asarray(index, dtype=int)
    refused: set[int] = set()
    z = z0
    noise = NoiseWatch(fg)
    try:
        for attempt in range(MAX_JUMPS + 1):
            watch = CrawlWatch(index if attempt < MAX_JUMPS else index[:0], refused)
            raw = dense_bfgs(noise, z, gtol=opts["gtol"], maxiter=opts["maxiter"],
                             hess_inv0=opts.get("hess_inv0"), callback=watch)
            if not watch.crawling.size or raw.status != BFGS_CALLBACK_STOP:
                break
            opts = dict(opts, hess_inv0=_positive_part(raw.hess_inv))
            jumped = jump_ahead(noise, raw.x, float(raw.fun), raw.jac, watch.crawling)
            if jumped is None:
                refused.update(int(j) for j in watch.crawling)
                z = raw.x
            else:
                z = jumped[0]
    except StalledInNoiseError as stop:
        return _NewtonResult(stop.z, noise.n_evals, False, str(stop), noisy=True)
    return _NewtonResult(raw.x, noise.n_evals, bool(raw.success), str(raw.message))


def _settle(obj: LaplaceObjective, memo: _GradientMemo, x_raw: np.ndarray):
    """``(x, z, F, dF/dz)`` at ``x_raw`` with its covariance parameters in canonical form
    (the objective's reference moved along, so the next solve starts at its modes)."""
    x = canonical_parameters(obj, x_raw)
    if not np.array_equal(x, x_raw):
        obj.carry_reference(x_raw, x)
    z = obj.layout.free(x)
    f, g = _free_fg(obj, x, memo)(z)
    return x, z, f, g


def _polish(obj: LaplaceObjective, fg, x: np.ndarray, z: np.ndarray, f: float,
            g: np.ndarray, res: _NewtonResult, lower: np.ndarray, upper: np.ndarray):
    """The Hessian at ``z`` and up to :data:`NEWTON_POLISH_STEPS` Newton steps while they
    lower ``F``: ``(z, F, g, H, decrement, finished)``, ``finished`` False where the
    polish stopped short of the optimum (``H`` not positive definite, a step that does
    not lower ``F`` although it predicted more than :data:`NEWTON_REUSE`, or steps still
    predicting more than that after the last one allowed). Log sds on the boundary
    (:func:`~.laplace_boundary.boundary_log_scales`) are held: the steps are Newton's in
    the other parameters, and the decrement theirs."""
    layout = obj.layout
    roles = np.array([b.role for b in layout.blocks for _ in range(b.size)])
    central = roles[layout.free_index] == "theta"
    # ... except log standard deviations not far below their term's largest: F is
    # smooth in them, not even about a zero it may cross, and forward differences
    # serve (cs_binom: 6 gradients of 16 saved, standard errors within 1e-6); one
    # heading for zero keeps central ones (its forward column is asymmetric, which
    # would cost central differences of every column), as do all where the search
    # ended in the objective's rounding noise (toep_disp0: forward differences of
    # noisy gradients are asymmetric too)
    held = np.zeros(0, dtype=int)
    if res.success:
        central[comparable_log_scales(obj, x)] = False
        # likewise diag's standard deviations away from zero (homdiag_pois: one
        # gradient of 13), and a correlation's parameters (an AR(1)'s phi: one of 12)
        central[even_scales_off_zero(obj, x)] = False
        central[smooth_parameters(obj, x)] = False
        # a log sd a jump has put on the boundary: a forward column and no Newton step
        # along it (hetar1_pois: two gradients of 12)
        held = boundary_log_scales(obj, x, g)
        central[held] = False
    flat = np.zeros(central.size, dtype=bool)
    flat[held] = True
    noisy = res.noisy or bool(getattr(obj, "rounded_gradients", False))
    H, decrement, finished = None, np.nan, True
    for _ in range(NEWTON_POLISH_STEPS + 1):
        # in the rounding noise forward differences of the gradient are asymmetric
        # (ar1_disp0: 8 gradients spent to find that out): central ones at once; so also
        # where the objective's gradients are known to be that rounded (toep_disp0, whose
        # search ended outside the noise: 11 forward columns of 14 spent before the
        # asymmetry showed, 62 -> 51 gradients, the same central Hessian)
        H = gradient_hessian(fg, z, HESSIAN_STEP, central=True) if noisy else \
            hessian_at(fg, z, g, central, flat)
        newton = _newton_step(H, g, held)
        if newton is None:
            finished = False
            break
        step, decrement = newton
        if decrement < NEWTON_DONE:
            break
        z_new = np.clip(z + step, lower, upper)
        f_new, g_new = fg(z_new)
        if not f_new < f:
            finished = decrement < NEWTON_REUSE
            break
        z, f, g = z_new, f_new, g_new
        if decrement < NEWTON_REUSE:
            # so small a step changes H by ~1e-4 of the standard errors: keep it
            newton = _newton_step(H, g, held)
            decrement = newton[1] if newton is not None else decrement
            break
    else:
        finished = False           # still taking long steps when they ran out
    return z, f, g, H, decrement, finished


def _raise_infeasible(obj: LaplaceObjective, x0: np.ndarray) -> None:
    """Raise the reason the objective is infinite at the start: the modes' own error, or,
    for a covariance factor that fails (a structured term's correlation matrix that is
    singular to rounding -- a Gaussian correlation at a range far beyond the distances,
    an ``ar1`` phi at +-1), one naming it rather than numpy's Cholesky error."""
    try:
        obj.solve(x0)
    except np.linalg.LinAlgError as e:
        raise ModesError(
            "the starting values are infeasible: a random-effects covariance matrix is not "
            "numerically positive definite there (a structured term's correlation near 1 "
            "between all its levels, e.g. a range far beyond the distances); start from "
            f"other values ({e})") from e


def _optimize(obj: LaplaceObjective, x0: np.ndarray, hessian: bool, maxiter: int):
    """The quasi-Newton phase and the Newton polish in ``obj``'s coordinates: ``(x, g, H,
    decrement, scipy-like result, return code)`` at the optimum."""
    layout = obj.layout
    grads0 = obj.n_grads
    memo = _GradientMemo(obj)
    fg = _free_fg(obj, x0, memo)
    z0 = layout.free(x0)
    lower, upper = layout.free(layout.lower), layout.free(layout.upper)
    # without random effects Newton's method below evaluates value, gradient and Hessian
    # at the start in one go: that evaluation serves the start's check as well (and the
    # last iterate's the settling below), two of the stage's ~8 evaluations
    first = _fixed_start(obj, memo, x0) if obj.q == 0 else None
    f_start, g_start = fg(z0)
    if f_start >= 1e300:
        _raise_infeasible(obj, x0)
    x_newton = _newton_fixed(obj, x0, first=first, memo=memo) if obj.q == 0 else None
    handover = None
    if x_newton is not None:
        res = _NewtonResult(layout.free(x_newton), obj.n_grads - grads0)
    else:
        bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
                  for lo, hi in zip(lower, upper, strict=True)]
        if any(lo is not None or hi is not None for lo, hi in bounds):
            raw = sp_minimize(fg, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                              options={"gtol": LBFGS_GTOL, "ftol": LBFGS_FTOL,
                                       "maxiter": maxiter, "maxcor": 50})
        elif np.max(np.abs(g_start), initial=0.0) <= START_POLISH_GTOL:
            # a start at the optimum (glmmtmb's Gaussian models start at the profiled
            # LMM's): the Newton polish below finishes it in a step or two, where BFGS
            # spent its start Hessian's differences and up to 15 gradients creeping
            # (mat_gauss_ml's fixture: |g| 1.3e-4 at the start)
            raw = _NewtonResult(z0, 1, True, "start within the Newton polish's reach")
        else:
            # dense BFGS: on the reference models it needs a third to a half of the
            # gradients L-BFGS needs, to a tighter optimum (the problems have tens of
            # parameters, so the dense inverse Hessian is cheap). Starting it from the
            # full finite-difference Hessian at the start was measured and rejected: far
            # from the optimum that Hessian misleads more than the identity (Salamanders
            # ZIP: 142 gradients instead of 82); the Gauss-Newton start of
            # start_inverse_hessian does not (20)
            opts = {"gtol": BFGS_GTOL, "maxiter": maxiter}
            hess_inv0 = start_inverse_hessian(obj, x0, fg, z0, g_start)
            if hess_inv0 is not None:
                opts["hess_inv0"] = hess_inv0
            # (ending BFGS once an iteration lowered F by < 1e-7..1e-9 was measured and
            # withdrawn: it stopped a hard zero-inflated fit at a non-convex point the
            # polish could not leave; the gradient handover below resumes BFGS there)
            handover = dict(opts, gtol=BFGS_HANDOVER_GTOL) if hessian and z0.size else None
            raw = bfgs_with_jumps(_LooseInner(obj, fg), z0, handover or opts,
                                  log_scale_index(obj))
        res = _NewtonResult(raw.x, int(raw.nfev), bool(raw.success), str(raw.message),
                            noisy=bool(getattr(raw, "noisy", False)))
    x, z, f, g = _settle(obj, memo, layout.expand(res.x, x0))
    code = "converged" if res.success else str(res.message)
    H = None
    decrement = np.nan
    if hessian and z.size:
        z, f, g, H, decrement, finished = _polish(obj, _free_fg(obj, x, memo), x, z, f,
                                                   g, res, lower, upper)
        if not finished and handover is not None and res.success and not res.noisy:
            # BFGS handed over too early for the polish: resume it to its own tolerance
            raw = bfgs_with_jumps(_LooseInner(obj, _free_fg(obj, x, memo)), z, opts,
                                  log_scale_index(obj))
            res = _NewtonResult(raw.x, res.nfev + int(raw.nfev), bool(raw.success),
                                str(raw.message), noisy=bool(getattr(raw, "noisy", False)))
            code = "converged" if res.success else str(res.message)
            x, z, f, g = _settle(obj, memo, layout.expand(res.x, x))
            z, f, g, H, decrement, _ = _polish(obj, _free_fg(obj, x, memo), x, z, f, g,
                                               res, lower, upper)
        x = canonical_parameters(obj, layout.expand(z, x))
    return x, g, H, decrement, res, code

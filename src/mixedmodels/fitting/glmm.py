"""``glmer`` and ``glmer_nb``: fit generalized linear mixed models as lme4 does.

The fit runs in lme4's two stages:

1. **nAGQ = 0.** ``theta`` (and the negative binomial shape, when estimated) is optimized
   with ``beta`` and ``u`` estimated jointly by PIRLS at every evaluation. With ``nAGQ=0``
   this is the fit.
2. **Laplace / quadrature.** ``[theta, beta]`` (plus ``log phi`` for dispersion families
   under quadrature and the log shape of ``glmer_nb``) are optimized jointly from stage 1's
   estimates, PIRLS now finding ``u`` at fixed ``beta``.

With ``optimizer="auto"`` (the default) the exact gradients of
:mod:`~mixedmodels.objective.glmm_gradient` (implicit differentiation through the PIRLS
modes; :mod:`~mixedmodels.objective.agq_gradient` for quadrature) drive stage 1, by BFGS
on ``log theta`` (lmer's fast path; to a loose gradient tolerance when it only starts
stage 2), and stage 2, by BFGS in the whitened coordinates below
(:mod:`~mixedmodels.fitting.glmm_gradient`), with BOBYQA as the fallback; ``"bobyqa"`` is
lme4's derivative-free fit throughout.

lme4 hands the raw ``[theta, beta]`` to its optimizer. Here the optimizer (BOBYQA, as
lme4's) works in whitened coordinates ``x = x0 + T z``: ``T``'s beta block is the Cholesky
factor of stage 1's covariance of beta (``R_X``), its theta block that of the covariance
estimated from the stage-1 criterion's Hessian in theta. Every direction then has curvature
near one and BOBYQA's quadratic models fit from the start: on VerbAgg it needs ~50
evaluations instead of ~500, to a tighter optimum than lme4's. Because the deviance is
unchanged when a column of a term's Lambda changes sign, theta needs no bounds in these
coordinates (so ``T`` may mix the thetas); the signs are made canonical (Cholesky diagonals
>= 0) at the end. The optimum is lme4's (the tests compare with lme4 refitted tightly).

Standard errors come from the finite-difference Hessian of the deviance in ``(theta, beta)``
(:mod:`~mixedmodels.fitting.glmm_vcov`), as lme4's default, with lme4's fallback to ``R_X``
when that Hessian is not positive definite.
When that Hessian shows negative curvature, the search stopped at a saddle (a random
slope's Cholesky diagonal at zero is stationary whatever the rest): it leaves along the
negative curvature and searches again (:mod:`~mixedmodels.fitting.saddle_escape`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from .._errors import ConvergenceWarning, DataError, MixedModelsWarning, SingularFitWarning
from .._messages import emit_warning, held, replay
from .._threads import blas_threads, dense_block_size
from ..backends.dask import is_dask_input
from ..design import Design, materialize
from ..design.lhs import make_response, response_variables
from ..diagnostics import singular_groups, singular_message
from ..diagnostics.link_edge import LinkEdgeWarning, link_edge_message
from ..diagnostics.separation import SeparationWarning, separated_columns, separation_message
from ..families import (
    Family,
    NegativeBinomial,
    Poisson,
    make_family,
    nb_theta_ml,
)
from ..formula import parse_formula
from ..objective.glmm import GLMMObjective, GLMMSolution, check_nagq
from ..objective.glmm_gradient import Stage0Gradient
from ..objective.pirls import PIRLS, PIRLSError, prior_weights
from ..optim import (
    OPTIMIZERS,
    OptSummary,
    minimize,
    minimize_bounded_bfgs,
    minimize_with_gradient,
)
from ..results.glmm import GeneralizedLinearMixedModelResult
from ..results.recipe import FitRecipe
from .common import (
    check_flag,
    check_optimizer,
    check_relative_structures,
    collect_warnings,
    restart_while_improving,
    snap_to_boundary,
    warn_if_poorly_scaled,
)
from .glmm_gradient import (
    at_link_edge,
    hessian_from_gradient,
    laplace_gradient,
    minimize_whitened,
    reset_pirls,
    stage0_gradient,
    whitened_derivatives,
)
from .glmm_structured import (
    WALL_GAIN_TOL,
    WallOptimum,
    fit_structured,
    takes_structured_route,
)
from .glmm_vcov import (
    convergence_report,
    deviance_derivatives,
    vcov_from_hessian,
)
from .range_start import design_positional_terms, range_escape_start
from .saddle_escape import MAX_ESCAPES, escape_start
from .start_values import glmm_start
from .trace import check_verbose, log_stage, traced, verbose_output

__all__ = ["GLMM_OPTIMIZERS", "fit_glmm", "glmer", "glmer_nb", "glmm_design"]

#: Every ``optimizer=`` value the GLMM fitters accept (``"auto"``: the exact gradient
#: where the model has one, else BOBYQA; ``"gradient"``: the exact gradient or an error).
GLMM_OPTIMIZERS = ("auto", "gradient", *OPTIMIZERS)

#: Optimizer settings of the Laplace stage, in whitened coordinates (units of approximate
#: standard errors), where absolute tolerances mean the same for every parameter.
STAGE2_SETTINGS = {"xtol_abs": 1e-6, "ftol_abs": 1e-8, "initial_step": 0.5}
#: Tolerances of the nAGQ = 0 stage when it only provides starting values: the Laplace
#: stage corrects theta anyway, and optimizing the start to 1e-8 costs a third more
#: evaluations of the (more expensive) joint PIRLS without changing the result.
STAGE0_START_SETTINGS = {"xtol_abs": 1e-3, "ftol_abs": 1e-3}
#: Gradient tolerance of that stage on the gradient path (deviance per unit of theta for
#: the projected BFGS of lme4's covariance terms, per unit of log theta for the others, see
#: :func:`_stage0_search`; the same near theta = 1): the deviance is then within ~1e-5 of
#: the stage's optimum (curvatures of 5-50 per unit of log theta), far closer than the
#: Laplace stage's optimum is to it (0.06 on cbpp). From 1e-3 it saves the last stage-0
#: evaluation on most corpus rows (cbpp, VerbAgg, grouseticks, the 5k and 12k simulations)
#: with the Laplace stage's evaluations and optima unchanged (objectives within 1e-10).
STAGE0_START_GTOL = 1e-2
#: PIRLS tolerance of that stage (its gradient search too, :func:`_stage0_tol`): a step
#: below 1e-6 leaves the modes ~1e-12 from the mode (quadratic convergence) and the
#: log-determinant ~1e-4 off, far below what a start needs.
STAGE0_START_PIRLS_TOL = 1e-6
#: Trust radius (in log theta, max norm, from the best point so far) of that stage's
#: quasi-Newton phase: a factor e^3 = 20 per step. BFGS's first curvature update can
#: propose absurd jumps (theta 1 -> 258 on a binomial (x || g) fit with 1500 levels) where
#: the joint PIRLS needs ~90 iterations, a third of the fit, only for the line search to
#: step back; a relative covariance parameter that moves farther still gets there in
#: several steps.
STAGE0_MAX_LOG_STEP = 3.0
#: Return codes of a failed stage-0 gradient search (:func:`_stage0_search`), after which
#: BOBYQA runs from the start.
STAGE0_FAILED = frozenset({"line search failed", "maximum iterations reached",
                           "no finite objective value at the start"})
#: Step of the finite differences that scale theta for the Laplace stage.
STAGE0_FD_STEP = 1e-3
#: The stage-0 BFGS's inverse-Hessian model replaces those differences when the search
#: made at least this many evaluations beyond one per parameter (its secant pairs then
#: span the parameters; fewer leave part of the model at its identity start).
STAGE0_MODEL_STEPS = 2
#: Up to this many stage-0 parameters the scaling uses the full Hessian (else its diagonal).
STAGE0_FULL_HESSIAN_MAX = 4
#: Scale of a coordinate whose curvature cannot be estimated (log dispersion, a theta on
#: its bound), and the range allowed for the estimated ones.
DEFAULT_SCALE = 0.1
MIN_SCALE, MAX_SCALE = 1e-4, 1.0
#: The scale of a theta is at most DEFAULT_SCALE, and need not exceed the larger of
#: ``1 / sqrt(W)`` (``W`` the median total working weight of its term's levels: there the
#: random effects start to move the deviance by O(1) per level) and the sampling spread of a
#: variance estimated from ``l`` levels, ``|theta| / sqrt(2 l)``. It falls below
#: DEFAULT_SCALE only for heavy data with a small variance (counts around 1e9: ``W`` ~ 1e10,
#: theta ~ 1e-5), where a fixed scale would leave the optimizer badly scaled. MIN_SCALE and
#: the finite-difference step shrink with it (the step by STAGE0_FD_REL).
STAGE0_FD_REL = 1e-2


#: Newton steps after the Laplace stage for models with structured covariance terms, and
#: the predicted decrease of the deviance below which they stop.
STRUCTURED_NEWTON_STEPS = 3
STRUCTURED_NEWTON_DONE = 1e-9


class HessianWarning(MixedModelsWarning):
    """The finite-difference Hessian could not be used for the standard errors."""


def glmm_design(formula: str, data: pd.DataFrame, family: Family, *, weights=None,
                offset=None, contrasts: dict | None = None,
                covariance_matrices: dict | None = None,
                extra_columns: dict | None = None) -> Design:
    """Parse ``formula``, materialize it on ``data`` with the family's response rules and
    check the response and grouping factors (``extra_columns``: columns a residual
    structure reads, see :func:`~mixedmodels.materialize`)."""
    spec = parse_formula(formula)
    design = materialize(spec, data, weights=weights, offset=offset,
                         response=make_response(family),
                         response_vars=response_variables(spec.response),
                         contrasts=contrasts, covariance_matrices=covariance_matrices,
                         extra_columns=extra_columns)
    family.check_response(design.y, prior_weights(design), repr(spec.response))
    _check_not_constant(design, family)
    check_relative_structures(design, "glmer", family.has_dispersion)
    for t in design.terms:
        if t.structured:
            continue
        if t.nlevels < 2:
            raise DataError(
                f"grouping factor {t.group!r} has only {t.nlevels} level; a random effect "
                "needs at least 2 groups (drop the term or use a fixed effect)"
            )
        if t.nlevels > design.nobs:
            raise DataError(
                f"grouping factor {t.group!r} has {t.nlevels} levels for {design.nobs} "
                "observations; a grouping factor cannot have more levels than observations"
            )
    if design.p >= design.nobs:
        raise DataError(f"{design.p} fixed effects for {design.nobs} observations: too few "
                        "observations")
    warn_if_poorly_scaled(design)
    return design


def _check_not_constant(design: Design, family: Family) -> None:
    """A constant response (lme4: "Response is constant") has no GLMM fit: all-zero counts
    or all-0 / all-1 binomial data put the mean on the edge of the family's range (the
    intercept runs off to infinity), and a constant positive response leaves no variation
    for a dispersion or the random effects. Binomial proportions that are all equal but
    strictly between 0 and 1 are estimable and pass."""
    prior = prior_weights(design)
    used = prior > 0
    if not used.any():
        # nothing observed: lme4 says "Response is constant"; PIRLS would divide by zero
        what = ("trials (successes + failures)" if family.name == "binomial"
                else "prior weight")
        raise DataError(
            f"every one of the {design.nobs} rows of the response "
            f"{design.spec.response!r} has zero {what}: there is no observation to fit")
    check_response_varies(design.y[used], family, design.spec.response)


def check_response_varies(y: np.ndarray, family: Family, response: str) -> None:
    """The check of :func:`_check_not_constant` on the responses of positive prior weight
    ``y`` (their smallest and largest suffice)."""
    if y.size == 0 or np.ptp(y) > 0.0:
        return
    value = float(y[0])
    if family.name == "binomial" and 0.0 < value < 1.0:
        return
    if family.name == "binomial":
        why = (f"every trial a {'success' if value == 1.0 else 'failure'}: the probability "
               f"is {value:g} in every row, on the edge of its range, and the fixed effects "
               "have no finite estimate")
    elif value == 0.0:
        why = ("all counts are zero: the mean is 0, on the edge of its range, and the fixed "
               "effects have no finite estimate")
    else:
        why = ("with no variation the dispersion and the random-effects variances are not "
               "estimable")
    raise DataError(
        f"the response {response!r} is constant (every value is {value:g}; "
        f"{why}). A {family.name} GLMM needs variation in the response; check the response "
        "column and any subset of rows the data came from"
    )


class _Stage0:
    """The nAGQ = 0 criterion as a function of ``v = [theta, (log NB shape)]``."""

    def __init__(self, obj: GLMMObjective):
        self.obj = obj
        #: ``v -> (value, gradient)`` when the criterion has an exact gradient
        self.gradient: Stage0Gradient | None = None
        #: BFGS's inverse-Hessian model at the optimum (theta's scale), when its
        #: quasi-Newton search built one from enough steps (:func:`_stage0_covariance`)
        self.hess_inv: np.ndarray | None = None
        self.fam = obj.family
        self.lower = obj.theta_lower
        if obj.estimate_shape:
            self.lower = np.append(self.lower, -np.inf)

    def family(self, v) -> Family:
        return self.fam.with_theta(float(np.exp(v[-1]))) if self.obj.estimate_shape \
            else self.fam

    def theta(self, v) -> np.ndarray:
        return np.asarray(v[:self.obj.n_theta], dtype=float)

    def start(self, theta0) -> np.ndarray:
        theta0 = np.asarray(theta0, float)
        return np.append(theta0, np.log(self.fam.theta)) if self.obj.estimate_shape \
            else theta0

    def __call__(self, v) -> float:
        return self.obj.stage0(self.theta(v), self.family(v))


def _stage0(obj: GLMMObjective, theta0, optimizer, settings
            ) -> tuple[OptSummary, np.ndarray, _Stage0]:
    """Optimize the nAGQ = 0 criterion over theta (and the NB log-shape); returns the
    optimizer's record, the optimum ``v`` and the criterion."""
    fun = _Stage0(obj)
    v0 = fun.start(theta0)
    fun.gradient = stage0_gradient(
        obj, optimizer, bool(settings) and settings is not STAGE0_START_SETTINGS)
    # the criterion at the start, where a failure of PIRLS is re-raised with its
    # explanation; on the gradient path the optimizer's first evaluation, answered from
    # the gradient's memory (so at the search's PIRLS tolerance, _stage0_tol)
    tol = obj.stage0_tol
    if fun.gradient is not None:
        obj.stage0_tol = _stage0_tol(obj, settings)
    f0 = fun.gradient(v0)[0] if fun.gradient is not None else fun(v0)
    if not np.isfinite(f0):
        obj.solve0(fun.theta(v0), fun.family(v0))
    obj.stage0_tol = tol
    opt = None
    if fun.gradient is not None:
        # quasi-Newton on lme4's scale of theta (log theta while theta is not near its
        # bound; see _stage0_search)
        tol, obj.stage0_tol = obj.stage0_tol, _stage0_tol(obj, settings)
        gtol = STAGE0_START_GTOL if settings is STAGE0_START_SETTINGS else None
        opt, hess_inv = _stage0_search(
            traced(fun.gradient, "nAGQ=0", _pirls_note(obj), gradient=True), v0,
            fun.lower, gtol, lean=not any(t.structured for t in obj.design.terms))
        obj.stage0_tol = tol
        if hess_inv is not None and opt.n_evals >= fun.lower.size + STAGE0_MODEL_STEPS:
            fun.hess_inv = np.asarray(hess_inv, dtype=float)
        failed = not np.isfinite(opt.fval) or opt.return_code in STAGE0_FAILED or \
            opt.return_code.startswith("log phase:")
        if failed or at_link_edge(obj, fun.theta(opt.x), fun.family(opt.x)):
            # the gradient path failed, or stopped where the mean meets the edge of the
            # link's range (the criterion is not smooth there and can have several local
            # minima: a Gamma inverse-link fit stopped 26 units above BOBYQA's): BOBYQA
            # from the start and a fresh PIRLS workspace (near the edge the joint modes
            # depend on where PIRLS starts), keeping the better of the two
            reset_pirls(obj)
            other = minimize(traced(fun, "nAGQ=0", _pirls_note(obj)), v0, fun.lower,
                             optimizer="bobyqa", settings=settings)
            if failed or other.fval < opt.fval:
                fun.gradient, fun.hess_inv, opt = None, None, other
    if opt is None:
        opt = minimize(traced(fun, "nAGQ=0", _pirls_note(obj)), v0, fun.lower,
                       optimizer=_backend(optimizer), settings=settings)
    log_stage("glmer", "nAGQ=0", opt.optimizer, opt.n_evals, opt.seconds, opt.fval)
    v, _ = snap_to_boundary(fun, opt.x, opt.fval, fun.lower)
    return opt, v, fun


def _stage0_search(fg, v0: np.ndarray, lower: np.ndarray, gtol: float | None, lean: bool
                   ) -> tuple[OptSummary, np.ndarray | None]:
    """The stage-0 gradient search from ``v0``: its record and the quasi-Newton model of
    the inverse Hessian in ``v`` (None when there is none).

    ``lean`` (lme4's own covariance terms): the package's projected BFGS
    (:func:`~mixedmodels.optim.minimize_bounded_bfgs`, log scale for theta bounded at
    zero, its loop on Python floats), whose overhead is a few tens of microseconds where
    scipy's BFGS set-up and Wolfe line search cost ~0.3 ms a fit, as much as a joint PIRLS
    solve of cbpp; its gradient test ``max |dF/dtheta| <= gtol`` (:data:`STAGE0_START_GTOL`
    for the Laplace start, else :data:`~mixedmodels.optim.bounded_bfgs.BFGS_GTOL` and its
    relative version: an ``nAGQ=0`` fit). Otherwise (structured or distance-based terms,
    whose range parameters can have several local optima: the Laplace stage's range check
    is tuned on this path) :func:`~mixedmodels.optim.minimize_with_gradient`, BFGS on
    log theta with :data:`STAGE0_MAX_LOG_STEP` as its trust radius. A failure of either
    has a return code in :data:`STAGE0_FAILED` (the projected BFGS) or starting with
    ``"log phase:"`` (:func:`~mixedmodels.optim.minimize_with_gradient`)."""
    if not lean:
        opt, _, hess_inv = minimize_with_gradient(fg, v0, lower, gtol=gtol,
                                                  max_log_step=STAGE0_MAX_LOG_STEP)
        return opt, hess_inv
    model: dict = {}
    kw = {} if gtol is None else {"gtol": gtol, "gtol_rel": 0.0}
    opt, _ = minimize_bounded_bfgs(fg, v0, lower, model=model, **kw)
    return opt, model["hess_inv"]


def _stage0_tol(obj: GLMMObjective, settings) -> float | None:
    """PIRLS's tolerance in the gradient search of the nAGQ = 0 stage: its full one (None)
    for an ``nAGQ=0`` fit, so that the criterion is smooth to the line search's
    resolution at a tight gradient tolerance; the start's looser one
    (:data:`STAGE0_START_PIRLS_TOL`, set by the caller) when the stage only starts the
    Laplace fit: a line search to :data:`STAGE0_START_GTOL` does not see a 1e-6 mode
    error, and its joint solves save a sixth of their iterations (the same evaluations
    and Laplace optima on 15 corpus rows)."""
    return obj.stage0_tol if settings is STAGE0_START_SETTINGS else None


def _stage0_solution(obj: GLMMObjective, stage0: _Stage0, theta: np.ndarray,
                     fam: Family, start_only: bool = False) -> GLMMSolution:
    """The joint PIRLS solution at the stage-1 optimum: the search's last solve when it
    was at the optimum itself (as usual: BFGS evaluates its last iterate last), whose
    modes gave the optimum's value, else a solve there (one more PIRLS step from those
    modes moves them within PIRLS's tolerance only; cbpp nAGQ = 0: 3% of the fit).

    With ``start_only`` (the stage only starts the Laplace fit) a last solve at the
    start's looser PIRLS tolerance (:data:`STAGE0_START_PIRLS_TOL`) counts too: its modes
    are ~1e-12 from the tight ones (quadratic convergence), far below what the Laplace
    stage's start, scaling and separation check can see, and the tight re-solve (one
    more joint PIRLS solve and its sensitivity; cbpp Laplace ~2% of the fit) is saved."""
    grad = stage0.gradient
    tol = STAGE0_START_PIRLS_TOL if start_only else None
    pr = grad.last_solve_at(theta, fam, tol) if isinstance(grad, Stage0Gradient) and \
        obj.stage0_tol is None and type(obj.pirls) is PIRLS else None
    return obj.solve0(theta, fam) if pr is None else obj.solution0(pr, fam)


def _solution_at(obj: GLMMObjective, grad, x: np.ndarray) -> GLMMSolution:
    """The solution at the Laplace (quadrature) stage's optimum ``x``: the gradient
    search's last PIRLS solve when it was at ``x`` itself (BFGS usually evaluates its last
    iterate last), else a solve there."""
    pr = None
    if grad is not None and type(obj.pirls) is PIRLS:
        pr = grad.last_solve_at(x, obj.split(x)[3] if obj.estimate_shape else obj.family)
    return obj.solve(x) if pr is None else obj.solution(x, pr)


def _backend(optimizer: str) -> str:
    return "bobyqa" if optimizer in ("auto", "gradient") else optimizer


def _pirls_note(obj: GLMMObjective):
    """``() -> "k PIRLS iterations"`` since the previous call (the verbose=2 trace)."""
    seen = [obj.pirls.n_iter_total]

    def note() -> str:
        now = obj.pirls.n_iter_total
        text = f"{now - seen[0]} PIRLS iterations"
        seen[0] = now
        return text

    return note


def _theta_scales(design: Design, obj: GLMMObjective, sol0: GLMMSolution, size: int
                  ) -> np.ndarray:
    """Natural scale of each coordinate of ``v`` (see :data:`STAGE0_FD_REL`) for the
    thetas, DEFAULT_SCALE for the NB log-shape."""
    scales = np.full(size, DEFAULT_SCALE)
    for t, sl, W in zip(design.terms, design.theta_slices(),
                        _level_information(design, obj, sol0), strict=True):
        med = _median(W)
        if med > 0:
            spread = np.abs(sol0.theta[sl]) / np.sqrt(2.0 * t.nlevels)
            scales[sl] = np.minimum(DEFAULT_SCALE, np.maximum(1.0 / np.sqrt(med), spread))
    return scales


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-d array of finite values by one sort (the same number:
    the middle value, or half the sum of the two middle ones), without ``np.median``'s
    ~25 us of dispatch (a small fit's whole scaling step costs about as much); non-finite
    values go to ``np.median`` itself."""
    v = np.asarray(values, dtype=float).ravel()
    if not v.size or not np.isfinite(v).all():
        return float(np.median(v))
    s = np.sort(v)
    m = v.size // 2
    return float(s[m]) if v.size % 2 else float(0.5 * (s[m - 1] + s[m]))


def _level_information(design: Design, obj: GLMMObjective, sol0: GLMMSolution) -> list:
    """Per term, ``sum_i w_i |z_i|^2`` over each level's rows with the Fisher weights at
    ``sol0``; an objective whose rows are elsewhere (the Dask backend) sums them itself
    (its ``level_information``)."""
    if hasattr(obj, "level_information"):
        return obj.level_information(sol0)
    w = obj.pirls.fisher_weights_at(sol0.eta, sol0.mu)
    return [np.bincount(t.grouping.codes, w * np.sum(t.Z * t.Z, axis=1),
                        minlength=t.nlevels) for t in design.terms]


def _stage0_covariance(fun: _Stage0, v: np.ndarray, scales: np.ndarray | None = None
                       ) -> np.ndarray:
    """Approximate covariance of ``v`` (theta and the NB log-shape) from the stage-0
    criterion's Hessian, ``2 H^{-1}``: it sets the whitened coordinates of the Laplace stage
    (derivative-free optimizers converge several times faster when every direction has unit
    curvature). ``H^{-1}`` is the stage-0 BFGS's model where its search built one from
    enough steps (:data:`STAGE0_MODEL_STEPS`) and it passes the same checks, else from
    differences of the exact gradient or of the criterion. Falls back to a diagonal, and
    to :data:`DEFAULT_SCALE`, where the curvature cannot be estimated (a parameter on its
    bound, a flat direction)."""
    scales = np.full(v.size, DEFAULT_SCALE) if scales is None else scales
    rel = scales / DEFAULT_SCALE          # 1 except for heavy data (see _theta_scales)
    if fun.hess_inv is not None and fun.hess_inv.shape == (v.size, v.size):
        # the quasi-Newton search's own model of the curvature: within a few per cent of
        # the finite differences below on the benchmark models (cbpp, grouseticks,
        # VerbAgg, the 625-row crossed Poisson, gammasim), the Laplace stage's
        # evaluations unchanged, and no gradient per parameter to pay
        cov = _checked_covariance(2.0 * fun.hess_inv, rel)
        if cov is not None:
            return cov
    steps = np.minimum(STAGE0_FD_STEP, STAGE0_FD_REL * scales)
    d = None
    if fun.gradient is not None:
        # central differences of the exact gradient (2 evaluations per parameter)
        f0, g0 = fun.gradient(v)
        if np.isfinite(f0):
            d = hessian_from_gradient(fun.gradient, v, g0, steps, fun.lower, central=False)
    if d is None:
        d = deviance_derivatives(fun, v, fun(v), steps, fun.lower,
                                 pairs="central" if v.size <= STAGE0_FULL_HESSIAN_MAX
                                 else None)
    H = d.hessian
    free = np.flatnonzero(d.free)
    if free.size == v.size and np.all(np.isfinite(H)):
        try:
            cov = _checked_covariance(2.0 * np.linalg.inv(H), rel)
        except np.linalg.LinAlgError:
            cov = None
        if cov is not None:
            return cov
    sd = scales.copy()
    diag = np.diag(H)
    ok = np.isfinite(diag) & (diag > 0)
    sd[free[ok]] = np.sqrt(2.0 / diag[ok])
    return np.diag(np.clip(sd, MIN_SCALE * rel, MAX_SCALE) ** 2)


def _checked_covariance(cov: np.ndarray, rel: np.ndarray) -> np.ndarray | None:
    """``cov`` when it is finite, positive definite and every standard deviation lies
    within ``[MIN_SCALE * rel, MAX_SCALE]``; else None."""
    if not np.all(np.isfinite(cov)):
        return None
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    sd = np.sqrt(np.diag(cov))
    return cov if np.all((sd >= MIN_SCALE * rel) & (sd <= MAX_SCALE)) else None


def _sign_symmetric(design: Design) -> bool:
    """Whether theta may be optimized without its bounds: every bounded structure is
    sign-symmetric (the deviance is unchanged by flipping the sign of a column of Lambda,
    as for lme4's Cholesky parameterization: b = Lambda u and Lambda D u, D = diag of +-1,
    have the same distribution; the canonical form is within the bounds), and the others
    are unbounded anyway (log standard deviations)."""
    return all(t.structure.sign_symmetric or not np.any(t.structure.boundary_mask())
               for t in design.terms)


def _canonical_theta(design: Design, theta: np.ndarray) -> np.ndarray:
    """The same model in every structure's canonical form (Cholesky diagonals >= 0)."""
    out = np.array(theta, dtype=float)
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        out[sl] = t.structure.canonical(out[sl])
    return out


class _StageLog:
    """Evaluations, PIRLS iterations and time of each fitting stage (for benchmarks)."""

    def __init__(self, obj: GLMMObjective):
        self.obj = obj
        self.rows: list[dict] = []
        self._mark()

    def _mark(self) -> None:
        self._t = time.perf_counter()
        self._evals = self.obj.n_evals
        self._iters = self.obj.pirls.n_iter_total

    def stage(self, name: str) -> None:
        self.rows.append({
            "stage": name,
            "evaluations": self.obj.n_evals - self._evals,
            "pirls_iterations": self.obj.pirls.n_iter_total - self._iters,
            "seconds": time.perf_counter() - self._t,
        })
        self._mark()


def _singular_groups(design: Design, theta: np.ndarray) -> list[str]:
    return singular_groups(design.terms, design.theta_slices(), theta)


def fit_glmm(
    design: Design,
    family: Family,
    *,
    nAGQ: int = 1,
    estimate_shape: bool = False,
    start: dict | None = None,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    calc_derivs: bool = True,
    check_conv: bool = True,
    messages: list[str] | None = None,
) -> GeneralizedLinearMixedModelResult:
    """Fit a GLMM to a materialized :class:`Design` (lme4's two stages; see the module
    docstring).

    Parameters
    ----------
    design : Design
    family : Family
        With the negative binomial shape to start from when ``estimate_shape``.
    nAGQ : int
        0, 1 (Laplace) or the number of adaptive quadrature nodes.
    estimate_shape : bool
        Estimate the negative binomial shape (:func:`glmer_nb`).
    start : dict, optional
        ``"theta"`` (and ``"beta"``, which skips stage 1's estimate of it).
    optimizer, optimizer_settings, calc_derivs, check_conv
        As for :func:`glmer`.
    messages : list of str, optional
        Collects the fit's messages (the caller's list).

    Returns
    -------
    GeneralizedLinearMixedModelResult
    """
    check_optimizer(optimizer, GLMM_OPTIMIZERS, "fit_glmm")
    options = {"family": family, "nAGQ": nAGQ, "estimate_shape": estimate_shape,
               "start": start, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings,
               "calc_derivs": check_flag("calc_derivs", calc_derivs),
               "check_conv": check_flag("check_conv", check_conv)}
    with collect_warnings(messages) as caught, blas_threads(dense_block_size(design.terms)):
        result = _fit_glmm(design, family, nAGQ, estimate_shape, start, optimizer,
                           optimizer_settings, calc_derivs, check_conv)
    recipe = FitRecipe.make(None, design.spec.formula, None, {}, fit_glmm, options)
    msgs = tuple(messages) if messages is not None else _messages(caught)
    return dataclasses.replace(result, recipe=recipe, messages=msgs)


def _messages(caught) -> tuple[str, ...]:
    from .common import package_messages

    return package_messages(caught)


def _wall_or_two_stages(wall: WallOptimum, design, family, nAGQ, estimate_shape, start,
                        optimizer, optimizer_settings, calc_derivs, check_conv
                        ) -> GeneralizedLinearMixedModelResult:
    """The lower of the engine's optimum on a Toeplitz wall (glmm_structured.WallOptimum)
    and the two stages' fit (on a fresh objective): the two stages, with their warnings,
    unless the wall is lower by more than WALL_GAIN_TOL. BOBYQA's search in the lag
    correlations cannot reach the wall (every step beyond it is an infinite deviance), so
    on homtoep_pois it stops 0.67 above the engine's 835.9491."""
    fresh = GLMMObjective(design, family, nAGQ, estimate_shape=estimate_shape)
    with held() as log:
        two = _fit_glmm(design, family, nAGQ, estimate_shape, start, optimizer,
                        optimizer_settings, calc_derivs, check_conv, obj=fresh)
    if wall.objective < two.objective - WALL_GAIN_TOL:
        result = wall.result()
        if result is not None:
            return result
    replay(log)
    return two


def _fit_glmm(design, family, nAGQ, estimate_shape, start, optimizer, optimizer_settings,
              calc_derivs, check_conv, obj: GLMMObjective | None = None
              ) -> GeneralizedLinearMixedModelResult:
    """The two-stage fit; ``obj`` replaces the objective (bglmer passes one that adds its
    priors' deviance to every criterion it evaluates)."""
    messages: list[str] = []
    start = glmm_start(start)
    if obj is None:
        obj = GLMMObjective(design, family, nAGQ, estimate_shape=estimate_shape)
        if takes_structured_route(design, family, nAGQ, estimate_shape, start, optimizer,
                                  optimizer_settings):
            # structured terms, no lme4 fit to reproduce: the engine's (glmm_structured)
            fast = fit_structured(design, family, obj, calc_derivs, check_conv)
            if isinstance(fast, WallOptimum):
                return _wall_or_two_stages(fast, design, family, nAGQ, estimate_shape, start,
                                           optimizer, optimizer_settings, calc_derivs,
                                           check_conv)
            if fast is not None:
                return fast
            # (a fresh objective: the route's solves left PIRLS at the engine's modes)
            obj = GLMMObjective(design, family, nAGQ, estimate_shape=estimate_shape)
    theta0 = np.asarray(start.get("theta", design.theta0()), dtype=float)
    if theta0.shape != obj.theta_lower.shape:
        raise ValueError(f"start['theta'] has {theta0.size} values; the model has "
                         f"{obj.theta_lower.size}")
    log = _StageLog(obj)
    settings0 = optimizer_settings
    if obj.nAGQ > 0 and optimizer_settings is None:
        settings0 = STAGE0_START_SETTINGS       # only the start of the Laplace stage
        obj.stage0_tol = STAGE0_START_PIRLS_TOL
    opt0, v, stage0 = _stage0(obj, theta0, optimizer, settings0)
    obj.stage0_tol = None
    theta, fam = stage0.theta(v), stage0.family(v)
    sol0 = _stage0_solution(obj, stage0, theta, fam,
                            start_only=settings0 is STAGE0_START_SETTINGS)
    Rinv0 = _rx_inverse(obj, sol0)
    vcov0 = sol0.phi * Rinv0 @ Rinv0.T
    sep = _separation(design, obj, sol0)
    log.stage("nAGQ=0")
    if obj.nAGQ == 0:
        return _result(design, obj, sol0, fam, opt0, opt0, None, vcov0, "RX", None, messages,
                       log)

    # -- stage 2: [theta, beta, extra] in whitened coordinates x = x0 + T z ---------------
    if estimate_shape:
        obj.family = fam
    k, p = obj.n_theta, obj.p
    beta0 = np.asarray(start.get("beta", sol0.beta), dtype=float)
    if beta0.shape != (p,):
        raise ValueError(f"start['beta'] has {beta0.size} values; the model has {p} fixed "
                         f"effects ({', '.join(design.fixed.names)})")
    x0 = obj.join(theta, beta0, phi=sol0.phi, nb_theta=getattr(fam, "theta", None))
    cov_v = _stage0_covariance(stage0, v, _theta_scales(design, obj, sol0, v.size))
    log.stage("scaling")
    L = obj.layout
    v_index = np.r_[np.arange(k), np.arange(x0.size)[L.slice("family.nb_shape")]] \
        if obj.estimate_shape else np.arange(k)
    T = np.eye(x0.size) * DEFAULT_SCALE
    # the beta block is the lower Cholesky factor of vcov0, computed from R_X^{-1} by a QR
    # decomposition rather than from vcov0 itself, which can be nearly singular (a predictor
    # around 1e5 correlates its coefficient with the intercept's to 1 - 1e-10)
    T[k:k + p, k:k + p] = _beta_root(obj, theta, sol0, Rinv0, sep)
    # separated coefficients are held at their stage-1 values: no coordinate moves them
    # (np.setdiff1d sorts through np.unique: ~20 us a fit for the usual empty sep)
    keep = np.setdiff1d(np.arange(x0.size), k + sep) if sep.size else np.arange(x0.size)
    unbounded = _sign_symmetric(design)
    if unbounded:
        # theta may cross zero (the deviance is even in each column of Lambda), so it can
        # be whitened with its full covariance; signs are made canonical afterwards
        T[np.ix_(v_index, v_index)] = np.linalg.cholesky(cov_v)
        lower_z = np.full(x0.size, -np.inf)
    else:
        # a diagonal T keeps the bounds of theta a box
        T[v_index, v_index] = np.sqrt(np.diag(cov_v))
        lower_z = np.where(np.isfinite(obj.lower), (obj.lower - x0) / np.diag(T), -np.inf)
    T, lower_z = T[:, keep], lower_z[keep]

    settings = dict(STAGE2_SETTINGS)
    settings.update(optimizer_settings or {})
    stage = "Laplace" if obj.nAGQ == 1 else f"AGQ({obj.nAGQ})"
    grad = laplace_gradient(obj, optimizer, bool(optimizer_settings))
    T_diag = np.diag(T[keep]) if keep.size else np.zeros(0)

    def search(base, grad):
        """The stage-2 search in ``z`` from ``base`` (``x = base + T z``)."""
        lower_b = lower_z
        if base is not x0 and not unbounded:
            lo = obj.lower[keep]
            lower_b = np.where(np.isfinite(lo), (lo - base[keep]) / T_diag, -np.inf)

        def fz(z):
            return obj(base + T @ z)

        def fgz(z):
            f, g = grad(base + T @ z)
            return f, T.T @ g

        opt = None
        if grad is not None:
            opt, _ = minimize_whitened(traced(fgz, stage, _pirls_note(obj), gradient=True),
                                       keep.size, lower_b)
            failed = opt.return_code != "converged"
            edge = False
            if not failed and not obj.pirls.link_keeps_range:
                sol_z = obj.solve(base + T @ opt.x)
                # (an objective whose rows are elsewhere gives the range of eta)
                edge = link_edge_message(fam, obj.eta_range(sol_z) if hasattr(
                    obj, "eta_range") else sol_z.eta) is not None
            if failed or edge:
                # the gradient path failed, or stopped at the edge of the link's range (not
                # smooth there): BOBYQA as without the gradient, from the whitened start (the
                # best point of a failed line search can sit at the edge, where BOBYQA
                # stalls), keeping the better
                reset_pirls(obj)
                other = minimize(traced(fz, stage, _pirls_note(obj)), np.zeros(keep.size),
                                 lower_b, optimizer="bobyqa", settings=settings)
                if failed or other.fval < opt.fval:
                    opt, grad = other, None
        if opt is None:
            opt = minimize(traced(fz, stage, _pirls_note(obj)), np.zeros(keep.size), lower_b,
                           optimizer=_backend(optimizer), settings=settings)
        if grad is None and any(t.structured for t in design.terms):
            # a structured covariance can be undefined (a Toeplitz correlation that is not
            # one): BOBYQA's trust region shrinks at the infinite deviances there; restart
            # it from where it stopped while that still helps
            opt = restart_while_improving(fz, opt, lower_b, optimizer=_backend(optimizer),
                                          settings=settings)
        return opt, grad

    grad_path = grad                    # the exact gradient, for any later search
    opt, grad = search(x0, grad)
    x = x0 + T @ opt.x
    if any(True for _ in design_positional_terms(design)):
        # a distance-based term: the range check of glmmtmb (fitting/range_start), and the
        # search again from a better point when it finds one
        x_alt = range_escape_start(obj, design_positional_terms(design), x, opt.fval, x0)
        if x_alt is not None:
            alt, alt_grad = search(x_alt, grad)
            if alt.fval < opt.fval:
                opt, grad, x = alt, alt_grad, x_alt + T @ alt.x
    log_stage("glmer", stage, opt.optimizer, opt.n_evals, opt.seconds, opt.fval)

    def settle(x, grad):
        """A search's end as reported: canonical signs, bounds met, the solution there."""
        if unbounded:
            x[:k] = _canonical_theta(design, x[:k])
        x, _ = snap_to_boundary(obj, x, None, obj.lower)
        return x, _solution_at(obj, grad, x)

    x, sol = settle(x, grad)
    fam = sol.family
    log.stage("Laplace" if obj.nAGQ == 1 else f"AGQ({obj.nAGQ})")

    # R_X's covariance (conditional on theta): the result without the Hessian, else only
    # its fallback and the separated coefficients' entries (made when needed)
    vcov, how, derivs, conv, sol_rx = None, "RX", None, None, sol
    if calc_derivs:
        # the NB shape is held fixed, as lme4 (its block comes last in the layout)
        n_diff = L.slice("family.nb_shape").start if obj.estimate_shape else L.size
        keep_d = keep[keep < n_diff]
        Td = T[:n_diff, :keep_d.size]
        xs = x.copy()

        def sub(z):
            out = xs.copy()
            out[:n_diff] += Td @ z
            return obj(out)

        def lower_at(x):
            if unbounded:
                return np.full(keep_d.size, -np.inf)
            return np.where(np.isfinite(obj.lower[keep_d]),
                            (obj.lower[keep_d] - x[keep_d])
                            / Td[keep_d, np.arange(keep_d.size)], -np.inf)

        derivs = whitened_derivatives(sub, grad, xs, Td, n_diff, keep_d, sol.objective,
                              lower_at(x))
        if any(t.structured for t in design.terms):
            # structured terms (lme4 has none, so no lme4 stopping point to reproduce):
            # Newton steps with the finite-difference derivatives finish what the
            # derivative-free search left
            for _ in range(STRUCTURED_NEWTON_STEPS):
                step = _newton_step(derivs, keep_d.size)
                if step is None:
                    break
                trial = x.copy()
                trial[:n_diff] += Td @ step
                f_trial = obj(trial)
                if not f_trial < sol.objective:
                    break
                x, xs[:] = trial, trial
                sol = obj.solve(x)
                derivs = whitened_derivatives(sub, grad, xs, Td, n_diff, keep_d, sol.objective,
                                      lower_at(x))
        for _ in range(MAX_ESCAPES):
            # a saddle (a Cholesky diagonal at zero is stationary whatever the rest):
            # leave it along the negative curvature and search again (saddle_escape)
            step = escape_start(sub, derivs, sol.objective, lower_at(x))
            if step is None:
                break
            base = x.copy()
            base[:n_diff] += Td @ step
            alt, alt_grad = search(base, grad_path)
            if not alt.fval < sol.objective:
                break
            opt, grad = alt, alt_grad
            x, sol = settle(base + T @ alt.x, grad)
            sol_rx, fam = sol, sol.family
            xs[:] = x
            derivs = whitened_derivatives(sub, grad, xs, Td, n_diff, keep_d, sol.objective,
                                          lower_at(x))
            log_stage("glmer", "saddle escape", opt.optimizer, opt.n_evals, opt.seconds,
                      opt.fval)
        _leave_workspace_at(obj, x, sol)
        V = vcov_from_hessian(derivs, Td, np.arange(k, k + p))
        if V is not None and sep.size:
            # no curvature along a separated coefficient: report R_X's (enormous)
            # conditional variance for it, as lme4 does, uncorrelated with the rest
            rx = sol_rx.phi * _rx_vcov(obj, sol_rx)
            V[sep, sep] = rx[sep, sep]
        if V is not None and np.all(np.linalg.eigvalsh(V) > 0):
            vcov, how = V, "hessian"
        else:
            emit_warning(
                "the finite-difference Hessian of the deviance is not positive definite; "
                "standard errors are computed from R_X (conditional on theta), as lme4 "
                "falls back to",
                HessianWarning, stacklevel=3,
            )
        if check_conv:
            conv = convergence_report(derivs, np.zeros(keep_d.size), lower_at(x))
            if not conv.converged:
                emit_warning(conv.message, ConvergenceWarning, stacklevel=3)
        log.stage("Hessian")
    if vcov is None:
        vcov = sol_rx.phi * _rx_vcov(obj, sol_rx)
    return _result(design, obj, sol, fam, opt, opt0, conv, vcov, how, derivs, messages, log)


def _separation(design: Design, obj: GLMMObjective, sol0: GLMMSolution) -> np.ndarray:
    """Separated fixed effects at the stage-1 fit (warned about here), as indices."""
    pirls = obj.pirls
    if hasattr(obj, "separated_columns"):       # rows elsewhere (the Dask backend)
        sep = obj.separated_columns(sol0)
    else:
        sep = separated_columns(pirls.basis, design.X,
                                pirls.fisher_weights_at(sol0.eta, sol0.mu), pirls.prior)
    if sep.size:
        names = [design.fixed.names[j] for j in sep]
        emit_warning(separation_message(names, sol0.beta[sep], obj.family.name),
                     SeparationWarning, stacklevel=4)
    return sep


def _beta_root(obj: GLMMObjective, theta, sol0: GLMMSolution, Rinv0: np.ndarray,
               sep: np.ndarray) -> np.ndarray:
    """Square root of stage 1's covariance of beta for the whitened coordinates; with
    separated columns, of the covariance of the others given them (their information is
    nil, so the joint covariance would be dominated by them), zero rows for them."""
    if not sep.size:
        return np.sqrt(sol0.phi) * _lower_root(Rinv0)
    p = Rinv0.shape[0]
    free = np.setdiff1d(np.arange(p), sep)
    Rx = obj.pirls.rx_factor(theta, sol0.eta, sol0.mu)
    Rf = np.linalg.qr(Rx[:, free], mode="r")
    root = np.zeros((p, p))
    root[np.ix_(free, free)] = np.sqrt(sol0.phi) * _lower_root(np.linalg.inv(Rf))
    return root


def _lower_root(B: np.ndarray) -> np.ndarray:
    """The lower-triangular ``L`` (positive diagonal) with ``L L' = B B'``, from the QR
    decomposition ``B' = Q R`` (``L = R'``): the Cholesky factor of ``B B'`` without forming
    that product, whose condition number is the square of ``B``'s."""
    if B.size == 0:
        return B
    R = np.linalg.qr(B.T, mode="r")
    L = R.T * np.sign(np.diag(R))[None, :]
    return L


def _newton_step(derivs, n: int) -> np.ndarray | None:
    """``-H^{-1} g`` in the whitened coordinates, or None when ``H`` is not positive
    definite, a parameter is on its bound, or the predicted decrease is negligible."""
    if derivs.hessian.shape != (n, n):
        return None
    try:
        C = np.linalg.cholesky(derivs.hessian)
    except np.linalg.LinAlgError:
        return None
    step = -np.linalg.solve(C.T, np.linalg.solve(C, derivs.gradient))
    if -0.5 * float(derivs.gradient @ step) < STRUCTURED_NEWTON_DONE:
        return None
    return step


def _rx_vcov(obj: GLMMObjective, sol: GLMMSolution) -> np.ndarray:
    """``R_X^{-1} R_X^{-T}`` at the solution (:func:`_rx_inverse`)."""
    Ri = _rx_inverse(obj, sol)
    return Ri @ Ri.T


def _rx_inverse(obj: GLMMObjective, sol: GLMMSolution) -> np.ndarray:
    """``R_X^{-1}`` at the solution, from the solution's own factor when its Laplace
    weights are the Fisher weights ``R_X`` is defined with (lme4's expected information,
    or a canonical link: the same factorization twice otherwise; VerbAgg's is 4% of the
    fit)."""
    fam = sol.family
    kind = fam.laplace_hessian if obj.hessian is None else obj.hessian
    fisher = kind == "expected" or fam.link.name == fam.canonical_link
    if fisher and type(obj.pirls) is PIRLS and sol.factor is not None:
        return obj.pirls.rx_inverse_of(sol.factor)
    return obj.pirls.rx_inverse(sol.theta, sol.eta, sol.mu)


def _leave_workspace_at(obj: GLMMObjective, x: np.ndarray, sol: GLMMSolution) -> None:
    """Leave the objective's PIRLS workspace at the optimum ``x`` (later solves, such
    as a profile's, start from its modes): the solution's modes where the rows are in
    memory (no solve; the sensitivity of the last evaluation, elsewhere, is dropped),
    else a solve at ``x``."""
    pirls = obj.pirls
    if type(pirls) is PIRLS and sol.u.shape == pirls.u_start.shape:
        pirls.u_start = sol.u.copy()
        pirls._ref = None
        obj._use_family(sol.family)
    else:
        obj.solve(x)


def _result(design, obj, sol, fam, opt, opt0, conv, vcov, how, derivs, messages, log):
    # (an objective whose rows are elsewhere gives the range of eta, all the check reads)
    edge = link_edge_message(fam, obj.eta_range(sol) if hasattr(obj, "eta_range")
                             else sol.eta)
    if edge is not None:
        emit_warning(edge, LinkEdgeWarning, stacklevel=4)
        if conv is not None and conv.converged:
            conv = dataclasses.replace(conv, converged=False, message=edge)
    groups = _singular_groups(design, sol.theta)
    if groups:
        emit_warning(singular_message(groups), SingularFitWarning, stacklevel=4)
    return GeneralizedLinearMixedModelResult(
        design=design, family=fam, nAGQ=obj.nAGQ, solution=sol, opt=opt, opt_stage0=opt0,
        convergence=conv, vcov_beta=vcov, vcov_method=how, derivatives=derivs,
        objective_function=obj, shape_estimated=obj.estimate_shape,
        fit_log=tuple(log.rows),
        messages=tuple(messages),
    )


def glmer(
    formula: str,
    data: pd.DataFrame,
    family="binomial",
    *,
    link: str | None = None,
    nAGQ: int = 1,
    weights=None,
    offset=None,
    start: dict | None = None,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    calc_derivs: bool = True,
    check_conv: bool = True,
    verbose: int = 0,
    contrasts: dict | None = None,
    covariance_matrices: dict | None = None,
    sigma: float | None = None,
    scheduler=None,
) -> GeneralizedLinearMixedModelResult:
    """Fit a generalized linear mixed model by maximum likelihood (lme4's ``glmer``).

    Parameters
    ----------
    formula : str
        ``"response ~ fixed + (expr | group) + ..."``. Binomial responses may be 0/1
        numbers, booleans, two-level factors (first level = failure, as in R),
        ``cbind(successes, failures)``, or proportions with the numbers of trials as
        ``weights=``. ``offset(...)`` terms are allowed.
    data : pandas.DataFrame, dask.dataframe.DataFrame or parquet path
        A Dask frame (or a parquet path or glob, read with Dask; ``pip install
        "mixedmodels[dask]"``) is fitted with its rows on the workers: each PIRLS step is
        one distributed reduction (docs/scale.md); families without a dispersion
        parameter, nAGQ 0 or 1.
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse_gaussian"``,
        ``"gaussian"``, ``"negative_binomial"`` (fixed shape; see :func:`glmer_nb`) or a
        family object such as ``mm.families.Binomial(link="probit")``.
    link : str, optional
        Overrides the family's default link (``"probit"``, ``"cloglog"``, ``"log"``, ...).
    nAGQ : int
        1: Laplace approximation (default). 0: fast mode, beta estimated inside PIRLS.
        2 to 25: adaptive Gauss-Hermite quadrature (a single scalar random-effects term).
        The log-likelihood is on the same scale for every nAGQ.
    weights : str or array-like, optional
        Prior weights: numbers of trials for binomial proportions; for Gamma, inverse
        Gaussian and Gaussian families they divide the dispersion.
    offset : str or array-like, optional
        Known term added to the linear predictor.
    start : dict or array-like, optional
        ``{"theta": ..., "beta": ...}`` starting values (lme4's ``fixef`` is accepted for
        ``beta``; numbers alone are theta, as in lme4); another block is an error.
    optimizer : str
        ``"auto"`` (default): quasi-Newton with the exact gradient of the Laplace or
        quadrature deviance (BFGS in whitened coordinates) and, for ``nAGQ=0`` fits, of
        the nAGQ = 0 criterion (a projected BFGS on log theta), falling back to BOBYQA where a
        gradient step fails (the nAGQ = 0 stage that starts a Laplace or quadrature fit
        uses its gradient too); BOBYQA where there is no exact gradient (quadrature with
        a dispersion family, Toeplitz covariance terms) or ``optimizer_settings`` are
        given.
        ``"gradient"``: the same, an error without a gradient. ``"bobyqa"`` (NLopt,
        lme4's, derivative-free in both stages), ``"nelder_mead"``, ``"cobyqa"`` or
        ``"lbfgsb"``.
    optimizer_settings : dict, optional
        Tolerances of the derivative-free optimizers (``xtol_abs``, ``ftol_abs``,
        ``maxeval``).
    calc_derivs : bool
        Compute the Hessian of the deviance for the standard errors (lme4's default);
        False uses ``R_X`` (conditional on theta) and skips the convergence check.
    check_conv : bool
        Check the gradient at the optimum.
    verbose : int
        0: quiet; 1: one line per deviance evaluation and per stage on stderr; 2: also
        the PIRLS iterations of each evaluation (lme4's ``verbose``). The lines go to the
        ``logging`` loggers ``"mixedmodels.optim"``, ``"mixedmodels.pirls"`` (DEBUG) and
        ``"mixedmodels.fit"`` (INFO) whenever those are enabled.
    contrasts : dict, optional
        Contrasts of categorical predictors by column, as for :func:`~mixedmodels.lmer`.
    covariance_matrices : dict, optional
        Known matrices of ``propto`` and ``equalto`` terms, as for
        :func:`~mixedmodels.lmer` (``equalto`` only for families without a dispersion
        parameter, whose covariances are absolute).
    sigma : None
        Not available: a known residual standard deviation belongs to Gaussian models,
        ``mm.lmer(..., sigma=)``; any value raises an error saying so.
    scheduler : None, str or distributed.Client
        Dask input only: where the passes run, as for :func:`~mixedmodels.lmer`.

    Returns
    -------
    GeneralizedLinearMixedModelResult
        On Dask input a
        :class:`~mixedmodels.backends.dask.glmm_result.DaskGLMMResult` whose ``fitted``,
        ``residuals`` and ``predict`` are lazy Dask series.

    Notes
    -----
    Families with a dispersion parameter (Gamma, inverse Gaussian, Gaussian with a
    non-identity link) maximize the Laplace likelihood over the dispersion too (glmmTMB's
    fit), unlike lme4, whose Gamma GLMMs estimate it from the residuals.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> round(m.objective, 1)
    184.1
    """
    verbose = check_verbose(verbose)
    check_optimizer(optimizer, GLMM_OPTIMIZERS, "glmer")
    start = glmm_start(start, "glmer")
    if sigma is not None:
        fam = make_family(family, link)
        why = ("glmer estimates the Gaussian dispersion and cannot hold it fixed"
               if fam.name == "gaussian" else
               f"the {fam.name} family has no residual standard deviation (its variance "
               "is a function of the mean)")
        raise ValueError(
            f"glmer(sigma={sigma!r}): sigma= fixes the residual standard deviation of a "
            f"Gaussian linear mixed model, and {why}; use mm.lmer(..., sigma=...) for a "
            "Gaussian model with a known residual standard deviation")
    options = {"family": family, "link": link, "nAGQ": nAGQ, "weights": weights,
               "offset": offset, "start": start, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings,
               "calc_derivs": check_flag("calc_derivs", calc_derivs),
               "check_conv": check_flag("check_conv", check_conv), "verbose": verbose,
               "contrasts": contrasts, "covariance_matrices": covariance_matrices}
    messages: list[str] = []
    if is_dask_input(data):
        with verbose_output(verbose), collect_warnings(messages):
            from ..backends.dask.glmm import fit_glmer_dask
            from ..backends.dask.lmm import refit_needs_rows

            fam = make_family(family, link)
            try:
                result = fit_glmer_dask(
                    formula, data, fam, nAGQ=nAGQ, weights=weights, offset=offset,
                    start=start, optimizer=optimizer, optimizer_settings=optimizer_settings,
                    calc_derivs=calc_derivs, check_conv=check_conv, contrasts=contrasts,
                    covariance_matrices=covariance_matrices, scheduler=scheduler)
            except PIRLSError as exc:
                raise PIRLSError(f"glmer({formula!r}, family={fam.name}({fam.link.name})): "
                                 f"{exc}") from None
        recipe = FitRecipe.make(glmer, formula, data, {**options, "scheduler": scheduler},
                                refit_needs_rows, {})
        return dataclasses.replace(result, messages=tuple(messages), recipe=recipe)
    if scheduler is not None:
        raise ValueError("scheduler= applies to Dask input only (a dask.dataframe or a "
                         "parquet path); data is in memory")
    with verbose_output(verbose), collect_warnings(messages):
        fam = make_family(family, link)
        design = glmm_design(formula, data, fam, weights=weights, offset=offset,
                             contrasts=contrasts, covariance_matrices=covariance_matrices)
        check_nagq(design, nAGQ)
        try:
            result = fit_glmm(design, fam, nAGQ=nAGQ, start=start, optimizer=optimizer,
                              optimizer_settings=optimizer_settings,
                              calc_derivs=calc_derivs, check_conv=check_conv)
        except PIRLSError as exc:
            raise PIRLSError(f"glmer({formula!r}, family={fam.name}({fam.link.name})): "
                             f"{exc}") from None
    # the warnings are collected when the block exits
    recipe = FitRecipe.make(glmer, formula, data, options, fit_glmm,
                            result.recipe.design_kwargs)
    return dataclasses.replace(result, messages=tuple(messages), recipe=recipe)


def glmer_nb(
    formula: str,
    data: pd.DataFrame,
    *,
    link: str = "log",
    nAGQ: int = 1,
    weights=None,
    offset=None,
    start: dict | None = None,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    calc_derivs: bool = True,
    check_conv: bool = True,
    verbose: int = 0,
    contrasts: dict | None = None,
) -> GeneralizedLinearMixedModelResult:
    """Negative binomial (NB2) GLMM with the shape estimated (lme4's ``glmer.nb``).

    As lme4, the shape starts from its maximum-likelihood estimate given the fitted means of
    a Poisson GLMM; it is then estimated jointly with theta and beta by maximizing the
    Laplace likelihood (lme4 alternates a one-dimensional search over the shape with
    refits; the maximum is the same). Standard errors of beta treat the shape as known, as
    lme4's do.

    Parameters
    ----------
    formula : str
        Count response on the left.
    data : DataFrame
    link : str
        Link of the mean (log).
    nAGQ, weights, offset, optimizer, optimizer_settings, calc_derivs, check_conv, verbose
        As for :func:`glmer`.
    start : dict, optional
        ``"theta"``, ``"beta"`` (or lme4's ``"fixef"``) and ``"nb_theta"`` (the shape) to
        start from.
    contrasts : dict, optional
        Contrasts of categorical predictors by column, as for :func:`lmer`.

    Returns
    -------
    GeneralizedLinearMixedModelResult
        Its ``family.theta`` is the estimated shape.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
    ...                 mm.datasets.load("grouseticks"))
    >>> round(m.family.theta, 2)
    2.05
    """
    verbose = check_verbose(verbose)
    check_optimizer(optimizer, GLMM_OPTIMIZERS, "glmer_nb")
    options = {"link": link, "nAGQ": nAGQ, "weights": weights, "offset": offset,
               "start": start, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings,
               "calc_derivs": check_flag("calc_derivs", calc_derivs),
               "check_conv": check_flag("check_conv", check_conv), "verbose": verbose,
               "contrasts": contrasts}
    messages: list[str] = []
    start = glmm_start(start, "glmer_nb", nb=True)
    if is_dask_input(data):
        # the shape starts from the Poisson fit's means and is then optimized with theta
        # and beta on the Dask passes (backends/dask/glmm.py); the active Client's
        # scheduler, if any, runs them
        from ..backends.dask.glmm import fit_glmer_dask
        from ..backends.dask.lmm import refit_needs_rows

        with verbose_output(verbose), collect_warnings(messages):
            try:
                result = fit_glmer_dask(
                    formula, data, NegativeBinomial(1.0, link), nAGQ=nAGQ,
                    weights=weights, offset=offset, start=start, optimizer=optimizer,
                    optimizer_settings=optimizer_settings, calc_derivs=calc_derivs,
                    check_conv=check_conv, contrasts=contrasts, estimate_shape=True)
            except PIRLSError as exc:
                raise PIRLSError(f"glmer_nb({formula!r}): {exc}") from None
        recipe = FitRecipe.make(glmer_nb, formula, data, options, refit_needs_rows, {})
        return dataclasses.replace(result, messages=tuple(messages), recipe=recipe)
    with verbose_output(verbose), collect_warnings(messages):
        nb = NegativeBinomial(1.0, link)
        design = glmm_design(formula, data, nb, weights=weights, offset=offset,
                             contrasts=contrasts)
        check_nagq(design, nAGQ)
        try:
            k0 = start.pop("nb_theta", None)
            if k0 is None:
                pois = GLMMObjective(design, Poisson(link), 0)
                _, th, _ = _stage0(pois, design.theta0(), optimizer, optimizer_settings)
                s = pois.solve0(th)
                k0 = nb_theta_ml(design.y, s.mu, prior_weights(design))
            result = fit_glmm(design, nb.with_theta(k0), nAGQ=nAGQ, estimate_shape=True,
                              start=start, optimizer=optimizer,
                              optimizer_settings=optimizer_settings,
                              calc_derivs=calc_derivs, check_conv=check_conv)
        except PIRLSError as exc:
            raise PIRLSError(f"glmer_nb({formula!r}): {exc}") from None
    recipe = FitRecipe.make(glmer_nb, formula, data, options, fit_glmm,
                            result.recipe.design_kwargs)
    return dataclasses.replace(result, messages=tuple(messages), recipe=recipe)


#: The ``optimizer=`` values the front doors accept (read by ``FitRecipe.optimizers``:
#: ``mm.allfit`` refits with each).
glmer.optimizers = GLMM_OPTIMIZERS
glmer_nb.optimizers = GLMM_OPTIMIZERS

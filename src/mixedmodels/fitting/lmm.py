"""``lmer``: fit a linear mixed model by REML or maximum likelihood.

Composes the public steps: :func:`parse_formula` -> :func:`materialize` ->
:class:`LMMObjective` -> :func:`minimize` -> :class:`LinearMixedModelResult`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd

from .._errors import ConvergenceWarning
from .._messages import emit_warning
from .._pages import regular_pages
from .._threads import blas_threads, dense_block_size
from ..backends.dask import is_dask_input
from ..design import Design, check_lmm_identifiable, materialize
from ..diagnostics import (
    CONV_GRAD_TOL,
    NEGATIVE_CURVATURE_TOL,
    check_convergence,
    check_convergence_gradient,
)
from ..formula import parse_formula
from ..objective import LMMObjective
from ..optim import (
    OPTIMIZERS,
    OptSummary,
    minimize,
    minimize_bounded_bfgs,
    minimize_with_gradient,
)
from ..results import FitRecipe, LinearMixedModelResult
from ..rside.residual import ResidualSpec, residual_columns
from .common import (
    check_flag,
    check_optimizer,
    check_relative_structures,
    collect_warnings,
    finish_result,
    newton_polish,
    package_messages,
    resolve_reml,
    restart_while_improving,
    snap_to_boundary,
    warn_if_poorly_scaled,
    warn_if_singular,
)
from .moment_start import moment_theta
from .rside import fit_rside_lmm
from .start_curvature import start_curvature
from .start_values import lmm_start
from .trace import check_verbose, log_stage, traced, verbose_output

__all__ = ["LMM_OPTIMIZERS", "fit_lmm", "lmer", "optimize_lmm"]

#: Every ``optimizer=`` value :func:`lmer` and :func:`fit_lmm` accept.
LMM_OPTIMIZERS = ("auto", "gradient", *OPTIMIZERS)


def fit_lmm(
    design: Design,
    *,
    REML: bool = True,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    start: np.ndarray | None = None,
    check_conv: bool = True,
    fixed_theta: np.ndarray | None = None,
    correlation=None,
    variance=None,
    sigma: float | None = None,
) -> LinearMixedModelResult:
    """Fit a linear mixed model to a materialized :class:`Design`.

    Useful when the same design is refitted (bootstrap, simulation); :func:`lmer` is the
    formula front door.

    Parameters
    ----------
    design : Design
        From :func:`~mixedmodels.materialize`.
    REML, optimizer, optimizer_settings, start, check_conv
        As for :func:`~mixedmodels.lmer`.
    fixed_theta : array-like, optional
        Skip the optimization and return the model at this theta (beta, sigma and the
        random effects at their conditional optimum) -- lme4's ``devfun`` evaluated into a
        full result, for profiling, comparisons and teaching.
    correlation, variance, sigma
        A residual correlation structure, variance function(s) and a known residual
        standard deviation, as for :func:`~mixedmodels.lmer`.

    Returns
    -------
    LinearMixedModelResult
    """
    REML = check_flag("REML", REML)
    check_conv = check_flag("check_conv", check_conv)
    check_optimizer(optimizer, LMM_OPTIMIZERS, "fit_lmm")
    residual = ResidualSpec.make(correlation, variance, sigma)
    with collect_warnings() as caught:
        result, options = _fit_design(design, REML, optimizer, optimizer_settings, start,
                                      check_conv, residual, fixed_theta)
    recipe = FitRecipe.make(None, design.spec.formula, None, {}, fit_lmm, options)
    return finish_result(result, package_messages(caught), recipe)


def _fit_design(design, REML, optimizer, optimizer_settings, start, check_conv,
                residual: ResidualSpec, fixed_theta=None
                ) -> tuple[LinearMixedModelResult, dict]:
    """:func:`fit_lmm`'s fit, its arguments checked, and its keyword arguments for the
    recipe; the result has neither messages nor a recipe yet (the caller collects the
    warnings around it and adds both once: :func:`lmer` calls this directly, so a small
    fit pays for one collection, one recipe and one ``replace``, not two)."""
    options = {"REML": REML, "optimizer": optimizer, "optimizer_settings": optimizer_settings,
               "start": start, "check_conv": check_conv}
    if fixed_theta is not None:
        options["fixed_theta"] = fixed_theta
    if not residual.empty:
        options.update(correlation=residual.correlation, variance=residual.variance,
                       sigma=residual.sigma)
        if fixed_theta is not None:
            raise ValueError("fixed_theta cannot be combined with a residual structure or "
                             "a known sigma")
    # one BLAS thread unless the dense block is large (see mixedmodels._threads): under
    # load, OpenBLAS's spinning threads made InstEval and sleepstudy 3-6x slower; regular
    # memory pages for the large arrays of large fits (see mixedmodels._pages: huge-page
    # compaction stalls were 1.1 s of crossed_1m's set-up)
    with blas_threads(dense_block_size(design.terms)), regular_pages(design.nobs):
        if not residual.empty:
            result = fit_rside_lmm(design, residual, REML, optimizer, optimizer_settings,
                                   start, check_conv)
        elif fixed_theta is not None:
            result = _at_theta(design, REML, np.atleast_1d(np.asarray(fixed_theta, float)))
        else:
            result = _fit(design, REML, optimizer, optimizer_settings, start, check_conv)
    return result, options


def _at_theta(design, REML, theta):
    obj = LMMObjective(design, reml=REML)
    if theta.shape != obj.lower.shape or np.any(theta < obj.lower):
        raise ValueError(f"fixed_theta must have {obj.lower.size} values within the bounds "
                         f"{obj.lower.tolist()}")
    sol = obj.solve(theta)
    opt = OptSummary("none (fixed theta)", theta, obj.lower, np.full_like(theta, np.inf),
                     theta, sol.objective, 0, {}, "fixed", 0.0)
    return LinearMixedModelResult(design, bool(REML), sol, opt, None, obj)


def _fit(design, REML, optimizer, optimizer_settings, start, check_conv):
    obj = LMMObjective(design, reml=REML)
    if optimizer == "gradient" and obj.method != "blocked":
        # "gradient" is the log-scale BFGS of optim/gradient on the blocked factorization
        # (the dense one's gradient drives the default of small models, "auto")
        obj = LMMObjective(design, reml=REML, method="blocked")
    sol, opt, conv = optimize_lmm(obj, optimizer, optimizer_settings, start, check_conv)
    return LinearMixedModelResult(design, bool(REML), sol, opt, conv, obj)


def optimize_lmm(obj: LMMObjective, optimizer: str = "auto",
                 optimizer_settings: dict | None = None, start=None,
                 check_conv: bool = True, projected_bfgs: bool = False):
    """Minimize an LMM objective over theta: lmer's optimization, for any objective.

    The objective may come from a :class:`Design` or from cross-products summed
    elsewhere (:meth:`LMMObjective.from_cross_products`); only ``obj.design``'s terms are
    read (for the singular-fit message).

    Parameters
    ----------
    obj : LMMObjective
    optimizer, optimizer_settings, start, check_conv
        As for :func:`lmer` (``"gradient"`` needs ``obj.has_gradient``).
    projected_bfgs : bool
        With ``optimizer="auto"``, take the projected BFGS of small models (see below)
        for structured terms too (small models only, as for unstructured ones): for a caller
        that only needs a start its own Newton polish finishes (glmmtmb's Gaussian
        models, :mod:`.glmmtmb_gaussian`), so a flat stretch's last 1e-6 does not matter.

    Returns
    -------
    solution : LMMSolution
    opt : OptSummary
    convergence : ConvergenceReport or None
    """
    design = obj.design
    if optimizer == "gradient" and not obj.has_gradient:
        raise ValueError("optimizer='gradient' needs covariance structures that give "
                         "d Lambda / d theta (lambda_jacobian); use 'bobyqa'")
    lower = obj.lower
    x0 = obj.theta0 if start is None else np.asarray(start, dtype=float)
    if x0.shape != lower.shape:
        raise ValueError(f"start has {x0.size} values; the model has {lower.size} theta "
                         "parameters")
    dense_qn = False
    if optimizer == "auto":
        # measured (benchmarks/results/optimizers.md): the analytic gradient pays where an
        # evaluation is expensive (InstEval: 13 evaluations, 0.9 s against BOBYQA's 135,
        # 3.5 s). Small models (the dense factorization) take the projected BFGS of
        # optim/bounded_bfgs with the dense system's exact gradient: sleepstudy 11-13
        # evaluations against BOBYQA's 43, and no scipy overhead (which costs more than
        # a small model's whole search). Structured terms keep BOBYQA with restarts
        # (their parameterizations have long flat stretches; the log-scale BFGS of the
        # blocked path stopped a flat exp() range 1.1e-6 above BOBYQA's optimum, where
        # glmmTMB's Hessian is singular): the dense gradient serves the projected BFGS only.
        # Models on one grouping factor evaluated level by level are as cheap per
        # evaluation as small dense ones and take the same path (shared2k_three: 14
        # evaluations, 1.6 ms, against the log-scale BFGS's 27 and 4.1 ms, same optimum);
        # so do blocked models below MOMENT_START_MIN_ROWS rows, where scipy's line search
        # and L-BFGS-B polish cost more than the search itself (shared2k_uncorr: 0.79 ms
        # of scipy against 0.19 ms, 13 evaluations against 12, same optimum to 1e-12).
        # Larger blocked models keep the log-scale BFGS from the moment start
        # (crossed_interaction10k: 21 evaluations against the projected BFGS's 26 from
        # lme4's start).
        dense_qn = (obj.has_gradient
                    and (obj.method == "dense" or obj.one_factor is not None
                         or (obj.method == "blocked" and obj.n < MOMENT_START_MIN_ROWS))
                    and (projected_bfgs
                         or not any(t.structured for t in design.terms)))
        optimizer = ("gradient" if obj.has_gradient and obj.method != "dense"
                     else "bobyqa")
    grad = hess_inv = None
    t0 = time.perf_counter()
    if dense_qn:
        opt, grad = _dense_quasi_newton(obj, x0, lower, optimizer_settings,
                                        moment_start=start is None)
    elif optimizer == "gradient":
        fg = traced(obj.value_and_gradient, "lmer", gradient=True)
        curvature0 = None
        if start is None:
            x0, fg, curvature0 = _large_model_start(obj, fg, x0)
        opt, grad, hess_inv = minimize_with_gradient(fg, x0, lower, curvature0=curvature0)
        if residual_vanishing(obj, opt.x):
            # the quasi-Newton path can run off to sigma -> 0 (relative theta -> infinity),
            # where the profiled deviance flattens towards a limit: cs(0 + ftime | subject)
            # on ar1sim's first four times stopped there 9.9 deviance units above the
            # optimum (rho = 1, sigma = 0.68) that BOBYQA from the same start reaches
            alt = _bobyqa(obj, x0, lower, optimizer_settings)
            if alt.fval < opt.fval:
                opt, grad, hess_inv = alt, None, None
    else:
        opt = _bobyqa(obj, x0, lower, optimizer_settings, optimizer)
    log_stage("lmer", "REML" if obj.reml else "ML", opt.optimizer, opt.n_evals,
              time.perf_counter() - t0, opt.fval)
    theta, fval = snap_to_boundary(obj, opt.x, opt.fval, lower)
    conv = None
    if check_conv:
        conv = _check(obj, theta, fval, lower, grad, hess_inv, opt.x, polish=True)
        polished, fnew = newton_polish(obj, theta, fval, lower, conv.gradient, conv.hessian,
                                       conv.active)
        if fnew < fval:
            theta, fval = polished, fnew
            conv = _check(obj, theta, fval, lower, None, None, None, polish=False)
        direction = _descent_direction(conv, lower, theta)
        if direction is not None:
            theta, fval, conv, opt = _escape_saddle(obj, theta, fval, conv, lower, opt,
                                                    direction)
        if not conv.converged:
            emit_warning(conv.message, ConvergenceWarning, stacklevel=4)
    warn_if_singular(design, theta)
    return obj.solve(theta), opt, conv


#: Fewest theta parameters for which a small model's search may start from the moments.
MOMENT_START_MIN_THETA = 2


def _small_model_start(obj: LMMObjective, fg, x0: np.ndarray):
    """Where the projected BFGS of a small model begins: ``(start, fg, from_moments,
    extra evaluations)``.

    The moment estimate of :func:`moment_theta` (read off the dense cross-products: a few
    numpy calls) where its objective is below that of lme4's ``x0``, else ``x0``
    unchanged. From lme4's identity start a third or more of the search went into
    finding the basin with no curvature known (sleepstudy: 15 evaluations, two of them
    rejected trial steps); the moment start is within a few hundredths of a deviance
    unit of the optimum on balanced data (on sleepstudy's ML criterion it is the
    optimum), so the search starts there from a forward-difference Hessian
    (``initial_hessian``, k gradients) and takes Newton-like steps: sleepstudy REML 8
    evaluations with the Hessian's, Orthodont 9 (23 before). The comparison costs one
    value evaluation at ``x0``; the value and gradient at the moment start answer the
    search's first call. The optimum is the same to the search's tolerance (the
    criteria agree to ~1e-12, theta to ~1e-7).

    One parameter keeps lme4's start: its search takes 5-6 evaluations from there
    (Dyestuff, ``(1 | Subject)``), which the comparison and the Hessian would cost
    again. So do terms sharing a grouping factor (``(Days || Subject)``): the estimate
    treats each term as if the others averaged out over its levels, which terms on the
    same levels do not (sleepstudy's moments then leave sigma undetermined), and forming
    it for nothing cost 5% of that fit. And so do models of scalar terms only
    (Penicillin): their evaluations are the cheap diagonal ones (``T' A T = A d d'``), and
    the estimate's numpy calls cost more time than the two evaluations it saved there
    (measured +12-16% CPU, in-process A/B)."""
    terms = obj.design.terms
    if (obj.method != "dense" or x0.size < MOMENT_START_MIN_THETA
            or all(t.p == 1 for t in terms)
            or len({t.group for t in terms}) < len(terms)):
        return x0, fg, False, 0
    guess = moment_theta(obj, reml=obj.reml)
    if guess is None or guess.shape != x0.shape or not np.all(guess >= obj.lower):
        return x0, fg, False, 0
    f0 = obj(x0)
    first = fg(guess)
    if not first[0] < f0:
        # (that evaluation at the guess is wasted: lme4's start, as before)
        return x0, _answer_exact(fg, guess, first), False, 1
    return guess, _answer_exact(fg, guess, first), True, 1


def _answer_exact(fg, x: np.ndarray, value):
    """``fg`` whose first call at exactly ``x`` (the same values) is answered with
    ``value``; any other call is evaluated."""
    pending = [value]
    key = x.tobytes()

    def wrapped(theta):
        if pending and np.asarray(theta, dtype=float).tobytes() == key:
            f, g = pending.pop()
            return f, np.array(g, copy=True)
        return fg(theta)

    return wrapped


#: Fewest rows for which the gradient search may start from :func:`moment_theta`.
MOMENT_START_MIN_ROWS = 10_000


def _large_model_start(obj: LMMObjective, fg, x0: np.ndarray):
    """``(start, fg, curvature)`` of the gradient search: the moment estimate of
    :func:`moment_theta` where its objective is below that of lme4's ``x0`` (from theta = 1
    the search spent 17 of crossed_slopes_200k's 26 evaluations finding the basin), else
    ``(x0, fg, None)``.

    The estimate reads the objective's cross-products only, so a Dask fit (cross-products
    summed over the partitions) takes the start of the in-memory fit of the same rows.
    Choosing costs one value evaluation at ``x0``; the value and gradient at the moment
    start are kept and answer the search's first call (:func:`_answer_first`), and the
    same evaluation gives the curvature estimate of the search's first inverse Hessian
    (:func:`start_curvature`; None where the objective has none, or from ``x0``)."""
    if obj.n < MOMENT_START_MIN_ROWS:
        # evaluations are cheap here, and lme4's start keeps small fits on the path they
        # have always taken (the parity tests' optimizer paths)
        return x0, fg, None
    guess = moment_theta(obj)
    if guess is None or guess.shape != x0.shape:
        # no moment start (a term it does not cover): the search's first evaluation, at
        # x0, made here for its curvature
        first, curvature = _first_evaluation(obj, x0)
        return x0, _answer_first(fg, x0, first), curvature
    f0 = obj(x0)
    first, curvature = _first_evaluation(obj, guess)
    if not first[0] < f0:
        return x0, fg, None
    return guess, _answer_first(fg, guess, first), curvature


def _first_evaluation(obj: LMMObjective, theta: np.ndarray):
    """``((value, gradient), curvature)`` at the search's start: one traced evaluation
    that also fills the curvature estimate of :func:`start_curvature` (None where the
    objective gives none)."""
    estimate = np.full(theta.shape, np.nan)
    first = traced(partial(obj.value_and_gradient, curvature=estimate), "lmer",
                   gradient=True)(theta)
    return first, start_curvature(estimate)


#: Points this close (relative, per entry) are the same point: a few rounding errors.
SAME_POINT_RTOL = 8 * np.finfo(float).eps


def _answer_first(fg, x: np.ndarray, value):
    """``fg`` whose first call at ``x`` is answered with ``value`` (already evaluated)."""
    pending = [value]

    def wrapped(theta):
        # the log-scale search calls at exp(log(x)): equal to x up to rounding
        if pending and np.allclose(theta, x, rtol=SAME_POINT_RTOL, atol=0.0):
            f, g = pending.pop()
            return f, np.array(g, copy=True)
        return fg(theta)

    return wrapped


_max_reduce = np.maximum.reduce

#: A relative covariance factor with an entry this large (random effects a thousand times
#: the residual standard deviation) marks a fit heading for a vanishing residual variance.
VANISHING_RESIDUAL_RATIO = 1e3


def residual_vanishing(obj: LMMObjective, theta: np.ndarray) -> bool:
    """Whether ``theta`` puts the residual standard deviation out of sight of the random
    effects: some term's relative factor ``lambda_k`` (random-effect scale in units of
    sigma) has an entry above ``VANISHING_RESIDUAL_RATIO``. Costs no factorization."""
    theta = np.asarray(theta, dtype=float)
    design = obj.design
    # np.maximum.reduce is np.max's own reduction, without its wrapper (once per fit)
    return any(float(_max_reduce(np.abs(t.structure.lambda_(theta[sl])), axis=None,
                                 initial=0.0))
               > VANISHING_RESIDUAL_RATIO
               for t, sl in zip(design.terms, design.theta_slices(), strict=True))


def _dense_quasi_newton(obj: LMMObjective, x0, lower, settings, moment_start: bool = False
                        ) -> tuple[OptSummary, np.ndarray | None]:
    """Projected BFGS with the exact gradient (:func:`minimize_bounded_bfgs`), BOBYQA
    from the same start where it did not converge or ran off towards a vanishing
    residual variance (see :func:`residual_vanishing`); the better of the two is kept.

    ``moment_start``: the search may begin at the moment estimate instead of ``x0``
    (:func:`_small_model_start`); BOBYQA still starts from ``x0``."""
    fg = traced(obj.value_and_gradient, "lmer", gradient=True)
    start, fg_start, from_moments, extra = x0, fg, False, 0
    if moment_start:
        start, fg_start, from_moments, extra = _small_model_start(obj, fg, x0)
    opt, grad = minimize_bounded_bfgs(fg_start, start, lower, initial_hessian=from_moments)
    if extra:
        opt = replace(opt, x0=np.asarray(x0, dtype=float), n_evals=opt.n_evals + extra)
    if opt.converged and np.isfinite(opt.fval) and not residual_vanishing(obj, opt.x):
        return opt, grad
    alt = _bobyqa(obj, x0, lower, settings)
    if not alt.fval < opt.fval:
        return opt, grad
    return replace(alt, n_evals=alt.n_evals + opt.n_evals,
                   optimizer=f"{alt.optimizer} (after {opt.optimizer}: "
                             f"{opt.return_code})"), None


def _bobyqa(obj: LMMObjective, x0, lower, settings, optimizer: str = "bobyqa") -> OptSummary:
    """A derivative-free search from ``x0`` (restarted while it improves for structured
    terms, whose parameterizations have long flat stretches)."""
    opt = minimize(traced(obj, "lmer"), x0, lower, optimizer=optimizer, settings=settings)
    if any(t.structured for t in obj.design.terms):
        opt = restart_while_improving(obj, opt, lower, optimizer=optimizer,
                                      settings=settings)
    return opt


#: Where a saddle's bound-stationary parameters restart, away from their bound (theta is a
#: relative standard deviation: 0.1 is inside the region of every variance worth having).
SADDLE_RESTART_STEP = 0.1


def _descent_direction(conv, lower, theta) -> np.ndarray | None:
    """A direction of negative curvature at a failed optimum, or None.

    Either the bound-stationary parameters with negative curvature into the region (see
    :mod:`mixedmodels.diagnostics.convergence`), or the eigenvector of the most negative
    eigenvalue of the Hessian over the free parameters, turned so that it points into the
    region at the bounds."""
    if conv.saddle is not None and conv.saddle.any():
        return conv.saddle.astype(float)
    if conv.converged or conv.hessian is None:
        return None
    free = ~conv.active
    evals, evecs = np.linalg.eigh(conv.hessian[np.ix_(free, free)])
    if evals[0] >= -NEGATIVE_CURVATURE_TOL:
        return None
    v = np.zeros(theta.size)
    v[free] = evecs[:, 0]
    at_bound = np.isfinite(lower) & (theta - lower < SADDLE_RESTART_STEP)
    if np.sum(v[at_bound]) < 0 or (not at_bound.any() and v[np.argmax(np.abs(v))] < 0):
        v = -v
    return v / np.max(np.abs(v))


def _escape_saddle(obj, theta, fval, conv, lower, opt, direction):
    """Leave a saddle (see :func:`_descent_direction`): restart BOBYQA a step along the
    direction of negative curvature and keep the better point."""
    start = np.maximum(np.asarray(theta, float) + SADDLE_RESTART_STEP * direction, lower)
    retry = minimize(obj, start, lower, optimizer="bobyqa")
    x, f = snap_to_boundary(obj, retry.x, retry.fval, lower)
    if not f < fval:
        return theta, fval, conv, opt
    new = _check(obj, x, f, lower, None, None, None, polish=False)
    note = (f"{opt.optimizer} stopped at a saddle point {fval - f:.3g} deviance units above "
            "this optimum (a variance on its bound with negative curvature); refitted with "
            "BOBYQA from a start away from the bound")
    return x, f, replace(new, note=note), retry


def leave_bound_saddle(obj: LMMObjective, theta: np.ndarray, fval: float, opt: OptSummary
                       ) -> tuple[np.ndarray, float]:
    """``(theta, fval)`` past a saddle on the boundary of a derivative-free optimum: where
    a parameter sits on its bound, the convergence check looks for negative curvature
    into the region and, if it finds any, BOBYQA restarts a step along it
    (:func:`_escape_saddle`); the better point is kept. Nothing is warned (for starts:
    the caller reports on the fit it finishes).

    A random slope on a predictor far from zero (``Days + 1000``) leaves its intercept
    and slope almost perfectly correlated: BOBYQA can stop with the slope's Cholesky
    entry at zero, a saddle 9.7 REML units above the optimum."""
    lower = obj.lower
    theta, fval = snap_to_boundary(obj, np.asarray(theta, float), fval, lower)
    if not np.any(np.isfinite(lower) & (theta == lower)):
        return theta, fval
    conv = _check(obj, theta, fval, lower, None, None, None, polish=False)
    direction = _descent_direction(conv, lower, theta)
    if direction is None:
        return theta, fval
    theta, fval, _, _ = _escape_saddle(obj, theta, fval, conv, lower, opt, direction)
    return theta, fval


def _check(obj, theta, fval, lower, grad, hess_inv, x_opt, polish):
    """Convergence report at ``theta``, with the analytic gradient when there is one.

    ``polish=True`` asks for the Hessian even when the gradient is small, for small models
    (see below), so that :func:`newton_polish` can use it."""
    # Small (dense) models are cheap to evaluate: after a derivative-free optimizer always
    # take the Hessian, so that the Newton polish can finish what it left on a flat ridge
    # (BOBYQA stops on small *changes*; Orthodont with log(age): 1e-7 short of the optimum
    # moves a near-zero conditional mode by 0.3%). A gradient optimizer stopped on the
    # gradient itself: nothing to polish.
    grad_tol = 0.0 if polish and obj.method == "dense" and grad is None else CONV_GRAD_TOL
    if obj.has_gradient:
        if grad is None or not np.array_equal(theta, x_opt):
            fval, grad = obj.value_and_gradient(theta)
            hess_inv = None
        return check_convergence_gradient(obj.value_and_gradient, theta, lower, grad,
                                          hess_inv, grad_tol=grad_tol)
    return check_convergence(obj, theta, lower, fval, grad_tol=grad_tol)


def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    weights=None,
    offset=None,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    start=None,
    check_conv: bool = True,
    verbose: int = 0,
    reml: bool | None = None,
    contrasts: dict | None = None,
    covariance_matrices: dict | None = None,
    correlation=None,
    variance=None,
    sigma: float | None = None,
    scheduler=None,
) -> LinearMixedModelResult:
    """Fit a linear mixed model with an lme4-style formula.

    Parameters
    ----------
    formula : str
        ``"response ~ fixed + (expr | group) + ..."``; see the README for the syntax
        (``(x || g)``, ``(1 | a/b)``, ``(1 | a:b)``, ``offset()``, formulaic transforms).
    data : pandas.DataFrame
        Not modified. Rows with missing or non-finite values in the columns the model uses
        are dropped with a warning. The result keeps a reference to it (its
        :attr:`~LinearMixedModelResult.recipe`), for :meth:`update`.
    REML : bool
        Restricted maximum likelihood (default, as lme4) or maximum likelihood.
    weights : str or array-like, optional
        Prior weights (column name or one per row): residual variance ``sigma^2 / w``.
    offset : str or array-like, optional
        Known term added to the linear predictor.
    optimizer : str
        ``"auto"`` (default): ``"gradient"`` -- BFGS on log(theta) with the analytic
        gradient, for scalar and vector-valued terms alike -- when the model uses the
        blocked factorization (too large for the dense one of small models,
        ``q + p + 1 > 80``, and a dense block of at most 6000 columns) with terms on more
        than one grouping factor and at least 10,000 rows; on small models
        (the dense factorization), on blocked models with fewer rows and on models whose
        terms all share one grouping factor (evaluated level by level) a projected BFGS
        with the exact gradient
        (``"gradient:projected BFGS"``, BOBYQA where it does not converge),
        BOBYQA (NLopt, lme4's default) for structured terms. Also ``"bobyqa"``,
        ``"gradient"`` (forces the blocked factorization), ``"nelder_mead"``, ``"cobyqa"``,
        ``"lbfgsb"``.
    optimizer_settings : dict, optional
        Tolerances (``xtol_abs``, ``ftol_abs``, ``maxeval``) overriding lme4's defaults.
    start : array-like or dict, optional
        Starting theta (lme4's order), or lme4's ``{"theta": ...}``. Default: lme4's
        (identity relative covariances);
        on large models (at least 10,000 rows) fitted by the gradient search
        (``"gradient"``, or ``"auto"`` where it chooses it, see ``optimizer``), a
        method-of-moments estimate instead where its objective is lower
        (:mod:`mixedmodels.fitting.moment_start`).
    check_conv : bool
        Check the gradient at the optimum (a few extra evaluations).
    verbose : int
        0: quiet; 1: one line per objective evaluation and per stage on stderr (lme4's
        ``verbose``). The same lines go to the ``logging`` loggers
        ``"mixedmodels.optim"`` (DEBUG) and ``"mixedmodels.fit"`` (INFO) whenever those
        are enabled.
    reml : bool, optional
        Lower-case alias of ``REML``.
    contrasts : dict, optional
        Contrasts of categorical predictors by column, lme4's ``contrasts=``:
        ``{"x": "sum"}`` (also ``"treatment"``, ``"helmert"``, ``"poly"``, ``"SAS"``,
        ``"diff"``, R's ``"contr.sum"`` spelling, a formulaic ``Contrasts`` object or a
        coding matrix). Ordered categoricals default to ``"poly"``, as in R.
    covariance_matrices : dict, optional
        Known matrices of ``propto`` terms by the name the formula gives them:
        ``propto(1 | species, K)`` with ``covariance_matrices={"K": K}`` (an array, or a
        DataFrame whose index and columns name the levels). See docs/structures.md for
        every covariance structure a term may have (``ar1``, ``cs``, ``exp``, ``rr``, ...).
    correlation : correlation structure, optional
        A residual correlation within groups, nlme's ``correlation=``:
        ``mm.cor_ar1(form="~ time | Subject")``, ``mm.cor_exp(form="~ x + y | site")``
        ... (:mod:`mixedmodels.rside`). Without ``| group`` in the form the innermost
        random-effects grouping is used, as ``lme`` does. The fit is exact: the data are
        whitened within groups, no observation-level random effect is involved.
    variance : variance function or list of them, optional
        Heteroscedastic residuals, nlme's ``weights=``: ``mm.var_ident(form="~ 1 | Sex")``,
        ``mm.var_power(form="~ age")`` ...; a list multiplies them (``varComb``).
    sigma : float, optional
        A known residual standard deviation (MixedModels.jl's ``σ=``): not estimated, and
        the criterion is the (restricted) deviance at that value. With ``weights`` the
        inverse known sampling variances and ``sigma=1`` this is the random-effects
        meta-analysis model (one observation per level is then allowed).
    scheduler : None, str or distributed.Client
        For Dask input only (``data`` a ``dask.dataframe.DataFrame`` or a parquet path or
        glob, with ``pip install "mixedmodels[dask]"``): where the per-partition
        reductions run -- None for Dask's default (the active ``distributed.Client``, if
        any), a scheduler address, or a client. See docs/scale.md.

    Returns
    -------
    LinearMixedModelResult
        A :class:`~mixedmodels.rside.results.RSideLMMResult` when ``correlation``,
        ``variance`` or ``sigma`` is given (with ``cor_params``, ``var_params`` and
        ``intervals()``). On Dask input a
        :class:`~mixedmodels.backends.dask.result.DaskLinearMixedModelResult` whose
        ``fitted``, ``residuals`` and ``predict`` are lazy Dask series.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> round(m.objective, 2)
    1743.63
    """
    REML = resolve_reml(REML, reml)
    verbose = check_verbose(verbose)
    check_optimizer(optimizer, LMM_OPTIMIZERS, "lmer")
    start = lmm_start(start)
    options = {"REML": REML, "weights": weights, "offset": offset, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings, "start": start,
               "check_conv": check_flag("check_conv", check_conv), "verbose": verbose,
               "contrasts": contrasts, "covariance_matrices": covariance_matrices,
               "correlation": correlation, "variance": variance, "sigma": sigma}
    if is_dask_input(data):
        _check_dask_options(covariance_matrices, correlation, variance, sigma)
        with verbose_output(verbose), collect_warnings() as caught:
            from ..backends.dask.lmm import fit_lmer_dask, refit_needs_rows

            result = fit_lmer_dask(formula, data, REML=REML, weights=weights, offset=offset,
                                   optimizer=optimizer, optimizer_settings=optimizer_settings,
                                   start=start, check_conv=options["check_conv"],
                                   contrasts=contrasts, scheduler=scheduler)
        recipe = FitRecipe.make(lmer, formula, data, {**options, "scheduler": scheduler},
                                refit_needs_rows, {})
        return replace(result, messages=package_messages(caught), recipe=recipe)
    if scheduler is not None:
        raise ValueError("scheduler= applies to Dask input only (a dask.dataframe or a "
                         "parquet path); data is in memory")
    residual = ResidualSpec.make(correlation, variance, sigma)
    with verbose_output(verbose), collect_warnings() as caught:
        spec = parse_formula(formula)
        design = materialize(spec, data, weights=weights, offset=offset, contrasts=contrasts,
                             covariance_matrices=covariance_matrices,
                             extra_columns=residual_columns(residual))
        check_relative_structures(design, "lmer")
        check_lmm_identifiable(design, sigma_fixed=residual.sigma is not None)
        warn_if_poorly_scaled(design)
        # (fit_lmm's body: its checks are made above, and this block collects)
        result, design_options = _fit_design(design, REML, optimizer, optimizer_settings,
                                             start, options["check_conv"], residual)
    recipe = FitRecipe.make(lmer, formula, data, options, fit_lmm, design_options)
    return finish_result(result, package_messages(caught), recipe)


def _check_dask_options(covariance_matrices, correlation, variance, sigma) -> None:
    """Refuse the in-memory-only arguments of :func:`lmer` on Dask input, by name."""
    given = [name for name, value in (("correlation", correlation), ("variance", variance),
                                      ("sigma", sigma),
                                      ("covariance_matrices", covariance_matrices))
             if value is not None]
    if given:
        raise NotImplementedError(
            f"{', '.join(f'{g}=' for g in given)} {'is' if len(given) == 1 else 'are'} "
            "not supported on Dask input: residual "
            "correlation and variance structures, a known sigma and known covariance "
            "matrices (propto) need the rows in memory; fit on a pandas DataFrame "
            "(e.g. ddf.compute()) or drop the argument")


#: The ``optimizer=`` values the front door accepts (read by ``FitRecipe.optimizers``:
#: ``mm.allfit`` refits with each).
lmer.optimizers = LMM_OPTIMIZERS

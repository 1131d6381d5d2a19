"""Fitting linear models with a residual structure: ``lmer(correlation=, variance=,
sigma=)`` and ``gls``.

The criterion of :mod:`mixedmodels.rside.objective` is minimized jointly over ``theta`` and
the residual parameters ``phi`` (nlme's unconstrained scale) by BOBYQA, then checked and
polished by a Newton step from finite differences, as lmer's small models are. A variance
covariate ``fitted(.)`` is handled as nlme does: optimize with the covariate fixed,
recompute it from the fitted values, and repeat until the estimates stop changing.

``lmer`` optimizes on :class:`_RelativeTheta`'s scale (theta relative to the typical
residual standard deviation, variance parameters in units of their spread over the rows),
starts a smooth spatial range at the best of nlme's start and two distance quantiles
(:mod:`.rside_range_start`), and searches again by quasi-Newton where the first fit fails
its check with a variance parameter run off (:mod:`.rside_second_start`). A linear spatial
correlation, whose range has a kink at every distance, starts from a scan of ranges and
ends on a kink (:mod:`.kink_search`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from .._errors import ConvergenceWarning
from .._messages import emit_warning
from .._threads import SERIAL_TRTRI_MAX, blas_threads
from ..design import Design
from ..design.fixed import SERIAL_QR_SIZE, take_rank_factor
from ..diagnostics.convergence import FD_STEP, check_convergence_gradient
from ..optim import OptSummary, minimize
from ..rside.closed_form import fixed_residual_solution
from ..rside.correlation import UNCONSTRAINED_MAX
from ..rside.objective import (
    DENSE_GRADIENT_MAX_Q,
    GLSObjective,
    RSideLMMObjective,
    not_positive_definite,
)
from ..rside.residual import BoundResidual, ResidualSpec, bind_residual
from ..rside.results import GLSResult, RSideLMMResult
from .common import BOUNDARY_TOL, polished_and_checked, snap_to_boundary, warn_if_singular
from .gls_quasi_newton import optimize_fast_gradient
from .gls_scoring import fisher_scoring_search
from .kink_search import kinked_range_search, settle_on_kink
from .limit_scale import LimitScale
from .rside_quasi_newton import quasi_newton_search
from .rside_range_start import spatial_range_start
from .rside_second_start import RUNOFF, best_of_two_searches, restart_from_end
from .trace import traced

__all__ = ["FITTED_MAX_ITER", "FITTED_TOL", "GRADIENT_MIN_PARAMS", "LMM_GRADIENT_MIN_PARAMS",
           "LMM_GRAM_GRADIENT_MIN_PARAMS",
           "fit_gls_design", "fit_rside_lmm"]

_add_reduce = np.add.reduce

#: nlme's ``tolerance`` of the outer iterations that update a ``fitted(.)`` covariate:
#: the largest relative change of the coefficients and variance parameters.
FITTED_TOL = 1e-6
#: nlme's ``maxIter`` of those iterations.
FITTED_MAX_ITER = 50
#: A kinked parameter within this (relative) distance of a kink is at it
#: (:func:`_walk_kinks`); BOBYQA's bounds are met exactly, its interior moves are larger.
KINK_TOL = 1e-9
#: Most smooth pieces :func:`_walk_kinks` searches, and most Nelder-Mead probes of
#: :func:`_settle_on_kinks` ...
KINK_MAX_ROUNDS = 10
#: ... which stop when one lowers the deviance by less than this.
KINK_GAIN_TOL = 1e-6
#: Relative step tolerance of those probes: a probe need only land a few pieces from a
#: better piecewise minimum (the walk after it finds that minimum exactly), and the pieces
#: of a range are ~1e-3 apart on its log scale. Over the cor_lin fixtures this saves 12-18%
#: of the evaluations (spatial_lme_lin_nugget 447 -> 368) at the same log-likelihoods; 1e-2
#: stops short of spatial_lme_lin_nugget's best minimum (deviance 0.002 higher).
PROBE_XTOL_REL = 1e-3
#: Initial simplex step of those probes on every parameter (unconstrained scales: logs,
#: logits; lmer's relative theta). NLopt's default, ``|x|``, makes a log range's step
#: depend on the coordinates' units (4.3 for spatial_lme_lin_nugget); 0.1 is ~10% of the
#: range (dozens of pieces there, 1e-3 to 5e-3 apart), and saved 10-35% of the
#: evaluations over the cor_lin fixtures and nine other cor_lin models at the same
#: log-likelihoods (one 0.0045 higher, one 1.2e-7 lower: below :data:`KINK_GAIN_TOL`);
#: 0.02 stopped short of spatial_lme_lin_nugget's best minimum.
PROBE_STEP = 0.1
#: BOBYQA's own end counts as a smooth piece's minimum (no walk needed) when the kinked
#: parameter is farther than this fraction of the piece's width from both its kinks (from
#: the finite end of an unbounded piece: this distance itself, on the log scale of the
#: range). A quadratic model that stalls at a kink creeps to within ~xtol of it; one that
#: ends well inside a piece has met a smooth minimum, which a walk would only search
#: again (spatial_lme_lin_nugget: 43 evaluations, gain 3.5e-5; over the cor_lin fixtures
#: and nine other cor_lin models 15-53% fewer evaluations where a walk is skipped,
#: log-likelihoods unchanged to 1e-9; 0.01 and 0.1 skip the same walks there).
INSIDE_PIECE = 0.1
#: BOBYQA on a smooth piece (:func:`_piece_minimum`): initial step of the parameters
#: other than the kinked one (unconstrained scales: logs, logits) ...
PIECE_STEP = 0.05
#: ... and its deviance tolerance: lme4's 1e-8, far below :data:`RSIDE_STOP`'s (the
#: fresh trust region, not a tiny tolerance, keeps a search near a kink going). 1e-10
#: spent 47 more evaluations on spatial_lme_lin_nugget for the same log-likelihood (to
#: 1e-10) on every cor_lin fixture.
PIECE_FTOL = 1e-8
#: Above this many parameters the Newton polish's Hessian (k^2 / 2 evaluations) is only
#: computed when the gradient is not already small.
POLISH_MAX_PARAMS = 8
#: BOBYQA's stopping tolerances for the R-side criteria (absolute, on the deviance and on
#: the unconstrained parameters), looser than lme4's 1e-8: the convergence check and its
#: Newton step from finite-difference derivatives follow and recover the last digits. Over
#: the 43 nlme fixtures 1e-6 on both saved 17% of the evaluations against lme4's (the
#: linear spatial correlations, whose kinks keep BOBYQA creeping, 30%) and changed no
#: log-likelihood by more than 1e-6. NLopt's BOBYQA tests ``ftol_abs`` on each step that
#: lowers the deviance (it stops on the first that gains less), so the deviance tolerance
#: ends the search while its trust region is still shrinking towards ``xtol_abs``: 1e-5
#: saves another 4% over the 46 rows of benchmarks/rside_bench.py (1324 -> 1271
#: evaluations; 15 rows fewer, counts_pql_exp 3 more) with every log-likelihood within
#: 2e-9 of 1e-6's (spatial_lme_exp_nugget: 1.5e-9 lower); 3e-5 stopped
#: ovary_lme_slope_car1 2e-6 short.
RSIDE_STOP = {"ftol_abs": 1e-5, "xtol_abs": 1e-6}
#: Fewest residual parameters for which ``gls`` is fitted by quasi-Newton with the exact
#: gradient (:func:`_optimize_gradient`) instead of BOBYQA. One evaluation of value and
#: gradient costs 3-8 evaluations of the value (every group's factor is inverted), and
#: BOBYQA's quadratic model needs few evaluations for few parameters: over the 28 nlme
#: gls fixtures (CPU time, both ways in one run) BFGS was 1.1-3.5x slower with 1-3
#: parameters and 1.6-1.9x faster with 4 and 9 (cor_symm + var_ident: 25 evaluations
#: against 144). Criteria whose gradient costs about a value
#: (``GLSObjective.fast_gradient``) take :mod:`.gls_quasi_newton`'s BFGS at any size.
GRADIENT_MIN_PARAMS = 4
#: The same for ``lmer(correlation=, variance=)``, counting theta and the residual
#: parameters: the dense value and gradient cost 2.5-4x a value, and over the 14 nlme lme
#: fixtures with a gradient BFGS was faster only from 5 parameters on (BodyWeight with
#: ``(Time | Rat)``, CAR(1) and a power of the fitted values: 1.9x; corSymm nested in
#: Sex/Subject: 1.5x), 0.6-1.7x with 2-4.
LMM_GRADIENT_MIN_PARAMS = 5
#: The same where the gradient goes through the dense cross-product
#: (``RSideLMMObjective.gram_gradient``: compound symmetry, AR(1) / CAR(1) without a
#: variance function, or a variance function without correlation), 2.5-4x a value: over
#: speed8's untuned lme models (CPU time, both ways in one run) BFGS took 4-parameter fits
#: from 53-127 BOBYQA evaluations to 11-16 (Orthodont's slope with compound symmetry
#: 9.2 -> 4.1 ms, Machines' nested varIdent 8.3 -> 3.9, Pastes 6.4 -> 4.5, sleepstudy's
#: slope with varExp 5.7 -> 4.6); with 3 it won on one row and lost on two.
LMM_GRAM_GRADIENT_MIN_PARAMS = 4
#: Gradient tolerance of the quasi-Newton fits (:func:`_optimize_gradient`), absolute and
#: relative to the criterion at the start: the criterion carries rounding noise of
#: ~1e-14 of its terms (log|V| sums hundreds of logs), and asking BFGS for a gradient
#: that noise cannot resolve makes its Wolfe line search fail over and over
#: (bw_gls_comb_ar1: 14 evaluations to a gradient of 4e-7, then 31 more of line search
#: failures). The convergence check (gradient below 1e-3) follows.
GRADIENT_GTOL = 1e-5
GRADIENT_GTOL_REL = 1e-7
#: Restarts of BOBYQA on :mod:`.limit_scale`'s scale: at most this many, until one lowers
#: the deviance by less than ...
LIMIT_MAX_RESTARTS = 5
#: ... this.
LIMIT_RESTART_GAIN = 1e-6
#: Deviance above the log-scale optimum below which a mapped parameter's limit 0 counts
#: as competitive and the natural-scale stages run (:func:`_limit_competitive`): a
#: plateau's remaining gain is a fraction of this (5e-4 in :mod:`.limit_scale`'s
#: example), an interior optimum's distance from its limit usually tens or hundreds.
LIMIT_COMPETITIVE_GAP = 1.0
#: A variance parameter whose derivative of the log standard deviations spreads by more
#: than this over the rows is optimized on a scale shrunk by that spread
#: (:func:`_variance_spread`).
SPREAD_MIN = 1.0


def _start(start, n_theta: int, x0: np.ndarray) -> np.ndarray:
    """``start`` as theta only (the residual parameters from their defaults) or as
    ``[theta, phi]``."""
    if start is None:
        return x0
    start = np.atleast_1d(np.asarray(start, dtype=float))
    if start.shape == (n_theta,):
        return np.concatenate([start, x0[n_theta:]])
    if start.shape != x0.shape:
        raise ValueError(f"start has {start.size} values; the model has {n_theta} theta "
                         f"parameters and {x0.size - n_theta} residual parameters")
    return start


def _optimize(obj, x0, lower, optimizer, settings, check_conv, stage,
              min_gradient_params: int = GRADIENT_MIN_PARAMS, map_limits=True):
    """BOBYQA (or ``optimizer``), boundary snap, convergence check and Newton polish; with
    ``optimizer="auto"`` and an objective with an analytic gradient, quasi-Newton first
    (:func:`_optimize_gradient`); ``map_limits``: on :class:`~.limit_scale.LimitScale`'s
    scale where it maps some parameter."""
    if x0.size == 0:
        fval = obj(x0)
        return x0, fval, OptSummary("none (no parameters)", x0, lower, lower, x0, fval, 1,
                                    {}, "none", 0.0), None
    if optimizer == "gradient":
        if not getattr(obj, "has_gradient", False):
            raise ValueError(
                "optimizer='gradient' needs the criterion's analytic gradient, which this "
                "model lacks (a linear spatial correlation, whose kinks make it only "
                "piecewise smooth; G-side structures other than us/diag; or more than "
                f"{DENSE_GRADIENT_MAX_Q} random effects); use optimizer='auto' or "
                "'bobyqa'")
        return _optimize_gradient(obj, x0, lower, check_conv, stage, fallback=False)
    # log-parameters that may reach 0 are optimized on the natural scale (limit_scale)
    # (None where no parameter is mapped: LimitScale's mask would be all False)
    scale = _limit_scale(obj, x0.size) if map_limits and _maps_limits(obj) else None
    if optimizer == "auto" and map_limits and scale is None \
            and getattr(obj, "fast_gradient", False):
        # gls whose gradient costs a few values: BFGS first (gls_quasi_newton)
        found = optimize_fast_gradient(obj, x0, lower, check_conv, stage)
        if found is not None:
            return found
    if scale is not None and optimizer == "auto" and getattr(obj, "fast_gradient", False) \
            and not _scoring_applies(obj, x0):
        # gls with a correlation whose gradient costs a few values: the same stages by
        # quasi-Newton (independent rows keep Fisher scoring on the log scale, which
        # settles in ~10: hetero_gls_constpower took 131 evaluations by BFGS)
        found = _optimize_limit_gradient(obj, scale, x0, lower, check_conv, stage)
        if found is not None:
            return found
    if scale is not None:
        # on the log scale first (scale-free moves: a constant of 200 from its start 0.1),
        # then on the natural scale from there (reaches 0, or leaves a log-scale plateau
        # near it), then each mapped parameter tried at 0 (not only within BOUNDARY_TOL)
        x1, f1, opt1, _ = _optimize(obj, x0, lower, optimizer, settings, False, stage,
                                    min_gradient_params, map_limits=False)
        competitive, n_tried = _limit_competitive(obj, x1, f1, scale.mask)
        if not competitive:
            # no mapped limit comes near the log-scale optimum: the plateau the natural
            # scale exists for is absent, and the log-scale result stands
            x, fval, conv = _checked(obj, x1, f1, lower, check_conv)
            opt = replace(opt1, n_evals=opt1.n_evals + n_tried)
            return x, fval, opt, conv
        zlow = scale.lower(lower)
        z, fval, opt, _ = _optimize(scale, scale.from_model(x1), zlow, optimizer, settings,
                                    False, stage, min_gradient_params,
                                    map_limits=False)
        n_evals = opt1.n_evals + n_tried + opt.n_evals
        # restarts only where the natural scale moved the fit (off a log-scale plateau,
        # towards 0): where it gained less than LIMIT_RESTART_GAIN the log-scale search
        # had already settled, and the convergence check's Newton step finishes
        # (hetero_lme_constpower: 23 evaluations that gained 8.5e-7)
        restarts = LIMIT_MAX_RESTARTS if f1 - fval >= LIMIT_RESTART_GAIN else 0
        for _ in range(restarts):
            # a fresh quadratic model: along the valley of constant against power BOBYQA
            # stops on a small change while the deviance still falls
            z2, f2, opt2, _ = _optimize(scale, z, zlow, optimizer, settings, False, stage,
                                        min_gradient_params, map_limits=False)
            n_evals += opt2.n_evals
            gain = fval - f2
            if gain > 0:
                z, fval, opt = z2, f2, opt2
            if gain < LIMIT_RESTART_GAIN:
                break
        z, fval = snap_to_boundary(scale, z, fval, zlow,
                                   tol=np.where(scale.mask, np.inf, BOUNDARY_TOL))
        z, fval, conv = _checked(scale, z, fval, zlow, check_conv)
        opt = replace(opt, x=scale.to_model(opt.x), x0=x0, lower=lower, n_evals=n_evals)
        return scale.to_model(z), fval, opt, conv
    if optimizer == "auto" and _scoring_applies(obj, x0):
        # independent rows with a variance function: Fisher scoring (gls_scoring)
        found = _optimize_scoring(obj, x0, lower, check_conv, stage)
        if found is not None:
            return found
        # BOBYQA from the start where scoring did not settle
    if optimizer == "auto" and getattr(obj, "has_gradient", False) \
            and x0.size >= min_gradient_params:
        found = _optimize_gradient(obj, x0, lower, check_conv, stage)
        if found is not None:
            return found
        # BOBYQA from the start where quasi-Newton did not settle
    settings = {**RSIDE_STOP, **(settings or {})}
    # (a fixed correlation has no range to search)
    kinks = obj.residual.correlation.kinks() if obj.residual.kinked and obj.residual.n_cor \
        else np.zeros(0)
    opt = None
    if optimizer == "auto" and kinks.size:
        opt = _kinked_search(traced(obj, stage), obj, x0, lower, settings, kinks)
    if opt is None:
        opt = minimize(traced(obj, stage), x0, lower,
                       optimizer="bobyqa" if optimizer == "auto" else optimizer,
                       settings=settings)
        if optimizer == "auto" and kinks.size:
            # no finite scan point: BOBYQA from nlme's start, settled on the kinks
            opt = _settle_on_kinks(traced(obj, stage), opt, lower, settings, kinks,
                                   x0.size - obj.residual.n_par)
    x, fval = snap_to_boundary(obj, opt.x, opt.fval, lower)
    if optimizer == "auto":
        x, fval, lower, n_limit = _range_limit(obj, x, fval, lower)
        if n_limit:
            opt = replace(opt, x=x, fval=fval, n_evals=opt.n_evals + n_limit)
    x, fval, conv = _checked_holding(obj, x, fval, lower, check_conv)
    return x, fval, opt, conv


def _optimize_limit_gradient(obj, scale: LimitScale, x0, lower, check_conv, stage):
    """:func:`_optimize`'s limit-scale stages for a criterion whose gradient costs a few
    values (``obj.fast_gradient``): quasi-Newton (:mod:`.gls_quasi_newton`) on the log
    scale, and where a mapped limit is competitive (:func:`_limit_competitive`) again on
    the natural scale from there, with the mapped parameters bounded by 0, then each tried
    at 0. A gradient does not stop on a small change along the valley of a
    varConstPower constant against its power, as BOBYQA does, so the restarts are not
    needed (BodyWeight's compound symmetry with varConstPower: 148 evaluations -> 80, to
    a higher optimum, logLik +0.39, that nlme reaches too when started near it; AR(1)
    with varConstPower on simulated panels: 88-316 -> 20-49).
    None where a search does not converge or its check fails: the caller then runs the
    derivative-free stages from ``x0``."""
    found = optimize_fast_gradient(obj, x0, lower, False, stage)
    if found is None:
        return None
    x1, f1, opt1, _ = found
    competitive, n_tried = _limit_competitive(obj, x1, f1, scale.mask)
    n_evals = opt1.n_evals + n_tried
    if not competitive:
        checked = _gradient_checked(obj, x1, f1, lower, check_conv)
        if checked is None:
            return None
        return x1, checked[0], replace(opt1, n_evals=n_evals), checked[1]
    zlow = scale.lower(lower)
    found = optimize_fast_gradient(scale, scale.from_model(x1), zlow, False, stage)
    if found is None:
        return None
    z, fval, opt, _ = found
    n_evals += opt.n_evals
    z, fval = snap_to_boundary(scale, z, fval, zlow,
                               tol=np.where(scale.mask, np.inf, BOUNDARY_TOL))
    checked = _gradient_checked(scale, z, fval, zlow, check_conv)
    if checked is None:
        return None
    opt = replace(opt, x=scale.to_model(opt.x), x0=x0, lower=lower, n_evals=n_evals)
    return scale.to_model(z), checked[0], opt, checked[1]


def _gradient_checked(fun, x, fval, lower, check_conv):
    """``(fval, report)``: the convergence check from ``fun.value_and_gradient`` at ``x``
    (``(fval, None)`` without the check); None where the check fails."""
    if not check_conv:
        return fval, None
    f, g = fun.value_and_gradient(x)
    conv = check_convergence_gradient(fun.value_and_gradient, x, lower, g)
    return (f, conv) if conv.converged else None


def _checked_holding(obj, x, fval, lower, check_conv):
    """:func:`_checked` with every parameter that :func:`_range_limit` holds at its limit
    left out: the criterion is flat in a range at 0 (no correlation left to change), so
    its zero gradient and curvature there would make the Hessian singular -- a spurious
    failed check, which runs the second search of :mod:`.rside_second_start` (Oats'
    corExp: 10 quasi-Newton evaluations of value and gradient, half the fit). The report
    comes back at full size, a held parameter ``active`` with a zero gradient."""
    held = (lower == -UNCONSTRAINED_MAX) & (x <= lower)
    if not check_conv or not held.any():
        return _checked(obj, x, fval, lower, check_conv)
    keep = ~held

    def on_rest(y):
        z = x.copy()
        z[keep] = y
        return obj(z)

    y, fval, conv = _checked(on_rest, x[keep], fval, lower[keep], check_conv)
    z = x.copy()
    z[keep] = y
    gradient = np.zeros(x.size)
    gradient[keep] = conv.gradient
    active = held.copy()
    active[keep] = conv.active
    saddle = None
    if conv.saddle is not None:
        saddle = np.zeros(x.size, dtype=bool)
        saddle[keep] = conv.saddle
    hessian = None
    if conv.hessian is not None:
        hessian = np.zeros((x.size, x.size))
        hessian[np.ix_(keep, keep)] = conv.hessian
    return z, fval, replace(conv, gradient=gradient, active=active, saddle=saddle,
                            hessian=hessian)


#: Deviance by which a spatial range at its limit 0 must beat the search's end to be
#: taken (:func:`_range_limit`): above the criterion's rounding, below any gain that
#: matters (BOBYQA's ``ftol_abs`` of :data:`RSIDE_STOP` stops on steps smaller than 1e-5).
RANGE_LIMIT_GAIN = 1e-8
#: Difference of the criterion at the search's end and at the range's limit below which
#: the two are the same fit (rounding of a criterion of ~1e3: the correlations already nil).
RANGE_FLAT_TOL = 1e-10


def _range_limit(obj, x: np.ndarray, fval: float, lower: np.ndarray):
    """The search's end or, where lower, the same point with a smooth spatial
    correlation's range at its limit 0 (every within-group correlation nil): ``(x, fval,
    lower, evaluations spent)``, with a range at its limit held there (its bound in
    ``lower``) for the convergence check: the criterion is flat in it.

    Where the data want no correlation the criterion falls towards that limit by ever
    smaller steps (``exp(-d / range)`` of the nearest pair); BOBYQA stops on one below its
    tolerance while the remaining gain still exceeds it (Oats, ``corExp(~ nitro |
    Block/Variety)``: the range stopped at 0.021, 1.6e-4 short of nlme's logLik at the
    limit). One evaluation where the range is estimated; the classes whose range must
    exceed the smallest distance (spherical, linear) have no such limit."""
    res = obj.residual
    cor = res.correlation
    if (cor is None or not res.n_cor or getattr(cor.spec, "range_above_min", True)
            or not hasattr(cor, "distance_quantiles")):
        return x, fval, lower, 0
    i = x.size - res.n_par                   # the range is phi's first parameter
    held = lower.copy()
    held[i] = -UNCONSTRAINED_MAX
    if x[i] <= -UNCONSTRAINED_MAX:
        return x, fval, held, 0
    z = x.copy()
    z[i] = -UNCONSTRAINED_MAX
    fz = obj(z)
    # lower, or equal to rounding: the search already ended where no correlation is left
    # (a Gaussian's exp(-(d / range)^2) of the nearest pair underflows first), and the
    # criterion is flat from there to the limit -- held there, the check leaves it out
    if not (fz < fval - RANGE_LIMIT_GAIN or abs(fz - fval) <= RANGE_FLAT_TOL):
        return x, fval, lower, 1
    # (the other parameters barely move without correlations of ~exp(-d / range): the
    # convergence check's Newton step, with the range held at its limit, settles them)
    return z, fz, held, 1


def _scoring_applies(obj, x0: np.ndarray) -> bool:
    """``obj`` has :mod:`.gls_scoring`'s expected information at ``x0`` (a ``gls``
    criterion of independent rows with a variance function; not its
    :class:`~.limit_scale.LimitScale` view, whose coordinates are not the variance
    function's)."""
    information = getattr(obj, "scoring_information", None)
    return x0.size > 0 and information is not None and information(x0) is not None


def _optimize_scoring(obj, x0, lower, check_conv, stage):
    """:func:`~.gls_scoring.fisher_scoring_search` with the gradient's convergence check:
    ``(x, fval, OptSummary, ConvergenceReport or None)``, or None where the search or the
    check fails (the caller then runs BOBYQA)."""
    found = fisher_scoring_search(obj, x0, lower, stage)
    if found is None:
        return None
    opt, grad = found
    conv = None
    if check_conv:
        conv = check_convergence_gradient(obj.value_and_gradient, opt.x, lower, grad)
        if not conv.converged:
            return None
    return opt.x, opt.fval, opt, conv


def _limit_competitive(obj, x: np.ndarray, fval: float,
                       mask: np.ndarray) -> tuple[bool, int]:
    """Whether some mapped log-parameter's limit 0 (``u = -UNCONSTRAINED_MAX``), the
    others held at ``x``, comes within :data:`LIMIT_COMPETITIVE_GAP` of the deviance
    ``fval`` reached on the log scale, and the evaluations spent (one per mapped
    parameter tried, stopping at the first competitive one).

    The natural-scale stages of :func:`_optimize` exist for a criterion that flattens
    towards such a limit, ``f(u) ~ f_0 + a e^u``: there the log-scale search stops short
    with ``f(x) - f_0`` small. Where every limit is far worse than ``x`` (a
    varConstPower constant of 7.9 whose limit costs 299 deviance units), ``x`` lies on no
    such plateau and the log-scale optimum is the fit."""
    tried = 0
    for j in np.flatnonzero(mask):
        trial = np.array(x, dtype=float)
        trial[j] = -UNCONSTRAINED_MAX
        f0 = obj(trial)
        tried += 1
        if not np.isfinite(f0) or f0 - fval < LIMIT_COMPETITIVE_GAP:
            return True, tried
    return False, tried


def _maps_limits(obj) -> bool:
    """Some residual parameter of ``obj`` may reach 0 (the residual model's
    ``zero_limits``): :func:`_limit_scale`'s map is active, told without building it."""
    res = obj.residual
    return bool(res.n_var) and bool(res.variance.zero_limits.any())


def _limit_scale(obj, n: int) -> LimitScale:
    """:class:`~.limit_scale.LimitScale` of the residual parameters that may reach 0 (the
    last ``obj.residual.n_par`` of ``n``)."""
    res = obj.residual
    return LimitScale(obj, np.concatenate([np.zeros(n - res.n_par, dtype=bool),
                                           res.zero_limits]))


def _optimize_gradient(obj, x0, lower, check_conv, stage, fallback=True):
    """Quasi-Newton with the criterion's exact gradient and the convergence check from
    that gradient (:func:`~.rside_quasi_newton.quasi_newton_search`). With ``fallback``:
    None when the search ends without a finite value or the check fails (the caller then
    runs the derivative-free search, which is more robust on a criterion with flat
    stretches or a nearly singular correlation); without (``optimizer="gradient"``): the
    result, with the check's warning. ``obj.warm`` (a previous fit's optimum as the
    start) starts from curvature."""
    return quasi_newton_search(obj, x0, lower, check_conv, stage, gtol=GRADIENT_GTOL,
                               gtol_rel=GRADIENT_GTOL_REL, fallback=fallback,
                               warm=bool(getattr(obj, "warm", False)))


def _checked(obj, x, fval, lower, check_conv):
    """The convergence check and Newton polish (``(x, fval, None)`` without the check)."""
    if not check_conv:
        return x, fval, None
    if getattr(obj, "cheap_gradient", False):
        return _checked_gradient(obj, x, fval, lower)
    grad_tol = 0.0 if x.size <= POLISH_MAX_PARAMS else None
    kw = {} if grad_tol is None else {"grad_tol": grad_tol}
    return polished_and_checked(obj, x, fval, lower, stacklevel=5, **kw)


def _checked_gradient(obj, x, fval, lower):
    """:func:`_checked` from the criterion's exact gradient, where it costs about a value
    (``obj.cheap_gradient``): the Hessian by forward differences of the gradient (``k``
    evaluations), one Newton step from it, kept if it lowers the criterion, and
    :func:`~mixedmodels.diagnostics.convergence.check_convergence_gradient` with that
    Hessian's inverse -- ``k + 2`` evaluations of value and gradient, where the
    finite-difference check takes ``2k + k(k - 1)/2 + 1`` values and as many again at
    the polished point."""
    fg = obj.value_and_gradient
    f, g = fg(x)
    if not np.isfinite(f):
        return polished_and_checked(obj, x, fval, lower, stacklevel=6)
    k = x.size
    h = FD_STEP * np.maximum(np.abs(x), 1.0)
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        H[:, i] = (fg(x + e)[1] - g) / h[i]
    H = 0.5 * (H + H.T)
    # parameters on a bound with the gradient pushing outward stay there
    free = ~(np.isfinite(lower) & (x - lower <= h) & (g > 0))
    hess_inv = None
    try:
        step = np.linalg.solve(H[np.ix_(free, free)], g[free])
        if free.all():
            np.linalg.cholesky(H)
            hess_inv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        step = None
    if step is not None:
        trial = x.copy()
        trial[free] = np.maximum(x[free] - step, lower[free])
        f1, g1 = fg(trial)
        if f1 < f:
            x, f, g = trial, f1, g1
    conv = check_convergence_gradient(fg, x, lower, g, hess_inv)
    if not conv.converged:
        emit_warning(conv.message, ConvergenceWarning, stacklevel=6)
    return x, f, conv


def _kinked_search(fun, obj, x0, lower, settings, kinks):
    """:func:`~.kink_search.kinked_range_search` over the range (the first correlation
    parameter; with a nugget, the second is its logit) finished by :func:`_walk_kinks`;
    None where no scan point has a finite criterion."""
    i = x0.size - obj.residual.n_par
    nugget = i + 1 if obj.residual.n_cor == 2 else None
    def walk(opt):
        return _walk_kinks(fun, opt, lower, settings, kinks, i)

    return kinked_range_search(
        fun, x0, lower, i, kinks, settings,
        lambda opt: settle_on_kink(fun, opt, lower, i, kinks, settings, walk), nugget)


def _walk_kinks(fun, opt, lower, settings, kinks: np.ndarray, i: int):
    """Finish a fit of a criterion that is smooth in every parameter but ``x[i]``, and in
    ``x[i]`` only between the known ``kinks`` (a linear spatial correlation's range: its
    slope jumps where the range passes a distance).

    A quadratic model cannot settle on a kink -- where such a criterion's minimum often
    lies -- and creeps. So the search moves to the smooth pieces: BOBYQA with ``x[i]``
    bounded by the neighbouring kinks. A piece's minimum inside it is a smooth local
    minimum: done. One at the kink shared with a piece already searched, from both
    sides, is a kink minimum: done. One at its other end: search the next piece over (at
    most :data:`KINK_MAX_ROUNDS` pieces).
    """
    best, n_evals = opt, opt.n_evals
    upper = np.full(lower.shape, np.inf)
    done: set[int] = set()
    x_i = best.x[i]
    j = int(np.searchsorted(kinks, x_i))
    # at (within rounding of) kink j: both pieces next to it; else the piece holding x_i
    near = [k for k in (j - 1, j) if 0 <= k < kinks.size
            and abs(kinks[k] - x_i) <= KINK_TOL * max(1.0, abs(x_i))]
    todo = [near[0], near[0] + 1] if near else [j]
    for _ in range(KINK_MAX_ROUNDS):
        todo = [p for p in todo if p not in done and 0 <= p <= kinks.size]
        if not todo:
            break
        piece = todo.pop(0)
        done.add(piece)
        lo = kinks[piece - 1] if piece > 0 else lower[i]
        hi = kinks[piece] if piece < kinks.size else np.inf
        lo = max(lo, lower[i])
        trial = _piece_minimum(fun, best.x, lower, upper, i, lo, hi, settings)
        n_evals += trial.n_evals
        if trial.fval < best.fval:
            best = trial
        at_lo = np.isfinite(lo) and trial.x[i] - lo <= KINK_TOL * max(1.0, abs(lo))
        at_hi = np.isfinite(hi) and hi - trial.x[i] <= KINK_TOL * max(1.0, abs(hi))
        if trial.fval <= best.fval and (at_lo or at_hi):
            # at an end: the piece beyond it (unless already searched: a kink minimum)
            todo.append(piece - 1 if at_lo else piece + 1)
    return replace(best, x0=opt.x0, n_evals=n_evals)


def _settle_on_kinks(fun, opt, lower, settings, kinks, i):
    """:func:`_walk_kinks` to the nearest piecewise minimum (unless BOBYQA ended inside
    a piece, :func:`_inside_piece`: a smooth minimum already), then a Nelder-Mead probe
    from it -- the kinks make the criterion's fine structure multimodal, and Nelder-Mead,
    which models no curvature, walks over them -- and another walk from wherever the probe
    gained more than :data:`KINK_GAIN_TOL` (at most :data:`KINK_MAX_ROUNDS` probes). A
    probe starts from a simplex of :data:`PROBE_STEP` and stops on :data:`PROBE_XTOL_REL`:
    it finds a better piece, the walk that piece's minimum."""
    n_evals = opt.n_evals
    inside = _inside_piece(opt.x[i], kinks, lower[i])
    best = opt if inside else _walk_kinks(fun, opt, lower, settings, kinks, i)
    for _ in range(KINK_MAX_ROUNDS):
        probe = minimize(fun, best.x, lower, optimizer="nelder_mead",
                         settings={**settings, "xtol_rel": PROBE_XTOL_REL,
                                   "initial_step": np.full(best.x.size, PROBE_STEP)})
        n_evals = best.n_evals + probe.n_evals
        if not probe.fval < best.fval - KINK_GAIN_TOL:
            # a small gain is still kept (a range running off to its limit, where the
            # correlation vanishes and the criterion turns flat)
            best = replace(probe if probe.fval < best.fval else best, n_evals=n_evals)
            break
        best = _walk_kinks(fun, replace(probe, n_evals=n_evals), lower, settings, kinks, i)
    return replace(best, x0=opt.x0)


def _inside_piece(x_i: float, kinks: np.ndarray, lower_i: float) -> bool:
    """Whether ``x_i`` lies inside its smooth piece by the margin :data:`INSIDE_PIECE`."""
    j = int(np.searchsorted(kinks, x_i))
    lo = max(kinks[j - 1], lower_i) if j > 0 else lower_i
    hi = kinks[j] if j < kinks.size else np.inf
    margin = INSIDE_PIECE * (hi - lo) if np.isfinite(hi - lo) else INSIDE_PIECE
    return bool(min(x_i - lo, hi - x_i) > margin)


def _piece_minimum(fun, x, lower, upper, i, lo, hi, settings):
    """BOBYQA from ``x`` with ``lo <= x[i] <= hi``. A bounded piece is searched with
    ``x[i]`` mapped onto [0, 1]: BOBYQA's trust region is one radius for every
    coordinate, at most half the narrowest box side, so a narrow piece (kinks 1e-3
    apart) would otherwise freeze the other parameters."""
    lo2, up2 = lower.copy(), upper.copy()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo2[i], up2[i] = lo, hi
        return minimize(fun, np.clip(x, lo2, up2), lo2, up2, optimizer="bobyqa",
                        settings=settings)
    width = hi - lo

    def to_x(z):
        out = np.array(z, dtype=float)
        out[i] = lo + out[i] * width
        return out

    lo2[i], up2[i] = 0.0, 1.0
    z0 = np.array(x, dtype=float)
    z0[i] = (x[i] - lo) / width
    # a fresh trust region across the piece and PIECE_STEP on the others: near a kink the
    # first steps gain little, and the deviance tolerance alone would stop the search
    step = np.full(x.size, PIECE_STEP)
    step[i] = 0.25
    opt = minimize(lambda z: fun(to_x(z)), np.clip(z0, lo2, up2), lo2, up2,
                   optimizer="bobyqa",
                   settings={**settings, "ftol_abs": PIECE_FTOL, "initial_step": step})
    # the piece's ends exactly (the kinks themselves, not lo + 1.0 * width)
    xs = to_x(opt.x)
    xs[i] = lo if opt.x[i] <= 0.0 else (hi if opt.x[i] >= 1.0 else xs[i])
    return replace(opt, x=xs)


def _changed(old: np.ndarray, new: np.ndarray) -> float:
    """nlme's convergence measure: largest ``|old - new| / |new|`` (``/1`` at zero)."""
    den = np.where(new == 0.0, 1.0, np.abs(new))
    return float(np.max(np.abs(old - new) / den)) if new.size else 0.0


def _with_fitted_loop(bound: BoundResidual, fit_once, fitted_of):
    """nlme's outer iterations for a ``fitted(.)`` covariate (module docstring)."""
    if not bound.needs_fitted:
        return fit_once(bound, None)
    # nlme starts from the fit at the initial variance parameters (the covariate unused)
    result = fit_once(bound.with_fitted(np.ones(bound.n)), None, initial=True)
    previous = None
    for _ in range(FITTED_MAX_ITER):
        bound = bound.with_fitted(fitted_of(result))
        start = None if previous is None else np.concatenate([result.theta, result.phi])
        result = fit_once(bound, start)
        current = np.concatenate([result.beta, result.phi])
        if previous is not None and _changed(previous, current) <= FITTED_TOL:
            return result
        previous = current
    emit_warning(f"the fitted(.) covariate of the variance function did not settle in "
                 f"{FITTED_MAX_ITER} iterations (nlme's maxIter)", ConvergenceWarning,
                 stacklevel=4)
    return result


class _RelativeTheta:
    """The criterion in ``[theta / c(phi), phi_cor, s * u_var]``: an exact
    reparameterization for the optimizer.

    ``c(phi)`` is the geometric mean of the variance function's standard-deviation factors
    ``g_j``. ``theta`` is relative to sigma, and a variance function rescales the residual
    standard deviation by ``c(phi)`` as its parameters move (a power of fitted values near
    300 by a factor 20): in ``theta`` the optimum then lies along a curved valley (BOBYQA
    took 3900 evaluations on BodyWeight with a power of fitted values), while ``theta / c``
    -- the random effects relative to the typical residual standard deviation -- barely
    moves. Without a variance function ``c = 1``.

    ``s_k`` (:func:`_variance_spread`) puts every variance parameter on the scale of the
    change it makes in the log standard deviations: a unit step of ``s_k u_k`` spreads them
    by about one unit over the rows, whatever the covariate's units.
    """

    def __init__(self, obj: RSideLMMObjective, x0: np.ndarray):
        self.obj = obj
        self.residual = obj.residual
        self.n_theta = obj.n_theta
        self.lower = obj.lower
        self.spread = _variance_spread(obj.residual, np.asarray(x0, float)[obj.n_theta:])
        self._var = slice(self.n_theta + self.residual.n_cor, None)
        #: the search starts from a previous fit's optimum (a fitted(.) iteration): the
        #: quasi-Newton search then starts from curvature (.rside_quasi_newton)
        self.warm = False

    def scale(self, phi: np.ndarray) -> float:
        res = self.residual
        if res.variance is None:
            return 1.0
        if res.log_w is None:
            # the residual model's own log sd at phi, which the whitening then reuses
            # (np.mean's sum and division without its wrapper)
            log_d = res.log_sd(phi)
            return float(np.exp(float(_add_reduce(log_d)) / log_d.size))
        _, uv = res.split(phi)
        return float(np.exp(np.mean(res.variance.log_sd(uv))))

    def to_model(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=float)
        if self.residual.variance is None:      # c = 1 and no spread: the model's x
            return x
        if self.spread is not None:
            x[self._var] /= self.spread
        x[:self.n_theta] *= self.scale(x[self.n_theta:])
        return x

    def from_model(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=float)
        x[:self.n_theta] /= self.scale(x[self.n_theta:])
        if self.spread is not None:
            x[self._var] *= self.spread
        return x

    def __call__(self, x) -> float:
        return self.obj(self.to_model(x))

    def ran_off(self, x: np.ndarray) -> bool:
        """Some variance parameter other than a constant that may reach 0 (whose limit
        is a model: :mod:`.limit_scale`) is at :data:`~.rside_second_start.RUNOFF` or
        beyond in these coordinates."""
        var = self.residual.variance
        if var is None or not self.residual.n_var:
            return False
        z = np.asarray(x, dtype=float)[self._var]
        return bool(np.any((np.abs(z) >= RUNOFF) & ~var.zero_limits))

    @property
    def has_gradient(self) -> bool:
        return self.obj.has_gradient

    def value_and_gradient(self, x) -> tuple[float, np.ndarray]:
        """Value and gradient in the optimizer's coordinates: with ``theta = t c(phi)``,
        ``d/dt = c d/dtheta`` and ``d/dphi`` gains ``(t . d/dtheta) dc/dphi``, where
        ``dc/du = c mean_j(d log g_j / du)`` for the variance parameters; with
        ``u_k = z_k / s_k``, ``d/dz_k = (d/du_k) / s_k``."""
        model = self.to_model(x)
        f, g = self.obj.value_and_gradient(model)
        if not np.isfinite(f) or self.residual.variance is None:
            return f, g
        k = self.n_theta
        _, uv = self.residual.split(model[k:])
        c = self.scale(model[k:])
        out = g.copy()
        out[:k] = c * g[:k]
        jac = self.residual.variance.log_sd_jacobian(uv)
        dc = c * (_add_reduce(jac, axis=0) / jac.shape[0])   # np.mean's steps, no wrapper
        t = model[:k] / c
        out[self._var] += float(t @ g[:k]) * dc
        if self.spread is not None:
            out[self._var] /= self.spread
        return f, out


def _variance_spread(residual: BoundResidual, phi0: np.ndarray) -> np.ndarray | None:
    """Per variance parameter ``u_k``, the standard deviation over the rows of
    ``d log g_j / d u_k`` at the start, where it exceeds :data:`SPREAD_MIN` (else 1); None
    when none does (or the function has no derivatives).

    The optimizer's first steps are of order one in its coordinates; on ``u_k`` itself
    they spread the log standard deviations by this much. A covariate in large units
    makes that a catastrophe: ``var_exp(~ Time)`` with days up to 64 turned a first step
    of 1 into standard deviations e^64 apart, an infinite criterion in BOBYQA's
    interpolation set, and a fit that stopped 68 log-likelihood units below nlme's. Only
    steps that would spread by more than one unit are shrunk: smaller spreads (a power of
    a covariate within a factor e, a constant at nlme's start) keep the optimizer's own
    first steps, which the other fits were tuned with.
    """
    var = residual.variance
    if var is None or not residual.n_var or not var.has_jacobian:
        return None
    _, uv = residual.split(phi0)
    spread = np.std(var.log_sd_jacobian(uv), axis=0)
    # the log-scale constants stay as they are: limit_scale maps exactly those to exp(u)
    spread[var.zero_limits] = 1.0
    spread = np.where(np.isfinite(spread) & (spread > SPREAD_MIN), spread, 1.0)
    return spread if np.any(spread != 1.0) else None


def fit_rside_lmm(design: Design, spec: ResidualSpec, REML: bool, optimizer: str,
                  optimizer_settings: dict | None, start, check_conv: bool,
                  bound: BoundResidual | None = None) -> RSideLMMResult:
    """Fit an LMM with the residual model ``spec`` (see the module docstring).

    Parameters
    ----------
    design : Design
    spec : ResidualSpec
    REML, optimizer, optimizer_settings, start, check_conv
        As for :func:`~mixedmodels.fit_lmm`; ``start`` may be theta or ``[theta, phi]``.
    bound : BoundResidual, optional
        ``spec`` already bound to rows of the same frame (another fit of the same rows):
        reused with ``design``'s weights instead of binding again.

    Returns
    -------
    RSideLMMResult
    """
    bound0 = bind_residual(spec, design) if bound is None else \
        bound.with_weights(design.weights)
    n_theta = design.n_theta

    def fit_once(bound, warm, initial=False):
        obj = RSideLMMObjective(design, bound, reml=REML)
        if initial:
            x = obj.x0
            sol = obj.solve(x)
            return RSideLMMResult(design, bool(REML), sol, None, None, obj, residual=bound,
                                  phi=x[n_theta:])
        x0 = _start(start if warm is None else warm, n_theta, obj.x0)
        if bound.n_par == 0 and not obj.load(x0[n_theta:]):
            # held structures whose covariance is not positive definite: no theta helps
            raise not_positive_definite(bound, x0[n_theta:])
        n_start = 0
        if start is None and warm is None:
            x0, n_start = spatial_range_start(obj, x0)
        rel = _RelativeTheta(obj, x0)
        rel.warm = warm is not None
        z0 = rel.from_model(x0)

        ends = []

        def first():
            found = _optimize(rel, z0, obj.lower, optimizer, optimizer_settings, check_conv,
                              "lmer", LMM_GRAM_GRADIENT_MIN_PARAMS if obj.gram_gradient
                              else LMM_GRADIENT_MIN_PARAMS)
            ends.append(found[0])
            return found

        def second():
            # from the start where a variance parameter ran off; else (a correlation's
            # non-stationary stop) from where the first search ended
            z = z0 if rel.ran_off(ends[-1]) else ends[-1]
            return _optimize_gradient(rel, z, obj.lower, check_conv, "lmer")

        # a variance function's criterion may have another basin than BOBYQA's first
        # steps find: quasi-Newton from the same start where that fit fails its check;
        # a correlation's, a stop short of the optimum (restart_from_end)
        from_end = restart_from_end(bound)
        use_second = (optimizer == "auto" and check_conv and rel.has_gradient
                      and (bound.n_var > 0 or from_end))
        xr, _, opt, conv = best_of_two_searches(first, second if use_second else None,
                                                None if from_end else rel.ran_off)
        x = rel.to_model(xr)
        if opt.x.size:   # report the optimum as the model's [theta, phi]
            opt = replace(opt, x=x, x0=x0, n_evals=opt.n_evals + n_start)
        sol = obj.solve(x)
        return RSideLMMResult(design, bool(REML), sol, opt, conv, obj, residual=bound,
                              phi=x[n_theta:])

    # one BLAS thread for the small dense work of every evaluation (see _threads)
    with blas_threads(design.q):
        result = _with_fitted_loop(bound0, fit_once, lambda r: r.fitted().to_numpy())
    warn_if_singular(design, result.theta)
    return result


def fit_gls_design(design: Design, spec: ResidualSpec, REML: bool, optimizer: str,
                   optimizer_settings: dict | None, start, check_conv: bool) -> GLSResult:
    """Fit a linear model by generalized least squares with the residual model ``spec``.

    Parameters
    ----------
    design : Design
        Without random effects.
    spec : ResidualSpec
    REML, optimizer, optimizer_settings, start, check_conv
        As for :func:`~mixedmodels.gls`.

    Returns
    -------
    GLSResult
    """
    bound0 = bind_residual(spec, design)
    y = design.y - design.offset
    if bound0.n_par == 0 and start is None and not bound0.needs_fitted:
        # nothing to estimate in the residual model: one weighted least squares
        found = _fit_fixed_residual(design, y, bound0, REML)
        if found is not None:
            return found
    first: list[GLSObjective] = []

    def fit_once(bound, warm, initial=False):
        # fitted(.) iterations change the variance covariate only: the criterion's basis
        # and row data are the first iteration's
        if first:
            obj = first[0].with_residual(bound)
        else:
            obj = GLSObjective(design.X, y, bound, reml=REML,
                               qr=take_rank_factor(design.fixed))
            first.append(obj)
        obj.warm = warm is not None
        if initial:
            x = obj.x0
            return GLSResult(design, bool(REML), obj.solve(x), bound, x, None, None, obj)
        x0 = obj.x0 if warm is None and start is None else \
            _start(warm if warm is not None else start, 0, obj.x0)
        ends = []

        def first_search():
            found = _optimize(obj, x0, obj.lower, optimizer, optimizer_settings,
                              check_conv, "gls")
            ends.append(found[0])
            return found

        def second_search():
            return _optimize_gradient(obj, ends[-1], obj.lower, check_conv, "gls")

        use_second = (optimizer == "auto" and check_conv and restart_from_end(bound)
                      and getattr(obj, "has_gradient", False))
        x, _, opt, conv = best_of_two_searches(first_search,
                                               second_search if use_second else None)
        return GLSResult(design, bool(REML), obj.solve(x), bound, x, opt, conv, obj)

    def fitted_of(result):
        # X beta + offset as an array (the result's fitted() wraps it in a Series)
        return design.X @ result.beta + design.offset

    with blas_threads():
        return _with_fitted_loop(bound0, fit_once, fitted_of)


def _fit_fixed_residual(design: Design, y: np.ndarray, bound: BoundResidual,
                        REML: bool) -> GLSResult | None:
    """:func:`fit_gls_design` of a residual model with no free parameter, in closed form
    (:mod:`~mixedmodels.rside.closed_form`); None where that path does not apply (the
    caller then fits through the criterion, which reports the case as before).

    The result is the one the criterion's path gives -- the same summary of an
    optimization without parameters, no convergence check -- with the criterion itself
    built only when the result is asked for it (``objective_function``)."""
    # the design's QR of X is of no use here (this path factors the whitened [X y]): taken
    # and dropped as the criterion's path takes it, so the design does not keep it
    take_rank_factor(design.fixed)
    n, p = design.X.shape
    # without a correlation the dense work is the QR (level-2 products) of n x (p + 1),
    # a p x p triangular inverse and matrix-vector products: this small, OpenBLAS runs
    # them on the calling thread whatever its thread count (SERIAL_QR_SIZE,
    # SERIAL_TRTRI_MAX), so there is no thread limit to set and restore
    serial = bound.correlation is None and n * (p + 1) <= SERIAL_QR_SIZE \
        and p <= SERIAL_TRTRI_MAX
    limit = nullcontext() if serial else blas_threads()
    with limit:
        sol = fixed_residual_solution(design.X, y, bound, REML)
    if sol is None:
        return None
    x0 = bound.start
    lower = np.empty(0)
    opt = OptSummary("none (no parameters)", x0, lower, lower, x0, sol.objective, 1, {},
                     "none", 0.0)
    return GLSResult(design, bool(REML), sol, bound, x0, opt, None, None)

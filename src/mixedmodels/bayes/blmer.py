"""``blmer``: a linear mixed model with blme's priors, fitted at the posterior mode.

Composes the public steps as :func:`~mixedmodels.lmer` does, with the penalized objective of
:mod:`.lmm_objective` in place of the profiled deviance: parse -> materialize -> resolve the
priors against the design -> minimize (BOBYQA, as blme) -> :class:`.BlmerResult`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .._errors import SingularFitWarning
from .._messages import emit_warning
from .._threads import blas_threads
from ..design import Design, check_lmm_identifiable, materialize
from ..diagnostics import is_singular_theta, singular_message
from ..fitting.common import (
    check_flag,
    check_optimizer,
    collect_warnings,
    package_messages,
    polished_and_checked,
    resolve_reml,
    snap_to_boundary,
)
from ..fitting.trace import check_verbose, log_stage, traced, verbose_output
from ..formula import parse_formula
from ..optim import OPTIMIZERS, minimize
from ..results import FitRecipe
from .lmm_objective import PenalizedLMMObjective
from .model_priors import resolve_priors
from .priors import DEFAULT, Point
from .results import BlmerResult

__all__ = ["BLMER_SETTINGS", "blmer", "fit_blmm"]

#: BOBYQA's tolerances for blmer: tighter than lmer's defaults, because a prior makes the
#: objective flat near a mode that lme4 would put on the boundary, and the fit is finished
#: by a Newton step with the convergence check's Hessian anyway.
BLMER_SETTINGS = {"xtol_abs": 1e-10, "ftol_abs": 1e-12}


def fit_blmm(
    design: Design,
    *,
    REML: bool = True,
    cov_prior=DEFAULT,
    fixef_prior=None,
    resid_prior=None,
    optimizer: str = "bobyqa",
    optimizer_settings: dict | None = None,
    start=None,
    check_conv: bool = True,
) -> BlmerResult:
    """Fit a materialized :class:`~mixedmodels.Design` with blme's priors (see
    :func:`blmer` for the arguments).

    Returns
    -------
    BlmerResult
    """
    REML = check_flag("REML", REML)
    check_conv = check_flag("check_conv", check_conv)
    check_optimizer(optimizer, tuple(OPTIMIZERS), "fit_blmm")
    options = {"REML": REML, "cov_prior": cov_prior, "fixef_prior": fixef_prior,
               "resid_prior": resid_prior, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings, "start": start,
               "check_conv": check_conv}
    with collect_warnings() as caught, blas_threads(design.q):
        priors = resolve_priors(design, cov_prior, fixef_prior, resid_prior)
        obj = PenalizedLMMObjective(design, priors, reml=REML)
        result = _fit(design, obj, optimizer, optimizer_settings, start, check_conv)
    recipe = FitRecipe.make(None, design.spec.formula, None, {}, fit_blmm, options)
    return dataclasses.replace(result, messages=package_messages(caught), recipe=recipe)


def _start(obj: PenalizedLMMObjective, design: Design, start) -> np.ndarray:
    if start is None:
        return obj.start(design.theta0())
    x0 = np.asarray(start, dtype=float).ravel()
    if x0.size == design.n_theta:
        return obj.start(x0)
    if x0.size != obj.lower.size:
        raise ValueError(f"start has {x0.size} values; the model has {design.n_theta} theta "
                         "parameters" + (f" and {design.p} fixed effects (t prior)"
                                         if obj.beta_numeric else ""))
    return x0


class LogDiagonal:
    """Coordinates ``z`` of the optimizer: ``x`` with the Cholesky diagonals listed in
    ``index`` replaced by their logarithms.

    A covariance prior that is infinite at a zero variance (blme's default Wishart, an
    inverse gamma, a gamma with shape > 1) puts the optimum inside the parameter space, but
    BOBYQA on the bounded scale still evaluates at the bound, and the infinite value there
    (or the huge number standing in for it) wrecks its quadratic model: it then stops far
    from the optimum (blme's fits of sleepstudy stop ~4 deviance units high for that
    reason). On the log scale the boundary is out of reach and the objective is smooth.
    """

    def __init__(self, index: np.ndarray, lower: np.ndarray):
        self.index = np.asarray(index, dtype=int)
        self.lower = lower.copy()
        self.lower[self.index] = -np.inf

    def to_x(self, z: np.ndarray) -> np.ndarray:
        x = np.array(z, dtype=float)
        x[self.index] = np.exp(x[self.index])
        return x

    def to_z(self, x: np.ndarray) -> np.ndarray:
        z = np.array(x, dtype=float)
        z[self.index] = np.log(z[self.index])
        return z

    def wrap(self, fun):
        return lambda z: fun(self.to_x(z))


def _fit(design, obj, optimizer, optimizer_settings, start, check_conv) -> BlmerResult:
    lower = obj.lower
    x0 = _start(obj, design, start)
    if not np.isfinite(obj(x0)):
        raise ValueError("the objective is infinite at the start; give start= inside the "
                         "support of the covariance prior (no zero variance)")
    settings = dict(BLMER_SETTINGS)
    settings.update(optimizer_settings or {})
    coords = LogDiagonal(obj.priors.interior_theta(design), lower)
    opt = minimize(traced(coords.wrap(obj), "blmer"), coords.to_z(x0), coords.lower,
                   optimizer=optimizer, settings=settings)
    log_stage("blmer", "REML" if obj.reml else "ML", opt.optimizer, opt.n_evals, opt.seconds,
              opt.fval)
    x, fval = snap_to_boundary(obj, coords.to_x(opt.x), opt.fval, lower)
    conv = None
    if check_conv:
        x, fval, conv = polished_and_checked(obj, x, fval, lower, stacklevel=4,
                                             grad_tol=0.0)
    theta = x[:design.n_theta]
    if is_singular_theta(theta, design.theta_lower()):
        groups = []
        for t, sl in zip(design.terms, design.theta_slices(), strict=True):
            if is_singular_theta(theta[sl], t.structure.lower_bounds()) and t.group not in groups:
                groups.append(t.group)
        emit_warning(singular_message(groups), SingularFitWarning, stacklevel=4)
    sol, pt = obj.solve(x)
    return BlmerResult(design, obj.reml, sol, opt, conv, obj.lmm, priors=obj.priors,
                       likelihood=pt.likelihood, prior_deviance=pt.prior_deviance,
                       penalized=obj)


def blmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    cov_prior=DEFAULT,
    fixef_prior=None,
    resid_prior=None,
    weights=None,
    offset=None,
    optimizer: str = "bobyqa",
    optimizer_settings: dict | None = None,
    start=None,
    check_conv: bool = True,
    verbose: int = 0,
    reml: bool | None = None,
    contrasts: dict | None = None,
) -> BlmerResult:
    """Fit a linear mixed model with priors at its posterior mode (blme's ``blmer``).

    The objective is lmer's REML criterion or deviance plus the priors' deviance
    ``-2 log p`` (:mod:`mixedmodels.bayes.lmm_objective`); its minimum is a maximum a
    posteriori estimate. blme's default covariance prior (a Wishart with ``d + 2.5`` degrees
    of freedom and infinite scale; a gamma(2.5) on the sd of a scalar term) is infinite at
    a zero variance, so the estimate stays off the boundary where lmer's fit is singular --
    the GLMM FAQ's use of blme.

    Parameters
    ----------
    formula : str
        As for :func:`~mixedmodels.lmer`.
    data : pandas.DataFrame
    REML : bool
        REML criterion (default, as blme) or deviance.
    cov_prior : Prior, dict or None
        Covariance prior of every term (default: ``mm.priors.wishart()``), a dict
        ``{group: prior}`` for some grouping factors (others get ``cov_prior["default"]``
        when given, else none), or None for no covariance prior.
    fixef_prior : Prior, optional
        ``mm.priors.normal(...)`` or ``mm.priors.t(...)`` (the t needs ``REML=False``).
    resid_prior : Prior, optional
        ``mm.priors.gamma(...)``, ``mm.priors.invgamma(...)`` (on ``sigma^2`` by default)
        or ``mm.priors.point(value)``, which fixes the residual sd (the GLMM FAQ's
        meta-analysis recipe: ``weights`` the inverse sampling variances,
        ``resid_prior=point(1)``, ``cov_prior=None``).
    weights, offset, optimizer, optimizer_settings, verbose, reml, contrasts
        As for :func:`~mixedmodels.lmer` (optimizers: ``"bobyqa"`` -- blme's --,
        ``"nelder_mead"``, ``"cobyqa"``, ``"lbfgsb"``).
    start : array-like, optional
        Starting theta (with a t prior optionally followed by the fixed effects).
    check_conv : bool
        Check the gradient at the optimum and finish with a Newton step.

    Returns
    -------
    BlmerResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.blmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    >>> round(m.objective, 3), round(float(m.theta[0]), 4)
    (166.141, 0.4106)
    """
    REML = resolve_reml(REML, reml)
    verbose = check_verbose(verbose)
    check_optimizer(optimizer, tuple(OPTIMIZERS), "blmer")
    options = {"REML": REML, "cov_prior": cov_prior, "fixef_prior": fixef_prior,
               "resid_prior": resid_prior, "weights": weights, "offset": offset,
               "optimizer": optimizer, "optimizer_settings": optimizer_settings,
               "start": start, "check_conv": check_flag("check_conv", check_conv),
               "verbose": verbose, "contrasts": contrasts}
    with verbose_output(verbose), collect_warnings() as caught:
        spec = parse_formula(formula)
        design = materialize(spec, data, weights=weights, offset=offset, contrasts=contrasts)
        if not isinstance(resid_prior, Point):
            # a fixed residual sd identifies a model with one observation per level (blme
            # skips lme4's checks then, as here)
            check_lmm_identifiable(design)
        result = fit_blmm(design, REML=REML, cov_prior=cov_prior, fixef_prior=fixef_prior,
                          resid_prior=resid_prior, optimizer=optimizer,
                          optimizer_settings=optimizer_settings, start=start,
                          check_conv=check_conv)
    recipe = FitRecipe.make(blmer, formula, data, options, fit_blmm,
                            result.recipe.design_kwargs)
    return dataclasses.replace(result, messages=package_messages(caught), recipe=recipe)

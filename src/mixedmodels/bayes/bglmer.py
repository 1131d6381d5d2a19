"""``bglmer``: a GLMM with blme's priors, fitted at the posterior mode by glmer's machinery.

The penalized objective (:mod:`.glmm_objective`) goes through glmer's two stages unchanged:
theta by the nAGQ = 0 criterion, then ``[theta, beta]`` by the Laplace (or quadrature)
deviance, in whitened coordinates, with the Hessian of the penalized objective for the
standard errors (as blme, whose ``vcov`` is lme4's from the Hessian of its penalized
deviance function).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .._threads import blas_threads
from ..families import Family, make_family
from ..fitting.common import check_flag, check_optimizer, collect_warnings, package_messages
from ..fitting.glmm import GLMM_OPTIMIZERS, _fit_glmm, glmm_design
from ..fitting.trace import check_verbose, verbose_output
from ..objective.glmm import check_nagq
from ..objective.pirls import PIRLSError
from ..results import FitRecipe
from .glmm_objective import PenalizedGLMMObjective
from .model_priors import resolve_priors
from .priors import DEFAULT
from .results import BglmerResult

__all__ = ["bglmer", "fit_bglmm"]


def fit_bglmm(
    design,
    family: Family,
    *,
    nAGQ: int = 1,
    cov_prior=DEFAULT,
    fixef_prior=None,
    start: dict | None = None,
    optimizer: str = "bobyqa",
    optimizer_settings: dict | None = None,
    calc_derivs: bool = True,
    check_conv: bool = True,
) -> BglmerResult:
    """Fit a materialized design with blme's priors (see :func:`bglmer`).

    Returns
    -------
    BglmerResult
    """
    check_optimizer(optimizer, GLMM_OPTIMIZERS, "fit_bglmm")
    nAGQ = check_nagq(design, nAGQ)
    options = {"family": family, "nAGQ": nAGQ, "cov_prior": cov_prior,
               "fixef_prior": fixef_prior, "start": start, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings,
               "calc_derivs": check_flag("calc_derivs", calc_derivs),
               "check_conv": check_flag("check_conv", check_conv)}
    with collect_warnings() as caught, blas_threads(design.q):
        priors = resolve_priors(design, cov_prior, fixef_prior, glmm=True)
        obj = PenalizedGLMMObjective(design, family, priors, nAGQ)
        fit = _fit_glmm(design, family, nAGQ, False, start, optimizer, optimizer_settings,
                        calc_derivs, check_conv, obj=obj)
    sol = fit.solution
    prior_dev = obj.penalty(sol.theta, sol.beta)
    fields = {f.name: getattr(fit, f.name) for f in dataclasses.fields(fit)}
    result = BglmerResult(**fields, priors=priors, likelihood=sol.objective - prior_dev,
                          prior_deviance=prior_dev, penalized=obj)
    recipe = FitRecipe.make(None, design.spec.formula, None, {}, fit_bglmm, options)
    return dataclasses.replace(result, messages=package_messages(caught), recipe=recipe)


def bglmer(
    formula: str,
    data: pd.DataFrame,
    family="binomial",
    *,
    link: str | None = None,
    nAGQ: int = 1,
    cov_prior=DEFAULT,
    fixef_prior=None,
    weights=None,
    offset=None,
    start: dict | None = None,
    optimizer: str = "bobyqa",
    optimizer_settings: dict | None = None,
    calc_derivs: bool = True,
    check_conv: bool = True,
    verbose: int = 0,
    contrasts: dict | None = None,
) -> BglmerResult:
    """Fit a GLMM with priors at its posterior mode (blme's ``bglmer``).

    The objective is glmer's Laplace (or quadrature) deviance plus the priors' deviance. The
    default covariance prior (blme's Wishart, a gamma(2.5) on the sd of a scalar term) keeps
    variances off zero; a normal prior on the fixed effects (``fixef_prior=mm.priors.normal()``,
    sd 10 for the intercept and 2.5 for the others, blme's default) keeps them finite under
    complete separation -- the GLMM FAQ's two uses.

    Parameters
    ----------
    formula : str
        As for :func:`~mixedmodels.glmer`.
    data : pandas.DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ... as for :func:`~mixedmodels.glmer`.
    link : str, optional
    nAGQ : int
        1: Laplace approximation (default); 0: fast mode; up to 25: quadrature.
    weights, offset, start, optimizer, optimizer_settings, calc_derivs, check_conv
        As for :func:`~mixedmodels.glmer`.
    verbose : int
    contrasts : dict, optional
    cov_prior : Prior, dict or None
        As for :func:`~mixedmodels.blmer` (no ``common_scale``: a GLMM has no residual
        scale).
    fixef_prior : Prior, optional
        ``mm.priors.normal(...)`` or ``mm.priors.t(...)``.

    Returns
    -------
    BglmerResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.bglmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...               mm.datasets.load("cbpp"), family="binomial",
    ...               fixef_prior=mm.priors.normal())
    >>> round(m.objective, 2)
    203.41
    """
    verbose = check_verbose(verbose)
    check_optimizer(optimizer, GLMM_OPTIMIZERS, "bglmer")
    options = {"family": family, "link": link, "nAGQ": nAGQ, "cov_prior": cov_prior,
               "fixef_prior": fixef_prior, "weights": weights, "offset": offset,
               "start": start, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings,
               "calc_derivs": check_flag("calc_derivs", calc_derivs),
               "check_conv": check_flag("check_conv", check_conv), "verbose": verbose,
               "contrasts": contrasts}
    with verbose_output(verbose), collect_warnings() as caught:
        fam = make_family(family, link)
        design = glmm_design(formula, data, fam, weights=weights, offset=offset,
                             contrasts=contrasts)
        try:
            result = fit_bglmm(design, fam, nAGQ=nAGQ, cov_prior=cov_prior,
                               fixef_prior=fixef_prior, start=start, optimizer=optimizer,
                               optimizer_settings=optimizer_settings,
                               calc_derivs=calc_derivs, check_conv=check_conv)
        except PIRLSError as exc:
            raise PIRLSError(f"bglmer({formula!r}, family={fam.name}({fam.link.name})): "
                             f"{exc}") from None
    recipe = FitRecipe.make(bglmer, formula, data, options, fit_bglmm,
                            result.recipe.design_kwargs)
    return dataclasses.replace(result, messages=package_messages(caught), recipe=recipe)

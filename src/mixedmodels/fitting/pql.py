r"""``glmm_pql``: penalized quasi-likelihood, as ``MASS::glmmPQL``.

PQL linearizes the GLMM around the current linear predictor and fits the linear mixed model
of the working response (Breslow & Clayton 1993; the GLMM FAQ's "for comparison" method):

1. fit the GLM without random effects; working response
   ``z = eta - offset + (y - mu) / mu'(eta)`` and working weights
   ``w = prior mu'(eta)^2 / V(mu)``;
2. fit by maximum likelihood the LMM ``z ~ fixed + (random)`` with residual variance
   ``sigma^2 / w`` (glmmPQL's ``weights = varFixed(~ 1/w)``) and the ``correlation`` given;
3. ``eta = fitted + offset`` (random effects included); stop when
   ``sum (eta - eta_old)^2 < 1e-6 sum eta^2``, else recompute ``z`` and ``w`` and go to 2
   (at most ``niter`` fits).

sigma is estimated, not fixed at 1 (glmmPQL's quasi-likelihood scale). PQL needs no
quadrature and accepts any residual correlation (it only needs a linear mixed model), which
makes it flexible; but it is biased when the random-effect variances are large or the means
small (binary data, small counts) and has no likelihood (glmmPQL reports ``logLik = NA``):
use it to compare with, and prefer ``glmer``/``glmmtmb`` (Laplace, quadrature) for inference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .._errors import ConvergenceWarning
from .._messages import emit_warning
from .._threads import blas_threads
from ..families import make_family
from ..inference.glm import fit_glm
from ..objective.pirls import prior_weights
from ..results.recipe import FitRecipe
from ..rside.residual import ResidualSpec, bind_residual, residual_columns
from ..rside.results import PQLResult
from .common import collect_warnings, package_messages
from .glmm import glmm_design
from .lmm import fit_lmm
from .pql_warm import warm_settings
from .rside import fit_rside_lmm

__all__ = ["PQL_TOL", "glmm_pql"]

#: glmmPQL's convergence test on the linear predictor: ``sum d^2 < PQL_TOL sum eta^2``.
PQL_TOL = 1e-6


def glmm_pql(formula: str, data: pd.DataFrame, family="binomial", *, link: str | None = None,
             correlation=None, variance=None, niter: int = 10, weights=None, offset=None,
             contrasts: dict | None = None) -> PQLResult:
    """Fit a GLMM by penalized quasi-likelihood (``MASS::glmmPQL``; module docstring).

    Parameters
    ----------
    formula : str
        ``"response ~ fixed + (expr | group)"`` with the response forms of
        :func:`~mixedmodels.glmer`.
    data : pandas.DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ... as for ``glmer``.
    link : str, optional
    correlation : correlation structure, optional
        A residual correlation of the working LMM (glmmPQL's ``correlation=``), e.g.
        ``mm.cor_exp(form="~ x + y | site")``.
    variance : variance function, optional
        Multiplies the working-weight variance function.
    niter : int
        Largest number of LMM fits (glmmPQL's ``niter``).
    weights, offset : str or array-like, optional
        Prior weights (binomial proportions: the trials) and offset.
    contrasts : dict, optional

    Returns
    -------
    PQLResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> cbpp = mm.datasets.load("cbpp")
    >>> m = mm.glmm_pql("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    >>> round(float(m.fixef.iloc[0]), 4)
    -1.3274
    """
    if isinstance(niter, bool) or not isinstance(niter, int | np.integer) or niter < 1:
        raise ValueError(f"niter must be a whole number >= 1, not {niter!r}")
    fam = make_family(family, link)
    residual = ResidualSpec.make(correlation, variance)
    options = {"family": family, "link": link, "correlation": correlation,
               "variance": variance, "niter": niter, "weights": weights, "offset": offset,
               "contrasts": contrasts}
    with collect_warnings() as caught:
        design = glmm_design(formula, data, fam, weights=weights, offset=offset,
                             contrasts=contrasts, extra_columns=residual_columns(residual))
        with blas_threads(design.q):
            result, iterations, converged = _iterate(design, fam, residual, niter)
    recipe = FitRecipe.make(glmm_pql, formula, data, options, _iterate_design,
                            {"family": fam, "residual": residual, "niter": niter})
    return PQLResult(design, fam, result, iterations, converged,
                     package_messages(caught), recipe)


def _iterate_design(design, *, family, residual, niter):
    """The design-level fitter of a :class:`PQLResult`'s recipe."""
    result, iterations, converged = _iterate(design, family, residual, niter)
    return PQLResult(design, family, result, iterations, converged, (), None)


def _working_fit(lmm_design, residual, start, bound, settings=None):
    """ML fit of the working LMM; with a residual structure, bound to the rows once and
    reused with each iteration's weights (every iteration has the same rows).
    ``settings``: the optimizer's (a warm start's first step, :mod:`.pql_warm`)."""
    if residual.empty:
        return fit_lmm(lmm_design, REML=False, start=start), None
    if bound is None:
        bound = bind_residual(residual, lmm_design)
    with collect_warnings() as caught:
        result = fit_rside_lmm(lmm_design, residual, False, "auto", settings, start, True,
                               bound=bound)
    options = {"REML": False, "optimizer": "auto", "optimizer_settings": settings,
               "start": start, "check_conv": True, "correlation": residual.correlation,
               "variance": residual.variance, "sigma": residual.sigma}
    recipe = FitRecipe.make(None, lmm_design.spec.formula, None, {}, fit_lmm, options)
    return dataclasses.replace(result, messages=package_messages(caught),
                               recipe=recipe), bound


def _iterate(design, fam, residual, niter):
    link = fam.link
    prior = prior_weights(design)
    g = fit_glm(design, fam)
    eta = g.eta
    me = link.mu_eta(eta)
    z = eta - design.offset + (design.y - g.mu) / me
    w = prior * me * me / fam.variance(g.mu)
    zero = np.zeros(design.nobs)
    start = None
    result = None
    converged = False
    bound = None
    settings = None
    for i in range(niter):
        lmm_design = dataclasses.replace(design, y=z, weights=w, offset=zero, extra={})
        result, bound = _working_fit(lmm_design, residual, start, bound, settings)
        if not residual.empty:
            start = np.concatenate([result.theta, result.phi])
            # the next fit starts here: a first step of this fit's move (.pql_warm)
            settings = warm_settings(result, bound)
        else:
            start = result.theta
        eta_old = eta
        eta = result.fitted().to_numpy() + design.offset
        if np.sum((eta - eta_old) ** 2) < PQL_TOL * np.sum(eta ** 2):
            converged = True
            return result, i + 1, converged
        mu = link.linkinv(eta)
        me = link.mu_eta(eta)
        z = eta + (design.y - mu) / me - design.offset
        w = prior * me * me / fam.variance(mu)
    emit_warning(f"glmm_pql: the linear predictor still changed after niter={niter} "
                 "iterations (glmmPQL stops there too); increase niter", ConvergenceWarning,
                 stacklevel=3)
    return result, niter, converged

r"""Standard errors of the variance components by the delta method (the GLMM FAQ's recipe).

The maximum-likelihood deviance ``d(omega)`` on the sd/cor scale (lme4's ``devfun2``:
standard deviations, correlations, sigma; beta profiled out) has at the ML estimates the
Hessian ``H``; ``2 H^{-1}`` estimates the covariance of ``omega`` and its diagonal gives the
standard errors. As in the FAQ, REML fits are refitted by ML first.

The FAQ's caution applies: the sampling distributions of standard deviations (bounded by 0)
and correlations (bounded by +-1) are often strongly skewed, so a symmetric
``estimate +- 2 SE`` describes their uncertainty poorly. Prefer profile or bootstrap
intervals (``confint(method="profile" | "boot")``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._errors import MixedModelsWarning
from .._messages import user_stacklevel
from ..objective import LMMObjective
from .numderiv import hessian
from .simulate import refit_ml
from .varpar import SdCorMap, factor_summary

__all__ = ["VARCORR_SE_NOTE", "VarCorrSEWarning", "varcorr_se"]

_LOG_2PI = float(np.log(2.0 * np.pi))

VARCORR_SE_NOTE = (
    "standard errors of variance components characterize their uncertainty poorly: the "
    "sampling distributions of standard deviations and correlations are often skewed; "
    "prefer confint(method='profile') or confint(method='boot')")
#: Eigenvalues of the Hessian below this (relative to the largest) make it singular.
HESSIAN_RCOND = 1e-10


class VarCorrSEWarning(MixedModelsWarning):
    """Caution about Wald standard errors of variance components (GLMM FAQ)."""


def sdcor_deviance(m):
    """ML deviance of the LMM ``m`` as a function of the sd/cor vector (lme4's devfun2)."""
    obj = LMMObjective(m.design, reml=False)
    smap = SdCorMap(m.design, has_sigma=True)
    n = m.design.nobs

    def dev(pars):
        theta, sigma = smap.to_theta(pars)
        sol = factor_summary(obj, theta)
        if sol is None or sigma <= 0:
            return np.inf
        s2 = sigma * sigma
        return float(sol.logdet_Z - obj.log_det_w + sol.pwrss / s2
                     + n * (_LOG_2PI + np.log(s2)))

    return dev, smap


def varcorr_se(m, warn: bool = True) -> pd.DataFrame:
    """Estimates and delta-method standard errors of the sd/cor parameters and sigma.

    Returns
    -------
    DataFrame
        Index: lme4's parameter names (``sd_(Intercept)|Subject``, ...); columns
        ``estimate`` (ML) and ``se``. Parameters on a bound (a zero sd, a correlation of
        +-1) get NaN: the Hessian there is not an information matrix. For GLMMs (families
        without a dispersion parameter) the Hessian covers the fixed effects too.
    """
    if warn:
        warnings.warn(VARCORR_SE_NOTE, VarCorrSEWarning, stacklevel=user_stacklevel())
    if getattr(m, "family", None) is not None:
        return _glmm_varcorr_se(m)
    ml = refit_ml(m)
    dev, smap = sdcor_deviance(ml)
    est = smap.from_theta(ml.theta, ml.sigma)
    return _delta_se(dev, est, smap.lower, smap.upper, list(smap.names))


def _glmm_varcorr_se(m) -> pd.DataFrame:
    """GLMMs: the Hessian is over all parameters (sd/cor and fixed effects), whose deviance
    is the fit's Laplace / quadrature one (lme4's devfun2 for glmer fits); the rows of the
    variance parameters are reported."""
    from .profile_glmm import _GLMMProfiler

    pr = _GLMMProfiler(m)
    out = _delta_se(pr.dev, pr.opt, pr.lower, pr.upper,
                    list(pr.map.names) + list(m.fixef.index))
    return out.iloc[:pr.k]


def _delta_se(dev, est, lower, upper, names) -> pd.DataFrame:
    """``sqrt(diag(2 H^{-1}))`` of ``dev`` at ``est`` over the parameters not on a bound."""
    on_bound = np.isclose(est, lower) | np.isclose(est, upper)
    free = ~on_bound
    se = np.full(est.size, np.nan)
    if free.any():
        def dev_free(x):
            pars = est.copy()
            pars[free] = x
            return dev(pars)

        H = hessian(dev_free, est[free], steps="curvature")
        evals, evecs = np.linalg.eigh(H)
        if evals.min() > HESSIAN_RCOND * evals.max():
            cov = 2.0 * (evecs / evals) @ evecs.T
            se[free] = np.sqrt(np.diag(cov))
    return pd.DataFrame({"estimate": est, "se": se}, index=names)

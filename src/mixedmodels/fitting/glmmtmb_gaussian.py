r"""Starting values of a Gaussian model of glmmTMB's class from the profiled LMM deviance.

For a Gaussian response with identity link, no zero-inflation, no prior weights and a
constant dispersion (``dispformula = ~1``, or ``~0``: sigma fixed), the Laplace objective
of :mod:`mixedmodels.objective.laplace` *is* the exact (restricted) deviance, which the
LMM machinery evaluates with ``beta`` (and, for ``~1``, ``sigma``) profiled out:

.. math::

    d(\theta, \sigma) = \log|L_Z|^2 + r^2(\theta)/\sigma^2 + n\log(2\pi\sigma^2)
        \;[+ \log|R_X|^2 - p\log(2\pi\sigma^2)]_{REML},

with ``theta`` relative to sigma (lme4's scale). Minimizing over the few covariance
parameters alone is far cheaper than the joint quasi-Newton search of the general engine;
the general engine then starts at this optimum and only computes its exact gradient and
Hessian (glmmTMB's standard errors) and polishes with Newton steps. The objective, the
estimates and the standard errors are those of the general engine.
"""

from __future__ import annotations

import numpy as np

from ..inference.varpar import factor_summary
from ..objective import LMMObjective
from ..optim import minimize
from .lmm import leave_bound_saddle, optimize_lmm

__all__ = ["gaussian_profiled_start"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _eligible(design, fam, comps, weights) -> bool:
    if fam.name != "gaussian" or getattr(fam.link, "name", "") != "identity":
        return False
    if weights is not None or "zi" in comps or not comps["cond"].terms:
        return False
    if any(t.structure.keyword == "equalto" for t in comps["cond"].terms):
        # a known covariance on the absolute scale: lmer's profiled deviance has every
        # covariance relative to sigma^2, which would rescale it with sigma
        return False
    disp = comps.get("disp")
    constant = disp is None or (not disp.terms and disp.p == 1 and not np.any(disp.offset)
                                and bool(np.all(disp.X == 1.0)))
    return bool(constant)


def _absolute(design, theta_rel: np.ndarray, sigma: float) -> np.ndarray:
    """Relative theta (lme4's scale) as the absolute theta of the same covariances."""
    out = []
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        s = t.structure
        nat = s.parameters(theta_rel[sl])
        out.append(s.theta_from_parameters(np.where(s.parameter_scales(), nat * sigma, nat)))
    return np.concatenate(out)


def _relative(design, theta_abs: np.ndarray, sigma: float) -> np.ndarray:
    return _absolute(design, theta_abs, 1.0 / sigma)


def _fixed_sigma_deviance(obj: LMMObjective, sigma: float, reml: bool):
    n, p = obj.n, obj.p
    s2 = sigma * sigma

    def dev(theta: np.ndarray) -> float:
        try:
            sol = factor_summary(obj, theta)
        except np.linalg.LinAlgError:
            return np.inf
        if sol is None:
            return np.inf
        d = sol.logdet_Z + sol.pwrss / s2 + n * (_LOG_2PI + np.log(s2))
        if reml:
            d += sol.logdet_X - p * (_LOG_2PI + np.log(s2))
        return float(d)

    return dev


def gaussian_profiled_start(design, fam, comps, *, reml: bool, weights,
                            fixed_log_variance: float | None) -> dict | None:
    """Blocks of the parameter layout at the profiled optimum (see the module docstring),
    or None when the model is not of that kind.

    Parameters
    ----------
    design : Design
    fam : ResponseFamily
    comps : dict
        The design's components.
    reml : bool
    weights : ndarray or None
        Prior weights (the shortcut is for unweighted models: glmmTMB's weights multiply
        the log-likelihood, which the profiled deviance does not express).
    fixed_log_variance : float or None
        ``log sigma^2`` held fixed (``dispformula = ~0``), else None.

    Returns
    -------
    dict or None
        ``{"theta.cond": absolute theta, "beta.cond": beta, "beta.disp": [log sigma^2]}``
        (no ``beta.cond`` for REML, no ``beta.disp`` when sigma is fixed).
    """
    if not _eligible(design, fam, comps, weights):
        return None
    obj = LMMObjective(design, reml=reml)
    # lmer's own search (its analytic gradient where the factorization has one): on a
    # correlation heading for 1 (cs_gauss_ml's fixture) BOBYQA spent 679 evaluations,
    # 0.1 s, and stopped 1.5e-4 above the optimum the gradient path reaches in 42 (0.03 s).
    # The projected BFGS of small models, not lmer's choice for structured terms (it
    # may stop a flat stretch ~1e-6 short, which the engine's Newton polish finishes
    # here), needs fewer evaluations and no scipy line search: ou_gauss_ml 44 -> 31,
    # rr_gauss_ml 22 -> 15 evaluations
    sol, opt, _ = optimize_lmm(obj, check_conv=False, projected_bfgs=True)
    # a variance on its bound may be a saddle of the profiled deviance, from which the
    # general engine's quasi-Newton method cannot leave (F is even in that parameter)
    theta, _ = leave_bound_saddle(obj, np.asarray(sol.theta, dtype=float), opt.fval, opt)
    sol = obj.solve(theta)
    sigma = sol.sigma
    if fixed_log_variance is not None:
        sigma_fixed = float(np.exp(0.5 * fixed_log_variance))
        start = _relative(design, _absolute(design, theta, sigma), sigma_fixed)
        dev = _fixed_sigma_deviance(obj, sigma_fixed, reml)
        opt = minimize(dev, start, obj.lower)
        theta = np.asarray(opt.x, dtype=float)
        sol = factor_summary(obj, theta)
        if sol is None:
            return None
        sigma, beta = sigma_fixed, sol.beta
    else:
        beta = sol.beta
    out = {"theta.cond": _absolute(design, theta, sigma)}
    if not reml:
        out["beta.cond"] = np.asarray(beta, dtype=float)
    if fixed_log_variance is None and "disp" in comps:
        per_sd = 1.0 if getattr(fam, "dispersion", "variance") == "sd" else 2.0
        out["beta.disp"] = np.array([per_sd * np.log(sigma)])
    return out

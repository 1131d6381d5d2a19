r"""The prior deviance of :mod:`.model_priors` with its gradient in ``(theta, beta, sigma)``,
for the sampler.

Each term's covariance prior is differentiated with respect to its factor ``Lambda`` and
chained with the structure's ``d Lambda / d theta_j``. With ``Sigma = Lambda Lambda'``:

.. math::

    \partial_\Lambda \log|\Lambda_{jj}| = E_{jj}/\Lambda_{jj}, \qquad
    \partial_\Lambda \operatorname{tr}(S^{-1}\Sigma) = 2 S^{-1}\Lambda, \qquad
    \partial_\Lambda \operatorname{tr}(S \Sigma^{-1}) = -2\,\Sigma^{-1} S \Sigma^{-1}\Lambda,

and for a scalar term's gamma / inverse gamma ``d|lambda|^k / d lambda = k |lambda|^{k-1}
sign(lambda)``. The fixed-effect priors: ``d beta'C^{-1}beta = 2 C^{-1} beta``; the t prior
``d (nu + d) log(1 + delta/nu) = (nu + d)/(nu + delta) d delta``. The rarely used
``posterior_scale="sqrt"`` Wishart forms (a matrix square root) are differentiated by
central differences in Lambda's entries (cheap: a d x d matrix).
"""

from __future__ import annotations

import math

import numpy as np

from .model_priors import ModelPriors
from .priors import Gamma, InvWishart, Normal, Point, T, Wishart

__all__ = ["prior_deviance_gradient"]

#: Step of the central differences of the "sqrt" Wishart forms.
SQRT_FD_STEP = 1e-6


def _exp_grad(prior, lam: np.ndarray) -> np.ndarray:
    """``d e / d Lambda`` of a covariance prior's exponential term."""
    if isinstance(prior, Wishart | InvWishart) and not prior.finite_scale:
        return np.zeros_like(lam)
    if isinstance(prior, Wishart) and prior.posterior_scale == "cov":
        Sinv = prior._R_inv @ prior._R_inv.T
        return 2.0 * Sinv @ lam
    if isinstance(prior, InvWishart) and prior.posterior_scale == "cov":
        S = prior._R.T @ prior._R
        Sig_inv = np.linalg.inv(lam @ lam.T)
        return -2.0 * Sig_inv @ S @ Sig_inv @ lam
    # the sqrt forms: central differences over the lower triangle
    out = np.zeros_like(lam)
    for i, j in zip(*np.tril_indices(lam.shape[0]), strict=True):
        h = SQRT_FD_STEP * max(1.0, abs(lam[i, j]))
        up, dn = lam.copy(), lam.copy()
        up[i, j] += h
        dn[i, j] -= h
        out[i, j] = (prior.exponential(up) - prior.exponential(dn)) / (2.0 * h)
    return out


def _poly_grad(prior, lam: np.ndarray) -> np.ndarray:
    d = lam.shape[0]
    coef = -2.0 * (prior.df - d - 1.0) if isinstance(prior, Wishart) else \
        2.0 * (prior.df + d + 1.0)
    return np.diag(coef / np.diagonal(lam))


def _cov_term(prior, lam: np.ndarray, sigma: float) -> tuple[float, np.ndarray, float]:
    """(deviance, d/dLambda, d/dsigma) of one term's covariance prior, constant included."""
    k = prior.sigma_power()
    sk = sigma ** k
    if prior.scalar_term:
        x = float(lam[0, 0])
        a, sgn = abs(x), math.copysign(1.0, x)
        e = prior.exponential(x)
        poly = prior.polynomial(x)
        if isinstance(prior, Gamma):
            de = 0.0 if prior.rate == 0 else 2.0 * prior.rate * prior._pow * a ** (
                prior._pow - 1) * sgn
            c = -2.0 * prior._pow * (prior.shape - 1.0)
        else:
            de = 0.0 if prior.scale == 0 else -2.0 * prior.scale * prior._pow * a ** (
                -prior._pow - 1) * sgn
            c = 2.0 * prior._pow * (prior.shape + 1.0)
        dpoly = c / x if c else 0.0
        grad = np.array([[de * sk + dpoly]])
    else:
        e = prior.exponential(lam)
        poly = prior.polynomial(lam)
        grad = _exp_grad(prior, lam) * sk + _poly_grad(prior, lam)
    value = e * sk + poly + prior.constant + prior.df_adjust * 2.0 * math.log(sigma)
    dsigma = (k * e * sigma ** (k - 1) if k else 0.0) + 2.0 * prior.df_adjust / sigma
    return float(value), grad, float(dsigma)


def _fixef(prior, beta: np.ndarray, sigma: float) -> tuple[float, np.ndarray, float]:
    if isinstance(prior, Normal):
        k = prior.sigma_power()
        P = prior._R_inv @ prior._R_inv.T
        e = float(beta @ P @ beta)
        value = e * sigma ** k + prior.constant + prior.df_adjust * 2.0 * math.log(sigma)
        dsigma = (k * e * sigma ** (k - 1) if k else 0.0) + 2.0 * prior.df_adjust / sigma
        return value, 2.0 * (P @ beta) * sigma ** k, dsigma
    assert isinstance(prior, T)
    Sinv = prior._R_inv @ prior._R_inv.T
    r = beta - prior.mean
    scale = sigma * sigma if prior.common_scale else 1.0
    delta = float(r @ Sinv @ r) / scale
    nu, d = prior.df, prior._d
    value = (nu + d) * math.log1p(delta / nu) + prior.constant + \
        prior.df_adjust * 2.0 * math.log(sigma)
    factor = (nu + d) / (nu + delta)
    dbeta = factor * 2.0 * (Sinv @ r) / scale
    dsigma = (factor * (-2.0 * delta / sigma) if prior.common_scale else 0.0) + \
        2.0 * prior.df_adjust / sigma
    return value, dbeta, dsigma


def _resid(prior, sigma: float) -> tuple[float, float]:
    k = prior.sigma_power()
    e = prior.exponential()
    value = e * sigma ** k + prior.constant + prior.df_adjust * 2.0 * math.log(sigma)
    dsigma = (k * e * sigma ** (k - 1) if k else 0.0) + 2.0 * prior.df_adjust / sigma
    return value, dsigma


def prior_deviance_gradient(priors: ModelPriors, design, theta: np.ndarray,
                            beta: np.ndarray, sigma: float = 1.0
                            ) -> tuple[float, np.ndarray, np.ndarray, float]:
    """``-2 log p`` of the priors and its gradient ``(d/dtheta, d/dbeta, d/dsigma)``.

    ``inf`` (with zero gradients) where the prior has no density (a zero variance under a
    prior that excludes it).
    """
    theta = np.asarray(theta, dtype=float)
    beta = np.asarray(beta, dtype=float)
    total = 0.0
    g_theta = np.zeros(theta.size)
    g_beta = np.zeros(beta.size)
    g_sigma = 0.0
    for prior, t, sl in zip(priors.cov, design.terms, design.theta_slices(), strict=True):
        if prior is None:
            continue
        lam = t.structure.lambda_(theta[sl])
        if prior.infinite_at_zero() and np.any(np.diagonal(lam) == 0):
            return math.inf, g_theta, g_beta, 0.0
        v, dlam, ds = _cov_term(prior, lam, sigma)
        total += v
        g_sigma += ds
        jac = t.structure.lambda_jacobian(theta[sl])
        g_theta[sl] += np.tensordot(jac, dlam, axes=([1, 2], [0, 1]))
    if priors.fixef is not None:
        v, db, ds = _fixef(priors.fixef, beta, sigma)
        total += v
        g_beta += db
        g_sigma += ds
    if priors.resid is not None and not isinstance(priors.resid, Point):
        v, ds = _resid(priors.resid, sigma)
        total += v
        g_sigma += ds
    return float(total), g_theta, g_beta, float(g_sigma)

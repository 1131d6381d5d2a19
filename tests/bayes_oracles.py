"""Independent computations of posteriors for the sampler's tests.

* :func:`one_theta_posterior`: a model with one scalar ``theta`` under flat priors on
  ``(theta, beta, sigma)``. ``beta`` and ``sigma`` integrate out in closed form,
  ``p(theta | y) ∝ |L_Z|^{-1} |R_X|^{-1} (r^2)^{-(n-p-1)/2}`` with, given theta,
  ``sigma^2 ~ InvGamma((n-p-1)/2, r^2/2)`` and ``E[beta | theta] = beta_hat(theta)``; the
  remaining integral over ``theta`` is Gauss-Legendre quadrature after ``theta = tan(phi)``.
  Only the profiled LMM objective's factorization is used, not the sampler's density.
* :func:`importance_means`: self-normalized importance sampling from a multivariate t at the
  mode with the inverse Hessian as scale, the proposal folded over the sign symmetries of
  theta (the posterior of sign-invariant quantities is that on one orthant).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import minimize
from scipy.special import gammaincc, gammaln

from mixedmodels.inference.varpar import factor_summary
from mixedmodels.objective import LMMObjective

#: Gauss-Legendre nodes of the theta quadrature.
QUAD_NODES = 400


class OneThetaPosterior:
    """Flat-prior posterior of an LMM with one scalar theta (module docstring)."""

    def __init__(self, design):
        obj = LMMObjective(design, reml=False)
        n, p = design.nobs, design.p
        self.a = 0.5 * (n - p - 1)
        x, w = np.polynomial.legendre.leggauss(QUAD_NODES)
        phi = 0.25 * np.pi * (x + 1.0)               # (0, pi/2)
        self.theta = np.tan(phi)
        jac = 0.25 * np.pi / np.cos(phi) ** 2
        logp, s, beta = [], [], []
        for t in self.theta:
            fs = factor_summary(obj, np.array([t]))
            logp.append(-0.5 * fs.logdet_Z - 0.5 * fs.logdet_X - self.a * np.log(fs.pwrss))
            s.append(0.5 * fs.pwrss)
            beta.append(fs.beta)
        logp = np.array(logp)
        wt = w * jac * np.exp(logp - logp.max())
        self.w = wt / wt.sum()
        self.s = np.array(s)
        self.beta = np.array(beta)

    def mean_sigma_given_theta(self) -> np.ndarray:
        return np.sqrt(self.s) * np.exp(gammaln(self.a - 0.5) - gammaln(self.a))

    def means(self) -> dict:
        es = self.mean_sigma_given_theta()
        out = {"sd": float(self.w @ (self.theta * es)), "sigma": float(self.w @ es)}
        for j in range(self.beta.shape[1]):
            out[f"beta{j}"] = float(self.w @ self.beta[:, j])
        return out

    def cdf_sigma(self, x: float) -> float:
        """``P(sigma <= x)``: sigma^2 | theta is InvGamma(a, s)."""
        return float(self.w @ gammaincc(self.a, self.s / x ** 2))

    def cdf_sd(self, x: float) -> float:
        """``P(theta sigma <= x)``."""
        return float(self.w @ gammaincc(self.a, self.s * self.theta ** 2 / x ** 2))

    def prob_theta_below(self, x: float) -> float:
        """``P(|theta| < x)`` (the boundary mass on the relative scale)."""
        return float(self.w[self.theta < x].sum())


def importance_means(target, fold, mirrors, nsim: int = 20000, df: float = 4.0,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Posterior means of ``target.parameters`` by importance sampling.

    Parameters
    ----------
    target : sampler target (``z -> (log p, grad)``, ``parameters(Z)``, ``z_hat``)
    fold : callable
        Maps draws ``Z`` to the canonical orthant.
    mirrors : list of callables
        The sign maps ``Z -> Z'`` of the symmetry group (identity included): the folded
        proposal density is the sum of the proposal density over the mirror images.

    Returns
    -------
    means, standard errors (delta method), importance-sampling effective sample size.
    """
    f = lambda z: -target(z)[0]                            # noqa: E731
    g = lambda z: -target(z)[1]                            # noqa: E731
    res = minimize(f, fold(target.z_hat[None, :])[0], jac=g, method="BFGS",
                   options={"gtol": 1e-8})
    mode = res.x
    d = mode.size
    H = np.empty((d, d))
    for j in range(d):
        h = 1e-5 * max(1.0, abs(mode[j]))
        e = np.zeros(d)
        e[j] = h
        H[:, j] = (g(mode + e) - g(mode - e)) / (2 * h)
    cov = np.linalg.inv(0.5 * (H + H.T))
    prop = stats.multivariate_t(loc=mode, shape=cov * 1.5, df=df, seed=seed)
    Z = fold(prop.rvs(nsim))
    logq = np.logaddexp.reduce([prop.logpdf(mir(Z)) for mir in mirrors], axis=0)
    logp = np.array([target(z)[0] for z in Z])
    lw = logp - logq
    w = np.exp(lw - lw.max())
    w /= w.sum()
    P = target.parameters(Z)
    mean = w @ P
    se = np.sqrt((w ** 2) @ (P - mean) ** 2)
    return mean, se, float(1.0 / np.sum(w ** 2))


__all__ = ["OneThetaPosterior", "importance_means"]

r"""Log posterior density of an LMM's ``(theta, beta, sigma)`` with its exact gradient.

The random effects are integrated out exactly: with ``M = Lambda' A Lambda + I``
(``A = Z'WZ``), the conditional mode ``u = M^{-1} Lambda' Z'W r`` of ``r = y - X beta`` and the
residual ``e = r - Z Lambda u``, the (non-profiled) log-likelihood is

.. math::

    -2\ell(\theta, \beta, \sigma) = \log|M| - \log|W| + n\log(2\pi\sigma^2)
        + Q/\sigma^2, \qquad Q = e'We + u'u,

and, by the envelope theorem for ``u`` (Q is minimal in u),

.. math::

    \frac{\partial(-2\ell)}{\partial\beta} = -\frac{2 X'We}{\sigma^2}, \quad
    \frac{\partial(-2\ell)}{\partial\sigma} = \frac{2n}{\sigma} - \frac{2Q}{\sigma^3}, \quad
    \frac{\partial(-2\ell)}{\partial\theta_j} = 2\operatorname{tr}(\Lambda_j B)
        - \frac{2\,u'\Lambda_j' Z'We}{\sigma^2},

with ``Lambda_j = d Lambda / d theta_j`` and ``B = M^{-1}\Lambda' A``. ``Lambda_j`` is
nonzero only in its term's diagonal blocks (the same ``J_j`` for every level), so the traces
need only the sum ``S_k`` of ``B``'s diagonal blocks over the term's levels and ``U_k' G_k``
(levels x effects arrays of ``u`` and ``Z'We``): ``tr(J_j S_k)`` and ``tr(J_j U_k' G_k)``.
The computation is dense in the ``q`` random effects (``O(q^3)`` per evaluation): meant for
the small and moderate models one samples, not InstEval.

The sampler's coordinates are ``[theta, beta, log sigma]`` with theta unconstrained: the
likelihood is even in the sign of each column of Lambda, so the posterior of a standard
deviation is sampled on the whole real line and folded (``|theta|``) afterwards. Near a zero
variance the density is then smooth through zero instead of piling up against a boundary,
where samplers stick (the GLMM FAQ's objection to ``mcmcsamp``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

from ..design import Design
from .model_priors import ModelPriors
from .prior_gradient import prior_deviance_gradient

__all__ = ["DENSE_WARN_Q", "LMMLogDensity"]

_LOG_2PI = math.log(2.0 * math.pi)
#: Above this many random effects an evaluation (O(q^3)) becomes slow for sampling.
DENSE_WARN_Q = 1500


def random_effects_matrix(design: Design) -> sp.csr_matrix:
    """``Z`` (n x q) with columns level-major within each term, as ``u`` is laid out."""
    n = design.nobs
    rows, cols, vals, off = [], [], [], 0
    for t in design.terms:
        codes = t.grouping.codes
        for a in range(t.p):
            rows.append(np.arange(n))
            cols.append(off + codes * t.p + a)
            vals.append(t.Z[:, a])
        off += t.q
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, design.q))


class LMMLogDensity:
    """``log p(theta, beta, sigma | y)`` up to a constant, and its gradient.

    Parameters
    ----------
    design : Design
    priors : ModelPriors or None
        The fit's priors (None: flat in theta, beta and sigma). A point prior fixes sigma,
        which then is not a coordinate.

    Notes
    -----
    Coordinates: ``z = [theta, beta, log sigma]`` (:attr:`names`); the log density includes
    the Jacobian ``sigma`` of the log scale.
    """

    def __init__(self, design: Design, priors: ModelPriors | None = None):
        self.design = design
        self.priors = priors if priors is not None and priors.any else None
        self.n, self.p, self.q = design.nobs, design.p, design.q
        self.k = design.n_theta
        w = np.ones(self.n) if design.weights is None else np.asarray(design.weights, float)
        self.w = w
        self.log_det_w = float(np.sum(np.log(w)))
        self.Z = random_effects_matrix(design)
        self.X = design.X
        self.r0 = design.y - design.offset
        ZW = self.Z.T.multiply(w[None, :]).tocsr()
        # every evaluation works on these cross-products only (no pass over the data)
        self.A = np.asarray((ZW @ self.Z).todense())
        self.ZWX = np.asarray(ZW @ self.X)
        self.ZWy = np.asarray(ZW @ self.r0).ravel()
        self.XWX = self.X.T @ (w[:, None] * self.X)
        self.XWy = self.X.T @ (w * self.r0)
        self.yWy = float(self.r0 @ (w * self.r0))
        self.fixed_sigma = None if self.priors is None else self.priors.fixed_sigma
        self.dim = self.k + self.p + (0 if self.fixed_sigma is not None else 1)
        self._blocks = []
        off = 0
        for t, sl in zip(design.terms, design.theta_slices(), strict=True):
            lv = off + np.arange(t.nlevels) * t.p
            a, b = np.divmod(np.arange(t.p * t.p), t.p)
            rows = lv[None, :] + a[:, None]          # (p*p, levels): entry (a, b) of
            cols = lv[None, :] + b[:, None]          # every level's diagonal block
            self._blocks.append((off, t.nlevels, t.p, sl, t.structure, rows, cols))
            off += t.q
        self.n_evals = 0

    # -- coordinates ---------------------------------------------------------------------------
    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        z = np.asarray(z, dtype=float)
        k, p = self.k, self.p
        sigma = self.fixed_sigma if self.fixed_sigma is not None else math.exp(z[k + p])
        return z[:k], z[k:k + p], float(sigma)

    def join(self, theta, beta, sigma) -> np.ndarray:
        parts = [np.asarray(theta, float), np.asarray(beta, float)]
        if self.fixed_sigma is None:
            parts.append(np.array([math.log(sigma)]))
        return np.concatenate(parts)

    def _lambda(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.q, self.q))
        for _, _, _, sl, s, rows, cols in self._blocks:
            lam[rows, cols] = s.lambda_(theta[sl]).reshape(-1, 1)
        return lam

    # -- log-likelihood ----------------------------------------------------------------------
    def loglik(self, theta, beta, sigma) -> tuple[float, np.ndarray, np.ndarray, float]:
        """``(l, dl/dtheta, dl/dbeta, dl/dsigma)`` (see the module docstring).

        Only the cross-products enter: with ``s = Z'W r``, ``e'We = r'Wr - 2 s'b + b'Ab``
        (``b = Lambda u``), ``Z'We = s - A b`` and ``X'We = X'W r - (Z'WX)' b``.
        """
        theta = np.asarray(theta, float)
        beta = np.asarray(beta, float)
        lam = self._lambda(theta)
        LA = lam.T @ self.A
        M = LA @ lam
        M.flat[::self.q + 1] += 1.0
        # LAPACK directly: thousands of small factorizations, the wrappers' checks dominate
        L, info = _potrf(M, lower=True, clean=False)
        if info != 0:
            return -math.inf, *self._zeros()
        ldL2 = 2.0 * float(np.sum(np.log(np.diagonal(L))))
        s_vec = self.ZWy - self.ZWX @ beta                  # Z'W r
        c = lam.T @ s_vec
        u = _potrs(L, c, lower=True)[0]
        b = lam @ u
        Ab = self.A @ b
        rWr = self.yWy - 2.0 * float(beta @ self.XWy) + float(beta @ self.XWX @ beta)
        Q = rWr - 2.0 * float(s_vec @ b) + float(b @ Ab) + float(u @ u)
        s2 = sigma * sigma
        ll = -0.5 * (ldL2 - self.log_det_w + self.n * (_LOG_2PI + math.log(s2)) + Q / s2)
        g = s_vec - Ab                                      # Z'We
        d_beta = (self.XWy - self.XWX @ beta - self.ZWX.T @ b) / s2
        d_sigma = -self.n / sigma + Q / (s2 * sigma)
        B = _potrs(L, LA, lower=True)[0]                     # M^{-1} Lambda' A
        d_theta = np.zeros(self.k)
        for off, levels, p, sl, s, _, _ in self._blocks:
            idx = off + np.arange(levels)[:, None] * p + np.arange(p)[None, :]
            Bd = B[idx[:, :, None], idx[:, None, :]].sum(axis=0)        # S_k (p x p)
            UG = u[idx].T @ g[idx]                                      # U_k' G_k
            jac = s.lambda_jacobian(theta[sl])                          # (n_theta_k, p, p)
            tr_B = np.einsum("jab,ba->j", jac, Bd)
            tr_UG = np.einsum("jab,ba->j", jac, UG)
            d_theta[sl] = -(tr_B - tr_UG / s2)
        return ll, d_theta, d_beta, d_sigma

    def _zeros(self):
        return np.zeros(self.k), np.zeros(self.p), 0.0

    # -- log posterior in the sampler's coordinates -------------------------------------------
    def __call__(self, z) -> tuple[float, np.ndarray]:
        """``(log p(z), d log p / dz)``; ``-inf`` outside the support."""
        self.n_evals += 1
        theta, beta, sigma = self.split(z)
        ll, d_theta, d_beta, d_sigma = self.loglik(theta, beta, sigma)
        if not math.isfinite(ll):
            return -math.inf, np.zeros(self.dim)
        if self.priors is not None:
            D, g_t, g_b, g_s = prior_deviance_gradient(self.priors, self.design, theta, beta,
                                                       sigma)
            if not math.isfinite(D):
                return -math.inf, np.zeros(self.dim)
            ll -= 0.5 * D
            d_theta = d_theta - 0.5 * g_t
            d_beta = d_beta - 0.5 * g_b
            d_sigma = d_sigma - 0.5 * g_s
        grad = [d_theta, d_beta]
        if self.fixed_sigma is None:
            ll += math.log(sigma)                        # Jacobian of log sigma
            grad.append(np.array([d_sigma * sigma + 1.0]))
        return float(ll), np.concatenate(grad)

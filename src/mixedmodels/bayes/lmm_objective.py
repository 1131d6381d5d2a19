r"""blmer's objective: the LMM deviance plus the prior deviance, profiled as blme does.

For covariance parameters ``theta`` the factor of the penalized least-squares system
(:class:`~mixedmodels.LMMObjective`'s) gives ``log|L_Z|^2``, the factor ``R`` of
``X' V^{-1} X`` (relative to ``sigma^2``), ``c = R^{-1} X'V^{-1}y`` and the minimal penalized
residual sum of squares ``s^2``; at any ``beta`` the penalized residual sum of squares is
``r^2(beta) = s^2 + ||c - R' beta||^2``. The objective blme minimizes is

.. math::

    D(\theta, \beta, \sigma) = \log|L_Z|^2 - \log|W| + \rho \log|R_X|^2
        + (n - \rho p) \log(2\pi\sigma^2) + r^2(\beta)/\sigma^2
        + \sum_k e_k \sigma^k + \pi(\theta) + c + d \log\sigma^2

(``rho = 1`` for REML), with the prior's parts from :mod:`.model_priors`. As in blme:

* a **normal** fixed-effect prior with precision ``C^{-1} = G G'`` is a quadratic penalty in
  beta, so beta is still profiled in closed form, now as the ridge solution of
  ``[R'; G_s'] beta ~ [c; 0]`` (``G_s = G`` on the common scale, ``sigma G`` on the absolute
  scale) -- solved by a QR factorization, whose triangle is also the ``R_X`` of the REML term
  and of ``vcov(beta)``;
* a **t** prior is not quadratic: beta joins the optimizer (``REML=False`` only);
* sigma is profiled: in closed form where blme has one (no extra power of sigma: the linear
  root ``sigma^2 = (r^2 + e_{-2}) / (n - rho p + d)``; an extra ``sigma^2`` or ``1/sigma``
  term: the roots of the quadratic equations), else by a one-dimensional minimization (blme
  puts sigma into the optimizer then; the minimum over (theta, sigma) is the same); a
  **point** prior fixes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from ..design import Design
from ..objective import LMMObjective, LMMSolution
from .model_priors import ModelPriors, PriorParts

__all__ = ["PenalizedLMMObjective", "PenalizedPoint"]

_LOG_2PI = math.log(2.0 * math.pi)
#: Relative tolerance of the one-dimensional search for sigma (on log sigma); the objective
#: is quadratic there, so its error is of the order of this squared.
SIGMA_SEARCH_TOL = 1e-10
#: Half-width of the initial bracket of log sigma around the closed-form start.
SIGMA_BRACKET = 0.2


@dataclass(frozen=True)
class _ThetaFactor:
    """What the penalized least-squares factor at theta gives (see the module docstring)."""

    theta: np.ndarray
    lams: list
    ldL2: float
    R: np.ndarray        # p x p lower, R R' = X'V^{-1}X
    c: np.ndarray        # R^{-1} X'V^{-1} y
    s2: float            # minimal penalized residual sum of squares


@dataclass(frozen=True)
class PenalizedPoint:
    """The objective and its parts at one ``(theta, beta, sigma)``.

    Attributes
    ----------
    theta, beta : ndarray
    sigma : float
    objective : float
        Likelihood part plus prior deviance (what blmer minimizes).
    likelihood : float
        blme's REML criterion / deviance at these values (``REMLcrit()``).
    prior_deviance : float
    pwrss : float
        Penalized residual sum of squares of the likelihood, ``r^2(beta)``.
    ldRX2 : float
        ``log|R_X|^2`` (with a normal prior's precision added).
    RX_inv : ndarray
        ``R_X^{-1}``: ``vcov(beta) = sigma^2 RX_inv RX_inv'``.
    parts : PriorParts
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    objective: float
    likelihood: float
    prior_deviance: float
    pwrss: float
    ldRX2: float
    RX_inv: np.ndarray
    parts: PriorParts


_INFEASIBLE = None


class PenalizedLMMObjective:
    """``x = [theta, (beta)] -> D`` profiled over what blme profiles (module docstring).

    Parameters
    ----------
    design : Design
    priors : ModelPriors
    reml : bool
    method : str
        Factorization of the underlying :class:`~mixedmodels.LMMObjective`.
    """

    def __init__(self, design: Design, priors: ModelPriors, reml: bool = True,
                 method: str = "auto"):
        if priors.beta_numeric and reml:
            raise ValueError("a t prior on the fixed effects needs REML=False (blme's "
                             "restriction: the fixed effects are then optimized numerically)")
        self.design = design
        self.priors = priors
        self.reml = bool(reml)
        self.lmm = LMMObjective(design, reml=reml, method=method)
        self.method = self.lmm.method
        self.n, self.p = design.nobs, design.p
        self.n_theta = design.n_theta
        self.theta_lower = design.theta_lower()
        self.beta_numeric = priors.beta_numeric
        extra = self.p if self.beta_numeric else 0
        self.lower = np.concatenate([self.theta_lower, np.full(extra, -np.inf)])
        self.n_evals = 0
        normal = priors.normal_fixef
        self._G = None if normal is None else normal.precision_root
        #: the normal prior's precision is sigma^2 G G' in r^2's units (absolute scale)
        self._G_scaled = normal is not None and not normal.common_scale
        powers = priors.sigma_powers()
        t_common = self.beta_numeric and bool(priors.fixef.common_scale)
        self._closed_form = None
        if priors.fixed_sigma is None and not self._G_scaled and not t_common:
            if not powers:
                self._closed_form = "linear"
            elif powers == {2}:
                self._closed_form = "sq_quadratic"
            elif powers == {-1}:
                self._closed_form = "quadratic"
        self._last_log_sigma = None

    # -- pieces ------------------------------------------------------------------------------
    def split(self, x) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x, dtype=float)
        k = self.n_theta
        return x[:k], (x[k:] if self.beta_numeric else None)

    def lambdas(self, theta: np.ndarray) -> list:
        return [t.structure.lambda_(theta[sl])
                for t, sl in zip(self.design.terms, self.design.theta_slices(), strict=True)]

    def factor(self, theta) -> _ThetaFactor | None:
        """Factor at theta (None where the system is not positive definite)."""
        theta = np.asarray(theta, dtype=float)
        f = self.lmm.system.factorize(theta, scratch=True)
        if f is None:
            return None
        p = self.p
        LXX = np.tril(f.LXX)
        # the factor is in the internal basis X~ = X R_b^{-1} with the residualized response
        # (coefficients coef0 taken out); the prior acts on the user's beta, so map back:
        # ||c - U~ (R_b beta - coef0)|| = ||(c + U~ coef0) - (U~ R_b) beta||, U~ = L~'
        L, c = LXX[:p, :p], LXX[p, :p]
        basis = self.lmm.basis
        return _ThetaFactor(theta, self.lambdas(theta), float(f.logdet_Z),
                            basis.R.T @ L, c + L.T @ self.lmm.response_coef, float(LXX[p, p] ** 2))

    def _beta(self, tf: _ThetaFactor, sigma: float, beta=None, fix=None):
        """``(beta, ||c - R'beta||^2, log|R_X|^2, R_X^{-1})``: beta given, or the (ridge)
        solution, optionally with ``beta[j] = b`` held fixed (``fix = (j, b)``)."""
        R, c, p = tf.R, tf.c, self.p
        if p == 0:
            return np.zeros(0), 0.0, 0.0, np.zeros((0, 0))
        if self._G is not None and beta is None:
            G = self._G * sigma if self._G_scaled else self._G
            A = np.vstack([R.T, G.T])
            Q, Rq = np.linalg.qr(A)
            rhs = Q.T @ np.r_[c, np.zeros(p)]
            diag = np.abs(np.diagonal(Rq))
        else:
            Rq, rhs = R.T, c
            diag = np.abs(np.diagonal(R))
        ldRX2 = 2.0 * float(np.sum(np.log(diag)))
        RX_inv = np.linalg.inv(Rq)     # p x p upper triangular; small
        if beta is None:
            beta = RX_inv @ rhs
            if fix is not None:
                j, b = fix
                Hinv = RX_inv @ RX_inv.T
                beta = beta + Hinv[:, j] * (b - beta[j]) / Hinv[j, j]
        resid = c - R.T @ beta
        return beta, float(resid @ resid), ldRX2, RX_inv

    def _value(self, tf: _ThetaFactor, sigma: float, beta=None, fix=None) -> PenalizedPoint:
        beta, extra, ldRX2, RX_inv = self._beta(tf, sigma, beta, fix)
        parts = self.priors.parts(tf.lams, beta, sigma)
        return self._assemble(tf, sigma, beta, extra, ldRX2, RX_inv, parts)

    def _assemble(self, tf, sigma, beta, extra, ldRX2, RX_inv, parts) -> PenalizedPoint:
        rho = 1.0 if self.reml else 0.0
        s2 = sigma * sigma
        pwrss = tf.s2 + extra
        lik = (tf.ldL2 - self.lmm.log_det_w + rho * ldRX2
               + (self.n - rho * self.p) * (_LOG_2PI + math.log(s2)) + pwrss / s2)
        prior = parts.total(sigma)
        return PenalizedPoint(tf.theta, beta, float(sigma), float(lik + prior), float(lik),
                              float(prior), pwrss, ldRX2, RX_inv, parts)

    # -- sigma ---------------------------------------------------------------------------------
    def _sigma_closed_form(self, tf, beta, fix) -> PenalizedPoint | None:
        beta, extra, ldRX2, RX_inv = self._beta(tf, 1.0, beta, fix)
        parts = self.priors.parts(tf.lams, beta)
        rho = 1.0 if self.reml else 0.0
        A = tf.s2 + extra + parts.exponential.get(-2, 0.0)
        N = self.n - rho * self.p + parts.df
        if not (A > 0 and N > 0 and math.isfinite(A)):
            return None
        if self._closed_form == "linear":
            sigma = math.sqrt(A / N)
        elif self._closed_form == "sq_quadratic":
            a = parts.exponential.get(2, 0.0)
            if not a > 0:
                return None
            sigma = math.sqrt((math.sqrt(N * N + 4.0 * A * a) - N) / (2.0 * a))
        else:
            a = parts.exponential.get(-1, 0.0)
            sigma = 0.25 * (math.sqrt(a * a + 16.0 * N * A) + a) / N
        return self._assemble(tf, sigma, beta, extra, ldRX2, RX_inv, parts)

    def _sigma_search(self, tf, beta, fix) -> PenalizedPoint | None:
        rho = 1.0 if self.reml else 0.0
        _, extra0, *_ = self._beta(tf, 1.0, beta, fix)
        N = self.n - rho * self.p
        start = self._last_log_sigma
        if start is None or not math.isfinite(start):
            start = 0.5 * math.log(max(tf.s2 + extra0, 1e-300) / max(N, 1.0))

        def f(ls):
            try:
                v = self._value(tf, math.exp(ls), beta, fix).objective
            except (np.linalg.LinAlgError, ValueError, OverflowError):
                return np.inf
            return v if math.isfinite(v) else np.inf

        try:
            res = minimize_scalar(f, bracket=(start - SIGMA_BRACKET, start + SIGMA_BRACKET),
                                  method="brent", tol=SIGMA_SEARCH_TOL)
        except (ValueError, RuntimeError):
            return None
        if not math.isfinite(res.fun):
            return None
        self._last_log_sigma = float(res.x)
        return self._value(tf, math.exp(res.x), beta, fix)

    # -- the objective ---------------------------------------------------------------------------
    def at(self, theta, beta=None, sigma: float | None = None, fix=None) -> PenalizedPoint | None:
        """The objective at ``theta`` with beta (unless given) and sigma (unless given or
        fixed by a point prior) profiled; ``fix=(j, b)`` holds ``beta[j] = b``. None where
        the objective is infinite."""
        tf = self.factor(theta)
        if tf is None:
            return None
        if sigma is None:
            sigma = self.priors.fixed_sigma
        if sigma is not None:
            pt = self._value(tf, float(sigma), beta, fix)
        elif self._closed_form is not None:
            pt = self._sigma_closed_form(tf, beta, fix)
            if pt is None:
                pt = self._sigma_search(tf, beta, fix)
        else:
            pt = self._sigma_search(tf, beta, fix)
        if pt is None or not math.isfinite(pt.objective):
            return None
        return pt

    def __call__(self, x) -> float:
        self.n_evals += 1
        theta, beta = self.split(x)
        try:
            pt = self.at(theta, beta)
        except (np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        return np.inf if pt is None else pt.objective

    def start(self, theta0: np.ndarray) -> np.ndarray:
        """Starting vector: ``theta0`` and, when beta is optimized, its GLS estimate there."""
        if not self.beta_numeric:
            return np.asarray(theta0, float)
        tf = self.factor(theta0)
        beta = np.linalg.solve(tf.R.T, tf.c) if self.p else np.zeros(0)
        return np.concatenate([theta0, beta])

    def solve(self, x) -> tuple[LMMSolution, PenalizedPoint]:
        """The solution at ``x``: an :class:`~mixedmodels.LMMSolution` carrying the
        penalized objective, the estimates of beta and sigma, the random effects at them and
        ``R_X^{-1}`` with the prior's precision; and the point's parts."""
        theta, beta = self.split(x)
        pt = self.at(theta, beta)
        if pt is None:
            raise np.linalg.LinAlgError(f"the penalized objective is infinite at theta={theta}")
        f = self.lmm.system.factorize(np.asarray(theta, float))
        u = self.lmm.system.solve_u(f, pt.beta)
        b = self.lmm.b_from_u(np.asarray(theta, float), u)
        sol = LMMSolution(np.asarray(theta, float), pt.objective, pt.beta, u, b, pt.sigma,
                          pt.pwrss, float(f.logdet_Z), pt.ldRX2, pt.RX_inv, f)
        return sol, pt

    def cond_var(self, sol: LMMSolution) -> list:
        """Conditional covariance blocks of the random effects (as lme4's, given beta)."""
        return self.lmm.cond_var(sol)

r"""Structures ``Sigma = D R(t) D``: standard deviations times a parametric correlation.

``D = diag(s_1, ..., s_p)`` with ``s_k = exp(theta_k)`` (heterogeneous: p standard
deviations) or ``s = exp(theta_0)`` for every effect (homogeneous), followed by the
correlation's own parameters ``t`` -- glmmTMB 1.1.5's parameterization
(``termwise_nll`` in ``src/glmmTMB.cpp``), so theta *is* glmmTMB's theta. ``Lambda = D L``
with ``L L' = R``, and

.. math:: \frac{\partial\Lambda}{\partial\log s_k} = E_{kk}\Lambda, \qquad
          \frac{\partial\Lambda}{\partial t_j} = D\, \frac{\partial L}{\partial t_j},

the last from the derivative of the Cholesky factor (:mod:`._factor`). Subclasses give the
correlation matrix and its derivatives. This module holds the classes whose correlation
depends on the column order only: compound symmetry, AR(1) and Toeplitz; the ones that read
coordinates are in :mod:`.spatial`.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .._errors import FormulaError
from ._factor import chol_relative_derivatives, triangular_inverse
from .base import SINGULAR_TOL, CovarianceStructure

__all__ = ["AR1", "RELATIVE_COND_MAX", "CompoundSymmetry", "ScaledCorrelation", "Toeplitz"]

#: Largest 1-norm condition number of a correlation's Cholesky factor for which
#: :meth:`ScaledCorrelation.relative_jacobian` is given (the Laplace gradient's limit for
#: ``Lambda`` itself; beyond it ``L^{-1}`` carries more rounding than the direct form).
RELATIVE_COND_MAX = 1e6


@cache
def _lag_matrix(p: int) -> np.ndarray:
    """``|i - j|`` over p columns (read-only: shared by every structure of that size)."""
    k = np.arange(p)
    lag = np.abs(k[:, None] - k[None, :])
    lag.flags.writeable = False
    return lag


@cache
def _ar1_pattern(p: int):
    """Index arrays of AR(1)'s closed-form factor derivatives over p columns: the strict
    lower triangle and its exponents ``i - j - 1``, the diagonal and the subdiagonal."""
    i, j = np.tril_indices(p, -1)
    expo = i - j - 1
    k = np.arange(p)
    return (i, j), expo, (k, k), (k[1:], k[:-1])


#: Largest lag correlation :meth:`Toeplitz.t_from_chart` returns: the double just below 1.
CHART_EDGE = float(np.nextafter(1.0, 0.0))


def _sqrt_transform(t: np.ndarray) -> np.ndarray:
    """glmmTMB's map of the real line onto (-1, 1): ``t / sqrt(1 + t^2)``."""
    return t / np.sqrt(1.0 + t * t)


def _sqrt_transform_slope(t: np.ndarray) -> np.ndarray:
    return (1.0 + t * t) ** -1.5


def _sqrt_transform_inverse(r: np.ndarray) -> np.ndarray:
    return r / np.sqrt(1.0 - r * r)


class ScaledCorrelation(CovarianceStructure):
    """``Sigma = D R D`` with log standard deviations first (see the module docstring).

    Parameters
    ----------
    p : int
    hom : bool
        One standard deviation for all effects.
    """

    #: keywords (heterogeneous, homogeneous) and glmmTMB codes
    keywords: tuple[str, str] = ("", "")
    codes: tuple[int, int] = (-1, -1)
    #: smallest p the correlation is defined for
    min_p: int = 2

    def __init__(self, p: int, hom: bool = False):
        super().__init__(p)
        self.hom = bool(hom)
        self.keyword = self.keywords[int(self.hom)]
        self.glmmtmb_code = self.codes[int(self.hom)]
        if self.p < self.min_p:
            raise FormulaError(
                f"{self.keyword}() needs at least {self.min_p} random effects per group (it "
                f"describes their correlation); this term has {self.p}: write (1 | g) for a "
                "single effect, or give the term one column per time or position, e.g. "
                f"{self.keyword}(0 + factor(time) | g)")

    # -- to be given by subclasses ----------------------------------------------------------
    @property
    def n_cor(self) -> int:
        """Number of correlation parameters."""
        raise NotImplementedError

    def correlation(self, t: np.ndarray) -> np.ndarray:
        """``R(t)``: p x p."""
        raise NotImplementedError

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        """``dR/dt_j``: (n_cor, p, p)."""
        raise NotImplementedError

    def cor_names(self) -> tuple[str, ...]:
        """Names of the natural correlation parameters."""
        raise NotImplementedError

    def cor_parameters(self, t: np.ndarray) -> np.ndarray:
        """Natural correlation parameters from ``t``."""
        raise NotImplementedError

    def cor_from_parameters(self, values: np.ndarray) -> np.ndarray:
        """``t`` from the natural correlation parameters."""
        raise NotImplementedError

    def cor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the natural correlation parameters."""
        raise NotImplementedError

    # -- the contract -----------------------------------------------------------------------
    @property
    def n_sd(self) -> int:
        return 1 if self.hom else self.p

    @property
    def n_theta(self) -> int:
        return self.n_sd + self.n_cor

    def theta0(self) -> np.ndarray:
        return np.zeros(self.n_theta)

    def start(self, sd: float) -> np.ndarray:
        out = np.zeros(self.n_theta)
        out[:self.n_sd] = np.log(sd)
        return out

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        sd = np.exp(theta[:self.n_sd])
        return (np.full(self.p, sd[0]) if self.hom else sd), theta[self.n_sd:]

    def _factor(self, t: np.ndarray, derivatives: bool = False):
        """``(L, parts)``: the Cholesky factor of ``R(t)`` and, with ``derivatives``,
        ``(L^{-1}, L^{-1} dL, dL)`` (:mod:`._factor`; else None), remembered for the last
        ``t``: an evaluation of the Laplace objective asks for ``Lambda`` at the same
        parameters up to four times (the modes' prediction, the solve, the gradient's
        relative form and its Jacobian), and for p = 6 the factor and its derivatives
        cost more than the products they feed."""
        key = np.ascontiguousarray(t, dtype=float).tobytes()
        memo = self.__dict__.get("_factor_memo")
        if memo is None or memo[0] != key:
            memo = (key, np.linalg.cholesky(self.correlation(t)), None)
        if derivatives and memo[2] is None:
            L = memo[1]
            Linv, rel = self._factor_derivatives(t, L)
            memo = (key, L, (Linv, rel, np.matmul(L, rel)))
        self._factor_memo = memo
        return memo[1], memo[2]

    def _factor_derivatives(self, t: np.ndarray, L: np.ndarray):
        """``(L^{-1}, L^{-1} dL/dt_j)`` for the factor ``L`` of ``R(t)``: LAPACK's
        triangular inverse and Murray's ``Phi(L^{-1} dR_j L^{-T})`` (:mod:`._factor`).
        Subclasses with a factor known in closed form override it."""
        Linv = triangular_inverse(L)
        return Linv, chol_relative_derivatives(Linv, self.correlation_jacobian(t))

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        sd, t = self._split(theta)
        return sd[:, None] * self._factor(t)[0]

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        sd, t = self._split(theta)
        L, (_, _, dL, *_) = self._factor(t, derivatives=True)
        lam = sd[:, None] * L
        out = np.empty((self.n_theta, self.p, self.p))
        if self.hom:
            out[0] = lam
        else:
            out[:self.p] = 0.0
            idx = np.arange(self.p)
            out[idx, idx, :] = lam
        out[self.n_sd:] = sd[None, :, None] * dL
        return out

    def relative_jacobian(self, theta: np.ndarray) -> np.ndarray | None:
        r"""``M_j = Lambda^{-1} dLambda_j`` in closed form, free of the standard
        deviations (with ``Lambda = D L``: ``M = L^{-1} E_{kk} L`` for ``log s_k``, ``I``
        for a common ``log s``, ``L^{-1} dL/dt_j`` for a correlation parameter), so it
        stays exact where a standard deviation is at zero and ``Lambda`` is singular (a
        hetar1 variance on the boundary); None where the correlation's factor is
        ill-conditioned (:data:`RELATIVE_COND_MAX`, 1-norm). It depends on the
        correlation parameters only and is remembered with their factor (read-only)."""
        _, t = self._split(theta)
        self._factor(t, derivatives=True)
        key, L, parts = self._factor_memo
        if len(parts) == 4:
            return parts[3]
        Linv, rel, dL = parts
        cond = np.abs(L).sum(axis=0).max() * np.abs(Linv).sum(axis=0).max()
        out = None
        if cond <= RELATIVE_COND_MAX:
            out = np.empty((self.n_theta, self.p, self.p))
            if self.hom:
                out[0] = np.eye(self.p)
            else:
                # L^{-1} E_kk L = (column k of L^{-1}) (row k of L)
                out[:self.p] = Linv.T[:, :, None] * L[:, None, :]
            out[self.n_sd:] = rel
            out.flags.writeable = False
        self._factor_memo = (key, L, (Linv, rel, dL, out))
        return out

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        sd, t = self._split(theta)
        return self.correlation(t) * np.outer(sd, sd)

    def sd_cor(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd, t = self._split(theta)
        return sd, self.correlation(t)

    def parameter_names(self) -> tuple[str, ...]:
        sds = ("sd",) if self.hom else tuple(f"sd_{k + 1}" for k in range(self.p))
        return sds + self.cor_names()

    def parameter_scales(self) -> np.ndarray:
        return np.arange(self.n_theta) < self.n_sd

    def log_scale_mask(self) -> np.ndarray:
        return np.arange(self.n_theta) < self.n_sd

    def smooth_mask(self) -> np.ndarray:
        # the correlation parameters: a bounded transform of the real line (subclasses
        # whose correlation reads distances override it: a log range may run off)
        return np.arange(self.n_theta) >= self.n_sd

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.cor_bounds()
        return (np.concatenate([np.zeros(self.n_sd), lo]),
                np.concatenate([np.full(self.n_sd, np.inf), hi]))

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        return np.concatenate([np.exp(theta[:self.n_sd]),
                               self.cor_parameters(theta[self.n_sd:])])

    def theta_from_parameters(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore"):
            return np.concatenate([np.log(values[:self.n_sd]),
                                   self.cor_from_parameters(values[self.n_sd:])])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, hom={self.hom})"


class CompoundSymmetry(ScaledCorrelation):
    r"""Compound symmetry: one correlation ``rho`` between every pair of effects
    (``cs``; ``homcs`` with one standard deviation).

    glmmTMB's transform keeps ``R`` positive definite:
    ``rho = plogis(t) (1 + a) - a`` with ``a = 1/(p - 1)``, so ``-1/(p-1) < rho < 1``.
    """

    keywords = ("cs", "homcs")
    codes = (2, 13)

    @property
    def n_cor(self) -> int:
        return 1

    @property
    def _a(self) -> float:
        return 1.0 / (self.p - 1.0)

    def _rho(self, t: np.ndarray) -> float:
        return float(1.0 / (1.0 + np.exp(-t[0])) * (1.0 + self._a) - self._a)

    def correlation(self, t: np.ndarray) -> np.ndarray:
        rho = self._rho(t)
        return np.full((self.p, self.p), rho) + (1.0 - rho) * np.eye(self.p)

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(-t[0]))
        drho = s * (1.0 - s) * (1.0 + self._a)
        return (drho * (np.ones((self.p, self.p)) - np.eye(self.p)))[None]

    def cor_names(self) -> tuple[str, ...]:
        return ("rho",)

    def cor_parameters(self, t: np.ndarray) -> np.ndarray:
        return np.array([self._rho(t)])

    def cor_from_parameters(self, values: np.ndarray) -> np.ndarray:
        s = (values[0] + self._a) / (1.0 + self._a)
        with np.errstate(divide="ignore"):
            return np.array([np.log(s / (1.0 - s))])

    def cor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-self._a]), np.array([1.0])


class _SqrtTransformed(ScaledCorrelation):
    """Correlations ``c = t / sqrt(1 + t^2)`` in (-1, 1), one per correlation parameter
    (AR(1)'s phi, Toeplitz's lag correlations)."""

    def cor_parameters(self, t: np.ndarray) -> np.ndarray:
        return _sqrt_transform(np.asarray(t, dtype=float))

    def cor_from_parameters(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return _sqrt_transform_inverse(np.asarray(values, dtype=float))

    def cor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(self.n_cor, -1.0), np.full(self.n_cor, 1.0)


class AR1(_SqrtTransformed):
    r"""First-order autoregressive correlation over the term's columns in order:
    ``R_ij = phi^|i - j|`` (``ar1``, one standard deviation; ``hetar1`` with one per
    column). The columns are equally spaced times -- ``ar1(0 + factor(time) | g)`` --
    as in glmmTMB, which ignores the values of the times. ``phi = t / sqrt(1 + t^2)``.
    """

    keywords = ("hetar1", "ar1")
    codes = (12, 3)

    def __init__(self, p: int, hom: bool = True):
        super().__init__(p, hom)

    @property
    def n_cor(self) -> int:
        return 1

    def _lags(self) -> np.ndarray:
        return _lag_matrix(self.p)

    def correlation(self, t: np.ndarray) -> np.ndarray:
        phi = float(_sqrt_transform(t[0]))
        return phi ** self._lags()

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        phi = float(_sqrt_transform(t[0]))
        lag = self._lags()
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(lag > 0, lag * phi ** np.maximum(lag - 1, 0), 0.0)
        return (d * float(_sqrt_transform_slope(t[0])))[None]

    def _factor_derivatives(self, t: np.ndarray, L: np.ndarray):
        r"""``(L^{-1}, L^{-1} dL/dt)`` of AR(1)'s factor in closed form (no LAPACK call and
        no ``p x p x p`` products: at p = 6 the generic form is ~5 numpy calls of small
        products per new ``phi``, a tenth of a hetar1 gradient evaluation).

        With ``c = sqrt(1 - phi^2)`` the factor is ``L_{i0} = phi^i``,
        ``L_{ij} = c phi^{i-j}`` (``1 <= j <= i``) -- the innovations
        ``e_0 = x_0``, ``e_i = (x_i - phi x_{i-1}) / c`` -- so ``L^{-1}`` is bidiagonal
        (``1`` then ``1/c`` on the diagonal, ``-phi/c`` below it), and
        ``L^{-1} dL/dphi`` is lower triangular with

        .. math:: (L^{-1} L')_{i0} = \phi^{i-1}/c, \quad
                  (L^{-1} L')_{jj} = -\phi/c^2, \quad
                  (L^{-1} L')_{ij} = \phi^{i-j-1} \quad (i > j \ge 1),

        zero at ``(0, 0)``; times ``dphi/dt = (1 + t^2)^{-3/2}``. ``L`` is the Cholesky
        factor LAPACK computed (the objective's ``Lambda``); these equal the generic
        form's to rounding (tests/test_hetar1_fast.py)."""
        p = self.p
        t0 = float(t[0])
        phi = t0 / np.sqrt(1.0 + t0 * t0)
        c2 = 1.0 - phi * phi
        if not c2 > 0.0:
            raise np.linalg.LinAlgError("singular Cholesky factor of a correlation matrix")
        c = np.sqrt(c2)
        below, expo, diag, sub = _ar1_pattern(p)
        Linv = np.zeros((p, p))
        Linv[diag] = 1.0 / c
        Linv[0, 0] = 1.0
        Linv[sub] = -phi / c
        rel = np.zeros((1, p, p))
        r = rel[0]
        r[below] = phi ** expo
        r[1:, 0] /= c
        r[diag] = -phi / c2
        r[0, 0] = 0.0
        rel *= (1.0 + t0 * t0) ** -1.5
        return Linv, rel

    def cor_names(self) -> tuple[str, ...]:
        return ("phi",)


class Toeplitz(_SqrtTransformed):
    r"""Toeplitz correlation: one correlation per lag, ``R_ij = c_{|i-j|}``
    (``toep``; ``homtoep`` with one standard deviation), ``c_k = t_k / sqrt(1 + t_k^2)``.
    Not every set of lag correlations is a correlation matrix: where ``R`` is not positive
    definite the deviance is infinite (glmmTMB's is not a number)."""

    keywords = ("toep", "homtoep")
    codes = (8, 14)
    defined_everywhere = False

    @property
    def n_cor(self) -> int:
        return self.p - 1

    def _lags(self) -> np.ndarray:
        return _lag_matrix(self.p)

    def correlation(self, t: np.ndarray) -> np.ndarray:
        c = np.concatenate([[1.0], _sqrt_transform(np.asarray(t, dtype=float))])
        return c[self._lags()]

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        lag = self._lags()
        slope = _sqrt_transform_slope(np.asarray(t, dtype=float))
        k = np.arange(1, self.p)[:, None, None]
        return np.where(lag[None] == k, slope[:, None, None], 0.0)

    def cor_names(self) -> tuple[str, ...]:
        return tuple(f"cor_lag{k}" for k in range(1, self.p))

    def is_singular(self, theta: np.ndarray, tol: float = SINGULAR_TOL) -> bool:
        """The base rule (a vanishing sd, a lag correlation of +-1), or the wall of the
        domain: lag correlations, each inside (-1, 1), whose correlation matrix ``R`` is
        singular -- its smallest eigenvalue below ``tol`` (``R`` has unit diagonal, so
        the eigenvalue is on the scale of a correlation)."""
        if super().is_singular(theta, tol):
            return True
        t = np.asarray(theta, dtype=float)[self.n_sd:]
        if not t.size or not np.all(np.isfinite(t)):
            return False
        return bool(np.linalg.eigvalsh(self.correlation(t))[0] < tol)

    # -- an unconstrained chart of the domain (used by fitting/glmmtmb_wall) ----------------
    def t_from_chart(self, w: np.ndarray) -> np.ndarray:
        r"""The correlation parameters ``t`` of the point ``w`` of an unconstrained chart:
        partial autocorrelations ``a_k = tanh(w_k)`` in (-1, 1), the lag correlations
        ``c_k`` from them by the Durbin-Levinson recursion (with ``phi^{(k)}`` the order-k
        autoregression's coefficients and ``v_k = prod_{j <= k} (1 - a_j^2)``)

        .. math:: c_k = \sum_{j<k} \phi^{(k-1)}_j c_{k-j} + a_k v_{k-1}, \qquad
                  \phi^{(k)}_j = \phi^{(k-1)}_j - a_k \phi^{(k-1)}_{k-j}, \quad
                  \phi^{(k)}_k = a_k,

        and ``t_k = c_k / sqrt(1 - c_k^2)``. Every ``w`` gives a positive definite
        Toeplitz correlation and every one is reached (the partial autocorrelations of a
        positive definite Toeplitz matrix are in (-1, 1)): the wall of the domain lies at
        infinity in ``w``. Complex ``w`` is accepted (complex-step derivatives)."""
        a = np.tanh(np.asarray(w))
        c = np.zeros(a.size, dtype=a.dtype)
        phi = np.zeros(0, dtype=a.dtype)
        v = 1.0
        for k in range(a.size):
            c[k] = (phi @ c[:k][::-1] if k else 0.0) + a[k] * v
            phi = np.concatenate([phi - a[k] * phi[::-1], [a[k]]])
            v = v * (1.0 - a[k] * a[k])
        edge = np.abs(c.real) > CHART_EDGE
        if edge.any():
            # tanh rounds to +-1 beyond |w| ~ 19, and c_k then to +-1 (t = +-inf): keep such
            # a point a rounding step inside the wall, where t is finite and the objective
            # merely huge (the caller's line search halves the step) -- no inf/nan to warn
            # about; a complex-step derivative there is 0, as tanh's is to rounding
            c = np.where(edge, np.copysign(CHART_EDGE, c.real), c)
        return c / np.sqrt(1.0 - c * c)

    def chart_from_t(self, t: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`t_from_chart` (the forward Durbin-Levinson recursion), for
        ``t`` inside the domain (else a ``ValueError``)."""
        c = _sqrt_transform(np.asarray(t, dtype=float))
        a = np.zeros(c.size)
        phi = np.zeros(0)
        v = 1.0
        for k in range(c.size):
            a[k] = (c[k] - (phi @ c[:k][::-1] if k else 0.0)) / v
            if not abs(a[k]) < 1.0:
                raise ValueError("the lag correlations are not a positive definite "
                                 "Toeplitz correlation")
            phi = np.concatenate([phi - a[k] * phi[::-1], [a[k]]])
            v = v * (1.0 - a[k] * a[k])
        return np.arctanh(a)

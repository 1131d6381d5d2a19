r"""ARMA(p, q) autocorrelations and nlme's unconstrained parameterization of them.

The process is ``x_t = sum_j phi_j x_{t-j} + e_t + sum_j theta_j e_{t-j}`` (R's sign
convention for the moving-average part). nlme optimizes unconstrained values: the
coefficients are mapped to partial autocorrelations ``r_k`` by the Durbin-Levinson
recursion run backwards, then ``u_k = log((1 + r_k) / (1 - r_k))``; every ``u`` gives a
stationary (AR) / invertible (MA) polynomial. The autocorrelation function follows from the
``psi`` weights of the MA(infinity) representation and the Yule-Walker equations of the AR
part.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from scipy.linalg.lapack import dgesv

__all__ = ["arma_acf", "arma_acf_jacobian", "arma_constrained", "arma_unconstrained"]

#: Imaginary step of :func:`arma_acf_jacobian` (complex-step derivatives are exact to
#: rounding: no difference is taken, so the step can be tiny).
COMPLEX_STEP = 1e-30


def _to_coefficients(u: np.ndarray, sign: float) -> np.ndarray:
    """Partial autocorrelations ``tanh(u/2)`` -> polynomial coefficients (Durbin-Levinson).

    ``sign = -1`` for the AR part (``phi_kj = phi_{k-1,j} - r_k phi_{k-1,k-j}``), ``+1`` for
    the MA part, whose polynomial ``1 + theta B`` has the opposite sign convention.
    """
    u = np.asarray(u)
    tanh = cmath.tanh if np.iscomplexobj(u) else math.tanh     # complex: complex steps
    coef: list = []                     # Python scalars: orders are tiny, numpy calls dear
    for uk in u.tolist():
        r = tanh(0.5 * uk)
        coef = [c + sign * r * c_rev for c, c_rev in zip(coef, coef[::-1], strict=True)] + [r]
    return np.array(coef, dtype=u.dtype if np.iscomplexobj(u) else float)


def _to_partials(coef: np.ndarray, sign: float) -> np.ndarray:
    """Inverse of :func:`_to_coefficients`: coefficients -> unconstrained ``u``."""
    coef = np.asarray(coef, dtype=float).copy()
    u = np.zeros(coef.size)
    for k in range(coef.size - 1, -1, -1):
        r = coef[k]
        if abs(r) >= 1.0:
            raise ValueError("ARMA coefficients must define a stationary and invertible "
                             "process (every partial autocorrelation below 1 in absolute "
                             "value)")
        u[k] = np.log((1.0 + r) / (1.0 - r))
        prev = coef[:k]
        coef = (prev - sign * r * prev[::-1]) / (1.0 - r * r)
    return u


def arma_constrained(u: np.ndarray, p: int) -> np.ndarray:
    """``[phi_1..p, theta_1..q]`` from nlme's unconstrained values.

    Parameters
    ----------
    u : ndarray (p + q,)
    p : int
        Autoregressive order.

    Returns
    -------
    ndarray (p + q,)
    """
    u = np.asarray(u)
    if not np.iscomplexobj(u):
        u = u.astype(float)
    return np.concatenate([_to_coefficients(u[:p], -1.0), _to_coefficients(u[p:], 1.0)])


def arma_unconstrained(coef: np.ndarray, p: int) -> np.ndarray:
    """nlme's unconstrained values from ``[phi_1..p, theta_1..q]``.

    Parameters
    ----------
    coef : ndarray (p + q,)
    p : int

    Returns
    -------
    ndarray (p + q,)
    """
    coef = np.asarray(coef, dtype=float)
    return np.concatenate([_to_partials(coef[:p], -1.0), _to_partials(coef[p:], 1.0)])


def arma_acf(phi: np.ndarray, theta: np.ndarray, max_lag: int) -> np.ndarray:
    r"""Autocorrelations ``rho_0 = 1, rho_1, ..., rho_max_lag`` of an ARMA(p, q) process.

    With ``psi`` the MA(infinity) weights (``psi_0 = 1``,
    ``psi_j = theta_j + sum_i phi_i psi_{j-i}``) the autocovariances satisfy

    .. math:: \gamma_k - \sum_i \phi_i \gamma_{|k-i|} = \sum_{j \ge k} \theta_j \psi_{j-k}
              \quad (k = 0..p), \qquad \theta_0 = 1,

    a (p + 1)-dimensional linear system; beyond ``p`` the right-hand side adds the MA terms
    up to lag ``q`` and then the AR recursion continues.

    Parameters
    ----------
    phi, theta : ndarray
        AR and MA coefficients.
    max_lag : int

    Returns
    -------
    ndarray (max_lag + 1,)
    """
    cplx = np.iscomplexobj(phi) or np.iscomplexobj(theta)
    dtype = complex if cplx else float
    phi = np.asarray(phi, dtype=dtype)
    theta_full = np.concatenate([[1.0], np.asarray(theta, dtype=dtype)])
    p, q = phi.size, theta_full.size - 1
    n_psi = q + 1
    psi = np.zeros(n_psi, dtype=dtype)
    psi[0] = 1.0
    for j in range(1, n_psi):
        psi[j] = theta_full[j] + sum(phi[i - 1] * psi[j - i] for i in range(1, min(p, j) + 1))
    # right-hand side c_k = sum_{j=k}^{q} theta_j psi_{j-k}
    n = max(max_lag, p, q) + 1
    c = np.zeros(n, dtype=dtype)
    for k in range(q + 1):
        c[k] = np.dot(theta_full[k:], psi[:q + 1 - k])
    gamma = np.zeros(n, dtype=dtype)
    if p:
        A = np.eye(p + 1, dtype=dtype)
        for k in range(p + 1):
            for i in range(1, p + 1):
                A[k, abs(k - i)] -= phi[i - 1]
        if cplx:
            gamma[:p + 1] = np.linalg.solve(A, c[:p + 1])
        else:
            # LAPACK directly: np.linalg.solve's checks cost more than a (p+1)-square solve
            _, _, sol, info = dgesv(A, c[:p + 1])
            if info != 0:
                raise np.linalg.LinAlgError("singular ARMA autocovariance system")
            gamma[:p + 1] = sol
    else:
        gamma[0] = c[0]
    if p and n > p + 1:
        # gamma_k = c_k + sum_i phi_i gamma_{k-i} for k > p, on Python floats: a few dozen
        # lags of a recursion of order p cost less this way than scipy's lfilter/lfiltic
        # (their argument checking alone is ~50 us, a third of an ARMA evaluation)
        g = gamma[:p + 1].tolist()
        ph = phi.tolist()
        cl = c.tolist()
        for k in range(p + 1, n):
            acc = cl[k]
            for i in range(p):
                acc += ph[i] * g[k - 1 - i]
            g.append(acc)
        gamma = np.asarray(g)
    if not p:
        gamma[1:q + 1] = c[1:q + 1]
    return gamma[:max_lag + 1] / gamma[0]


def arma_acf_jacobian(u: np.ndarray, p: int, max_lag: int) -> np.ndarray:
    """Derivatives of :func:`arma_acf` (at the coefficients :func:`arma_constrained` gives)
    with respect to nlme's unconstrained values, by complex steps (exact to rounding).

    Parameters
    ----------
    u : ndarray (p + q,)
    p : int
    max_lag : int

    Returns
    -------
    ndarray (p + q, max_lag + 1)
        Row ``j``: ``d rho_k / d u_j``.
    """
    u = np.asarray(u, dtype=float)
    out = np.empty((u.size, max_lag + 1))
    for j in range(u.size):
        uj = u.astype(complex)
        uj[j] += 1j * COMPLEX_STEP
        coef = arma_constrained(uj, p)
        out[j] = arma_acf(coef[:p], coef[p:], max_lag).imag / COMPLEX_STEP
    return out

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

__all__ = ["arma_acf", "arma_acf_and_jacobian", "arma_acf_jacobian", "arma_constrained",
           "arma_unconstrained", "is_low_order", "low_order_acf", "low_order_acf_and_jacobian"]

#: Imaginary step of :func:`arma_acf_jacobian` (complex-step derivatives are exact to
#: rounding: no difference is taken, so the step can be tiny).
COMPLEX_STEP = 1e-30


def _coefficients(u: list, sign: float) -> list:
    """Partial autocorrelations ``tanh(u/2)`` -> polynomial coefficients (Durbin-Levinson),
    on Python scalars (float or complex: complex steps).

    ``sign = -1`` for the AR part (``phi_kj = phi_{k-1,j} - r_k phi_{k-1,k-j}``), ``+1`` for
    the MA part, whose polynomial ``1 + theta B`` has the opposite sign convention.
    """
    coef: list = []                     # Python scalars: orders are tiny, numpy calls dear
    for uk in u:
        r = cmath.tanh(0.5 * uk) if isinstance(uk, complex) else math.tanh(0.5 * uk)
        coef = [c + sign * r * c_rev for c, c_rev in zip(coef, coef[::-1], strict=True)] + [r]
    return coef


def _to_coefficients(u: np.ndarray, sign: float) -> np.ndarray:
    """:func:`_coefficients` of an array (real or complex)."""
    u = np.asarray(u)
    cplx = np.iscomplexobj(u)
    return np.array(_coefficients(u.tolist(), sign), dtype=complex if cplx else float)


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


def _solve_small(A: list, b: list) -> list:
    """``A x = b`` by Gaussian elimination with partial pivoting on Python scalars (float
    or complex), for the ``(p + 1)``-square systems of :func:`_acf`: at these sizes the
    loop costs less than one LAPACK call through numpy."""
    n = len(b)
    if n == 2:                          # AR(1) parts: Cramer's rule
        (a, b_), (c, d) = A
        det = a * d - b_ * c
        if det == 0:
            raise np.linalg.LinAlgError("singular ARMA autocovariance system")
        return [(b[0] * d - b_ * b[1]) / det, (a * b[1] - c * b[0]) / det]
    A = [[*row, bi] for row, bi in zip(A, b, strict=True)]
    for k in range(n):
        piv = max(range(k, n), key=lambda i: abs(A[i][k]))
        if A[piv][k] == 0:
            raise np.linalg.LinAlgError("singular ARMA autocovariance system")
        A[k], A[piv] = A[piv], A[k]
        rk = A[k]
        for i in range(k + 1, n):
            f = A[i][k] / rk[k]
            if f != 0:
                ri = A[i]
                for j in range(k, n + 1):
                    ri[j] -= f * rk[j]
    x = [0.0] * n
    for k in range(n - 1, -1, -1):
        rk = A[k]
        acc = rk[n]
        for j in range(k + 1, n):
            acc -= rk[j] * x[j]
        x[k] = acc / rk[k]
    return x


def _acf(phi: list, theta: list, max_lag: int) -> list:
    """:func:`arma_acf` on Python scalars (float, or complex for complex steps): ARMA
    orders are tiny and the lags a few dozen, so plain loops beat numpy's per-call cost
    (this is every evaluation of an ARMA criterion, and ``p + q`` more for its gradient)."""
    p, q = len(phi), len(theta)
    th = [1.0, *theta]
    psi = [1.0]
    for j in range(1, q + 1):
        acc = th[j]
        for i in range(1, min(p, j) + 1):
            acc += phi[i - 1] * psi[j - i]
        psi.append(acc)
    # right-hand side c_k = sum_{j=k}^{q} theta_j psi_{j-k}, zero beyond q
    n = max(max_lag, p, q) + 1
    c = [sum(th[j] * psi[j - k] for j in range(k, q + 1)) for k in range(q + 1)]
    c += [0.0] * (n - len(c))
    if p:
        A = [[1.0 if i == k else 0.0 for i in range(p + 1)] for k in range(p + 1)]
        for k in range(p + 1):
            for i in range(1, p + 1):
                A[k][abs(k - i)] -= phi[i - 1]
        g = _solve_small(A, c[:p + 1])
        # gamma_k = c_k + sum_i phi_i gamma_{k-i} beyond p (c_k = 0 beyond q)
        for k in range(p + 1, min(q, n - 1) + 1):
            acc = c[k]
            for i in range(p):
                acc += phi[i] * g[k - 1 - i]
            g.append(acc)
        if p == 1:                      # AR(1) tail: a geometric sequence
            x, f = g[-1], phi[0]
            for _ in range(n - len(g)):
                x = x * f
                g.append(x)
        else:
            for k in range(len(g), n):
                acc = 0.0
                for i in range(p):
                    acc += phi[i] * g[k - 1 - i]
                g.append(acc)
    else:
        g = c
    g0 = g[0]
    return [gk / g0 for gk in g[:max_lag + 1]]


def _low_order_rho1(phi: float, theta: float) -> tuple[float, float]:
    """ARMA(1, 1)'s ``rho_1`` and ``D = 1 + 2 phi theta + theta^2`` (see
    :func:`low_order_acf`)."""
    D = 1.0 + 2.0 * phi * theta + theta * theta
    return (1.0 + phi * theta) * (phi + theta) / D, D


def low_order_acf(u: list, p: int, max_lag: int) -> np.ndarray:
    r"""Autocorrelations ``rho_0 .. rho_max_lag`` and a trailing 0 of an ARMA(p, q) with
    ``p, q <= 1`` at nlme's unconstrained ``u`` (real, already clipped), in closed form:
    with ``phi = tanh(u_0 / 2)`` and ``theta = tanh(u_p / 2)`` (0 for an absent part),

    .. math:: \rho_1 = \frac{(1 + \phi\theta)(\phi + \theta)}{1 + 2\phi\theta + \theta^2},
              \qquad \rho_k = \rho_1 \phi^{k-1} \quad (k \ge 1),

    the ratio of ``gamma_1 = sigma^2 (1 + phi theta)(phi + theta) / (1 - phi^2)`` to
    ``gamma_0 = sigma^2 (1 + 2 phi theta + theta^2) / (1 - phi^2)``. The general
    recursion (:func:`arma_acf`) gives the same numbers to rounding, at several times the
    cost: this runs on every evaluation of the AR(1), MA(1) and ARMA(1, 1) criteria.
    """
    phi = math.tanh(0.5 * u[0]) if p else 0.0
    theta = math.tanh(0.5 * u[p]) if len(u) > p else 0.0
    rho1, _ = _low_order_rho1(phi, theta)
    out = np.zeros(max_lag + 2)
    out[0] = 1.0
    if max_lag:
        out[1:max_lag + 1] = rho1 * np.power(phi, np.arange(max_lag, dtype=float))
    return out


def low_order_acf_and_jacobian(u: list, p: int, max_lag: int
                               ) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`low_order_acf` (without the trailing 0) and its derivatives with respect to
    ``u``, in closed form: ``d phi / d u_0 = (1 - phi^2) / 2`` (the same for theta),

    .. math:: \frac{\partial \rho_1}{\partial \phi} = 1 - \frac{2\theta\rho_1}{D}, \qquad
              \frac{\partial \rho_1}{\partial \theta} = \frac{1 + \phi^2 + 2\phi\theta
              - 2(\phi + \theta)\rho_1}{D}, \qquad D = 1 + 2\phi\theta + \theta^2,

    and ``d rho_k / d phi = (d rho_1 / d phi) phi^{k-1} + rho_1 (k - 1) phi^{k-2}``,
    ``d rho_k / d theta = (d rho_1 / d theta) phi^{k-1}``.

    Returns
    -------
    ndarray (max_lag + 1,), ndarray (p + q, max_lag + 1)
    """
    phi = math.tanh(0.5 * u[0]) if p else 0.0
    has_ma = len(u) > p
    theta = math.tanh(0.5 * u[p]) if has_ma else 0.0
    rho1, D = _low_order_rho1(phi, theta)
    k1 = np.arange(max_lag, dtype=float)                # k - 1 for the lags k = 1..max_lag
    pw = np.power(phi, k1)                              # phi^(k-1)
    value = np.empty(max_lag + 1)
    value[0] = 1.0
    value[1:] = rho1 * pw
    jac = np.zeros((len(u), max_lag + 1))
    if p:
        # (k - 1) phi^(k-2), 0 at k = 1 (and for phi = 0 beyond k = 2)
        dpw = np.zeros(max_lag)
        dpw[1:] = k1[1:] * pw[:-1]
        d_phi = 1.0 - 2.0 * theta * rho1 / D
        jac[0, 1:] = (d_phi * pw + rho1 * dpw) * (0.5 * (1.0 - phi * phi))
    if has_ma:
        d_theta = (1.0 + phi * phi + 2.0 * phi * theta - 2.0 * (phi + theta) * rho1) / D
        jac[p, 1:] = (d_theta * (0.5 * (1.0 - theta * theta))) * pw
    return value, jac


def is_low_order(p: int, q: int) -> bool:
    """Whether :func:`low_order_acf` applies (``p <= 1`` and ``q <= 1``)."""
    return p <= 1 and q <= 1


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
        AR and MA coefficients (real, or complex for complex-step derivatives).
    max_lag : int

    Returns
    -------
    ndarray (max_lag + 1,)
    """
    phi, theta = np.asarray(phi), np.asarray(theta)
    cplx = np.iscomplexobj(phi) or np.iscomplexobj(theta)
    out = _acf(phi.tolist(), theta.tolist(), max_lag)
    return np.array(out, dtype=complex if cplx else float)


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
    return arma_acf_and_jacobian(u, p, max_lag)[1]


def arma_acf_and_jacobian(u: np.ndarray, p: int, max_lag: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`arma_acf` at ``arma_constrained(u, p)`` and :func:`arma_acf_jacobian` from
    the same complex-step passes: the real part of a pass is the autocorrelation itself
    (the step's contribution to it is of order ``COMPLEX_STEP^2``), so the value costs no
    pass of its own.

    Returns
    -------
    ndarray (max_lag + 1,), ndarray (p + q, max_lag + 1)
    """
    u = np.asarray(u, dtype=float).tolist()
    if is_low_order(p, len(u) - p):
        return low_order_acf_and_jacobian(u, p, max_lag)
    out = np.empty((len(u), max_lag + 1))
    value = None
    for j in range(len(u)):
        uj = [complex(v) for v in u]
        uj[j] += 1j * COMPLEX_STEP
        acf = _acf(_coefficients(uj[:p], -1.0), _coefficients(uj[p:], 1.0), max_lag)
        out[j] = [v.imag / COMPLEX_STEP for v in acf]
        if value is None:
            value = np.array([v.real for v in acf])
    return value, out

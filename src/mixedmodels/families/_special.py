r"""Special functions the densities need beyond :mod:`scipy.special`, on plain arrays.

The Stirling remainder

.. math::

    r(x) = \log\Gamma(x) - \left[(x - \tfrac12)\log x - x + \tfrac12\log 2\pi\right]

is small (``~ 1/(12x)``) where ``log Gamma`` itself is large, so writing a log-density
through ``r`` turns differences of large ``log Gamma`` values (negative binomial with a
large size, beta with a large precision, Gamma with a large shape) into differences of
small numbers plus elementary terms that can be simplified by hand. For ``x >= 10`` it is
evaluated by its asymptotic (Bernoulli) series, eight terms, truncation error below
``1e-18``; below, from ``gammaln`` directly, where no cancellation is large.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = [
    "LOG_2PI",
    "STIRLING_SERIES_MIN",
    "polygamma_fast",
    "stirling_remainder",
]

LOG_2PI = float(np.log(2.0 * np.pi))
#: Smallest argument at which the Stirling remainder is taken from its asymptotic series;
#: eight terms are then accurate to ~1e-18 (the next term is B_18 / (18 17 x^17)).
STIRLING_SERIES_MIN = 10.0
# B_{2k} / (2k (2k - 1)), k = 1..8: coefficients of x^(1 - 2k) in the series of r(x).
_STIRLING_COEF = np.array([
    1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0,
    -691.0 / 360360.0, 1.0 / 156.0, -3617.0 / 122400.0,
])
_POWERS = 1 - 2 * np.arange(1, 9)          # exponents 1 - 2k of the series terms


def polygamma_fast(n: int, x: np.ndarray) -> np.ndarray:
    r"""``psi^{(n)}(x)`` for ``x > 0``, ``n = 0, 1, 2`` (``scipy.special.polygamma`` goes
    through a slower generic path): ``psi_1 = zeta(2, x)``, ``psi_2 = -2 zeta(3, x)``."""
    if n == 0:
        return special.psi(x)
    if n == 1:
        return special.zeta(2.0, x)
    if n == 2:
        return -2.0 * special.zeta(3.0, x)
    return special.polygamma(n, x)


def _series(x: np.ndarray, k: int) -> np.ndarray:
    """k-th derivative of the asymptotic series of r at x (x >= STIRLING_SERIES_MIN)."""
    inv = 1.0 / x
    out = np.zeros_like(x)
    for c, p in zip(_STIRLING_COEF[::-1], _POWERS[::-1], strict=True):
        fac = c
        for i in range(k):
            fac = fac * (p - i)
        out = out + fac * inv ** (k - p)
    return out


def _direct(x: np.ndarray, k: int) -> np.ndarray:
    if k == 0:
        return special.gammaln(x) - (x - 0.5) * np.log(x) + x - 0.5 * LOG_2PI
    if k == 1:
        return special.psi(x) - np.log(x) + 0.5 / x
    if k == 2:
        return polygamma_fast(1, x) - 1.0 / x - 0.5 / (x * x)
    return polygamma_fast(2, x) + 1.0 / (x * x) + 1.0 / (x * x * x)


def stirling_remainder(x, k: int = 0) -> np.ndarray:
    """k-th derivative (``k = 0..3``) of the Stirling remainder ``r(x)``, ``x > 0``."""
    x = np.asarray(x, dtype=float)
    big = x >= STIRLING_SERIES_MIN
    if np.all(big):
        return _series(x, k)
    if not np.any(big):
        return _direct(x, k)
    with np.errstate(all="ignore"):
        return np.where(big, _series(np.where(big, x, STIRLING_SERIES_MIN), k),
                        _direct(np.where(big, 1.0, x), k))

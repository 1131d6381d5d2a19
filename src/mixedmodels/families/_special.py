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
    "POLYGAMMA_SERIES_MIN",
    "STIRLING_SERIES_MIN",
    "expit_pair",
    "lgamma_derivatives",
    "lgamma_diff_counts",
    "log_factorial_int",
    "logistic_parts",
    "polygamma_fast",
    "polygammas",
    "softplus_value",
    "stirling_derivatives",
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


def _derived_coefficients() -> list[np.ndarray]:
    # the j-th derivative of c x^p is c p (p - 1) ... (p - j + 1) x^(p - j): the series of
    # r^(j) is x^(-1-j) times a polynomial in 1/x^2 with these coefficients
    out, coef = [], _STIRLING_COEF.astype(float)
    p = _POWERS.astype(float)
    for _ in range(4):
        out.append(coef.copy())
        coef = coef * p
        p = p - 1.0
    return out


_SERIES_COEF = _derived_coefficients()


#: Argument from which trigamma / tetragamma use their asymptotic series; smaller
#: arguments are shifted up by the recurrences ``psi_n(x) = psi_n(x + 1) + (-1)^(n+1) n! /
#: x^(n+1)`` (at most this many steps). Truncation error at 10: ~1e-17 relative.
POLYGAMMA_SERIES_MIN = 10.0
# Bernoulli numbers B_2 .. B_14
_BERNOULLI = np.array([1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6])
_ODD = 2 * np.arange(1, 8) + 1            # 2k + 1
_ODD_BERNOULLI = _ODD * _BERNOULLI
#: the recurrence shifts 0, 1, ..., as a column
_STEPS = np.arange(np.ceil(POLYGAMMA_SERIES_MIN) + 1.0).reshape(-1, 1)


def _trigamma_tetragamma(x: np.ndarray, n: int) -> np.ndarray:
    return _polygammas(np.asarray(x, dtype=float), n)[n - 1]


def polygammas(x: np.ndarray, top: int) -> list[np.ndarray]:
    """``[psi_1(x), ..., psi_top(x)]`` (``top`` 1 or 2) in one pass, ``x > 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _polygammas(np.asarray(x, dtype=float), top)


def _polygammas(x: np.ndarray, top: int) -> list[np.ndarray]:
    """``[psi_1(x), ..., psi_top(x)]`` (``top`` 1 or 2) sharing the recurrence shift and
    the powers of ``1/z`` between trigamma and tetragamma."""
    shape = x.shape
    x = x.reshape(-1)
    small = x < POLYGAMMA_SERIES_MIN
    n_small = np.count_nonzero(small)
    z = x
    acc = [0.0, 0.0]
    if n_small:
        # shift every small argument by the same number of steps, in one 2-D pass laid out
        # (steps, n) so that the sums over the steps run along contiguous rows
        every = n_small == x.size
        xs = x if every else x[small]
        lowest = xs.min()
        # (arguments <= 0 or NaN are outside the domain: any shift gives NaN or garbage)
        steps = int(np.ceil(POLYGAMMA_SERIES_MIN - lowest)) if lowest > 0 else \
            _STEPS.shape[0] - 1
        inv = 1.0 / (xs + _STEPS[:steps])
        inv2 = inv * inv
        parts = [inv2.sum(axis=0)]
        if top >= 2:
            parts.append(-2.0 * (inv2 * inv).sum(axis=0))
        if every:
            z = x + float(steps)
            acc = [*parts, 0.0]
        else:
            z = x.copy()
            z[small] += steps
            for i, part in enumerate(parts):
                full = np.zeros_like(x)
                full[small] = part
                acc[i] = full
    inv = 1.0 / z
    inv2 = inv * inv
    # trigamma: 1/z + 1/(2z^2) + sum B_2k / z^(2k+1)
    series = _BERNOULLI[-1] * inv2
    for b in _BERNOULLI[-2::-1]:
        series = (series + b) * inv2
    out = [(acc[0] + inv + 0.5 * inv2 + series * inv).reshape(shape)]
    if top >= 2:
        # tetragamma: -1/z^2 - 1/z^3 - sum (2k+1) B_2k / z^(2k+2)
        series = _ODD_BERNOULLI[-1] * inv2
        for c in _ODD_BERNOULLI[-2::-1]:
            series = (series + c) * inv2
        out.append((acc[1] - inv2 - inv2 * inv - series * inv2).reshape(shape))
    return out


def expit_pair(v) -> tuple[np.ndarray, np.ndarray]:
    """``(expit(v), expit(-v))`` from one exponential, both without cancellation."""
    v = np.asarray(v, dtype=float)
    e = np.exp(-np.abs(v))
    r = 1.0 / (1.0 + e)
    er = e * r                  # (formed once: the same product in both)
    pos = v >= 0
    return np.where(pos, r, er), np.where(pos, er, r)


def logistic_parts(v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(expit(v), expit(-v), log1p(exp(-|v|)))`` from one exponential: the pair of
    :func:`expit_pair` and the tail of ``softplus(v) = max(v, 0) + log1p(exp(-|v|))``."""
    v = np.asarray(v, dtype=float)
    e = np.exp(-np.abs(v))
    r = 1.0 / (1.0 + e)
    er = e * r
    pos = v >= 0
    return np.where(pos, r, er), np.where(pos, er, r), np.log1p(e)


def softplus_value(v) -> np.ndarray:
    """``log(1 + exp(v))`` for any ``v``."""
    v = np.asarray(v, dtype=float)
    return np.maximum(v, 0.0) + np.log1p(np.exp(-np.abs(v)))


#: Largest table of log-factorials kept (8 MB); larger arguments use gammaln.
LOG_FACTORIAL_TABLE_MAX = 2 ** 20
_LOG_FACTORIAL = special.gammaln(np.arange(1.0, 4097.0))


def log_factorial_int(k: np.ndarray) -> np.ndarray:
    """``log k!`` for whole numbers ``k >= 0`` (floats) by table look-up: series grids
    need it for millions of terms, and ``gammaln`` is the slow part there. The table
    (exact ``gammaln`` values) grows on demand."""
    global _LOG_FACTORIAL
    k = np.asarray(k, dtype=float)
    top = float(np.max(k, initial=0.0))
    if top >= LOG_FACTORIAL_TABLE_MAX:
        return special.gammaln(k + 1.0)
    if top >= _LOG_FACTORIAL.size:
        _LOG_FACTORIAL = special.gammaln(np.arange(1.0, min(2.0 * top + 2.0,
                                                            LOG_FACTORIAL_TABLE_MAX + 1.0)))
    return _LOG_FACTORIAL[k.astype(np.int64)]


def polygamma_fast(n: int, x: np.ndarray) -> np.ndarray:
    r"""``psi^{(n)}(x)`` for ``x > 0``, ``n = 0, 1, 2``: digamma from scipy, trigamma and
    tetragamma by recurrence plus asymptotic series (scipy's ``polygamma`` / ``zeta`` are
    ~50 times slower than ``psi``)."""
    if n == 0:
        return special.psi(x)
    if n in (1, 2):
        with np.errstate(divide="ignore", invalid="ignore"):
            return _trigamma_tetragamma(x, n)
    return special.polygamma(n, x)


def lgamma_derivatives(x, order: int) -> list[np.ndarray]:
    """``[log Gamma(x), psi(x), psi_1(x), psi_2(x)]`` up to ``order`` (``x > 0``), the
    polygammas computed together."""
    x = np.asarray(x, dtype=float)
    out = [special.gammaln(x)]
    if order >= 1:
        out.append(special.psi(x))
    if order >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            out += _polygammas(x, min(order, 3) - 1)
    return out


def _series(x: np.ndarray, order: int) -> list[np.ndarray]:
    """The asymptotic series of r and its derivatives up to ``order`` at x (x >=
    STIRLING_SERIES_MIN), by Horner's rule in ``1/x^2``."""
    inv = 1.0 / x
    w = inv * inv
    out = []
    scale = inv
    for coef in _SERIES_COEF[:order + 1]:
        acc = coef[-1] * w
        for c in coef[-2:0:-1]:
            acc = (acc + c) * w
        out.append((acc + coef[0]) * scale)
        scale = scale * inv
    return out


def _direct(x: np.ndarray, order: int) -> list[np.ndarray]:
    lg = lgamma_derivatives(x, order)
    out = [lg[0] - (x - 0.5) * np.log(x) + x - 0.5 * LOG_2PI]
    if order >= 1:
        out.append(lg[1] - np.log(x) + 0.5 / x)
    if order >= 2:
        out.append(lg[2] - 1.0 / x - 0.5 / (x * x))
    if order >= 3:
        out.append(lg[3] + 1.0 / (x * x) + 1.0 / (x * x * x))
    return out


def stirling_derivatives(x, order: int) -> list[np.ndarray]:
    """``[r(x), r'(x), ...]`` up to ``order`` (0 to 3) of the Stirling remainder, ``x > 0``."""
    x = np.asarray(x, dtype=float)
    big = x >= STIRLING_SERIES_MIN
    if np.all(big):
        return _series(x, order)
    if not np.any(big):
        return _direct(x, order)
    with np.errstate(all="ignore"):
        ser = _series(np.where(big, x, STIRLING_SERIES_MIN), order)
        dir_ = _direct(np.where(big, 1.0, x), order)
    return [np.where(big, a, b) for a, b in zip(ser, dir_, strict=True)]


#: Largest count for which :func:`lgamma_diff_counts` sums its terms (rounding of the
#: cumulative sums grows with their length; beyond, the log-gamma forms are used).
COUNT_SUM_MAX = 2048


def lgamma_diff_counts(a: float, y: np.ndarray, order: int) -> list[np.ndarray] | None:
    r"""``log Gamma(a + y) - log Gamma(a)`` and its ``a``-derivatives for one value ``a > 0``
    and whole numbers ``0 <= y <= COUNT_SUM_MAX`` as finite sums,

    .. math::

        \sum_{j < y} \log(a + j), \quad \sum_{j < y} (a + j)^{-1}, \quad
        -\sum_{j < y} (a + j)^{-2}, \quad 2 \sum_{j < y} (a + j)^{-3},

    read from cumulative sums over ``j < max(y)`` (a negative binomial's size or a
    beta-binomial's precision without a dispersion model: a few operations on ``max(y)``
    terms instead of polygammas of every ``a + y``). Exact up to the rounding of the sums
    (``<= max(y)`` ulps). None when ``y`` is not of that kind.
    """
    if y.size == 0:
        return None
    top = y.max()
    if not y.min() >= 0.0 or not top <= COUNT_SUM_MAX or not (y == np.floor(y)).all():
        return None
    idx = y.astype(np.intp)
    t = a + np.arange(int(top))
    inv = 1.0 / t
    terms = [np.log(t), inv]
    if order >= 2:
        inv2 = inv * inv
        terms.append(-inv2)
    if order >= 3:
        terms.append(2.0 * inv2 * inv)
    out = []
    for term in terms[:order + 1]:
        c = np.empty(t.size + 1)
        c[0] = 0.0
        np.cumsum(term, out=c[1:])
        out.append(c[idx])
    return out


def stirling_remainder(x, k: int = 0) -> np.ndarray:
    """k-th derivative (``k = 0..3``) of the Stirling remainder ``r(x)``, ``x > 0``."""
    return stirling_derivatives(x, k)[k]

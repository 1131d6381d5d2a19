r"""Do the quantiles of the scaled residuals depend on a predictor?

Under a correctly specified model the scaled residuals are U(0, 1) whatever the predictor,
so for every ``tau`` the indicator ``d_i = 1\{r_i \le \tau\} - \tau`` has mean zero and
variance ``\tau(1 - \tau)`` independently of the predictor. With ``B`` a cubic B-spline
basis (``k`` columns, which span the constant) of the rank-transformed predictor, the score
statistic of the regression of ``d`` on ``B``

.. math:: T_\tau = d' B (B'B)^{-1} B' d \,/\, \tau(1 - \tau) \;\sim\; \chi^2_k

tests the location (the intercept) and the shape (the smooth) of the ``tau``-quantile curve
at once. The tests of several quantiles are combined as DHARMa combines its per-quantile
tests: the smallest Benjamini-Hochberg adjusted p-value.

DHARMa fits quantile GAMs (``qgam``) and tests their intercept and smooth term; this is the
same null hypothesis with a test that needs no fitting. The curves drawn in residual plots
are linear quantile regressions on the same basis (:func:`quantile_curves`, a linear
program; binned sample quantiles above :data:`QR_MAX_N` residuals).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import interpolate, optimize, stats

from .residual_tests import ResidualTest

__all__ = ["QUANTILES", "bh_adjust", "quantile_curves", "quantile_test", "rank_transform",
           "spline_basis"]

#: Quantiles DHARMa tests and draws.
QUANTILES = (0.25, 0.5, 0.75)
#: Columns of the B-spline basis (fewer when the predictor has fewer distinct values).
BASIS_DF = 5
#: Above this many residuals the drawn quantile curves are binned sample quantiles
#: instead of quantile regressions.
QR_MAX_N = 5000
#: Bins of the binned quantile curves.
QR_BINS = 20
#: Relative digits kept before ranking a predictor (ties up to rounding noise).
TIE_DIGITS = 10


def rank_transform(x) -> np.ndarray:
    """Average ranks divided by the largest rank (DHARMa's ``rankTransform``): in (0, 1]."""
    x = np.asarray(x, dtype=float)
    scale = float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0))
    if scale > 0.0:
        # values equal up to rounding noise are ties (fitted values of one design cell
        # differ in their last bits, and their order would depend on the optimizer's)
        x = np.round(x / scale, TIE_DIGITS)
    r = stats.rankdata(x, method="average")
    return r / r.max()


def spline_basis(x: np.ndarray, df: int = BASIS_DF, at=None) -> np.ndarray:
    """Cubic B-spline basis on [min x, max x] with equally spaced interior knots:
    ``min(df, distinct values)`` columns summing to one (the constant is in their span);
    evaluated at ``at`` (default: ``x``)."""
    x = np.asarray(x, dtype=float)
    at = x if at is None else np.asarray(at, dtype=float)
    k = int(min(df, np.unique(x).size))
    if k <= 1:
        return np.ones((at.size, 1))
    degree = min(3, k - 1)
    lo, hi = float(x.min()), float(x.max())
    inner = np.linspace(lo, hi, k - degree + 1)[1:-1]
    knots = np.r_[[lo] * (degree + 1), inner, [hi] * (degree + 1)]
    return interpolate.BSpline.design_matrix(np.clip(at, lo, hi), knots, degree).toarray()


def bh_adjust(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's ``p.adjust(p, "BH")``)."""
    p = np.asarray(p, dtype=float)
    n = p.size
    order = np.argsort(p)[::-1]
    ranked = p[order] * n / np.arange(n, 0, -1)
    adj = np.minimum.accumulate(ranked)
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def quantile_test(residuals, predictor, quantiles=QUANTILES) -> ResidualTest:
    """The score tests of the module docstring.

    Parameters
    ----------
    residuals : array_like (n,)
        Scaled residuals.
    predictor : array_like (n,)
        Rank-transformed inside.
    quantiles : sequence of float

    Returns
    -------
    ResidualTest
        ``statistic``: the largest ``T_tau / k``; ``details``: per quantile ``chisq``,
        ``df`` and ``p_values``.
    """
    r = np.asarray(residuals, dtype=float)
    B = spline_basis(rank_transform(predictor))
    Q, _ = np.linalg.qr(B)
    k = Q.shape[1]
    chisq, pvals = [], []
    for tau in quantiles:
        if not 0.0 < tau < 1.0:
            raise ValueError(f"quantiles must be in (0, 1), got {tau!r}")
        d = (r <= tau) - tau
        proj = Q.T @ d
        t = float(proj @ proj) / (tau * (1.0 - tau))
        chisq.append(t)
        pvals.append(float(stats.chi2.sf(t, k)))
    p = float(np.min(bh_adjust(pvals)))
    return ResidualTest("quantiles", float(max(chisq)) / k, p, "two.sided",
                        "Score tests of the residual quantiles against a B-spline of the "
                        "rank-transformed predictor (BH-combined)",
                        {"quantiles": tuple(quantiles), "chisq": tuple(chisq), "df": k,
                         "p_values": tuple(pvals)})


def quantile_curves(residuals, predictor, quantiles=QUANTILES, grid: int = 100):
    """Fitted quantile curves of the residuals against the rank-transformed predictor.

    Parameters
    ----------
    residuals, predictor : array_like (n,)
    quantiles : sequence of float
    grid : int
        Points on each curve.

    Returns
    -------
    x : ndarray (grid,)
        Rank-transformed predictor values.
    curves : dict of float -> ndarray (grid,)
    """
    r = np.asarray(residuals, dtype=float)
    x = rank_transform(predictor)
    xs = np.linspace(x.min(), x.max(), grid)
    out = {}
    if r.size > QR_MAX_N:
        edges = np.quantile(x, np.linspace(0, 1, QR_BINS + 1))
        mids = 0.5 * (edges[1:] + edges[:-1])
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, QR_BINS - 1)
        for tau in quantiles:
            qs = np.array([np.quantile(r[idx == b], tau) if np.any(idx == b) else np.nan
                           for b in range(QR_BINS)])
            out[tau] = np.interp(xs, mids, qs)
        return xs, out
    B = spline_basis(x)
    Bg = spline_basis(x, at=xs)
    for tau in quantiles:
        out[tau] = Bg @ _quantile_regression(B, r, tau)
    return xs, out


def _quantile_regression(B: np.ndarray, y: np.ndarray, tau: float) -> np.ndarray:
    """``argmin_b sum_i rho_tau(y_i - B_i b)`` as a linear program (HiGHS)."""
    n, k = B.shape
    c = np.r_[np.zeros(k), np.full(n, tau), np.full(n, 1.0 - tau)]
    A = sp.hstack([sp.csr_matrix(B), sp.identity(n), -sp.identity(n)], format="csr")
    bounds = [(None, None)] * k + [(0, None)] * (2 * n)
    res = optimize.linprog(c, A_eq=A, b_eq=y, bounds=bounds, method="highs")
    if not res.success:             # pragma: no cover - the LP is always feasible
        return np.full(k, np.quantile(y, tau))
    return res.x[:k]

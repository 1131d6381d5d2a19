"""lme4's unstructured covariance: theta is the lower triangle of a Cholesky factor."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import CovarianceStructure

__all__ = ["LowerFactorEntries", "Unstructured", "correlation_to_glmmtmb", "glmmtmb_correlation",
           "psd_cholesky"]


def psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive *semi*-definite matrix (zero pivots allowed).

    A correlation of +-1 makes ``C`` singular; the factor then has a zero on its diagonal
    (the boundary of lme4's parameter space), which ``numpy.linalg.cholesky`` refuses.
    The loop is over the p effects of one term, never over data.
    """
    p = C.shape[0]
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        pass
    L = np.zeros_like(C, dtype=float)
    for j in range(p):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(max(d, 0.0))
        if L[j, j] > 0.0:
            L[j + 1:, j] = (C[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


def glmmtmb_correlation(values: np.ndarray, p: int) -> np.ndarray:
    """glmmTMB's correlation parameters (TMB's ``UNSTRUCTURED_CORR``: the strict lower
    triangle of a unit-diagonal ``L``, row by row) as the correlation matrix
    ``D^{-1/2} L L' D^{-1/2}``, ``D = diag(L L')``."""
    L = np.eye(p)
    L[np.tril_indices(p, -1)] = values
    S = L @ L.T
    d = 1.0 / np.sqrt(np.diag(S))
    return S * np.outer(d, d)


def correlation_to_glmmtmb(C: np.ndarray) -> np.ndarray:
    """Inverse of :func:`glmmtmb_correlation`: scale the rows of ``chol(C)`` to a unit
    diagonal and read the strict lower triangle row by row."""
    Lc = psd_cholesky(C)
    L = Lc / np.diag(Lc)[:, None]
    return L[np.tril_indices(C.shape[0], -1)]


@lru_cache(maxsize=32)
def _lower_triangle(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and diagonal flags of a p x p lower triangle, column-major (theta's
    order: column outer), read-only and made once per ``p``: every fit builds its terms'
    structures afresh, and ``np.triu_indices`` costs a small fit more than its result."""
    cols, rows = np.triu_indices(p)
    diag = rows == cols
    for a in (rows, cols, diag):
        a.setflags(write=False)
    return rows, cols, diag


@lru_cache(maxsize=32)
def _lower_triangle_map(p: int) -> np.ndarray:
    """:meth:`Unstructured.direct_map` of a p x p factor (read-only, made once per ``p``:
    every small fit's objective asks for it two or three times)."""
    rows, cols, _ = _lower_triangle(p)
    out = np.full((p, p), -1, dtype=np.intp)
    out[rows, cols] = np.arange(rows.size)
    out = out.ravel()
    out.setflags(write=False)
    return out


class LowerFactorEntries(CovarianceStructure):
    """A structure whose theta are entries of ``Lambda`` itself, at ``(rows, cols)``
    (set by the subclass, with ``_diag`` marking the diagonal ones): lme4's Cholesky
    factor, glmmTMB's reduced-rank loadings. The diagonal entries are bounded below by
    zero and flipping a column's sign leaves ``Lambda Lambda'`` unchanged."""

    rows: np.ndarray
    cols: np.ndarray
    _diag: np.ndarray

    def lower_bounds(self) -> np.ndarray:
        return np.where(self._diag, 0.0, -np.inf)

    def direct_map(self) -> np.ndarray:
        out = np.full((self.p, self.p), -1, dtype=np.intp)
        out[self.rows, self.cols] = np.arange(self.n_theta)
        return out.ravel()

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        out = np.zeros((self.p, self.p))
        out[self.rows, self.cols] = theta
        return out

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        """Flip the columns of ``Lambda`` whose diagonal is negative (same covariance)."""
        lam = self.lambda_(theta)
        signs = np.where(np.diag(lam) < 0, -1.0, 1.0)
        return (lam * signs[None, :])[self.rows, self.cols]


class Unstructured(LowerFactorEntries):
    """General positive semi-definite covariance ``Lambda Lambda'``.

    ``Lambda`` is lower triangular; theta holds its lower triangle column by column (lme4's
    order: for p = 2, ``[L11, L21, L22]``). Diagonal elements are bounded below by zero,
    which makes the parameterization unique and puts singular fits on the boundary. The
    natural parameters are the standard deviations (at the diagonal positions) and the
    correlations (at the off-diagonal ones), in theta's order.
    """

    keyword = "us"
    glmmtmb_code = 1
    sign_symmetric = True
    direct = True

    def __init__(self, p: int):
        super().__init__(p)
        self.rows, self.cols, self._diag = _lower_triangle(self.p)

    @property
    def n_theta(self) -> int:
        return self.p * (self.p + 1) // 2

    def theta0(self) -> np.ndarray:
        return self._diag.astype(float)

    def direct_map(self) -> np.ndarray:
        # (the lower triangle's entries in theta's order: the same for every p x p term)
        return _lower_triangle_map(self.p)

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        if self.p == 1:
            # (a scalar term, ~35 calls a small GLMM fit: its one theta as the 1 x 1
            # matrix without the fancy-index assignment; the same value)
            return np.array(theta, dtype=float).reshape(1, 1)
        return super().lambda_(theta)

    # -- natural parameters: sds and correlations ----------------------------------------
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(f"sd_{r + 1}" if r == c else f"cor_{r + 1}.{c + 1}"
                     for r, c in zip(self.rows, self.cols, strict=True))

    def parameter_scales(self) -> np.ndarray:
        return self._diag.copy()

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.where(self._diag, 0.0, -1.0), np.where(self._diag, np.inf, 1.0))

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        sd, cor = self.sd_cor(theta)
        return np.where(self._diag, sd[self.rows], cor[self.rows, self.cols])

    def theta_from_parameters(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        sd = values[self._diag]
        C = np.eye(self.p)
        off = ~self._diag
        C[self.rows[off], self.cols[off]] = values[off]
        C[self.cols[off], self.rows[off]] = values[off]
        lam = sd[:, None] * psd_cholesky(C)
        return lam[self.rows, self.cols]

    # -- glmmTMB: log sds, then the unit-diagonal Cholesky factor of the correlation -----
    def to_glmmtmb(self, theta: np.ndarray) -> np.ndarray:
        sd, cor = self.sd_cor(theta)
        with np.errstate(divide="ignore"):
            return np.concatenate([np.log(sd), correlation_to_glmmtmb(cor)])

    def from_glmmtmb(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        sd = np.exp(values[:self.p])
        cov = glmmtmb_correlation(values[self.p:], self.p) * np.outer(sd, sd)
        return psd_cholesky(cov)[self.rows, self.cols]

    def linear_basis(self) -> list[np.ndarray]:
        """``E_ab`` (ones at ``(a, b)`` and ``(b, a)``) for the elements of the covariance,
        upper triangle column by column (pbkrtest's order)."""
        out = []
        for b in range(self.p):
            for a in range(b + 1):
                E = np.zeros((self.p, self.p))
                E[a, b] = E[b, a] = 1.0
                out.append(E)
        return out

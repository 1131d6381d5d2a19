"""lme4's unstructured covariance: theta is the lower triangle of a Cholesky factor."""

from __future__ import annotations

import numpy as np

from .base import CovarianceStructure

__all__ = ["Unstructured"]


class Unstructured(CovarianceStructure):
    """General positive semi-definite covariance ``Lambda Lambda'``.

    ``Lambda`` is lower triangular; theta holds its lower triangle column by column (lme4's
    order: for p = 2, ``[L11, L21, L22]``). Diagonal elements are bounded below by zero,
    which makes the parameterization unique and puts singular fits on the boundary.
    """

    keyword = "us"
    sign_symmetric = True

    def __init__(self, p: int):
        super().__init__(p)
        # column-major lower triangle: (row, col) with col outer loop
        cols, rows = np.triu_indices(self.p)
        self.rows, self.cols = rows, cols
        self._diag = rows == cols

    @property
    def n_theta(self) -> int:
        return self.p * (self.p + 1) // 2

    def lower_bounds(self) -> np.ndarray:
        return np.where(self._diag, 0.0, -np.inf)

    def theta0(self) -> np.ndarray:
        return self._diag.astype(float)

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

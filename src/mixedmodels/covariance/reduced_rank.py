r"""Reduced-rank (factor-analytic) covariance ``rr(expr | g, d)``: ``Sigma = Lambda_d
Lambda_d'`` with a p x d matrix of loadings (glmmTMB's ``rr``).

``Lambda_d`` is lower trapezoidal (zeros above its diagonal, which removes the rotational
freedom of the factors). theta is glmmTMB's: the d diagonal loadings first, then the
entries below the diagonal column by column. The engines use the p x p factor
``Lambda = [Lambda_d, 0]``: the spherical effects of the empty columns carry only their
prior and leave every likelihood unchanged, as in glmmTMB, whose ``rr`` terms also keep
p effects per level. Flipping the sign of a column of loadings leaves ``Sigma`` unchanged:
the structure is sign-symmetric, with canonical form non-negative diagonal loadings.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._errors import FormulaError, FormulaWarning
from .unstructured import LowerFactorEntries

__all__ = ["ReducedRank"]


class ReducedRank(LowerFactorEntries):
    """Factor-analytic covariance of rank ``d``.

    Parameters
    ----------
    p : int
    d : int
        Number of latent factors, ``1 <= d <= p`` (glmmTMB's default 2, capped at p).
    """

    keyword = "rr"
    glmmtmb_code = 9
    sign_symmetric = True
    direct = True

    def __init__(self, p: int, d: int = 2):
        super().__init__(p)
        d = int(d)
        if d < 1:
            raise FormulaError(f"rr(): the rank d must be at least 1, got {d}")
        if d > self.p:
            # glmmTMB would build p*d - d(d-1)/2 loadings, more than the p(p+1)/2 of a
            # full covariance; at d = p the term already is the unstructured one
            warnings.warn(f"rr(): the rank d={d} exceeds the term's {self.p} columns; "
                          f"using d={self.p} (a full-rank rr() is the unstructured us())",
                          FormulaWarning, stacklevel=2)
        self.d = min(d, self.p)
        diag_r = np.arange(self.d)
        low_r, low_c = [], []
        for j in range(self.d):
            for i in range(j + 1, self.p):
                low_r.append(i)
                low_c.append(j)
        self.rows = np.concatenate([diag_r, np.array(low_r, dtype=np.intp)]).astype(np.intp)
        self.cols = np.concatenate([diag_r, np.array(low_c, dtype=np.intp)]).astype(np.intp)
        self._diag = self.rows == self.cols

    @property
    def n_theta(self) -> int:
        return self.p * self.d - self.d * (self.d - 1) // 2

    def theta0(self) -> np.ndarray:
        return np.ones(self.n_theta)

    def loadings(self, theta: np.ndarray) -> np.ndarray:
        """The p x d matrix of factor loadings (canonical signs)."""
        return self.lambda_(self.canonical(theta))[:, :self.d]

    def parameter_names(self) -> tuple[str, ...]:
        return tuple(f"loading_{r + 1}.{c + 1}" for r, c in
                     zip(self.rows, self.cols, strict=True))

    def parameter_scales(self) -> np.ndarray:
        return np.ones(self.n_theta, dtype=bool)

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lower_bounds(), np.full(self.n_theta, np.inf)

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        return self.canonical(theta)

    def to_glmmtmb(self, theta: np.ndarray) -> np.ndarray:
        return self.canonical(theta)

    def __repr__(self) -> str:
        return f"ReducedRank(p={self.p}, d={self.d})"

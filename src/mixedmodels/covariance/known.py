r"""Covariances built on a known matrix ``K`` (a phylogenetic, genomic or spatial
relationship matrix): ``propto`` (``Sigma = lambda K``, one parameter) and ``equalto``
(``Sigma = K``, none) -- glmmTMB's structures of the same names (1.1.8 and later).

``K`` must be symmetric positive semi-definite; ``Lambda = sqrt(lambda) C`` with
``C C' = K`` (its Cholesky factor, or a factor from its eigendecomposition when ``K`` is
singular). theta is glmmTMB's ``log lambda``; the natural parameter is the scale
``sqrt(lambda)`` (relative to sigma in lmer). The known matrix is supplied through the
front doors' ``covariance_matrices=`` argument (see :mod:`mixedmodels.design.known`,
which checks and orders it).
"""

from __future__ import annotations

import numpy as np

from ._factor import psd_factor
from .base import CovarianceStructure

__all__ = ["Fixed", "Proportional"]


class _Known(CovarianceStructure):
    def __init__(self, p: int, matrix: np.ndarray | None = None):
        super().__init__(p)
        if matrix is None:
            raise ValueError(f"{self.keyword}() needs its known matrix")
        K = np.asarray(matrix, dtype=float)
        if K.shape != (self.p, self.p):
            raise ValueError(f"{self.keyword}(): the known matrix is {K.shape}, the term has "
                             f"{self.p} columns")
        self.matrix = K
        self.factor = psd_factor(K)


class Proportional(_Known):
    """``Sigma = lambda K`` for a known ``K``; theta = ``log lambda``."""

    keyword = "propto"
    glmmtmb_code = 11

    @property
    def n_theta(self) -> int:
        return 1

    def theta0(self) -> np.ndarray:
        return np.zeros(1)

    def start(self, sd: float) -> np.ndarray:
        scale = float(np.sqrt(np.mean(np.diag(self.matrix)))) or 1.0
        return np.array([2.0 * np.log(sd / scale)])

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        return np.exp(0.5 * float(theta[0])) * self.factor

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        return 0.5 * self.lambda_(theta)[None]

    def relative_jacobian(self, theta: np.ndarray) -> np.ndarray:
        # dLambda = Lambda / 2, whether or not K (and so Lambda) is singular
        return 0.5 * np.eye(self.p)[None]

    def parameter_names(self) -> tuple[str, ...]:
        return ("scale",)

    def parameter_scales(self) -> np.ndarray:
        return np.ones(1, dtype=bool)

    def log_scale_mask(self) -> np.ndarray:
        return np.ones(1, dtype=bool)

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(1), np.full(1, np.inf)

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        return np.exp(0.5 * np.asarray(theta, dtype=float))

    def theta_from_parameters(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 2.0 * np.log(np.asarray(values, dtype=float))

    def is_singular(self, theta: np.ndarray, tol: float = 1e-4) -> bool:
        return bool(np.exp(0.5 * float(theta[0])) < tol)

    def linear_basis(self) -> list[np.ndarray]:
        return [self.matrix]


class Fixed(_Known):
    """``Sigma = K`` exactly: no parameters (glmmTMB's ``equalto``)."""

    keyword = "equalto"
    glmmtmb_code = 15

    @property
    def n_theta(self) -> int:
        return 0

    def theta0(self) -> np.ndarray:
        return np.zeros(0)

    def start(self, sd: float) -> np.ndarray:
        return np.zeros(0)

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        return self.factor.copy()

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        return np.zeros((0, self.p, self.p))

    def parameter_names(self) -> tuple[str, ...]:
        return ()

    def is_singular(self, theta: np.ndarray, tol: float = 1e-4) -> bool:
        return False

    def linear_basis(self) -> list[np.ndarray]:
        return []

"""Covariance structures of a random-effects term, parameterized by theta.

The covariance of a term's p random effects (per level of its grouping factor) is
``sigma^2 * Lambda Lambda'`` with ``Lambda`` a p x p matrix built from the term's slice of
theta. A structure knows how many parameters it has, their bounds and starting values, and
how to build ``Lambda`` (and, for the gradient and profiling code, the correlation view).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["CovarianceStructure"]


class CovarianceStructure(ABC):
    """Abstract covariance structure for a term with ``p`` random effects per group."""

    #: keyword used in formulas (``us``, ``diag``, ...)
    keyword: str = ""
    #: Flipping the sign of a column of ``Lambda`` leaves ``Lambda Lambda'`` unchanged and
    #: maps parameters to parameters (:meth:`canonical` picks the representative), so an
    #: optimizer may ignore the lower bounds.
    sign_symmetric: bool = False

    def __init__(self, p: int):
        self.p = int(p)

    @property
    @abstractmethod
    def n_theta(self) -> int:
        """Number of parameters."""

    @abstractmethod
    def lower_bounds(self) -> np.ndarray:
        """Lower bounds of the parameters (0 for Cholesky diagonals, -inf otherwise)."""

    @abstractmethod
    def theta0(self) -> np.ndarray:
        """Starting values (lme4's: identity relative covariance)."""

    @abstractmethod
    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        """The p x p factor ``Lambda`` for this term's parameters."""

    def direct_map(self) -> np.ndarray | None:
        """When every entry of ``Lambda`` is either 0 or one element of theta: for each of the
        p x p entries (row-major) the index into theta, or -1 for a structural zero. None for
        structures whose ``Lambda`` is a nonlinear function of theta. Lets hot loops fill
        ``Lambda`` with one gather instead of a Python call per term."""
        return None

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d Lambda / d theta_j`` for every parameter: (n_theta, p, p).

        Exact for structures whose entries are parameters (:meth:`direct_map`); structures
        with a nonlinear ``Lambda(theta)`` override it.
        """
        mp = self.direct_map()
        if mp is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement lambda_jacobian")
        out = np.zeros((self.n_theta, self.p * self.p))
        pos = np.flatnonzero(mp >= 0)
        out[mp[pos], pos] = 1.0
        return out.reshape(self.n_theta, self.p, self.p)

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        """The parameters of the same covariance in canonical form (for sign-symmetric
        structures: the one within the lower bounds)."""
        return np.asarray(theta, dtype=float)

    def boundary_mask(self) -> np.ndarray:
        """Parameters whose lower bound is finite (a zero there means a singular fit)."""
        return np.isfinite(self.lower_bounds())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"

"""Independent random effects: ``diag`` (one standard deviation each) and ``homdiag``
(one common standard deviation)."""

from __future__ import annotations

import numpy as np

from .base import CovarianceStructure

__all__ = ["DIAGONAL_RELATIVE_COND_MAX", "Diagonal"]

#: Largest ratio of the largest to the smallest standard deviation for which
#: :meth:`Diagonal.relative_jacobian` is given: the Laplace gradient's own limit for
#: ``Lambda`` (:data:`mixedmodels.objective.laplace.objective.RELATIVE_COND_MAX`, the
#: condition number of ``Lambda = diag(theta)``), so the gradient takes the same form on
#: either side of it as without the closed form.
DIAGONAL_RELATIVE_COND_MAX = 1e6


class Diagonal(CovarianceStructure):
    r"""``Sigma = diag(s_1^2, ..., s_p^2)`` (``diag``) or ``s^2 I`` (``homdiag``).

    theta holds the standard deviations themselves (relative to sigma in lmer), bounded
    below by zero as lme4's ``(x || g)`` terms are: ``Lambda = diag(theta)`` is a direct
    map and singular fits reach the boundary. glmmTMB's theta is ``log s``.

    Parameters
    ----------
    p : int
    hom : bool
        One standard deviation for all effects (glmmTMB's ``homdiag``, lme4 2.0's
        ``diag(..., hom = TRUE)``).
    """

    sign_symmetric = True
    direct = True

    def __init__(self, p: int, hom: bool = False):
        super().__init__(p)
        self.hom = bool(hom)
        self.keyword = "homdiag" if self.hom else "diag"
        self.glmmtmb_code = 10 if self.hom else 0

    @property
    def n_theta(self) -> int:
        return 1 if self.hom else self.p

    def lower_bounds(self) -> np.ndarray:
        return np.zeros(self.n_theta)

    def theta0(self) -> np.ndarray:
        return np.ones(self.n_theta)

    def _sds(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        return np.full(self.p, theta[0]) if self.hom else theta

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(self._sds(theta))

    def direct_map(self) -> np.ndarray:
        out = np.full((self.p, self.p), -1, dtype=np.intp)
        idx = np.arange(self.p)
        out[idx, idx] = 0 if self.hom else idx
        return out.ravel()

    def relative_jacobian(self, theta: np.ndarray) -> np.ndarray | None:
        r"""``M_k = Lambda^{-1} dLambda_k = E_kk / theta_k`` (``I / theta`` for
        ``homdiag``) in closed form: what the Laplace gradient's generic form (an SVD
        and a solve with ``diag(theta)``, ~40 us an evaluation) gives, bit for bit (LU
        of a diagonal matrix divides). None where ``Lambda`` is singular or its
        condition number exceeds :data:`DIAGONAL_RELATIVE_COND_MAX` (the generic form's
        limit: the gradient's direct form then serves)."""
        sds = self._sds(theta)
        a = np.abs(sds)
        hi = float(a.max()) if a.size else 0.0
        if not hi > 0.0 or float(a.min()) < DIAGONAL_RELATIVE_COND_MAX ** -1 * hi:
            return None
        if self.hom:
            return (np.eye(self.p) / sds[0])[None]
        out = np.zeros((self.p, self.p, self.p))
        idx = np.arange(self.p)
        out[idx, idx, idx] = 1.0 / sds
        return out

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(theta, dtype=float))

    def parameter_names(self) -> tuple[str, ...]:
        return ("sd",) if self.hom else tuple(f"sd_{k + 1}" for k in range(self.p))

    def parameter_scales(self) -> np.ndarray:
        return np.ones(self.n_theta, dtype=bool)

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_theta), np.full(self.n_theta, np.inf)

    def even_mask(self) -> np.ndarray:
        # Lambda = diag(theta): flipping one theta flips one column
        return np.ones(self.n_theta, dtype=bool)

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(theta, dtype=float))

    def to_glmmtmb(self, theta: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.abs(np.asarray(theta, dtype=float)))

    def from_glmmtmb(self, values: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(values, dtype=float))

    def linear_basis(self) -> list[np.ndarray]:
        if self.hom:
            return [np.eye(self.p)]
        out = []
        for k in range(self.p):
            E = np.zeros((self.p, self.p))
            E[k, k] = 1.0
            out.append(E)
        return out

    def __repr__(self) -> str:
        return f"Diagonal(p={self.p}, hom={self.hom})"

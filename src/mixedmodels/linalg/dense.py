r"""Dense factorization of the whole penalized least-squares system, for small models.

With ``T = diag(Lambda, I_m)`` and ``A = [Z X y]' W [Z X y]`` assembled as one dense
(q + m) x (q + m) matrix, each evaluation is two small matrix products and one LAPACK
Cholesky:

.. math:: L L' = T' A T + \operatorname{diag}(I_q, 0).

For models with a few dozen random effects (sleepstudy: q = 36) this costs a fraction of
the blocked algorithm's per-call overhead, which matters when a small model is refitted
thousands of times (bootstrap, simulation, profiling). :class:`DenseSystem` has the same
interface as :class:`~mixedmodels.linalg.blocked.BlockedSystem` and also serves as a dense
check on it in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lapack import chol_inplace, solve_lower, solve_lower_t
from .layout import theta_slices

__all__ = ["DENSE_MAX_SIZE", "DenseFactor", "DenseSystem", "dense_cross_product"]

#: Largest q + p + 1 for which the dense path is used (two (q+m)^3 products per evaluation
#: stay cheaper than the blocked algorithm's overhead up to about this size).
DENSE_MAX_SIZE = 80


@dataclass
class DenseFactor:
    """Lower Cholesky factor ``L`` of the full system (C order, lower triangle valid)."""

    L: np.ndarray
    q: int
    logdet_Z: float
    #: log of L's diagonal (computed once: small-model evaluations are overhead-bound)
    log_diag: np.ndarray

    @property
    def LXX(self) -> np.ndarray:
        return self.L[self.q:, self.q:]

    def logdet_X(self, p: int) -> float:
        return 2.0 * float(self.log_diag[self.q:self.q + p].sum())

    def pwrss(self) -> float:
        return float(self.L[-1, -1] ** 2)


def dense_cross_product(blocks, XY: np.ndarray, w: np.ndarray | None,
                        Z=None) -> np.ndarray:
    """``[Z X y]' W [Z X y]`` with a dense ``Z`` built from the terms' codes and values.

    Parameters
    ----------
    blocks : sequence of TermBlock
        The terms on the rows of ``XY`` (codes index the terms' full level sets).
    XY : ndarray (n, m)
    w : ndarray (n,) or None
    Z : sequence of ndarray, optional
        Values replacing the terms' own (one (n, p_k) array per term, same level codes):
        the whitened design of a model with correlated residuals.

    Returns
    -------
    ndarray (q + m, q + m)
    """
    n = XY.shape[0]
    q = int(sum(b.q for b in blocks))
    ZXY = np.zeros((n, q + XY.shape[1]))
    off = 0
    rows = np.arange(n)
    values = [b.Z for b in blocks] if Z is None else Z
    for b, zk in zip(blocks, values, strict=True):
        for a in range(b.p):
            ZXY[rows, off + b.codes * b.p + a] = zk[:, a]
        off += b.q
    ZXY[:, q:] = XY
    wZXY = ZXY if w is None else ZXY * w[:, None]
    return ZXY.T @ wZXY


class DenseSystem:
    """Evaluates :class:`DenseFactor` for any theta (interface of ``BlockedSystem``).

    Parameters
    ----------
    blocks : sequence of TermBlock
        The random-effects terms in model order.
    structures : sequence of CovarianceStructure
    """

    def __init__(self, blocks, structures):
        self.blocks = tuple(blocks)
        self.structures = tuple(structures)
        self.slices = theta_slices(self.structures)
        self.q = int(sum(b.q for b in self.blocks))
        #: per term: structure, theta slice, first column, levels, p_k (Lambda_k is
        #: I_{l_k} (x) lambda_k, so T' A T is a scaling of A's column and row blocks)
        offsets = np.cumsum([0] + [b.q for b in self.blocks[:-1]])
        self._terms = tuple((s, sl, int(off), b.nlevels, b.p)
                            for s, sl, off, b in zip(self.structures, self.slices, offsets,
                                                     self.blocks, strict=True))

    def set_data(self, XY: np.ndarray, w: np.ndarray | None, Z=None) -> None:
        """Form ``[Z X y]' W [Z X y]`` directly with a dense ``Z`` (small models only):
        one BLAS product, no sparse bookkeeping.

        ``Z``, when given, replaces the terms' values (one (n, p_k) array per term, same
        level codes): the whitened design of a model with correlated residuals."""
        self.set_cross_product(dense_cross_product(self.blocks, XY, w, Z), XY.shape[1])

    def set_cross_product(self, full: np.ndarray, m: int) -> None:
        """Install ``[Z X y]' W [Z X y]`` ((q + m) x (q + m), ``m`` columns of ``[X y]``),
        for instance summed over chunks of rows by :func:`dense_cross_product`."""
        self._install(np.asarray(full, dtype=float), m)

    def _install(self, full: np.ndarray, m: int) -> None:
        q = self.q
        size = q + m
        self.full = np.ascontiguousarray(full, dtype=float)
        self._diag_flat = np.arange(size) * (size + 1)
        self._zdiag_flat = self._diag_flat[:q]
        #: workspace of the objective's evaluations (``scratch=True``): small models are
        #: overhead-bound, and a fresh (q + m)^2 array per call is a measurable share
        self._scratch = np.empty((size, size))

    def factorize(self, theta: np.ndarray, scratch: bool = False) -> DenseFactor | None:
        """The factor at ``theta``, or None when the system is not positive definite.

        ``T' A T`` is formed block by block: ``Lambda_k = I (x) lambda_k`` multiplies the
        k-th column block of ``A`` from the right and its row block from the left, at a
        cost of ``O((q + m)^2 p_k)`` per term instead of two ``(q + m)^3`` products.
        ``scratch=True`` writes the factor into a workspace that the next scratch call
        overwrites (for objective evaluations, which read it at once); without it the
        factor owns its array."""
        L = self._scratch if scratch else np.empty_like(self._scratch)
        np.copyto(L, self.full)
        size = L.shape[0]
        for struct, sl, off, nlev, p in self._terms:
            lam = struct.lambda_(theta[sl])
            if p == 1:
                t = lam[0, 0]
                L[:, off:off + nlev] *= t
                L[off:off + nlev, :] *= t
                continue
            cols = L[:, off:off + nlev * p]
            cols.shape = (size, nlev, p)       # a view (raises rather than copy)
            np.matmul(cols, lam, out=cols)     # (numpy buffers the overlap)
            rows = L[off:off + nlev * p, :]
            rows.shape = (nlev, p, size)
            np.matmul(lam.T, rows, out=rows)
        flat = L.reshape(-1)
        flat[self._zdiag_flat] += 1.0
        if not chol_inplace(L):
            return None
        log_diag = np.log(flat[self._diag_flat])
        return DenseFactor(L, self.q, 2.0 * float(log_diag[:self.q].sum()), log_diag)

    def solve_u(self, f: DenseFactor, beta: np.ndarray) -> np.ndarray:
        """Spherical random effects at ``beta``: ``L_Z' u = l_yZ' - L_XZ' beta``."""
        q, p = self.q, beta.shape[0]
        L = f.L
        rhs = L[q + p, :q] - L[q:q + p, :q].T @ beta
        return solve_lower_t(np.ascontiguousarray(L[:q, :q]), rhs)

    def cond_var_u(self, f: DenseFactor) -> list[np.ndarray]:
        """Diagonal blocks of ``(L_Z L_Z')^{-1}`` per term: list of (l_k, p_k, p_k)."""
        q = self.q
        Linv = solve_lower(np.ascontiguousarray(f.L[:q, :q]), np.eye(q))
        Minv = Linv.T @ Linv
        out, off = [], 0
        for b in self.blocks:
            idx = off + np.arange(b.q).reshape(b.nlevels, b.p)
            out.append(Minv[idx[:, :, None], idx[:, None, :]])
            off += b.q
        return out

r"""Cholesky factors and triangular solves of many small matrices at once, levels as vectors.

A stack of ``g`` symmetric ``k x k`` matrices (one per level of a grouping factor) is held
as one ``(k, k, g)`` array: entry ``(i, j)`` of every matrix is the g-vector ``M[i, j]``.
The factorization is a Python loop over the ``k`` columns of elementwise operations on
g-vectors -- ``O(k^2)`` numpy calls whatever ``g`` -- and right-hand sides are ``(r, g,
k)`` arrays (``r`` columns per level, the level's ``k`` rows last: the C-ordered transpose
of a ``(g k, r)`` Fortran array). For many levels this beats LAPACK's band routines on
the same block-diagonal matrix, which pay a kernel call per row (1,000 levels of 2 x 2
blocks: 117 us for a band factorization and solve against ~30 us here).

Column ``j`` of the factor (left-looking, every level at once):

.. math::

    d_j = \Big(M_{jj} - \sum_{a<j} L_{ja}^2\Big)^{1/2}, \qquad
    L_{ij} = \Big(M_{ij} - \sum_{a<j} L_{ia} L_{ja}\Big) / d_j \quad (i > j).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cholesky_levels", "diagonal_levels", "solve_lower_levels", "solve_lower_t_levels"]

_add_reduce = np.add.reduce


def diagonal_levels(M: np.ndarray) -> np.ndarray:
    """The ``(k, g)`` view of the diagonals of a C-contiguous ``(k, k, g)`` stack."""
    k = M.shape[0]
    return M.reshape(k * k, -1)[:: k + 1]


def cholesky_levels(M: np.ndarray) -> bool:
    """Lower Cholesky factor of every level's ``k x k`` matrix, in place.

    Parameters
    ----------
    M : ndarray (k, k, g)
        Symmetric per level (both triangles filled); on return its lower triangle holds
        ``L`` (diagonal included), the strict upper triangle unchanged.

    Returns
    -------
    bool
        False when some level is not (numerically) positive definite.
    """
    k = M.shape[0]
    for j in range(k):
        d = M[j, j]
        if j:
            row = M[j, :j]
            d -= row[0] * row[0] if j == 1 else _add_reduce(row * row, axis=0)
        if not d.min() > 0.0:  # (NaN fails too)
            return False
        np.sqrt(d, out=d)
        if j + 1 < k:
            below = M[j + 1 :, j]
            if j:
                # L_ij -= sum_a L_ia L_ja for every i > j at once
                below -= _add_reduce(M[j + 1 :, :j] * M[j, :j][None], axis=1)
            below /= d
    return True


def _combination(coef: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``sum_a coef[a] * cols[..., a]``: ``coef`` (j, g), ``cols`` (r, g, j)."""
    if coef.shape[0] == 1:
        return cols[:, :, 0] * coef[0]
    return _add_reduce(cols * coef.T[None], axis=2)


def solve_lower_levels(L: np.ndarray, B: np.ndarray) -> None:
    """``B <- L^{-1} B`` level by level, in place.

    Parameters
    ----------
    L : ndarray (k, k, g)
        From :func:`cholesky_levels` (lower triangle read).
    B : ndarray (r, g, k)
        Row ``i`` of level ``c``'s right-hand sides is ``B[:, c, i]``.
    """
    k = L.shape[0]
    for i in range(k):
        col = B[:, :, i]
        if i:
            col -= _combination(L[i, :i], B[:, :, :i])
        col /= L[i, i]


def solve_lower_t_levels(L: np.ndarray, B: np.ndarray) -> None:
    """``B <- L'^{-1} B`` level by level, in place (see :func:`solve_lower_levels`)."""
    k = L.shape[0]
    for i in range(k - 1, -1, -1):
        col = B[:, :, i]
        if i + 1 < k:
            col -= _combination(L[i + 1 :, i], B[:, :, i + 1 :])
        col /= L[i, i]

"""Thin wrappers around LAPACK's Cholesky and triangular solves without extra copies.

A symmetric C-ordered matrix ``a`` is, viewed as ``a.T``, the same matrix in Fortran order, so
LAPACK can factor it in place: after :func:`chol_inplace` the lower triangle of ``a`` (C order)
holds ``L`` with ``a = L L'`` (the strict upper triangle is left as it was).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

__all__ = ["chol_inplace", "solve_lower", "solve_lower_t", "tril_copy"]

_dpotrf = lapack.dpotrf
_dtrtrs = lapack.dtrtrs


def chol_inplace(a: np.ndarray) -> bool:
    """Cholesky factor of the C-contiguous symmetric ``a`` into its lower triangle.

    Returns False when ``a`` is not (numerically) positive definite.
    """
    _, info = _dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
    return info == 0


def solve_lower(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``L^{-1} b`` for ``L`` stored in the lower triangle of a C-ordered array."""
    x, info = _dtrtrs(L.T, b, lower=0, trans=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular solve failed (info={info})")
    return x


def solve_lower_t(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``L'^{-1} b`` for ``L`` stored in the lower triangle of a C-ordered array."""
    x, info = _dtrtrs(L.T, b, lower=0, trans=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular solve failed (info={info})")
    return x


def tril_copy(a: np.ndarray) -> np.ndarray:
    """Lower triangle of ``a`` with explicit zeros above the diagonal."""
    return np.tril(a)


_dtrtri = lapack.dtrtri
_dlauum = lapack.dlauum


def inverse_crossprod_inplace(L: np.ndarray) -> bool:
    """Overwrite the lower triangle of ``L`` (C order, lower Cholesky factor of ``S``) with
    the lower triangle of ``S^{-1} = L^{-T} L^{-1}``.

    Viewed as Fortran, the array holds ``U = L'`` in its upper triangle: ``dtrtri`` turns
    it into ``U^{-1} = (L^{-1})'`` and ``dlauum`` into ``U^{-1} U^{-T} = S^{-1}``.
    """
    _, info = _dtrtri(L.T, lower=0, overwrite_c=1)
    if info != 0:
        return False
    _, info = _dlauum(L.T, lower=0, overwrite_c=1)
    return info == 0

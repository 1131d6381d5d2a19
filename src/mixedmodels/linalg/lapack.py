"""Thin wrappers around LAPACK's Cholesky and triangular solves without extra copies.

A symmetric C-ordered matrix ``a`` is, viewed as ``a.T``, the same matrix in Fortran order, so
LAPACK can factor it in place: after :func:`chol_inplace` the lower triangle of ``a`` (C order)
holds ``L`` with ``a = L L'`` (the strict upper triangle is left as it was).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import lapack

from .._threads import PARALLEL_MIN_SIZE, dense_call

__all__ = ["chol_inplace", "chol_solve_lower", "lower_mask", "mirror_lower_inplace",
           "scaled_lower_copy", "solve_lower", "solve_lower_t", "symmetric_from_lower",
           "symmetric_from_upper", "tril_copy"]

_dpotrf = lapack.dpotrf
_dtrtrs = lapack.dtrtrs


def chol_inplace(a: np.ndarray) -> bool:
    """Cholesky factor of the C-contiguous symmetric ``a`` into its lower triangle.

    Returns False when ``a`` is not (numerically) positive definite. Large ones run
    under :class:`~mixedmodels._threads.dense_call` (threads given up when contended).
    """
    if a.shape[0] < PARALLEL_MIN_SIZE:
        _, info = _dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
        return info == 0
    with dense_call():
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


#: Rows per panel of :func:`mirror_lower_inplace`: a panel and its transposed partner stay
#: in cache while one is copied into the other.
MIRROR_PANEL = 256


@lru_cache(maxsize=64)
def lower_mask(shape: tuple[int, int]) -> np.ndarray:
    """``np.tri(*shape, dtype=bool)``: the lower-triangle mask (diagonal included) that
    ``np.tril`` builds on every call, made once per shape (read-only)."""
    mask = np.tri(*shape, dtype=bool)
    mask.flags.writeable = False
    return mask


def symmetric_from_lower(a: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle (diagonal included) is ``a``'s, as a new
    C-ordered array; the strict upper triangle of ``a`` is not read.

    ``np.tril(a) + np.tril(a, -1).T`` builds its triangle mask on every call and makes three
    copies: 16 us at 38 x 38, against 5 us for one ``np.where`` with :func:`lower_mask` --
    a twentieth of an R-side LMM's gradient. Matrices larger than a :data:`MIRROR_PANEL`
    go through :func:`mirror_lower_inplace` (the mask would be ``n^2`` bytes read for
    ``n^2`` floats copied).
    """
    n = a.shape[0]
    if n > MIRROR_PANEL:
        return mirror_lower_inplace(np.array(a, order="C"))
    return np.where(lower_mask(a.shape), a, a.T)


def symmetric_from_upper(a: np.ndarray) -> np.ndarray:
    """:func:`symmetric_from_lower` from the upper triangle (LAPACK's ``potri`` writes the
    inverse there and leaves the factor in the other)."""
    return symmetric_from_lower(a.T)


def mirror_lower_inplace(a: np.ndarray) -> np.ndarray:
    """Make the square C-ordered ``a`` symmetric from its lower triangle, in place.

    One pass over the strict upper triangle, a panel of :data:`MIRROR_PANEL` rows at a
    time (``np.tril(a) + np.tril(a, -1).T`` reads and writes the whole matrix four times
    and allocates three copies; on the 2,200-column dense block of a large crossed model it
    cost a tenth of a gradient evaluation). Returns ``a``.
    """
    n = a.shape[0]
    for i0 in range(0, n, MIRROR_PANEL):
        i1 = min(n, i0 + MIRROR_PANEL)
        diag = a[i0:i1, i0:i1]
        upper = np.triu_indices(i1 - i0, 1)
        diag[upper] = diag.T[upper]
        if i1 < n:
            a[i0:i1, i1:] = a[i1:, i0:i1].T
    return a


#: Rows per panel of :func:`scaled_lower_copy` (a panel of a 2,000-column block, ~1 MB,
#: stays in cache between its two products).
SCALE_PANEL = 64


def scaled_lower_copy(src: np.ndarray, d: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = diag(d) src diag(d)`` on the lower triangle (square C-ordered arrays).

    One pass over the lower triangle, a panel of :data:`SCALE_PANEL` rows at a time, in
    place of two scalings of the whole matrix (four sweeps of a block of tens of megabytes
    per evaluation); ``out`` may be ``src``. Entries above the diagonal panels are left as
    they were. Returns ``out``.
    """
    n = src.shape[0]
    for i0 in range(0, n, SCALE_PANEL):
        i1 = min(n, i0 + SCALE_PANEL)
        panel = out[i0:i1, :i1]
        np.multiply(src[i0:i1, :i1], d[i0:i1, None], out=panel)
        panel *= d[None, :i1]
    return out


_dtrtri = lapack.dtrtri
_dlauum = lapack.dlauum


def inverse_crossprod_inplace(L: np.ndarray) -> bool:
    """Overwrite the lower triangle of ``L`` (C order, lower Cholesky factor of ``S``) with
    the lower triangle of ``S^{-1} = L^{-T} L^{-1}``.

    Viewed as Fortran, the array holds ``U = L'`` in its upper triangle: ``dtrtri`` turns
    it into ``U^{-1} = (L^{-1})'`` and ``dlauum`` into ``U^{-1} U^{-T} = S^{-1}``.
    Large ones run under :class:`~mixedmodels._threads.dense_call`.
    """
    if L.shape[0] < PARALLEL_MIN_SIZE:
        return _inverse_crossprod(L)
    with dense_call():
        return _inverse_crossprod(L)


def _inverse_crossprod(L: np.ndarray) -> bool:
    _, info = _dtrtri(L.T, lower=0, overwrite_c=1)
    if info != 0:
        return False
    _, info = _dlauum(L.T, lower=0, overwrite_c=1)
    return info == 0


_dpotrs = lapack.dpotrs


def chol_solve_lower(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(L L')^{-1} b`` for a Cholesky factor ``L`` in the lower triangle of a C-ordered
    array (a view of a leading block is fine: LAPACK reads the lower triangle only)."""
    x, info = _dpotrs(L.T, b, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky solve failed (info={info})")
    return x

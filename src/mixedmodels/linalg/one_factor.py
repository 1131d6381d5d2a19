r"""The penalized least-squares system of a model whose random effects share one factor.

When every random-effects term sits on one grouping factor (``(Days | Subject)``, or
``(1 | g) + (0 + x | g)`` merged by :class:`~mixedmodels.linalg.TermMerge`), ``Z'WZ`` is
block diagonal with one ``k x k`` block ``A_c`` per level ``c`` and ``Lambda = I (x)
lambda``, so the random-effects part of the system is ``g`` independent ``k x k``
problems, and only the fixed effects couple them, through their Schur complement:

.. math::

    M_c &= \lambda' A_c \lambda + I, \qquad B_c = \lambda' F_c
        \quad (F_c = Z_c' W [X\,y], \ k \times m) \\
    \log|L_Z|^2 &= \textstyle\sum_c \log|M_c|, \qquad
    S = [X\,y]'W[X\,y] - \textstyle\sum_c B_c' M_c^{-1} B_c .

The Cholesky factor of the ``m x m`` matrix ``S`` is the ``LXX`` block of the blocked
factor (:mod:`mixedmodels.linalg.blocked`): ``R_X'`` in its leading ``p x p`` block and
``r`` (the root of the penalized residual sum of squares) last.

How: ``M = diag(M_c)`` (levels in order, effects within) is a band matrix of ``k - 1``
sub-diagonals, so LAPACK's band Cholesky (``dpbtrf``) factors every level in one call and
its band triangular solve (``dtbtrs``) solves for all levels and columns in one call: a
fixed count of about twenty numpy and LAPACK calls per evaluation and ``O(g k^2 m)``
flops. The band kernels pay a call per row, so from :data:`BAND_MAX_LEVELS` levels the
same factor and solves run as loops over the ``k`` effects of elementwise operations on
level vectors (:mod:`mixedmodels.linalg.level_batch`). (numpy's batched routines on
``(g, k, k)`` stacks make one LAPACK call and copies per level: on 100 levels of 3 x 3
blocks ``np.linalg.inv`` alone took 35 us, a whole evaluation here ~20 us.) The per-level
products with ``lambda`` are 2-D products on layouts chosen so that no transposed copy is
made: ``A`` with the level axis last for ``M_c``, ``F`` with rows ``(r, c)`` so that
``F lambda`` is the solves' right-hand side (Fortran order for LAPACK).

Gradient (:meth:`OneFactorSystem.lambda_gradient`): for a function ``phi(S)`` with
``d phi = tr(Psi dS)`` (``Psi`` symmetric) plus ``sum_c log|M_c|``, the derivative in the
entries of ``lambda`` is

.. math::

    G = 2 \sum_c P_c (M_c^{-1} + V_c \Psi V_c') - 2 \sum_c F_c \Psi V_c', \qquad
    P_c = A_c \lambda, \ V_c = M_c^{-1} B_c,

from ``d log|M_c| = 2 tr(M_c^{-1} \lambda' A_c\, d\lambda)`` and ``dS = -\sum_c (H_c'
d\lambda\, V_c + V_c' d\lambda' H_c)`` with ``H_c = F_c - P_c V_c``. ``M^{-1}`` is block
diagonal like ``M``: its blocks are the solves of the stacked identity. No
``lambda^{-1}`` appears, so singular fits (a zero variance) are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from .lapack import chol_inplace
from .level_batch import (
    cholesky_levels,
    diagonal_levels,
    solve_lower_levels,
    solve_lower_t_levels,
)

__all__ = ["BAND_MAX_LEVELS", "ONE_FACTOR_MAX_P", "OneFactorFactor", "OneFactorSystem"]

#: Most random effects per level for which :class:`OneFactorSystem` is used (its band
#: factorization costs ``O(g k^2)`` and the gradient's per-level products ``O(g k^2 m)``;
#: wider blocks are rare and the blocked factorization serves them).
ONE_FACTOR_MAX_P = 8

#: Most levels for which the band routines are used; beyond, the per-level loops of
#: :mod:`mixedmodels.linalg.level_batch`. LAPACK's band kernels pay a call per row, the
#: loops a numpy call per entry of a level's block: measured (value and gradient, one
#: thread) 150 levels of k = 1: 29 us band, 42 us loops; 1,000: 106 against 46; k = 2,
#: 60 levels: 47 against 69, 150: 99 against 79, 1,000: 315 against 163; k = 3, 150
#: levels: 115 against 163, 1,000: 558 against 475.
BAND_MAX_LEVELS = 100

_add_reduce = np.add.reduce
_dpbtrf = lapack.dpbtrf
_dtbtrs = lapack.dtbtrs


@dataclass
class OneFactorFactor:
    """What :meth:`OneFactorSystem.factorize` computes at one theta.

    ``LXX`` (the Cholesky factor of ``S``, lower triangle valid) and ``logdet_Z`` are the
    blocked factor's (:class:`~mixedmodels.linalg.BlockedFactor`); the rest serves the
    gradient.
    """

    LXX: np.ndarray
    logdet_Z: float
    #: the Cholesky factor of ``M``: in band storage (row ``j`` holds ``L[j + d, j]`` in
    #: column ``d``, (q, k) C order, whose transpose is LAPACK's lower band storage), or
    #: per level with the level axis last ((k, k, g), lower triangles) beyond
    #: :data:`BAND_MAX_LEVELS` levels
    L: np.ndarray
    #: ``P_c = A_c lambda`` with the level axis last, (k, k, g)
    P: np.ndarray
    #: ``L^{-1} [B I]`` as LAPACK returned it: Fortran-ordered (q, m + k), the stacked
    #: identity ``I`` (one ``I_k`` per level) last; ``L^{-1} B`` alone, (q, m), when
    #: factored for the value only
    Y: np.ndarray

    def logdet_X(self, p: int) -> float:
        """``log det(R_X)^2`` over the first ``p`` columns of ``[X y]``."""
        return 2.0 * float(_add_reduce(np.log(np.diagonal(self.LXX)[:p])))

    def pwrss(self) -> float:
        return float(self.LXX[-1, -1] ** 2)


class OneFactorSystem:
    """Evaluates :class:`OneFactorFactor` for any theta of one grouping factor's block.

    Parameters
    ----------
    A11 : ndarray (g, k, k)
        ``Z_c' W Z_c`` per level.
    A1X : ndarray (g, k, m)
        ``Z_c' W [X y]`` per level (the internal basis of the fixed effects).
    AXX : ndarray (m, m)
        ``[X y]' W [X y]``.
    structure : CovarianceStructure
        The block's (a :class:`~mixedmodels.linalg.BlockDiagonalStructure` for merged
        terms).
    band : bool, optional
        Factor ``M`` with LAPACK's band routines (default up to :data:`BAND_MAX_LEVELS`
        levels) or with the per-level loops of
        :mod:`mixedmodels.linalg.level_batch` (the same numbers to rounding).
    """

    def __init__(
        self, A11: np.ndarray, A1X: np.ndarray, AXX: np.ndarray, structure, band: bool | None = None
    ):
        g, k, m = A1X.shape
        self.g, self.k, self.m = int(g), int(k), int(m)
        q = g * k
        self.structure = structure
        #: band routines (None: up to :data:`BAND_MAX_LEVELS` levels) or per-level loops
        self.band = g <= BAND_MAX_LEVELS if band is None else bool(band)
        #: ``A`` with the level axis last, (k, k * g): ``lambda' A[a]`` is ``(A_c
        #: lambda)[a, :]`` for every level in one product
        self._A = np.ascontiguousarray(np.transpose(A11, (1, 2, 0)), dtype=float)
        #: ``F`` with rows ``(r, c)`` and columns ``a``: ``F lambda`` is ``B`` as a
        #: C-ordered (m, q) array, i.e. the Fortran-ordered (q, m) right-hand side
        self._F = np.ascontiguousarray(np.transpose(A1X, (2, 0, 1)), dtype=float).reshape(m * g, k)
        self._AXX = np.array(AXX, dtype=float)
        #: ``lambda' A_c lambda`` (level axis last) and one zero after it, which the band
        #: gather reads for the positions past a level's block
        self._M = np.zeros(k * k * g + 1)
        c, a, d = np.meshgrid(np.arange(g), np.arange(k), np.arange(k), indexing="ij")
        inside = a + d < k
        #: band row j = c k + a, column d  <-  M_c[a + d, a]
        self._band_src = np.where(inside, ((a + d) * k + a) * g + c, k * k * g).ravel()
        #: the stacked identity (q, k) in Fortran order: ``M^{-1}`` of it is the
        #: per-level blocks of ``M^{-1}``
        eye = np.zeros((k, q))
        eye.reshape(k, g, k)[np.arange(k), :, np.arange(k)] = 1.0
        self._eye_t = eye
        self._q = q

    @classmethod
    def from_dense(cls, full: np.ndarray, index: np.ndarray, structure) -> OneFactorSystem:
        """The system of a dense cross-product ``[Z X y]' W [Z X y]``.

        Parameters
        ----------
        full : ndarray (q + m, q + m)
        index : ndarray of int (g, k)
            Column of ``full`` of effect ``a`` of level ``c`` (``Z``'s columns need not be
            level by level: terms merged from their own blocks).
        structure : CovarianceStructure
        """
        q = index.size
        A11 = full[index[:, :, None], index[:, None, :]]
        A1X = full[index, q:]
        return cls(A11, A1X, full[q:, q:], structure)

    def factorize(self, theta: np.ndarray, for_gradient: bool = True) -> OneFactorFactor | None:
        """The factor at ``theta``, or None when ``S`` (or, numerically, some ``M_c``)
        is not positive definite.

        ``for_gradient=False``: the value's quantities only (the band solves cost per
        right-hand side, and the gradient's ``L^{-1}`` doubles their number for k = 3);
        :meth:`lambda_gradient` then refuses the factor."""
        k, g, m = self.k, self.g, self.m
        lam = self.structure.lambda_(theta)
        lt = lam.T
        # P_c = A_c lambda: (lambda' A[a])[j, c] = sum_b lambda_bj A_abc, k products of k x g
        P = np.matmul(lt, self._A)
        if self.band:
            np.matmul(lt, P.reshape(k, k * g), out=self._M[:-1].reshape(k, k * g))
            L = np.take(self._M, self._band_src).reshape(self._q, k)
            L[:, 0] += 1.0  # + I
            _, info = _dpbtrf(L.T, lower=1, overwrite_ab=1)
            if info != 0:
                return None
            diag = L[:, 0]
        else:
            L = (lt @ P.reshape(k, k * g)).reshape(k, k, g)
            diag = diagonal_levels(L)
            diag += 1.0
            if not cholesky_levels(L):
                return None
        logdet = 2.0 * float(_add_reduce(np.log(diag), axis=None))
        # right-hand sides [B I] (Fortran (q, m + k)): one forward solve gives L^{-1} B for
        # the value and L^{-1} for the gradient's blocks of M^{-1} (a second solve for the
        # identity alone costs more)
        R = np.empty((m + k if for_gradient else m, self._q))
        np.matmul(self._F, lam, out=R[:m].reshape(m * g, k))  # B' in C order
        if for_gradient:
            R[m:] = self._eye_t
        if self.band:
            _, info = _dtbtrs(L.T, R.T, uplo="L", trans="N", overwrite_b=1)
            if info != 0:
                return None
        else:
            solve_lower_levels(L, R.reshape(R.shape[0], g, k))
        Yt = R[:m]  # (L^{-1} B)'
        S = self._AXX - Yt @ Yt.T
        if not chol_inplace(S):
            return None
        return OneFactorFactor(S, logdet, L, P, R.T)

    def lambda_gradient(self, f: OneFactorFactor, Psi: np.ndarray) -> np.ndarray:
        r"""``d/d lambda`` of ``sum_c log|M_c| + phi(S)`` where ``d phi = tr(Psi dS)`` (see
        the module docstring).

        Parameters
        ----------
        f : OneFactorFactor
            From :meth:`factorize` (its ``Y`` is overwritten).
        Psi : ndarray (m, m)
            Symmetric.

        Returns
        -------
        ndarray (k, k)
            Entry ``(a, b)`` is the derivative in ``lambda_ab`` (all entries, including
            those the structure holds at zero).
        """
        k, g, m = self.k, self.g, self.m
        if f.Y.shape[1] != m + k:
            raise ValueError(
                "the factor was computed without the gradient's quantities "
                "(factorize(..., for_gradient=False))"
            )
        VM = f.Y.T  # (m + k, q) C order: solved in place
        if self.band:
            _dtbtrs(f.L.T, f.Y, uplo="L", trans="T", overwrite_b=1)
        else:
            solve_lower_t_levels(f.L, VM.reshape(m + k, g, k))
        Vt = VM[:m]  # M^{-1} B as (m, q): [r, (c, i)]
        Minv_t = VM[m:]  # blocks of M^{-1} as (k, q): [j, (c, i)]
        Wt = Psi @ Vt  # (Psi V_c')[r, j]
        # N_c = M_c^{-1} + V_c Psi V_c' as [i, c, j] (M^{-1}'s blocks are symmetric, so
        # its (k, q) transpose reads [j, c, i] = [i, c, j])
        V3 = Vt.reshape(m, g, k)
        W3 = Wt.reshape(m, g, k)
        N = _add_reduce(V3.transpose(2, 1, 0)[:, :, :, None] * W3.transpose(1, 0, 2)[None], axis=2)
        N += Minv_t.reshape(k, g, k)
        # sum_c P_c N_c and sum_c F_c Psi V_c': each one product over (b, c) / (r, c)
        T = self._A_times(f.P, N)
        T -= self._F.T @ Wt.reshape(m * g, k)
        T *= 2.0
        return T

    def _A_times(self, P: np.ndarray, N: np.ndarray) -> np.ndarray:
        """``sum_c P_c N_c`` for ``P`` as [a, b, c] and ``N`` as [b, c, j]."""
        k, g = self.k, self.g
        return P.reshape(k, k * g) @ N.reshape(k * g, k)

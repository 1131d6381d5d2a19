r"""Whitening by groups with one banded Cholesky factorization.

A residual correlation acts within groups: ``C = diag(C_1, .., C_G)``. With the rows of
every group next to each other, ``C`` is a band matrix of half-bandwidth ``m - 1`` (``m``
the largest group), and LAPACK factors it, ``C = L L'``, and solves ``L X = M`` in one
call each (``dpbtrf``, ``dtbtrs``), ``L`` the block-diagonal of the groups' own factors:

.. math:: \tilde M = L^{-1} M, \qquad \log|C| = 2 \sum_j \log L_{jj}.

The groups' factorizations one batch of equal sizes at a time (numpy's stacked
``cholesky`` and ``solve``) cost the same arithmetic, but small groups are bound by the
count of calls and by numpy's per-matrix overhead instead: serial_lme_arma11's 40 groups of
4-7 rows in four batches whitened in 80 us, here in ~45 us; the spatial fixture's 24 groups
of 10 rows in 50 us, here in ~35 us (the correlation matrices' own construction included).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpbtrf, dtbtrs

__all__ = ["BAND_MAX_WORK", "BandedWhitening"]

#: Use the band factorization where its arithmetic, ``n m^2`` (``n`` rows, half-bandwidth
#: ``m - 1``), is at most this factor of the groups' own, ``sum_i m_i^3``: groups of one
#: size give 1; one long group among many short ones makes every row pay for its width.
BAND_MAX_WORK = 4.0


class BandedWhitening:
    """The band layout of the groups of ``batches`` (row indices, one ``(G_s, s)`` array
    per batch of groups of size ``s``), made once.

    Parameters
    ----------
    batches : sequence of ndarray of int
    """

    def __init__(self, batches):
        self.batches = tuple(batches)
        sizes = [b.shape[1] for b in self.batches]
        self.kd = max(sizes) - 1
        #: the rows with every group's next to each other (the band order)
        self.perm = np.concatenate([b.ravel() for b in self.batches])
        self.n = self.perm.size
        #: the band order is the rows' own (each group's rows contiguous, in order)
        self._in_order = bool(np.array_equal(self.perm, np.arange(self.n)))
        ldab = self.kd + 1
        # per batch: where its matrices' lower triangles go in the flat column-major band
        # storage (entry (i, j), i >= j, of the full matrix at ab[i - j, j]) and where they
        # are read in the flattened (G_s, s, s) stack
        self._dest, self._src = [], []
        start = 0
        for b in self.batches:
            g, s = b.shape
            ia, ic = np.tril_indices(s)
            first = start + s * np.arange(g)[:, None]
            self._dest.append(((first + ic) * ldab + (ia - ic)).ravel())
            self._src.append((s * s * np.arange(g)[:, None] + (ia * s + ic)).ravel())
            start += g * s

    @classmethod
    def worthwhile(cls, batches) -> bool:
        """More than one group, and the band's work within :data:`BAND_MAX_WORK`."""
        if sum(b.shape[0] for b in batches) < 2:
            return False
        m = max(b.shape[1] for b in batches)
        n = sum(b.size for b in batches)
        own = sum(b.shape[0] * b.shape[1] ** 3 for b in batches)
        return n * m * m <= BAND_MAX_WORK * own

    def whiten(self, matrices, M: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(L^{-1} M, log|C|)`` with rows in their original positions, or None when a
        group's matrix is not positive definite.

        Parameters
        ----------
        matrices : sequence of ndarray
            One ``(G_s, s, s)`` stack per batch (the correlation matrices).
        M : ndarray (n, k)

        Returns
        -------
        tuple or None
        """
        ab = np.zeros((self.kd + 1) * self.n)
        for C, dest, src in zip(matrices, self._dest, self._src, strict=True):
            ab[dest] = C.reshape(-1)[src]
        return self.whiten_band(ab, M)

    def whiten_band(self, ab: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float] | None:
        """:meth:`whiten` from the flat band storage itself (``(kd + 1) n``, entry
        ``(i, j)``, ``i >= j``, of ``C`` in the band order at ``(i - j) + (kd + 1) j``;
        overwritten), where a structure writes it directly
        (:class:`~.spatial_band.SpatialBand`)."""
        ldab = self.kd + 1
        # (n, ldab) C-ordered is (ldab, n) column-major: LAPACK's layout, no copy
        c, info = dpbtrf(ab.reshape(self.n, ldab).T, lower=1, overwrite_ab=1)
        if info != 0:
            return None
        if self._in_order:
            # rows already in band order (groups contiguous): copies, not gathers
            rhs = np.array(M, dtype=float, order="F")
        else:
            rhs = np.empty((self.n, M.shape[1]), order="F")
            np.take(M, self.perm, axis=0, out=rhs)
        x, info = dtbtrs(c, rhs, uplo=b"L", overwrite_b=1)
        if info != 0:
            return None
        out = np.empty_like(M)
        if self._in_order:
            np.copyto(out, x)
        else:
            out[self.perm] = x
        return out, 2.0 * float(np.sum(np.log(c[0])))

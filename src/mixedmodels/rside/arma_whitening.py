r"""Whitening of a fixed ``M`` under an ARMA correlation, from the autocorrelations directly.

An ARMA correlation's ``C_i`` holds ``rho_{|t_a - t_b|}`` of the group's times: every entry
is one of ``max_lag + 1`` autocorrelations at a lag fixed by the data. So the matrices that
LAPACK factors are one gather of the autocorrelation vector at indices made once per fit
(:class:`ArmaWhitening`), in one of two layouts:

* shared patterns (:mod:`.patterns`, one pattern per class: every group's times a prefix of
  one sequence, as consecutive visits are): the ``m x m`` matrix of the pattern, one
  ``dpotrf``, and one ``dtrtrs`` for all the class's groups side by side (row ``j`` of the
  solution reads rows ``<= j`` only, so the padding slots of shorter groups never reach
  their valid rows); ``log|C| = 2 \sum_k c_k \log L_{kk}``, ``c_k`` the groups with more
  than ``k`` rows;
* otherwise the band of all groups (:mod:`.banded`): the band storage itself is the
  gather (``rho = 0`` outside the groups), one ``dpbtrf`` and one ``dtbtrs``.

The right-hand sides are gathered from ``M`` (scaled by the variance function first, when
there is one) into LAPACK's column-major layout by one ``take`` at precomputed positions,
and the solutions scattered back the same way. This replaces the correlation's own
:meth:`~.correlation.BoundCorrelation.whiten` (the per-group matrices, then their band or
pattern layout, on every evaluation) for the LMM's evaluations; the numbers are the same
LAPACK calls on the same matrices.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpbtrf, dpotrf, dtbtrs, dtrtrs

from .arma import _acf, _coefficients, is_low_order, low_order_acf
from .banded import BandedWhitening
from .correlation import UNCONSTRAINED_MAX, _BoundARMA
from .residual import BoundResidual

__all__ = ["ArmaWhitening"]


class _PatternLayout:
    """Gather / scatter positions of one pattern class (one pattern) for ``k`` columns."""

    def __init__(self, cls, lag: np.ndarray, k: int):
        g, m = cls.rows.shape
        self.m = m
        self.lag = lag                                        # (m, m)
        # right-hand side (m, g k) in Fortran order = (g k, m) in C order:
        # entry [(g, j), i] <- M[rows[g, i], j]
        rows = cls.rows
        j = np.arange(k)
        self.gather = (rows.T[None, :, :] * k + j[:, None, None])   # (k, m, g)
        self.gather = np.ascontiguousarray(self.gather.transpose(2, 0, 1)).reshape(g * k, m)
        gi, ii = np.nonzero(cls.valid)
        dest = rows[gi, ii][:, None] * k + j[None, :]
        src = (gi[:, None] * k + j[None, :]) * m + ii[:, None]
        self.dest = dest.ravel()
        self.src = src.ravel()
        #: groups with more than i rows, per row i of the pattern
        self.count = cls.valid.sum(axis=0).astype(float)


class ArmaWhitening:
    """``phi -> (W M, log|V|)`` (None where a ``C_i`` is not positive definite) for a
    fixed ``M`` under an ARMA correlation (module docstring).

    Parameters
    ----------
    residual : BoundResidual
        With an ARMA correlation (:meth:`applies`).
    M : ndarray (n, k)
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.M = M
        cor = self._cor = residual.correlation
        self._p = cor.spec.p
        self._low_order = is_low_order(cor.spec.p, cor.spec.q)
        self._max_lag = cor.max_lag
        self._scaled = residual.variance is not None or residual.log_w is not None
        n, k = M.shape
        self._k = k
        shared = _one_pattern_classes(cor)
        if shared is not None:
            self._patterns = [_PatternLayout(c, lag[0], k) for c, lag in zip(*shared,
                                                                             strict=True)]
            self._band = None
            return
        self._patterns = None
        batches = cor.blocks.batches
        band = BandedWhitening(batches)
        kd = band.kd
        perm = band.perm
        t = np.asarray(cor.pattern_key())
        group = cor.blocks.codes
        # band storage ab[d, j] = C[j + d, j] of the rows in band order, read from the
        # autocorrelations with one extra zero (index max_lag + 1) outside the groups
        j = np.arange(n)[None, :]
        d = np.arange(kd + 1)[:, None]
        partner = np.minimum(j + d, n - 1)
        same = (j + d < n) & (group[perm[partner]] == group[perm[j]])
        lag = np.abs(t[perm[partner]] - t[perm[j]]).astype(np.int64)
        self._band_index = np.where(same, lag, self._max_lag + 1)
        # C order (n, kd + 1) is LAPACK's (kd + 1, n) column-major band
        self._band_index = np.ascontiguousarray(self._band_index.T).reshape(-1)
        self._band = band
        self._perm = perm
        self._inverse = np.argsort(perm)

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """An ARMA correlation whose groups share one pattern per class, or whose band
        factorization pays (:meth:`~.banded.BandedWhitening.worthwhile`)."""
        cor = residual.correlation
        if not isinstance(cor, _BoundARMA):
            return False
        return _one_pattern_classes(cor) is not None \
            or BandedWhitening.worthwhile(cor.blocks.batches)

    def _autocorrelations(self, phi: np.ndarray) -> np.ndarray:
        """``rho_0 .. rho_max_lag`` and a trailing 0 (the structure's ``natural`` and
        :func:`~.arma.arma_acf` on Python floats: the same arithmetic; orders up to
        ARMA(1, 1) in closed form, :func:`~.arma.low_order_acf`, as the structure's
        ``matrices``)."""
        uc, _ = self.residual.split(phi)
        u = [min(max(v, -UNCONSTRAINED_MAX), UNCONSTRAINED_MAX)
             for v in self._cor.full(uc).tolist()]
        p = self._p
        if self._low_order:
            return low_order_acf(u, p, self._max_lag)
        acf = _acf(_coefficients(u[:p], -1.0), _coefficients(u[p:], 1.0), self._max_lag)
        acf.append(0.0)
        return np.array(acf)

    def __call__(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        phi = np.asarray(phi, dtype=float)
        acf = self._autocorrelations(phi)
        M = self.M
        logdet = 0.0
        if self._scaled:
            log_d = self.residual.log_sd(phi)
            M = M * np.exp(-log_d)[:, None]
            logdet = 2.0 * float(log_d.sum())
        if self._patterns is not None:
            out = np.empty_like(M)
            flat_in, flat_out = M.reshape(-1), out.reshape(-1)
            for lay in self._patterns:
                # C is symmetric: its transpose is the Fortran-ordered array LAPACK takes
                L, info = dpotrf(acf.take(lay.lag).T, lower=1, clean=0, overwrite_a=1)
                if info != 0:
                    return None
                rhs = flat_in.take(lay.gather).T             # (m, g k), Fortran order
                x, info = dtrtrs(L, rhs, lower=1, overwrite_b=1)
                if info != 0:
                    return None
                flat_out[lay.dest] = x.T.reshape(-1).take(lay.src)
                logdet += 2.0 * float(lay.count @ np.log(np.diagonal(L)))
            return out, logdet
        ab = acf.take(self._band_index).reshape(-1, self._band.kd + 1).T
        c, info = dpbtrf(ab, lower=1, overwrite_ab=1)
        if info != 0:
            return None
        rhs = np.empty((M.shape[0], self._k), order="F")
        np.take(M, self._perm, axis=0, out=rhs)
        x, info = dtbtrs(c, rhs, uplo=b"L", overwrite_b=1)
        if info != 0:
            return None
        return x.take(self._inverse, axis=0), logdet + 2.0 * float(np.log(c[0]).sum())


def _one_pattern_classes(cor):
    """The structure's shared patterns and their lag matrices (its cached
    :func:`~.patterns.shared_patterns`) when every class has one pattern, else None."""
    shared = cor._shared()
    if shared is None or any(c.rep_rows.shape[0] != 1 for c in shared[0]):
        return None
    return shared

r"""A spatial correlation's band storage straight from its distances.

:class:`~.banded.BandedWhitening` factors ``C = diag(C_1, .., C_G)`` in LAPACK's band
storage. A spatial correlation's entries are ``(1 - nugget) f(d_{ij} / range)`` off the
diagonal and 1 on it, elementwise in the distances, so the band's entries are those of the
distances at the band's positions -- gathered once per fit. An evaluation then computes
``f`` on those distances only, instead of on every group's full ``m x m`` matrix followed
by a gather (the spatial fixture's 24 groups of 10 rows: the matrices and the gather were
~14 of a ~42 us whitening).

Where the class has an in-place ``f`` that is 0 at an infinite distance
(``shape_inplace``: exponential, Gaussian, linear, rational quadratic), every position of
the band holds a distance -- the pairs' own, 0 on the diagonal, ``inf`` between rows of
different groups and past the last row -- and the band is ``(1 - nugget) f(D / range)``
over the whole flat storage with its diagonal then set to 1: four or five ufunc calls
into one reused buffer, without the two scatters of the entries into a zeroed array
(on spatial_lme_lin_nugget's 24 x 10 rows, 2,400 band entries of which 1,080 are pairs,
the band went from ~107k to ~25k instructions an evaluation). The other classes (the
spherical, whose cubic is ``inf - inf`` at an infinite distance) scatter the pairs' values.
Either way the numbers are the same elementwise operations on the same distances: the band
is bit for bit the one gathered from the matrices (tests/test_linnugget_band.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .banded import BandedWhitening

__all__ = ["SpatialBand"]


class SpatialBand:
    """``(range, scale) -> ab``, the flat band storage of the correlation matrices.

    Parameters
    ----------
    dist : sequence of ndarray
        Per batch of groups, the ``(G_s, s, s)`` distances between their rows (the
        correlation's ``_dist``, in the batches' order).
    shape : callable
        The class's ``f`` (elementwise).
    band : BandedWhitening
        The band layout of the same batches.
    shape_inplace : callable, optional
        ``f`` applied in place to a float array, bit for bit ``shape``'s values, with
        ``f(inf) = 0`` and no floating-point warning there; None: the scatter.
    """

    def __init__(self, dist, shape, band: BandedWhitening,
                 shape_inplace: Callable[[np.ndarray], None] | None = None):
        self._shape = shape
        self._inplace = shape_inplace
        self._size = (band.kd + 1) * band.n
        self._ldab = band.kd + 1
        dest, off = [], []
        values = []
        for d, dst, src in zip(dist, band._dest, band._src, strict=True):
            s = d.shape[-1]
            # src indexes the flattened (G, s, s) stack: entry (i, j) of group g at
            # g s^2 + i s + j; the diagonal's have i == j
            within = src % (s * s)
            diag = within // s == within % s
            values.append(d.reshape(-1)[src[~diag]])
            off.append(dst[~diag])
            dest.append(dst[diag])
        self._d = np.concatenate(values)
        self._off = np.concatenate(off)
        self._diag = np.concatenate(dest)
        if shape_inplace is not None:
            #: distances at every band position (0 on the diagonal, inf where C is 0)
            self._band_d = np.full(self._size, np.inf)
            self._band_d[self._off] = self._d
            self._band_d[self._diag] = 0.0
            self._buf = np.empty(self._size)

    def __call__(self, rng: float, scale: float) -> np.ndarray:
        """The band storage at this range and ``1 - nugget`` (``scale``): a fresh array
        (LAPACK factors it in place)."""
        if self._inplace is None:
            ab = np.zeros(self._size)
            ab[self._diag] = 1.0
            ab[self._off] = scale * self._shape(self._d / rng)
            return ab
        buf = self._buf
        np.divide(self._band_d, rng, out=buf)
        self._inplace(buf)
        ab = np.multiply(buf, scale)
        ab[::self._ldab] = 1.0          # the diagonal: entry (j, j) at (kd + 1) j
        return ab

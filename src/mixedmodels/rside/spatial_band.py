r"""A spatial correlation's band storage straight from its distances.

:class:`~.banded.BandedWhitening` factors ``C = diag(C_1, .., C_G)`` in LAPACK's band
storage. A spatial correlation's entries are ``(1 - nugget) f(d_{ij} / range)`` off the
diagonal and 1 on it, elementwise in the distances, so the band's entries are those of the
distances at the band's positions -- gathered once per fit. An evaluation then computes
``f`` on the ``n (m + 1) / 2``-odd lower-triangle entries only, written into the band
directly, instead of on every group's full ``m x m`` matrix followed by a gather (the
spatial fixture's 24 groups of 10 rows: the matrices and the gather were ~14 of a ~42 us
whitening). The numbers are the same elementwise operations on the same distances: the
band is bit for bit the one gathered from the matrices.
"""

from __future__ import annotations

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
    """

    def __init__(self, dist, shape, band: BandedWhitening):
        self._shape = shape
        self._size = (band.kd + 1) * band.n
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

    def __call__(self, rng: float, scale: float) -> np.ndarray:
        """The band storage at this range and ``1 - nugget`` (``scale``)."""
        ab = np.zeros(self._size)
        ab[self._diag] = 1.0
        ab[self._off] = scale * self._shape(self._d / rng)
        return ab

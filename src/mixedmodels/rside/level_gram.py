r"""The dense cross-product of a one-term LMM from its whitened compact data, level by level.

:class:`~.objective.RSideLMMObjective` whitens the compact ``M = [Z_c, X~, y~]`` (``Z_c``
the term's ``p`` columns, not the ``q = g p`` of the dense ``Z``) at every evaluation and the
dense factorization needs ``A = [Z X~ y~]' [Z X~ y~]`` of the whitened rows. Spreading
``Z_c`` over the ``q`` columns and multiplying costs ``n (q + m)^2``. Where the whitening
mixes rows only within a level of the term -- no correlation, or correlation groups nested
in the term's levels (AR(1) within subjects grouped as ``(1 | Subject)``) -- every whitened
row still carries its random effects in its own level's columns, so ``Z'Z`` is block
diagonal and

.. math:: A_{ZZ}^{(l)} = \sum_{j \in l} z_j z_j', \qquad
          A_{Z\,XY}^{(l)} = \sum_{j \in l} z_j\, [x_j\ y_j]', \qquad
          A_{XY\,XY} = [X~ y~]'[X~ y~]

(``z_j`` row ``j``'s ``p`` whitened values): per-row products of ``p`` by ``p + m``
numbers summed per level (``np.add.reduceat`` over the rows by level) and one ``m``-column
product, ``O(n p (p + m) + n m^2)``. The numbers are the dense product's summed in another
order (equal to rounding).
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from .residual import BoundResidual

__all__ = ["LevelCrossProduct"]

_add_reduceat = np.add.reduceat


class LevelCrossProduct:
    """``Mw -> A`` (module docstring) for a fixed design, into one reused array.

    Parameters
    ----------
    design : Design
        One random-effects term, every level with rows.
    p : int
        Columns of ``[X~ y~]`` (``m``), the last ones of ``Mw``.
    """

    def __init__(self, design: Design, m: int):
        (term,) = design.terms
        k, g = term.p, term.nlevels
        codes = np.asarray(term.grouping.codes, dtype=np.int64)
        q = g * k
        size = q + m
        self.k, self.q, self.size = k, q, size
        #: rows by level (None: already in level order) and the first row of each level
        order = np.argsort(codes, kind="stable")
        self._order = None if np.array_equal(order, np.arange(codes.size)) else order
        self._starts = np.searchsorted(codes[order], np.arange(g))
        lev, a, b = np.meshgrid(np.arange(g), np.arange(k), np.arange(k + m), indexing="ij")
        row = lev * k + a
        col = np.where(b < k, lev * k + b, q + b - k)
        #: flat positions in A of each level's (k, k + m) sums, and of their transposes in
        #: the Z-by-XY block (the ZZ blocks are symmetric: written once from both sides)
        self._dest = (row * size + col).ravel()
        zx = b.ravel() >= k
        self._zx = zx
        self._dest_t = (col.ravel() * size + row.ravel())[zx]
        self.A = np.zeros((size, size))
        self._flat = self.A.reshape(-1)

    @staticmethod
    def applies(design: Design, residual: BoundResidual) -> bool:
        """One term, every level with rows, and the correlation (if any) within its
        levels."""
        if len(design.terms) != 1:
            return False
        term = design.terms[0]
        codes = np.asarray(term.grouping.codes)
        if codes.size == 0 or np.unique(codes).size != term.nlevels:
            return False
        cor = residual.correlation
        if cor is None:
            return True
        groups = np.asarray(cor.blocks.codes, dtype=np.int64)
        # each correlation group sits in one level: (group, level) pairs are as many as
        # the groups
        pairs = groups * int(term.nlevels) + codes
        return np.unique(pairs).size == np.unique(groups).size

    def __call__(self, Mw: np.ndarray) -> np.ndarray:
        """``A`` of the whitened ``Mw`` (n, k + m), in the reused array :attr:`A`."""
        k = self.k
        rows = Mw if self._order is None else Mw[self._order]
        if k == 1:
            prod = rows[:, :1] * rows
        else:
            prod = (rows[:, :k, None] * rows[:, None, :]).reshape(rows.shape[0], -1)
        sums = _add_reduceat(prod, self._starts, axis=0).reshape(-1)
        flat = self._flat
        flat[self._dest] = sums
        flat[self._dest_t] = sums[self._zx]
        XY = Mw[:, k:]
        self.A[self.q:, self.q:] = XY.T @ XY
        return self.A

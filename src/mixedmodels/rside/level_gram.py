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
    m : int
        Columns of ``[X~ y~]``, the last ones of ``Mw``.
    """

    def __init__(self, design: Design, m: int):
        (term,) = design.terms
        k, g = term.p, term.nlevels
        codes = term.grouping.codes
        q = g * k
        size = q + m
        self.k, self.q, self.size = k, q, size
        #: rows by level (None: already in level order, the usual layout) and the first
        #: row of each level in that order
        if codes.size < 2 or bool((codes[1:] >= codes[:-1]).all()):
            self._order = None
            self._starts = np.searchsorted(codes, np.arange(g))
        else:
            self._order = np.argsort(codes, kind="stable")
            self._starts = np.searchsorted(codes[self._order], np.arange(g))
        # level l's sums (k, k + m), entry (a, b): row l k + a of A, column l k + b
        # (b < k) or q + b - k; the Z-by-XY entries also at their transposes
        lev = np.arange(g)[:, None, None]
        a = np.arange(k)[None, :, None]
        b = np.arange(k + m)[None, None, :]
        row = np.broadcast_to(lev * k + a, (g, k, k + m))
        col = np.broadcast_to(np.where(b < k, lev * k + b, q + b - k), (g, k, k + m))
        self._dest = (row * size + col).ravel()
        self._zx = np.broadcast_to(b >= k, (g, k, k + m)).ravel()
        self._dest_t = (col * size + row).ravel()[self._zx]
        self.A = np.zeros((size, size))
        self._flat = self.A.reshape(-1)

    @staticmethod
    def applies(design: Design, residual: BoundResidual) -> bool:
        """One term with rows at every level. (A correlation's groups are nested in the
        term's levels: :func:`~.residual.bind_residual` refuses any other.)"""
        if len(design.terms) != 1:
            return False
        term = design.terms[0]
        codes = term.grouping.codes
        return codes.size > 0 and bool(np.bincount(codes, minlength=term.nlevels).all())

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

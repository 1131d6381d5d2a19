"""Rows grouped into the blocks of a block-diagonal residual covariance, batched by size.

A residual correlation structure makes ``Var(e) = sigma^2 V`` block diagonal: one block
``V_i`` per group of rows (nlme's ``| group``). Every per-evaluation computation runs over
*batches*: all groups with the same number of rows ``s`` stacked into one ``(G_s, s, ...)``
array, so numpy's batched Cholesky and solves replace a Python loop over groups. Data sets
have few distinct group sizes (usually one to a handful).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = ["RowBlocks"]


@dataclass(frozen=True)
class RowBlocks:
    """Groups of rows and their batches.

    Attributes
    ----------
    codes : ndarray of int (n,)
        Group of each row, ``0 .. n_groups - 1``.
    sizes : ndarray of int (n_groups,)
        Rows per group.
    position : ndarray of int (n,)
        Position of each row within its group (0-based, in data order).
    batches : tuple of ndarray
        One ``(G_s, s)`` array of row indices per distinct group size ``s`` (rows of a
        group in data order), sizes increasing. Made on first use (with
        ``batch_groups``): the banded criteria of AR(1) and CAR(1) never read them.
    batch_groups : tuple of ndarray
        The group codes of each batch's rows of groups, ``(G_s,)``.
    """

    codes: np.ndarray
    sizes: np.ndarray
    position: np.ndarray
    #: the rows by group (data order within), and each group's first position in it
    order: np.ndarray = field(repr=False, compare=False)
    starts: np.ndarray = field(repr=False, compare=False)

    @cached_property
    def _batched(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        sizes, starts, order = self.sizes, self.starts, self.order
        batches, groups = [], []
        # (``nonzero()[0]`` is np.flatnonzero's result on a 1-d mask, without its wrappers)
        for s in np.unique(sizes).tolist():
            g = (sizes == s).nonzero()[0]
            rows = order[(starts[g][:, None] + np.arange(s)[None, :]).ravel()].reshape(-1, s)
            batches.append(rows)
            groups.append(g)
        return tuple(batches), tuple(groups)

    @property
    def batches(self) -> tuple[np.ndarray, ...]:
        return self._batched[0]

    @property
    def batch_groups(self) -> tuple[np.ndarray, ...]:
        return self._batched[1]

    @classmethod
    def from_codes(cls, codes: np.ndarray) -> RowBlocks:
        """Blocks of the groups ``codes`` (any integer labels; renumbered densely).

        Parameters
        ----------
        codes : array of int (n,)

        Returns
        -------
        RowBlocks
        """
        codes = np.asarray(codes).ravel()
        sizes = np.bincount(codes) if codes.dtype.kind in "iu" and codes.size and \
            codes.min() >= 0 else None
        if sizes is None or not sizes.all():
            # renumber densely (codes already 0 .. G - 1, each present -- a grouping
            # factor's -- are their own renumbering)
            _, codes = np.unique(codes, return_inverse=True)
            sizes = None
        codes = codes.astype(np.int64, copy=False).ravel()
        n = codes.shape[0]
        sizes = np.bincount(codes) if sizes is None else sizes
        order = np.argsort(codes, kind="stable")          # rows by group, data order within
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n) - np.repeat(starts, sizes)
        return cls(codes, sizes, position, order, starts)

    @classmethod
    def single(cls, n: int) -> RowBlocks:
        """All ``n`` rows in one block."""
        return cls.from_codes(np.zeros(n, dtype=np.int64))

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    @property
    def n_groups(self) -> int:
        return self.sizes.shape[0]

    @property
    def max_size(self) -> int:
        return int(self.sizes.max()) if self.sizes.size else 0

    def gather(self, values: np.ndarray) -> list[np.ndarray]:
        """``values`` (n, ...) per batch: ``(G_s, s, ...)`` arrays."""
        return [values[rows] for rows in self.batches]

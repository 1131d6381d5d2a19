r"""Precomputed sparse products ``A21 diag(c) A21'`` for a fixed sparsity pattern.

In the blocked Cholesky the update ``L21 L21'`` of the dense block is, for scalar terms,
``D_r A21 diag(c) A21' D_r`` with ``c = lambda_1^2 / d^2`` changing with theta and ``A21``
fixed. Its lower triangle is linear in ``c``:

.. math:: G_{ab} = \sum_j A_{aj} A_{bj} c_j = (P c)_{(a,b)}

with ``P`` a sparse matrix (one row per structurally non-zero ``(a, b)``, ``a >= b``) built
once. Each evaluation is then one sparse mat-vec and a scatter into the dense block, instead
of a general sparse-sparse product and a sparse-to-dense conversion. When the values of
``A21`` change but not its pattern (new PIRLS weights), :meth:`refresh` recomputes ``P``'s
values from the stored pair positions.

Construction runs over chunks of columns so that its temporary arrays stay bounded
(:data:`PAIRS_PER_CHUNK`) even for millions of observations.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import scipy.sparse as sp

__all__ = ["PAIRS_PER_CHUNK", "PRODUCT_PATTERN_MAX_NNZ", "BlockProductPattern", "ProductPattern"]

#: Above this many pair products the pattern costs more memory than it saves time; the
#: caller falls back to a general sparse product.
PRODUCT_PATTERN_MAX_NNZ = 40_000_000
#: Pairs processed at a time while building the pattern (bounds temporary memory).
PAIRS_PER_CHUNK = 4_000_000


class ProductPattern:
    """Linear map ``c -> lower triangle of A diag(c) A'`` for a fixed CSR pattern ``A``.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
    keep_refresh : bool
        Keep the positions needed by :meth:`refresh` (8 bytes per pair).

    Attributes
    ----------
    flat : ndarray
        Flat (row-major) indices of the lower-triangle positions in the dense
        ``n_rows x n_rows`` result; ``rows`` and ``cols`` are their coordinates.
    P : scipy.sparse.csr_matrix
        ``(n_positions, n_cols)``: ``values = P @ c``.
    weights : ndarray
        1 at diagonal positions, 2 off the diagonal (a symmetric inner product read from
        the lower triangle).
    """

    def __init__(self, A: sp.csr_matrix, keep_refresh: bool = False):
        n_rows, n_cols = A.shape
        self.n_rows = n_rows
        # CSC view whose data are the positions of the entries in A's CSR data
        pos = sp.csr_matrix((np.arange(A.nnz, dtype=float) + 1.0, A.indices, A.indptr),
                            shape=A.shape).tocsc()
        pos.sort_indices()
        self._csc_to_csr = pos.data.astype(np.int64) - 1
        self._csc_rows = pos.indices.astype(np.int64)
        self._indptr_c = pos.indptr.astype(np.int64)
        counts = np.diff(self._indptr_c)
        pairs = counts * (counts + 1) // 2
        # column ranges holding about PAIRS_PER_CHUNK pairs each
        cum = np.cumsum(pairs)
        cuts = np.searchsorted(cum, np.arange(PAIRS_PER_CHUNK, cum[-1] if cum.size else 0,
                                              PAIRS_PER_CHUNK))
        bounds = np.unique(np.concatenate([[0], cuts + 1, [n_cols]])).clip(0, n_cols)
        self._chunks = [(int(a), int(b)) for a, b in pairwise(bounds) if b > a]
        # pass 1: enumerate the pairs once, keeping their output position (int32 when it
        # fits) and CSR data positions; mark the positions that occur in a dense lookup table
        # (the dense block this pattern feeds is n_rows^2 anyway, and a table is much faster
        # than sorting pairs)
        flat_dtype = np.int32 if n_rows * n_rows < 2**31 else np.int64
        rows_c = self._csc_rows.astype(flat_dtype)
        # the position table only holds position numbers (< n_rows^2): int32 when they fit
        # halves the memory its random reads and writes touch
        table = np.zeros(n_rows * n_rows, dtype=flat_dtype)
        # A's values in CSC order: the products of a pair are then read at its CSC
        # positions directly (the CSR positions are only kept for refresh())
        data_c = A.data[self._csc_to_csr]
        # every pair goes straight into arrays of the final size (no per-chunk lists and
        # concatenation: at 25M pairs the copies and their page faults cost ~0.7 s); the
        # flat positions are written where P's row numbers go and replaced in pass 2
        total = int(cum[-1]) if cum.size else 0
        out_row = np.empty(total, dtype=flat_dtype)
        values = np.empty(total)
        left = np.empty(total, np.int32) if keep_refresh else None
        right = np.empty(total, np.int32) if keep_refresh else None
        off = 0
        for a, b in self._chunks:
            ea, eb = self._pairs(a, b)
            sl = slice(off, off + ea.size)
            off += ea.size
            flat = out_row[sl]
            np.multiply(rows_c[ea], flat_dtype(n_rows), out=flat)
            flat += rows_c[eb]
            table[flat] = 1
            np.multiply(data_c[ea], data_c[eb], out=values[sl])
            if keep_refresh:
                left[sl] = self._csc_to_csr[ea]
                right[sl] = self._csc_to_csr[eb]
        self.flat = np.flatnonzero(table)
        table[self.flat] = np.arange(self.flat.size)
        self.rows = (self.flat // n_rows).astype(np.intp)
        self.cols = (self.flat % n_rows).astype(np.intp)
        #: 1 on the diagonal, 2 off it: the weights of the lower-triangle positions in a
        #: symmetric inner product
        self.weights = np.where(self.rows == self.cols, 1.0, 2.0)
        # pass 2: output row of every pair. Within a column each row appears once, so every
        # pair is its own entry of P (no duplicates to sum).
        for lo in range(0, total, PAIRS_PER_CHUNK):
            sl = slice(lo, lo + PAIRS_PER_CHUNK)
            out_row[sl] = table[out_row[sl]]
        del table
        self._shape = (self.flat.size, n_cols)
        # pairs come column by column: that is P in CSC order already (no sort); the CSR
        # P is kept (its mat-vec gathers; the CSC one scatters into millions of positions
        # at ~3x the cost) and CSC -> CSR is a linear-time transpose that carries the
        # values along. refresh() also needs the permutation of the pairs: then the entry
        # numbers are carried instead (int32 when they fit: half the traffic of floats)
        # and applied to the values and the stored positions.
        indptr = np.concatenate([[0], np.cumsum(pairs)])
        if not keep_refresh:
            self.P = sp.csc_matrix((values, out_row, indptr), shape=self._shape).tocsr()
            del values, out_row
            self._indices, self._indptr = self.P.indices, self.P.indptr
            self._ea = self._eb = None
            return
        num_dtype = np.int32 if total < 2**31 - 1 else np.int64
        order = sp.csc_matrix((np.arange(1, total + 1, dtype=num_dtype), out_row,
                               indptr), shape=self._shape).tocsr()
        del out_row
        perm = order.data
        perm -= 1
        self._indices, self._indptr = order.indices, order.indptr
        del order
        self._ea = left[perm]
        self._eb = right[perm]
        del left, right
        self.P = sp.csr_matrix((values[perm], self._indices, self._indptr), shape=self._shape)

    def _pairs(self, first: int, stop: int):
        """CSC positions (e, e') of the pairs e' <= e within columns [first, stop), column
        by column (int32 when they fit: the repeats below are memory-bound)."""
        indptr = self._indptr_c
        counts = np.diff(indptr[first:stop + 1])
        n_total = int(np.sum(counts * (counts + 1) // 2))
        idx = np.int32 if max(int(indptr[-1]), n_total) < 2**31 - 1 else np.int64
        cols = np.repeat(np.arange(first, stop), counts)
        ent = np.arange(indptr[first], indptr[stop], dtype=idx)
        pos_in_col = ent - np.repeat(indptr[first:stop].astype(idx), counts)
        n_pairs = pos_in_col + 1
        e = np.repeat(ent, n_pairs)
        # entry e pairs with the first pos_in_col + 1 entries of its column:
        # e2 = (column start) + (rank of the pair within e's run)
        base = (np.cumsum(n_pairs, dtype=np.int64) - n_pairs - indptr[cols]).astype(idx)
        e2 = np.arange(e.size, dtype=idx) - np.repeat(base, n_pairs)
        return e, e2

    @property
    def can_refresh(self) -> bool:
        return self._ea is not None

    def refresh(self, data: np.ndarray) -> None:
        """Recompute ``P`` for new values of ``A`` (same pattern, CSR data order)."""
        if self._ea is None:
            raise RuntimeError("pattern built without keep_refresh=True")
        self.P = sp.csr_matrix((data[self._ea] * data[self._eb], self._indices, self._indptr),
                               shape=self._shape)

    @staticmethod
    def n_pairs(A: sp.csr_matrix) -> int:
        """Number of pair products the pattern would store (to decide whether to build it)."""
        counts = np.bincount(A.indices, minlength=A.shape[1]).astype(np.int64)
        return int(np.sum(counts * (counts + 1) // 2))

    def values(self, c: np.ndarray) -> np.ndarray:
        """Lower-triangle values of ``A diag(c) A'`` at the pattern positions."""
        return self.P @ c

    def subtract_from(self, dense: np.ndarray, c: np.ndarray) -> None:
        """``dense -= A diag(c) A'`` on the lower triangle (upper triangle untouched)."""
        dense.reshape(-1)[self.flat] -= self.P @ c


def _block_complete(A: sp.csr_matrix, starts: np.ndarray, p: int) -> bool:
    """Every block's ``p`` entries present, consecutive and in the same row (sorted CSR)."""
    if starts.size * p != A.nnz or (starts.size and starts[-1] + p > A.nnz):
        return False
    pos = starts[:, None] + np.arange(p)[None, :]
    if not np.array_equal(A.indices[pos], A.indices[starts][:, None] + np.arange(p)[None, :]):
        return False
    row = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    return bool(np.all(row[pos] == row[starts][:, None]))


class BlockProductPattern:
    r"""Linear map ``W -> lower triangle of sum_c A_c W_c A_c'`` for a CSR ``A`` whose columns
    come in blocks of ``p`` (one block per level of a vector-valued term).

    ``A_c`` is the (n_rows x p) block of columns of level ``c`` and ``W_c`` a p x p matrix per
    level. In the blocked Cholesky ``L21 L21' = Lambda_r' A21 C A21' Lambda_r`` with
    ``C_c = m_c m_c'`` for vector-valued first terms; with this pattern it is one sparse
    mat-vec, like :class:`ProductPattern` for scalar terms, instead of a sparse-sparse
    product and a dense conversion. The pattern of ``A`` must be block-complete (every row
    that has an entry in a level's block has all ``p`` of them), which the cross-products of
    a random-effects term always are.

    Built from a :class:`ProductPattern` on the collapsed ``n_rows x n_blocks`` pattern: every
    pair of entries of a column becomes ``p^2`` products.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
        Sorted indices, block-complete pattern.
    p : int
        Columns per block.
    keep_refresh : bool
        Keep what :meth:`refresh` needs.

    Attributes
    ----------
    flat, rows, cols : ndarray
        As in :class:`ProductPattern`.
    P : scipy.sparse.csr_matrix
        ``(n_positions, n_blocks * p * p)``: ``values = P @ W.ravel()``.
    """

    def __init__(self, A: sp.csr_matrix, p: int, keep_refresh: bool = False):
        p = int(p)
        n_rows, n_cols = A.shape
        if n_cols % p:
            raise ValueError(f"{n_cols} columns do not split into blocks of {p}")
        A = A.tocsr()
        A.sort_indices()
        starts = np.flatnonzero(A.indices % p == 0)           # first entry of each block
        if not _block_complete(A, starts, p):
            raise ValueError("the pattern of A is not block-complete: a row has some but "
                             f"not all of the {p} columns of a block")
        self.p = p
        self.n_blocks = n_cols // p
        counts = np.diff(A.indptr) // p                        # blocks per row
        collapsed = sp.csr_matrix(
            (np.ones(starts.size), A.indices[starts] // p,
             np.concatenate([[0], np.cumsum(counts)])), shape=(n_rows, self.n_blocks))
        base = ProductPattern(collapsed, keep_refresh=True)
        self.flat, self.rows, self.cols, self.n_rows = base.flat, base.rows, base.cols, n_rows
        self.weights = base.weights
        pp = p * p
        self._starts_a = starts[base._ea]
        self._starts_b = starts[base._eb]
        self._indices = (base._indices.astype(np.int64)[:, None] * pp
                         + np.arange(pp)[None, :]).ravel().astype(np.int32)
        self._indptr = (base._indptr.astype(np.int64) * pp)
        self._shape = (base._shape[0], self.n_blocks * pp)
        self.P = self._build(A.data)
        if not keep_refresh:
            self._starts_a = self._starts_b = None

    def _build(self, data: np.ndarray) -> sp.csr_matrix:
        ar = np.arange(self.p)
        da = data[self._starts_a[:, None] + ar[None, :]]
        db = data[self._starts_b[:, None] + ar[None, :]]
        vals = (da[:, :, None] * db[:, None, :]).ravel()
        return sp.csr_matrix((vals, self._indices, self._indptr), shape=self._shape)

    @property
    def can_refresh(self) -> bool:
        return self._starts_a is not None

    def refresh(self, data: np.ndarray) -> None:
        """Recompute ``P`` for new values of ``A`` (same pattern, sorted CSR data order)."""
        if self._starts_a is None:
            raise RuntimeError("pattern built without keep_refresh=True")
        self.P = self._build(data)

    @staticmethod
    def n_pairs(A: sp.csr_matrix, p: int) -> int:
        """Pair products the pattern would store (``p^2`` per pair of block entries)."""
        cols = A.indices[A.indices % p == 0] // p
        counts = np.bincount(cols, minlength=A.shape[1] // p).astype(np.int64)
        return int(np.sum(counts * (counts + 1) // 2)) * p * p

    def values(self, W: np.ndarray) -> np.ndarray:
        """Lower-triangle values of ``sum_c A_c W_c A_c'`` (``W``: (n_blocks, p, p))."""
        return self.P @ W.reshape(-1)

    def subtract_from(self, dense: np.ndarray, W: np.ndarray) -> None:
        """``dense -= sum_c A_c W_c A_c'`` on the lower triangle."""
        dense.reshape(-1)[self.flat] -= self.P @ W.reshape(-1)

    def block_quadratic(self, S_lower: np.ndarray, weighted: bool = False) -> np.ndarray:
        r"""``Y_c = A_c' S A_c`` for every block, ``S`` symmetric given by its values at the
        pattern positions (lower triangle): the adjoint of :meth:`values`, symmetrized.

        ``weighted=True``: the values already carry :attr:`weights` (2 off the diagonal).

        Returns (n_blocks, p, p).
        """
        vals = S_lower if weighted else S_lower * self.weights
        Y = (self.P.T @ vals).reshape(self.n_blocks, self.p, self.p)
        return 0.5 * (Y + Y.transpose(0, 2, 1))

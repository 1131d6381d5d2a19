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

Construction enumerates the pairs row by row of ``A`` (all pairs of one output position then
come from the same few rows), over chunks of rows so that its temporary arrays stay bounded
(:data:`PAIRS_PER_CHUNK`) even for millions of observations, and writes ``P`` in CSR order
chunk by chunk: no array of all pairs and no transpose of one.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import scipy.sparse as sp

__all__ = ["PAIRS_PER_CHUNK", "PRODUCT_PATTERN_MAX_NNZ", "BlockProductPattern", "ProductPattern"]

#: Above this many pair products the pattern costs more memory than it saves time; the
#: caller falls back to a general sparse product.
PRODUCT_PATTERN_MAX_NNZ = 40_000_000
#: Pairs processed at a time while building the pattern (bounds temporary memory). A
#: chunk of 1M pairs keeps its rows of the lookup table (a few hundred kB) and its
#: temporaries (4-8 MB, reused from the heap rather than fresh pages) in cache: the
#: 25M-pair crossed_1m pattern builds ~2x faster than with 4M-pair chunks.
PAIRS_PER_CHUNK = 1_000_000
#: Up to this many (lower-triangle position, block) cells :class:`BlockProductPattern`
#: is built from a dense table (1 byte a cell, a few microseconds) instead of the chunked
#: sparse build, whose fixed cost (~0.8 ms of sparse conversions) dominates small models.
DENSE_PAIR_TABLE_MAX_CELLS = 1 << 20


class _TransposeView:
    """``P'`` as a CSC view of ``P``'s arrays (no copy), kept while ``P`` is: scipy's
    ``.T`` builds and validates a new matrix object on every call (~9 us, more than the
    product itself on small models, where the gradient asks for it every evaluation)."""

    _pt: tuple | None = None

    @property
    def PT(self) -> sp.csc_matrix:
        if self._pt is None or self._pt[0] is not self.P:
            self._pt = (self.P, self.P.T)
        return self._pt[1]


class ProductPattern(_TransposeView):
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
        nnz = A.nnz
        # CSC view whose data are the positions of the entries in A's CSR data (refresh()
        # reads new values there), and back to rows: ``by_row`` is the CSC position of every
        # entry in sorted row-major order (A's own CSR order may be unsorted)
        pos = sp.csr_matrix((np.arange(nnz, dtype=float) + 1.0, A.indices, A.indptr),
                            shape=A.shape).tocsc()
        pos.sort_indices()
        csc_to_csr = pos.data.astype(np.int64) - 1
        indptr_c = pos.indptr.astype(np.int64)
        flat_dtype = np.int32 if n_rows * n_rows < 2**31 else np.int64
        rows_c = pos.indices.astype(flat_dtype)
        back = sp.csc_matrix((np.arange(nnz, dtype=float) + 1.0, pos.indices, pos.indptr),
                             shape=A.shape).tocsr()
        by_row = back.data.astype(np.int64) - 1
        col_of = back.indices
        indptr_r = back.indptr.astype(np.int64)
        del pos, back
        # A's values in CSC order: a pair's product is read at its CSC positions directly
        data_c = A.data[csc_to_csr]
        # the entry of row a in column j pairs with the entries of column j in rows b <= a:
        # as many as its rank in the (row-sorted) column plus one
        start = indptr_c[col_of]
        n_pairs = by_row - start + 1
        before = np.concatenate([[0], np.cumsum(n_pairs)])      # pairs before each entry
        total = int(before[-1])
        # chunks of whole rows of A with about PAIRS_PER_CHUNK pairs each: a chunk's
        # positions (a, b) are then a run of P's rows that no other chunk touches, so each
        # chunk's rows of P are final when it is done
        row_end = before[indptr_r[1:]]
        cuts = np.searchsorted(row_end, np.arange(PAIRS_PER_CHUNK, total, PAIRS_PER_CHUNK))
        bounds = np.unique(np.concatenate([[0], cuts + 1, [n_rows]])).clip(0, n_rows)
        self._chunks = [(int(a), int(b)) for a, b in pairwise(bounds) if b > a]
        idx = np.int32 if max(nnz, total, n_cols) < 2**31 - 1 else np.int64
        # flat offset ``a * n_rows`` of every entry's row, in row-major entry order: a
        # pair's flat position is its first entry's offset (repeated) plus its second
        # entry's row, with no gather through the first entry's CSC position
        row_off = np.repeat(np.arange(n_rows, dtype=flat_dtype) * flat_dtype(n_rows),
                            np.diff(indptr_r))
        # P goes straight into arrays of its final size, chunk by chunk: no array of all
        # pairs in generation order and no transpose of it (at 25M pairs a CSC -> CSR
        # transpose scatters into millions of rows and costs ~1.4 s; within a chunk the
        # scatter stays in a few thousand rows, in cache)
        p_indices = np.empty(total, dtype=idx)
        p_data = np.empty(total)
        left = np.empty(total, np.int32) if keep_refresh else None
        right = np.empty(total, np.int32) if keep_refresh else None
        # marks (then numbers) the positions that occur, in a dense lookup table: the block
        # this pattern feeds is n_rows^2 anyway, and a table is much faster than sorting
        table = np.zeros(n_rows * n_rows, dtype=flat_dtype)
        flats, indptrs = [], [np.zeros(1, dtype=idx)]
        n_pos = 0
        for r0, r1 in self._chunks:
            k0, k1 = int(indptr_r[r0]), int(indptr_r[r1])
            off, m = int(before[k0]), int(before[k1] - before[k0])
            n_k = n_pairs[k0:k1].astype(idx)
            e2 = self._partners(start[k0:k1], n_pairs[k0:k1], m, idx)
            flat = np.repeat(row_off[k0:k1], n_k)
            flat += rows_c[e2]
            table[flat] = 1
            seg = table[r0 * n_rows:r1 * n_rows]
            found = np.flatnonzero(seg)
            seg[found] = np.arange(found.size, dtype=flat_dtype)
            flats.append(found + r0 * n_rows)
            key = table[flat]
            del flat
            # the pair products in generation order (the same two factors, the same single
            # rounding, as when read after the grouping)
            vals = np.repeat(data_c[by_row[k0:k1]], n_k)
            vals *= data_c[e2]
            # the chunk's pairs grouped by position, stably: within a row of A the columns
            # ascend, so every row of P comes out with sorted column indices (and no two
            # pairs share a position and a column: nothing is summed). The grouping carries
            # the products themselves, or (for refresh) the generation order
            cols = np.repeat(col_of[k0:k1].astype(idx), n_k)
            carried = np.arange(m, dtype=idx) if keep_refresh else vals
            order = sp.coo_matrix((carried, (key, cols)),
                                  shape=(found.size, n_cols)).tocsr()
            del cols, key, carried
            sl = slice(off, off + m)
            p_indices[sl] = order.indices
            indptrs.append(order.indptr[1:].astype(idx) + idx(off))
            if keep_refresh:
                perm = order.data
                np.take(vals, perm, out=p_data[sl])
                left[sl] = np.repeat(csc_to_csr[by_row[k0:k1]], n_k)[perm]
                right[sl] = csc_to_csr[e2[perm]]
            else:
                p_data[sl] = order.data
            del order, vals, e2
            n_pos += found.size
        del table
        self.flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.intp)
        self.rows = (self.flat // n_rows).astype(np.intp)
        self.cols = (self.flat % n_rows).astype(np.intp)
        #: 1 on the diagonal, 2 off it: the weights of the lower-triangle positions in a
        #: symmetric inner product
        self.weights = np.where(self.rows == self.cols, 1.0, 2.0)
        self._shape = (n_pos, n_cols)
        self.P = sp.csr_matrix((p_data, p_indices, np.concatenate(indptrs)), shape=self._shape)
        self._indices, self._indptr = self.P.indices, self.P.indptr
        self._ea, self._eb = left, right

    @staticmethod
    def _partners(col_start: np.ndarray, n_pairs: np.ndarray, m: int, idx) -> np.ndarray:
        """CSC positions ``e'`` of the pairs of a run of entries (in row-major order) with
        the entries above them in their column: an entry pairs with its column's entries
        from ``col_start`` on (``n_pairs`` of them, rows ``b <= a``); ``m`` pairs in all.

        Index dtype ``idx`` (int32 when it fits: the repeats are memory-bound).
        """
        # e' = (column start) + (rank of the pair within the entry's run)
        first = np.cumsum(n_pairs) - n_pairs                   # run starts within the chunk
        return np.arange(m, dtype=idx) - np.repeat((first - col_start).astype(idx),
                                                   n_pairs.astype(idx))

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


class BlockProductPattern(_TransposeView):
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
        pp = p * p
        if n_rows * (n_rows + 1) // 2 * self.n_blocks <= DENSE_PAIR_TABLE_MAX_CELLS:
            self._dense_init(A, starts, n_rows, keep_refresh)
            return
        counts = np.diff(A.indptr) // p                        # blocks per row
        collapsed = sp.csr_matrix(
            (np.ones(starts.size), A.indices[starts] // p,
             np.concatenate([[0], np.cumsum(counts)])), shape=(n_rows, self.n_blocks))
        base = ProductPattern(collapsed, keep_refresh=True)
        self.flat, self.rows, self.cols, self.n_rows = base.flat, base.rows, base.cols, n_rows
        self.weights = base.weights
        self._starts_a = starts[base._ea]
        self._starts_b = starts[base._eb]
        self._indices = (base._indices.astype(np.int64)[:, None] * pp
                         + np.arange(pp)[None, :]).ravel().astype(np.int32)
        self._indptr = (base._indptr.astype(np.int64) * pp)
        self._shape = (base._shape[0], self.n_blocks * pp)
        self.P = self._build(A.data)
        if not keep_refresh:
            self._starts_a = self._starts_b = None

    def _dense_init(self, A: sp.csr_matrix, starts: np.ndarray, n_rows: int,
                    keep_refresh: bool) -> None:
        """The same pattern from a dense table of (lower-triangle position, block) cells.

        ``S[a, c]`` is the data position of the first entry of row ``a`` in block ``c``
        (-1 where the row has none); a position ``(a, b)``, ``b <= a``, pairs block ``c``
        where both rows have it. ``np.nonzero`` of that table walks positions in row-major
        order and blocks in ascending order within each, which is exactly the order of the
        chunked build (P's rows by flat position, sorted column indices), so ``P`` comes out
        identical, entry for entry. For few rows (a handful of crossed levels) this costs
        a few microseconds where the general build's sparse conversions cost ~0.8 ms.
        """
        p, pp = self.p, self.p * self.p
        S = np.full((n_rows, self.n_blocks), -1, dtype=np.int64)
        row_of = np.repeat(np.arange(n_rows), np.diff(A.indptr))
        S[row_of[starts], A.indices[starts] // p] = starts
        ia, ib = np.tril_indices(n_rows)                       # row-major, b <= a
        both = (S[ia] >= 0) & (S[ib] >= 0)                     # (n_tri, n_blocks)
        keep = np.flatnonzero(both.any(axis=1))
        ia, ib, both = ia[keep], ib[keep], both[keep]
        r, c = np.nonzero(both)
        self.flat = (ia.astype(np.intp) * n_rows + ib).astype(np.intp)
        self.rows = ia.astype(np.intp)
        self.cols = ib.astype(np.intp)
        self.n_rows = n_rows
        self.weights = np.where(self.rows == self.cols, 1.0, 2.0)
        self._starts_a = S[ia[r], c]
        self._starts_b = S[ib[r], c]
        self._indices = (c[:, None] * pp + np.arange(pp)[None, :]).ravel().astype(np.int32)
        counts = np.bincount(r, minlength=keep.size).astype(np.int64)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64) * pp
        self._shape = (keep.size, self.n_blocks * pp)
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
        Y = (self.PT @ vals).reshape(self.n_blocks, self.p, self.p)
        return 0.5 * (Y + Y.transpose(0, 2, 1))

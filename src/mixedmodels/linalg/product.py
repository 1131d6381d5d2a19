r"""Precomputed sparse products ``A21 diag(c) A21'`` for a fixed sparsity pattern.

In the blocked Cholesky the update ``L21 L21'`` of the dense block is, for scalar terms,
``D_r A21 diag(c) A21' D_r`` with ``c = lambda_1^2 / d^2`` changing with theta and ``A21``
fixed. Its lower triangle is linear in ``c``:

.. math:: G_{ab} = \sum_j A_{aj} A_{bj} c_j = (P c)_{(a,b)}

with ``P`` a sparse matrix (one row per structurally non-zero ``(a, b)``, ``a >= b``) built
once. Each evaluation is then one sparse mat-vec and a scatter into the dense block, instead
of a general sparse-sparse product and a sparse-to-dense conversion. When the values of
``A21`` change but not its pattern (new PIRLS weights), :meth:`refresh` recomputes ``P``'s
values with one ``bincount``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["PRODUCT_PATTERN_MAX_NNZ", "ProductPattern"]

#: Above this many pair products the pattern costs more memory than it saves time; the
#: caller falls back to a general sparse product.
PRODUCT_PATTERN_MAX_NNZ = 40_000_000


class ProductPattern:
    """Linear map ``c -> lower triangle of A diag(c) A'`` for a fixed CSR pattern ``A``.

    Attributes
    ----------
    flat : ndarray
        Flat (row-major) indices of the lower-triangle positions in the dense
        ``n_rows x n_rows`` result.
    P : scipy.sparse.csr_matrix
        ``(n_positions, n_cols)``: ``values = P @ c``.
    """

    def __init__(self, A: sp.csr_matrix):
        n_rows, n_cols = A.shape
        # CSC view whose data are the positions of the entries in A's CSR data
        pos = sp.csr_matrix((np.arange(A.nnz, dtype=float) + 1.0, A.indices, A.indptr),
                            shape=A.shape).tocsc()
        pos.sort_indices()
        csr_pos = pos.data.astype(np.int64) - 1
        counts = np.diff(pos.indptr)
        col_of = np.repeat(np.arange(n_cols), counts)
        pos_in_col = np.arange(pos.nnz) - np.repeat(pos.indptr[:-1], counts)
        # pair every entry e with the entries e' <= e of its column (rows sorted, so
        # row(e') <= row(e): the lower triangle, diagonal included)
        n_pairs = pos_in_col + 1
        e = np.repeat(np.arange(pos.nnz), n_pairs)
        offsets = np.arange(e.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        e2 = np.repeat(pos.indptr[col_of], n_pairs) + offsets
        ra, rb = pos.indices[e].astype(np.int64), pos.indices[e2].astype(np.int64)
        flat = ra * n_rows + rb
        # unique output positions through a dense lookup table: the dense block this
        # pattern feeds is n_rows^2 anyway, and a table is much faster than sorting pairs
        table = np.zeros(n_rows * n_rows, dtype=np.int64)
        table[flat] = 1
        self.flat = np.flatnonzero(table)
        table[self.flat] = np.arange(self.flat.size)
        out_row = table[flat]
        del table
        self.rows = (self.flat // n_rows).astype(np.intp)
        self.cols = (self.flat % n_rows).astype(np.intp)
        # Within a column each row appears once, so every pair is its own entry of P (no
        # duplicates). Build P's CSR structure with entry numbers as data to learn where
        # each pair lands, then store the pair factors in CSR order for refresh().
        order = sp.csr_matrix((np.arange(1, e.size + 1, dtype=float), (out_row, col_of[e])),
                              shape=(self.flat.size, n_cols))
        order.sort_indices()
        perm = order.data.astype(np.int64) - 1
        self._indices, self._indptr = order.indices, order.indptr
        self._ea, self._eb = csr_pos[e][perm], csr_pos[e2][perm]
        self._shape = (self.flat.size, n_cols)
        self.n_rows = n_rows
        self.refresh(A.data)

    def refresh(self, data: np.ndarray) -> None:
        """Recompute ``P`` for new values of ``A`` (same pattern, CSR data order)."""
        vals = data[self._ea] * data[self._eb]
        self.P = sp.csr_matrix((vals, self._indices, self._indptr), shape=self._shape)

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

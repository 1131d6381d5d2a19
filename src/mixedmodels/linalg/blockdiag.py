r"""Products with the block-diagonal relative covariance factor of a group of terms.

``Lambda`` of a group of terms (the rest block of :mod:`mixedmodels.linalg.blocked`) is
block diagonal: term k contributes ``I_{l_k} (x) lambda_k`` (one p_k x p_k block per level,
the level's p_k columns consecutive). Multiplying a dense matrix by it is a batched p_k x p_k
product over the levels -- ``O(q p_k)`` per column, done by reshaping the rows (or columns)
of each term to (levels, p_k, ...) -- instead of a sparse product.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BlockDiagonal"]


class BlockDiagonal:
    """Shapes of a block-diagonal ``Lambda``: ``(nlevels, p)`` per term, in order.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Levels and effects per level of each term.
    """

    def __init__(self, shapes):
        self.shapes = tuple((int(nl), int(p)) for nl, p in shapes)
        self.offsets = np.concatenate([[0], np.cumsum([nl * p for nl, p in self.shapes])])
        self.q = int(self.offsets[-1])
        self.scalar = all(p == 1 for _, p in self.shapes)
        # strict upper triangle of every diagonal block, and the mirrored (lower) positions
        up, lo = [], []
        for (nl, p), off in zip(self.shapes, self.offsets[:-1], strict=True):
            if p == 1:
                continue
            a, b = np.triu_indices(p, 1)
            base = off + np.arange(nl)[:, None] * p
            r, c = (base + a[None, :]).ravel(), (base + b[None, :]).ravel()
            up.append(r * self.q + c)
            lo.append(c * self.q + r)
        self._upper = np.concatenate(up) if up else np.zeros(0, np.int64)
        self._lower = np.concatenate(lo) if lo else np.zeros(0, np.int64)

    def terms(self):
        """``(slice of rows, nlevels, p)`` per term."""
        for (nl, p), off in zip(self.shapes, self.offsets[:-1], strict=True):
            yield slice(int(off), int(off) + nl * p), nl, p

    def left(self, lams, X: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``Lambda X`` (or ``Lambda' X``) for ``X`` with q rows (new array)."""
        out = np.empty_like(X)
        for (sl, nl, p), lam in zip(self.terms(), lams, strict=True):
            if p == 1:
                # a scalar term is a multiple of the identity: a stacked 1 x 1 matmul over
                # the levels costs ~5x the scaling
                np.multiply(X[sl], lam[0, 0], out=out[sl])
                continue
            lt = lam.T if transpose else lam
            blk = X[sl].reshape(nl, p, -1)
            out[sl] = np.matmul(lt, blk).reshape(X[sl].shape)
        return out

    def right(self, lams, X: np.ndarray, inplace: bool = False,
              vector_only: bool = False) -> np.ndarray:
        """``X Lambda`` for ``X`` with q columns (``vector_only``: the scalar terms'
        columns left as they are, i.e. ``X Lambda_v``)."""
        out = X if inplace else np.empty_like(X)
        for (sl, nl, p), lam in zip(self.terms(), lams, strict=True):
            if p == 1:
                if not vector_only:
                    np.multiply(X[:, sl], lam[0, 0], out=out[:, sl])
                continue
            blk = X[:, sl].reshape(X.shape[0], nl, p)
            out[:, sl] = np.matmul(blk, lam).reshape(X.shape[0], nl * p)
        return out

    def sandwich_lower(self, lams, X: np.ndarray, vector_only: bool = False) -> np.ndarray:
        r"""``Lambda' X Lambda`` from the lower triangle of the symmetric ``X`` (q x q, C
        order); the result's lower triangle is valid. ``vector_only``: only the
        vector-valued terms' blocks are applied (``Lambda_v' X Lambda_v``, the scalar
        terms' scaling done elsewhere).

        Only the diagonal blocks need their upper triangle (a level's rows mix among
        themselves), so those are mirrored first; entries above the diagonal blocks feed only
        the result's upper triangle.
        """
        self.mirror_diagonal_blocks(X)
        for (sl, nl, p), lam in zip(self.terms(), lams, strict=True):
            if p == 1:
                if not vector_only:
                    X[sl] *= lam[0, 0]
                continue
            X[sl] = np.matmul(lam.T, X[sl].reshape(nl, p, -1)).reshape(X[sl].shape)
        return self.right(lams, X, inplace=True, vector_only=vector_only)

    def mirror_diagonal_blocks(self, X: np.ndarray) -> np.ndarray:
        """Copy the lower triangle of every vector-valued level's diagonal block to its
        upper triangle, in place (q x q, C order). Returns ``X``."""
        flat = X.reshape(-1)
        flat[self._upper] = flat[self._lower]
        return X

    def scalar_diagonal(self, lams) -> np.ndarray:
        """The scalar terms' ``lambda`` on their columns and 1 on the vector-valued terms'
        (length q): ``Lambda = D Lambda_v`` with ``Lambda_v`` the vector terms' blocks."""
        return np.concatenate([np.full(nl * p, float(lam[0, 0]) if p == 1 else 1.0)
                               for (nl, p), lam in zip(self.shapes, lams, strict=True)])

    def sandwich_vector_terms(self, lams, X: np.ndarray) -> np.ndarray:
        r"""``Lambda_v X Lambda_v'`` in place for a symmetric ``X`` (q x q), with
        ``Lambda_v`` the vector-valued terms' blocks and the identity on the scalar terms'
        columns: only the vector terms' rows and columns are touched. Returns ``X``.

        ``X`` needs only its lower triangle and its vector-valued levels' diagonal blocks
        (:meth:`mirror_diagonal_blocks`): every lower-triangle entry of the result mixes
        entries of the same level blocks, which lie below the diagonal except within a
        level's own block; the result's lower triangle is valid.
        """
        q = X.shape[0]
        for (sl, nl, p), lam in zip(self.terms(), lams, strict=True):
            if p == 1:
                continue
            X[sl] = np.matmul(lam, X[sl].reshape(nl, p, -1)).reshape(nl * p, -1)
            X[:, sl] = np.matmul(X[:, sl].reshape(q, nl, p), lam.T).reshape(q, nl * p)
        return X

    def diag_block_sums(self, X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
        r"""Per term ``sum_i X_i Y_i'`` over its levels, ``X_i``/``Y_i`` the level's p rows of
        X and Y (same number of columns): p_k x p_k each."""
        out = []
        for sl, nl, p in self.terms():
            out.append(np.tensordot(X[sl].reshape(nl, p, -1), Y[sl].reshape(nl, p, -1),
                                    axes=([0, 2], [0, 2])))
        return out

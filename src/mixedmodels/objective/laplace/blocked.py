r"""The Laplace Hessian of crossed and nested designs, blocked as lme4 blocks ``L``.

The random effects split into block 1 -- every term of the grouping factor with the most
levels (one ``P1 x P1`` block per level: an observation touches one level) -- and the rest
(dense, ``q_r`` columns):

.. math::

    H = \begin{bmatrix} H_{11} & H_{12} \\ H_{21} & H_{22} \end{bmatrix}, \qquad
    S = H_{22} - H_{21} H_{11}^{-1} H_{12}, \qquad
    \log\det H = \log\det H_{11} + \log\det S,

with ``H11`` block diagonal (factored level by level), ``H12`` sparse (the pairs of levels
observations share) and ``S`` dense. With ``C = H11^{-1} H12`` and ``T = C S^{-1}``,

.. math::

    H^{-1} = \begin{bmatrix} H_{11}^{-1} + T C' & -T \\ -T' & S^{-1} \end{bmatrix},

so the inverse on an observation's slots -- what the gradient of ``log det H`` needs -- is a
gather from ``S^{-1}`` and ``T`` plus, for its block-1 level, ``H11^{-1} + T C'`` on that
level's rows; ``T`` is formed a chunk of levels at a time (:data:`CHUNK_ENTRIES`), so memory
stays bounded when block 1 has many levels. An observation-level random effect (one level
per row, the usual device for overdispersion) lands in block 1 and costs next to nothing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...linalg.lapack import (
    chol_inplace,
    inverse_crossprod_inplace,
    solve_lower,
    solve_lower_t,
    symmetric_from_lower,
)

__all__ = ["CHUNK_ENTRIES", "DENSE_FLOP_RATIO", "DENSE_H12_MAX", "PAIR_PRODUCTS_MAX",
           "SMALL_DENSE_FLOPS", "BlockedHessian", "first_block"]

#: Entries of ``T = C S^{-1}`` formed at a time (80 MB of doubles).
CHUNK_ENTRIES = 10_000_000
#: Largest number of products of pairs of ``H12``'s non-zeros (one row each) formed by the
#: precomputed gather of :class:`_ProductPlan` (24 MB of indices); beyond, ``H12' C`` is a
#: sparse matrix product.
PAIR_PRODUCTS_MAX = 1_000_000
#: ``H12`` is formed as a dense array (and ``H12' C`` by one matrix product) when it has
#: at most this many entries and the product's multiply-adds are at most
#: :data:`DENSE_FLOP_RATIO` times the pair products (a matrix product's multiply-add costs
#: a small fraction of a gathered one: crossed designs whose levels meet most levels of
#: the other factors).
DENSE_H12_MAX = 4_000_000
DENSE_FLOP_RATIO = 10
#: Up to this many multiply-adds of ``T = C S^{-1}`` as a dense product (``levels P1
#: q_r^2``: a fraction of a millisecond) the rows of ``C`` and ``H12`` that the selected
#: inverse and :meth:`BlockedHessian.solve_many` read are dense arrays: each scipy sparse
#: matrix (slice, transpose, product) costs 10-40 us to check its arguments, five of them
#: per gradient, a third of grouseticks' gradient (two crossed terms, 118 and 63 levels).
SMALL_DENSE_FLOPS = 2_000_000


def first_block(structure):
    """Terms of block 1: those whose grouping factor has the most levels (with the same
    codes), or None when there is no proper rest block."""
    if not structure.terms or structure.X_int is not None:
        return None
    lead = max(structure.terms, key=lambda ts: ts.term.nlevels)
    codes = lead.term.grouping.codes
    first = [ts for ts in structure.terms if ts.term.grouping.codes is codes
             or np.array_equal(ts.term.grouping.codes, codes)]
    if len(first) == len(structure.terms):
        return None
    return first


class _ProductPlan:
    r"""The products of ``H12``'s fixed sparsity pattern, as gathers and ``bincount``\ s.

    ``H12`` has rows ``(level, block-1 slot)`` and the rest's columns; every row of one level
    has the same columns (those of the level's observations), so ``C = H11^{-1} H12``
    (block-diagonal times sparse) has ``H12``'s pattern with

    .. math:: C_{(\ell a), j} = \sum_b (H_{11}^{-1})_{\ell, ab}\, H_{12, (\ell b), j},

    and ``H12' C`` sums the products of pairs of non-zeros in one row. The index arrays
    are formed once per design: each factorization is then a few gathers (scipy's sparse
    products spend most of their time checking and converting their arguments, at every one
    of the hundreds of factorizations of a fit).

    Parameters
    ----------
    rows, cols : ndarray of intp
        The non-zeros of ``H12``, sorted by row and then column.
    levels, P1, q_r : int
        Levels and slots of block 1, columns of the rest.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, levels: int, P1: int, q_r: int):
        n_rows = levels * P1
        self.rows, self.cols, self.shape, self.q_r = rows, cols, (n_rows, q_r), q_r
        counts = np.bincount(rows, minlength=n_rows)
        ptr = np.zeros(n_rows + 1, dtype=np.intp)
        np.cumsum(counts, out=ptr[1:])
        self.ptr = ptr
        level, a = rows // P1, rows % P1
        within = np.arange(rows.size) - ptr[rows]
        #: partner[e, b]: the non-zero in e's column of the row (e's level, slot b)
        self.partner = ptr[level[:, None] * P1 + np.arange(P1)[None, :]] + within[:, None]
        if not np.array_equal(cols[self.partner], np.broadcast_to(cols[:, None],
                                                                  self.partner.shape)):
            raise AssertionError("rows of one block-1 level with different patterns")
        self.h_row = level * P1 + a                       # row of H11^{-1} as (L P1, P1)
        k = counts[rows]                                  # non-zeros in each one's row
        n_pairs = int(np.sum(k, dtype=np.int64))
        self.e1 = self.e2 = self.keys = None
        #: form H12 densely when a matrix product costs less than the pair products
        self.dense = n_rows * q_r <= DENSE_H12_MAX and \
            n_rows * q_r * q_r <= DENSE_FLOP_RATIO * n_pairs
        if not self.dense and n_pairs <= PAIR_PRODUCTS_MAX:
            e1 = np.repeat(np.arange(rows.size), k)
            first = np.cumsum(k) - k                      # where each e1's run starts
            e2 = ptr[rows[e1]] + (np.arange(n_pairs) - first[e1])
            self.e1, self.e2 = e1, e2
            self.keys = cols[e1] * q_r + cols[e2]

    def csr(self, data: np.ndarray) -> sp.csr_matrix:
        """The matrix with this pattern and non-zeros ``data``."""
        return sp.csr_matrix((data, self.cols, self.ptr), shape=self.shape)

    def dense_matrix(self, data: np.ndarray) -> np.ndarray:
        """The matrix with this pattern and non-zeros ``data`` as a dense array."""
        M = np.zeros(self.shape)
        M[self.rows, self.cols] = data
        return M

    def c_data(self, H11inv: np.ndarray, data12: np.ndarray) -> np.ndarray:
        """Non-zeros of ``C = H11^{-1} H12`` (``H11inv``: (levels, P1, P1))."""
        L, P1, _ = H11inv.shape
        if P1 == 1:
            return H11inv.reshape(-1)[self.rows] * data12
        rows_inv = H11inv.reshape(L * P1, P1)[self.h_row]           # (nnz, P1)
        return np.einsum("eb,eb->e", rows_inv, data12[self.partner])

    def cross(self, data12: np.ndarray, c_data: np.ndarray) -> np.ndarray:
        """``H12' C`` as a dense (q_r, q_r) array."""
        q_r = self.q_r
        if self.dense:
            return self.dense_matrix(data12).T @ self.dense_matrix(c_data)
        if self.keys is None:
            return (self.csr(data12).T @ self.csr(c_data)).toarray()
        return np.bincount(self.keys, data12[self.e1] * c_data[self.e2],
                           minlength=q_r * q_r).reshape(q_r, q_r)

    def apply(self, data: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``M x`` for the matrix ``M`` with this pattern and non-zeros ``data``."""
        return np.bincount(self.rows, data * x[self.cols], minlength=self.shape[0])

    def t_apply(self, data: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``M' y`` for the matrix ``M`` with this pattern and non-zeros ``data``."""
        return np.bincount(self.cols, data * y[self.rows], minlength=self.q_r)


class BlockedHessian:
    """``H`` blocked into a block-diagonal first block and a dense rest (module docstring).

    Parameters
    ----------
    structure : RandomStructure
    first : list of RandomTermSlot
        The terms of block 1 (:func:`first_block`).
    """

    def __init__(self, structure, first):
        self.s = structure
        n, P = structure.J.shape
        s1 = np.concatenate([np.arange(ts.slots.start, ts.slots.stop) for ts in first])
        s_r = np.setdiff1d(np.arange(P), s1)
        self.s1, self.s_r = s1, s_r
        self.P1, self.Pr = s1.size, s_r.size
        self.levels = first[0].term.nlevels
        self.codes = first[0].term.grouping.codes
        # u index of each (level, block-1 slot); the rest's u indices, compacted
        idx1 = np.empty((self.levels, self.P1), dtype=np.intp)
        pos = 0
        for ts in first:
            t = ts.term
            idx1[:, pos:pos + t.p] = ts.u_offset + np.arange(t.nlevels)[:, None] * t.p \
                + np.arange(t.p)[None, :]
            pos += t.p
        self.idx1 = idx1
        in1 = np.zeros(structure.q, dtype=bool)
        in1[idx1.ravel()] = True
        self.rest_u = np.flatnonzero(~in1)                  # rest position -> u index
        self.q_r = self.rest_u.size
        to_rest = np.full(structure.q, -1, dtype=np.intp)
        to_rest[self.rest_u] = np.arange(self.q_r)
        J = structure.J
        self.Jr = to_rest[J[:, s_r]]                        # (n, Pr) rest positions
        P1, q_r = self.P1, self.q_r
        a1 = np.arange(P1)
        self._keys11 = (self.codes[:, None, None] * (P1 * P1) + a1[:, None] * P1
                        + a1[None, :]).ravel()
        self._keys22 = (self.Jr[:, :, None] * q_r + self.Jr[:, None, :]).ravel()
        # H12: rows (level, block-1 slot), cols rest positions; fixed pattern
        rows = (self.codes[:, None] * P1 + a1[None, :])[:, :, None] + 0 * self.Jr[:, None, :]
        cols = self.Jr[:, None, :] + 0 * a1[None, :, None]
        keys = (rows.astype(np.int64) * q_r + cols).ravel()
        uniq, self._pos12 = np.unique(keys, return_inverse=True)
        self._nnz12 = uniq.size
        self._rows12 = (uniq // q_r).astype(np.intp)
        self._cols12 = (uniq % q_r).astype(np.intp)
        self._plan = _ProductPlan(self._rows12, self._cols12, self.levels, P1, q_r)
        self._diag_r = np.arange(q_r) * (q_r + 1)
        self._ix11 = np.ix_(np.arange(n), s1, s1)
        self.logdet = np.nan
        self._Sinv = None
        self._T = None
        self._C_csr = None
        self._order: tuple[np.ndarray, np.ndarray] | None = None
        #: C and H12 as dense arrays (:data:`SMALL_DENSE_FLOPS`), formed when first needed
        self._small = self.levels * P1 * q_r * q_r <= SMALL_DENSE_FLOPS
        self._dense_pair: tuple[np.ndarray, np.ndarray] | None = None

    # -- factorization ---------------------------------------------------------------------
    def factor(self, slot_products: np.ndarray) -> bool:
        """Assemble and factor the blocks; False when ``H`` is not positive definite."""
        L1, P1, q_r = self.levels, self.P1, self.q_r
        sp_ = slot_products
        H11 = np.bincount(self._keys11, sp_[:, self.s1][:, :, self.s1].ravel(),
                          minlength=L1 * P1 * P1).reshape(L1, P1, P1)
        H11[:, np.arange(P1), np.arange(P1)] += 1.0
        H22 = np.bincount(self._keys22, sp_[:, self.s_r][:, :, self.s_r].ravel(),
                          minlength=q_r * q_r)
        H22[self._diag_r] += 1.0
        H22 = H22.reshape(q_r, q_r)
        data12 = np.bincount(self._pos12, sp_[:, self.s1][:, :, self.s_r].ravel(),
                             minlength=self._nnz12)
        self._Sinv = self._T = None
        try:
            C1 = np.linalg.cholesky(H11) if P1 > 1 else None
        except np.linalg.LinAlgError:
            return False
        if P1 == 1:
            d = H11[:, 0, 0]
            if not np.all(d > 0):
                return False
            H11inv = (1.0 / d)[:, None, None]
            logdet1 = float(np.sum(np.log(d)))
        else:
            H11inv = np.linalg.inv(H11)
            logdet1 = 2.0 * float(np.sum(np.log(np.diagonal(C1, axis1=1, axis2=2))))
        plan = self._plan
        C_data = plan.c_data(H11inv, data12)
        S = H22 - plan.cross(data12, C_data)
        S = np.ascontiguousarray(0.5 * (S + S.T))
        if not chol_inplace(S):
            return False
        self.logdet = logdet1 + 2.0 * float(np.sum(np.log(np.diagonal(S))))
        self._H11inv, self._data12, self._C_data, self._LS = H11inv, data12, C_data, S
        self._C_csr = None
        self._dense_pair = None
        return True

    @property
    def _C(self) -> sp.csr_matrix:
        """``C = H11^{-1} H12`` as a sparse matrix (for the selected inverse)."""
        if self._C_csr is None:
            self._C_csr = self._plan.csr(self._C_data)
        return self._C_csr

    def _dense_c_h12(self) -> tuple[np.ndarray, np.ndarray]:
        """``(C, H12)`` as dense (levels P1, q_r) arrays, for small blocks only
        (:data:`SMALL_DENSE_FLOPS`)."""
        if self._dense_pair is None:
            plan = self._plan
            self._dense_pair = (plan.dense_matrix(self._C_data),
                                plan.dense_matrix(self._data12))
        return self._dense_pair

    # -- solves --------------------------------------------------------------------------
    def _s_solve(self, b: np.ndarray) -> np.ndarray:
        return solve_lower_t(self._LS, solve_lower(self._LS, b))

    def solve(self, v: np.ndarray) -> np.ndarray:
        """``H^{-1} v`` by block elimination."""
        v1 = v[self.idx1]                                      # (L1, P1)
        y1 = np.matmul(self._H11inv, v1[:, :, None])[:, :, 0].ravel()
        v2 = v[self.rest_u]
        plan = self._plan
        x2 = self._s_solve(v2 - plan.t_apply(self._data12, y1))
        x1 = y1 - plan.apply(self._C_data, x2)
        out = np.empty_like(v)
        out[self.idx1.ravel()] = x1
        out[self.rest_u] = x2
        return out

    def solve_many(self, V: np.ndarray) -> np.ndarray:
        """``H^{-1} V`` for a (q, m) matrix: :meth:`solve` on all columns at once, with
        ``H12``'s pattern as a sparse matrix (one product per block instead of one
        ``bincount`` pass per column)."""
        m = V.shape[1]
        y1 = np.matmul(self._H11inv, V[self.idx1]).reshape(-1, m)     # (L1 P1, m)
        if self._small:
            C, H12 = self._dense_c_h12()
        else:
            C, H12 = self._C, self._plan.csr(self._data12)
        v2 = V[self.rest_u] - H12.T @ y1
        x2 = self._s_solve(v2)
        out = np.empty_like(V)
        out[self.idx1.ravel()] = y1 - C @ x2
        out[self.rest_u] = x2
        return out

    def _s_inverse(self) -> np.ndarray:
        if self._Sinv is None:
            Linv = solve_lower(self._LS, np.eye(self.q_r))
            self._Sinv = Linv.T @ Linv
        return self._Sinv

    def slot_inverse_lapack(self) -> np.ndarray:
        """:meth:`slot_inverse` with ``S^{-1}`` from LAPACK's inverse of a Cholesky factor
        (``dtrtri`` + ``dlauum``, ``2 q_r^3 / 3`` flops, against ``q_r^3`` for the
        triangular solve with the identity and ``2 q_r^3`` for its cross-product): the
        same entries to rounding."""
        self._lapack_s_inverse()
        return self.slot_inverse()

    def _lapack_s_inverse(self) -> None:
        """``S^{-1}`` by LAPACK (:meth:`slot_inverse_lapack`), unless already formed."""
        if self._Sinv is None:
            L = self._LS.copy()
            if inverse_crossprod_inplace(L):
                self._Sinv = symmetric_from_lower(L)

    def _level_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Observations sorted by block-1 level and where each level's run starts (fixed
        by the design: formed once)."""
        if self._order is None:
            order = np.argsort(self.codes, kind="stable")
            bounds = np.searchsorted(self.codes[order], np.arange(self.levels + 1))
            self._order = (order, bounds)
        return self._order

    def slot_inverse_apply(self, a: np.ndarray) -> np.ndarray:
        """``H^{-1}[J_i, J_i] a_i`` per observation, (n, P): the blocks of
        :meth:`slot_inverse_lapack` applied to the rows of ``a`` (n, P) without forming
        them. The gradient needs only this product; writing the (n, P, P) blocks through
        three-dimensional fancy indices was half of its cost (VerbAgg). With the blocks
        ``B11`` (block-1 slots, ``H11^{-1} + T C'`` of the level), ``B12 = -T`` (block-1
        rows, rest columns) and ``B22`` (``S^{-1}`` on the rest slots):
        ``[B a]_1 = B11 a_1 + B12 a_r`` and ``[B a]_r = B12' a_1 + B22 a_r``."""
        self._lapack_s_inverse()
        Sinv = self._s_inverse()
        n, P = self.s.J.shape
        P1, Jr = self.P1, self.Jr
        a1, ar = a[:, self.s1], a[:, self.s_r]
        out_r = np.einsum("nst,nt->ns", Sinv[Jr[:, :, None], Jr[:, None, :]], ar)
        out_1 = np.empty((n, P1))
        order, bounds = self._level_order()
        slots1 = np.arange(P1)[None, :, None]
        for lo, hi, T in self._chunks():
            obs = order[bounds[lo]:bounds[hi]]
            lev = self.codes[obs] - lo
            B11 = self._block1_inverse(lo, hi, T)[lev]                 # (m, P1, P1)
            B12 = T[lev[:, None, None], slots1, Jr[obs][:, None, :]]   # -B12: (m, P1, Pr)
            a1o, aro = a1[obs], ar[obs]
            out_1[obs] = np.einsum("mab,mb->ma", B11, a1o) \
                - np.einsum("mar,mr->ma", B12, aro)
            out_r[obs] -= np.einsum("mar,ma->mr", B12, a1o)
        out = np.empty((n, P))
        out[:, self.s1] = out_1
        out[:, self.s_r] = out_r
        return out

    def _t_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (block-1 positions) of ``T = C S^{-1}``."""
        if self._small:
            return self._dense_c_h12()[0][start:stop] @ self._s_inverse()
        return np.asarray(self._C[start:stop] @ self._s_inverse())

    def _chunks(self):
        per_level = self.P1 * self.q_r
        step = max(1, CHUNK_ENTRIES // max(per_level, 1))
        for lo in range(0, self.levels, step):
            hi = min(self.levels, lo + step)
            yield lo, hi, self._t_rows(lo * self.P1, hi * self.P1).reshape(
                hi - lo, self.P1, self.q_r)

    def _block1_inverse(self, lo: int, hi: int, T: np.ndarray) -> np.ndarray:
        """``(H^{-1})_{11}`` diagonal blocks of levels ``lo:hi``: ``H11^{-1} + T C'``."""
        rows = slice(lo * self.P1, hi * self.P1)
        C = self._dense_c_h12()[0][rows] if self._small else self._C[rows].toarray()
        C = C.reshape(hi - lo, self.P1, self.q_r)
        return self._H11inv[lo:hi] + np.matmul(T, C.transpose(0, 2, 1))

    def slot_inverse(self) -> np.ndarray:
        """``H^{-1}[J_i, J_i]`` per observation: (n, P, P)."""
        return self._gather_inverse(self.codes, self.Jr, self._level_order())

    def inverse_at(self, J: np.ndarray) -> np.ndarray:
        """``H^{-1}[J_s, J_t]`` per row of ``u`` indices ``J`` (N, P) laid out as the
        structure's slots (``structure.J``'s columns): the rows of new data, whose levels
        combine differently from the fitting rows' (prediction variances). A row's
        block-1 slots all index one level of the block-1 factor, as an observation's do.
        :meth:`slot_inverse` is this at ``structure.J``."""
        to_rest = np.full(self.s.q, -1, dtype=np.intp)
        to_rest[self.rest_u] = np.arange(self.q_r)
        level_of = np.zeros(self.s.q, dtype=np.intp)
        level_of[self.idx1.ravel()] = np.repeat(np.arange(self.levels), self.P1)
        codes = level_of[J[:, self.s1[0]]]
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(self.levels + 1))
        return self._gather_inverse(codes, to_rest[J[:, self.s_r]], (order, bounds))

    def _gather_inverse(self, codes: np.ndarray, Jr: np.ndarray,
                        level_order: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``H^{-1}`` on the slots of rows with block-1 levels ``codes`` (N,) and rest
        positions ``Jr`` (N, Pr), the rows sorted by level in ``level_order``."""
        n, P = codes.size, self.s.J.shape[1]
        out = np.empty((n, P, P))
        Sinv = self._s_inverse()
        out[:, self.s_r[:, None], self.s_r[None, :]] = Sinv[Jr[:, :, None], Jr[:, None, :]]
        order, bounds = level_order
        for lo, hi, T in self._chunks():
            obs = order[bounds[lo]:bounds[hi]]
            lev = codes[obs] - lo
            B11 = self._block1_inverse(lo, hi, T)[lev]                 # (m, P1, P1)
            out[obs[:, None, None], self.s1[None, :, None], self.s1[None, None, :]] = B11
            B12 = -T[lev[:, None, None], np.arange(self.P1)[None, :, None],
                     Jr[obs][:, None, :]]                                # (m, P1, Pr)
            out[obs[:, None, None], self.s1[None, :, None], self.s_r[None, None, :]] = B12
            out[obs[:, None, None], self.s_r[None, :, None], self.s1[None, None, :]] = \
                B12.transpose(0, 2, 1)
        return out

    def term_inverse(self, ts) -> np.ndarray:
        """Diagonal blocks of ``H^{-1}`` for one term: (levels, p, p)."""
        t = ts.term
        cols = np.arange(ts.slots.start, ts.slots.stop)
        if np.isin(cols, self.s1).all():
            pos = np.searchsorted(self.s1, cols)
            blocks = np.concatenate([self._block1_inverse(lo, hi, T)
                                     for lo, hi, T in self._chunks()])
            return blocks[:, pos[:, None], pos[None, :]]
        to_rest = np.full(self.s.q, -1, dtype=np.intp)
        to_rest[self.rest_u] = np.arange(self.q_r)
        idx = to_rest[ts.u_offset + np.arange(t.q).reshape(t.nlevels, t.p)]
        return self._s_inverse()[idx[:, :, None], idx[:, None, :]]

"""Index layout of the random-effects vector and the cross-product blocks.

The random-effects vector ``u`` (length q) is ordered term by term (lme4's order), and within
a term level by level, the term's p columns consecutive for each level. The first term gets
its own block (block-diagonal in ``Z'WZ``: one p1 x p1 block per level); all later terms form
the "rest" block.

:class:`CrossProducts` holds ``A = [Z X y]' W [Z X y]`` in that blocking. Index patterns are
computed once (:class:`CrossProductPattern`) so that the blocks can be recomputed for new
weights or a new working response in a few ``bincount`` / sparse products -- the PIRLS loop of
a GLMM does exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: :func:`unique_keys` marks keys in a dense table when the key range is at most this
#: many times the number of keys (plus :data:`UNIQUE_TABLE_SLACK`): one scatter and one
#: scan instead of ``np.unique``'s sort (~75 us -> ~15 us for 4,000 keys in 2,400).
UNIQUE_TABLE_RATIO = 8
#: Key ranges up to this size always use the table (its scan costs a few microseconds).
UNIQUE_TABLE_SLACK = 1 << 14
#: :func:`unique_keys` sorts key ranges up to this size by radix passes (two 16-bit halves).
RADIX_MAX_RANGE = 1 << 32
#: ... for at least this many keys (below, ``np.unique``'s sort is as fast and simpler).
RADIX_MIN_KEYS = 1 << 12


def unique_keys(keys: np.ndarray, key_range: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for non-negative integer keys below
    ``key_range``: the sorted distinct keys and every key's index among them.

    A small range is read from a dense table (mark the keys, number the marked slots in
    ascending order, look the numbers up): the same arrays as the sort, in linear time.
    A range of up to 2^32 keys is sorted by two stable radix passes over 16-bit halves
    (:func:`_radix_order`) instead of ``np.unique``'s comparison sort: the same arrays,
    ~2x faster (crossed_1m's 1M keys of ``A21`` in 40M: 0.13 s -> 0.06 s).
    """
    negative = keys.size and int(keys.min()) < 0
    if key_range <= UNIQUE_TABLE_RATIO * keys.size + UNIQUE_TABLE_SLACK and not negative:
        table = np.zeros(key_range, dtype=np.intp)
        table[keys] = 1
        uniq = np.flatnonzero(table).astype(keys.dtype, copy=False)
        table[uniq] = np.arange(uniq.size)
        return uniq, table[keys]
    if key_range > RADIX_MAX_RANGE or negative or keys.size < RADIX_MIN_KEYS:
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq, inverse.reshape(-1)
    order = _radix_order(keys)
    ordered = keys[order]
    first = np.empty(ordered.size, dtype=bool)       # a new key starts here
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(ordered.size, dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _radix_order(keys: np.ndarray) -> np.ndarray:
    """A stable sorting permutation of non-negative keys below 2^32: least significant
    16 bits first, then the most significant (numpy's stable sort of 16-bit integers is a
    radix sort, linear in the number of keys)."""
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")
    return low[high]


__all__ = [
    "BlockLayout",
    "CrossProductPattern",
    "CrossProducts",
    "PatternValues",
    "TermBlock",
    "add_cross_products",
    "lambda_layout",
    "level_blocks",
    "theta_slices",
]


@dataclass(frozen=True)
class TermBlock:
    """Numeric view of one random-effects term: codes (n,), Z (n, p), number of levels."""

    codes: np.ndarray
    Z: np.ndarray
    nlevels: int

    @property
    def p(self) -> int:
        return self.Z.shape[1]

    @property
    def q(self) -> int:
        return self.nlevels * self.p


class PatternValues:
    """A sparse matrix as the arrays of its CSR form only (``data``, ``indices``,
    ``indptr``, ``shape``), without scipy's object: for callers that read the values on a
    pattern they know (:meth:`CrossProductPattern.compute` with ``csr_a21=False``)."""

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape


@dataclass
class CrossProducts:
    """The blocks of ``A = [Z X y]' W [Z X y]``.

    Attributes
    ----------
    A11 : ndarray (l1, p1, p1)
        Diagonal blocks of ``Z1' W Z1`` (the first term is block-diagonal).
    A21 : scipy.sparse.csr_matrix (q_r, q1) or None
        ``Zr' W Z1``; None when the model has one term.
    A22 : ndarray (q_r, q_r), scipy.sparse.csr_matrix, or None
        ``Zr' W Zr``: dense, or sparse when the pattern was built with
        ``dense_rest=False`` (the sparse fallback for very large rest blocks).
    A1X : ndarray (l1, p1, m)
        ``Z1' W [X y]`` per level.
    ArX : ndarray (q_r, m) or None
        ``Zr' W [X y]``.
    AXX : ndarray (m, m)
        ``[X y]' W [X y]``.
    """

    A11: np.ndarray
    A21: sp.csr_matrix | None
    A22: np.ndarray | sp.csr_matrix | None
    A1X: np.ndarray
    ArX: np.ndarray | None
    AXX: np.ndarray


def add_cross_products(a: CrossProducts, b: CrossProducts) -> CrossProducts:
    """Sum of the cross-products of two disjoint sets of rows (same blocks and sizes).

    ``[Z X y]' W [Z X y]`` is a sum over rows, so the blocks of a data set split into
    chunks are the sums of the chunks' blocks: this is the reduction step of a chunked or
    distributed data backend. Sparse blocks come back in canonical CSR form (sorted
    indices, no duplicates), the form :class:`CrossProductPattern` produces.
    """
    def plus(x, y):
        if x is None:
            return None
        if sp.issparse(x):
            out = (x + y).tocsr()
            out.sum_duplicates()
            out.sort_indices()
            return out
        return x + y

    return CrossProducts(*(plus(getattr(a, f), getattr(b, f))
                           for f in ("A11", "A21", "A22", "A1X", "ArX", "AXX")))


def level_blocks(A: CrossProducts, layout: BlockLayout, block: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The per-level diagonal blocks of one random-effects block of ``A``.

    Block ``b`` with ``l`` levels and ``p`` columns per level (lme4's layout: a level's
    columns consecutive) contributes, for every level, ``Z_l' W Z_l`` (its diagonal
    ``p x p`` block of ``Z' W Z``) and ``Z_l' W [X y]`` (its ``p`` rows of ``Z' W [X y]``).
    The first block stores exactly these (``A11``, ``A1X``); a rest block's are read off
    the diagonal of ``A22`` (dense or sparse) and the rows of ``ArX``.

    Parameters
    ----------
    A : CrossProducts
    layout : BlockLayout
        The layout ``A`` was formed in.
    block : int
        Index into ``layout.blocks``.

    Returns
    -------
    ZZ : ndarray (l, p, p)
    ZX : ndarray (l, p, m)
    """
    if block == 0:
        return A.A11, A.A1X
    b = layout.blocks[block]
    off = int(sum(layout.rest_q[:block - 1]))
    idx = off + np.arange(b.nlevels)[:, None] * b.p + np.arange(b.p)[None, :]   # (l, p)
    rows = np.repeat(idx, b.p, axis=1).ravel()
    cols = np.tile(idx, (1, b.p)).ravel()
    # sparse A22 (very large rest blocks): elementwise lookup of the same positions
    ZZ = np.asarray(A.A22[rows, cols]).reshape(b.nlevels, b.p, b.p)
    return ZZ, A.ArX[idx]


class BlockLayout:
    """Sizes of the random-effects blocks: what a factorization needs to know of the terms.

    The first term is block 1 (block-diagonal in ``Z'WZ``), the others form the rest
    block. Built from the terms' sizes alone (``TermBlock`` with any number of rows,
    zero included), so a system can be set up from cross-products summed over chunks of
    rows that never sit in memory together.

    Parameters
    ----------
    blocks : sequence of TermBlock
        Terms in model order.
    dense_rest : bool
        ``A22`` is dense (default) or sparse.
    """

    def __init__(self, blocks, dense_rest: bool = True):
        self.blocks = tuple(blocks)
        self.dense_rest = bool(dense_rest)
        b1 = self.blocks[0]
        self.p1, self.l1 = b1.p, b1.nlevels
        self.q1 = b1.q
        rest = self.blocks[1:]
        self.has_rest = bool(rest)
        self.rest_q = [b.q for b in rest]
        self.q_r = int(sum(self.rest_q))


#: Uses of the first block's ``Z1' W [X y]`` answered by ``bincount`` before its incidence
#: matrix ``S1`` is built: building it (scipy's COO -> CSR, ~50-90 us) costs more than a
#: few bincount passes, and the dense PIRLS of a small model asks only twice a fit (the
#: solutions' factor_at); a model refactored at every PIRLS step gets the (per product
#: cheaper) sparse product from the third use on.
S1_BINCOUNT_USES = 2


class CrossProductPattern(BlockLayout):
    """Precomputed indices that turn (weights, [X y]) into :class:`CrossProducts`.

    Parameters
    ----------
    blocks : sequence of TermBlock
        Terms in model order (the first one becomes the block-diagonal block).
    dense_rest : bool
        Store ``A22`` as a dense array (default) or as a sparse matrix.
    """

    def __init__(self, blocks, dense_rest: bool = True):
        super().__init__(blocks, dense_rest)
        b1 = self.blocks[0]
        self.n = b1.codes.shape[0]
        p1 = self.p1
        # the first block's index arrays (n p1^2 and n p1 entries) and its incidence
        # matrix are made on first use: a first term of one level (a known matrix or a
        # spatial process over all levels) never needs them (:meth:`_one_level_products`)
        self._idx11_cache: np.ndarray | None = None
        self._S1_cache: sp.csr_matrix | None = None
        self._s1_uses = 0
        self._perms: dict[str, np.ndarray] = {}
        rest = self.blocks[1:]
        if not rest:
            return
        # columns/values of every observation in the rest block: (n, pr_tot)
        cols, vals, off = [], [], 0
        for b in rest:
            cols.append(off + b.codes[:, None] * b.p + np.arange(b.p)[None])
            vals.append(b.Z)
            off += b.q
        self._rcols = np.hstack(cols)
        self._rvals = np.hstack(vals)
        pr = self._rcols.shape[1]
        # A22: flat index c_i * q_r + c_j over all (i, j) column pairs of a row; dense, or
        # compressed to the pairs that occur
        keys22 = (self._rcols[:, :, None].astype(np.int64) * self.q_r
                  + self._rcols[:, None, :]).ravel()
        if self.dense_rest:
            self._idx22 = keys22
        else:
            uniq22, self._idx22 = unique_keys(keys22, self.q_r * self.q_r)
            self._nnz22 = uniq22.size
            self._indices22 = (uniq22 % self.q_r).astype(np.int32)
            self._indptr22 = np.concatenate(
                [[0], np.cumsum(np.bincount(uniq22 // self.q_r, minlength=self.q_r))]
            ).astype(np.int64)
        # A21 sparse: keys (rest column, term-1 column) -> unique positions
        c1 = b1.codes[:, None] * p1 + np.arange(p1)[None]
        keys = (self._rcols[:, :, None].astype(np.int64) * self.q1 + c1[:, None, :]).ravel()
        uniq, self._pos21 = unique_keys(keys, self.q_r * self.q1)
        self._nnz21 = uniq.size
        rows21 = uniq // self.q1
        self._indices21 = (uniq % self.q1).astype(np.int32)
        self._indptr21 = np.concatenate(
            [[0], np.cumsum(np.bincount(rows21, minlength=self.q_r))]
        ).astype(np.int32)
        self._pr = pr
        self._Sr = sp.csr_matrix(
            (self._rvals.ravel(), (self._rcols.ravel(), np.repeat(np.arange(self.n), pr))),
            shape=(self.q_r, self.n),
        )

    @property
    def _idx11(self) -> np.ndarray:
        """A11's flat index ``codes p1^2 + a p1 + b`` of every observation's products."""
        if self._idx11_cache is None:
            p1 = self.p1
            self._idx11_cache = (self.blocks[0].codes[:, None, None] * (p1 * p1)
                                 + np.arange(p1 * p1).reshape(p1, p1)[None]).ravel()
        return self._idx11_cache

    @property
    def _rows1(self) -> np.ndarray:
        """Row of ``S1`` of every observation's first-block columns."""
        return (self.blocks[0].codes[:, None] * self.p1 + np.arange(self.p1)[None]).ravel()

    @property
    def _S1(self) -> sp.csr_matrix:
        """``S1``: the q1 x n incidence with Z1's values, for ``Z1' W [X y]``."""
        if self._S1_cache is None:
            b1 = self.blocks[0]
            self._S1_cache = sp.csr_matrix(
                (b1.Z.ravel(), (self._rows1, np.repeat(np.arange(self.n), self.p1))),
                shape=(self.q1, self.n))
        return self._S1_cache

    def _first_cross(self, Z1: np.ndarray, wXY: np.ndarray, own: bool) -> np.ndarray:
        r"""``A1X = Z1' W [X y]`` by level, (l1, p1, m): one ``bincount`` per column
        over the rows of ``S1`` for the first :data:`S1_BINCOUNT_USES` uses, then the
        sparse product with ``S1`` (``own``: the terms' ``Z1``; else ``S1``'s pattern with
        ``Z1``'s values). Both add each level's terms in observation order from zero, so
        they give the same sums to the bit."""
        m = wXY.shape[1]
        if self._S1_cache is None and self._s1_uses < S1_BINCOUNT_USES:
            self._s1_uses += 1
            rows, size = self._rows1, self.l1 * self.p1
            if self.p1 == 1:
                vals = Z1[:, 0, None] * wXY
            else:
                vals = (Z1[:, :, None] * wXY[:, None, :]).reshape(rows.size, m)
            out = np.empty((size, m))
            for j in range(m):
                out[:, j] = np.bincount(rows, vals[:, j], minlength=size)
            return out.reshape(self.l1, self.p1, m)
        S1 = self._S1 if own else self._values_like("S1", Z1)
        return np.asarray(S1 @ wXY).reshape(self.l1, self.p1, m)

    @staticmethod
    def _one_level_products(Z1: np.ndarray, wz1: np.ndarray, wXY: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
        r"""``(A11, A1X)`` of a first block with one level: ``Z1' W Z1`` and
        ``Z1' W [X y]`` are plain matrix products (one block), where the per-observation
        outer products (``n p1^2`` values) and their ``bincount`` cost ~0.5 ms on a
        known 30 x 30 matrix over 150 rows. Same sums in BLAS's order (rounding)."""
        return (wz1.T @ Z1)[None], (Z1.T @ wXY)[None]

    def _values_like(self, which: str, values: np.ndarray) -> sp.csr_matrix:
        """The incidence matrix ``which`` (``"S1"`` or ``"Sr"``: rows = random effects, one
        entry per observation and column of the terms) with another ``Z``'s values.

        Where each value lands in the CSR data is found once, on first use, by building
        the matrix again with entry numbers as data (plain fits never pay for it)."""
        S = self._S1 if which == "S1" else self._Sr
        perm = self._perms.get(which)
        if perm is None:
            rows = self._rows1 if which == "S1" else self._rcols.ravel()
            k = values.shape[1]
            numbered = sp.csr_matrix(
                (np.arange(1, rows.size + 1, dtype=float),
                 (rows, np.repeat(np.arange(self.n), k))), shape=S.shape)
            perm = numbered.data.astype(np.int64) - 1
            self._perms[which] = perm
        return sp.csr_matrix((values.ravel()[perm], S.indices, S.indptr), shape=S.shape)

    def compute(self, XY: np.ndarray, w: np.ndarray | None, Z=None, *,
                csr_a21: bool = True) -> CrossProducts:
        """Cross-products for prior/working weights ``w`` (None = all ones) and ``[X y]``.

        ``Z``, when given, replaces the terms' values (one (n, p_k) array per term with the
        same level codes: the whitened design of a model with correlated residuals).
        ``csr_a21=False`` gives ``A21`` as :class:`PatternValues` (its values on the fixed
        CSR pattern) for a caller that reads only those: PIRLS refactors at every step,
        and building a scipy matrix cost ~50 us a step on a small crossed model."""
        b1 = self.blocks[0]
        p1 = self.p1
        Z1 = b1.Z if Z is None else Z[0]
        wz1 = Z1 if w is None else Z1 * w[:, None]
        wXY = XY if w is None else XY * w[:, None]
        if self.l1 == 1:
            A11, A1X = self._one_level_products(Z1, wz1, wXY)
        else:
            v11 = (wz1[:, :, None] * Z1[:, None, :]).ravel()
            A11 = np.bincount(self._idx11, v11, minlength=self.l1 * p1 * p1).reshape(
                self.l1, p1, p1)
            A1X = self._first_cross(Z1, wXY, Z is None)
        AXX = XY.T @ wXY
        if not self.has_rest:
            return CrossProducts(A11, None, None, A1X, None, AXX)
        rvals = self._rvals if Z is None else np.hstack(Z[1:])
        Sr = self._Sr if Z is None else self._values_like("Sr", rvals)
        wr = rvals if w is None else rvals * w[:, None]
        v22 = (wr[:, :, None] * rvals[:, None, :]).ravel()
        if self.dense_rest:
            A22 = np.bincount(self._idx22, v22, minlength=self.q_r * self.q_r).reshape(
                self.q_r, self.q_r)
        else:
            A22 = sp.csr_matrix((np.bincount(self._idx22, v22, minlength=self._nnz22),
                                 self._indices22, self._indptr22), shape=(self.q_r, self.q_r))
        v21 = (wr[:, :, None] * Z1[:, None, :]).ravel()
        data21 = np.bincount(self._pos21, v21, minlength=self._nnz21)
        if csr_a21:
            A21 = sp.csr_matrix((data21, self._indices21, self._indptr21),
                                shape=(self.q_r, self.q1))
        else:
            A21 = PatternValues(data21, self._indices21, self._indptr21,
                                (self.q_r, self.q1))
        ArX = np.asarray(Sr @ wXY)
        return CrossProducts(A11, A21, A22, A1X, ArX, AXX)


def theta_slices(structures) -> list[slice]:
    """Slices of theta belonging to each covariance structure, in order."""
    out, start = [], 0
    for s in structures:
        out.append(slice(start, start + s.n_theta))
        start += s.n_theta
    return out


def lambda_layout(blocks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the entries of the block-diagonal ``Lambda`` go.

    Returns ``(rows, cols, src)``: entry ``i`` of ``Lambda`` (q x q) sits at
    ``(rows[i], cols[i])`` and equals element ``src[i]`` of the concatenation of the terms'
    ``Lambda_k.ravel()`` (every p_k x p_k block is laid out in full, zeros included).
    """
    rows, cols, src, off, lam_off = [], [], [], 0, 0
    for b in blocks:
        p = b.p
        a, c = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
        base = off + np.arange(b.nlevels)[:, None] * p
        rows.append((base + a.ravel()[None, :]).ravel())
        cols.append((base + c.ravel()[None, :]).ravel())
        src.append(np.tile(lam_off + a.ravel() * p + c.ravel(), b.nlevels))
        off += b.q
        lam_off += p * p
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(src)

r"""Blocked Cholesky factor of the penalized least-squares system of a mixed model.

For relative covariance factor ``Lambda(theta)`` (block diagonal, one block per level of each
term) and weights ``W`` the lower-triangular ``L`` with

.. math::

    L L' = \begin{bmatrix} \Lambda' Z' W Z \Lambda + I & \Lambda' Z' W [X\,y] \\
                           [X\,y]' W Z \Lambda & [X\,y]' W [X\,y] \end{bmatrix}

is computed block by block, with the random effects split into the first term (block 1) and
the rest (block r)::

    L11 = chol(Lambda1' A11 Lambda1 + I)                 (one p1 x p1 factor per level)
    L21 = Lambdar' A21 Lambda1 L11^{-T}                  (sparse, pattern of A21)
    L22 = chol(Lambdar' A22 Lambdar + I - L21 L21')       (dense)
    L1X = L11^{-1} Lambda1' A1X
    LrX = L22^{-1} (Lambdar' ArX - L21 L1X)
    LXX = chol(AXX - L1X' L1X - LrX' LrX)                 ((p+1) x (p+1))

``log det(L_Z)^2 = 2 sum log diag(L11) + 2 sum log diag(L22)``; the last diagonal element of
``LXX`` is the square root of the penalized weighted residual sum of squares, and the leading
p x p block of ``LXX`` is ``R_X'`` (used for REML and ``vcov``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .blockdiag import BlockDiagonal
from .lapack import chol_inplace, scaled_lower_copy, solve_lower, solve_lower_t
from .layout import CrossProductPattern, CrossProducts, theta_slices
from .product import PRODUCT_PATTERN_MAX_NNZ, BlockProductPattern, ProductPattern

__all__ = ["BlockedFactor", "BlockedSystem", "first_block_factor"]


def first_block_factor(lam1: np.ndarray, A11: np.ndarray, A1X: np.ndarray):
    r"""Block 1 of the factor, level by level:
    ``L11 = chol(Lambda1' A11 Lambda1 + I)``, ``m1 = Lambda1 L11^{-T}``,
    ``L1X = L11^{-1} Lambda1' A1X`` and ``2 log det L11``.

    Shared by :class:`BlockedSystem` (for theta) and the PIRLS system (for new weights).

    Parameters
    ----------
    lam1 : ndarray (p1, p1)
    A11 : ndarray (l1, p1, p1)
    A1X : ndarray (l1, p1, m)

    Returns
    -------
    L11, m1, L1X, logdet
        ``L11`` (l1, p1, p1) -- for p1 = 1 the diagonal as (l1, 1, 1) --, ``m1`` ((l1,)
        for p1 = 1, else (l1, p1, p1)), ``L1X`` (l1, p1, m), ``logdet`` float.

    Raises
    ------
    numpy.linalg.LinAlgError
        When a level's block is not positive definite.
    """
    p1 = lam1.shape[0]
    if p1 == 1:
        lv = lam1[0, 0]
        d = np.sqrt(lv * lv * A11[:, 0, 0] + 1.0)
        m1 = lv / d                                   # Lambda1 L11^{-T}, diagonal
        return d.reshape(-1, 1, 1), m1, A1X * m1[:, None, None], \
            2.0 * float(np.sum(np.log(d)))
    B = np.matmul(np.matmul(lam1.T, A11), lam1)
    B[:, np.arange(p1), np.arange(p1)] += 1.0
    L11 = np.linalg.cholesky(B)
    L11inv = np.linalg.inv(L11)
    m1 = np.matmul(lam1, L11inv.transpose(0, 2, 1))
    L1X = np.matmul(L11inv, np.matmul(lam1.T, A1X))
    logdet = 2.0 * float(np.sum(np.log(np.diagonal(L11, axis1=1, axis2=2))))
    return L11, m1, L1X, logdet


@dataclass
class BlockedFactor:
    """Blocks of ``L`` for one theta (see the module docstring).

    ``L11`` is (l1, p1, p1); ``L22`` keeps ``L`` in its lower triangle (the strict upper
    triangle is scratch); ``LXX`` likewise.
    """

    L11: np.ndarray
    L21: sp.csr_matrix | None
    L22: np.ndarray | None
    L1X: np.ndarray
    LrX: np.ndarray | None
    LXX: np.ndarray
    logdet_Z: float
    lam1: np.ndarray
    lam_r: object
    m1: np.ndarray | None = None
    #: ``lambda_k`` of the rest terms (p_k x p_k each), in order
    lam_rest: list | None = None

    @property
    def m(self) -> int:
        return self.LXX.shape[0]

    def logdet_X(self, p: int) -> float:
        """``log det(R_X)^2`` over the first ``p`` columns of ``[X y]``."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.LXX)[:p])))

    def pwrss(self) -> float:
        return float(self.LXX[-1, -1] ** 2)


class BlockedSystem:
    """Evaluates :class:`BlockedFactor` for any theta, cross-products fixed.

    Parameters
    ----------
    pattern : CrossProductPattern
    structures : sequence of CovarianceStructure
        One per term, same order as the pattern's blocks.
    new_weights : bool
        The cross-products will be replaced with other weights (PIRLS's system: a GLMM
        fit factors its solutions' weights at least twice). The product pattern of
        ``A21`` then keeps what its refresh needs from the first build (8 bytes a pair)
        instead of being built a second time, with those positions, on the second set of
        weights (pois625_crossed: ~3% of the fit). Same values either way.
    """

    def __init__(self, pattern: CrossProductPattern, structures, new_weights: bool = False):
        self.pattern = pattern
        self.new_weights = new_weights
        self.structures = tuple(structures)
        self.slices = theta_slices(self.structures)
        self.p1 = pattern.p1
        self.l1 = pattern.l1
        blocks = pattern.blocks
        self.rest_scalar = all(b.p == 1 for b in blocks[1:])
        self.A: CrossProducts | None = None
        self._product: ProductPattern | BlockProductPattern | None = None
        self.rest_diag: BlockDiagonal | None = None
        # lazily built indices of the scalar gradient (rest_term_of_row, rest_pair_classes)
        self._rest_terms: np.ndarray | None = None
        self._pair_classes: tuple | None = None
        self._a21_t: tuple | None = None          # (A21, its transpose view): a21_t
        self._jacobians: list | None = None       # constant d lambda / d theta: jacobians
        self._a22_pattern: np.ndarray | None = None   # _rest_pattern_values
        self._a22_inside: tuple | None = None         # (pattern, A22 inside it?)
        if pattern.has_rest:
            self._rest_levels = np.array([b.nlevels for b in blocks[1:]])
            self.rest_diag = BlockDiagonal([(b.nlevels, b.p) for b in blocks[1:]])
            if not self.rest_scalar:
                self._build_rest_lambda_pattern(blocks[1:])

    # -- Lambda of the rest block -------------------------------------------------------
    def _build_rest_lambda_pattern(self, rest) -> None:
        rows, cols, off = [], [], 0
        for b in rest:
            p = b.p
            base = off + np.arange(b.nlevels)[:, None, None] * p
            r = base + np.arange(p)[None, :, None] + 0 * np.arange(p)[None, None, :]
            c = base + 0 * np.arange(p)[None, :, None] + np.arange(p)[None, None, :]
            rows.append(r.ravel())
            cols.append(c.ravel())
            off += b.q
        rows = np.concatenate(rows)
        cols = np.concatenate(cols)
        q_r = self.pattern.q_r
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=q_r))])
        self._lrT_indices = cols.astype(np.int32)
        self._lrT_indptr = indptr.astype(np.int32)

    def rest_lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """``lambda_k`` of every rest term."""
        return [s.lambda_(theta[sl]) for s, sl in zip(self.structures[1:], self.slices[1:],
                                                      strict=True)]

    def rest_lambda(self, theta: np.ndarray | None, lams: list | None = None):
        """Lambda of the rest block: a vector (all terms scalar) or a CSR of ``Lambda_r'``."""
        if lams is None:
            lams = self.rest_lambdas(theta)
        if self.rest_scalar:
            return np.repeat(np.array([lam[0, 0] for lam in lams]), self._rest_levels)
        data = np.concatenate([np.tile(lam.T.ravel(), b.nlevels)
                               for lam, b in zip(lams, self.pattern.blocks[1:], strict=True)])
        q_r = self.pattern.q_r
        return sp.csr_matrix((data, self._lrT_indices, self._lrT_indptr), shape=(q_r, q_r))

    def set_cross_products(self, A: CrossProducts, once: bool = False) -> None:
        """Install the cross-products (recomputed by the caller when the weights change).

        The product pattern depends only on the sparsity of ``A21``, so it is built on the
        first call and kept when new weights arrive (PIRLS). ``once``: these
        cross-products will be factored at one theta only (a GLMM solution's
        :meth:`~mixedmodels.objective.pirls.PIRLS.factor_at`), where building the
        pattern costs more than the general sparse product ``L21 L21'`` it replaces
        (binom5k's 200 x 30 crossed levels: ~1.9 ms against ~0.65 ms for the whole
        factorization); a pattern already built is still used.
        """
        self.A = A
        if self.p1 == 2:
            self._a11_parts = (A.A11[:, 0, 0].copy(), A.A11[:, 0, 1].copy(),
                               A.A11[:, 1, 1].copy())
            self._a1x_parts = (A.A1X[:, 0, :].copy(), A.A1X[:, 1, :].copy())
        if A.A21 is not None:
            self._rows21 = np.repeat(np.arange(A.A21.shape[0]), np.diff(A.A21.indptr))
            self._cols21 = A.A21.indices
            self._diag22 = np.diag_indices(A.A22.shape[0])
            if self._product is None and not once and self._use_product_pattern(A):
                self._product = self._new_product(A.A21, keep_refresh=self.new_weights)
                self._buf22 = np.empty_like(A.A22)
            elif self._product is not None:
                # same pattern (CrossProductPattern fixes it), new values: from the second
                # set of weights on (PIRLS), keep what refresh() needs
                if self._product.can_refresh:
                    self._product.refresh(A.A21.data)
                else:
                    self._product = self._new_product(A.A21, keep_refresh=True)
            self._a22_pattern = self._rest_pattern_values(A)

    def _rest_pattern_values(self, A: CrossProducts) -> np.ndarray | None:
        """``A22`` at the product pattern's positions, where that is all of it.

        For scalar rest terms every non-zero of ``A22``'s lower triangle (two rest columns
        sharing an observation) is usually a position of the product pattern (the
        observation's level of the first term has both): then the dense block is
        ``D (A22 - A21 C A21') D + I`` at the pattern's positions and the identity
        elsewhere, and :meth:`factorize` writes those values into a zeroed block -- no
        copy of ``A22`` and no pass scaling the whole lower triangle. None where some
        non-zero lies elsewhere (or the path does not apply).

        The check (a pass over the whole block) runs once per pattern: new weights
        (PIRLS) keep the positions of the non-zeros, and only the values are gathered.
        """
        product = self._product
        if (product is None or not self.rest_scalar or self.p1 != 1
                or not isinstance(A.A22, np.ndarray)):
            return None
        values = A.A22.reshape(-1)[product.flat]
        if self._a22_inside is None or self._a22_inside[0] is not product:
            inside = np.count_nonzero(values) == np.count_nonzero(np.tril(A.A22))
            self._a22_inside = (product, inside)
        return values if self._a22_inside[1] else None

    def _new_product(self, A21: sp.csr_matrix, keep_refresh: bool):
        if self.p1 == 1:
            return ProductPattern(A21, keep_refresh=keep_refresh)
        return BlockProductPattern(A21, self.p1, keep_refresh=keep_refresh)

    # -- factorization --------------------------------------------------------------------
    def _use_product_pattern(self, A: CrossProducts) -> bool:
        # vector-valued terms too (BlockProductPattern): the general sparse product
        # L21 L21' and its dense conversion cost ~10x the pattern's mat-vec
        if A.A21 is None:
            return False
        n = (ProductPattern.n_pairs(A.A21) if self.p1 == 1
             else BlockProductPattern.n_pairs(A.A21, self.p1))
        return n <= PRODUCT_PATTERN_MAX_NNZ

    def _first_weights(self, m1: np.ndarray) -> np.ndarray:
        """``C_c = m1_c m1_c'`` per level (``Lambda1 M11^{-1} Lambda1'``)."""
        if self.p1 == 1:
            return m1 * m1
        return np.matmul(m1, m1.transpose(0, 2, 1))

    def _m1_times(self, m1: np.ndarray, L1X: np.ndarray) -> np.ndarray:
        """``m1_c L1X_c`` per level, flattened to (q1, m): ``Lambda1 L11^{-T} L1X``."""
        m = L1X.shape[-1]
        if self.p1 == 1:
            return m1[:, None] * L1X.reshape(-1, m)
        return np.matmul(m1, L1X).reshape(-1, m)

    def _term1(self, theta: np.ndarray):
        """Block 1: ``L11``, ``m1 = Lambda1 L11^{-T}``, ``L1X`` and ``2 log det L11``."""
        lam1 = self.structures[0].lambda_(theta[self.slices[0]])
        if self.p1 == 2:
            return self._term1_2x2(lam1)
        return (lam1, *first_block_factor(lam1, self.A.A11, self.A.A1X))

    def _term1_2x2(self, lam1: np.ndarray):
        """Block 1 for two effects per level (``(x | g)``) in closed form.

        ``B = Lambda' A Lambda + I`` and its Cholesky factor are written out elementwise
        over the levels: numpy's batched routines spend more time dispatching than
        computing on 2 x 2 matrices, and this block is evaluated thousands of times in
        small fits and bootstraps.
        """
        A = self.A
        a00, a01, a11 = self._a11_parts
        l00, l10, l11 = lam1[0, 0], lam1[1, 0], lam1[1, 1]
        b00 = l00 * l00 * a00 + 2.0 * l00 * l10 * a01 + l10 * l10 * a11 + 1.0
        b01 = l11 * (l00 * a01 + l10 * a11)
        b11 = l11 * l11 * a11 + 1.0
        c00 = np.sqrt(b00)
        c10 = b01 / c00
        c11 = np.sqrt(b11 - c10 * c10)
        logdet = float(np.sum(np.log(b00)) + 2.0 * np.sum(np.log(c11)))
        L11 = np.empty((self.l1, 2, 2))
        L11[:, 0, 0], L11[:, 0, 1], L11[:, 1, 0], L11[:, 1, 1] = c00, 0.0, c10, c11
        x0, x1 = self._a1x_parts
        r0 = l00 * x0 + l10 * x1               # (Lambda' A1X) per level, rows 0 and 1
        r1 = l11 * x1
        y0 = r0 / c00[:, None]
        y1 = (r1 - c10[:, None] * y0) / c11[:, None]
        L1X = np.stack([y0, y1], axis=1)
        m1 = None
        if A.A21 is not None:
            inv = np.zeros((self.l1, 2, 2))
            inv[:, 0, 0] = 1.0 / c00
            inv[:, 1, 1] = 1.0 / c11
            inv[:, 1, 0] = -c10 / (c00 * c11)
            m1 = np.matmul(lam1, inv.transpose(0, 2, 1))
        return lam1, L11, m1, L1X, logdet

    def _L21(self, m1: np.ndarray, lam_r) -> sp.csr_matrix:
        """``Lambda_r' A21 Lambda_1 L11^{-T}`` as a sparse matrix."""
        A = self.A
        if self.rest_scalar and self.p1 == 1:
            data = A.A21.data * lam_r[self._rows21] * m1[self._cols21]
            return sp.csr_matrix((data, A.A21.indices, A.A21.indptr), shape=A.A21.shape)
        left = A.A21.multiply(lam_r[:, None]).tocsr() if self.rest_scalar else (lam_r @ A.A21)
        if self.p1 == 1:
            return left.multiply(m1[None, :]).tocsr()
        M1 = sp.bsr_matrix((m1, np.arange(self.l1), np.arange(self.l1 + 1)),
                           shape=(A.A21.shape[1], A.A21.shape[1]))
        return (left @ M1).tocsr()

    def factorize(self, theta: np.ndarray, scratch: bool = False) -> BlockedFactor | None:
        """Factor for ``theta``; None if a block is not numerically positive definite.

        ``scratch=True`` reuses an internal buffer for the dense block (for objective
        evaluations whose factor is discarded before the next call).
        """
        A = self.A
        try:
            lam1, L11, m1, L1X, logdet = self._term1(theta)
        except np.linalg.LinAlgError:
            return None
        m = A.AXX.shape[0]
        flat1X = L1X.reshape(-1, m)
        LXX = A.AXX - flat1X.T @ flat1X
        L21 = L22 = LrX = lam_r = lams = None
        if A.A21 is not None:
            lams = self.rest_lambdas(theta)
            # the CSR of a vector-valued Lambda_r only serves L21, which the product path
            # builds on demand (l21)
            if self.rest_scalar or self._product is None:
                lam_r = self.rest_lambda(theta, lams)
            if self._product is not None:
                # L22 = Lambda_r' (A22 - A21 C A21') Lambda_r + I, lower triangle only.
                # Lambda_r = D Lambda_v (D: the scalar terms' lambda, 1 on the vector
                # terms'; Lambda_v: the vector terms' blocks): D scales the lower triangle
                # in one pass, Lambda_v touches only the vector terms' rows and columns
                L22 = self._buf22 if scratch else np.empty_like(A.A22)
                if self._a22_pattern is not None:
                    # (A22 - A21 C A21') at the positions, scaled (d_a v) d_b as
                    # scaled_lower_copy scales: the same numbers as the general branch
                    product = self._product
                    vals = self._a22_pattern - product.values(self._first_weights(m1))
                    vals *= lam_r[product.rows]
                    vals *= lam_r[product.cols]
                    L22.fill(0.0)
                    L22.reshape(-1)[product.flat] = vals
                else:
                    np.copyto(L22, A.A22)
                    self._product.subtract_from(L22, self._first_weights(m1))
                    D = lam_r if self.rest_scalar else self.rest_diag.scalar_diagonal(lams)
                    scaled_lower_copy(L22, D, L22)
                BrX = A.ArX - A.A21 @ self._m1_times(m1, L1X)
                if self.rest_scalar:
                    BrX *= lam_r[:, None]
                else:
                    self.rest_diag.sandwich_lower(lams, L22, vector_only=True)
                    BrX = self.rest_diag.left(lams, BrX, transpose=True)
            else:
                L21 = self._L21(m1, lam_r)
                if self.rest_scalar:
                    L22 = A.A22 * np.outer(lam_r, lam_r)
                    BrX = A.ArX * lam_r[:, None]
                else:
                    L22 = np.ascontiguousarray(lam_r @ np.asarray(lam_r @ A.A22).T)
                    BrX = np.asarray(lam_r @ A.ArX)
                L22 -= (L21 @ L21.T).toarray()
                BrX -= L21 @ flat1X
            L22[self._diag22] += 1.0
            if not chol_inplace(L22):
                return None
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(L22))))
            LrX = solve_lower(L22, BrX)
            LXX -= LrX.T @ LrX
        LXX = np.ascontiguousarray(LXX)
        if not chol_inplace(LXX):
            return None
        return BlockedFactor(L11, L21, L22, L1X, LrX, LXX, logdet, lam1, lam_r, m1, lams)

    def constant_jacobians(self) -> list[np.ndarray | None]:
        """Per term, ``d lambda_k / d theta_k`` flattened to (n_theta_k, p_k^2) where it
        does not depend on theta (``lambda_k`` a selection of theta: ``direct_map``), else
        None; computed on first use (the gradient contracts with it every evaluation)."""
        if self._jacobians is None:
            self._jacobians = [
                None if s.direct_map() is None
                else np.array(s.lambda_jacobian(s.theta0()), dtype=float).reshape(s.n_theta, -1)
                for s in self.structures]
        return self._jacobians

    @property
    def a21_t(self) -> sp.csc_matrix:
        """``A21'`` as a CSC view of ``A21``'s arrays, kept while ``A21`` is (the
        gradient's ``A21' Lambda_r V`` every evaluation; scipy's ``.T`` rebuilds and
        validates the matrix object on each call)."""
        A21 = self.A.A21
        if self._a21_t is None or self._a21_t[0] is not A21:
            self._a21_t = (A21, A21.T)
        return self._a21_t[1]

    @property
    def rest_term_of_row(self) -> np.ndarray:
        """Index (0 for the second term) of the rest term that owns each rest column."""
        if self._rest_terms is None:
            rest = self.pattern.blocks[1:]
            self._rest_terms = np.repeat(np.arange(len(rest)), [b.q for b in rest])
        return self._rest_terms

    @property
    def rest_pair_classes(self) -> np.ndarray:
        """Class of every position ``(a, b)`` of the product pattern: ``2 (k_a T + k_b) +
        [a != b]`` with ``k`` the rest term of a column and ``T`` the number of rest terms
        (per-class sums of a quantity at the positions are then one ``bincount``).
        Built on first use; the pattern's positions never change (new weights keep them).
        """
        product = self._product
        if self._pair_classes is None or self._pair_classes[0] is not product:
            k = self.rest_term_of_row
            n_t = int(k[-1]) + 1
            cls = k[product.rows] * n_t + k[product.cols]
            cls *= 2
            cls += product.rows != product.cols
            self._pair_classes = (product, cls)
        return self._pair_classes[1]

    def l21(self, f: BlockedFactor) -> sp.csr_matrix:
        """``L21`` of a factor (built on demand when the fast path skipped it)."""
        if f.L21 is None:
            if f.lam_r is None:
                f.lam_r = self.rest_lambda(None, f.lam_rest)
            f.L21 = self._L21(f.m1, f.lam_r)
        return f.L21

    # -- solutions at a factor ------------------------------------------------------------
    def solve_u(self, f: BlockedFactor, beta: np.ndarray) -> np.ndarray:
        """Spherical random effects ``u`` at fixed-effects ``beta`` (back-substitution)."""
        p = beta.shape[0]
        c1 = f.L1X[:, :, p] - f.L1X[:, :, :p] @ beta          # (l1, p1)
        parts = []
        if f.L22 is not None:
            cr = f.LrX[:, p] - f.LrX[:, :p] @ beta
            ur = solve_lower_t(f.L22, cr)
            c1 = c1 - (self.l21(f).T @ ur).reshape(c1.shape)
            parts.append(ur)
        if self.p1 == 1:
            u1 = c1[:, 0] / f.L11[:, 0, 0]
        else:
            u1 = np.linalg.solve(f.L11.transpose(0, 2, 1), c1[:, :, None])[:, :, 0]
        return np.concatenate([u1.ravel(), *parts])

    def cond_var_u(self, f: BlockedFactor, chunk: int = 2048) -> list[np.ndarray]:
        r"""Diagonal blocks of ``(L_Z L_Z')^{-1}`` per term: list of (l_k, p_k, p_k).

        Block 1 is ``L11^{-T} L11^{-1} + K' K`` with ``K = L22^{-1} L21 L11^{-1}``, computed
        a chunk of columns at a time to bound memory; the rest blocks come from
        ``L22^{-T} L22^{-1}``.
        """
        p1 = self.p1
        L11inv = 1.0 / f.L11 if p1 == 1 else np.linalg.inv(f.L11)
        out1 = np.matmul(L11inv.transpose(0, 2, 1), L11inv)
        outs = []
        if f.L22 is not None:
            q1 = self.l1 * p1
            step = max(p1, chunk - chunk % p1)   # whole levels per chunk
            for start in range(0, q1, step):
                stop = min(q1, start + step)
                dense = self.l21(f)[:, start:stop].toarray()
                K = solve_lower(f.L22, dense)              # L22^{-1} L21 (columns chunk)
                lv = slice(start // p1, stop // p1)
                K = K.reshape(K.shape[0], -1, p1)          # (q_r, levels, p1)
                K = np.matmul(K.transpose(1, 0, 2), L11inv[lv])   # (levels, q_r, p1)
                out1[lv] += np.matmul(K.transpose(0, 2, 1), K)
            Linv = solve_lower(f.L22, np.eye(f.L22.shape[0]))
            Minv = Linv.T @ Linv
            off = 0
            for b in self.pattern.blocks[1:]:
                idx = off + np.arange(b.q).reshape(b.nlevels, b.p)
                outs.append(Minv[idx[:, :, None], idx[:, None, :]])
                off += b.q
        return [out1, *outs]

r"""Factorizations of the Laplace engine's Hessian in the random effects.

.. math:: H = I_q + \sum_i A_i' W_i A_i, \qquad W_i = -\partial^2 \ell_i / \partial\eta\,
          \partial\eta' \ \ (\text{random-effects channels}),

assembled from the per-observation slot products of
:meth:`~.random_structure.RandomStructure.slot_products`. Two kernels share one interface
(``factor``, ``logdet``, ``solve``, ``slot_inverse``, ``term_inverse``):

* :class:`BlockDiagonalHessian` -- every term has the same grouping factor (one term; or
  ``(1 | site)`` in the conditional and the zero-inflation model): ``H`` is block diagonal,
  one P x P block per level, factored as one banded matrix (bandwidth P - 1) and inverted
  in batches;
* :class:`DenseHessian` -- crossed or nested terms: ``H`` as one dense q x q matrix (the
  models of glmmTMB's class seldom have more than a few thousand random effects).

``slot_inverse`` gives, per observation, ``H^{-1}`` restricted to the observation's slots --
the only part of the inverse that the gradient of ``log det H`` needs (see
:mod:`.objective`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ...linalg.lapack import chol_inplace, symmetric_from_upper

__all__ = ["DENSE_MAX_Q", "PAD_MAX_RATIO", "BlockDiagonalHessian", "DenseHessian", "factor_at",
           "make_hessian", "slot_quadratics", "slot_weighted_inverse"]

#: Up to this many random effects a crossed design is factored as one dense matrix.
DENSE_MAX_Q = 150
#: A block-diagonal ``H`` of one channel is assembled from the observations padded to a
#: (levels, most observations of a level) array when that has at most this many entries
#: per observation (:meth:`BlockDiagonalHessian.padded_rows`).
PAD_MAX_RATIO = 2.0


class DenseHessian:
    """``H`` as a dense matrix (crossed designs)."""

    def __init__(self, structure):
        self.s = structure
        q = structure.q
        self.q = q
        self._keys_cache: np.ndarray | None = None
        self._diag = np.flatnonzero(structure.penalty) * (q + 1)
        self.L: np.ndarray | None = None
        self._inv: np.ndarray | None = None
        self.logdet = np.nan

    @property
    def _keys(self) -> np.ndarray:
        """Flat (row, column) of every slot product in ``H`` (made on first use: the
        matrix-product assembly of :func:`factor_at` does without it)."""
        if self._keys_cache is None:
            J, q = self.s.J, self.q
            self._keys_cache = (J[:, :, None] * q + J[:, None, :]).ravel()
        return self._keys_cache

    def factor(self, slot_products: np.ndarray) -> bool:
        """Assemble and factor ``H``; False when it is not positive definite."""
        q = self.q
        H = np.bincount(self._keys, slot_products.ravel(), minlength=q * q)
        return self._factor_matrix(H.reshape(q, q))

    def _factor_matrix(self, H: np.ndarray) -> bool:
        """Add the prior's identity to the assembled ``A'WA`` (q x q) and factor it."""
        H.ravel()[self._diag] += 1.0
        self._inv = None
        if not chol_inplace(H):
            self.L = None
            return False
        self.L = H
        self.logdet = 2.0 * float(np.sum(np.log(np.diagonal(H))))
        return True

    def solve(self, v: np.ndarray) -> np.ndarray:
        """``H^{-1} v``."""
        x, info = lapack.dpotrs(self.L.T, v, lower=0)
        if info != 0:  # pragma: no cover - the factor exists
            raise np.linalg.LinAlgError("solve with the Laplace Hessian failed")
        return x

    def inverse(self) -> np.ndarray:
        """``H^{-1}`` (dense, cached until the next factorization)."""
        if self._inv is None:
            inv, info = lapack.dpotri(self.L.T, lower=0)
            if info != 0:  # pragma: no cover
                raise np.linalg.LinAlgError("inverting the Laplace Hessian failed")
            inv = symmetric_from_upper(inv)             # dpotri fills the upper triangle
            self._inv = inv
        return self._inv

    def slot_inverse(self) -> np.ndarray:
        """``H^{-1}[J_i, J_i]`` per observation: (n, P, P)."""
        J = self.s.J
        return self.inverse()[J[:, :, None], J[:, None, :]]

    def term_inverse(self, ts) -> np.ndarray:
        """Diagonal blocks of ``H^{-1}`` for one term: (levels, p, p)."""
        t = ts.term
        idx = ts.u_offset + np.arange(t.q).reshape(t.nlevels, t.p)
        return self.inverse()[idx[:, :, None], idx[:, None, :]]


class BlockDiagonalHessian:
    """``H`` block diagonal by the levels of the one grouping factor of all terms."""

    def __init__(self, structure):
        self.s = structure
        P = structure.P
        codes = structure.terms[0].term.grouping.codes
        self.levels = structure.terms[0].term.nlevels
        self.codes = codes
        self._keys_cache: np.ndarray | None = None
        # u index of every (level, slot)
        idx = np.empty((self.levels, P), dtype=np.intp)
        for ts in structure.terms:
            t = ts.term
            idx[:, ts.slots] = ts.u_offset + np.arange(t.nlevels)[:, None] * t.p \
                + np.arange(t.p)[None, :]
        self.index = idx
        self.P = P
        self.H: np.ndarray | None = None
        self._inv: np.ndarray | None = None
        self.logdet = np.nan
        #: several levels of vector blocks: H as one banded matrix (levels in order, the
        #: block's P slots consecutive: bandwidth P - 1) for LAPACK's banded Cholesky,
        #: whose factor every solve reuses in one call (dpbtrs) where numpy's batched
        #: solve refactors each block by LU (the factorization itself costs about what
        #: the batched Cholesky does; 40 levels of 6: solves 4-5x cheaper)
        self._band = _band_layout(self.levels, P) if P > 1 and self.levels > 1 else None
        self._cb: np.ndarray | None = None
        self._chol: np.ndarray | None = None
        #: each level's P x P identity stacked (levels P, P): the right-hand sides of
        #: :meth:`inverse_blocks`'s band solve (made on first use)
        self._eye_rows: np.ndarray | None = None
        #: flat positions of the blocks' diagonals (the prior's identity goes there)
        self._diag = (np.arange(self.levels)[:, None] * (P * P)
                      + np.arange(P)[None, :] * (P + 1)).ravel()
        #: u is in (level, slot) order already (one term): no gather or scatter in solve
        self._in_order = bool(np.array_equal(idx.ravel(), np.arange(idx.size)))
        self._pad, self._obs_pos = _padding(codes, self.levels) \
            if structure.n_channels == 1 and P > 1 and self.levels > 1 else (None, None)
        #: the last slot values padded (:meth:`_padded_slots`): the array and its padding
        self._pad_slots: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def padded(self) -> bool:
        """Whether the observations are padded by level (:meth:`padded_rows`)."""
        return self._pad is not None

    def padded_rows(self, v: np.ndarray) -> np.ndarray:
        """Rows of ``v`` (n, ...) by level: (levels, m, ...) with ``m`` the most
        observations of a level and zero rows as padding. With one channel, ``A'WA``
        per level is then one batched matrix product, ``(a_l' diag(w_l)) a_l``, where the
        per-observation outer products and their ``bincount`` into the blocks cost
        twice as much (and so do the gradient's gathers of ``H^{-1}`` per
        observation)."""
        ext = np.concatenate([v, np.zeros((1, *v.shape[1:]))])
        return ext[self._pad]

    def _padded_slots(self, a: np.ndarray) -> np.ndarray:
        """:meth:`padded_rows` of the slot values ``a``, remembered for the last array
        passed: one ``theta``'s slot values serve every factorization of its inner Newton
        iterations and the gradient's products with ``H^{-1}`` (2-4 paddings of the same
        array an evaluation). Keyed by the array object itself (held, so its identity is
        not reused); the slot values are never written after
        :meth:`~.random_structure.RandomStructure.slot_values` makes them."""
        hit = self._pad_slots
        if hit is not None and hit[0] is a:
            return hit[1]
        ap = self.padded_rows(a)
        self._pad_slots = (a, ap)
        return ap

    def padded_products(self, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``A_l' diag(w) A_l`` per level (levels, P, P) for one channel's weights ``w``."""
        ap = self._padded_slots(a)                                  # (levels, m, P)
        wp = self.padded_rows(w)                                    # (levels, m)
        return np.matmul(ap.transpose(0, 2, 1) * wp[:, None, :], ap)

    def padded_inverse_rows(self, a: np.ndarray) -> np.ndarray:
        """``a_i H^{-1}`` on each observation's slots (n, P), level by level."""
        aH = np.matmul(self._padded_slots(a), self.inverse_blocks())  # (levels, m, P)
        return aH.reshape(-1, self.P)[self._obs_pos]

    @property
    def _keys(self) -> np.ndarray:
        """Flat (level, slot, slot) of every slot product (made on first use)."""
        if self._keys_cache is None:
            P, slot = self.P, np.arange(self.P)
            self._keys_cache = (self.codes[:, None, None] * (P * P) + slot[:, None] * P
                                + slot[None, :]).ravel()
        return self._keys_cache

    def factor(self, slot_products: np.ndarray) -> bool:
        L, P = self.levels, self.P
        H = np.bincount(self._keys, slot_products.ravel(), minlength=L * P * P) \
            .reshape(L, P, P)
        return self._factor_blocks(H)

    def _factor_blocks(self, H: np.ndarray) -> bool:
        """Add the prior's identity to the assembled ``A'WA`` blocks and factor them."""
        P = self.P
        H.reshape(-1)[self._diag] += 1.0
        self._inv = None
        self._cb = None
        self._chol = None
        if P == 1:
            d = H[:, 0, 0]
            if not (d > 0).all():
                self.H = None
                return False
            self.logdet = float(np.log(d).sum())
        elif self._band is not None:
            pos, flat, shape = self._band
            ab = np.zeros(shape[0] * shape[1])
            ab[pos] = H.reshape(-1)[flat]
            cb, info = lapack.dpbtrf(ab.reshape(shape), lower=0, overwrite_ab=1)
            if info != 0:
                self.H = None
                return False
            # the factor's diagonal is the band's last row
            self.logdet = 2.0 * float(np.log(cb[-1]).sum())
            self._cb = cb
        else:
            try:
                C = np.linalg.cholesky(H)
            except np.linalg.LinAlgError:
                self.H = None
                return False
            self.logdet = 2.0 * float(np.log(np.diagonal(C, axis1=1, axis2=2)).sum())
            # one block (a known matrix or a spatial process over all levels): solves
            # reuse its factor (LAPACK's dpotrs) instead of a fresh LU each
            self._chol = C[0] if self.levels == 1 else None
        self.H = H
        return True

    def solve(self, v: np.ndarray) -> np.ndarray:
        if self._cb is not None and self._in_order:
            x, info = lapack.dpbtrs(self._cb, v, lower=0)
            if info != 0:  # pragma: no cover - the factor exists
                raise np.linalg.LinAlgError("solve with the Laplace Hessian failed")
            return x
        vb = v[self.index]
        if self._chol is not None:
            x0, info = lapack.dpotrs(self._chol, vb[0], lower=1)
            if info != 0:  # pragma: no cover - the factor exists
                raise np.linalg.LinAlgError("solve with the Laplace Hessian failed")
            xb = x0[None]
        elif self.P == 1:
            xb = vb / self.H[:, :, 0]
        elif self._cb is not None:
            xb, info = lapack.dpbtrs(self._cb, vb.ravel(), lower=0)
            if info != 0:  # pragma: no cover - the factor exists
                raise np.linalg.LinAlgError("solve with the Laplace Hessian failed")
            xb = xb.reshape(vb.shape)
        else:
            xb = np.linalg.solve(self.H, vb[:, :, None])[:, :, 0]
        out = np.empty_like(v)
        out[self.index] = xb
        return out

    def inverse_blocks(self) -> np.ndarray:
        """Per level ``H^{-1}`` block (levels, P, P): with the banded Cholesky factor in
        the workspace, one solve (dpbtrs) with each level's identity block as the
        right-hand sides -- ``H`` is block diagonal, so its band factor is too and the
        solve gives ``H_l^{-1}`` in level ``l``'s rows -- where numpy's batched inverse
        factors every block again by LU (hetar1_pois, 40 levels of 6: 64 against 35 us)."""
        if self._inv is None:
            if self.P == 1:
                self._inv = 1.0 / self.H
            elif self._cb is not None and self._in_order:
                eye = self._eye_rows
                if eye is None:
                    eye = self._eye_rows = np.tile(np.eye(self.P), (self.levels, 1))
                x, info = lapack.dpbtrs(self._cb, eye, lower=0)
                if info != 0:  # pragma: no cover - the factor exists
                    raise np.linalg.LinAlgError("inverse of the Laplace Hessian failed")
                self._inv = x.reshape(self.levels, self.P, self.P)
            else:
                self._inv = np.linalg.inv(self.H)
        return self._inv

    def slot_inverse(self) -> np.ndarray:
        return self.inverse_blocks()[self.codes]

    def term_inverse(self, ts) -> np.ndarray:
        inv = self.inverse_blocks()
        return inv[:, ts.slots, ts.slots]


def _padding(codes: np.ndarray, levels: int):
    """``(pad, position)``: the observations of each level in a (levels, m) array of row
    indices (``n`` -- a zero row -- as padding) and each observation's flat position in
    it; ``(None, None)`` where padding would more than :data:`PAD_MAX_RATIO`-fold the
    rows (a few levels with most of the observations)."""
    n = codes.size
    counts = np.bincount(codes, minlength=levels)
    m = int(counts.max()) if n else 0
    if not n or levels * m > PAD_MAX_RATIO * n:
        return None, None
    order = np.argsort(codes, kind="stable")
    first = np.cumsum(counts) - counts
    rank = np.arange(n) - first[codes[order]]
    pad = np.full((levels, m), n, dtype=np.intp)
    pad[codes[order], rank] = order
    position = np.empty(n, dtype=np.intp)
    position[order] = codes[order] * m + rank
    return pad, position


def _band_layout(levels: int, P: int):
    """Where LAPACK's upper band storage (``ab[P - 1 + i - j, l P + j] = H_l[i, j]``,
    ``i <= j``) takes each entry of the (levels, P, P) blocks: ``(flat position in ab,
    flat index into the blocks, shape of ab)``."""
    i, j = np.triu_indices(P)
    lev = np.repeat(np.arange(levels), i.size)
    rows = np.tile(P - 1 + i - j, levels)
    cols = lev * P + np.tile(j, levels)
    flat = lev * (P * P) + np.tile(i * P + j, levels)
    return rows * (levels * P) + cols, flat, (P, levels * P)


def _one_block(kernel, structure) -> bool:
    """One level of one grouping factor and one channel: ``H`` is a single P x P block
    (a known matrix over all levels, a spatial process over all sites), whose products
    with ``A`` are matrix products rather than per-observation P x P arrays."""
    return (isinstance(kernel, BlockDiagonalHessian) and kernel.levels == 1
            and structure.n_channels == 1)


def _wide_dense(kernel, structure) -> bool:
    """A dense ``H`` of one channel whose observations have about as many slots as there
    are random effects (``q <= P^2``: a known matrix or spatial term with REML's
    integrated fixed effects): ``A`` as a dense n x q matrix is no larger than the
    per-observation P x P products."""
    return (isinstance(kernel, DenseHessian) and structure.n_channels == 1
            and structure.q <= structure.P * structure.P)


def _dense_A(structure, a: np.ndarray) -> np.ndarray:
    """``A`` (n, q) from the slot values (each observation's slots are distinct)."""
    A = np.zeros((structure.n, structure.q))
    A[np.arange(structure.n)[:, None], structure.J] = a
    return A


def factor_at(kernel, structure, a: np.ndarray, W: np.ndarray) -> bool:
    """Assemble ``H = I + sum_i A_i' W_i A_i`` at slot values ``a`` (n, P) and curvatures
    ``W`` (n, C, C) and factor it; False when it is not positive definite.

    With one block (:func:`_one_block`) ``A'WA = a' diag(w) a`` is one matrix product
    (``n P^2`` flops, no ``n x P x P`` array); likewise ``A' diag(w) A`` with a dense
    ``A`` (:func:`_wide_dense`), and one batched product per level where the
    observations of a one-channel block-diagonal ``H`` are padded by level
    (:meth:`BlockDiagonalHessian.padded_products`)."""
    if _one_block(kernel, structure):
        return kernel._factor_blocks(((a.T * W[:, 0, 0]) @ a)[None])
    if isinstance(kernel, BlockDiagonalHessian) and kernel.padded:
        return kernel._factor_blocks(kernel.padded_products(a, W[:, 0, 0]))
    if _wide_dense(kernel, structure):
        A = _dense_A(structure, a)
        return kernel._factor_matrix((A.T * W[:, 0, 0]) @ A)
    return kernel.factor(structure.slot_products(a, W))


def _inverse_rows(kernel, structure, a: np.ndarray) -> np.ndarray | None:
    """``A_i H^{-1}`` on each observation's slots (n, P), where a kernel above applies."""
    if _one_block(kernel, structure):
        return a @ kernel.inverse_blocks()[0]
    if isinstance(kernel, BlockDiagonalHessian) and kernel.padded:
        return kernel.padded_inverse_rows(a)
    if _wide_dense(kernel, structure):
        AH = _dense_A(structure, a) @ kernel.inverse()
        return AH[np.arange(structure.n)[:, None], structure.J]
    return None


def slot_quadratics(kernel, structure, a: np.ndarray) -> np.ndarray:
    """``A_i H^{-1} A_i'`` per observation (n, C, C), at the kernel's factorization."""
    aH = _inverse_rows(kernel, structure, a)
    if aH is not None:
        return np.einsum("ns,ns->n", aH, a)[:, None, None]
    return structure.channel_blocks(a, kernel.slot_inverse())


def slot_weighted_inverse(kernel, structure, a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``[H^{-1} A_i' W_i]`` on each observation's slots: (n, P, C)."""
    aH = _inverse_rows(kernel, structure, a)
    if aH is not None:
        return (aH * W[:, 0, 0, None])[:, :, None]
    AtW = a[:, :, None] * W[:, structure.slot_channel, :]
    return kernel.slot_inverse() @ AtW


def make_hessian(structure):
    """The kernel for ``structure``: block diagonal when all terms share a grouping factor;
    for crossed or nested terms blocked (:mod:`.blocked`) unless ``q`` is small enough
    for one dense factorization to be cheaper (:data:`DENSE_MAX_Q`), or the fixed effects
    are integrated (REML couples every random effect)."""
    from .blocked import BlockedHessian, first_block

    if structure.block_diagonal:
        return BlockDiagonalHessian(structure)
    first = first_block(structure) if structure.q > DENSE_MAX_Q else None
    return BlockedHessian(structure, first) if first else DenseHessian(structure)

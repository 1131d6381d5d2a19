r"""Dense factorization of the whole penalized least-squares system, for small models.

With ``T = diag(Lambda, I_m)`` and ``A = [Z X y]' W [Z X y]`` assembled as one dense
(q + m) x (q + m) matrix, each evaluation is two small matrix products and one LAPACK
Cholesky:

.. math:: L L' = T' A T + \operatorname{diag}(I_q, 0).

For models with a few dozen random effects (sleepstudy: q = 36) this costs a fraction of
the blocked algorithm's per-call overhead, which matters when a small model is refitted
thousands of times (bootstrap, simulation, profiling). :class:`DenseSystem` has the same
interface as :class:`~mixedmodels.linalg.blocked.BlockedSystem` and also serves as a dense
check on it in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import numpy as np
from scipy.linalg.lapack import dpotri as _dpotri

from .lapack import (
    chol_inplace,
    chol_solve_lower,
    solve_lower,
    solve_lower_t,
    symmetric_from_upper,
)
from .layout import lambda_layout, theta_slices

__all__ = ["DENSE_MAX_SIZE", "DenseFactor", "DenseSystem", "dense_cross_product",
           "flat_z_positions"]

#: Largest q + p + 1 for which the dense path is used (two (q+m)^3 products per evaluation
#: stay cheaper than the blocked algorithm's overhead up to about this size).
DENSE_MAX_SIZE = 80
#: From this size on, ``T' A T`` is formed by scaling ``A``'s blocks with each term's
#: ``lambda_k`` (``O(size^2 p_k)``, a few numpy calls per term) rather than by two dense
#: products (``O(size^3)``, two BLAS calls): measured, the products are faster up to
#: sleepstudy's 39 columns, the scaling from Orthodont's 57.
KRONECKER_MIN_SIZE = 48


@dataclass
class DenseFactor:
    """Lower Cholesky factor ``L`` of the full system (C order, lower triangle valid)."""

    L: np.ndarray
    q: int
    logdet_Z: float
    #: log of L's diagonal (computed once: small-model evaluations are overhead-bound)
    log_diag: np.ndarray

    @property
    def LXX(self) -> np.ndarray:
        return self.L[self.q:, self.q:]

    def logdet_X(self, p: int) -> float:
        return 2.0 * float(_add_reduce(self.log_diag[self.q:self.q + p]))

    def pwrss(self) -> float:
        return float(self.L[-1, -1] ** 2)


def flat_z_positions(codes: np.ndarray, p: int, offset: int, width: int) -> np.ndarray:
    """Flat positions, in a C-ordered ``(n, width)`` array, of a term's values in the dense
    ``Z``: row ``i``'s ``p`` columns start at ``offset + codes[i] * p`` (its level's block).

    Parameters
    ----------
    codes : ndarray of int (n,)
    p : int
        Columns of the term.
    offset : int
        First column of the term in the dense array.
    width : int
        Columns of the dense array.

    Returns
    -------
    ndarray of int (n * p,)
        In the order of the term's ``(n, p)`` values raveled.
    """
    codes = np.asarray(codes)
    rows = np.arange(codes.shape[0])[:, None] * width
    return (rows + offset + codes[:, None] * p + np.arange(p)[None, :]).ravel()


def dense_cross_product(blocks, XY: np.ndarray, w: np.ndarray | None,
                        Z=None) -> np.ndarray:
    """``[Z X y]' W [Z X y]`` with a dense ``Z`` built from the terms' codes and values.

    Parameters
    ----------
    blocks : sequence of TermBlock
        The terms on the rows of ``XY`` (codes index the terms' full level sets).
    XY : ndarray (n, m)
    w : ndarray (n,) or None
    Z : sequence of ndarray, optional
        Values replacing the terms' own (one (n, p_k) array per term, same level codes):
        the whitened design of a model with correlated residuals.

    Returns
    -------
    ndarray (q + m, q + m)
    """
    n = XY.shape[0]
    q = int(sum(b.q for b in blocks))
    ZXY = np.zeros((n, q + XY.shape[1]))
    off = 0
    rows = np.arange(n)
    values = [b.Z for b in blocks] if Z is None else Z
    for b, zk in zip(blocks, values, strict=True):
        for a in range(b.p):
            ZXY[rows, off + b.codes * b.p + a] = zk[:, a]
        off += b.q
    ZXY[:, q:] = XY
    wZXY = ZXY if w is None else ZXY * w[:, None]
    return ZXY.T @ wZXY


class _Shape:
    """Levels and columns of a term: all :func:`lambda_layout` reads of a block."""

    __slots__ = ("nlevels", "p", "q")

    def __init__(self, nlevels: int, p: int):
        self.nlevels, self.p, self.q = nlevels, p, nlevels * p


@lru_cache(maxsize=64)
def _entry_layout(shapes: tuple, maps: tuple):
    """Where Lambda's entries go and what fills them, for terms of these
    ``(levels, columns)`` and structures of these ``(n_theta, direct map)``: cached, since
    a refitted or re-specified small model asks for the same layout again and building it
    is a measurable share of setting up a small fit (~0.2 ms). The arrays are read-only.

    Returns
    -------
    rows, cols, src : ndarray of int
        As :func:`~mixedmodels.linalg.layout.lambda_layout`, restricted to the entries
        that are parameters when every map is given.
    theta_map : ndarray of int or None
        Each kept entry's element of theta (every map given), else None.
    """
    rows, cols, src = lambda_layout([_Shape(nl, p) for nl, p in shapes])
    theta_map = None
    if all(mp is not None for _, mp in maps):
        n_theta = sum(k for k, _ in maps)
        full_map, start = [], 0
        for k, mp in maps:
            mp = np.asarray(mp, dtype=np.intp)
            full_map.append(np.where(mp >= 0, mp + start, n_theta))
            start += k
        entry_map = np.concatenate(full_map)[src]
        keep = entry_map < n_theta
        rows, cols, theta_map = rows[keep], cols[keep], entry_map[keep]
    for a in (rows, cols, src, theta_map):
        if a is not None:
            a.setflags(write=False)
    return rows, cols, src, theta_map


_add_reduce = np.add.reduce


class DenseSystem:
    """Evaluates :class:`DenseFactor` for any theta (interface of ``BlockedSystem``).

    Parameters
    ----------
    blocks : sequence of TermBlock
        The random-effects terms in model order.
    structures : sequence of CovarianceStructure
    """

    def __init__(self, blocks, structures):
        self.blocks = tuple(blocks)
        self.structures = tuple(structures)
        self.slices = theta_slices(self.structures)
        self.q = int(sum(b.q for b in self.blocks))
        #: per term: structure, theta slice, first column, levels, p_k (Lambda_k is
        #: I_{l_k} (x) lambda_k, so T' A T is a scaling of A's column and row blocks)
        # (Python sums: np.cumsum's wrapper costs more than these few additions)
        offsets = list(accumulate([b.q for b in self.blocks[:-1]], initial=0))
        self._terms = tuple((s, sl, int(off), b.nlevels, b.p)
                            for s, sl, off, b in zip(self.structures, self.slices, offsets,
                                                     self.blocks, strict=True))
        self._lam_offsets = list(accumulate([b.p * b.p for b in self.blocks], initial=0))
        self.n_theta = int(sum(s.n_theta for s in self.structures))
        maps = [s.direct_map() for s in self.structures]
        #: the last factor of :meth:`factorize` whose ``A T`` the workspace holds
        self._last = None
        #: ``(theta's bytes, factor)`` of the scratch workspace while it holds the factor
        #: of its last successful scratch factorization (see :meth:`factorize`)
        self._scratch_at = None
        #: ``(rows, cols)`` of Lambda's entries (where :meth:`logdet_gradient` reads
        #: ``X_ba`` for entry ``(a, b)``), each one's element of the concatenated
        #: ``lambda_k.ravel()``, and its element of theta when the structures' entries
        #: are parameters (T filled by one gather), else None
        self._rows, self._cols, self._src, self._theta_map = _entry_layout(
            tuple((b.nlevels, b.p) for b in self.blocks),
            tuple((s.n_theta, None if mp is None else tuple(np.asarray(mp).tolist()))
                  for s, mp in zip(self.structures, maps, strict=True)))
        self._grad_rows, self._grad_cols = self._rows, self._cols
        #: every term scalar with theta as its Lambda: T is diagonal and T' A T = A * d d'
        self._diagonal = self._theta_map is not None and all(b.p == 1 for b in self.blocks)

    def set_data(self, XY: np.ndarray, w: np.ndarray | None, Z=None) -> None:
        """Form ``[Z X y]' W [Z X y]`` directly with a dense ``Z`` (small models only):
        one BLAS product, no sparse bookkeeping.

        ``Z``, when given, replaces the terms' values (one (n, p_k) array per term, same
        level codes): the whitened design of a model with correlated residuals."""
        n, m = XY.shape
        if Z is None or w is not None:
            self.set_cross_product(dense_cross_product(self.blocks, XY, w, Z), m)
            return
        # repeated calls with new values on the same rows (the whitened data of every
        # evaluation of an R-side model): the dense [Z X y] is kept and refilled at the
        # same positions (the rest stays zero), by one flat put per term
        if getattr(self, "_zxy", None) is None or self._zxy.shape != (n, self.q + m):
            self._zxy = np.zeros((n, self.q + m))
            offsets = np.cumsum([0] + [b.q for b in self.blocks[:-1]])
            self._zxy_flat = [flat_z_positions(b.codes, b.p, int(off), self.q + m)
                              for b, off in zip(self.blocks, offsets, strict=True)]
        ZXY = self._zxy
        flat = ZXY.reshape(-1)
        for idx, zk in zip(self._zxy_flat, Z, strict=True):
            flat[idx] = np.asarray(zk, dtype=float).ravel()
        ZXY[:, self.q:] = XY
        self._install(ZXY.T @ ZXY, m)

    def set_cross_product(self, full: np.ndarray, m: int) -> None:
        """Install ``[Z X y]' W [Z X y]`` ((q + m) x (q + m), ``m`` columns of ``[X y]``),
        for instance summed over chunks of rows by :func:`dense_cross_product`."""
        self._install(np.asarray(full, dtype=float), m)

    def _install(self, full: np.ndarray, m: int) -> None:
        q = self.q
        size = q + m
        self.full = np.ascontiguousarray(full, dtype=float)
        self._last = None
        self._scratch_at = None      # (new data: the scratch factor is out of date)
        if getattr(self, "_scratch", None) is not None and self._scratch.shape[0] == size:
            # the workspaces of the last installation fit (new values on the same rows):
            # T's entries are rewritten at the same positions by every factorization
            return
        self._e_last = np.zeros(size)
        self._e_last[-1] = 1.0
        #: workspace of the objective's evaluations (``scratch=True``): small models are
        #: overhead-bound, and a fresh (q + m)^2 array per call is a measurable share
        self._scratch = np.empty((size, size))
        #: the scratch factor's diagonal as a strided view, and where the gradient reads
        #: ``X_ba`` for Lambda's entry ``(a, b)`` in the flattened ``Y'`` ((q, size), see
        #: :meth:`logdet_gradient`): formed once here, since each evaluation of a small
        #: model is bound by the count of numpy calls rather than by arithmetic
        self._scratch_diag = self._scratch.reshape(-1)[::size + 1]
        self._grad_flat = self._grad_rows * size + self._grad_cols
        self._kronecker = size >= KRONECKER_MIN_SIZE
        if self._diagonal:
            self._d = np.ones(size)
            self._dd = np.empty((size, size))
        elif not self._kronecker:
            self._T = np.eye(size)
            self._T_flat = self._T.reshape(-1)
            self._entry_flat = self._rows * size + self._cols
            self._AT = np.empty((size, size))
            #: ``(T' A)[:, :q]`` as the view of ``A T`` that the gradient reads
            self._TA_cols = self._AT.T[:, :q]

    def factorize(self, theta: np.ndarray, scratch: bool = False) -> DenseFactor | None:
        """The factor at ``theta``, or None when the system is not positive definite.

        ``T' A T`` is formed in the cheapest of three ways: ``A * d d'`` when every term
        is scalar (``T = diag(d)``); two dense products up to :data:`KRONECKER_MIN_SIZE`
        columns; beyond, block by block (``Lambda_k = I (x) lambda_k`` multiplies the
        k-th column block of ``A`` from the right and its row block from the left,
        ``O((q + m)^2 p_k)`` per term instead of ``O((q + m)^3)``).

        ``scratch=True`` writes the factor into a workspace that the next scratch call
        overwrites (for objective evaluations, which read it at once); without it the
        factor owns its array. A factor asked for (``scratch=False``) at the theta of the
        last scratch factorization -- the final solve at the optimum the search has just
        evaluated -- is a copy of the workspace: the same operations on the same numbers
        gave it, so it is the factor bit for bit, without the products and the Cholesky
        again. (Evaluations read the scratch factor and never write into it.)"""
        if scratch:
            self._scratch_at = None
        elif self._scratch_at is not None:
            key, held = self._scratch_at
            if key == theta.tobytes():
                f = DenseFactor(held.L.copy(), held.q, held.logdet_Z, held.log_diag.copy())
                if self._last is held:
                    self._last = f       # (the workspaces still hold this theta's A T)
                return f
        L = self._scratch if scratch else np.empty_like(self._scratch)
        self._last = None            # the workspaces are about to change
        with_at = False
        if self._diagonal:
            d = self._d
            d[self._rows] = theta[self._theta_map]
            np.multiply(self.full, np.multiply.outer(d, d, out=self._dd), out=L)
        elif not self._kronecker:
            self._fill_T(theta)
            T = self._T
            np.matmul(T.T, np.matmul(self.full, T, out=self._AT), out=L)
            with_at = True
        else:
            self._scale_blocks(theta, L)
        # the diagonal as a strided view (cheaper than a gather for these small arrays)
        diag = self._scratch_diag if scratch else L.reshape(-1)[::L.shape[0] + 1]
        q = self.q
        diag[:q] += 1.0
        if not chol_inplace(L):
            return None
        log_diag = np.log(diag)
        # np.add.reduce is what ndarray.sum calls (the same sum), without its wrapper
        f = DenseFactor(L, q, 2.0 * float(_add_reduce(log_diag[:q])), log_diag)
        # the factor whose ``A T`` (or ``d``) the workspaces hold: its gradient reads
        # ``T' A = (A T)'`` from there instead of forming it again
        self._last = f if (with_at or self._diagonal) else None
        if scratch:
            self._scratch_at = (theta.tobytes(), f)
        return f

    def _fill_T(self, theta: np.ndarray) -> None:
        """Write ``Lambda(theta)`` into ``T = diag(Lambda, I)``."""
        if self._theta_map is not None:
            self._T_flat[self._entry_flat] = theta[self._theta_map]
        else:
            lam = np.concatenate([s.lambda_(theta[sl]).ravel()
                                  for s, sl in zip(self.structures, self.slices, strict=True)])
            self._T_flat[self._entry_flat] = lam[self._src]

    def _scale_blocks(self, theta: np.ndarray, L: np.ndarray) -> None:
        """``T' A T`` into ``L`` term by term (``Lambda_k = I (x) lambda_k``)."""
        np.copyto(L, self.full)
        size = L.shape[0]
        for struct, sl, off, nlev, p in self._terms:
            lam = struct.lambda_(theta[sl])
            if p == 1:
                t = lam[0, 0]
                L[:, off:off + nlev] *= t
                L[off:off + nlev, :] *= t
                continue
            cols = L[:, off:off + nlev * p]
            cols.shape = (size, nlev, p)       # a view (raises rather than copy)
            np.matmul(cols, lam, out=cols)     # (numpy buffers the overlap)
            rows = L[off:off + nlev * p, :]
            rows.shape = (nlev, p, size)
            np.matmul(lam.T, rows, out=rows)

    def logdet_gradient(self, f: DenseFactor, theta: np.ndarray, s: int, c: float
                        ) -> np.ndarray:
        r"""Gradient in theta of ``log|Omega_s| + c log r^2`` from the factor at ``theta``.

        ``Omega = T' A T + diag(I_q, 0)`` is the factored system, ``Omega_s`` its leading
        ``s x s`` block (``s >= q``) and ``r^2 = L[-1, -1]^2`` the Schur complement of its
        last row. With ``B = L^{-1}`` (so ``Omega_s^{-1} = B_s' B_s`` for the leading
        block ``B_s`` of the triangular inverse) and ``rho`` the last row of ``B``,
        ``Omega^{-1} - \operatorname{diag}(Omega_{size-1}^{-1}, 0) = rho rho'``, hence

        .. math::

            \frac{\partial \log|\Omega_s|}{\partial\theta_j} =
                2 \operatorname{tr}(\Omega_s^{-1} T_s' A_{s\cdot} \dot T_j), \qquad
            \frac{\partial \log r^2}{\partial\theta_j} =
                2 \rho' T' A \dot T_j \rho,

        both ``2 tr(X dT_j)`` with ``X = (Omega_s^{-1} K_s)_{ZZ} + c\,\rho_Z (K'\rho)_Z'``,
        ``K = T'A`` restricted to the columns of ``Z``; ``dT_j`` is ``d Lambda / d theta_j``
        on the diagonal blocks of the terms (an indicator for structures whose entries are
        parameters, :meth:`~mixedmodels.covariance.CovarianceStructure.direct_map`; else
        ``lambda_jacobian``). ``rho`` is one triangular solve; ``Omega_s^{-1} K_s`` one
        Cholesky solve with the whole factor when ``s = size - 1`` (then
        ``Omega_s^{-1} K_s = (Omega^{-1} K)_s - rho_s (rho' K)``), else two triangular
        solves; ``K`` is read from the product ``A T`` of the factorization. Only the
        entries of ``X`` at ``Lambda``'s pattern are formed. No ``Lambda^{-1}`` is
        needed, so singular fits are exact
        (the gradient of a scalar term at ``theta_k = 0`` is 0: the criterion is even in
        it). The profiled REML criterion is ``s = q + p`` with ``c = n - p``, the ML
        deviance ``s = q``, ``c = n``; a known sigma gives ``c = r^2 / sigma^2``.

        Parameters
        ----------
        f : DenseFactor
            From :meth:`factorize` at ``theta``.
        theta : ndarray
        s : int
            Leading block whose log-determinant is differentiated (``q <= s < size``).
        c : float
            Weight of ``log r^2``.

        Returns
        -------
        ndarray (n_theta,)
        """
        L = f.L
        size = L.shape[0]
        K = self._t_a_columns(f, theta)             # (T'A)[:, :q]
        # rho = L^{-T} e_last (one triangular solve with the whole factor)
        rho = solve_lower_t(L, self._e_last)
        k_rho = K.T @ rho
        if s == size - 1:
            # Omega^{-1} = diag(Omega_s^{-1}, 0) + rho rho' (the last row's Schur
            # complement), so one Cholesky solve with the whole factor (contiguous: no
            # copy of a leading block) gives Omega_s^{-1} K_s = (Omega^{-1} K)_s less
            # rho_s (rho' K)
            Y = chol_solve_lower(L, K)
            c_rho = c - 1.0
        else:
            # L^{-1} K, its rows from s on zeroed, then L^{-T}: the leading rows are
            # L_s^{-T} L_s^{-1} K_s = Omega_s^{-1} K_s (L is lower triangular)
            W = solve_lower(L, K)
            W[s:] = 0.0
            Y = solve_lower_t(L, W)
            c_rho = c
        # X_ba = Y_ba + c_rho rho_b (K' rho)_a, read only at the entries (a, b) of Lambda
        rows, cols = self._grad_rows, self._grad_cols
        # Y[cols, rows] as one flat gather of Y' (a view where Y is Fortran-ordered, as
        # LAPACK returns it)
        vals = Y.T.reshape(-1)[self._grad_flat] + c_rho * (rho[cols] * k_rho[rows])
        if self._theta_map is not None:
            return 2.0 * np.bincount(self._theta_map, vals, minlength=self.n_theta)
        G = np.bincount(self._src, vals, minlength=int(self._lam_offsets[-1]))
        grad = np.empty(self.n_theta)
        for k, (struct, sl) in enumerate(zip(self.structures, self.slices, strict=True)):
            jac = struct.lambda_jacobian(theta[sl])
            seg = G[self._lam_offsets[k]:self._lam_offsets[k + 1]]
            grad[sl] = 2.0 * (jac.reshape(jac.shape[0], -1) @ seg)
        return grad

    def _t_a_columns(self, f: DenseFactor, theta: np.ndarray) -> np.ndarray:
        """``(T' A)[:, :q]`` at the factor's theta: a view of the product ``A T`` that
        :meth:`factorize` left in its workspace (``A`` is symmetric, so ``T'A = (AT)'``;
        the view is Fortran-contiguous, as LAPACK wants it), ``d * A`` for diagonal
        ``T``, else formed term by term."""
        q = self.q
        if self._last is f:
            if self._diagonal:
                return self.full[:, :q] * self._d[:, None]
            return self._TA_cols
        return self.lambda_rows(theta, self.full[:, :q])

    def criterion_weight(self, f: DenseFactor, s: int, c: float) -> np.ndarray:
        r"""``G = d/dOmega`` of ``log|Omega_s| + c log r^2`` at the factor ``f`` (the
        criterion :meth:`logdet_gradient` differentiates in theta): with ``rho = L^{-T}
        e_last`` (so that ``d r^2 / dOmega = r^2 rho rho'``),

        .. math:: G = \begin{bmatrix} \Omega_s^{-1} & 0 \\ 0 & 0 \end{bmatrix}
                  + c\, \rho \rho',

        ``Omega_s^{-1}`` from the factor's leading block by LAPACK's potri; with a known
        sigma ``c = r^2 / sigma^2`` (the weight of ``r^2 / sigma^2``'s derivative).

        Parameters
        ----------
        f : DenseFactor
        s : int
            Leading block whose log-determinant the criterion holds.
        c : float

        Returns
        -------
        ndarray (size, size)
            Symmetric.
        """
        L = f.L
        rho = solve_lower_t(L, self._e_last)
        # potri reads the lower triangle of the C-ordered factor (the upper one of its
        # transpose) and writes the inverse into the upper triangle of that view; the rest
        # holds the factor's unused triangle, so the upper one is mirrored
        inv, info = _dpotri(L[:s, :s].T, lower=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"Cholesky inverse failed (info={info})")
        G = c * np.outer(rho, rho)
        G[:s, :s] += symmetric_from_upper(inv)
        return G

    def weight_gradient(self, theta: np.ndarray, G: np.ndarray) -> np.ndarray:
        r"""Gradient in theta of ``<G, T' A T>`` for a fixed symmetric ``G`` (the size of
        the system): ``d/dT = 2 A T G``, read on the terms' diagonal level blocks,

        .. math:: \frac{\partial}{\partial\theta_j} = 2 \sum_k \Bigl\langle
                  \sum_l (A T G)_{[l], [l]}, \frac{\partial\lambda_k}{\partial\theta_j}
                  \Bigr\rangle,

        ``[l]`` the columns of level ``l`` of term ``k``: ``O(size^2 p_k)`` per term.

        Parameters
        ----------
        theta : ndarray
        G : ndarray (size, size)

        Returns
        -------
        ndarray (n_theta,)
        """
        # A T = (T' A)' (A symmetric)
        AT = self.lambda_rows(theta, self.full).T
        size = AT.shape[0]
        grad = np.empty(self.n_theta)
        for struct, sl, off, nlev, p in self._terms:
            width = nlev * p
            rows = AT[off:off + width].reshape(nlev, p, size)
            cols = G[:, off:off + width].reshape(size, nlev, p).transpose(1, 0, 2)
            # sum over the levels of (A T)[l rows] G[:, l cols] (batched products: einsum
            # does not hand this contraction to BLAS, and costs ~5x)
            H = np.matmul(rows, cols).sum(axis=0)
            jac = struct.lambda_jacobian(theta[sl])
            grad[sl] = 2.0 * (jac.reshape(jac.shape[0], -1) @ H.reshape(-1))
        return grad

    def lambda_rows(self, theta: np.ndarray, M: np.ndarray, transpose: bool = True
                    ) -> np.ndarray:
        """``T' M`` (``transpose``) or ``T M`` for ``M`` with the system's rows:
        ``lambda_k'`` (or ``lambda_k``) applied to every level's rows of term k, the
        fixed-effects rows unchanged (a new array)."""
        out = np.array(M, dtype=float)
        ncol = out.shape[1]
        for struct, sl, off, nlev, p in self._terms:
            lam = struct.lambda_(theta[sl])
            rows = out[off:off + nlev * p]
            if p == 1:
                rows *= lam[0, 0]
                continue
            rows.shape = (nlev, p, ncol)
            np.matmul(lam.T if transpose else lam, rows.copy(), out=rows)
        return out

    def solve_u(self, f: DenseFactor, beta: np.ndarray) -> np.ndarray:
        """Spherical random effects at ``beta``: ``L_Z' u = l_yZ' - L_XZ' beta``."""
        q, p = self.q, beta.shape[0]
        L = f.L
        rhs = L[q + p, :q] - L[q:q + p, :q].T @ beta
        return solve_lower_t(np.ascontiguousarray(L[:q, :q]), rhs)

    def cond_var_u(self, f: DenseFactor) -> list[np.ndarray]:
        """Diagonal blocks of ``(L_Z L_Z')^{-1}`` per term: list of (l_k, p_k, p_k)."""
        q = self.q
        Linv = solve_lower(np.ascontiguousarray(f.L[:q, :q]), np.eye(q))
        Minv = Linv.T @ Linv
        out, off = [], 0
        for b in self.blocks:
            idx = off + np.arange(b.q).reshape(b.nlevels, b.p)
            out.append(Minv[idx[:, :, None], idx[:, None, :]])
            off += b.q
        return out

r"""Cross-products of whitened data, ``A = M' V^{-1} M``, without whitening the rows.

The ``gls`` criterion depends on the data only through ``A`` (``k x k``, ``k = p + 1``)
and ``log|V|``. Where ``V^{-1}`` is banded -- no correlation (``V`` diagonal) or a Markov
correlation (AR(1), CAR(1): ``V^{-1}`` tridiagonal within a group) -- ``A`` is a weighted
sum of per-row outer products fixed by ``M``:

.. math:: A = \sum_j w_j\, m_j m_j' + \sum_{k} c_k\, (m_k m_{p(k)}' + m_{p(k)} m_k'),

``p(k)`` the row before ``k`` in time within its group. With ``e_j = 1 / d_j`` (the
standard-deviation factors of the variance function and prior weights), ``r_k =
\phi^{t_k - t_{p(k)}}`` and ``\iota_k = 1 / (1 - r_k^2)``:

.. math:: w_j = e_j^2 \bigl(1 + [j \text{ not first}](\iota_j - 1)
                + [j = p(k)]\, r_k^2 \iota_k\bigr), \qquad
          c_k = -r_k \iota_k e_k e_{p(k)},

the expansion of ``sum_j (W M)_j (W M)_j'`` with the closed-form whitening of
:class:`~.correlation._MarkovMixin`. The outer products are computed once per fit (an
``n x k^2`` array), so an evaluation costs two matrix-vector products instead of a
whitening and a QR factorization (``gls`` of 308 rows: ~15 numpy calls, not ~60). The
gradient follows from ``G = df/dA``: ``df/dw_j = m_j' G m_j`` and ``df/dc_k = 2 m_k' G
m_{p(k)}``, again two products with the same array.

Shared factors use :class:`PatternGram`, ARMA on irregular groups (or with a variance
function) :class:`~.group_gram.GroupGram` (every group padded into one batch); other
correlations :class:`WhitenedGram` (whiten, then ``(W M)' (W M)``). ``M`` must
be well conditioned -- the fixed-effects basis and residualized response of
:class:`~mixedmodels.linalg.basis.FixedBasis` -- since forming ``A`` squares its
condition number.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.lapack import dtrtri

from .arma_whitening import ArmaWhitening
from .correlation import _MarkovMixin
from .group_gram import GroupGram
from .residual import BoundResidual
from .scaled_cs_gram import ScaledCompSymmGram

__all__ = ["PATTERN_GRAM_MAX_PAIRS", "BandedGram", "CompSymmGram", "MarkovWhitening",
           "PatternGram", "ScaleWhitening", "WhitenedGram", "gram_plan", "whitening_plan"]


def _outer_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(n, k*k)``: row ``j`` is ``vec(a_j b_j')``.

    One multiplication over ``(k, k, n)`` with the rows innermost, then a transposing
    copy: each entry is the one product ``a_ja b_jb`` that broadcasting
    ``A[:, :, None] * B[:, None, :]`` forms (the same bits, signed zeros included), but
    the ufunc loops over the n rows instead of the k-long innermost axis (~1.1-1.5x
    faster on a few hundred rows; ``np.repeat``/``np.tile`` copy element by element,
    and ``einsum`` accumulates onto zero: a ``-0.0`` product comes out ``+0.0``)."""
    n, k = A.shape
    out = np.empty((k, k, n))
    np.multiply(A.T[:, None, :], B.T[None, :, :], out=out)
    return out.reshape(k * k, n).T.copy()


class WhitenedGram:
    """``A`` and ``log|V|`` by whitening (any residual model)."""

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.M = M
        self.k = M.shape[1]

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(A, log|V|)``, or None where a correlation matrix is not positive definite."""
        res = self.residual.whiten(phi, self.M)
        if res is None:
            return None
        Mw, logdet = res
        return Mw.T @ Mw, logdet

    def vjp(self, phi: np.ndarray):
        """``(A, log|V|, pullback)``: ``pullback(G)``, ``G = df/dA`` symmetric, gives
        ``df/dphi`` of ``f(A) + log|V|``; None as :meth:`value`."""
        res = self.residual.whiten_vjp(phi, self.M)
        if res is None:
            return None
        Mw, logdet, pullback = res
        return Mw.T @ Mw, logdet, lambda G: pullback(2.0 * (Mw @ G))


class BandedGram:
    """``A`` and ``log|V|`` from per-row outer products (module docstring): no
    correlation, or a Markov one.

    The pairs ``(k, p(k))`` are classed by their lag, so ``r = phi^lag`` is one power per
    distinct lag; without a variance function or prior weights (``e = 1``) the outer
    products are summed per class once, and an evaluation combines ``3 m + 1`` fixed
    ``k x k`` matrices (``m`` distinct lags) -- no work per row at all. A residual model
    with nothing to estimate (no correlation, a fixed variance or none) is evaluated once:
    ``M' diag(w) M`` directly, without the outer products.
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.k = k = M.shape[1]
        self.n = M.shape[0]
        self._M = M
        cor = self._markov = residual.correlation
        self._scaled = residual.variance is not None or residual.log_w is not None
        if cor is None and not residual.n_par:
            # nothing to estimate: one evaluation, ``M' diag(w) M`` directly (the outer
            # products cost several such products to set up)
            self._self = None
            return
        P = _outer_rows(M, M)                                # (n, k^2)
        if cor is None:
            self._self = P
            return
        rows, prev = cor._rows, cor._prev
        self._rows, self._prev = rows, prev
        if cor._one_lag is not None:
            # equally spaced times: one lag class (np.unique's result without its sort)
            self._lags = np.array([cor._one_lag])
            self._lag_of = np.zeros(rows.size, dtype=np.intp)
        else:
            self._lags, self._lag_of = np.unique(cor._lag, return_inverse=True)
            self._lag_of = self._lag_of.ravel()
        self._count = np.bincount(self._lag_of, minlength=self._lags.size).astype(float)
        # (row gathers by take: the same rows, without fancy indexing's iterator)
        cross = _outer_rows(M.take(rows, axis=0), M.take(prev, axis=0))   # (n_pairs, k^2)
        if self._scaled:
            self._self, self._cross = P, cross
            return
        # per lag class: sums of m_k m_k', m_p m_p' and m_k m_p' + m_p m_k'
        m = self._lags.size
        onehot = np.zeros((m, rows.size))
        onehot[self._lag_of, np.arange(rows.size)] = 1.0
        sym = cross.reshape(-1, k, k)
        sym = (sym + np.swapaxes(sym, 1, 2)).reshape(-1, k * k)
        self._sums = np.vstack([P.sum(axis=0)[None, :], onehot @ P.take(rows, axis=0),
                                onehot @ P.take(prev, axis=0), onehot @ sym])  # (3m+1, k^2)

    def with_residual(self, residual: BoundResidual) -> BandedGram:
        """This plan for ``residual`` with the same correlation binding and the same row
        scaling (only a variance covariate changed): the outer products are reused."""
        if residual.correlation is not self._markov or \
                (residual.variance is not None or residual.log_w is not None) != self._scaled:
            return BandedGram(residual, self._M)
        new = object.__new__(BandedGram)
        new.__dict__.update(self.__dict__)
        new.residual = residual
        return new

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """The residual model has a banded inverse (no correlation or a Markov one)."""
        cor = residual.correlation
        return cor is None or isinstance(cor, _MarkovMixin)

    def _lag_terms(self, phi):
        """Per distinct lag: ``(r, iota, phi, dphi/du)``; None where ``1 - r^2 <= 0``."""
        uc, _ = self.residual.split(phi)
        phi_c, dphi = self._markov.markov_phi(uc)
        r = phi_c ** self._lags
        one_minus = 1.0 - r * r
        if not (one_minus > 0.0).all():
            return None
        return r, 1.0 / one_minus, phi_c, dphi, float(self._count @ np.log(one_minus))

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """As :meth:`WhitenedGram.value`."""
        got = self._evaluate(np.asarray(phi, dtype=float))
        return None if got is None else got[:2]

    def _evaluate(self, phi):
        """``(A, log|V|, state)``: ``state`` what the pullback reuses."""
        res = self.residual
        log_d = res.log_sd(phi) if self._scaled else None
        e2 = None if log_d is None else np.exp(-2.0 * log_d)
        logdet = 0.0 if log_d is None else 2.0 * float(log_d.sum())
        k = self.k
        if self._markov is None:
            if self._self is None:
                M = self._M
                A = M.T @ M if e2 is None else (M.T * e2) @ M
                return A, logdet, (e2, None, e2, None)
            w = np.ones(self.n) if e2 is None else e2
            return (w @ self._self).reshape(k, k), logdet, (w, None, e2, None)
        lag = self._lag_terms(phi)
        if lag is None:
            return None
        r, inv, _, _, ld = lag
        logdet += ld
        if not self._scaled:
            coef = np.concatenate([[1.0], inv - 1.0, r * r * inv, -r * inv])
            return (coef @ self._sums).reshape(k, k), logdet, (None, None, None, lag)
        # per pair: its lag class's r and iota
        rp, ip = r[self._lag_of], inv[self._lag_of]
        base = np.ones(self.n)
        base[self._rows] = ip
        base[self._prev] += rp * rp * ip        # each row precedes at most one row
        ee = np.sqrt(e2[self._rows] * e2[self._prev])
        w = base * e2
        c = -rp * ip * ee
        C = (c @ self._cross).reshape(k, k)
        A = (w @ self._self).reshape(k, k) + C + C.T
        return A, logdet, (w, c, e2, lag)

    def vjp(self, phi: np.ndarray):
        r"""As :meth:`WhitenedGram.vjp`. With ``q_j = m_j' G m_j`` and ``s_k = 2 m_k' G
        m_{p(k)}``: ``df/dl_j = 2 - 2 w_j q_j - \sum_{k \ni j} c_k s_k`` for the log
        standard-deviation factors ``l_j``, and, from ``d\iota/dr = d(r^2 \iota)/dr =
        2 r \iota^2`` and ``d(-r\iota)/dr = -(1 + r^2) \iota^2``,

        .. math:: \frac{df}{dr_k} = 2 r_k \iota_k^2 (q_k e_k^2 + q_{p(k)} e_{p(k)}^2)
                  - (1 + r_k^2) \iota_k^2 e_k e_{p(k)} s_k - 2 r_k \iota_k,

        summed over the pairs of each lag class, then ``dr / d\phi = lag\,
        \phi^{lag - 1}`` and the structure's ``d\phi / du``."""
        phi = np.asarray(phi, dtype=float)
        got = self._evaluate(phi)
        if got is None:
            return None
        A, logdet, (w, c, e2, lag) = got
        res = self.residual

        def cor_gradient(dr):
            r, inv, phi_c, dphi, _ = lag
            # dr/dphi = lag phi^(lag - 1) (0^0 = 1: a lag of 1 at phi = 0)
            dr = dr - 2.0 * r * inv * self._count
            return np.array([float(dr @ (self._lags * phi_c ** (self._lags - 1.0)))
                             * dphi])

        def pullback(G):
            if not res.n_par:
                return np.zeros(0)
            g = G.reshape(-1)
            parts = []
            if lag is not None and not self._scaled:
                if res.n_cor:
                    r, inv = lag[0], lag[1]
                    m = r.size
                    dcoef = self._sums[1:] @ g
                    inv2 = inv * inv
                    dr = (2.0 * r * inv2 * (dcoef[:m] + dcoef[m:2 * m])
                          - (1.0 + r * r) * inv2 * dcoef[2 * m:])
                    parts.append(cor_gradient(dr))
                return np.concatenate(parts) if parts else np.zeros(0)
            q = self._self @ g
            s = None
            if lag is not None:
                s = 2.0 * (self._cross @ g)
                if res.n_cor:
                    r, inv = lag[0], lag[1]
                    rp, ip = r[self._lag_of], inv[self._lag_of]
                    qe = q * e2
                    ee = np.sqrt(e2[self._rows] * e2[self._prev])
                    ip2 = ip * ip
                    dr_pair = (2.0 * rp * ip2 * (qe[self._rows] + qe[self._prev])
                               - (1.0 + rp * rp) * ip2 * ee * s)
                    parts.append(cor_gradient(np.bincount(
                        self._lag_of, weights=dr_pair, minlength=r.size)))
            if res.n_var:
                dl = 2.0 - 2.0 * w * q
                if s is not None:
                    cs = c * s
                    dl[self._rows] -= cs
                    dl[self._prev] -= cs
                _, uv = res.split(phi)
                parts.append(res.variance.log_sd_jacobian(uv).T @ dl)
            return np.concatenate(parts) if parts else np.zeros(0)

        return A, logdet, pullback


#: Most (pattern, group length) pairs for which :class:`PatternGram` is used (beyond this
#: the groups are too irregular for shared factors to pay: :class:`WhitenedGram`).
PATTERN_GRAM_MAX_PAIRS = 8


class PatternGram:
    r"""``A`` from the shared factors of :mod:`.patterns`, without a variance function or
    prior weights: groups with pattern ``P`` share its factor ``L_P`` (``T_P = L_P^{-1}``),
    a group of ``s`` rows its leading block, so its whitened rows are the first ``s`` of
    ``T_P M_i`` (``M_i`` padded to the pattern's length; a lower-triangular ``T_P`` never
    mixes the padding into them). With ``W_i`` those rows padded with zeros,

    .. math:: A = \sum_i W_i' W_i, \qquad
              \log|V| = 2 \sum_P \sum_a c_{Pa} \log (L_P)_{aa},

    ``c_{Pa}`` the groups of pattern ``P`` longer than ``a``: an evaluation factors and
    inverts the patterns' matrices and multiplies the stacked, padded rows ``M_i``
    (gathered once per fit) by ``T_P`` -- one product for all groups of a pattern. So
    does the gradient where the structure differentiates its pattern matrices
    (:meth:`vjp`).
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.k = k = M.shape[1]
        self._whitened = WhitenedGram(residual, M)
        cor = residual.correlation
        self._classes, self._geometries = cor._shared()
        self._data = []
        for c in self._classes:
            n_pat = int(c.rep_rows.shape[0])
            valid = c.valid.astype(float)                                # (G, m)
            onehot = np.zeros((n_pat, c.pattern.size))
            onehot[c.pattern, np.arange(c.pattern.size)] = 1.0
            count = onehot @ valid                                       # (P, m): c_Pa
            Mb = M[c.rows] * valid[:, :, None]                           # (G, m, k)
            if n_pat == 1:
                # one pattern: its groups side by side, (m, G k), for one product T_P Mb
                Mb = np.ascontiguousarray(Mb.transpose(1, 0, 2).reshape(c.size, -1))
                mask = np.repeat(valid.T, k, axis=1)                     # (m, G k)
            else:
                mask = valid[:, :, None]
            self._data.append((n_pat, Mb, mask, count, onehot))

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """Shared patterns, few (pattern, length) pairs, no row scaling."""
        cor = residual.correlation
        if cor is None or residual.variance is not None or residual.log_w is not None:
            return False
        if isinstance(cor, _MarkovMixin) or not hasattr(cor, "matrices"):
            return False
        try:
            shared = cor._shared()
        except NotImplementedError:
            return False
        if shared is None:
            return False
        n_pairs = sum(np.unique(c.pattern * (c.size + 1) + c.last).size for c in shared[0])
        return n_pairs <= PATTERN_GRAM_MAX_PAIRS

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """As :meth:`WhitenedGram.value`."""
        got = self._evaluate(phi)
        return None if got is None else got[:2]

    def _evaluate(self, phi, matrices=None):
        """``(A, log|V|, state)``: ``state`` per class ``(T, W)`` (inverse factors and
        padded whitened rows, what the pullback reuses); None where a pattern is not
        positive definite. ``matrices``: the patterns' matrices when the caller has them
        (:meth:`vjp`)."""
        cor = self.residual.correlation
        uc, _ = self.residual.split(np.asarray(phi, dtype=float))
        u = cor.full(uc)
        k = self.k
        A = np.zeros((k, k))
        logdet = 0.0
        state = []
        if matrices is None:
            matrices = cor.matrices(u, self._geometries)
        for c, C, (n_pat, Mb, mask, count, _) in zip(
                self._classes, matrices, self._data, strict=True):
            try:
                L = np.linalg.cholesky(C)
            except np.linalg.LinAlgError:
                return None
            logdet += 2.0 * float(np.sum(count * np.log(np.diagonal(L, axis1=1, axis2=2))))
            if n_pat == 1:
                T, info = dtrtri(L[0], lower=1)       # exactly lower triangular
                if info != 0:
                    return None
                W = (T @ Mb) * mask                    # (m, G k)
                T = T[None]
            else:
                # tril drops the rounding an LU leaves above the diagonal
                T = np.linalg.inv(L) * c.lower
                W = np.matmul(T[c.pattern], Mb) * mask     # (G, m, k)
            Wr = W.reshape(-1, k)
            A += Wr.T @ Wr
            state.append((T, W))
        return A, logdet, state

    def vjp(self, phi: np.ndarray):
        r"""As :meth:`WhitenedGram.vjp`. Where the structure gives the derivatives of its
        pattern matrices (``matrix_derivatives``), without whitening: the padded inverse
        of a group is ``T_P' D_i T_P`` (``D_i`` one on its ``s`` rows) and
        ``C_i^{-1} M_i = T_P' W_i``, so with ``d C^{-1} = -C^{-1} dC\, C^{-1}`` and
        ``d \log|C| = tr(C^{-1} dC)``

        .. math:: \frac{df}{du_j} = \sum_P \bigl\langle T_P' (\mathrm{diag}(c_P)
                  - R_P)\, T_P,\; \partial C_P / \partial u_j \bigr\rangle, \qquad
                  R_P = \sum_{i \in P} W_i G W_i',

        per evaluation a few ``m x m`` products per pattern, for any number of groups.
        Otherwise by whitening (:class:`WhitenedGram`)."""
        cor = self.residual.correlation
        if not self.analytic_gradient:
            return self._whitened.vjp(phi)
        phi = np.asarray(phi, dtype=float)
        uc, _ = self.residual.split(phi)
        u = cor.full(uc)
        both = getattr(cor, "matrices_and_derivatives", None)
        # ARMA: the matrices come with their derivatives from the same passes
        matrices, derivatives = both(u, self._geometries) if both is not None else \
            (None, None)
        got = self._evaluate(phi, matrices)
        if got is None:
            return None
        A, logdet, state = got
        k = self.k

        def pullback(G):
            grad = np.zeros(u.size)
            dCs = derivatives if derivatives is not None else \
                cor.matrix_derivatives(u, self._geometries)
            for c, dC, (n_pat, _, _, count, onehot), (T, W) in zip(
                    self._classes, dCs, self._data, state, strict=True):
                m = c.size
                if n_pat == 1:
                    Y = (W.reshape(-1, k) @ G).reshape(m, -1)          # (m, G k)
                    R = (Y @ W.T)[None]
                else:
                    R_g = np.matmul(np.matmul(W, G), np.swapaxes(W, 1, 2))   # (G, m, m)
                    R = (onehot @ R_g.reshape(R_g.shape[0], -1)).reshape(n_pat, m, m)
                D = -R
                D[:, np.arange(m), np.arange(m)] += count
                Q = np.matmul(np.matmul(np.swapaxes(T, 1, 2), D), T)          # (P, m, m)
                grad += dC.reshape(u.size, -1) @ Q.reshape(-1)
            return np.zeros(0) if cor.spec.fixed else grad

        return A, logdet, pullback

    @property
    def analytic_gradient(self) -> bool:
        """:meth:`vjp` needs no whitening (the structure has ``matrix_derivatives``)."""
        return hasattr(self.residual.correlation, "matrix_derivatives")


class CompSymmGram:
    r"""``A`` of compound symmetry without a variance function or prior weights:
    ``C_i^{-1} = (I - a_{n_i} J) / (1 - \rho)``, ``a_n = \rho / (1 - \rho + n \rho)``, so

    .. math:: A = \frac{1}{1 - \rho} \Bigl(M'M - \sum_n a_n U_n\Bigr), \qquad
              U_n = \sum_{i: n_i = n} \bar m_i \bar m_i', \quad \bar m_i = \sum_{j \in i} m_j,

    and ``log|C| = \sum_i (n_i - 1) \log(1 - \rho) + \log(1 - \rho + n_i \rho)``: a few
    ``k x k`` matrices per evaluation, and as few for the gradient (:meth:`vjp`).
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.k = M.shape[1]
        blocks = residual.correlation.blocks
        order = np.argsort(blocks.codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(blocks.sizes)[:-1]])
        sums = np.add.reduceat(M[order], starts, axis=0)             # (G, k)
        # the distinct group sizes, increasing, and each group's among them (np.unique's
        # result, from counts: a few sizes, and unique's sort costs more)
        present = np.bincount(blocks.sizes) > 0
        self._n = np.flatnonzero(present)
        inv = (np.cumsum(present) - 1)[blocks.sizes]
        self._count = np.bincount(inv, minlength=self._n.size).astype(float)
        onehot = np.zeros((self._n.size, sums.shape[0]))
        onehot[inv, np.arange(sums.shape[0])] = 1.0
        self._U = onehot @ _outer_rows(sums, sums)                     # (sizes, k^2)
        self._S = (M.T @ M).reshape(-1)
        self._nf = self._n.astype(float)

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        from .correlation import _BoundCompSymm

        return isinstance(residual.correlation, _BoundCompSymm) and \
            residual.variance is None and residual.log_w is None

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """As :meth:`WhitenedGram.value`."""
        got = self._evaluate(phi)
        return None if got is None else (got[0].reshape(self.k, self.k), got[1])

    def _evaluate(self, phi):
        """``(vec A, log|V|, rho, big)``, ``big = 1 - rho + n rho`` per group size; None
        outside the positive definite range."""
        cor = self.residual.correlation
        uc, _ = self.residual.split(np.asarray(phi, dtype=float))
        rho = cor.rho(uc)
        big = 1.0 - rho + self._nf * rho
        if not rho < 1.0 or not (big > 0.0).all():
            return None
        A = (self._S - (rho / big) @ self._U) / (1.0 - rho)
        logdet = float(self._count @ ((self._nf - 1.0) * np.log1p(-rho) + np.log(big)))
        return A, logdet, rho, big

    def vjp(self, phi: np.ndarray):
        r"""As :meth:`WhitenedGram.vjp`, in closed form: ``d a_n / d\rho = 1 / big_n^2``
        (``big_n = 1 - \rho + n \rho``), so

        .. math:: \frac{dA}{d\rho} = \frac{A - \sum_n U_n / big_n^2}{1 - \rho}, \qquad
                  \frac{d \log|C|}{d\rho} = \sum_n c_n (n - 1)
                  \Bigl(\frac{1}{big_n} - \frac{1}{1 - \rho}\Bigr),

        ``c_n`` the groups of size ``n``, and ``d\rho / du = (\rho - \rho_{min})
        (1 - \rho) / (1 - \rho_{min})`` of the structure's logistic scale."""
        got = self._evaluate(phi)
        if got is None:
            return None
        A, logdet, rho, big = got
        drho = self.residual.correlation.rho_slope(rho)
        dA = (A - (1.0 / (big * big)) @ self._U) / (1.0 - rho)
        dlogdet = float(self._count @ ((self._nf - 1.0) * (1.0 / big - 1.0 / (1.0 - rho))))

        def pullback(G):
            if not self.residual.n_cor:
                return np.zeros(0)
            return np.array([(float(dA @ G.reshape(-1)) + dlogdet) * drho])

        return A.reshape(self.k, self.k), logdet, pullback

    @property
    def analytic_gradient(self) -> bool:
        """:meth:`vjp` needs no whitening."""
        return True


def gram_plan(residual: BoundResidual, M: np.ndarray):
    """The cheapest way to ``A = M' V^{-1} M`` for ``residual`` (module docstring)."""
    if BandedGram.applies(residual):
        return BandedGram(residual, M)
    if CompSymmGram.applies(residual):
        return CompSymmGram(residual, M)
    if ScaledCompSymmGram.applies(residual):
        return ScaledCompSymmGram(residual, M)
    if PatternGram.applies(residual):
        return PatternGram(residual, M)
    if GroupGram.applies(residual):
        return GroupGram(residual, M)
    return WhitenedGram(residual, M)


class MarkovWhitening:
    r"""``(W M, log|V|)`` for a fixed ``M`` under a Markov correlation (AR(1), CAR(1)),
    with any variance function and prior weights: the whitened row ``j`` (after ``p(j)``
    in time within its group) is

    .. math:: \tilde m_j = a_j m_j - b_j m_{p(j)}, \qquad
              a_j = \frac{e_j}{s_j}, \quad b_j = \frac{r_j e_{p(j)}}{s_j},

    ``s_j = sqrt(1 - r_j^2)`` (``a = e``, ``b = 0`` on a group's first row), so with the
    rows ``m_{p(j)}`` gathered once per fit an evaluation is two scalings of ``M`` --
    the LMM with a residual model whitens its compact ``[Z X~ y~]`` this way at every
    evaluation.
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.M = M
        cor = self._cor = residual.correlation
        n = M.shape[0]
        self._scaled = residual.variance is not None or residual.log_w is not None
        self._lags, lag_of = np.unique(cor._lag, return_inverse=True)
        self._count = np.bincount(lag_of.ravel(), minlength=self._lags.size).astype(float)
        # per row: 0 on a group's first row, 1 + lag class otherwise
        self._cls = np.zeros(n, dtype=np.int64)
        self._cls[cor._rows] = lag_of.ravel() + 1
        self._prev = np.arange(n)
        self._prev[cor._rows] = cor._prev
        self._M_prev = np.zeros_like(M)
        self._M_prev[cor._rows] = M[cor._prev]
        #: without a variance function the scaling is fixed (prior weights, or none):
        #: ``e M``, ``e_{p(j)} m_{p(j)}`` and its ``log|V|`` part made once
        self._fixed_scale = residual.variance is None
        if self._fixed_scale:
            log_d = residual.log_sd(np.zeros(residual.n_par))
            self._logdet_w = 0.0 if log_d is None else 2.0 * float(log_d.sum())
            if log_d is not None:
                e = np.exp(-log_d)
                self._Ms = M * e[:, None]
                self._Ps = self._M_prev * e[self._prev][:, None]
            else:
                self._Ms, self._Ps = M, self._M_prev
        #: one lag and a fixed scaling: ``W M = e M + (1/s - 1) [j not first] e M - (r/s)
        #: P`` with ``P`` the scaled previous rows (zero on first rows): scalars only
        self._one_lag = None
        if self._fixed_scale and self._lags.size == 1:
            self._one_lag = float(self._lags[0])
            self._n_after = float(self._count[0])
            self._Ms_after = self._Ms * (self._cls > 0)[:, None]

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        return isinstance(residual.correlation, _MarkovMixin)

    def __call__(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        res = self.residual
        phi = np.asarray(phi, dtype=float)
        uc, _ = res.split(phi)
        phi_c, _ = self._cor.markov_phi(uc)
        if self._one_lag is not None:
            # one lag, no variance function: r, 1/s and log|C| on Python floats, and
            # three passes over M
            r = phi_c ** self._one_lag
            one_minus = 1.0 - r * r
            if not one_minus > 0.0:
                return None
            s_inv = 1.0 / math.sqrt(one_minus)
            out = self._Ms_after * (s_inv - 1.0)
            out += self._Ms
            out -= (r * s_inv) * self._Ps
            return out, self._logdet_w + self._n_after * math.log(one_minus)
        r = phi_c ** self._lags
        one_minus = 1.0 - r * r
        if not (one_minus > 0.0).all():
            return None
        inv_s = 1.0 / np.sqrt(one_minus)
        a = np.concatenate([[1.0], inv_s])[self._cls]
        b = np.concatenate([[0.0], r * inv_s])[self._cls]
        logdet = float(self._count @ np.log(one_minus))
        if self._scaled:
            log_d = res.log_sd(phi)
            e = np.exp(-log_d)
            b = b * e[self._prev]
            a = a * e
            logdet += 2.0 * float(log_d.sum())
        return a[:, None] * self.M - b[:, None] * self._M_prev, logdet


def whitening_plan(residual: BoundResidual, M: np.ndarray):
    """``phi -> (W M, log|V|)`` (None where not positive definite) for a fixed ``M``:
    :class:`MarkovWhitening`, :class:`~.arma_whitening.ArmaWhitening` or
    :class:`ScaleWhitening` where it applies, else the residual model's whitening."""
    if MarkovWhitening.applies(residual):
        return MarkovWhitening(residual, M)
    if ArmaWhitening.applies(residual):
        return ArmaWhitening(residual, M)
    if residual.correlation is None:
        return ScaleWhitening(residual, M)
    return lambda phi: residual.whiten(phi, M)


class ScaleWhitening:
    """``(W M, log|V|)`` without a correlation: ``W = diag(1 / d_j)``, ``d_j`` the
    standard-deviation factors of the variance function and prior weights, so ``W M`` is
    ``M`` with its rows scaled and ``log|V| = 2 sum_j log d_j`` (as
    :meth:`~.residual.BoundResidual.whiten`, without its split and wrappers)."""

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.M = M

    def __call__(self, phi: np.ndarray) -> tuple[np.ndarray, float]:
        log_d = self.residual.log_sd(phi)
        if log_d is None:
            return self.M, 0.0
        return self.M * np.exp(-log_d)[:, None], 2.0 * float(log_d.sum())

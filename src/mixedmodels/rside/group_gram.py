r"""``A = M' V^{-1} M`` and its gradient with every group padded to one batch.

Where groups do not share factors (:mod:`.patterns`: irregular times, gaps) or rows are
scaled by a variance function, the whitening of :class:`~.correlation.BoundCorrelation`
factors one batch per group size -- a handful of Cholesky factors, solves and log
determinants per evaluation, each a numpy call that costs more than its arithmetic for
groups of a few rows. Padding every group to the largest size ``m`` with an identity block,

.. math:: \bar C_i = \begin{pmatrix} C_i & 0 \\ 0 & I \end{pmatrix}, \qquad
          \bar C_i = \bar L_i \bar L_i', \quad \bar L_i = \mathrm{diag}(L_i, I),

leaves ``log|C_i|`` and the whitened rows unchanged (the padding rows of ``M_i`` are zero,
so are their whitened rows), and makes the evaluation one batched factorization, one
inverse and one product for all groups. The gradient follows as in
:class:`~.gram.PatternGram`, per group instead of per pattern: with ``T_i = \bar L_i^{-1}``,
``W_i = T_i D_i^{-1} M_i`` and ``G = df/dA``,

.. math:: \frac{df}{du_j} = \sum_i \bigl\langle T_i' (\mathrm{diag}(v_i) - W_i G W_i')
          T_i,\; \partial \bar C_i / \partial u_j \bigr\rangle, \qquad
          \frac{df}{dl_r} = 2 - 2\, (D^{-1} M)_r \cdot (T_i' W_i G)_r,

``v_i`` the group's valid slots, ``l_r`` a row's log standard-deviation factor (variance
function and prior weights). Used for structures that differentiate their matrices
(``matrix_derivatives``: ARMA) when the padding at most doubles the work.
"""

from __future__ import annotations

import numpy as np

from .patterns import sorted_grid
from .residual import BoundResidual

__all__ = ["GROUP_GRAM_MAX_PADDING", "GROUP_GRAM_MAX_SIZE", "GroupGram"]

#: Largest group for the padded batch (beyond it a group's factorization outweighs the
#: per-call cost the batch saves).
GROUP_GRAM_MAX_SIZE = 64
#: Most padded matrix elements, ``G m^2``, relative to the groups' own ``sum s_i^2``.
GROUP_GRAM_MAX_PADDING = 2.0


class GroupGram:
    """``A`` and ``log|V|`` from one padded batch of all groups (module docstring).

    Parameters
    ----------
    residual : BoundResidual
    M : ndarray (n, k)
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        self.residual = residual
        self.k = M.shape[1]
        cor = self._cor = residual.correlation
        blocks = cor.blocks
        key = np.asarray(cor.pattern_key(), dtype=float)
        rows, _ = sorted_grid(blocks, key[:, None] if key.ndim == 1 else key)
        m = rows.shape[1]
        valid = np.arange(m)[None, :] < blocks.sizes[:, None]             # (G, m)
        self._rows, self._valid = rows, valid
        self._flat = rows[valid]                     # the rows in slot order (each once)
        self._vf = valid.astype(float)
        self._pair = self._vf[:, :, None] * self._vf[:, None, :]         # valid x valid
        self._tri = np.tri(m)
        self._pad = np.zeros((rows.shape[0], m, m))
        self._pad[:, np.arange(m), np.arange(m)] = 1.0 - self._vf         # identity pads
        self._geometry = [cor.geometry(rows)]
        self._M = M
        self._Mb = M[rows] * self._vf[:, :, None]                         # (G, m, k)
        self._scaled = residual.variance is not None or residual.log_w is not None

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """A smooth structure with ``matrix_derivatives`` and a pattern key, groups of at
        most :data:`GROUP_GRAM_MAX_SIZE` rows, padding within
        :data:`GROUP_GRAM_MAX_PADDING`."""
        cor = residual.correlation
        if cor is None or residual.kinked or not hasattr(cor, "matrix_derivatives") \
                or cor.pattern_key() is None:
            return False
        sizes = cor.blocks.sizes.astype(float)
        m = float(sizes.max())
        return m <= GROUP_GRAM_MAX_SIZE and \
            sizes.size * m * m <= GROUP_GRAM_MAX_PADDING * float(sizes @ sizes)

    @property
    def analytic_gradient(self) -> bool:
        """:meth:`vjp` costs a few batched products (no per-size loop)."""
        return True

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(A, log|V|)``, or None where a correlation matrix is not positive definite."""
        got = self._evaluate(np.asarray(phi, dtype=float))
        return None if got is None else got[:2]

    def _evaluate(self, phi, C=None):
        """``(A, log|V|, state)``; ``C`` the structure's padded matrices when the caller
        has them (:meth:`vjp`)."""
        res = self.residual
        uc, _ = res.split(phi)
        u = self._cor.full(uc)
        logdet = 0.0
        Mb, e = self._Mb, None
        if self._scaled:
            log_d = res.log_sd(phi)
            e = np.exp(-log_d)[self._rows]                                # (G, m)
            Mb = Mb * e[:, :, None]
            logdet = 2.0 * float(np.sum(log_d))
        if C is None:
            C = self._cor.matrices(u, self._geometry)[0]
        C = C * self._pair + self._pad
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return None
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        T = np.linalg.inv(L) * self._tri              # exactly lower triangular
        W = np.matmul(T, Mb)
        Wr = W.reshape(-1, self.k)
        return Wr.T @ Wr, logdet, (u, Mb, T, W)

    def vjp(self, phi: np.ndarray):
        """``(A, log|V|, pullback)``: ``pullback(G)`` gives ``df/dphi`` (module
        docstring); None as :meth:`value`."""
        phi = np.asarray(phi, dtype=float)
        res = self.residual
        C = dC = None
        both = getattr(self._cor, "matrices_and_derivatives", None)
        if both is not None and res.n_cor:
            # ARMA: the matrices come with their derivatives from the same passes
            (C,), (dC,) = both(self._cor.full(res.split(phi)[0]), self._geometry)
        got = self._evaluate(phi, C)
        if got is None:
            return None
        A, logdet, (u, Mb, T, W) = got

        def pullback(G):
            WG = np.matmul(W, G)                                           # (G, m, k)
            Tt = np.swapaxes(T, 1, 2)
            parts = []
            if res.n_cor:
                R = np.matmul(WG, np.swapaxes(W, 1, 2))
                Q = np.matmul(np.matmul(Tt, self._pad_diag - R), T) * self._pair
                D = dC if dC is not None else \
                    self._cor.matrix_derivatives(u, self._geometry)[0]     # (n_u, G, m, m)
                parts.append(D.reshape(u.size, -1) @ Q.reshape(-1))
            if res.n_var:
                dMb = np.matmul(Tt, WG)                  # (1/2) df/d(D^{-1} M), padded
                dl = np.empty(res.n)
                dl[self._flat] = 2.0 - 2.0 * np.sum(Mb * dMb, axis=2)[self._valid]
                _, uv = res.split(phi)
                parts.append(res.variance.log_sd_jacobian(uv).T @ dl)
            return np.concatenate(parts) if parts else np.zeros(0)

        return A, logdet, pullback

    @property
    def _pad_diag(self) -> np.ndarray:
        """``diag(v_i)`` of every group, ``(G, m, m)``."""
        if "_diag" not in self.__dict__:
            m = self._vf.shape[1]
            self._diag = np.zeros((self._vf.shape[0], m, m))
            self._diag[:, np.arange(m), np.arange(m)] = self._vf
        return self._diag

r"""The exact gradient of an R-side LMM's criterion through its dense cross-product.

On the dense factorization the criterion of
:class:`~.objective.RSideLMMObjective` depends on the residual parameters ``phi`` only
through the cross-product of the dense rows ``D = [Z X~ y~]`` (``n x N``,
``N = q + p + 1``) and ``log|V|``:

.. math:: A(\phi) = D' V(\phi)^{-1} D, \qquad
          \Omega = T' A T + \operatorname{diag}(I_q, 0), \qquad T = \operatorname{diag}(\Lambda, I),

``d = log|Omega_s| + c log r^2 + log|V| + const`` (``s = q + p`` and ``c = n - p`` for
REML, ``s = q`` and ``c = n`` for ML, ``r^2`` the Schur complement of ``Omega``'s last
row; with a known sigma ``r^2 / sigma^2`` in place of ``c log r^2``). With
``B = L^{-1}`` for the Cholesky factor ``L`` of ``Omega`` and ``rho = B' e_N`` (so that
``d r^2 / d Omega = r^2 rho rho'``),

.. math:: \frac{\partial d}{\partial \Omega} = G_\Omega =
          \begin{bmatrix} B_s' B_s & 0 \\ 0 & 0 \end{bmatrix} + c\, \rho \rho', \qquad
          \frac{\partial d}{\partial A} = T\, G_\Omega\, T',

``B_s' B_s = Omega_s^{-1}`` (``B_s`` the inverse of ``L``'s leading block), and
``c = r^2 / sigma^2`` when sigma is known
(:meth:`~mixedmodels.linalg.dense.DenseSystem.criterion_weight`); the gradient in
``theta`` is ``2 <A T G_Omega, dT/dtheta>``
(:meth:`~mixedmodels.linalg.dense.DenseSystem.weight_gradient`).

The gradient in ``phi`` is the residual plan's pullback of ``dd/dA``: the closed-form
cross-products of compound symmetry and Markov correlations
(:mod:`.dense_gram`'s ``vjp``, the plans the values come from) or, without a
correlation, :class:`ScaledRowsGram`. No ``(n, N)`` whitened matrix and its derivative
are formed per evaluation, as the whitening gradient does
(:meth:`~.objective.RSideLMMObjective._whitened_value_and_gradient`, the path of every
other residual model); the factor adds ``O(N^3 / 3)`` (a Cholesky inverse).
"""

from __future__ import annotations

import numpy as np

from ..linalg.dense import flat_z_positions
from .dense_gram import dense_rows
from .residual import BoundResidual

__all__ = ["GRAM_GRADIENT_MAX_ENTRIES", "PAIR_PRODUCTS_MAX_ENTRIES", "ScaledRowsGram"]

#: Largest ``n N`` (rows times the width of the dense rows) for which
#: :class:`ScaledRowsGram` or :class:`~.scaled_cs_gram.ScaledCompSymmGram` holds the
#: dense rows (16 MB here); beyond, the whitening gradient.
GRAM_GRADIENT_MAX_ENTRIES = 2 ** 21
#: Largest ``n c^2`` (rows times the squared width of the compact rows) for which
#: :class:`ScaledRowsGram` keeps each row's column products and their positions (two
#: arrays of that many entries); beyond, it gathers ``G`` per row at every evaluation.
PAIR_PRODUCTS_MAX_ENTRIES = 2 ** 20


class ScaledRowsGram:
    r"""``phi -> (A, log|V|, pullback)`` of a residual model without correlation (a
    variance function, prior weights): ``V = diag(e^{2 l_j})``, so
    ``A = \sum_j e^{-2 l_j} d_j d_j'`` and, with ``G = dd/dA``,

    .. math:: \frac{dd}{dl_j} = 2 - 2\, e^{-2 l_j} d_j' G d_j,

    the quadratic form read on the row's own columns (its levels' and ``[X~ y~]``'s:
    ``c`` of them, the compact row), ``O(n c^2)`` rather than the ``O(n N^2)`` of the
    dense rows; then ``dl / du`` of the variance function.
    """

    def __init__(self, residual: BoundResidual, design, M: np.ndarray,
                 zslices: list[slice]):
        self.residual = residual
        self._D = dense_rows(design, M, zslices)
        self._M = M
        # every compact column's position among the dense rows' columns, per row (the
        # dense layout's flat positions in an array of width 0: the columns alone)
        cols, off = [], 0
        n = M.shape[0]
        for t in design.terms:
            cols.append(flat_z_positions(t.grouping.codes, t.p, off, 0).reshape(n, t.p))
            off += t.q
        cols.append(np.broadcast_to(design.q + np.arange(design.p + 1), (n, design.p + 1)))
        pos = np.hstack(cols)                                         # (n, c)
        self._pairs = (pos[:, :, None], pos[:, None, :])
        c = pos.shape[1]
        self._products = None
        if n * c * c <= PAIR_PRODUCTS_MAX_ENTRIES:
            # d_j' G d_j = e^{-2 l_j} sum_ab m_ja m_jb G[pos_ja, pos_jb]: the products
            # m_ja m_jb and the flat positions of G's entries do not depend on phi (a
            # flat take and one row-wise dot: 4 + 3 us on sleepstudy, against 20 us for
            # the two-index gather and 13 for the three-operand einsum)
            width = self._D.shape[1]
            self._products = ((M[:, :, None] * M[:, None, :]).reshape(n, c * c),
                              (pos[:, :, None] * width + pos[:, None, :]).reshape(n, c * c))

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """No correlation (the caller keeps the dense rows within
        :data:`GRAM_GRADIENT_MAX_ENTRIES`)."""
        return residual.correlation is None

    def vjp(self, phi: np.ndarray):
        """As :meth:`~.gram.WhitenedGram.vjp` (never None: no correlation)."""
        res = self.residual
        log_d = res.log_sd(phi)
        if log_d is None:
            Dw, logdet = self._D, 0.0
        else:
            Dw, logdet = self._D * np.exp(-log_d)[:, None], 2.0 * float(log_d.sum())
        A = Dw.T @ Dw

        def pullback(G):
            if not res.n_var:
                return np.zeros(0)
            if self._products is None:
                quad = np.einsum("ia,iab,ib->i", self._M, G[self._pairs], self._M)
            else:
                products, flat = self._products
                quad = np.einsum("ij,ij->i", products, G.ravel().take(flat))
            if log_d is not None:
                quad *= np.exp(-2.0 * log_d)
            _, uv = res.split(phi)
            return res.variance.log_sd_jacobian(uv).T @ (2.0 - 2.0 * quad)

        return A, logdet, pullback

r"""``A = M' V^{-1} M`` of compound symmetry with scaled rows, in closed form.

With a variance function or prior weights, ``V = E^{-1} C E^{-1}`` (``E = diag(e)``,
``e_j = 1 / d_j`` the inverse standard-deviation factors, ``C`` block-diagonal with
``C_g = (1 - \rho) I + \rho J``). The scaled rows ``w_j = e_j m_j`` are what
:class:`~.gram.CompSymmGram` reads on unscaled data; with their group sums ``s_g`` and
``b_g = 1 - \rho + n_g \rho``,

.. math:: A = \frac{W_c}{1 - \rho} + \sum_g \frac{s_g s_g'}{n_g b_g}, \qquad
          W_c = \sum_j (w_j - \bar w_{g(j)})(w_j - \bar w_{g(j)})',

``log|V| = 2 sum_j log d_j + sum_g (n_g - 1) log(1 - rho) + log b_g``. Both parts of
``A`` are positive semi-definite with positive coefficients, so nothing cancels near
either end of ``rho``'s range: the rows scaled once, summed per group, and two ``k x k``
products, ``O(n k^2)``.

The gradient needs no whitening either. With ``G = df/dA`` and ``H = C^{-1} W``, whose
row ``j`` is ``(w_j - \bar w_{g(j)}) / (1 - \rho) + s_{g(j)} / (n_g b_g)``,

.. math:: \frac{df}{d l_j} = 2 - 2\, (H G)_j \cdot w_j

for the log standard-deviation factors ``l_j = log d_j``, chained to the variance
parameters by the variance function's Jacobian; and

.. math:: \frac{df}{d\rho} = \frac{\langle G, W_c\rangle}{(1 - \rho)^2}
          - \sum_g \frac{(n_g - 1)\, s_g' G s_g}{n_g b_g^2}
          + \sum_g (n_g - 1) \Bigl(\frac{1}{b_g} - \frac{1}{1 - \rho}\Bigr),

chained by the structure's ``d\rho / du``. The value alone stays the structure's
closed-form whitening, which takes fewer numpy calls. gls with compound symmetry and a
variance power (sleepstudy, 180 rows): the gradient 221-237 -> 66-75 us (the value
25-27 us), so quasi-Newton replaces BOBYQA
(:mod:`~mixedmodels.fitting.gls_quasi_newton`).
"""

from __future__ import annotations

import math

import numpy as np

from .residual import BoundResidual

__all__ = ["ScaledCompSymmGram"]


class ScaledCompSymmGram:
    """``phi -> (A, log|V|)`` and its pullback for compound symmetry with a variance
    function or prior weights (module docstring), on any fixed rows ``M`` (``gls``'s
    ``[X~ y~]`` or an LMM's dense ``[Z X~ y~]``).

    Parameters
    ----------
    residual : BoundResidual
        Compound symmetry with row scaling.
    M : ndarray (n, k)
    """

    def __init__(self, residual: BoundResidual, M: np.ndarray):
        # (imported here: gram's plan list imports this module)
        from .gram import WhitenedGram

        self.residual = residual
        cor = self._cor = residual.correlation
        self._M = M
        self.k = M.shape[1]
        sizes = cor.blocks.sizes
        self._codes = cor.blocks.codes
        self._sizes = sizes.astype(float)
        self._n_minus_1 = self._sizes - 1.0
        #: sum_g (n_g - 1): the multiplicity of log(1 - rho) in log|C|
        self._n_within = float(self._n_minus_1.sum())
        # the rows in group order once: reduceat sums contiguous runs
        self._order = None if cor._grouped else cor._by_group
        self._starts = cor._group_starts
        # the value alone by the structure's closed-form whitening: two elementwise passes
        # over the rows, fewer numpy calls than the sums and products the pullback needs
        self._whitened = WhitenedGram(residual, M)

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        """Compound symmetry whose rows are scaled (variance function or prior weights),
        with the variance function's Jacobian for the gradient (or none to estimate)."""
        from .correlation import _BoundCompSymm

        if not isinstance(residual.correlation, _BoundCompSymm):
            return False
        if residual.variance is None:
            return residual.log_w is not None
        return residual.variance.has_jacobian

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """As :meth:`~.gram.WhitenedGram.value` (by whitening)."""
        return self._whitened.value(phi)

    def vjp(self, phi: np.ndarray):
        """As :meth:`~.gram.WhitenedGram.vjp`, in closed form (module docstring)."""
        res = self.residual
        phi = np.asarray(phi, dtype=float)
        uc, uv = res.split(phi)
        rho = self._cor.rho(uc)
        if not rho < 1.0:
            return None
        big = 1.0 - rho + self._sizes * rho                       # b_g
        if not (big > 0.0).all():
            return None
        log_d = res.log_sd(phi)
        W = self._M * np.exp(-log_d)[:, None]
        rows = W if self._order is None else W.take(self._order, axis=0)
        sums = np.add.reduceat(rows, self._starts, axis=0)         # (G, k)
        centred = W - (sums / self._sizes[:, None]).take(self._codes, axis=0)
        Wc = centred.T @ centred
        scaled_sums = sums / (self._sizes * big)[:, None]          # s_g / (n_g b_g)
        one_minus = 1.0 - rho
        A = Wc / one_minus + scaled_sums.T @ sums
        logdet = 2.0 * float(log_d.sum()) + self._n_within * math.log1p(-rho) \
            + float(np.log(big).sum())

        def pullback(G):
            parts = []
            if res.n_cor:
                # (three-operand einsum loops naively: a product and a row sum)
                quad = ((sums @ G) * sums).sum(axis=1)
                df = (float(np.vdot(G, Wc)) / (one_minus * one_minus)
                      - float((self._n_minus_1 / (self._sizes * big * big)) @ quad)
                      + float(self._n_minus_1 @ (1.0 / big - 1.0 / one_minus)))
                parts.append(np.array([df * self._cor.rho_slope(rho)]))
            if res.n_var:
                H = centred / one_minus + scaled_sums.take(self._codes, axis=0)
                dl = 2.0 - 2.0 * ((H @ G) * W).sum(axis=1)
                parts.append(res.variance.log_sd_jacobian(uv).T @ dl)
            return np.concatenate(parts) if parts else np.zeros(0)

        return A, logdet, pullback

    @property
    def analytic_gradient(self) -> bool:
        """:meth:`vjp` needs no whitening."""
        return True

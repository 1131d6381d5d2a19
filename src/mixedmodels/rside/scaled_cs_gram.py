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
either end of ``rho``'s range. An evaluation scales the rows once, sums them per group
and forms two ``k x k`` products: ``O(n k^2)``, without factorizing or whitening a group.

The gradient needs no whitening either. With ``G = df/dA`` and ``H = C^{-1} W``, whose
row ``j`` is ``(w_j - \bar w_{g(j)}) / (1 - \rho) + s_{g(j)} / (n_g b_g)``,

.. math:: \frac{df}{d l_j} = 2 - 2\, (H G)_j \cdot w_j

for the log standard-deviation factors ``l_j = log d_j``, chained to the variance
parameters by the variance function's Jacobian; and

.. math:: \frac{df}{d\rho} = \frac{\langle G, W_c\rangle}{(1 - \rho)^2}
          - \sum_g \frac{(n_g - 1)\, s_g' G s_g}{n_g b_g^2}
          + \sum_g (n_g - 1) \Bigl(\frac{1}{b_g} - \frac{1}{1 - \rho}\Bigr),

chained by the structure's ``d\rho / du``. gls with compound symmetry and a variance
power (sleepstudy, 180 rows): a value 26 -> ~10 us, the gradient 211 -> ~20 us, so
quasi-Newton replaces BOBYQA (:mod:`~mixedmodels.fitting.gls_quasi_newton`).
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
        self.residual = residual
        cor = self._cor = residual.correlation
        self._M = M
        self.k = M.shape[1]
        sizes = cor.blocks.sizes
        self._codes = cor.blocks.codes
        self._sizes = sizes.astype(float)
        self._n_minus_1 = self._sizes - 1.0
        # the rows in group order once: reduceat sums contiguous runs
        self._order = None if cor._grouped else cor._by_group
        self._starts = cor._group_starts

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

    def _evaluate(self, phi):
        """``(A, log|V|, state)`` or None where ``rho`` leaves the positive definite
        range; ``state`` what the pullback reuses."""
        res = self.residual
        phi = np.asarray(phi, dtype=float)
        uc, _ = res.split(phi)
        rho = self._cor.rho(uc)
        if not rho < 1.0:
            return None
        big = 1.0 - rho + self._sizes * rho                       # b_g
        if not (big > 0.0).all():
            return None
        log_d = res.log_sd(phi)
        e = np.exp(-log_d)
        W = self._M * e[:, None]
        rows = W if self._order is None else W.take(self._order, axis=0)
        sums = np.add.reduceat(rows, self._starts, axis=0)         # (G, k)
        means = sums / self._sizes[:, None]
        centred = W - means.take(self._codes, axis=0)
        Wc = centred.T @ centred
        scaled_sums = sums / (self._sizes * big)[:, None]          # s_g / (n_g b_g)
        one_minus = 1.0 - rho
        A = Wc / one_minus + scaled_sums.T @ sums
        logdet = 2.0 * float(log_d.sum()) + float(
            self._n_minus_1 @ np.full(big.size, math.log1p(-rho)) + np.log(big).sum())
        return A, logdet, (rho, big, W, sums, centred, scaled_sums, Wc)

    def value(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        """As :meth:`~.gram.WhitenedGram.value`."""
        got = self._evaluate(phi)
        return None if got is None else got[:2]

    __call__ = value

    def vjp(self, phi: np.ndarray):
        """As :meth:`~.gram.WhitenedGram.vjp` (module docstring for the formulas)."""
        got = self._evaluate(phi)
        if got is None:
            return None
        A, logdet, (rho, big, W, sums, centred, scaled_sums, Wc) = got
        res = self.residual
        phi = np.asarray(phi, dtype=float)
        one_minus = 1.0 - rho

        def pullback(G):
            parts = []
            if res.n_cor:
                cor = self._cor
                inf = cor._inf
                drho = (rho - inf) * one_minus / (1.0 - inf)
                # (three-operand einsum loops naively: a product and a row sum)
                quad = ((sums @ G) * sums).sum(axis=1)
                df = (float(np.vdot(G, Wc)) / (one_minus * one_minus)
                      - float((self._n_minus_1 / (self._sizes * big * big)) @ quad)
                      + float(self._n_minus_1 @ (1.0 / big - 1.0 / one_minus)))
                parts.append(np.array([df * drho]))
            if res.n_var:
                H = centred / one_minus + scaled_sums.take(self._codes, axis=0)
                dl = 2.0 - 2.0 * ((H @ G) * W).sum(axis=1)
                _, uv = res.split(phi)
                parts.append(res.variance.log_sd_jacobian(uv).T @ dl)
            return np.concatenate(parts) if parts else np.zeros(0)

        return A, logdet, pullback

    @property
    def analytic_gradient(self) -> bool:
        """:meth:`vjp` needs no whitening."""
        return True

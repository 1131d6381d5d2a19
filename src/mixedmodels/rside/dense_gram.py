r"""The dense cross-product of an R-side LMM in closed form, without whitening any row.

:class:`~.objective.RSideLMMObjective` on the dense factorization needs, at every
evaluation, ``A = D' V^{-1} D`` and ``log|V|`` for the fixed dense rows
``D = [Z X~ y~]`` (``n x s``, ``s = q + p + 1``). For two correlations ``A`` is a
combination of a few ``s x s`` matrices fixed by ``D``, with coefficients that are
scalar functions of the correlation parameter -- so an evaluation is one small
matrix-vector product instead of whitening the ``n`` compact rows, spreading them over the
dense ``Z`` and multiplying ``n s^2`` numbers.

**Compound symmetry** (groups ``g`` of ``n_g`` rows, ``C_g = (1 - \rho) I + \rho J``):
with the group means ``\bar d_g`` and ``b_g = 1 - \rho + n_g \rho``,
``C_g^{-1} = (I - \rho J / b_g) / (1 - \rho)`` gives

.. math:: A = \frac{W}{1 - \rho} + \sum_n \frac{B_n}{b_n}, \qquad
          W = \sum_j (d_j - \bar d_{g(j)})(d_j - \bar d_{g(j)})', \quad
          B_n = \sum_{g: n_g = n} n\, \bar d_g \bar d_g',

``log|C| = sum_g (n_g - 1) log(1 - rho) + log b_g``. Both parts are positive
semi-definite with positive coefficients on ``(-1 / (m - 1), 1)``: nothing cancels, near
either end of the range (the row whitening ``(d_j - c \bar d_g) / sqrt(1 - \rho)``,
``c = 1 - sqrt((1 - \rho) / b_g)``, loses digits in ``1 - c`` as ``rho -> 1``).

**Markov correlations** (AR(1), CAR(1): row ``j`` after ``k = p(j)`` in its group, lag
class ``l``, ``r_l = \phi^{lag_l}``): the whitened row is ``(d_j - r d_k) / sqrt(1 - r^2)``
(a group's first row unchanged), and with per class

.. math:: E = \sum (d_j d_j' - d_k d_k'), \quad P = \sum d_k d_k', \quad
          \Delta = \sum (d_j - d_k)(d_j - d_k)', \quad \Sigma = \sum (d_j + d_k)(d_j + d_k)',

.. math:: A = F + \sum_l \Bigl[\frac{E}{1 + r} + \frac{1 - r}{1 + r} P
              + \frac{r}{1 - r^2} \Delta\Bigr]
            = F + \sum_l \Bigl[\frac{E}{1 - r} + \frac{1 + r}{1 - r} P
              - \frac{r}{1 - r^2} \Sigma\Bigr],

``F`` the first rows' ``\sum d d'``; the first form for ``r >= 0``, the second for
``r < 0``: again every coefficient is bounded except the one of ``\Delta`` (``\Sigma``),
a scatter of differences (sums) that the whitening would have formed row by row.
``log|C| = sum_l n_l log(1 - r_l^2)``.

Prior weights (no variance function) scale the rows once: ``D`` becomes
``diag(1 / d) D`` and ``log|V|`` gains ``2 sum log d``. The numbers equal the whitened
rows' product to rounding (tests/test_rsfix_dense_gram.py against the dense Cholesky of
``V``), in another order: BOBYQA's path may move at that level.
"""

from __future__ import annotations

import math

import numpy as np

from ..design import Design
from ..linalg.dense import flat_z_positions
from .residual import BoundResidual

__all__ = [
    "DENSE_GRAM_MAX_CLASSES",
    "DenseCompSymmGram",
    "DenseMarkovGram",
    "dense_gram_plan",
    "dense_rows",
]

#: Most fixed ``s x s`` matrices (one plus the group sizes of compound symmetry, one plus
#: four per lag class of a Markov correlation: eight lag classes) for which the closed
#: form is used: each costs ``s^2`` per evaluation, against ``n s^2`` for the whitened
#: rows' product plus the whitening -- a CAR(1) with a distinct lag on nearly every row is
#: whitened row by row, as before.
DENSE_GRAM_MAX_CLASSES = 33

_dot = np.dot


def dense_rows(design: Design, M: np.ndarray, zslices: list[slice]) -> np.ndarray:
    """``[Z X~ y~]`` (``n x (q + p + 1)``) of the compact ``M = [Z_1 .. Z_K, X~, y~]``,
    each term's values at its rows' level columns (the dense system's layout)."""
    n, m = M.shape[0], design.p + 1
    width = design.q + m
    D = np.zeros((n, width))
    flat = D.reshape(-1)
    off = 0
    for t, sl in zip(design.terms, zslices, strict=True):
        flat[flat_z_positions(t.grouping.codes, t.p, off, width)] = M[:, sl].ravel()
        off += t.q
    D[:, design.q:] = M[:, -m:]
    return D


def _fixed_scale(residual: BoundResidual, D: np.ndarray) -> tuple[np.ndarray, float]:
    """``D`` with its rows divided by the prior weights' standard-deviation factors, and
    their ``2 sum log d`` (``D`` itself and 0 without weights)."""
    log_d = residual.log_sd(np.zeros(residual.n_par))
    if log_d is None:
        return D, 0.0
    return D * np.exp(-log_d)[:, None], 2.0 * float(log_d.sum())


def _outer_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``sum_j a_j b_j'`` as a flat ``s^2`` vector (``b = a`` when omitted)."""
    return (a.T @ (a if b is None else b)).reshape(-1)


class DenseCompSymmGram:
    """``phi -> (A, log|V|)`` of compound symmetry (module docstring), into one reused
    array. None where ``rho`` leaves the positive definite range."""

    def __init__(self, residual: BoundResidual, D: np.ndarray):
        self.residual = residual
        cor = self._cor = residual.correlation
        D, self._logdet_w = _fixed_scale(residual, D)
        blocks = cor.blocks
        sizes = blocks.sizes
        # the group sums by the structure's own reduceat over the rows sorted by group
        sums = np.add.reduceat(D if cor._grouped else D[cor._by_group],
                               cor._group_starts, axis=0)
        means = sums / sizes[:, None]
        centred = D - means[blocks.codes]
        # B_n = sum_g n mean_g mean_g' = sum_g sum_g sum_g' / n, per distinct size
        self._n = sizes[:1] if cor._equal_sizes else np.unique(sizes)
        parts = [_outer_sum(centred)]
        for n_g in self._n.tolist():
            sg = sums if cor._equal_sizes else sums[sizes == n_g]
            parts.append(_outer_sum(sg) / n_g)
        self._stack = np.array(parts)                            # (1 + sizes, s^2)
        self._nf = self._n.astype(float)
        self._count = np.bincount(sizes)[self._n].astype(float)
        #: one group size: rho's coefficients and log|C| on Python floats
        self._one = (float(self._nf[0]), float(self._count[0])) if self._n.size == 1 \
            else None
        self._coef = np.empty(1 + self._n.size)
        self._s = D.shape[1]

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        from .correlation import _BoundCompSymm

        cor = residual.correlation
        return isinstance(cor, _BoundCompSymm) and residual.variance is None and \
            (cor._equal_sizes
             or 1 + np.unique(cor.blocks.sizes).size <= DENSE_GRAM_MAX_CLASSES)

    def __call__(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        uc, _ = self.residual.split(phi)
        rho = self._cor.rho(uc)
        if not rho < 1.0:
            return None
        coef = self._coef
        if self._one is not None:
            n_g, count = self._one
            big = 1.0 - rho + n_g * rho
            if not big > 0.0:
                return None
            coef[0] = 1.0 / (1.0 - rho)
            coef[1] = 1.0 / big
            logdet = count * ((n_g - 1.0) * math.log1p(-rho) + math.log(big))
            return _dot(coef, self._stack).reshape(self._s, self._s), \
                self._logdet_w + logdet
        big = 1.0 - rho + self._nf * rho
        if not (big > 0.0).all():
            return None
        coef[0] = 1.0 / (1.0 - rho)
        np.divide(1.0, big, out=coef[1:])
        A = _dot(coef, self._stack).reshape(self._s, self._s)
        logdet = float(_dot(self._count, (self._nf - 1.0) * math.log1p(-rho)
                            + np.log(big)))
        return A, self._logdet_w + logdet

    def vjp(self, phi: np.ndarray):
        r"""``(A, log|V|, pullback)`` as :meth:`~.gram.WhitenedGram.vjp`, in closed form:
        with ``b_n = 1 - \rho + n \rho``,

        .. math:: \frac{dA}{d\rho} = \frac{W}{(1 - \rho)^2}
                  - \sum_n \frac{(n - 1) B_n}{b_n^2}, \qquad
                  \frac{d \log|C|}{d\rho} = \sum_n c_n (n - 1)
                  \Bigl(\frac{1}{b_n} - \frac{1}{1 - \rho}\Bigr),

        ``c_n`` the groups of size ``n``; ``d\rho / du`` of the structure's logistic
        scale, ``(\rho - \rho_{min})(1 - \rho) / (1 - \rho_{min})``."""
        got = self(phi)
        if got is None:
            return None
        A, logdet = got
        uc, _ = self.residual.split(phi)
        rho = self._cor.rho(uc)
        big = 1.0 - rho + self._nf * rho
        dcoef = np.concatenate([[1.0 / (1.0 - rho) ** 2], -(self._nf - 1.0) / (big * big)])
        dlogdet = float(self._count @ ((self._nf - 1.0) * (1.0 / big - 1.0 / (1.0 - rho))))
        drho = self._cor.rho_slope(rho)
        n_cor = self.residual.n_cor

        def pullback(G):
            if not n_cor:
                return np.zeros(0)
            dA = float(dcoef @ (self._stack @ G.reshape(-1)))
            return np.array([(dA + dlogdet) * drho])

        return A, logdet, pullback


class DenseMarkovGram:
    """``phi -> (A, log|V|)`` of an AR(1) / CAR(1) correlation (module docstring). None
    where some ``|r| >= 1``."""

    def __init__(self, residual: BoundResidual, D: np.ndarray):
        self.residual = residual
        cor = self._cor = residual.correlation
        D, self._logdet_w = _fixed_scale(residual, D)
        rows, prev = cor._rows, cor._prev
        if cor._one_lag is not None:
            # equally spaced times: one lag class (np.unique's result without its sort)
            self._lags, lag_of = np.array([cor._one_lag]), np.zeros(rows.size, np.intp)
        else:
            self._lags, lag_of = np.unique(cor._lag, return_inverse=True)
            lag_of = lag_of.ravel()
        self._count = np.bincount(lag_of, minlength=self._lags.size).astype(float)
        first = np.ones(D.shape[0], dtype=bool)
        first[rows] = False
        parts = [_outer_sum(D[first])]
        for cls in range(self._lags.size):
            sel = lag_of == cls
            dj, dk = D[rows[sel]], D[prev[sel]]
            pk = _outer_sum(dk)
            parts += [_outer_sum(dj) - pk, pk, _outer_sum(dj - dk), _outer_sum(dj + dk)]
        self._stack = np.array(parts)                       # (1 + 4 classes, s^2)
        self._coef = np.zeros(len(parts))
        self._coef[0] = 1.0
        #: ``(lag, rows in the class)`` as Python floats
        self._classes = list(zip(self._lags.tolist(), self._count.tolist(), strict=True))
        self._s = D.shape[1]

    @staticmethod
    def applies(residual: BoundResidual) -> bool:
        from .correlation import _MarkovMixin

        cor = residual.correlation
        return isinstance(cor, _MarkovMixin) and residual.variance is None and \
            (cor._one_lag is not None
             or 1 + 4 * np.unique(cor._lag).size <= DENSE_GRAM_MAX_CLASSES)

    def __call__(self, phi: np.ndarray) -> tuple[np.ndarray, float] | None:
        uc, _ = self.residual.split(phi)
        phi_c, _ = self._cor.markov_phi(uc)
        coef = self._coef
        logdet = self._logdet_w
        for cls, (lag, count) in enumerate(self._classes):
            r = phi_c ** lag
            one_minus = 1.0 - r * r
            if not one_minus > 0.0:
                return None
            base = 1 + 4 * cls
            # (element by element: a slice assignment converts a tuple first)
            if r >= 0.0:
                coef[base] = 1.0 / (1.0 + r)
                coef[base + 1] = (1.0 - r) / (1.0 + r)
                coef[base + 2] = r / one_minus
                coef[base + 3] = 0.0
            else:
                coef[base] = 1.0 / (1.0 - r)
                coef[base + 1] = (1.0 + r) / (1.0 - r)
                coef[base + 2] = 0.0
                coef[base + 3] = -r / one_minus
            logdet += count * math.log(one_minus)
        return _dot(coef, self._stack).reshape(self._s, self._s), logdet

    def vjp(self, phi: np.ndarray):
        r"""``(A, log|V|, pullback)`` as :meth:`~.gram.WhitenedGram.vjp`, in closed form:
        per lag class (``r = \phi^{lag}``), for ``r >= 0``

        .. math:: \frac{d}{dr}\Bigl(\frac{1}{1 + r}, \frac{1 - r}{1 + r},
                  \frac{r}{1 - r^2}\Bigr) = \Bigl(-\frac{1}{(1 + r)^2},
                  -\frac{2}{(1 + r)^2}, \frac{1 + r^2}{(1 - r^2)^2}\Bigr)

        (for ``r < 0`` the second form's ``1 / (1 - r)^2``, ``2 / (1 - r)^2`` and
        ``-(1 + r^2) / (1 - r^2)^2``), ``d log(1 - r^2) / dr = -2 r / (1 - r^2)``,
        ``dr / d\phi = lag\, \phi^{lag - 1}`` and the structure's ``d\phi / du``."""
        got = self(phi)
        if got is None:
            return None
        A, logdet = got
        uc, _ = self.residual.split(phi)
        phi_c, dphi = self._cor.markov_phi(uc)
        dcoef = np.zeros(self._coef.size)
        dlogdet = 0.0
        for cls, (lag, count) in enumerate(self._classes):
            r = phi_c ** lag
            one_minus = 1.0 - r * r
            # dr/dphi (0^0 = 1: a lag of 1 at phi = 0)
            dr = lag * phi_c ** (lag - 1.0) * dphi
            base = 1 + 4 * cls
            if r >= 0.0:
                dcoef[base] = -1.0 / (1.0 + r) ** 2 * dr
                dcoef[base + 1] = -2.0 / (1.0 + r) ** 2 * dr
                dcoef[base + 2] = (1.0 + r * r) / one_minus ** 2 * dr
            else:
                dcoef[base] = 1.0 / (1.0 - r) ** 2 * dr
                dcoef[base + 1] = 2.0 / (1.0 - r) ** 2 * dr
                dcoef[base + 3] = -(1.0 + r * r) / one_minus ** 2 * dr
            dlogdet += count * (-2.0 * r / one_minus) * dr
        n_cor = self.residual.n_cor

        def pullback(G):
            if not n_cor:
                return np.zeros(0)
            return np.array([float(dcoef @ (self._stack @ G.reshape(-1))) + dlogdet])

        return A, logdet, pullback


def dense_gram_plan(design: Design, residual: BoundResidual, M: np.ndarray,
                    zslices: list[slice]):
    """The closed-form ``phi -> (A, log|V|)`` of the dense cross-product for ``residual``
    on ``design``'s rows (``M`` the compact ``[Z_1 .. Z_K, X~, y~]``), or None where
    neither applies."""
    for plan in (DenseCompSymmGram, DenseMarkovGram):
        if residual.correlation is not None and plan.applies(residual):
            return plan(residual, dense_rows(design, M, zslices))
    return None

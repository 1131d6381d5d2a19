r"""A well-conditioned basis for the fixed-effects columns, so criteria never cancel.

The cross-products ``[Z X y]' W [Z X y]`` are formed once per fit and every criterion is
read off the Cholesky factor of their Schur complements. When a column of ``X`` (or ``y``)
carries a large constant -- a response around 1e7, a predictor such as a year or a
coordinate around 1e5 -- those products are ``O(shift^2)`` and the Schur complement
``y'Wy - ...`` that gives the residual sum of squares loses ``2 log10(shift)`` digits:
the REML criterion of ``y + 1e7`` comes out 12 units *below* the true minimum.

The fix is an exact reparameterization. With the weighted QR decomposition
``W^{1/2} X = Q R`` (``R`` upper triangular with a positive diagonal) the columns
``X~ = X R^{-1}`` are ``W``-orthonormal (``X~' W X~ = I``), and ``X beta = X~ (R beta)``.
The response enters as the residual of the weighted least-squares fit on ``X``,

.. math:: \tilde y = y - X~ c, \qquad c = X~' W y,

computed with one step of iterative refinement, so ``X beta - y = X~ (R beta - c) -
\tilde y``: every penalized least-squares criterion is unchanged, and ``beta`` follows
from the coefficient ``g`` on ``X~`` as ``beta = R^{-1} (g + c)``. Only the REML
determinant depends on the basis: ``R_X = R~_X R``, so

.. math:: \log|R_X|^2 = \log|\tilde R_X|^2 + \log|R|^2,

a constant (lme4's REML criterion is invariant to shifting a predictor when the model has
an intercept, ``|R|`` unchanged, but not to rescaling one; adding ``log|R|^2`` back keeps
lme4's numbers exactly). The covariance factor maps as ``R_X^{-1} = R^{-1} \tilde R_X^{-1}``
(upper triangular times upper triangular).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

__all__ = ["MIN_RELATIVE_PIVOT", "FixedBasis"]

#: A diagonal element of ``R`` below this fraction of the largest means the weighted
#: columns are numerically dependent; the identity basis is used instead (the rank checks
#: of the design have already reported such columns, so this is a safety net only).
MIN_RELATIVE_PIVOT = 1e-13


@dataclass(frozen=True)
class FixedBasis:
    """``X~ = X R^{-1}`` with ``X~' W X~ = I`` (see the module docstring).

    Attributes
    ----------
    R : ndarray (p, p)
        Upper triangular with a positive diagonal (the identity if ``X`` is degenerate).
    R_inv : ndarray (p, p)
        Its inverse (kept: mapping back is then one small product per evaluation).
    X : ndarray (n, p)
        The transformed columns ``X~``.
    log_det_R2 : float
        ``log|R|^2``: add it to ``log|R~_X|^2`` to get the REML determinant of the user's
        ``X``.
    """

    R: np.ndarray
    R_inv: np.ndarray
    X: np.ndarray
    log_det_R2: float

    @classmethod
    def of(cls, X: np.ndarray, weights: np.ndarray | None = None,
           qr: np.ndarray | None = None) -> FixedBasis:
        """Basis of ``X`` (n x p) under the prior ``weights`` (None: unit weights).

        ``qr``: LAPACK ``dgeqrf``'s output for ``X`` itself, already made (the design's
        rank check: :func:`~mixedmodels.design.fixed.take_rank_factor`); used instead of
        factoring again when there are no weights (it is the same call on the same
        numbers)."""
        X = np.asarray(X, dtype=float)
        p = X.shape[1]
        if p == 0:
            return cls(np.zeros((0, 0)), np.zeros((0, 0)), X, 0.0)
        Xw = X if weights is None else X * np.sqrt(weights)[:, None]
        if Xw.shape[0] < p:
            return cls._identity(X)
        if qr is not None and weights is None and qr.shape == X.shape:
            info = 0            # (the rank check refuses a failed factorization)
        else:
            # LAPACK directly, and array methods rather than numpy functions: small models
            # are fitted thousands of times (bootstrap), and wrappers cost more than the work
            qr, _, _, info = lapack.dgeqrf(Xw)
        R = np.triu(qr[:p]) if p > 8 else qr[:p].copy()
        if p <= 8:
            for i in range(1, p):          # below the diagonal: Householder vectors
                R[i, :i] = 0.0
        return cls._from_r(R, X, info)

    @classmethod
    def from_triangular(cls, R: np.ndarray) -> FixedBasis:
        """Basis from the triangular factor ``R`` of ``W^{1/2} X`` computed elsewhere.

        For rows that are never in memory together: the ``R`` of a tall matrix is the
        ``R`` of the stacked ``R``'s of its row chunks (a tall-skinny QR), so chunks can
        be reduced one by one. The basis then holds no rows (``X`` has shape (0, p));
        :meth:`transform` maps each chunk's ``X`` to ``X~``.

        Parameters
        ----------
        R : ndarray (p, p)
            Upper triangular (any signs on the diagonal).

        Returns
        -------
        FixedBasis
        """
        R = np.triu(np.asarray(R, dtype=float))
        if R.shape[0] == 0:
            return cls(np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0)), 0.0)
        return cls._from_r(R, np.zeros((0, R.shape[0])), 0)

    @classmethod
    def _from_r(cls, R: np.ndarray, X: np.ndarray, info: int) -> FixedBasis:
        """The basis of the triangular factor ``R`` (checks, signs, ``X~``)."""
        d = R.diagonal().tolist()          # p numbers: Python floats beat array calls
        ad = [abs(v) for v in d]
        if info != 0 or not min(ad) > MIN_RELATIVE_PIVOT * max(ad):   # NaN fails too
            return cls._identity(X)
        if min(d) < 0:
            R *= np.sign(d)[:, None]       # positive diagonal: R_X = R~_X R is Cholesky's
        if X.shape[0]:
            Xt, info_t = lapack.dtrtrs(R, X.T, lower=0, trans=1)   # R^{-T} X'
        else:
            Xt, info_t = X.T, 0                                    # no rows held here
        R_inv, info_i = lapack.dtrtri(R, lower=0)
        if info_t != 0 or info_i != 0:
            return cls._identity(X)
        # (dtrtri leaves the zero lower triangle of R in place)
        return cls(R, R_inv, np.ascontiguousarray(Xt.T), 2.0 * sum(map(math.log, ad)))

    @classmethod
    def _identity(cls, X: np.ndarray) -> FixedBasis:
        """The trivial basis (``X`` degenerate or not finite: the design's checks report
        such columns; the factorization then sees the user's ``X`` as before)."""
        p = X.shape[1]
        return cls(np.eye(p), np.eye(p), X, 0.0)

    @property
    def p(self) -> int:
        return self.R.shape[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X R^{-1}`` for rows of the user's ``X`` (a chunk of the rows of the fit).

        Parameters
        ----------
        X : ndarray (n, p)

        Returns
        -------
        ndarray (n, p)
        """
        if not self.p:
            return np.asarray(X, dtype=float)
        return np.asarray(X, dtype=float) @ self.R_inv

    def residualize(self, y: np.ndarray, weights: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """``(y~, c)``: the weighted least-squares residual of ``y`` on ``X`` and its
        coefficients on ``X~`` (two passes: the second removes the rounding error of the
        first, which is ``eps |y|`` and would otherwise stay in ``y~``)."""
        y = np.asarray(y, dtype=float)
        c = np.zeros(self.p)
        r = y.copy()
        if not self.p:
            return r, c
        Xw = self.X if weights is None else self.X * weights[:, None]
        for _ in range(2):
            step = Xw.T @ r
            r -= self.X @ step
            c += step
        return r, c

    def to_user(self, coef: np.ndarray) -> np.ndarray:
        """``beta = R^{-1} coef`` for a coefficient vector on ``X~``."""
        return self.R_inv @ coef

    def from_user(self, beta: np.ndarray) -> np.ndarray:
        """Coefficient on ``X~`` of the user's ``beta``: ``R beta``."""
        return self.R @ beta

    def rx_inv_to_user(self, rx_inv: np.ndarray) -> np.ndarray:
        """``R_X^{-1} = R^{-1} R~_X^{-1}`` (both upper triangular)."""
        return self.R_inv @ rx_inv

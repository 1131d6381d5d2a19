r"""A well-conditioned basis for the fixed effects of every linear predictor.

A predictor far from zero (an age of 20..80, a year, a coordinate in the thousands, or
the square of one) makes the columns of a component's ``X`` nearly collinear with the
intercept: ``X' W X`` has a condition number of ``1e6`` or more. Two things then go wrong
in the raw coordinates ``beta``: the quasi-Newton method needs twice the gradients (its
metric is far from the objective's), and the finite-difference Hessian that gives the
standard errors takes steps that are either far too long in the direction of the squared
predictor's coefficient (a step of ``2e-5`` moves ``eta`` by ``2e-5 * 80^2``) or lost in
rounding in others -- standard errors off by ``2e-3`` relative.

The fix is the exact reparameterization lmer uses (:class:`~mixedmodels.linalg.FixedBasis`),
per component: with the QR decomposition ``W^{1/2} X = Q R`` under the prior weights
``W``, the columns

.. math:: \tilde X = \sqrt{N}\, X R^{-1}, \qquad \tilde X' W \tilde X = N I,
          \quad N = \textstyle\sum_i w_i,

are orthogonal with the root mean square of a unit predictor, so ``\tilde\beta = R\beta /
\sqrt{N}`` is on the scale of the linear predictor and ``X\beta = \tilde X\tilde\beta``.
The objective is unchanged; the optimizer and the Hessian work on ``\tilde\beta``; the
results map back exactly. With ``x = T\tilde x`` (``T`` block diagonal: ``\sqrt N R^{-1}``
on each fixed-effects block, the identity on covariance and family parameters),

.. math:: g = T^{-\prime}\tilde g, \qquad H = T^{-\prime}\tilde H\,T^{-1}, \qquad
          V = T\,\tilde V\,T'.

Blocks that are held fixed or bounded keep the identity (a bound on ``beta_j`` is not a
bound on any one ``\tilde\beta_k``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ...linalg import FixedBasis

__all__ = ["LayoutBasis", "fixed_effects_basis", "objective_in_basis"]


@dataclass(frozen=True)
class LayoutBasis:
    """``x = T x~`` on full layout vectors (see the module docstring).

    Attributes
    ----------
    size : int
        Length of the layout vector.
    blocks : tuple of (slice, ndarray, ndarray, ndarray)
        Per reparameterized fixed-effects block: its position, ``T_b = sqrt(N) R^{-1}``,
        ``T_b^{-1} = R / sqrt(N)`` and the transformed columns ``X~ = X T_b``.
    """

    size: int
    blocks: tuple

    @property
    def is_identity(self) -> bool:
        return not self.blocks

    def to_user(self, xt: np.ndarray) -> np.ndarray:
        """``x = T x~``."""
        x = np.array(xt, dtype=float)
        for sl, T, _, _ in self.blocks:
            x[sl] = T @ xt[sl]
        return x

    def from_user(self, x: np.ndarray) -> np.ndarray:
        """``x~ = T^{-1} x``."""
        xt = np.array(x, dtype=float)
        for sl, _, T_inv, _ in self.blocks:
            xt[sl] = T_inv @ x[sl]
        return xt

    def matrix(self) -> np.ndarray:
        """``T`` as a dense (size x size) matrix."""
        T = np.eye(self.size)
        for sl, Tb, _, _ in self.blocks:
            T[sl, sl] = Tb
        return T

    def inverse_matrix(self) -> np.ndarray:
        """``T^{-1}`` as a dense matrix."""
        T = np.eye(self.size)
        for sl, _, Tb_inv, _ in self.blocks:
            T[sl, sl] = Tb_inv
        return T


def fixed_effects_basis(obj) -> LayoutBasis:
    """The basis of the fixed-effects blocks of a
    :class:`~mixedmodels.objective.laplace.LaplaceObjective` (identity where a block is
    fixed, bounded, empty or numerically rank deficient)."""
    layout = obj.layout
    w = None if obj.weights is None else np.asarray(obj.weights, dtype=float)
    if w is not None and (w.shape != (obj.n,) or not np.all(np.isfinite(w))
                          or np.any(w < 0)):
        w = None
    total = float(obj.n if w is None else np.sum(w))
    blocks = []
    for _, X, _, name in obj._linear:
        if name not in layout or not X.shape[1] or not total > 0:
            continue
        b = layout.block(name)
        if np.any(b.fixed) or np.any(np.isfinite(b.lower)) or np.any(np.isfinite(b.upper)):
            continue
        fb = FixedBasis.of(X, w)
        if np.array_equal(fb.R, np.eye(fb.p)) and fb.log_det_R2 == 0.0:
            continue                      # degenerate: FixedBasis fell back to identity
        scale = np.sqrt(total)
        blocks.append((layout.slice(name), fb.R_inv * scale, fb.R / scale, fb.X * scale))
    return LayoutBasis(layout.size, tuple(blocks))


def objective_in_basis(obj, basis: LayoutBasis):
    """A view of ``obj`` whose fixed-effects blocks are ``x~`` (its ``X`` replaced by
    ``X~``): value and gradient at ``x~`` are those of ``obj`` at ``T x~`` and ``T' g``,
    computed without forming ``T x~``. It shares ``obj``'s random-effects structure and
    factorization workspace (so it is cheap), hence its own last-solution reference is
    cleared on both."""
    view = copy.copy(obj)
    new_X = {sl.start: Xt for sl, _, _, Xt in basis.blocks}
    view._linear = [(j, new_X.get(obj.layout.slice(name).start, X) if name in obj.layout
                     else X, off, name) for j, X, off, name in obj._linear]
    view._ref = None
    obj._ref = None
    view.n_evals = view.n_grads = view.n_newton = 0
    return view

r"""Expected information of the covariance parameters from the inner Hessian's inverse.

For the working linear mixed model of the Laplace approximation -- linear predictor
``eta = A u``, ``A = Z Lambda`` over the random-effects channels, working covariance
``V = W^{-1} + A A'`` -- the expected information of minus twice the log-likelihood in
the covariance parameters is ``I_ij = tr(V^{-1} dV_i V^{-1} dV_j)``. Where a term's
``dLambda_j = Lambda M_j`` (:func:`~.objective._relative_jacobian`: square, well
conditioned ``Lambda``), ``dV_j = A S_j A'`` with ``S_j = M_j + M_j'`` acting on the
term's effects level by level, and Woodbury's identity ``A' V^{-1} A = I - H^{-1}``
(``H = I + A'WA``, the inner Hessian the engine has factored at the modes) gives

.. math:: I_{ij} = \operatorname{tr}(G S_i G S_j), \qquad G = I - H^{-1},

sums over the levels of products of ``p x p`` blocks: no further solve, no gradient. It is
positive semi-definite (a Gram matrix of ``G^{1/2} S_j G^{1/2}``), exact in expectation
for a Gaussian response, and within a factor of a few of the observed Hessian for the
structured Poisson and binomial fixtures at their starts -- what the quasi-Newton method
needs of its first inverse Hessian (:func:`~mixedmodels.fitting.laplace_fit.
start_inverse_hessian`), where forward differences of the gradient cost one gradient per
covariance parameter.

Terms without a relative Jacobian (reduced rank, singular ``Lambda``) and the blocked
kernel of large crossed designs are left out: :func:`theta_information` reports which
parameters it covers.
"""

from __future__ import annotations

import numpy as np

from .hessian import BlockDiagonalHessian, DenseHessian
from .objective import _relative_jacobian

__all__ = ["theta_information"]


def _term_shapes(obj, x: np.ndarray):
    """Per term with a relative Jacobian: ``(term slot, layout positions, S)`` with ``S``
    (k, p, p) the symmetrized relative derivatives."""
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        st = ts.term.structure
        theta = x[sl]
        dlam = st.lambda_jacobian(theta)
        if not dlam.shape[0]:
            continue
        rel = _relative_jacobian(st.lambda_(theta), dlam)
        if rel is None:
            continue
        out.append((ts, np.arange(sl.start, sl.stop), rel + np.swapaxes(rel, 1, 2)))
    return out


def _block_diagonal(kernel: BlockDiagonalHessian, shapes):
    """``T_j = G S_j`` per level on the slots (levels, P, p_t) and the slots of each."""
    Hinv = kernel.inverse_blocks()
    P = Hinv.shape[1]
    G = np.eye(P)[None] - Hinv
    parts = []
    for ts, _, S in shapes:
        Gt = G[:, :, ts.slots]                                  # (levels, P, p)
        parts.append((ts.slots, np.einsum("lab,jbc->jlac", Gt, S)))
    # tr(G S_i G S_j) = sum_l sum_{a in slots_j, b in slots_i} T_i[a, b] T_j[b, a]
    return _traces(parts, lambda T, rows: T[:, :, rows, :], "ilab,jlba->ij")


def _dense(kernel: DenseHessian, shapes):
    """The same with ``G = I - H^{-1}`` as one matrix (crossed terms, REML)."""
    G = -kernel.inverse()
    pen = np.flatnonzero(kernel.s.penalty)
    G[pen, pen] += 1.0
    parts = []
    for ts, _, S in shapes:
        t = ts.term
        cols = ts.u_offset + np.arange(t.q)
        Gt = G[:, cols].reshape(G.shape[0], t.nlevels, t.p)     # (q, levels, p)
        T = np.einsum("qlb,jbc->jqlc", Gt, S).reshape(S.shape[0], G.shape[0], t.q)
        parts.append((cols, T))
    return _traces(parts, lambda T, rows: T[:, rows, :], "iab,jba->ij")


def _traces(parts, take, subscripts: str) -> np.ndarray:
    """The matrix of ``tr(T_i T_j)`` over every pair of terms' parameters: ``parts`` are
    ``(rows of the term, T)`` with ``T_j = G S_j`` restricted to the term's columns,
    ``take(T, rows)`` restricts ``T`` to the other term's rows, and ``subscripts`` is the
    einsum of the trace."""
    k = sum(T.shape[0] for _, T in parts)
    info = np.empty((k, k))
    i0 = 0
    for ri, Ti in parts:
        j0 = 0
        for rj, Tj in parts:
            info[i0:i0 + Ti.shape[0], j0:j0 + Tj.shape[0]] = np.einsum(
                subscripts, take(Ti, rj), take(Tj, ri))
            j0 += Tj.shape[0]
        i0 += Ti.shape[0]
    return info


def theta_information(obj, x: np.ndarray):
    """``(positions, I)``: the layout positions of the covariance parameters covered and
    their expected information ``I`` (see the module docstring) at ``x``, from the factor
    of ``H`` in ``obj``'s workspace (it must be at ``x``'s modes: call after a solve at
    ``x``). ``None`` when no parameter is covered."""
    kernel = obj.hessian
    if not isinstance(kernel, BlockDiagonalHessian | DenseHessian):
        return None
    shapes = _term_shapes(obj, np.asarray(x, dtype=float))
    if not shapes:
        return None
    info = _block_diagonal(kernel, shapes) if isinstance(kernel, BlockDiagonalHessian) \
        else _dense(kernel, shapes)
    positions = np.concatenate([pos for _, pos, _ in shapes])
    return positions, 0.5 * (info + info.T)

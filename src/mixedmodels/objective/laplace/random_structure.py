r"""How the random effects of every component enter the linear predictors.

The spherical random effects ``u`` (length q) of all components are laid out component by
component (``cond``, then ``zi``), term by term, level by level, the p columns of a term
consecutive -- the layout of the lme4 code. With ``b_t = Lambda_t u_t`` the random part of
the linear predictor of channel ``c`` (the density channel a component feeds: ``mu`` for
``cond``, ``zi`` for ``zi``) is

.. math:: \eta_{ic} \mathrel{+}= \sum_{t \in c} Z_t[i] \Lambda_t u_{t, \ell_t(i)}
          = \sum_{s \in \mathcal{S}(c)} a_{is}\, u_{J_{is}},

over the *slots* ``s`` of observation ``i``: one per column of every term (``P = sum_t p_t``
slots), with ``J_{is}`` the index in ``u`` of that term's column at the observation's level
and ``a_{is} = (Z_t \Lambda_t)_{i, col(s)}``. Each slot belongs to one channel, so the
Jacobian ``A_i = d eta_i / d u`` (channels x q) has the non-zeros ``a_{is}`` at
``(c_s, J_{is})``. Everything the Laplace engine needs is a gather or a ``bincount`` over
these (n, P) arrays -- no loop over observations or levels.

For REML (glmmTMB's ``REML = TRUE``: the conditional fixed effects integrated out with a
flat prior) the fixed effects of one component join the inner vector, ``v = [u, beta]``:
``p`` more slots per observation, with ``a_{is} = X_{i,j}`` and no penalty. They are
integrated in the well-conditioned basis of
:class:`~mixedmodels.linalg.FixedBasis`, ``beta = T beta~`` with ``T = sqrt(n) R^{-1}``
(``X = QR``), whose columns ``X~ = X T`` are orthogonal: with a predictor far from zero
(``x + 1000`` and its square) ``X'X`` has a condition number of ``1e12`` and more, and the
Cholesky factor of the inner Hessian loses that many digits of ``log det H`` (a REML
criterion ``1e-4`` off). The integral changes by the Jacobian only,
``int g(X beta) d beta = |det T| int g(X~ beta~) d beta~``, so the criterion in the user's
``X`` is the one in ``X~`` minus ``2 log|det T|`` (:attr:`RandomStructure.int_log_det_T`).
The inner vector and ``H`` hold ``beta~``; ``beta = T beta~`` maps the modes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...linalg import FixedBasis

__all__ = ["RandomStructure", "RandomTermSlot"]


def _integrated_basis(X):
    """``(X~, T, log|det T|)`` with ``X~ = X T``, ``T = sqrt(n) R^{-1}`` from ``X = QR``
    (identity ``T`` where :class:`~mixedmodels.linalg.FixedBasis` falls back to it)."""
    if X is None:
        return None, None, 0.0
    n, p = X.shape
    if not p or not n:
        return X, np.eye(p), 0.0
    fb = FixedBasis.of(X)
    if np.array_equal(fb.R, np.eye(p)) and fb.log_det_R2 == 0.0:
        return X, np.eye(p), 0.0            # degenerate: keep the user's columns
    scale = np.sqrt(n)
    # log|det T| = p log sqrt(n) - log|det R|, and log_det_R2 = 2 log|det R|
    return fb.X * scale, fb.R_inv * scale, p * np.log(scale) - 0.5 * fb.log_det_R2


@dataclass(frozen=True)
class RandomTermSlot:
    """One random-effects term of one component, placed in ``u`` and among the slots.

    Attributes
    ----------
    component : str
    channel : int
        Index of the component's channel among the random-effects channels.
    term : RandomEffectsTerm
    u_offset : int
        Start of the term's effects in ``u``.
    slots : slice
        The term's columns among the P slots.
    theta : slice
        The term's parameters within the flat theta vector of all components.
    """

    component: str
    channel: int
    term: object
    u_offset: int
    slots: slice
    theta: slice


class RandomStructure:
    """Random-effects terms of all components (see the module docstring).

    Parameters
    ----------
    components : sequence of (name, LinearPredictor)
        The components that have random-effects terms, in layout order.
    integrated : (name, LinearPredictor), optional
        A component whose fixed effects are integrated out (REML).
    """

    def __init__(self, components, integrated=None):
        names = [name for name, _ in components]
        if integrated is not None and integrated[0] not in names:
            names.append(integrated[0])
        self.channels: tuple[str, ...] = tuple(names)
        slots: list[RandomTermSlot] = []
        u_off = s_off = th_off = 0
        for k, (name, lp) in enumerate(components):
            for t in lp.terms:
                n_th = t.structure.n_theta
                slots.append(RandomTermSlot(name, k, t, u_off, slice(s_off, s_off + t.p),
                                            slice(th_off, th_off + n_th)))
                u_off += t.q
                s_off += t.p
                th_off += n_th
        self.terms: tuple[RandomTermSlot, ...] = tuple(slots)
        self.q_u, self.P_u, self.n_theta = u_off, s_off, th_off
        #: REML: ``X~ = X T`` of the integrated fixed effects, ``T`` (p x p) and
        #: ``log|det T|`` (see the module docstring); None, None, 0 without REML
        self.X_int, self.int_T, self.int_log_det_T = _integrated_basis(
            None if integrated is None else integrated[1].X)
        p_int = 0 if self.X_int is None else self.X_int.shape[1]
        self.q, self.P = u_off + p_int, s_off + p_int
        #: 1 for the penalized (random) entries of the inner vector, 0 for integrated beta
        # (np.concatenate: np.r_'s indexing machinery costs ~15 us, a tenth of this set-up)
        self.penalty = np.concatenate([np.ones(u_off), np.zeros(p_int)])
        self.n_channels = len(self.channels)
        n = slots[0].term.Z.shape[0] if slots else \
            (0 if self.X_int is None else self.X_int.shape[0])
        self.n = n
        self.J = np.empty((n, self.P), dtype=np.intp)
        self.slot_channel = np.empty(self.P, dtype=np.intp)
        for ts in self.terms:
            t = ts.term
            self.J[:, ts.slots] = (ts.u_offset + t.grouping.codes[:, None] * t.p
                                   + np.arange(t.p)[None, :])
            self.slot_channel[ts.slots] = ts.channel
        if p_int:
            self.J[:, s_off:] = u_off + np.arange(p_int)[None, :]
            self.slot_channel[s_off:] = names.index(integrated[0])
        #: (C, P) one-hot map of slots to channels
        self.E = (self.slot_channel[None, :] == np.arange(self.n_channels)[:, None]) \
            .astype(float)
        self._J_flat = self.J.ravel()
        self.block_diagonal = self._single_grouping()
        #: every observation has the same slots (terms of one level -- a known matrix or
        #: a spatial process over all sites -- and REML's integrated fixed effects) and
        #: one channel: ``A`` is the dense (n, P) ``a`` on the columns ``J[0]``, and its
        #: products are matrix products instead of gathers and ``bincount`` s over n P
        #: entries
        self._J0 = self.J[0].copy() if (n and self.n_channels == 1
                                         and np.all(self.J[0] == self.J)) else None

    def _single_grouping(self) -> bool:
        """Whether every term has the same grouping codes: then ``H`` is block diagonal,
        one P x P block per level (the observation's slots are its level's block)."""
        if not self.terms or self.X_int is not None:
            return False
        first = self.terms[0].term.grouping.codes
        return all(ts.term.grouping.codes is first
                   or np.array_equal(ts.term.grouping.codes, first) for ts in self.terms)

    # -- theta -> Lambda -> slot values -------------------------------------------------
    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term ``Lambda_t`` (p x p) from the flat theta of all components."""
        return [ts.term.structure.lambda_(theta[ts.theta]) for ts in self.terms]

    def slot_values(self, lams: list[np.ndarray]) -> np.ndarray:
        """``a`` (n, P): ``Z_t Lambda_t`` in each term's slots."""
        a = np.empty((self.n, self.P))
        for ts, lam in zip(self.terms, lams, strict=True):
            a[:, ts.slots] = ts.term.Z @ lam
        if self.X_int is not None:
            a[:, self.P_u:] = self.X_int
        return a

    def b_from_u(self, lams: list[np.ndarray], u: np.ndarray) -> list[np.ndarray]:
        """Random effects per term, ``b_t = Lambda_t u_t`` (levels, p)."""
        out = []
        for ts, lam in zip(self.terms, lams, strict=True):
            t = ts.term
            out.append(u[ts.u_offset:ts.u_offset + t.q].reshape(t.nlevels, t.p) @ lam.T)
        return out

    # -- products with the Jacobian A --------------------------------------------------
    def eta(self, a: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Random part of every random-effects channel's linear predictor: (n, C)."""
        if self._J0 is not None:
            return (a @ u[self._J0])[:, None]
        return (a * u[self.J]) @ self.E.T

    def apply(self, a: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``A v`` per observation and channel: (n, C)."""
        return self.eta(a, v)

    def scatter(self, a: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``A' g`` for per-observation channel values ``g`` (n, C): a q-vector."""
        if self._J0 is not None:
            out = np.zeros(self.q)
            out[self._J0] = g[:, 0] @ a
            return out
        # one channel: broadcast its column (the same products, without the (n, P)
        # gather of g[:, slot_channel]; this runs ~5 times per Laplace evaluation)
        vals = a * (g[:, :1] if self.n_channels == 1 else g[:, self.slot_channel])
        return np.bincount(self._J_flat, vals.ravel(), minlength=self.q)

    def slot_products(self, a: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Per observation ``A_i' W_i A_i`` on its slots: (n, P, P) from ``W`` (n, C, C)."""
        if self.n_channels == 1:
            # one channel: W is (n, 1, 1) and broadcasts over the slots
            return (a[:, :, None] * a[:, None, :]) * W
        Ws = W[:, self.slot_channel[:, None], self.slot_channel[None, :]]
        return a[:, :, None] * Ws * a[:, None, :]

    def channel_blocks(self, a: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``A_i B_i A_i'`` (n, C, C) for per-observation slot matrices ``B`` (n, P, P)."""
        M = a[:, :, None] * B * a[:, None, :]
        if self.n_channels == 1:
            return M.sum(axis=(1, 2))[:, None, None]
        return self.E @ M @ self.E.T

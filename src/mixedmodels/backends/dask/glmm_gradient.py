r"""The exact gradient of glmer's Laplace deviance on Dask input, for one block of effects.

:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient` (whose module docstring
has the formulas) needs, per observation, the derivatives ``g, w, W_L, W_L'`` of the
deviance at the modes, the leverages ``s_i = a_i' B_i a_i`` (``a_i`` the row of
``Z Lambda``, ``B_i`` the block of ``M^{-1}`` on observation ``i``'s effects), and the
change ``Z Lambda z`` of ``eta`` along ``z = H^{-1} Lambda' Z' r``. When every term sits
on one grouping factor (one term, or the terms PIRLS merges into its first block:
``(x || g)``, ``(1 | g) + (0 + x | g)``), ``M = I + Lambda' Z' W_L Z Lambda`` and ``H``
are block diagonal, one ``P x P`` block per level, so each of these is a per-level
reduction -- three passes over the partitions per gradient, after PIRLS's own:

1. per level, ``sum_i W_L,i a_i a_i'`` and ``sum_i w_i a_i a_i'`` (the client forms
   ``M_l``, its inverse ``B_l`` and ``H_l``);
2. per level, ``sum_i r_i a_i`` with ``r_i = W_L,i' s_i`` (the client solves for
   ``z_l = H_l^{-1} (Lambda' Z' r)_l``);
3. ``X' gamma`` with ``gamma = 2 g / phi + r - w (Z Lambda z)``, and per term
   ``K_t = Z_t' V_t`` with ``V_t = gamma u_t - g z_t + 2 W_L (B a)_t`` -- the
   derivatives in beta and, through ``d vec(Lambda_t) / d theta``, in theta.

Crossed factors couple the levels of different factors in ``M^{-1}`` (the leverages need
its entries between the levels each observation joins), which per-level sums do not
give: those models keep the derivative-free optimizer (BOBYQA) on Dask input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...objective.glmm_gradient import LaplaceGradient, _derivatives_available, row_derivatives
from ...objective.pirls import PIRLSError
from .glmm_pass import _random_part, _rows

__all__ = ["DaskLaplaceGradient", "GradientPart", "dask_gradient_supported",
           "gradient_partition"]


def dask_gradient_supported(obj) -> bool:
    """Whether :class:`DaskLaplaceGradient` applies to a ``DaskGLMMObjective``: the
    Laplace approximation with ``x = [theta, beta]`` (no quadrature, no estimated shape,
    no dispersion parameter in ``x``), a family and structures with the derivatives the
    in-memory gradient needs, and every term in PIRLS's first block."""
    if obj.nAGQ != 1 or obj.phi_block or obj.estimate_shape:
        return False
    pirls = obj.pirls
    if pirls.pattern.has_rest:
        return False
    return _derivatives_available(obj)


@dataclass
class GradientPart:
    """One partition's share of a gradient pass (summed by :func:`combine_gradient`)."""

    #: pass 1: per level sum_i W_L a a' and sum_i w a a' (l, P, P)
    SL: np.ndarray | None = None
    SH: np.ndarray | None = None
    #: pass 2: per level sum_i r_i a_i (l, P)
    Zr: np.ndarray | None = None
    #: pass 3: X' gamma (p,) and K_t per term
    Xg: np.ndarray | None = None
    K: list | None = None


def _level_sums(codes: np.ndarray, vals: np.ndarray, nlevels: int) -> np.ndarray:
    """``sum_i vals_i`` per level, for ``vals`` of any trailing shape."""
    flat = vals.reshape(vals.shape[0], -1)
    out = np.empty((nlevels, flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.bincount(codes, flat[:, j], minlength=nlevels)
    return out.reshape((nlevels, *vals.shape[1:]))


def gradient_partition(part, index: int, plan, family, R_inv: np.ndarray, state, kind: str,
                       lam: np.ndarray, stage: int, B=None, z=None, u=None,
                       phi: float = 1.0) -> GradientPart:
    """Pass ``stage`` (1, 2 or 3; module docstring) of the gradient on one partition.

    Parameters
    ----------
    state : RowState
        The modes.
    kind : str
        The Laplace weights' kind.
    lam : ndarray (P, P)
        ``Lambda`` of the block (the terms' factors on its diagonal).
    B, z, u : ndarray
        Per level ``M_l^{-1}`` (l, P, P), ``z_l`` and ``u_l`` (l, P), in the block's
        column order (passes 2 and 3).
    phi : float
    """
    rows = _rows(part, plan, R_inv)
    a_rows = rows.a
    groups = plan.block_groups[0] if plan.block_groups else (0,)
    nlev = plan.design.terms[groups[0]].nlevels
    out = GradientPart()
    if not len(a_rows.y):
        return out
    codes = a_rows.codes[groups[0]]
    Zb = np.column_stack([a_rows.Z[k] for k in groups])
    a = Zb @ lam                                              # (n, P): Z Lambda
    eta = a_rows.X @ state.beta + a_rows.offset + _random_part(a_rows, state.b)
    mu = family.link.linkinv(eta)
    prior = a_rows.prior if a_rows.prior is not None else np.ones(len(eta))
    g, w, wl, dwl, same = row_derivatives(family, kind, a_rows.y, prior, eta, mu)
    if stage == 1:
        aa = a[:, :, None] * a[:, None, :]
        out.SL = _level_sums(codes, wl[:, None, None] * aa, nlev)
        out.SH = out.SL if same else _level_sums(codes, w[:, None, None] * aa, nlev)
        return out
    Ba = np.einsum("nst,nt->ns", B[codes], a)
    r = dwl * np.einsum("ns,ns->n", a, Ba)
    if stage == 2:
        out.Zr = _level_sums(codes, r[:, None] * a, nlev)
        return out
    d_eta = np.einsum("ns,ns->n", a, z[codes])
    gamma = 2.0 * g / phi + r - w * d_eta
    out.Xg = a_rows.X.T @ gamma
    out.K, col = [], 0
    for k in groups:
        p = a_rows.Z[k].shape[1]
        sl = slice(col, col + p)
        V = (gamma[:, None] * u[codes][:, sl] - g[:, None] * z[codes][:, sl]
             + 2.0 * wl[:, None] * Ba[:, sl])
        out.K.append(a_rows.Z[k].T @ V)
        col += p
    return out


def combine_gradient(parts: list) -> GradientPart:
    """Sum of :func:`gradient_partition` results."""
    parts = [p for p in parts if p.SL is not None or p.Zr is not None or p.Xg is not None]
    if len(parts) <= 1:
        return parts[0] if parts else GradientPart()
    out = GradientPart()
    for name in ("SL", "Zr", "Xg"):
        vals = [getattr(p, name) for p in parts]
        if vals[0] is not None:
            setattr(out, name, sum(vals[1:], vals[0].copy()))
    if parts[0].SH is not None:
        # the Hessian's weights are the Laplace weights: one sum, and the client's test
        # ``SH is SL`` spares the second inverse
        same = all(p.SH is p.SL for p in parts)
        out.SH = out.SL if same else sum((p.SH for p in parts[1:]), parts[0].SH.copy())
    if parts[0].K is not None:
        out.K = [sum(ks[1:], ks[0].copy()) for ks in zip(*(p.K for p in parts), strict=True)]
    return out


class DaskLaplaceGradient(LaplaceGradient):
    """``x -> (F(x), dF/dx)`` of a ``DaskGLMMObjective`` with one block of effects
    (module docstring; :class:`LaplaceGradient` for the memo and the PIRLS solve).

    Parameters
    ----------
    obj : DaskGLMMObjective
        See :func:`dask_gradient_supported`.
    """

    def __init__(self, obj):
        # (not LaplaceGradient.__init__: its kernels hold per-row structures; the memo,
        # the PIRLS solve and the theta Jacobians are shared)
        self.obj = obj
        self.design = obj.design
        self.slices = self.design.theta_slices()
        self._jac: dict[int, np.ndarray] = {}
        self.n_grads = 0
        self._memo: dict[bytes, tuple] = {}
        merge = obj.pirls.merge
        #: the block's terms, in its column order
        self._groups = merge.groups[0] if merge is not None else (0,)
        #: where each term's effects start in u (the terms' order)
        self._u_offsets = np.concatenate([[0], np.cumsum([t.q for t in self.design.terms])])

    def _pass(self, fam, pr, lam: np.ndarray, stage: int, *extra) -> GradientPart:
        """Pass ``stage`` of :func:`gradient_partition` at the modes ``pr``; ``extra``:
        its ``B, z, u, phi`` (as far as the stage needs them)."""
        pirls = self.obj.pirls
        kind = fam.laplace_hessian if self.obj.hessian is None else self.obj.hessian
        return pirls._reduce(gradient_partition, combine_gradient, pirls.basis.R_inv,
                             pr.eta, kind, lam, stage, *extra)

    def _block(self, v: np.ndarray) -> np.ndarray:
        """A vector in the terms' order of u to the block's (l, P)."""
        cols = []
        for k in self._groups:
            t = self.design.terms[k]
            cols.append(v[self._u_offsets[k]:self._u_offsets[k + 1]].reshape(t.nlevels, t.p))
        return np.hstack(cols)

    def _gradient(self, x, pr, fam, phi: float, joint: bool = False) -> np.ndarray:
        """``dF/dx`` at the modes ``pr`` from three passes (module docstring)."""
        del joint
        design = self.design
        theta = pr.theta
        lams = self.obj.pirls.lambdas(theta)
        lam = np.zeros((sum(design.terms[k].p for k in self._groups),) * 2)
        col = 0
        for k in self._groups:
            p = design.terms[k].p
            lam[col:col + p, col:col + p] = lams[k]
            col += p
        P = lam.shape[0]
        first = self._pass(fam, pr, lam, 1)
        eye = np.eye(P)
        try:
            B = np.linalg.inv(eye + first.SL)
            Hinv = B if first.SH is first.SL else np.linalg.inv(eye + first.SH)
        except np.linalg.LinAlgError as exc:
            raise PIRLSError("the Laplace Hessian is not positive definite at the "
                             "conditional modes") from exc
        second = self._pass(fam, pr, lam, 2, B)
        z = np.einsum("lst,lt->ls", Hinv, second.Zr)
        third = self._pass(fam, pr, lam, 3, B, z, self._block(pr.u), float(phi))
        grad = np.zeros(x.size)
        grad[self.obj.layout.slice("beta.cond")] = third.Xg
        for k, K in zip(self._groups, third.K, strict=True):
            t = design.terms[k]
            if not t.structure.n_theta:
                continue
            sl = self.slices[k]
            grad[sl] = self._jacobian(k, t.structure, theta[sl]) @ K.ravel()
        return grad

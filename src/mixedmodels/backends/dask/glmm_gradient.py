r"""The exact gradients of glmer's criteria on Dask input: Laplace and nAGQ = 0.

:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient` (whose module docstring
has the formulas) needs, per observation, the derivatives ``g, w, W_L, W_L'`` of the
deviance at the modes, the leverages ``s_i = a_i' B_i a_i`` (``a_i`` the row of
``Z Lambda``, ``B_i`` the block of ``M^{-1}``, ``M = I + Lambda' Z' W_L Z Lambda``, on
observation ``i``'s effects: its *slots*), and the change ``Z Lambda z`` of ``eta`` along
``z = H^{-1} Lambda' Z' r`` (``H`` the same matrix with the observed weights ``w``; for
the nAGQ = 0 criterion, whose ``beta`` is PIRLS's joint estimate, the joint system with
``X``, solved by block elimination as in memory: :meth:`LaplaceGradient._joint_solve`).
Here those come from the summed cross-products and three passes over the partitions per
gradient, after PIRLS's own:

1. the cross-products ``[Z X~]' W_L [Z X~]`` (and with ``w`` when the weights differ);
   the client factors ``M`` (and ``H``) with PIRLS's own system and forms ``M^{-1}`` on
   the slots the rows use (:func:`slot_inverse`);
2. per level ``sum_i r_i a_i`` with ``r_i = W_L,i' s_i`` (and ``X~' r`` for nAGQ = 0); the
   client solves for ``z`` (and the fixed-effects part ``z_beta``);
3. ``X' gamma`` with ``gamma = 2 g / phi + r - w d eta`` (``d eta = Z Lambda z [+ X~
   z_beta]``), and per term ``K_t = Z_t' V_t`` with ``V_t = gamma u_t - g z_t + 2 W_L
   (B a)_t`` -- the derivatives in beta and, through ``d vec(Lambda_t) / d theta``, in
   theta.

**The slots of M^{-1}.** PIRLS's factor is ``L = [[L11, 0], [L21, L22]]``: ``L11`` per level
of the first block (the first term and the terms PIRLS merges with it), ``L22`` the dense
Cholesky factor of the Schur complement ``S`` of the scalar rest terms (crossed factors).
With ``T = S^{-1} L21``,

.. math::

    M^{-1}_{11} = L_{11}^{-T} (I + L_{21}' T) L_{11}^{-1}, \quad
    M^{-1}_{r1} = -T L_{11}^{-1}, \quad M^{-1}_{rr} = S^{-1},

and an observation of first-block level ``j`` and rest levels ``k_t`` needs the diagonal
block ``j`` of the first, the entries ``(k_t, j)`` of the second and ``(k_t, k_s)`` of the
third: the selected inverse on the pairs of levels that occur together in the data (found
once per fit by a pass: the pattern of ``Z' Z``). ``T`` is formed on those pairs only
(a block of rest rows at a time, so no ``q_r x q_1`` matrix is held), and the diagonal
blocks of ``L21' T`` are sums over the pairs of each first-block level. The cost per
gradient is one inverse of ``S`` (``q_r^3``, PIRLS factors ``S`` at every iteration) and
``nnz(L21) q_r`` flops for ``T``. With one block (every term on one grouping factor) only
the per-level blocks remain.

Not covered (:func:`dask_gradient_supported` says no, and BOBYQA runs; were PIRLS to pick
its blocked form only after the check, the gradient fails and the fitting code falls back
to BOBYQA): vector-valued terms outside the first block, and a vector-valued first block
over a crossed rest large enough for PIRLS's general blocked factorization, whose factor
has no dense ``L22`` to invert. Both would need the selected inverse of a general sparse
factor (Takahashi's recursion on its pattern), which this module does not implement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ...objective.glmm_gradient import (
    LaplaceGradient,
    Stage0Gradient,
    _derivatives_available,
    row_derivatives,
)
from ...objective.pirls import PIRLSError
from ...objective.pirls_system import PatternMatrix, PIRLSFactor
from .glmm_pass import _random_part, _rows

__all__ = ["DaskLaplaceGradient", "DaskStage0Gradient", "GradientPart", "SlotInverse",
           "dask_gradient_supported", "gradient_partition", "slot_inverse"]

#: Entries of one block of ``T = S^{-1} L21`` formed at a time (16 MB of doubles).
T_BLOCK_ENTRIES = 2_000_000


def _layout(design, groups) -> tuple[tuple, tuple, np.ndarray]:
    """``(first, rest, offsets)``: the terms of PIRLS's first block (in its column order),
    the other terms (each a scalar block, in the system's order) and where each rest
    term's levels start in the rest block."""
    first = tuple(groups[0]) if groups else (0,)
    rest = tuple(k for k in range(len(design.terms)) if k not in first)
    offs = np.concatenate([[0], np.cumsum([design.terms[k].nlevels for k in rest])])
    return first, rest, offs.astype(np.int64)


def dask_gradient_supported(obj, stage0: bool = False) -> bool:
    """Whether the Dask gradients apply to a ``DaskGLMMObjective``: for the Laplace stage
    the Laplace approximation with ``x = [theta, beta]`` (no quadrature, no estimated
    shape, no dispersion parameter in ``x``), for the nAGQ = 0 stage (``stage0``) no
    estimated shape and at least one covariance parameter; a family and structures with
    the derivatives the in-memory gradient needs; every rest term scalar (module
    docstring)."""
    if obj.estimate_shape:
        return False
    if stage0:
        if not obj.n_theta:
            return False
    elif obj.nAGQ != 1 or obj.phi_block:
        return False
    design = obj.design
    pirls = obj.pirls
    _, rest, _ = _layout(design, pirls.plan.block_groups)
    if any(design.terms[k].p != 1 for k in rest):
        return False
    # (the mode is PIRLS's choice at its first factorization: a vector-valued first block
    # over a sparse crossed rest takes the general blocked path)
    if rest and getattr(pirls.psystem, "inner", pirls.psystem).mode == "blocked":
        return False
    return _derivatives_available(obj)


# -- the client's selected inverse --------------------------------------------------------
@dataclass
class SlotInverse:
    """``M^{-1}`` on the slots the rows use (module docstring), in the system's order.

    Attributes
    ----------
    Bd : ndarray (l1, p1, p1)
        Diagonal blocks of the first block.
    pair_keys : ndarray of int64 (sorted)
        ``k * l1 + j`` of every (rest level ``k``, first-block level ``j``) pair in the
        data (``k`` counts over all rest terms).
    Br1 : ndarray (pairs, p1)
        ``M^{-1}`` at those pairs.
    S_diag : ndarray (q_r,)
        Diagonal of ``S^{-1}``.
    rr_keys : ndarray of int64 (sorted)
        ``k * q_r + k'`` (``k < k'``) of the pairs of rest levels of different terms.
    Srr : ndarray
        ``S^{-1}`` at those pairs.
    """

    Bd: np.ndarray
    pair_keys: np.ndarray
    Br1: np.ndarray
    S_diag: np.ndarray
    rr_keys: np.ndarray
    Srr: np.ndarray


def _schur_inverse(L22: np.ndarray) -> np.ndarray:
    """``S^{-1}`` from its Cholesky factor (the lower triangle of ``L22``)."""
    inv, info = lapack.dpotri(np.tril(L22), lower=1)
    if info != 0:
        raise PIRLSError("the Laplace Hessian is not positive definite at the "
                         "conditional modes")
    return np.tril(inv) + np.tril(inv, -1).T


def _t_on_pairs(Sinv: np.ndarray, L21, k: np.ndarray, j: np.ndarray, l1: int, p1: int
                ) -> np.ndarray:
    """``T = S^{-1} L21`` at the pairs ``(k, j)``: (pairs, p1), a block of rest rows at a
    time (``k`` ascending)."""
    q_r = Sinv.shape[0]
    q1 = l1 * p1
    if isinstance(L21, PatternMatrix):
        L21 = sp.csr_matrix((L21.data, (L21.rows, L21.cols)), shape=L21.shape)
        right = L21.T.tocsr()                 # (q1, q_r): T' rows come from right @ Sinv
    else:
        right = None
    out = np.empty((k.size, p1))
    step = max(1, T_BLOCK_ENTRIES // max(q1, 1))
    for start in range(0, q_r, step):
        stop = min(q_r, start + step)
        lo, hi = np.searchsorted(k, [start, stop])
        if lo == hi:
            continue
        Tb = Sinv[start:stop] @ L21 if right is None \
            else np.asarray(right @ Sinv[:, start:stop]).T               # (c, q1)
        Tb = Tb.reshape(stop - start, l1, p1)
        out[lo:hi] = Tb[k[lo:hi] - start, j[lo:hi]]
    return out


def _l21_on_pairs(L21, k: np.ndarray, j: np.ndarray, pair_keys: np.ndarray, l1: int,
                  p1: int) -> np.ndarray:
    """``L21`` at the pairs (zero where its values vanish)."""
    if isinstance(L21, PatternMatrix):              # (p1 = 1 on this path)
        out = np.zeros((k.size, 1))
        idx = _lookup(pair_keys, L21.rows.astype(np.int64) * l1 + L21.cols)
        out[idx, 0] = L21.data
        return out
    return L21.reshape(L21.shape[0], l1, p1)[k, j]


def slot_inverse(f: PIRLSFactor, l1: int, p1: int, pair_keys: np.ndarray,
                 rr_keys: np.ndarray) -> SlotInverse:
    """:class:`SlotInverse` of PIRLS's factor ``f`` of ``M`` (module docstring)."""
    if not isinstance(f, PIRLSFactor):
        # PIRLS's general blocked factorization (vector-valued rest terms)
        raise PIRLSError("the Dask gradient needs scalar crossed terms")
    L11 = f.L11
    # (p1 = 1: the diagonal as (l1, 1, 1))
    L11inv = 1.0 / L11 if p1 == 1 else np.linalg.inv(np.tril(L11))
    inner = np.broadcast_to(np.eye(p1), (l1, p1, p1)).copy()
    if f.L22 is None:
        Bd = np.matmul(L11inv.transpose(0, 2, 1), L11inv)
        return SlotInverse(Bd, pair_keys, np.zeros((0, p1)), np.zeros(0), rr_keys,
                           np.zeros(0))
    Sinv = _schur_inverse(f.L22)
    q_r = Sinv.shape[0]
    k, j = pair_keys // l1, pair_keys % l1
    T = _t_on_pairs(Sinv, f.L21, k, j, l1, p1)                      # (pairs, p1)
    L21p = _l21_on_pairs(f.L21, k, j, pair_keys, l1, p1)
    # diagonal blocks of L21' T: sums over the pairs of each first-block level
    prod = L21p[:, :, None] * T[:, None, :]
    for a in range(p1):
        for b in range(p1):
            inner[:, a, b] += np.bincount(j, prod[:, a, b], minlength=l1)
    Bd = np.matmul(np.matmul(L11inv.transpose(0, 2, 1), inner), L11inv)
    Br1 = -np.einsum("ns,nst->nt", T, L11inv[j])
    kk, kl = rr_keys // q_r, rr_keys % q_r
    return SlotInverse(Bd, pair_keys, Br1, np.diagonal(Sinv).copy(), rr_keys,
                       Sinv[kk, kl])


# -- the partitions' side -----------------------------------------------------------------
def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions of ``query`` in the sorted ``keys`` (every query is one of them)."""
    idx = np.searchsorted(keys, query)
    if idx.size and (idx.max() >= keys.size or np.any(keys[idx] != query)):
        raise PIRLSError("a pair of levels missing from the gradient's pattern")
    return idx


@dataclass
class _Slots:
    """One partition's ``a_i`` and ``(B a)_i`` per term, and the leverages."""

    a: list            # per term (n, p_t)
    Ba: list           # per term (n, p_t)
    lev: np.ndarray


def _pair_keys(a_rows, first, rest, offs, l1: int, q_r: int):
    """Per rest term ``k * l1 + j`` of every row, and per pair of rest terms
    ``min * q_r + max`` of their levels (``k`` over all rest terms)."""
    j = a_rows.codes[first[0]].astype(np.int64)
    kr = [offs[i] + a_rows.codes[t].astype(np.int64) for i, t in enumerate(rest)]
    pairs = [k * l1 + j for k in kr]
    rr = {}
    for x in range(len(kr)):
        for y in range(x + 1, len(kr)):
            rr[(x, y)] = np.minimum(kr[x], kr[y]) * q_r + np.maximum(kr[x], kr[y])
    return j, kr, pairs, rr


def _slots(a_rows, plan, lams, si: SlotInverse) -> _Slots:
    first, rest, offs = _layout(plan.design, plan.block_groups)
    l1 = si.Bd.shape[0]
    q_r = int(offs[-1])
    j, kr, pairs, rr = _pair_keys(a_rows, first, rest, offs, l1, q_r)
    A1 = np.column_stack([a_rows.Z[k] @ lams[k] for k in first])       # (n, p1)
    ar = [a_rows.Z[t][:, 0] * lams[t][0, 0] for t in rest]
    Ba1 = np.einsum("nst,nt->ns", si.Bd[j], A1)
    Bar = [si.S_diag[k] * a for k, a in zip(kr, ar, strict=True)]
    for x, (key, a) in enumerate(zip(pairs, ar, strict=True)):
        Bk = si.Br1[_lookup(si.pair_keys, key)]                         # (n, p1)
        Ba1 += Bk * a[:, None]
        Bar[x] = Bar[x] + np.einsum("ns,ns->n", Bk, A1)
    for (x, y), key in rr.items():
        s = si.Srr[_lookup(si.rr_keys, key)]
        Bar[x] = Bar[x] + s * ar[y]
        Bar[y] = Bar[y] + s * ar[x]
    lev = np.einsum("ns,ns->n", A1, Ba1)
    for a, b in zip(ar, Bar, strict=True):
        lev += a * b
    a_terms, Ba_terms, col = [None] * len(lams), [None] * len(lams), 0
    for k in first:
        p = a_rows.Z[k].shape[1]
        a_terms[k], Ba_terms[k] = A1[:, col:col + p], Ba1[:, col:col + p]
        col += p
    for t, a, b in zip(rest, ar, Bar, strict=True):
        a_terms[t], Ba_terms[t] = a[:, None], b[:, None]
    return _Slots(a_terms, Ba_terms, lev)


@dataclass
class GradientPart:
    """One partition's share of a gradient pass (summed by :func:`combine_gradient`)."""

    #: pass 1: cross-products with the Laplace weights and (when they differ) with w
    AL: object = None
    AH: object = None
    #: pass 1 (first gradient of a fit): the pairs of levels in the data
    pair_keys: np.ndarray | None = None
    rr_keys: np.ndarray | None = None
    #: pass 2: per term, per level sum_i r_i a_i (l_t, p_t); X~' r (joint)
    Zr: list | None = None
    Xr: np.ndarray | None = None
    #: pass 3: X' gamma (p,) and K_t per term
    Xg: np.ndarray | None = None
    K: list | None = None


def _level_sums(codes: np.ndarray, vals: np.ndarray, nlevels: int) -> np.ndarray:
    """``sum_i vals_i`` per level, for ``vals`` (n, m)."""
    out = np.empty((nlevels, vals.shape[1]))
    for c in range(vals.shape[1]):
        out[:, c] = np.bincount(codes, vals[:, c], minlength=nlevels)
    return out


def _gather(v: np.ndarray, off: int, t, codes: np.ndarray) -> np.ndarray:
    return v[off:off + t.q].reshape(t.nlevels, t.p)[codes]


def gradient_partition(part, index: int, plan, family, R_inv: np.ndarray, state, kind: str,
                       lams: list, stage: int, joint: bool = False, keys: bool = False,
                       si: SlotInverse | None = None, u=None, z=None, zb=None,
                       phi: float = 1.0) -> GradientPart:
    """Pass ``stage`` (1, 2 or 3; module docstring) of a gradient on one partition.

    Parameters
    ----------
    state : RowState
        The modes.
    kind : str
        The Laplace weights' kind.
    lams : list of ndarray
        ``Lambda`` of every term (the terms' order).
    joint : bool
        The nAGQ = 0 criterion (``beta`` PIRLS's joint estimate): ``X~`` columns in the
        cross-products with ``w``, ``X~' r`` in pass 2 and ``X~ z_beta`` in ``d eta``.
    keys : bool
        Pass 1 also returns the pairs of levels of the rows.
    si : SlotInverse
        Passes 2 and 3.
    u, z : ndarray (q,)
        The modes and ``z`` in the terms' order (pass 3); ``zb`` ``z_beta`` (joint).
    phi : float
    """
    rows = _rows(part, plan, R_inv)
    a_rows = rows.a
    out = GradientPart()
    if not len(a_rows.y):
        return out
    eta = a_rows.X @ state.beta + a_rows.offset + _random_part(a_rows, state.b)
    mu = family.link.linkinv(eta)
    prior = a_rows.prior if a_rows.prior is not None else np.ones(len(eta))
    g, w, wl, dwl, same = row_derivatives(family, kind, a_rows.y, prior, eta, mu)
    if stage == 1:
        cols = rows.Xt if joint else np.ones((len(eta), 1))
        out.AL = rows.pattern.compute(cols, wl)
        out.AH = None if same else rows.pattern.compute(cols, w)
        if keys:
            first, rest, offs = _layout(plan.design, plan.block_groups)
            l1 = plan.design.terms[first[0]].nlevels
            _, _, pairs, rr = _pair_keys(a_rows, first, rest, offs, l1, int(offs[-1]))
            out.pair_keys = np.unique(np.concatenate([np.zeros(0, np.int64), *pairs]))
            out.rr_keys = np.unique(np.concatenate([np.zeros(0, np.int64),
                                                    *rr.values()]))
        return out
    sl = _slots(a_rows, plan, lams, si)
    r = dwl * sl.lev
    terms = plan.design.terms
    if stage == 2:
        out.Zr = [_level_sums(a_rows.codes[k], r[:, None] * sl.a[k], t.nlevels)
                  for k, t in enumerate(terms)]
        if joint:
            out.Xr = rows.Xt.T @ r
        return out
    offs = np.concatenate([[0], np.cumsum([t.q for t in terms])])
    zt = [_gather(z, offs[k], t, a_rows.codes[k]) for k, t in enumerate(terms)]
    d_eta = sum(np.einsum("ns,ns->n", sl.a[k], zt[k]) for k in range(len(terms)))
    if joint:
        d_eta = d_eta + rows.Xt @ zb
    gamma = 2.0 * g / phi + r - w * d_eta
    if not joint:
        out.Xg = a_rows.X.T @ gamma
    out.K = []
    for k, t in enumerate(terms):
        ut = _gather(u, offs[k], t, a_rows.codes[k])
        V = gamma[:, None] * ut - g[:, None] * zt[k] + 2.0 * wl[:, None] * sl.Ba[k]
        out.K.append(a_rows.Z[k].T @ V)
    return out


def _sum(vals):
    vals = [v for v in vals if v is not None]
    return sum(vals[1:], vals[0].copy()) if vals else None


def combine_gradient(parts: list) -> GradientPart:
    """Sum of :func:`gradient_partition` results."""
    from .glmm_pass import _plus

    parts = [p for p in parts if p.AL is not None or p.Zr is not None or p.K is not None]
    if len(parts) <= 1:
        return parts[0] if parts else GradientPart()
    out = GradientPart()
    for p in parts:
        out.AL = _plus(out.AL, p.AL)
        out.AH = _plus(out.AH, p.AH)
    if parts[0].pair_keys is not None:
        out.pair_keys = np.unique(np.concatenate([p.pair_keys for p in parts]))
        out.rr_keys = np.unique(np.concatenate([p.rr_keys for p in parts]))
    if parts[0].Zr is not None:
        out.Zr = [_sum(z) for z in zip(*(p.Zr for p in parts), strict=True)]
        out.Xr = _sum([p.Xr for p in parts])
    if parts[0].K is not None:
        out.Xg = _sum([p.Xg for p in parts])
        out.K = [_sum(ks) for ks in zip(*(p.K for p in parts), strict=True)]
    return out


# -- the client ---------------------------------------------------------------------------
class DaskLaplaceGradient(LaplaceGradient):
    """``x -> (F(x), dF/dx)`` of a ``DaskGLMMObjective`` (module docstring;
    :class:`LaplaceGradient` for the memo and the PIRLS solve).

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
        #: the pairs of levels in the data (found by the first gradient's first pass)
        self._keys: tuple | None = None

    def _pass(self, fam, pr, lams, stage: int, joint: bool, **extra) -> GradientPart:
        pirls = self.obj.pirls
        kind = fam.laplace_hessian if self.obj.hessian is None else self.obj.hessian
        return pirls._reduce(gradient_partition, combine_gradient, pirls.basis.R_inv,
                             pr.eta, kind, lams, stage, joint, extra.get("keys", False),
                             extra.get("si"), extra.get("u"), extra.get("z"),
                             extra.get("zb"), float(extra.get("phi", 1.0)))

    def _factor(self, theta, A):
        f = self.obj.pirls.psystem.factor(theta, A, need_xx=False)
        if f is None:
            raise PIRLSError("the Laplace Hessian is not positive definite at the "
                             "conditional modes")
        return f

    def _gradient(self, x, pr, fam, phi: float, joint: bool = False) -> np.ndarray:
        """``dF/dx`` at the modes ``pr`` from three passes (module docstring); ``joint``:
        the nAGQ = 0 criterion (only the theta entries)."""
        from dask import delayed

        from .source import require_dask

        dask, _ = require_dask()
        obj, design = self.obj, self.design
        pirls = obj.pirls
        theta = pr.theta
        lams = pirls.lambdas(theta)
        first = self._pass(fam, pr, lams, 1, joint, keys=self._keys is None)
        if self._keys is None:
            self._keys = (first.pair_keys, first.rr_keys)
        fM = self._factor(theta, first.AL)
        fH = fM if first.AH is None else self._factor(theta, first.AH)
        p1 = sum(design.terms[k].p for k in _layout(design, pirls.plan.block_groups)[0])
        l1 = design.terms[0].nlevels
        si = slot_inverse(fM, l1, p1, *self._keys)
        (si_d,) = dask.persist(delayed(si))
        second = self._pass(fam, pr, lams, 2, joint, si=si_d)
        rhs = np.concatenate([zr.ravel() for zr in second.Zr])
        zb = None
        if joint:
            AH = first.AL if first.AH is None else first.AH
            z, zb = self._joint_solve_reduced(fH, lams, AH, rhs, second.Xr)
        else:
            z = pirls.psystem.solve_M(fH, rhs[:, None])[:, 0]
        third = self._pass(fam, pr, lams, 3, joint, si=si_d, u=pr.u, z=z, zb=zb,
                           phi=float(phi))
        grad = np.zeros(x.size)
        if not joint:
            grad[obj.layout.slice("beta.cond")] = third.Xg
        for k, (t, K) in enumerate(zip(design.terms, third.K, strict=True)):
            if not t.structure.n_theta:
                continue
            sl = self.slices[k]
            grad[sl] = self._jacobian(k, t.structure, theta[sl]) @ K.ravel()
        return grad

    def _joint_solve_reduced(self, fH, lams, A, rhs_u: np.ndarray, rhs_x: np.ndarray):
        r"""``[z_u; z_beta]`` of the joint system of the nAGQ = 0 criterion (see
        :meth:`LaplaceGradient._joint_solve`) from the cross-products ``A`` with the
        observed weights: ``G = Lambda' Z' W X~``, ``C = H^{-1} G``,
        ``S = X~' W X~ - G' C``."""
        pirls = self.obj.pirls
        p = pirls.p
        hu = pirls.psystem.solve_M(fH, rhs_u[:, None])[:, 0]
        if not p:
            return hu, np.zeros(0)
        G = pirls.lambda_t(lams, pirls._z_columns(A, slice(0, p)))
        C = pirls.psystem.solve_M(fH, G)
        schur = A.AXX[:p, :p] - G.T @ C
        zb = np.linalg.solve(schur, rhs_x - G.T @ hu)
        return hu - C @ zb, zb


class DaskStage0Gradient(DaskLaplaceGradient, Stage0Gradient):
    """``theta -> (F_0, dF_0/dtheta)`` of the nAGQ = 0 criterion on Dask input: the
    in-memory :class:`Stage0Gradient`'s evaluation with the passes of
    :class:`DaskLaplaceGradient` (``joint``)."""

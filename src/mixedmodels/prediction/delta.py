r"""Standard errors of glmmtmb predictions: TMB's delta method, as glmmTMB's
``predict(se.fit = TRUE)``.

A prediction ``\phi(x, \hat u(x))`` depends on the parameters ``x`` (fixed effects of every
component, covariance and family parameters) directly and through the conditional modes
``\hat u``. TMB's ``sdreport`` gives it the variance

.. math::

    Var(\phi) = \phi_u H^{-1} \phi_u' + \frac{d\phi}{dx} V \frac{d\phi}{dx}', \qquad
    \frac{d\phi}{dx} = \phi_x + \phi_u \frac{d\hat u}{dx},

with ``H`` the Hessian of the negative joint log-density in ``u`` at the modes (the
conditional precision of the random effects), ``V`` the covariance of the parameters
(``vcov_full``: the inverse Hessian of the Laplace log-likelihood) and ``d\hat u/dx`` from
the implicit function theorem (:mod:`mixedmodels.objective.laplace.sensitivity`). This is
the quadratic form of ``(\phi_x, \phi_u)`` with the joint covariance of ``(x, u)``: the
first term is the random effects' own uncertainty, the second carries the parameters'
uncertainty, including the covariance parameters' (which lme4's recipe ignores).

Population-level predictions (``re_form="~0"``; glmmTMB maps ``b`` to 0) have ``\phi_u = 0``
and only the second term. With ``REML=True`` the conditional fixed effects are part of
``u`` (integrated out), as in glmmTMB. A prediction of ``type`` is a function of the
channels' linear predictors at the row (``\eta_\mu``, ``\eta_{zi}``, ``\eta_\phi``); its
derivatives in them are exact for the linear predictors and central differences otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .output import PredictionParts, check_request, prediction_frame

__all__ = ["DERIVATIVE_STEP", "predict_glmmtmb", "prediction_variance"]

#: Relative step of the central differences of a prediction in the linear predictors.
DERIVATIVE_STEP = 1e-6
#: Types that are a channel's linear predictor itself (derivative exactly one).
_LINEAR_TYPES = {"link": "mu", "zlink": "zi"}


class _Rows:
    """Every component's matrices on the complete rows, aligned."""

    def __init__(self, m, newdata, re_form, allow_new_levels, offset):
        from ..objective.laplace import CHANNEL_OF_COMPONENT

        self.by_comp = m._component_rows(newdata, re_form, allow_new_levels, offset)
        first = next(iter(self.by_comp.values()))
        self.n = first.n
        self.complete = np.logical_and.reduce([r.complete for r in self.by_comp.values()])
        self.sel = {name: (np.cumsum(r.complete) - 1)[self.complete]
                    for name, r in self.by_comp.items()}
        self.channel = {name: CHANNEL_OF_COMPONENT[name] for name in self.by_comp}

    def kept(self, name: str) -> dict:
        """Term index within the component -> (mask, Z, codes) on the complete rows."""
        sel = self.sel[name]
        return {k: (mask, Z[sel], codes[sel]) for k, mask, Z, codes in self.by_comp[name].terms}

    def kriged(self, name: str) -> dict:
        """Term index within the component -> (rows, coordinates, theta) of its kriged
        rows (positions the fit did not see), ``rows`` indexing the complete rows."""
        sel = self.sel[name]
        out = {}
        for k, idx, coords, theta in self.by_comp[name].kriged:
            at = np.full(self.by_comp[name].X.shape[0], -1, dtype=np.intp)
            at[idx] = np.arange(idx.size)
            hit = np.flatnonzero(at[sel] >= 0)
            if hit.size:
                out[k] = (hit, coords[at[sel][hit]], theta)
        return out


def _etas(m, rows: _Rows) -> dict:
    N = int(rows.complete.sum())
    out = {}
    for name, r in rows.by_comp.items():
        view = m._views[name]
        out[rows.channel[name]] = r.eta(view.beta, view.random_effects)[rows.complete]
    for c in m.density.channels:
        if c not in out:
            out[c] = np.full(N, m.layout.get(m.x, f"family.{c}")[0])
    return out


def _type_gradient(m, etas: dict, type: str) -> np.ndarray:
    """``d value / d eta_c`` per row and density channel: (N, channels)."""
    channels = list(m.density.channels)
    N = len(etas["mu"])
    g = np.zeros((N, len(channels)))
    if type in _LINEAR_TYPES:
        g[:, channels.index(_LINEAR_TYPES[type])] = 1.0
        return g
    for j, c in enumerate(channels):
        h = DERIVATIVE_STEP * np.maximum(1.0, np.abs(etas[c]))
        up = dict(etas)
        dn = dict(etas)
        up[c], dn[c] = etas[c] + h, etas[c] - h
        with np.errstate(all="ignore"):
            g[:, j] = (m._values(up, type) - m._values(dn, type)) / (2.0 * h)
    return g


def _components_by_slot(m, rows: _Rows, N: int):
    """Slot coefficients ``a`` (N, P) and indices ``J`` (N, P) of the new rows in ``u``, the
    mask of slots whose level is new (N, P; ``allow_new_levels``), and the fixed-``u``
    derivatives of every channel's linear predictor in the parameters (N, channels,
    layout size)."""
    from ..objective.laplace.sensitivity import theta_slot_derivatives

    obj, x, layout = m.objective_function, m.x, m.layout
    S = obj.structure
    channels = list(m.density.channels)
    D = np.zeros((N, len(channels), layout.size))
    for name, r in rows.by_comp.items():
        j = channels.index(rows.channel[name])
        block = f"beta.{name}"
        if block in layout and r.X.shape[1]:
            D[:, j, layout.slice(block)] = r.X[rows.sel[name]]
    for c in channels:
        if f"family.{c}" in layout:
            D[:, channels.index(c), layout.slice(f"family.{c}")] = 1.0
    a = np.zeros((N, S.P))
    J = np.zeros((N, S.P), dtype=np.intp)
    new = np.zeros((N, S.P), dtype=bool)
    if not S.q:
        return a, J, new, D
    u = m.solution.u
    local = _local_term_index(S)
    kept = {name: rows.kept(name) for name in rows.by_comp}
    lams = S.lambdas(obj.theta(x))
    for ts, lam in zip(S.terms, lams, strict=True):
        entry = kept.get(ts.component, {}).get(local[ts.u_offset])
        if entry is None:
            continue
        mask, Z, codes = entry
        t = ts.term
        # a new level's slots keep their coefficients: its random effects have their
        # prior variance (see prediction_variance)
        a[:, ts.slots] = Z[:, mask] @ lam[mask, :]
        new[:, ts.slots] = (codes < 0)[:, None]
        J[:, ts.slots] = ts.u_offset + np.maximum(codes, 0)[:, None] * t.p + np.arange(t.p)
    for idx, ts, dlam in theta_slot_derivatives(obj, x):
        entry = kept.get(ts.component, {}).get(local[ts.u_offset])
        if entry is None:
            continue
        mask, Z, codes = entry
        t = ts.term
        ut = u[ts.u_offset + np.maximum(codes, 0)[:, None] * t.p + np.arange(t.p)]
        d = np.einsum("ij,ij->i", Z[:, mask] @ dlam[mask, :], ut)
        j = int(obj.re[ts.channel])
        D[:, j, idx] += np.where(codes >= 0, d, 0.0)
    if S.X_int is not None:                     # REML: the integrated fixed effects
        r = rows.by_comp["cond"]
        # in the basis the inner vector and H hold them in (X~ = X T)
        a[:, S.P_u:] = r.X[rows.sel["cond"]] @ S.int_T
        J[:, S.P_u:] = S.q_u + np.arange(S.X_int.shape[1])
    return a, J, new, D


def _kriging_parts(m, rows: _Rows, N: int):
    r"""What kriged rows add to the delta method (:func:`prediction_variance`).

    A row at a position the fit did not see has the effect ``b_new = W(theta) b + e``:
    ``W b`` is already in its ``Z`` row, ``e`` is independent of the data with the
    conditional variance ``s^2 (1 - r' R^{-1} r)`` (glmmTMB's refit with the new positions
    holds it as an extra random effect with no data), and ``W`` moves with the correlation
    parameters, ``d eta / d theta_j = (dW / d theta_j) b`` (central differences).

    Returns
    -------
    innovation : ndarray (N, channels)
        ``Var(e)`` per row, in the channel whose linear predictor the term enters.
    D : ndarray (N, channels, layout size)
        The ``dW`` part of the fixed-``u`` parameter derivatives.
    """
    obj = m.objective_function
    S = obj.structure
    channels = list(m.density.channels)
    innovation = np.zeros((N, len(channels)))
    D = np.zeros((N, len(channels), m.layout.size))
    local = _local_term_index(S)
    for ts in S.terms:
        entry = rows.kriged(ts.component).get(local[ts.u_offset]) \
            if ts.component in rows.by_comp else None
        if entry is None:
            continue
        hit, coords, theta = entry
        structure = ts.term.structure
        j = int(obj.re[ts.channel])
        innovation[hit, j] += structure.kriging_variance(theta, coords)
        codes = rows.kept(ts.component)[local[ts.u_offset]][2][hit]
        b = m.solution.b[S.terms.index(ts)][np.maximum(codes, 0)]
        start = obj.theta_index(ts).start
        for i in range(theta.size):
            h = DERIVATIVE_STEP * max(1.0, abs(theta[i]))
            up, dn = theta.copy(), theta.copy()
            up[i] += h
            dn[i] -= h
            dW = (structure.kriging_weights(up, coords)
                  - structure.kriging_weights(dn, coords)) / (2.0 * h)
            D[hit, j, start + i] += np.einsum("ij,ij->i", dW, b)
    return innovation, D


def _local_term_index(S) -> dict:
    """u offset of a structure term -> its index among its component's terms."""
    out, count = {}, {}
    for ts in S.terms:
        out[ts.u_offset] = count.get(ts.component, 0)
        count[ts.component] = out[ts.u_offset] + 1
    return out


def _slot_inverse(hessian, J: np.ndarray) -> np.ndarray:
    """``H^{-1}[J_s, J_t]`` per row: (N, P, P)."""
    if hasattr(hessian, "inverse"):
        return hessian.inverse()[J[:, :, None], J[:, None, :]]
    if hasattr(hessian, "inverse_at"):          # crossed / nested: blocked elimination
        return hessian.inverse_at(J)
    inv = hessian.inverse_blocks()
    q = int(hessian.index.max()) + 1
    level = np.zeros(q, dtype=np.intp)
    slot = np.zeros(q, dtype=np.intp)
    L, P = hessian.index.shape
    level[hessian.index.ravel()] = np.repeat(np.arange(L), P)
    slot[hessian.index.ravel()] = np.tile(np.arange(P), L)
    lev = level[J[:, 0]]
    return inv[lev[:, None, None], slot[J][:, :, None], slot[J][:, None, :]]


def prediction_variance(m, rows: _Rows, g: np.ndarray) -> np.ndarray:
    """``Var`` of the module docstring for a prediction with channel gradient ``g``."""
    obj = m.objective_function
    S = obj.structure
    N = g.shape[0]
    a, J, new, D = _components_by_slot(m, rows, N)
    innovation, D_kriged = _kriging_parts(m, rows, N)
    total = np.einsum("nc,nck->nk", g, D + D_kriged)
    var1 = np.einsum("nc,nc->n", g * g, innovation)
    if S.q:
        from ..objective.laplace.sensitivity import mode_jacobian

        dU = mode_jacobian(obj, m.x)            # leaves H factored at the optimum's modes
        coef = g[:, obj.re[S.slot_channel]] * a
        # a new level (no data) has its modes at 0 whatever the parameters and the prior's
        # identity as its conditional covariance, independent of the fitted levels:
        # glmmTMB's se.fit refits with the new rows at weight 0, which is this
        new_coef = np.where(new, coef, 0.0)
        coef = coef - new_coef
        total += np.einsum("ns,nsk->nk", coef, dU[J])
        var1 = var1 + np.einsum("ns,nst,nt->n", coef, _slot_inverse(obj.hessian, J), coef) \
            + np.einsum("ns,ns->n", new_coef, new_coef)
    V = m.fit.vcov
    if V is None:
        return np.full(N, np.nan)
    Df = total[:, m.layout.free_index]
    return var1 + np.einsum("ij,jk,ik->i", Df, V, Df)


def _gaussian_residual_variance(m, etas: dict):
    if m.family_name != "gaussian" or m.density.links["mu"].name != "identity":
        return None
    return m._values(etas, "disp") ** 2


def predict_glmmtmb(m, newdata=None, re_form=None, type: str = "link", *, se_fit=False,
                    interval=None, level=0.95, allow_new_levels=False, offset=None,
                    method="wald", nsim=500, seed=None, n_jobs=1, progress=None):
    """``m.predict`` of a glmmtmb fit with standard errors or intervals."""
    check_request(se_fit, interval, level, method)
    index = m.design.frame.index if newdata is None else pd.DataFrame(newdata).index
    if method == "boot":
        from .bootstrap import bootstrap_prediction

        gaussian = m.family_name == "gaussian" and m.density.links["mu"].name == "identity" \
            and type in ("link", "response", "conditional")
        return bootstrap_prediction(m, newdata, re_form, type, se_fit, interval, level,
                                    allow_new_levels, offset, nsim, seed, n_jobs, progress,
                                    gaussian_sd=(lambda f: f._values(f._fit_etas(), "disp"))
                                    if gaussian else None)
    rows = _Rows(m, newdata, re_form, allow_new_levels, offset)
    n, ok = rows.n, rows.complete
    if type in ("zprob", "zlink") and "zi" not in m.density.channels:
        # no zero-inflation: the value is a constant (glmmTMB: se NA)
        parts = PredictionParts(m.predict(newdata, type=type, re_form=re_form,
                                          allow_new_levels=allow_new_levels,
                                          offset=offset).to_numpy(), np.full(n, np.nan))
        return prediction_frame(parts, index, se_fit=se_fit, interval=interval, level=level)
    working = np.full(n, np.nan)
    var = np.full(n, np.nan)
    transform = None
    resid = None
    if ok.any():
        etas = _etas(m, rows)
        g = _type_gradient(m, etas, type)
        used = np.flatnonzero(np.any(g != 0.0, axis=0))
        channels = list(m.density.channels)
        if used.size == 1:
            # a function of one linear predictor: normal on that scale, ends transformed
            c = channels[used[0]]
            e = np.zeros_like(g)
            e[:, used[0]] = 1.0
            working[ok] = etas[c]
            var[ok] = prediction_variance(m, rows, e)
            if type not in _LINEAR_TYPES:
                transform = _channel_map(m, etas, c, type, ok, n)
        else:
            working[ok] = m._values(etas, type)
            var[ok] = prediction_variance(m, rows, g) if used.size else np.nan
        if type in ("link", "response", "conditional"):
            r = _gaussian_residual_variance(m, etas)
            if r is not None:
                resid = np.full(n, np.nan)
                resid[ok] = r
    parts = PredictionParts(working, var, transform=transform, residual_variance=resid,
                            family_label=m.family_name)
    return prediction_frame(parts, index, se_fit=se_fit, interval=interval, level=level)


def _channel_map(m, etas: dict, channel: str, type: str, ok: np.ndarray, n: int):
    """``w -> value`` with ``w`` replacing channel ``channel``'s linear predictor on the
    complete rows (the other channels held at their predictions)."""

    def T(w):
        out = np.full(n, np.nan)
        e = dict(etas)
        e[channel] = np.asarray(w)[ok]
        with np.errstate(all="ignore"):
            out[ok] = m._values(e, type)
        return out

    return T

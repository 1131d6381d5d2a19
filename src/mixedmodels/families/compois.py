r"""Conway-Maxwell-Poisson in glmmTMB's mean parameterization (Huang 2017).

With ``nu = 1 / phi`` and rate ``lambda``,

.. math::

    \log f(y) = y \log\lambda - \nu \log y! - G(\log\lambda, \nu), \qquad
    G(\ell, \nu) = \log \sum_{k \ge 0} \exp(k \ell - \nu \log k!),

and ``log lambda`` is defined implicitly by ``E[Y] = mu``, i.e.
``M(log lambda, nu) = log mu`` with ``M = log E[Y] = log(sum_k k e^{...}) - G``.
``Var = d^2 G / d ell^2``; ``sigma() = phi``; ``phi = 1`` is the Poisson.

Evaluation: ``G`` and ``M`` are log-sums of terms affine in ``(ell, nu)`` (slopes ``k`` and
``-log k!``), so their derivatives are cumulants of ``(k, -log k!)`` under the
normalized terms (:func:`~mixedmodels.families.jet.logsumexp_affine`), summed over a window
around the mode ``exp(ell / nu)`` that keeps every term within :data:`COMPOIS_DROP` of the
largest. ``log lambda`` is solved by a safeguarded Halley iteration on ``M`` (slope
``Var / E``, curvature from the third central moment). Its derivatives with respect to the
channels are exact: starting from the solved value, each chord step
``L <- L - (M(L, nu) - log mu) / M_ell`` in jet arithmetic makes one more derivative order
exact (the residual's value is already 0), so ``order`` steps give ``log lambda`` to third
order; ``log f`` is then composed from ``G``'s
derivatives. TMB sums the same series (and switches to a Laplace approximation of ``G`` for
large modes, ``mu > 100, mu nu > 200``); here the series is exact for every mean.
"""

from __future__ import annotations

import numpy as np

from . import jet as jt
from . import series
from ._special import log_factorial_int
from .counts import _CountFamily, lfactorial
from .density import param_links, weighted_mean

__all__ = ["COMPOIS_DROP", "ComPois", "compois_loglambda"]

#: Terms more than this below the largest (log scale) are dropped.
COMPOIS_DROP = 40.0
#: Margin (log scale and terms) added to the window edges.
COMPOIS_PAD = 5
#: Most terms per observation.
COMPOIS_NTERM = 200000
#: Tolerance on log E[Y], and the largest step in the log-mode ``ell / nu``.
LOGLAMBDA_TOL = 1e-13
MAX_LOGMODE_STEP = 5.0
#: A Halley step smaller than this (in log-mode units) is taken as the last one.
HALLEY_ACCEPT = 1e-5
MAX_ITER = 200
CHUNK_ELEMENTS = 2 ** 15
#: Smallest mode a window is centred on (below, ``exp`` underflows).
MIN_MODE = 1e-300


def _window(ell, nu, scale):
    r"""Summation window of the CMP series around its mode ``m = exp(ell / nu)``.

    The terms are exactly ``nu`` times Poisson(``m``) log-terms,
    ``k ell - nu log k! = nu (k log m - log k!)``, so the window edges are where the
    Poisson log-terms have dropped by ``COMPOIS_DROP / nu`` (plus a margin for Stirling's
    error); ``scale`` widens it for rows found too narrow.
    """
    # (a mode that underflows -- a tiny mean with a tiny nu -- would give edges 0/0; the
    # edges from a mode of 1e-300 are wider than needed, as the Poisson drop there is
    # steeper than the terms')
    mode = np.exp(np.clip(ell / nu, np.log(MIN_MODE), np.log(COMPOIS_NTERM)))
    lo, hi = series.poisson_drop_edges(mode, scale * (COMPOIS_DROP / nu + COMPOIS_PAD))
    lo = np.maximum(0.0, np.floor(lo) - COMPOIS_PAD)
    # For small nu the Poisson edge is far too wide (its drop target DROP / nu runs to
    # millions). The terms are concave in k with differences x_{k+1} - x_k =
    # ell - nu log(k + 1), so past any k1 with a negative difference s1 they fall at least
    # |s1| per count: the terms beyond k1 + DROP / |s1| are dropped. k1 = 0 when ell < 0
    # (s1 = ell), else k1 = e mode (s1 <= -nu).
    with np.errstate(divide="ignore", over="ignore"):
        k1 = np.where(ell < 0, 0.0, np.ceil(np.e * mode))
        s1 = ell - nu * np.log1p(k1)
        linear = k1 + np.ceil(scale * COMPOIS_DROP / -s1)
    hi = np.where(s1 < 0, np.minimum(hi, linear), hi)
    hi = np.minimum(np.ceil(hi) + COMPOIS_PAD, lo + COMPOIS_NTERM - 1)
    return lo, hi


def _grid(lo, hi, ell, nu, rows, w):
    k = lo[rows, None] + np.arange(w)
    ok = k <= hi[rows, None]
    k = np.where(ok, k, lo[rows, None])
    lf = log_factorial_int(k)
    x = np.where(ok, k * ell[rows, None] - nu[rows, None] * lf, -np.inf)
    return k, lf, x, ok


def _narrow(x, ok, lo, rows):
    xmax = np.max(x, axis=1)
    last = np.take_along_axis(x, (ok.sum(axis=1) - 1)[:, None], axis=1)[:, 0]
    return (last > xmax - COMPOIS_DROP) | ((x[:, 0] > xmax - COMPOIS_DROP) & (lo[rows] > 0))


def _series_chunks(ell, nu):
    """Yield ``(rows, k, log k!, terms, valid)`` grids covering every row's window; rows
    whose window proved too narrow come again with a doubled one (later yields of a row
    supersede earlier ones)."""
    todo, scale = np.arange(ell.shape[0]), 1.0
    while todo.size:
        lo, hi = _window(ell[todo], nu[todo], scale)
        narrow = np.zeros(todo.size, dtype=bool)
        for rows, w in series.row_chunks((hi - lo + 1).astype(np.int64), CHUNK_ELEMENTS):
            k, lf, x, ok = _grid(lo, hi, ell[todo], nu[todo], rows, w)
            narrow[rows] = _narrow(x, ok, lo, rows)
            yield todo[rows], k, lf, x, ok
        narrow &= (hi - lo + 1) < COMPOIS_NTERM
        todo, scale = todo[narrow], scale * 2.0


def _moments(ell, nu, third: bool = False):
    """``E[Y]``, ``Var[Y]`` (and the third central moment) at ``(ell, nu)``."""
    out = [np.zeros(ell.shape[0]) for _ in range(3 if third else 2)]
    for rows, k, _, x, _ in _series_chunks(ell, nu):
        p = np.exp(x - np.max(x, axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        m = np.sum(p * k, axis=1)
        c = k - m[:, None]
        pc2 = p * c * c
        out[0][rows] = m
        out[1][rows] = np.sum(pc2, axis=1)
        if third:
            out[2][rows] = np.sum(pc2 * c, axis=1)
    return out


def _mean_var(ell, nu):
    """``E[Y]`` and ``Var[Y]`` at ``(ell, nu)``."""
    return _moments(ell, nu)


def _unique_pairs(a, b):
    """Distinct ``(a_i, b_i)`` pairs and the map back (observations often share their
    parameters, e.g. with categorical predictors or in simulation)."""
    order = np.lexsort((b, a))
    sa, sb = a[order], b[order]
    new = np.ones(a.size, dtype=bool)
    new[1:] = (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])
    inverse = np.empty(a.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return sa[new], sb[new], inverse


def compois_loglambda(mu, nu) -> np.ndarray:
    """``log lambda`` with ``E[Y] = mu`` for CMP(``lambda``, ``nu``) (vectorized Halley
    iteration on ``log E[Y]``, with a bracket and step limits; ``E`` is increasing in
    ``log lambda``)."""
    mu = np.asarray(mu, dtype=float)
    nu = np.asarray(nu, dtype=float)
    if mu.ndim == 1 and mu.shape == nu.shape and mu.size > 1:
        um, un, inv = _unique_pairs(mu, nu)
        if um.size < mu.size:
            return _solve_loglambda(um, un)[inv]
    return _solve_loglambda(mu, nu)


def _solve_loglambda(mu, nu) -> np.ndarray:
    r"""The root, bracketed from the start: the terms' weights ``lambda^k / k!^nu`` have a
    monotone likelihood ratio in ``nu``, so ``E`` falls as ``nu`` grows at fixed ``lambda``,
    between the Poisson's ``E = lambda`` (``nu = 1``) and the geometric's
    ``E = lambda / (1 - lambda)`` (``nu = 0``). Hence ``log(mu / (1 + mu)) <= log lambda <=
    log mu`` for ``nu < 1`` and ``log lambda >= log mu`` for ``nu > 1``. Without the bracket a
    strongly over-dispersed row (``nu = 0.002``) started at ``log mu`` has its mode at
    ``mu^(1/nu)`` and windows of 200,000 terms at every Halley iteration."""
    target = np.log(mu)
    big = mu + (nu - 1.0) / (2.0 * nu)
    geometric = np.log(mu) - np.log1p(mu)
    under = nu < 1.0
    # large means: E ~ lambda^(1/nu) - (nu - 1) / (2 nu); small means: between the
    # geometric and Poisson roots, exact at both ends
    small = np.where(under, (1.0 - nu) * geometric + nu * target, target)
    ell = np.where(big > 1.0, nu * np.log(np.maximum(big, 1.0)), small)
    lo = np.where(under, geometric, np.where(nu > 1.0, target, -np.inf))
    hi = np.where(under, target, np.inf)
    ell = np.clip(ell, lo, hi)
    active = np.isfinite(ell) & (nu > 0)
    for _ in range(MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        e, v, k3 = _moments(ell[idx], nu[idx], third=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Halley on f = log E - log mu: f' = V/E, f'' = K3/E - (V/E)^2
            f = np.log(e) - target[idx]
            d1 = v / e
            d2 = k3 / e - d1 * d1
            step = -f / d1 / np.clip(1.0 - 0.5 * f * d2 / (d1 * d1), 0.5, 2.0)
        hi[idx] = np.where(f > 0, ell[idx], hi[idx])
        lo[idx] = np.where(f <= 0, ell[idx], lo[idx])
        lim = MAX_LOGMODE_STEP * nu[idx]
        step = np.clip(np.nan_to_num(step, nan=0.0), -lim, lim)
        new = ell[idx] + step
        outside = (new <= lo[idx]) | (new >= hi[idx])
        both = np.isfinite(lo[idx]) & np.isfinite(hi[idx])
        new = np.where(outside & both, 0.5 * (lo[idx] + hi[idx]), new)
        converged = np.abs(f) < LOGLAMBDA_TOL
        # a Halley step of size s leaves an error ~ s^3 (in log-mode units ell / nu)
        final = ~converged & ~(outside & both) & (np.abs(step) < HALLEY_ACCEPT * nu[idx])
        ell[idx] = np.where(converged, ell[idx], new)
        active[idx[converged | final]] = False
    return ell


def _cumulant_jets(ell, nu, order, with_mean: bool):
    """Jets over ``(ell, nu)`` of ``G`` and (``with_mean``) ``M = log E[Y]``."""
    if ell.size > 1:
        ue, un, inv = _unique_pairs(ell, nu)
        if ue.size < ell.size:
            jets = _cumulant_jets(ue, un, order, with_mean)
            return {key: j[inv] for key, j in jets.items()}
    n = ell.shape[0]
    acc = {key: [np.zeros(n)] + [np.zeros((2,) * r + (n,)) for r in range(1, order + 1)]
           for key in (("G", "M") if with_mean else ("G",))}
    for rows, k, lf, x, _ok in _series_chunks(ell, nu):
        slopes = np.stack([k, -lf])
        xmax = np.max(x, axis=1, keepdims=True)
        w = np.exp(x - xmax)            # x is -inf outside the window
        s = np.sum(w, axis=1, keepdims=True)
        p = w / s
        log_z = (xmax + np.log(s))[:, 0]
        jets = {"G": jt.cumulant_jet(log_z, p, slopes, order)}
        if with_mean:
            # M = log E[Y]; its terms are G's times k, so its weights are p k / E[Y]
            mean = np.sum(p * k, axis=1, keepdims=True)
            h = jt.cumulant_jet(log_z + np.log(mean[:, 0]), p * k / mean, slopes, order)
            jets["M"] = h - jets["G"]
        for key, jet in jets.items():
            for r, a in enumerate([jet.v, *jet.derivatives()]):
                acc[key][r][..., rows] = a
    return {key: jt.Jet(a[0], *a[1:], m=2, order=order) for key, a in acc.items()}


class ComPois(_CountFamily):
    r"""Conway-Maxwell-Poisson with exact mean ``mu`` and ``phi = 1 / nu`` (glmmTMB's
    ``compois``; module docstring). Over-dispersed for ``phi > 1``."""

    name = "compois"
    parameters = ("mu", "phi")
    supports_sparse = False         # its series are composed with dense jets
    default_links = param_links(mu="log", phi="log")

    def _parts(self, y, params):
        log_mu = params["mu"].log()
        nu = jt.exp(-params["phi"].log())
        ell_hat = compois_loglambda(np.exp(log_mu.v), nu.v)
        order = log_mu.order
        cj = _cumulant_jets(ell_hat, nu.v, order, with_mean=order > 0)
        ell = jt.Jet.constant(ell_hat, log_mu.m, order)
        if order > 0:
            m_jet = cj["M"]
            slope = m_jet.g1[0]
            for _ in range(order):
                resid = jt.compose_jet(m_jet, [ell, nu]) - log_mu
                ell = ell - resid / slope
        log_z = jt.compose_jet(cj["G"], [ell, nu])
        return ell, nu, log_z

    def _log_density(self, y, params, size):
        ell, nu, log_z = self._parts(y, params)
        return ell * y - nu * lfactorial(y) - log_z

    def log_density_with_zero(self, y, params, size=None):
        ell, nu, log_z = self._parts(y, params)
        return ell * y - nu * lfactorial(y) - log_z, -log_z

    def _rate(self, params):
        mu = np.asarray(params["mu"], dtype=float)
        nu = 1.0 / np.asarray(params["phi"], dtype=float)
        shape = np.broadcast_shapes(mu.shape, nu.shape)
        mu, nu = np.broadcast_to(mu, shape).ravel(), np.broadcast_to(nu, shape).ravel()
        ell = compois_loglambda(mu, nu)
        return ell, nu, shape

    def log_pmf(self, k, params):
        ell, nu, shape = self._rate(params)
        g = _cumulant_jets(ell, nu, 0, with_mean=False)["G"].v
        ell, nu, g = (a.reshape(shape) for a in (ell, nu, g))
        k = np.asarray(k, dtype=float)
        return k * ell - nu * lfactorial(k) - g

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        ell, nu, shape = self._rate({"mu": mu, "phi": phi})
        return _mean_var(ell, nu)[1].reshape(shape)

    def start_phi(self, y, mu, weights=None, size=None):
        # Var ~ mu / nu = mu phi away from small means
        r = np.asarray(y, dtype=float) - mu
        v = weighted_mean(r * r, weights) / max(weighted_mean(mu, weights), 1e-300)
        return float(np.clip(v, 0.05, 20.0))


r"""Tweedie (compound Poisson-gamma) density by Dunn & Smyth's series, as TMB evaluates it.

For power ``1 < p < 2``, mean ``mu`` and dispersion ``phi`` (``Var = phi mu^p``), ``Y`` is a
sum of ``N ~ Poisson(lambda)`` gamma variables, ``lambda = mu^{2-p} / (phi (2-p))``, so
``P(Y = 0) = exp(-lambda)``; for ``y > 0``

.. math::

    \log f(y) = \log W(y, \phi, p) - \log y - \frac{y}{\phi (p-1) \mu^{p-1}}
        - \frac{\mu^{2-p}}{\phi (2-p)}, \qquad
    W = \sum_{j \ge 1} \exp\{ j \log z - \log j! - \log\Gamma(b j) \},

with ``b = (2-p)/(p-1)`` and ``log z = b log y - log(phi)/(p-1) - b log(p-1) - log(2-p)``
(TMB's ``tweedie_logW``, from the cplm package). The terms peak near
``j_max = y^{2-p} / (phi (2-p))`` with spread ``sqrt(j_max (p-1))``; the window summed
(:func:`_window`) keeps every term within :data:`TWEEDIE_DROP` (in log) of the largest,
checked and widened per observation.

Wide windows (near the Gamma limit ``p -> 2`` the mode ``j_max`` runs to millions) are summed
on a coarse grid: the terms are the values at whole ``j`` of a smooth bell ``g(j) = exp x(j)``
(``log j!`` extended by ``log Gamma(j + 1)``) whose spread is ``sigma = sqrt(j_max (p-1))``.
By Poisson summation, ``h sum_k g(a + k h)`` and ``sum_j g(j)`` both equal ``integral g`` up
to the Fourier transform of ``g`` at ``1/h`` and ``1``, which for a bell of spread ``sigma``
are ``~ exp(-2 pi^2 sigma^2 / h^2)`` and ``exp(-2 pi^2 sigma^2)`` of the sum (the ends of
the window are below the dropped level, so no edge terms). With :data:`TWEEDIE_POINTS_PER_SD`
points per ``sigma`` that is below ``exp(-300)``: the coarse sum is the whole-number sum to
double precision, with a few dozen points instead of up to 20,000 (the moments the
derivatives use are sums of the same bell times smooth factors, so the same holds).

Derivatives: ``log W`` is a log-sum-exp of terms linear in ``log z`` and nonlinear in ``b``
only through ``log Gamma(b j)``, so its derivatives in ``(log z, b)`` are weighted moments of
``j`` and ``-j psi^{(k)}(b j)`` (see :func:`_logw_inner`); they are then composed with the
jets of ``log z`` and ``b`` in the channels. glmmTMB's power is ``p = 1 + expit(eta)``.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import special

from . import jet as jt
from . import series
from ._special import log_factorial_int, polygamma_fast, polygammas
from .density import ResponseFamily, _fail, check_finite, param_links

__all__ = ["TWEEDIE_DROP", "Tweedie"]

#: Terms more than this below the largest (log scale) are dropped (TMB's value, 37:
#: ``exp(-37) ~ 1e-16``).
TWEEDIE_DROP = 37.0
#: Margin (log scale and terms) on each side of the window.
TWEEDIE_PAD = 5
#: Most terms summed for one observation (TMB: 20000); beyond, accuracy degrades.
TWEEDIE_NTERM = 20000
#: Largest term index the window is centred on (dispersions so small that the mode lies
#: beyond are outside what the series can sum).
TWEEDIE_JMAX = 1e12
#: Grid cells per chunk of the series.
CHUNK_ELEMENTS = 2 ** 15
#: Coarse-grid points per spread ``sigma = sqrt(j_max (p-1))`` of the terms (module
#: docstring): the aliasing error is ``~ exp(-2 pi^2 POINTS^2)``, ``exp(-316)`` at 4.
TWEEDIE_POINTS_PER_SD = 4.0
#: Spread from which windows are summed on the coarse grid (a step of at least 2);
#: narrower windows keep every whole-number term, as TMB sums them.
TWEEDIE_COARSE_SD = 8.0


def _terms(j, logz, b, whole=True):
    logfact = log_factorial_int(j) if whole else special.gammaln(j + 1.0)
    return j * logz - logfact - special.gammaln(b * j)


def _window(jmax, p1, scale):
    r"""Terms to sum: by Stirling, ``log j! + log Gamma(b j) ~ (1 + b) j log j + ...`` with
    ``1 + b = 1/(p-1)``, so the terms behave like ``1/(p-1)`` times Poisson(``j_max``)
    log-terms; the edges are where those have dropped by ``(p-1) TWEEDIE_DROP`` (plus a
    margin); ``scale`` widens windows found too narrow.

    Returns ``jl, jh, step``: the grid ``jl, jl + step, ... <= jh``. ``step`` is 1 (every
    whole number, at most :data:`TWEEDIE_NTERM` of them) unless the spread reaches
    :data:`TWEEDIE_COARSE_SD` and the window stays clear of ``j = 1`` (where the sum starts
    abruptly, an edge the coarse rule would miss); then it is the coarse step of the module
    docstring and the window is not capped (it holds a few dozen points)."""
    jmax = np.where(np.isfinite(jmax), np.minimum(jmax, TWEEDIE_JMAX), TWEEDIE_JMAX)
    lo, hi = series.poisson_drop_edges(jmax, scale * (TWEEDIE_DROP * p1 + TWEEDIE_PAD))
    jl = np.maximum(1.0, np.floor(lo) - TWEEDIE_PAD)
    top = np.ceil(hi) + TWEEDIE_PAD
    sd = np.sqrt(jmax * p1)
    coarse = (sd >= TWEEDIE_COARSE_SD) & (jl > 1.0)
    step = np.where(coarse, sd / TWEEDIE_POINTS_PER_SD, 1.0)
    jh = np.where(coarse, top, np.minimum(top, jl + TWEEDIE_NTERM - 1))
    return jl, jh, step


def _logw_inner(logz, b, jl, jh, order, step=None):
    r"""``log W`` and its derivatives in ``(log z, b)`` per row: value ``(n,)`` and
    ``g1 (2, n)``, ``g2 (2, 2, n)``, ``g3 (2, 2, 2, n)`` (None above ``order``), plus the
    rows whose window was too narrow. ``step`` (per row; None: every whole number) sums
    the coarse grid ``jl + k step <= jh``, weighted by ``step`` (module docstring).

    With ``p_j`` the normalized terms, ``s_j = -j psi(b j)`` (``d x_j / d b``),
    ``s2_j = -j^2 psi_1(b j)``, ``s3_j = -j^3 psi_2(b j)`` and centred ``c0 = j - E j``,
    ``c1 = s - E s``, the log-sum-exp formulas of :func:`~mixedmodels.families.jet.logsumexp`
    reduce to moments because ``x_j`` is linear in ``log z``.
    """
    n = logz.shape[0]
    val = np.zeros(n)
    g = [np.zeros((2,) * k + (n,)) for k in (1, 2, 3)]
    narrow = np.zeros(n, dtype=bool)
    whole = step is None
    widths = (jh - jl + 1 if whole else np.floor((jh - jl) / step) + 1).astype(np.int64)
    for rows, w in series.row_chunks(widths, CHUNK_ELEMENTS):
        k = np.arange(w)
        ok = k < widths[rows, None]
        j = jl[rows, None] + (k if whole else step[rows, None] * k)
        j = np.where(ok, j, jl[rows, None])
        lz, bb = logz[rows, None], b[rows, None]
        x = np.where(ok, _terms(j, lz, bb, whole), -np.inf)
        xmax = np.max(x, axis=1, keepdims=True)
        last = np.take_along_axis(x, (ok.sum(axis=1) - 1)[:, None], axis=1)
        narrow[rows] = ((last[:, 0] > xmax[:, 0] - TWEEDIE_DROP)
                        | ((x[:, 0] > xmax[:, 0] - TWEEDIE_DROP) & (jl[rows] > 1)))
        e = np.exp(x - xmax)
        s = np.sum(e, axis=1, keepdims=True)
        val[rows] = (xmax + np.log(s))[:, 0]
        if not whole:
            val[rows] += np.log(step[rows])
        if order == 0:
            continue
        p = e / s
        bj = bb * j
        d1 = [j, -j * special.psi(bj)]
        m1 = [np.sum(p * d, axis=1) for d in d1]
        for a in range(2):
            g[0][a, rows] = m1[a]
        if order == 1:
            continue
        c = [d1[a] - m1[a][:, None] for a in range(2)]
        if order == 2:
            x11 = -j * j * polygamma_fast(1, bj)
        else:
            # trigamma and tetragamma share the recurrence shift: one pass for both
            tri, tetra = polygammas(bj, 2)
            x11 = -j * j * tri
        pc = [p * c[0], p * c[1]]
        g[1][0, 0, rows] = np.sum(pc[0] * c[0], axis=1)
        g[1][0, 1, rows] = g[1][1, 0, rows] = np.sum(pc[0] * c[1], axis=1)
        g[1][1, 1, rows] = np.sum(p * x11 + pc[1] * c[1], axis=1)
        if order == 2:
            continue
        x111 = -j * j * j * tetra
        t000 = np.sum(pc[0] * c[0] * c[0], axis=1)
        t001 = np.sum(pc[0] * c[0] * c[1], axis=1)
        t011 = np.sum(pc[0] * c[1] * c[1] + p * x11 * c[0], axis=1)
        t111 = np.sum(p * x111 + 3.0 * p * x11 * c[1] + pc[1] * c[1] * c[1], axis=1)
        perms = {(0, 0, 0): t000, (0, 0, 1): t001, (0, 1, 0): t001, (1, 0, 0): t001,
                 (0, 1, 1): t011, (1, 0, 1): t011, (1, 1, 0): t011, (1, 1, 1): t111}
        for (a, bq, cq), t in perms.items():
            g[2][a, bq, cq, rows] = t
    return val, g[0] if order >= 1 else None, g[1] if order >= 2 else None, \
        g[2] if order >= 3 else None, narrow


#: The last series per thread and order: ``log W`` depends on ``phi`` and ``p`` only, not
#: on ``mu``. The Laplace engine's inner Newton iterations move only ``mu``, so the value
#: is the same at every iteration of one outer evaluation; and the finite-difference
#: Hessian's columns in the fixed effects and covariance parameters leave ``phi`` and ``p``
#: alone, so the derivatives are the same at all of them (Tweedie, log link, 300 rows:
#: the series is a quarter of a gradient).
_LAST_SERIES = threading.local()


def tweedie_logw_cached(logz, b, jmax, p1, order):
    """:func:`tweedie_logw`, reused while its arguments repeat exactly (per order)."""
    key = (logz, b, jmax, p1)
    store = getattr(_LAST_SERIES, "by_order", None)
    if store is None:
        store = _LAST_SERIES.by_order = {}
    last = store.get(order)
    if last is not None and all(a.shape == k.shape and np.array_equal(a, k)
                                for a, k in zip(last[0], key, strict=True)):
        return last[1]
    out = tweedie_logw(logz, b, jmax, p1, order)
    store[order] = (tuple(a.copy() for a in key), out)
    return out


def tweedie_logw(logz, b, jmax, p1, order):
    """``log W`` and its ``(log z, b)`` derivatives, widening narrow windows."""
    n = logz.shape[0]
    out = None
    todo = np.arange(n)
    scale = 1.0
    while todo.size:
        jl, jh, step = _window(jmax[todo], p1[todo], scale)
        coarse = step > 1.0
        narrow = np.zeros(todo.size, dtype=bool)
        for sel, stp in ((~coarse, None), (coarse, step)):
            if not sel.any():
                continue
            rows = todo[sel]
            res = _logw_inner(logz[rows], b[rows], jl[sel], jh[sel], order,
                              None if stp is None else stp[sel])
            if out is None:
                out = [np.zeros(n)] + [None if r is None else np.zeros((*r.shape[:-1], n))
                                       for r in res[1:4]]
            out[0][rows] = res[0]
            for k in range(1, order + 1):
                out[k][..., rows] = res[k]
            narrow[sel] = res[4]
        points = np.where(coarse, (jh - jl) / step, jh - jl) + 1
        # a window held at TWEEDIE_JMAX never reaches a mode beyond it: widening would
        # only spend terms (up to TWEEDIE_NTERM per row, at every evaluation)
        held = ~(np.isfinite(jmax[todo]) & (jmax[todo] < TWEEDIE_JMAX))
        narrow &= (points < TWEEDIE_NTERM) & ~held
        todo, scale = todo[narrow], scale * 2.0
    return out


class Tweedie(ResponseFamily):
    r"""Tweedie with power ``1 < p < 2`` (module docstring): ``E = mu``,
    ``Var = phi mu^p``, ``sigma() = phi``; the power is glmmTMB's ``1 + expit(psi)``,
    a scalar extra parameter (channel ``"power"``)."""

    name = "tweedie"
    parameters = ("mu", "phi", "power")
    default_links = param_links(mu="log", phi="log", power="tweedie_power")
    mu_links = ("log", "identity", "sqrt")
    discrete = False
    point_mass_at_zero = True

    def _log_density(self, y, params, size):
        log_mu, log_phi = params["mu"].log(), params["phi"].log()
        power = params["power"]
        p1, p2 = power.above(1.0), power.below(2.0)
        log_p1, log_p2 = p1.log(), p2.log()
        # lambda = mu^(2-p) / (phi (2-p)) = lam0 mu^(2-p), lam0 = lambda at mu = 1. Near
        # p = 2, lam0 ~ 1/(phi (2-p)) runs to millions and so does log W, while their
        # difference (the log-density) is moderate: summed as log W - lambda, the result
        # would carry rounding of ~eps lam0 that moves with mu, enough to defeat the
        # inner Newton iterations' descent test. So lambda = lam0 + lam0 expm1((2-p) log mu),
        # with log W - lam0 formed first (constant while only mu moves).
        lam0 = jt.exp(-log_phi - log_p2)
        dlam = lam0 * jt.expm1(log_mu * p2)
        pos = y > 0
        if not np.any(pos):
            return -(lam0 + dlam)
        ys = np.where(pos, y, 1.0)
        log_y = np.log(ys)
        b = p2 / p1
        logz = b * log_y - log_phi / p1 - b * log_p1 - log_p2
        with np.errstate(all="ignore"):
            jmax = np.maximum(1.0, np.exp(p2.v * log_y - log_phi.v - log_p2.v))
        # log W only where y > 0 (zeros keep log W = 0, masked below)
        rows = np.flatnonzero(pos)
        if params["phi"].constant and params["power"].constant:
            # log W depends on phi and p only: a jet in the mean alone (the inner
            # Newton iterations) needs its value, not its derivatives
            value = tweedie_logw_cached(logz.v[rows], b.v[rows], jmax[rows], p1.v[rows],
                                        0)[0]
            full = np.zeros(y.shape)
            full[rows] = value
            logw = logz * 0.0 + full
        else:
            lw = tweedie_logw_cached(logz.v[rows], b.v[rows], jmax[rows], p1.v[rows],
                                     logz.order)
            lw = lw[:logz.order + 1]
            full = [np.zeros(g.shape[:-1] + y.shape) for g in lw]
            for f, g in zip(full, lw, strict=True):
                f[..., rows] = g
            inner = jt.Jet(full[0], *full[1:], m=2, order=logz.order)
            logw = jt.compose_jet(inner, [logz, b])
        rate = jt.exp(-log_phi - log_p1 - log_mu * p1) * ys          # y / (phi p1 mu^p1)
        ans = (logw - lam0) - rate - dlam - log_y
        return jt.where(pos, ans, -(lam0 + dlam))

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return np.asarray(phi, dtype=float) * mu ** np.asarray(extras["power"], dtype=float)

    def _poisson_gamma(self, params):
        mu = np.asarray(params["mu"], dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        p = np.asarray(params["power"], dtype=float)
        p1, p2 = p - 1.0, 2.0 - p
        lam = mu ** p2 / (phi * p2)
        return lam, p2 / p1, phi * p1 * mu ** p1        # rate, gamma shape, gamma scale

    def sample(self, rng, params, size=None):
        lam, shape, scale = self._poisson_gamma(params)
        shape_all = np.broadcast_shapes(lam.shape, shape.shape, scale.shape)
        n = rng.poisson(np.broadcast_to(lam, shape_all))
        return np.where(n > 0, rng.gamma(np.maximum(n, 1) * shape, scale), 0.0)

    def cdf(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        lam, shape, scale = self._poisson_gamma(params)
        full = np.broadcast_shapes(y.shape, lam.shape, shape.shape, scale.shape)
        y, lam, shape, scale = (np.broadcast_to(a, full).ravel() for a in (y, lam, shape,
                                                                             scale))
        lo, hi = series.count_window(lam, np.sqrt(lam))
        lo = np.maximum(lo, 1.0)
        ypos = np.maximum(y, 0.0)

        def logterm(k, rows):
            lp = k * np.log(lam[rows, None]) - lam[rows, None] - special.gammaln(k + 1.0)
            with np.errstate(divide="ignore"):
                return lp + np.log(special.gammainc(k * shape[rows, None],
                                                    ypos[rows, None] / scale[rows, None]))

        out = np.exp(-lam) + series.window_sum(logterm, lo, hi)
        return np.where(y < 0, 0.0, np.minimum(out, 1.0)).reshape(full)

    def cdf_lower(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        c = self.cdf(y, params, size)
        return np.where(y <= 0, 0.0, c)     # the atom at 0 belongs to P(Y <= 0) only

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        check_finite(y, name)
        if np.any(y < 0):
            _fail("negative values", name, y < 0, y, "Tweedie responses must be >= 0")

    def start_mu(self, y, weights=None, size=None):
        return np.asarray(y, dtype=float) + 0.1

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=float)
        v = float(np.sum(w * r * r) / max(np.sum(w * mu ** 1.5), 1e-300))
        return float(np.clip(v, 1e-3, 1e4))

    def start_extras(self, y):
        return {"power": 1.5}       # glmmTMB's start psi = 0

r"""Closed-form jets of the log-densities that dominate a fit's time.

The generic jets (:mod:`.jet`, :mod:`.sparse_jet`) build a wrapped family's derivatives
operation by operation, each a few array passes and some Python bookkeeping; for the
zero-inflated Poisson that is about 40 % of a fit, and for a small Poisson or binomial
GLMM of glmmTMB's class (a structured covariance on a few hundred rows) about a fifth.
Here the derivatives with respect to the linear predictors are written out once, in a
handful of vectorized passes.

Poisson, log link (``a = eta``, ``mu = e^a``): ``l = y a - mu - log y!``, ``l_a = y - mu``,
``l_aa = l_aaa = -mu``.

Binomial, logit link (``y`` successes of ``m`` trials, ``s = expit(a)``, ``s~ = expit(-a)``,
each without cancellation): ``l = y log s + (m - y) log s~ + log C(m, y)`` with
``log s = -softplus(-a)``, ``log s~ = -softplus(a)`` (the accurate forms the generic path
takes from the link), ``l_a = y s~ - (m - y) s``, ``l_aa = -m s s~``,
``l_aaa = -m s s~ (s~ - s)``.

Zero-inflated Poisson, log link for ``mu`` (``a = eta_mu``, ``mu = e^a``), logit link for
``pi`` (``z = eta_zi``), ``s = expit(z)``, ``log(1 - pi) = -softplus(z)``:

* ``y > 0``: :math:`l = y a - \mu - \log y! - \mathrm{softplus}(z)`` -- separable:
  ``l_a = y - mu``, ``l_aa = l_aaa = -mu``; ``l_z = -s``, ``l_zz = -s(1-s)``,
  ``l_zzz = -s(1-s)(1-2s)``; no mixed terms.
* ``y = 0``: :math:`l = -\mathrm{softplus}(z) + L`, :math:`L = \log(e^z + e^{-\mu}) =
  -\mu + \mathrm{softplus}(t)`, ``t = z + mu``. With ``p = expit(t)``, ``q = expit(-t)``
  (each without cancellation) and ``t_a = t_aa = t_aaa = mu``:

  .. math::

      L_z = p,\; L_{zz} = pq,\; L_{zzz} = pq(q - p),\qquad
      L_a = -q\mu,\; L_{aa} = -q\mu + pq\mu^2,\;
      L_{aaa} = -q\mu + 3pq\mu^2 + pq(q-p)\mu^3,

      L_{za} = pq\mu,\; L_{zza} = pq(q-p)\mu,\; L_{zaa} = pq(q-p)\mu^2 + pq\mu.

Gaussian, identity link for ``mu`` (``a = eta_mu``, ``r = a - y``), log link for ``phi``
(``b = eta_phi``; the log variance is ``L = c b``, ``c = 1`` when ``phi`` is the variance,
2 when it is the sd), ``s = e^{-L}``: ``l = -(r^2 s + L + log 2 pi) / 2``, ``l_a = -r s``,
``l_aa = -s``, ``l_aaa = 0``; ``l_b = c (r^2 s - 1) / 2``, ``l_bb = -c^2 r^2 s / 2``,
``l_bbb = c^3 r^2 s / 2``; ``l_ab = c r s``, ``l_aab = c s``, ``l_abb = -c^2 r s``. (The
generic path takes ``L = log(exp(b))``, one rounding more: the two agree to ~1e-16
relative.)

The kernels return the same :class:`~.jet.Jet` as
:meth:`~.density.ModelDensity.evaluate`'s generic path (tested against it and against
finite differences in tests/test_fused_jets.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from . import jet as jt
from ._special import logistic_parts

__all__ = ["fused_kernel"]


#: The last responses seen and their zero mask and log-factorials (a fit evaluates the
#: density of the same response array hundreds of times).
_RESPONSES: list = [None, None, None]


def _response_parts(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y == 0, log y!)``, remembered for the last array (by identity and value)."""
    from .counts import lfactorial

    seen = _RESPONSES[0]
    if seen is not None and (seen is y or (seen.shape == y.shape
                                           and np.array_equal(seen, y))):
        return _RESPONSES[1], _RESPONSES[2]
    zero, lf = y == 0, lfactorial(y)
    _RESPONSES[:] = [y.copy() if y.flags.writeable else y, zero, lf]
    return zero, lf


#: The last zero-inflation predictor seen and its logistic parts, per thread: the inner
#: Newton iterations move only the channels with random effects, often ``mu`` alone.
_ZI_PARTS = threading.local()


def _zi_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(expit(z), expit(-z), softplus(z))``, remembered for the last ``z`` (by value)."""
    last = getattr(_ZI_PARTS, "entry", None)
    if last is not None and last[0].shape == z.shape and np.array_equal(last[0], z):
        return last[1]
    s, sm, tail_z = logistic_parts(z)
    parts = (s, sm, np.maximum(z, 0.0) + tail_z)
    _ZI_PARTS.entry = (z.copy(), parts)
    return parts


def _zip_parts(y: np.ndarray, a: np.ndarray, z: np.ndarray, order: int):
    """Value and the derivative entries (dicts keyed by channel index tuples, channel 0 =
    ``mu``, 1 = ``zi``) of the zero-inflated Poisson log-density."""
    zero, lf = _response_parts(y)
    mu = np.exp(a)
    s, sm, sp_z = _zi_parts(z)                         # softplus(z) = -log(1 - pi)
    t = z + mu
    p, q, tail_t = logistic_parts(t)
    # y = 0: -softplus(z) + log(e^z + e^-mu) = -softplus(z) + max(z, -mu) + tail(t)
    v = np.where(zero, np.maximum(z, -mu) + tail_t, y * a - mu - lf) - sp_z
    d: dict[tuple[int, ...], np.ndarray] = {}
    if order >= 1:
        d[(0,)] = np.where(zero, -q * mu, y - mu)
        d[(1,)] = np.where(zero, p, 0.0) - s
    if order >= 2:
        pq = np.where(zero, p * q, 0.0)
        pq_mu = pq * mu
        ss = s * sm
        d[(0, 0)] = np.where(zero, pq_mu * mu - q * mu, -mu)
        d[(0, 1)] = pq_mu
        d[(1, 1)] = pq - ss
    if order >= 3:
        r = pq * (q - p)
        r_mu = r * mu
        d[(0, 0, 0)] = np.where(zero, (3.0 * pq_mu + r_mu * mu) * mu - q * mu, -mu)
        d[(0, 0, 1)] = r_mu * mu + pq_mu
        d[(0, 1, 1)] = r_mu
        d[(1, 1, 1)] = r - ss * (sm - s)
    return v, d


#: (channels, order, focus) -> per order, the (dense index, entry key or None) pairs
_PLANS: dict = {}


def _plan(idx: tuple[int, ...], order: int, focus: frozenset | None):
    """Which entry fills each position of the dense tensors (None: zero, an entry with
    more than one index outside ``focus``, as the generic engine leaves it under
    :func:`~.sparse_jet.focus`)."""
    plan = _PLANS.get((idx, order, focus))
    if plan is None:
        m = len(idx)
        plan = []
        for k in range(1, order + 1):
            rows = []
            for full in np.ndindex(*(m,) * k):
                key = tuple(sorted(idx[i] for i in full))
                if focus is not None and sum(c not in focus for c in key) > 1:
                    key = None
                rows.append((full, key))
            plan.append(rows)
        _PLANS[(idx, order, focus)] = plan
    return plan


def _assemble(v: np.ndarray, d: dict, idx: tuple[int, ...], order: int,
              w: np.ndarray | None, focus: frozenset | None) -> jt.Jet:
    """The dense jet over the channels ``idx`` (in that order) from the entries."""
    m, n = len(idx), v.shape[0]
    if w is not None:
        zero_w = w == 0
        v = np.where(zero_w, 0.0, v * w)
    gs = []
    for k, rows in enumerate(_plan(idx, order, focus), start=1):
        g = np.empty((m,) * k + (n,))
        for full, key in rows:
            if key is None:
                g[full] = 0.0
            elif w is None:
                g[full] = d[key]
            else:
                np.multiply(d[key], w, out=g[full])
        if w is not None:
            g[..., zero_w] = 0.0
        gs.append(g)
    return jt.Jet(v, *gs, m=m, order=order)


def _rows(v, n: int) -> np.ndarray:
    """``v`` as an (n,) float array; without ``np.broadcast_to`` when it is one already
    (the kernel runs a few hundred times per fit, and the call costs more than the
    arithmetic on small data)."""
    v = np.asarray(v, dtype=float)
    return v if v.shape == (n,) else np.broadcast_to(v, (n,))


#: The last (successes, trials) pair seen and its log binomial coefficients.
_LCHOOSE: list = [None, None, None]


def _lchoose(y: np.ndarray, size: np.ndarray) -> np.ndarray:
    """``log C(size, y)``, remembered for the last pair of arrays (by value)."""
    from .counts import lfactorial

    seen_y, seen_m = _LCHOOSE[0], _LCHOOSE[1]
    if seen_y is not None and seen_y.shape == y.shape and seen_m.shape == size.shape \
            and np.array_equal(seen_y, y) and np.array_equal(seen_m, size):
        return _LCHOOSE[2]
    value = lfactorial(size) - lfactorial(y) - lfactorial(size - y)
    _LCHOOSE[:] = [y.copy(), np.array(size, dtype=float), value]
    return value


def _poisson_parts(y: np.ndarray, a: np.ndarray, order: int):
    """Value and derivative entries (channel 0 = ``mu``) of the Poisson log-density."""
    _, lf = _response_parts(y)
    mu = np.exp(a)
    d: dict[tuple[int, ...], np.ndarray] = {}
    if order >= 1:
        d[(0,)] = y - mu
    neg = -mu if order >= 2 else None
    for k in range(2, order + 1):
        d[(0,) * k] = neg
    return y * a - mu - lf, d


def _binomial_parts(y: np.ndarray, a: np.ndarray, size: np.ndarray, order: int):
    """Value and derivative entries (channel 0 = ``mu``) of the binomial log-density."""
    s, sm, tail = logistic_parts(a)
    fails = size - y
    # log s = -(max(-a, 0) + tail), log(1 - s) = -(max(a, 0) + tail)
    v = _lchoose(y, size) - y * (np.maximum(-a, 0.0) + tail) \
        - fails * (np.maximum(a, 0.0) + tail)
    d: dict[tuple[int, ...], np.ndarray] = {}
    if order >= 1:
        d[(0,)] = y * sm - fails * s
    if order >= 2:
        w = size * (s * sm)
        d[(0, 0)] = -w
    if order >= 3:
        d[(0, 0, 0)] = -w * (sm - s)
    return v, d


def _single_channel(parts):
    """A kernel for a family whose only channel is ``mu``, from ``parts(y, a, size,
    order) -> (value, entries)``."""

    def kernel(y, etas, weights, size, order, wrt, focus) -> jt.Jet:
        del focus                       # one channel: every entry is in focus
        y = np.asarray(y, dtype=float)
        n = y.shape[0]
        a = _rows(etas["mu"], n)
        names = ("mu",) if wrt is None else tuple(wrt)
        w = None if weights is None else _rows(weights, n)
        with np.errstate(all="ignore"):
            v, d = parts(y, a, size, order if names else 0)
            return _assemble(v, d, (0,) * len(names), order, w, None)

    return kernel


_poisson_kernel = _single_channel(lambda y, a, size, order: _poisson_parts(y, a, order))


def _binomial_kernel(y, etas, weights, size, order, wrt, focus) -> jt.Jet:
    if size is None:
        raise ValueError("the binomial family needs size= (numbers of trials)")
    y = np.asarray(y, dtype=float)
    m = np.broadcast_to(np.asarray(size, dtype=float), y.shape)
    return _binomial_single(y, etas, weights, m, order, wrt, focus)


_binomial_single = _single_channel(_binomial_parts)


def _zip_kernel(y, etas, weights, size, order, wrt, focus) -> jt.Jet:
    del size
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    a = _rows(etas["mu"], n)
    z = _rows(etas["zi"], n)
    names = ("mu", "zi") if wrt is None else tuple(wrt)
    idx = tuple(("mu", "zi").index(c) for c in names)
    w = None if weights is None else _rows(weights, n)
    keep = None if focus is None else frozenset(("mu", "zi").index(c) for c in focus)
    with np.errstate(all="ignore"):
        v, d = _zip_parts(y, a, z, order if names else 0)
        return _assemble(v, d, idx, order, w, keep)


_LOG_2PI = float(np.log(2.0 * np.pi))


def _gaussian_parts(y: np.ndarray, a: np.ndarray, b: np.ndarray, c: float, order: int):
    """Value and derivative entries (channel 0 = ``mu``, 1 = ``phi``) of the Gaussian
    log-density (identity and log links; ``c`` as in the module docstring)."""
    r = a - y
    L = c * b
    s = np.exp(-L)
    rs = r * s
    r2s = r * rs
    d: dict[tuple[int, ...], np.ndarray] = {}
    if order >= 1:
        d[(0,)] = -rs
        d[(1,)] = 0.5 * c * (r2s - 1.0)
    if order >= 2:
        d[(0, 0)] = -s
        d[(0, 1)] = c * rs
        d[(1, 1)] = (-0.5 * c * c) * r2s
    if order >= 3:
        d[(0, 0, 0)] = np.zeros_like(r)
        d[(0, 0, 1)] = c * s
        d[(0, 1, 1)] = (-c * c) * rs
        d[(1, 1, 1)] = (0.5 * c ** 3) * r2s
    return -0.5 * (r2s + L + _LOG_2PI), d


def _gaussian_kernel(c: float, y, etas, weights, order, wrt, focus) -> jt.Jet:
    """The Gaussian jet whose ``phi`` is the variance (``c = 1``) or the sd (``c = 2``)."""
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    a = _rows(etas["mu"], n)
    b = _rows(etas["phi"], n)
    names = ("mu", "phi") if wrt is None else tuple(wrt)
    idx = tuple(("mu", "phi").index(ch) for ch in names)
    w = None if weights is None else _rows(weights, n)
    keep = None if focus is None else frozenset(("mu", "phi").index(ch) for ch in focus)
    with np.errstate(all="ignore"):
        v, d = _gaussian_parts(y, a, b, c, order if names else 0)
        return _assemble(v, d, idx, order, w, keep)


# (module-level functions: a fitted model's density is pickled with its kernel)
def _gaussian_variance_kernel(y, etas, weights, size, order, wrt, focus) -> jt.Jet:
    del size
    return _gaussian_kernel(1.0, y, etas, weights, order, wrt, focus)


def _gaussian_sd_kernel(y, etas, weights, size, order, wrt, focus) -> jt.Jet:
    del size
    return _gaussian_kernel(2.0, y, etas, weights, order, wrt, focus)


_GAUSSIAN_KERNELS = {"variance": _gaussian_variance_kernel, "sd": _gaussian_sd_kernel}


def fused_kernel(family, links: dict) -> Callable | None:
    """The closed-form kernel for ``family`` with ``links`` (name -> Link), or None.

    A kernel is called as ``kernel(y, etas, weights, size, order, wrt, focus)`` (the
    arguments of :meth:`~.density.ModelDensity.evaluate`, ``focus`` by channel name) and
    returns the :class:`~.jet.Jet` the generic path would.
    """
    from .continuous import Gaussian
    from .counts import Binomial, Poisson
    from .wrappers import ZeroInflated

    if (type(family) is Gaussian and tuple(links) == ("mu", "phi")
            and links["mu"].name == "identity" and links["phi"].name == "log"):
        return _GAUSSIAN_KERNELS[family.dispersion]

    if tuple(links) == ("mu",) and type(family) is Poisson and links["mu"].name == "log":
        return _poisson_kernel
    if tuple(links) == ("mu",) and type(family) is Binomial and links["mu"].name == "logit":
        return _binomial_kernel
    if (isinstance(family, ZeroInflated) and type(family.base) is Poisson
            and tuple(links) == ("mu", "zi") and links["mu"].name == "log"
            and links["zi"].name == "logit"):
        return _zip_kernel
    return None

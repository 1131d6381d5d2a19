"""Small densities with hand-derived derivatives, independent of mixedmodels.families.

They implement the density contract the Laplace engine uses (``channels`` and
``evaluate(y, etas, weights, size, order) -> jet`` with ``v``, ``d1``, ``d2``, ``d3``) so the
engine can be checked against oracles that share no code with the package's families.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import special


def _restrict(out, channels, wrt):
    """The derivatives with respect to the channels ``wrt`` only."""
    if wrt is None or tuple(wrt) == tuple(channels):
        return out
    idx = [channels.index(c) for c in wrt]
    for k, name in enumerate(("d1", "d2", "d3"), start=1):
        arr = getattr(out, name)
        if arr is not None:
            for axis in range(1, k + 1):
                arr = np.take(arr, idx, axis=axis)
            setattr(out, name, arr)
    return out


class PoissonLog:
    """Poisson with a log link: l = y eta - exp(eta) - log y!."""

    channels = ("mu",)

    def evaluate(self, y, etas, weights=None, size=None, order=2, wrt=None):
        eta = etas["mu"]
        mu = np.exp(eta)
        w = 1.0 if weights is None else weights
        v = w * (y * eta - mu - special.gammaln(y + 1.0))
        out = SimpleNamespace(v=v, d1=None, d2=None, d3=None)
        if order >= 1:
            out.d1 = (w * (y - mu))[:, None]
        if order >= 2:
            out.d2 = (-w * mu)[:, None, None]
        if order >= 3:
            out.d3 = (-w * mu)[:, None, None, None]
        return out


class GaussianLogVar:
    """Normal with mean eta_mu and variance exp(eta_phi) (glmmTMB 1.1.5's dispersion)."""

    channels = ("mu", "phi")

    def evaluate(self, y, etas, weights=None, size=None, order=2, wrt=None):
        return _restrict(self._evaluate(y, etas, weights, order), self.channels, wrt)

    def _evaluate(self, y, etas, weights, order):
        em, ep = np.broadcast_arrays(etas["mu"], etas["phi"])
        r = y - em
        s = np.exp(-ep)
        w = np.ones_like(y) if weights is None else weights
        n = y.shape[0]
        v = w * (-0.5 * np.log(2 * np.pi) - 0.5 * ep - 0.5 * r * r * s)
        out = SimpleNamespace(v=v, d1=None, d2=None, d3=None)
        if order >= 1:
            out.d1 = np.stack([r * s, -0.5 + 0.5 * r * r * s], axis=1) * w[:, None]
        if order >= 2:
            d2 = np.empty((n, 2, 2))
            d2[:, 0, 0] = -s
            d2[:, 0, 1] = d2[:, 1, 0] = -r * s
            d2[:, 1, 1] = -0.5 * r * r * s
            out.d2 = d2 * w[:, None, None]
        if order >= 3:
            d3 = np.empty((n, 2, 2, 2))
            d3[:, 0, 0, 0] = 0.0
            for idx in [(0, 0, 1), (0, 1, 0), (1, 0, 0)]:
                d3[(slice(None), *idx)] = s
            for idx in [(0, 1, 1), (1, 0, 1), (1, 1, 0)]:
                d3[(slice(None), *idx)] = r * s
            d3[:, 1, 1, 1] = 0.5 * r * r * s
            out.d3 = d3 * w[:, None, None, None]
        return out

r"""Zero-inflated, zero-truncated and hurdle families, for any base family.

* :class:`ZeroInflated` adds the channel ``zi`` (probability ``pi``, logit link):

  .. math::

      P(Y = 0) = \pi + (1 - \pi) f(0), \qquad f_{ZI}(y) = (1 - \pi) f(y), \; y \ne 0.

  For a base without an atom at zero (a continuous density, a truncated count) ``f(0)`` is
  0, so zeros have probability ``pi``: the hurdle. glmmTMB does the same for ``Gamma``,
  ``beta`` and ``lognormal`` (``zt_lik_zero``); for ``gaussian`` and ``t`` with a
  ziformula glmmTMB adds the density at 0 to ``pi``, which mixes a probability with a
  density; here the zero is an atom of probability ``pi`` for them too.
* :class:`Truncated` is the base conditioned on ``Y >= 1``: ``f(y) / (1 - f(0))``
  (glmmTMB's ``truncated_*``).
* :func:`hurdle` is zero-inflation of the truncated base (glmmTMB's ``truncated_*`` with a
  ziformula) or of a positive continuous base (``ziGamma``).

Derivatives go through the base's jets, so every wrapper works for every base family.
"""

from __future__ import annotations

import numpy as np

from .._errors import DataError
from . import jet as jt
from .density import ResponseFamily

__all__ = ["Truncated", "ZeroInflated", "hurdle"]


class _Wrapper(ResponseFamily):
    """Shares the base family's description; subclasses change the distribution."""

    def __init__(self, base: ResponseFamily):
        if not isinstance(base, ResponseFamily):
            raise TypeError(f"expected a ResponseFamily, got {base!r}")
        self.base = base
        self.link = base.link
        self.default_links = dict(base.default_links)
        self.mu_links = base.mu_links
        self.discrete = base.discrete
        self.needs_size = base.needs_size

    @property
    def supports_sparse(self) -> bool:
        """Sparse jets work where they work for the base (the wrappers' own operations
        are generic)."""
        return bool(self.base.supports_sparse)

    def _base_params(self, params):
        return {k: v for k, v in params.items() if k in self.base.parameters}

    def sigma(self, phi):
        return self.base.sigma(phi)

    def start_mu(self, y, weights=None, size=None):
        return self.base.start_mu(y, weights, size)

    def start_phi(self, y, mu, weights=None, size=None):
        return self.base.start_phi(y, mu, weights, size)

    def start_extras(self, y):
        return self.base.start_extras(y)

    def label(self) -> str:
        return f"{self.name}({self.link.name})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r})"


class ZeroInflated(_Wrapper):
    """``base`` with extra zeros of probability ``zi`` (module docstring).

    Parameters
    ----------
    base : ResponseFamily
        Any family (a truncated or positive continuous one gives a hurdle model).
    """

    point_mass_at_zero = True

    def __init__(self, base: ResponseFamily):
        super().__init__(base)
        if "zi" in base.parameters:
            raise ValueError(f"{base!r} is already zero-inflated")
        self.name = base.name
        self.parameters = ("mu", "zi", *base.parameters[1:])
        self.default_links["zi"] = "logit"

    def _log_density(self, y, params, size):
        zi = params["zi"]
        log_pz, log_1mpz = zi.log(), zi.log1m()
        lf = self.base._log_density(y, self._base_params(params), size)
        zero = y == 0
        nonzero = log_1mpz + lf
        if not np.any(zero):
            return nonzero
        if self.base.point_mass_at_zero:
            # log(1 - pi) + lf - log(pi) = lf - logit(pi): exact (lf - eta) for the logit
            at_zero = jt.logaddexp(log_pz, nonzero, diff=lf - zi.logit())
        else:
            at_zero = log_pz
        return jt.where(zero, at_zero, nonzero)

    def mean(self, params, size=None):
        return (1.0 - np.asarray(params["zi"])) * self.base.mean(self._base_params(params), size)

    def variance(self, mu, phi=None, extras=None, size=None):
        extras = dict(extras or {})
        zi = np.asarray(extras.pop("zi"), dtype=float)
        params = {"mu": mu, **({} if phi is None else {"phi": phi}), **extras}
        m = self.base.mean(params, size)
        v = self.base.variance(mu, phi, extras, size=size)
        return (1.0 - zi) * (v + zi * m * m)

    def sample(self, rng, params, size=None):
        y = self.base.sample(rng, self._base_params(params), size)
        zi = np.asarray(params["zi"], dtype=float)
        return np.where(rng.uniform(size=np.broadcast_shapes(y.shape, zi.shape)) < zi, 0.0, y)

    def cdf(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        zi = np.asarray(params["zi"], dtype=float)
        return zi * (y >= 0) + (1.0 - zi) * self.base.cdf(y, self._base_params(params), size)

    def cdf_lower(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        zi = np.asarray(params["zi"], dtype=float)
        base = self.base.cdf_lower(y, self._base_params(params), size)
        return zi * (y > 0) + (1.0 - zi) * base

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        nonzero = y != 0
        n = None if size is None else np.broadcast_to(np.asarray(size, dtype=float),
                                                      y.shape)[nonzero]
        self.base.check_response(y[nonzero], name, size=n, non_integer=non_integer)

    def label(self) -> str:
        return f"zero-inflated {self.base.label()}"


class Truncated(_Wrapper):
    """``base`` conditioned on ``Y >= 1``: ``f(y) / (1 - f(0))``, ``y >= 1``.

    Parameters
    ----------
    base : ResponseFamily
        A count family.
    """

    point_mass_at_zero = False

    def __init__(self, base: ResponseFamily):
        super().__init__(base)
        if not base.discrete:
            raise ValueError(f"zero-truncation needs a count family, not {base.name}")
        self.name = f"truncated_{base.name}"
        self.parameters = base.parameters

    def _log_density(self, y, params, size):
        lf, lf0 = self.base.log_density_with_zero(y, params, size)
        out = lf - jt.log1mexp(lf0)          # log(1 - f(0)) without cancellation
        zero = y <= 0
        if np.any(zero):
            out = jt.where(zero, np.full(y.shape, -np.inf), out)
        return out

    def _p0(self, params, size):
        return self.base.cdf(np.zeros(()), params, size)

    def mean(self, params, size=None):
        return self.base.mean(params, size) / (1.0 - self._p0(params, size))

    def variance(self, mu, phi=None, extras=None, size=None):
        params = {"mu": mu, **({} if phi is None else {"phi": phi}), **dict(extras or {})}
        p0 = self._p0(params, size)
        m = self.base.mean(params, size)
        v = self.base.variance(mu, phi, extras, size=size)
        mt = m / (1.0 - p0)
        return (v + m * m) / (1.0 - p0) - mt * mt

    def sample(self, rng, params, size=None):
        p0 = self._p0(params, size)
        shape = np.broadcast_shapes(np.shape(p0), *(np.shape(v) for v in params.values()))
        u = p0 + (1.0 - p0) * rng.uniform(size=shape)
        return np.maximum(self.base.quantile(u, params), 1.0)

    def quantile(self, u, params):
        """Smallest ``k >= 1`` with ``P(Y <= k) >= u``.

        Parameters
        ----------
        u : array_like
            Probabilities.
        params : mapping
            Natural parameters of the base family.

        Returns
        -------
        ndarray
        """
        p0 = self._p0(params, None)
        return np.maximum(self.base.quantile(p0 + (1.0 - p0) * np.asarray(u), params), 1.0)

    def cdf(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        p0 = self._p0(params, size)
        c = (self.base.cdf(y, params, size) - p0) / (1.0 - p0)
        return np.where(y < 1, 0.0, np.clip(c, 0.0, 1.0))

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        self.base.check_response(y, name, size=size, weights=weights,
                                 non_integer=non_integer)
        zero = y < 1
        if np.any(zero):
            raise DataError(
                f"the response {name!r} has {int(zero.sum())} zeros, but {self.name} is "
                "zero-truncated: zeros are compatible with a truncated family only when "
                "zero-inflation is added (a ziformula), which makes it a hurdle model")

    def label(self) -> str:
        return f"{self.name}({self.link.name})"


def hurdle(base: ResponseFamily) -> ZeroInflated:
    """Hurdle model: zeros with probability ``zi``, positive values from the truncated
    base (counts) or from the base itself (positive continuous families).

    Parameters
    ----------
    base : ResponseFamily
        A count family, or a continuous family without an atom at zero.

    Returns
    -------
    ZeroInflated
    """
    if base.discrete:
        return ZeroInflated(base if isinstance(base, Truncated) else Truncated(base))
    if base.point_mass_at_zero:
        raise ValueError(f"the {base.name} family has an atom at zero; a hurdle needs a "
                         "family without one (zero-inflate it instead)")
    return ZeroInflated(base)

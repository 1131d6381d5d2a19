r"""Count and binomial-type densities in glmmTMB's parameterizations.

All log-densities are written so that no large terms cancel: the negative binomials go
through ``t = log((Var - mu) / mu)``,

.. math::

    \log f(y) = \log\Gamma(y + k) - \log\Gamma(k) - \log y!
        - (k + y)\,\mathrm{softplus}(t) + y\,t, \qquad k = \mu e^{-t},

(size ``k``, ``p = 1/(1 + e^t)``), with the log-gamma difference taken by
:func:`~mixedmodels.families.jet.lgamma_diff`, accurate in the Poisson limit
``k -> infinity``; this is TMB's ``dnbinom_robust`` with ``log(Var - mu) = log mu + t``.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from .._errors import DataError
from . import jet as jt
from . import series
from .density import ResponseFamily, check_counts, check_finite, param_links, weighted_mean

__all__ = [
    "BetaBinomial",
    "Binomial",
    "GenPois",
    "NBinom1",
    "NBinom2",
    "NBinom12",
    "Poisson",
]

_COUNT_LINKS = ("log", "identity", "sqrt")
_PROB_LINKS = ("logit", "probit", "cloglog", "log")
#: Bounds on moment-based starting dispersions (natural scale).
START_PHI_BOUNDS = (1e-3, 1e4)


def ylog(y: np.ndarray, logp: jt.Jet) -> jt.Jet:
    """``y log p`` with 0 where ``y = 0`` even if ``log p`` is not finite."""
    out = logp * y
    bad = (y == 0) & ~np.isfinite(logp.v)
    if np.any(bad):
        out = jt.where(bad, 0.0, out)
    return out


#: Response arrays whose log-factorials are remembered (a fit evaluates the log-density
#: of the same responses hundreds of times; gammaln is the costly part of a Poisson's or
#: binomial's value).
LFACTORIAL_MEMORY = 4
_LFACTORIALS: list[tuple[np.ndarray, np.ndarray]] = []


def lfactorial(y: np.ndarray) -> np.ndarray:
    """``log y!`` (``gammaln(y + 1)``), remembered for the last :data:`LFACTORIAL_MEMORY`
    vectors of values (compared entry by entry: far cheaper than gammaln; grids of series
    densities, 2-D, are not remembered)."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        return special.gammaln(y + 1.0)
    for seen, value in _LFACTORIALS:
        if seen.shape == y.shape and np.array_equal(seen, y):
            return value
    value = special.gammaln(y + 1.0)
    value.flags.writeable = False
    _LFACTORIALS.insert(0, (y.copy(), value))
    del _LFACTORIALS[LFACTORIAL_MEMORY:]
    return value


def _clip_phi(x: float) -> float:
    lo, hi = START_PHI_BOUNDS
    return float(np.clip(x, lo, hi)) if np.isfinite(x) else 1.0


def nb_log_density(y: np.ndarray, log_mu: jt.Jet, t: jt.Jet, k: jt.Jet | None = None
                   ) -> jt.Jet:
    r"""Negative binomial log-pmf from ``log mu`` and ``t = log((Var - mu)/mu)`` (module
    docstring); the size ``k = mu exp(-t)`` may be given when it is a parameter itself
    (``nbinom2``: ``k = phi``, a single value without a dispersion model)."""
    if k is None:
        k = jt.exp(log_mu - t)
    return jt.lgamma_diff(k, y) - lfactorial(y) - (k + y) * jt.softplus(t) + t * y


class _CountFamily(ResponseFamily):
    discrete = True
    supports_sparse = True
    point_mass_at_zero = True
    mu_links = _COUNT_LINKS

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        check_counts(np.asarray(y, dtype=float), name, self.name, non_integer)

    def start_mu(self, y, weights=None, size=None):
        return np.asarray(y, dtype=float) + 0.1

    def _moment_ratio(self, y, mu, weights):
        """``sum w (y - mu)^2 / sum w mu``: the variance-to-mean ratio."""
        r = np.asarray(y, dtype=float) - mu
        return weighted_mean(r * r, weights) / max(weighted_mean(mu, weights), 1e-300)

    # counts without a closed-form cdf/sampler sum their pmf over a window
    def _sd(self, params):
        return np.sqrt(self.variance_of(params))

    def _window_cdf(self, y, params):
        y = np.floor(np.asarray(y, dtype=float))
        p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        shape = np.broadcast_shapes(y.shape, *(v.shape for v in p.values()))
        y = np.broadcast_to(y, shape).ravel()
        p = {k: np.broadcast_to(v, shape).ravel() for k, v in p.items()}
        lo, hi = series.count_window(self.mean(p), self._sd(p))
        lo = np.zeros_like(lo)          # sum from 0: exact, windows start at the origin

        def logpmf(k, rows):
            return self.log_pmf(k, {c: v[rows, None] for c, v in p.items()})

        out = series.window_sum(logpmf, lo, np.minimum(y, hi))
        return np.where(y < 0, 0.0, np.minimum(out, 1.0)).reshape(shape)

    def quantile(self, u, params) -> np.ndarray:
        """Smallest ``k`` with ``P(Y <= k) >= u``."""
        u = np.asarray(u, dtype=float)
        p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        shape = np.broadcast_shapes(u.shape, *(v.shape for v in p.values()))
        u = np.broadcast_to(u, shape).ravel()
        p = {k: np.broadcast_to(v, shape).ravel() for k, v in p.items()}
        lo, hi = series.count_window(self.mean(p), self._sd(p))
        base = self._window_cdf(lo - 1.0, p)

        def logpmf(k, rows):
            return self.log_pmf(k, {c: v[rows, None] for c, v in p.items()})

        return series.window_quantile(logpmf, lo, hi, u, base).reshape(shape)

    def log_pmf(self, k, params) -> np.ndarray:
        """Log-pmf on plain arrays (broadcasting ``k`` against the parameters)."""
        m = 1
        jets = {c: jt.Jet(np.asarray(v, dtype=float), m=m, order=0) for c, v in params.items()}
        with np.errstate(all="ignore"):
            return self._log_density(np.asarray(k, dtype=float), jets, None).v

    def sample(self, rng, params, size=None):
        p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        shape = np.broadcast_shapes(*(v.shape for v in p.values()))
        return self.quantile(rng.uniform(size=shape), p)

    def cdf(self, y, params, size=None):
        return self._window_cdf(y, params)


class Poisson(_CountFamily):
    r"""Poisson: ``log f = y log mu - mu - log y!``; ``E = Var = mu``."""

    name = "poisson"
    default_links = param_links(mu="log")

    def _log_density(self, y, params, size):
        mu = params["mu"]
        return ylog(y, mu.log()) - mu - lfactorial(y)

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        return np.asarray(mu, dtype=float)

    def sample(self, rng, params, size=None):
        return rng.poisson(np.asarray(params["mu"], dtype=float)).astype(float)

    def cdf(self, y, params, size=None):
        y = np.floor(np.asarray(y, dtype=float))
        with np.errstate(invalid="ignore"):
            return np.where(y < 0, 0.0, special.pdtr(np.maximum(y, 0.0), params["mu"]))

    def quantile(self, u, params):
        return stats.poisson.ppf(u, params["mu"])


class _NegBin(_CountFamily):
    """Shared parts of the negative binomials: pmf through ``(log mu, t)``."""

    parameters = ("mu", "phi")
    default_links = param_links(mu="log", phi="log")

    def _t(self, params) -> jt.Jet:
        raise NotImplementedError

    def _k(self, params) -> jt.Jet | None:
        """The size ``k`` when it is a parameter (None: computed from ``t``)."""
        return None

    def _size_prob(self, params):
        """Plain-array size ``k`` and success probability ``k / (k + mu)``."""
        mu = np.asarray(params["mu"], dtype=float)
        v = self.variance_of(params)
        k = mu * mu / (v - mu)
        return k, k / (k + mu)

    def _log_density(self, y, params, size):
        return nb_log_density(y, params["mu"].log(), self._t(params), self._k(params))

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def sample(self, rng, params, size=None):
        k, p = self._size_prob(params)
        return rng.negative_binomial(k, p).astype(float)

    def cdf(self, y, params, size=None):
        k, p = self._size_prob(params)
        y = np.floor(np.asarray(y, dtype=float))
        return np.where(y < 0, 0.0, stats.nbinom.cdf(np.maximum(y, 0.0), k, p))

    def quantile(self, u, params):
        k, p = self._size_prob(params)
        return stats.nbinom.ppf(u, k, p)

    def start_mu(self, y, weights=None, size=None):
        y = np.asarray(y, dtype=float)
        return y + (y == 0) / 6.0


class NBinom2(_NegBin):
    r"""Negative binomial, quadratic: ``Var = mu (1 + mu / phi)``; ``phi`` is the size
    (glmmTMB's ``nbinom2``, ``sigma() = phi``; larger ``phi``, less overdispersion);
    ``t = log mu - log phi``."""

    name = "nbinom2"

    def _t(self, params):
        return params["mu"].log() - params["phi"].log()

    def _k(self, params):
        return params["phi"]

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return mu * (1.0 + mu / phi)

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        excess = weighted_mean(r * r - mu, weights) / max(weighted_mean(mu * mu, weights), 1e-300)
        return _clip_phi(1.0 / excess) if excess > 0 else START_PHI_BOUNDS[1]


class NBinom1(_NegBin):
    r"""Negative binomial, linear: ``Var = mu (1 + phi)``, size ``mu / phi``
    (glmmTMB's ``nbinom1``, ``sigma() = phi``; the Poisson limit is ``phi -> 0``);
    ``t = log phi``."""

    name = "nbinom1"

    def _t(self, params):
        return params["phi"].log()

    def variance(self, mu, phi=None, extras=None, size=None):
        return np.asarray(mu, dtype=float) * (1.0 + np.asarray(phi, dtype=float))

    def start_phi(self, y, mu, weights=None, size=None):
        return _clip_phi(self._moment_ratio(y, mu, weights) - 1.0)


class NBinom12(_NegBin):
    r"""Negative binomial, linear + quadratic: ``Var = mu (1 + phi + mu / psi)``
    (glmmTMB's ``nbinom12``, after 1.1.5; ``psi = exp(eta_psi)`` is a scalar extra
    parameter, the dispersion model acts on ``phi``); ``t = log(phi + mu / psi)``."""

    name = "nbinom12"
    parameters = ("mu", "phi", "psi")
    default_links = param_links(mu="log", phi="log", psi="log")

    def _t(self, params):
        return jt.logaddexp(params["phi"].log(), params["mu"].log() - params["psi"].log())

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return mu * (1.0 + phi + mu / np.asarray(extras["psi"], dtype=float))

    def start_phi(self, y, mu, weights=None, size=None):
        return _clip_phi(0.5 * (self._moment_ratio(y, mu, weights) - 1.0))

    def start_extras(self, y):
        return {"psi": 1.0}


class GenPois(_CountFamily):
    r"""Generalized Poisson (Consul & Famoye 1992) in glmmTMB's mean parameterization.

    With ``theta = mu / sqrt(phi)`` and ``lambda = 1 - 1/sqrt(phi)``:

    .. math::

        \log f(y) = \log\theta + (y - 1)\log(\theta + \lambda y) - \theta - \lambda y
            - \log y!,

    ``E = mu``, ``Var = mu phi`` (``sigma() = phi``). For ``phi < 1`` (under-dispersion,
    ``lambda < 0``) the pmf is Consul's, undefined (NaN) beyond ``y > -theta/lambda``
    (except at ``y = 1``, where the power is 1) and not exactly normalized, as in glmmTMB.
    """

    name = "genpois"
    parameters = ("mu", "phi")
    default_links = param_links(mu="log", phi="log")

    def _log_density(self, y, params, size):
        half = params["phi"].log() * 0.5
        log_theta = params["mu"].log() - half
        theta = jt.exp(log_theta)
        lam = -jt.expm1(-half)           # 1 - 1/sqrt(phi) without cancellation near phi = 1
        # (theta + lambda y)^(y - 1) is 1 at y = 1 whatever the sign of its base: under
        # under-dispersion (lambda < 0) a y = 1 beyond Consul's support bound keeps its
        # finite value theta exp(-theta - lambda) (glmmTMB's, whose AD tape drops the
        # product with the constant 0), instead of 0 * log(negative) = NaN
        return (log_theta + ylog(y - 1.0, jt.log(theta + lam * y)) - theta - lam * y
                - lfactorial(y))

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        return np.asarray(mu, dtype=float) * np.asarray(phi, dtype=float)

    def start_phi(self, y, mu, weights=None, size=None):
        return _clip_phi(self._moment_ratio(y, mu, weights))


class Binomial(ResponseFamily):
    r"""Binomial: ``y`` successes of ``size`` trials with success probability ``mu``:
    ``log f = log C(size, y) + y log mu + (size - y) log(1 - mu)``; ``E = size mu``,
    ``Var = size mu (1 - mu)``. ``log mu`` and ``log(1 - mu)`` come from the link's
    accurate forms (glmmTMB's ``dbinom_robust`` on ``logit(mu)``)."""

    name = "binomial"
    default_links = param_links(mu="logit")
    mu_links = _PROB_LINKS
    discrete = True
    point_mass_at_zero = True
    needs_size = True
    supports_sparse = True

    def _log_density(self, y, params, size):
        mu = params["mu"]
        lchoose = lfactorial(size) - lfactorial(y) - lfactorial(size - y)
        return ylog(y, mu.log()) + ylog(size - y, mu.log1m()) + lchoose

    def mean(self, params, size=None):
        return _trials(size) * np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return _trials(size) * mu * (1.0 - mu)

    def sample(self, rng, params, size=None):
        mu = np.asarray(params["mu"], dtype=float)
        n = np.broadcast_to(_trials(size), mu.shape)
        return rng.binomial(np.round(n).astype(np.int64), mu).astype(float)

    def cdf(self, y, params, size=None):
        y = np.floor(np.asarray(y, dtype=float))
        n = _trials(size)
        return np.where(y < 0, 0.0, stats.binom.cdf(np.maximum(y, 0.0), n, params["mu"]))

    def quantile(self, u, params, size=None):
        return stats.binom.ppf(u, _trials(size), params["mu"])

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        check_successes(np.asarray(y, dtype=float), size, name, self.name, non_integer)

    def start_mu(self, y, weights=None, size=None):
        return (np.asarray(y, dtype=float) + 0.5) / (_trials(size) + 1.0)


class BetaBinomial(Binomial):
    r"""Beta-binomial (Morris 1997): ``y | p ~ Binomial(size, p)``, ``p ~ Beta(mu phi,
    (1 - mu) phi)``:

    .. math::

        \log f = \log C(n, y) + [\log\Gamma(y + a) - \log\Gamma(a)]
            + [\log\Gamma(n - y + b) - \log\Gamma(b)]
            - [\log\Gamma(n + \phi) - \log\Gamma(\phi)],

    ``a = mu phi``, ``b = (1 - mu) phi``; ``E = n mu``,
    ``Var = n mu (1 - mu) (phi + n) / (phi + 1)`` (``sigma() = phi``).
    """

    name = "betabinomial"
    parameters = ("mu", "phi")
    default_links = param_links(mu="logit", phi="log")
    point_mass_at_zero = True

    def _log_density(self, y, params, size):
        mu, phi = params["mu"], params["phi"]
        log_phi = phi.log()
        a = jt.exp(mu.log() + log_phi)
        b = jt.exp(mu.log1m() + log_phi)
        lchoose = lfactorial(size) - lfactorial(y) - lfactorial(size - y)
        return (jt.lgamma_diff(a, y) + jt.lgamma_diff(b, size - y)
                - jt.lgamma_diff(jt.exp(log_phi), size) + lchoose)

    def variance(self, mu, phi=None, extras=None, size=None):
        n = _trials(size)
        return super().variance(mu, size=size) * (phi + n) / (phi + 1.0)

    def sample(self, rng, params, size=None):
        mu = np.asarray(params["mu"], dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        p = rng.beta(mu * phi, (1.0 - mu) * phi)
        n = np.broadcast_to(_trials(size), p.shape)
        return rng.binomial(np.round(n).astype(np.int64), p).astype(float)

    def cdf(self, y, params, size=None):
        y = np.floor(np.asarray(y, dtype=float))
        mu, phi = params["mu"], params["phi"]
        n = np.round(_trials(size))
        return np.where(y < 0, 0.0, stats.betabinom.cdf(np.maximum(y, 0.0), n, mu * phi,
                                                          (1.0 - mu) * phi))

    def start_phi(self, y, mu, weights=None, size=None):
        # mu: success probabilities (as start_mu gives them)
        n = _trials(size)
        r = np.asarray(y, dtype=float) - n * mu
        binvar = weighted_mean(n * mu * (1.0 - mu), weights)
        ratio = weighted_mean(r * r, weights) / max(binvar, 1e-300)
        nbar = max(weighted_mean(n, weights), 1.0)
        # (phi + n) / (phi + 1) = ratio
        if not 1.0 < ratio < nbar:
            return START_PHI_BOUNDS[1]
        return _clip_phi((nbar - ratio) / (ratio - 1.0))


def _trials(size) -> np.ndarray:
    return np.ones(()) if size is None else np.asarray(size, dtype=float)


def check_successes(y: np.ndarray, size, name: str, family: str, non_integer: str) -> None:
    """Binomial-type responses: whole numbers of successes between 0 and ``size``."""
    check_finite(y, name)
    n = np.broadcast_to(_trials(size), y.shape)
    check_counts(n, f"{name} (numbers of trials)", family, non_integer)
    check_counts(y, name, family, non_integer)
    bad = y > n
    if np.any(bad):
        raise DataError(
            f"the response {name!r} has {int(bad.sum())} values above their numbers of trials "
            f"(e.g. {y[bad].flat[0]:g} successes of {n[bad].flat[0]:g}); {family} responses "
            "are numbers of successes (use binomial_response() for proportions with weights "
            "or cbind(successes, failures))")


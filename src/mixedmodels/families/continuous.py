r"""Continuous densities in glmmTMB's parameterizations.

Log-gamma terms are written through the Stirling remainder ``r(x)``
(:func:`~mixedmodels.families.jet.stirling_rem`) so that large shapes and precisions do
not cancel digits: e.g. the Gamma with shape ``phi`` and mean ``mu`` is

.. math::

    \log f(y) = \phi\,(1 + \log(y/\mu) - y/\mu) + \tfrac12\log\phi - \tfrac12\log 2\pi
        - r(\phi) - \log y .
"""

from __future__ import annotations

import numpy as np
from scipy import special

from . import jet as jt
from ._special import LOG_2PI
from .density import ResponseFamily, _fail, check_finite, param_links, weighted_mean

__all__ = ["Beta", "Gamma", "Gaussian", "Lognormal", "StudentT", "ZiGamma"]


class _Continuous(ResponseFamily):
    parameters = ("mu", "phi")
    supports_sparse = True
    discrete = False
    point_mass_at_zero = False


class Gaussian(_Continuous):
    r"""Normal with mean ``mu``.

    glmmTMB 1.1.5 (the project's reference) models ``phi = sigma^2`` with the log link, so
    its dispersion linear predictor is ``log sigma^2`` and ``sigma() = sqrt(phi)``; later
    glmmTMB versions use ``phi = sigma`` (``dispersion="sd"``).

    .. math:: \log f(y) = -\tfrac12\log 2\pi - \tfrac12\log\sigma^2
        - (y - \mu)^2 / (2\sigma^2).

    Parameters
    ----------
    link : str, optional
        Link of the mean (identity).
    dispersion : {"variance", "sd"}
        Meaning of ``phi``.
    """

    name = "gaussian"
    default_links = param_links(mu="identity", phi="log")
    mu_links = ("identity", "log", "inverse")

    def __init__(self, link=None, dispersion: str = "variance"):
        super().__init__(link)
        if dispersion not in ("variance", "sd"):
            raise ValueError(f"dispersion must be 'variance' or 'sd', got {dispersion!r}")
        self.dispersion = dispersion

    def _log_var(self, params) -> jt.Jet:
        lp = params["phi"].log()
        return lp if self.dispersion == "variance" else lp * 2.0

    def _log_density(self, y, params, size):
        log_var = self._log_var(params)
        r = params["mu"] - y
        return (r.square() * jt.exp(-log_var) + log_var + LOG_2PI) * -0.5

    def _sd(self, phi):
        phi = np.asarray(phi, dtype=float)
        return np.sqrt(phi) if self.dispersion == "variance" else phi

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        return np.broadcast_to(self._sd(phi) ** 2, np.shape(mu)) * 1.0

    def sigma(self, phi):
        return self._sd(phi)

    def sample(self, rng, params, size=None):
        mu = np.asarray(params["mu"], dtype=float)
        return rng.normal(mu, self._sd(params["phi"]))

    def cdf(self, y, params, size=None):
        return special.ndtr((np.asarray(y, dtype=float) - params["mu"]) / self._sd(params["phi"]))

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        v = max(weighted_mean(r * r, weights), 1e-12)
        return v if self.dispersion == "variance" else float(np.sqrt(v))


class Gamma(_Continuous):
    r"""Gamma with mean ``mu`` and shape ``phi`` (glmmTMB: shape ``phi``, scale
    ``mu / phi``); ``Var = mu^2 / phi``, ``sigma() = 1 / sqrt(phi)`` (the coefficient of
    variation). Zeros are outside the support: a hurdle (``ziGamma`` with a ziformula)
    models them."""

    name = "Gamma"
    default_links = param_links(mu="inverse", phi="log")
    mu_links = ("inverse", "log", "identity")

    def _log_density(self, y, params, size):
        log_mu, phi = params["mu"].log(), params["phi"]
        log_y = np.log(y)
        ratio = jt.exp(log_mu * -1.0) * y            # y / mu
        return (phi * (1.0 - ratio + (-log_mu + log_y)) + phi.log() * 0.5
                - jt.stirling_rem(phi) - 0.5 * LOG_2PI - log_y)

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return mu * mu / phi

    def sigma(self, phi):
        return 1.0 / np.sqrt(np.asarray(phi, dtype=float))

    def sample(self, rng, params, size=None):
        phi = np.asarray(params["phi"], dtype=float)
        return rng.gamma(phi, np.asarray(params["mu"], dtype=float) / phi)

    def cdf(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        return np.where(y <= 0, 0.0, special.gammainc(phi, np.maximum(y, 0.0) * phi
                                                      / params["mu"]))

    _zero_advice = ("Gamma responses must be > 0; model the zeros with a hurdle: "
                    "family='ziGamma' with a ziformula")

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        check_finite(y, name)
        if np.any(y < 0):
            _fail("negative values", name, y < 0, y, "Gamma responses must be > 0")
        if np.any(y == 0):
            _fail("zeros", name, y == 0, y, self._zero_advice)

    def start_phi(self, y, mu, weights=None, size=None):
        r = (np.asarray(y, dtype=float) - mu) / mu
        cv2 = weighted_mean(r * r, weights)
        return float(np.clip(1.0 / cv2, 1e-3, 1e6)) if cv2 > 0 else 1e6


class ZiGamma(Gamma):
    """glmmTMB's ``ziGamma``: the Gamma, meant for hurdle models (wrap it in
    :class:`~mixedmodels.families.wrappers.ZeroInflated`; zeros then have probability
    ``zi``)."""

    name = "ziGamma"
    _zero_advice = ("zeros are allowed in a ziGamma model only with zero-inflation "
                    "(a ziformula), which makes it a hurdle Gamma model")


class Beta(_Continuous):
    r"""Beta with mean ``mu`` and precision ``phi`` (Ferrari & Cribari-Neto 2004):
    shapes ``a = mu phi``, ``b = (1 - mu) phi``; ``Var = mu (1 - mu) / (1 + phi)``,
    ``sigma() = phi``. In Stirling form

    .. math::

        \log f = \tfrac12\log\phi - \tfrac12\log 2\pi + r(\phi) - r(a) - r(b)
            + a\log(y/\mu) + b\log\frac{1-y}{1-\mu}
            + \tfrac12\log(\mu(1-\mu)) - \log(y(1-y)).
    """

    name = "beta"
    default_links = param_links(mu="logit", phi="log")
    mu_links = ("logit", "probit", "cloglog")

    def _log_density(self, y, params, size):
        mu, phi = params["mu"], params["phi"]
        log_mu, log1m_mu, log_phi = mu.log(), mu.log1m(), phi.log()
        a, b = jt.exp(log_mu + log_phi), jt.exp(log1m_mu + log_phi)
        log_y, log1m_y = np.log(y), np.log1p(-y)
        return (log_phi * 0.5 + jt.stirling_rem(jt.exp(log_phi)) - jt.stirling_rem(a)
                - jt.stirling_rem(b) + a * (-log_mu + log_y) + b * (-log1m_mu + log1m_y)
                + (log_mu + log1m_mu) * 0.5 - (0.5 * LOG_2PI + log_y + log1m_y))

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        mu = np.asarray(mu, dtype=float)
        return mu * (1.0 - mu) / (1.0 + phi)

    def sample(self, rng, params, size=None):
        mu, phi = np.asarray(params["mu"], dtype=float), np.asarray(params["phi"], dtype=float)
        return rng.beta(mu * phi, (1.0 - mu) * phi)

    def cdf(self, y, params, size=None):
        y = np.clip(np.asarray(y, dtype=float), 0.0, 1.0)
        mu, phi = params["mu"], params["phi"]
        return special.betainc(mu * phi, (1.0 - mu) * phi, y)

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        check_finite(y, name)
        bad = (y <= 0) | (y >= 1)
        if np.any(bad):
            _fail("values outside (0, 1)", name, bad, y,
                  "the beta family needs 0 < y < 1: squeeze the data into the open interval "
                  "(e.g. (y (n - 1) + 0.5) / n, Smithson & Verkuilen 2006), model exact zeros "
                  "with a ziformula, or use ordered beta regression (ordbeta) for data in "
                  "[0, 1]")

    def start_mu(self, y, weights=None, size=None):
        return np.clip(np.asarray(y, dtype=float), 1e-3, 1.0 - 1e-3)

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        v = weighted_mean(r * r, weights)
        m = weighted_mean(mu * (1.0 - mu), weights)
        return float(np.clip(m / v - 1.0, 1e-2, 1e6)) if v > 0 else 1e6


class Lognormal(_Continuous):
    r"""Log-normal with mean ``mu`` and standard deviation ``phi`` on the data scale
    (glmmTMB's ``lognormal``, added after 1.1.5): ``log y ~ N(m, s^2)`` with
    ``s^2 = log(1 + (phi/mu)^2)``, ``m = log mu - s^2/2``; ``Var = phi^2``,
    ``sigma() = phi``."""

    name = "lognormal"
    default_links = param_links(mu="log", phi="log")
    mu_links = ("log", "identity", "inverse")

    def _log_scale(self, params):
        log_mu = params["mu"].log()
        s2 = jt.softplus((params["phi"].log() - log_mu) * 2.0)   # log1p((phi / mu)^2)
        return log_mu - s2 * 0.5, s2

    def _log_density(self, y, params, size):
        m, s2 = self._log_scale(params)
        log_y = np.log(y)
        return ((m - log_y).square() / s2 + s2.log() + LOG_2PI) * -0.5 - log_y

    def _log_params(self, params):
        mu = np.asarray(params["mu"], dtype=float)
        s2 = np.log1p((np.asarray(params["phi"], dtype=float) / mu) ** 2)
        return np.log(mu) - 0.5 * s2, np.sqrt(s2)

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        return np.broadcast_to(np.asarray(phi, dtype=float) ** 2, np.shape(mu)) * 1.0

    def sample(self, rng, params, size=None):
        m, s = self._log_params(params)
        return np.exp(rng.normal(m, s))

    def cdf(self, y, params, size=None):
        y = np.asarray(y, dtype=float)
        m, s = self._log_params(params)
        with np.errstate(divide="ignore"):
            return np.where(y <= 0, 0.0, special.ndtr((np.log(np.maximum(y, 0.0)) - m) / s))

    def check_response(self, y, name="y", size=None, weights=None, non_integer="error"):
        y = np.asarray(y, dtype=float)
        check_finite(y, name)
        if np.any(y <= 0):
            _fail("values <= 0", name, y <= 0, y,
                  "lognormal responses must be > 0 (zeros are allowed with a ziformula)")

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        return float(max(np.sqrt(weighted_mean(r * r, weights)), 1e-6))


class StudentT(_Continuous):
    r"""Student t with location ``mu``, scale ``phi`` and ``df`` degrees of freedom
    (glmmTMB's ``t_family``: ``dt((y - mu)/phi, df) / phi``, ``df = exp(eta_df)``):

    .. math::

        \log f = \log\Gamma(\tfrac{\nu+1}2) - \log\Gamma(\tfrac\nu2) - \tfrac12\log(\nu\pi)
            - \log\phi - \tfrac{\nu+1}2 \log(1 + z^2/\nu), \quad z = (y - \mu)/\phi;

    ``Var = phi^2 df / (df - 2)`` (``df > 2``), ``sigma() = phi``.
    """

    name = "t"
    parameters = ("mu", "phi", "df")
    default_links = param_links(mu="identity", phi="log", df="log")
    mu_links = ("identity", "log", "inverse")

    def _log_density(self, y, params, size):
        log_phi, df = params["phi"].log(), params["df"]
        z2 = (params["mu"] - y).square() * jt.exp(log_phi * -2.0)
        half = df * 0.5
        return (jt.lgamma_diff(half, 0.5) - (df.log() + np.log(np.pi)) * 0.5 - log_phi
                - (df + 1.0) * 0.5 * jt.log1p(z2 / df))

    def mean(self, params, size=None):
        return np.asarray(params["mu"], dtype=float)

    def variance(self, mu, phi=None, extras=None, size=None):
        df = np.asarray(extras["df"], dtype=float)
        phi = np.asarray(phi, dtype=float)
        with np.errstate(divide="ignore"):
            v = np.where(df > 2, phi * phi * df / (df - 2.0), np.inf)
        return np.broadcast_to(v, np.broadcast_shapes(np.shape(mu), v.shape)) * 1.0

    def sample(self, rng, params, size=None):
        mu = np.asarray(params["mu"], dtype=float)
        df = np.asarray(params["df"], dtype=float)
        shape = np.broadcast_shapes(mu.shape, df.shape, np.shape(params["phi"]))
        return mu + np.asarray(params["phi"]) * rng.standard_t(np.broadcast_to(df, shape))

    def cdf(self, y, params, size=None):
        z = (np.asarray(y, dtype=float) - params["mu"]) / params["phi"]
        return special.stdtr(params["df"], z)

    def start_phi(self, y, mu, weights=None, size=None):
        r = np.asarray(y, dtype=float) - mu
        return float(max(np.sqrt(weighted_mean(r * r, weights)), 1e-6))

    def start_extras(self, y):
        # glmmTMB starts at psi = 0 (df = 1, Cauchy); a moderate df is a safer start
        return {"df": 10.0}

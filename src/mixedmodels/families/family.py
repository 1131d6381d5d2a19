r"""Response distributions of generalized linear mixed models.

A :class:`Family` knows the conditional distribution of ``y`` given the linear predictor:
its variance function ``V(mu)``, unit deviances, full log-likelihood, valid links, response
checks and starting values. Prior weights ``w`` follow R's ``glm`` conventions: for the
binomial they are the numbers of trials (``y`` is then the proportion of successes), for the
Poisson and negative binomial they multiply the log-likelihood, and for families with a
dispersion parameter ``phi`` they divide it (``Var(y) = phi V(mu) / w``).

Every family's minus twice log-density splits into a deviance part and a saturated part,

.. math::

    -2 \log p(y_i \mid \mu_i, \phi) = d_i(y_i, \mu_i) / \phi + s_i(y_i, \phi),
    \qquad s_i = -2 \log p(y_i \mid \mu_i = y_i, \phi),

with ``d_i`` the (prior-weighted) unit deviance and ``phi = 1`` for families without a
dispersion parameter. The Laplace and quadrature objectives use the full ``-2 log p`` so that
the log-likelihood means the same at every quadrature order (lme4 leaves ``s`` out for
nAGQ > 1).

Working weights. The Fisher (expected-information) weights ``w mu_eta^2 / V(mu)`` drive
PIRLS and, as in lme4, the Laplace approximation of binomial, Poisson and negative binomial
models. The observed information,

.. math::

    w_i^{obs} = w_i^{Fisher} - w_i (y_i - \mu_i)
                \left[\frac{\mu''_i}{V(\mu_i)} - \frac{\mu'^2_i V'(\mu_i)}{V(\mu_i)^2}\right],

(``mu' = d mu / d eta``, ``mu''`` its derivative) equals them for canonical links and is what
glmmTMB's exact Laplace approximation uses; families with a dispersion parameter use it by
default so that their maximum-likelihood fits are glmmTMB's.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, special

from .._errors import DataError, FormulaError, MixedModelsWarning
from .._messages import user_stacklevel
from .links import Link, make_link

__all__ = [
    "FAMILIES",
    "Binomial",
    "Family",
    "Gamma",
    "Gaussian",
    "InverseGaussian",
    "NegativeBinomial",
    "NonIntegerCountWarning",
    "Poisson",
    "make_family",
    "nb_theta_ml",
]

#: Relative distance from an integer below which a count is taken as whole.
INTEGER_TOL = 1e-8
#: Tolerance (in log phi) of the profiled Gamma dispersion.
DISPERSION_TOL = 1e-12
#: Bracket (in log phi) searched for the Gamma dispersion.
LOG_DISPERSION_BRACKET = (-30.0, 30.0)


class NonIntegerCountWarning(MixedModelsWarning):
    """A count response (or binomial successes) is not a whole number."""


def _xlogy(x, y):
    return special.xlogy(x, y)


#: Below this ``|t|``, ``t = (y - mu) / mu``, the Poisson unit deviance is summed from its
#: Taylor series (the closed form cancels to relative error ``eps / t^2`` there).
SERIES_T_MAX = 1e-2
#: The Poisson deviance as ``sum(w mu) - sum(w y log mu) + const`` (two dot products, the
#: fast form) is used while its rounding error, about ``eps sum w y (1 + |log y|)``, stays
#: below this many deviance units per unit of prior weight -- far below the resolution PIRLS's
#: step-halving needs (``PDEV_ROUNDING`` = 1e-12 relative); larger counts use the exact
#: per-observation form.
SUM_FORM_MAX_ERROR = 1e-13
#: Coefficients of ``h(t) / t^2 = sum_{k>=2} (-1)^k t^(k-2) / (k (k-1))`` up to ``k = 9``:
#: the first omitted term is ``2 t^8 / 90`` relative, below 1e-14 for ``|t| < 1e-2``.
_H_SERIES = np.array([(-1.0) ** k / (k * (k - 1)) for k in range(2, 10)])


def _poisson_half_deviance(y, mu):
    r"""``y log(y / mu) - (y - mu)`` without cancellation.

    With ``t = (y - mu) / mu`` it is ``mu h(t)``, ``h(t) = (1 + t) log1p(t) - t``. The
    textbook form subtracts two numbers of size ``y |log mu|``: for counts around 1e9 the
    deviance of a whole data set came out with an absolute error of ~1e-4, far above the
    changes PIRLS's step-halving must resolve (it then failed). ``h`` has relative error
    ``eps / t^2`` in closed form, so small ``|t|`` (large counts near their mean) use the
    series. ``y = 0`` gives ``t = -1`` and ``h = 1`` (``0 log 0 = 0``).
    """
    y = np.asarray(y, dtype=float)
    t = (y - mu) / mu
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (1.0 + t) * np.log1p(t) - t
    h = np.where(y == 0, 1.0, h)
    small = np.abs(t) < SERIES_T_MAX
    if small.any():
        ts = t[small]
        h[small] = ts * ts * np.polynomial.polynomial.polyval(ts, _H_SERIES)
    return mu * h


def _positive_finite(mu) -> bool:
    lo, hi = np.min(mu), np.max(mu)     # NaN fails both comparisons
    return bool(lo > 0 and hi < np.inf)


class Family:
    """Abstract response family; subclasses fill in the class attributes and methods.

    Parameters
    ----------
    link : str or Link, optional
        Link function (the family's default link when omitted).
    """

    #: R's name of the family (``"binomial"``, ``"Gamma"``)
    name: str = ""
    #: links the family accepts (R's names)
    links: tuple[str, ...] = ()
    default_link: str = ""
    canonical_link: str = ""
    #: under the canonical link ``eta`` is the natural parameter itself, so that
    #: ``d mu / d eta = V(mu)`` (binomial logit, Poisson log; R's canonical links of the
    #: Gamma and inverse Gaussian are the natural parameter only up to a factor)
    canonical_is_natural: bool = False
    #: has a dispersion parameter phi estimated with the fit
    has_dispersion: bool = False
    #: Hessian used for the Laplace approximation: "expected" (lme4) or "observed"
    laplace_hessian: str = "expected"

    def __init__(self, link: str | Link | None = None):
        lk = make_link(self.default_link if link is None else link)
        if lk.name not in self.links:
            raise FormulaError(
                f"the {self.name} family does not support the {lk.name!r} link; choose one "
                f"of {', '.join(repr(x) for x in self.links)}"
            )
        self.link: Link = lk

    # -- distribution -----------------------------------------------------------------
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function ``V(mu)``: ``Var(y_i) = phi V(mu_i) / w_i``.

        Parameters
        ----------
        mu : ndarray (n,)
            Means.

        Returns
        -------
        ndarray (n,)
        """
        raise NotImplementedError

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """Derivative of the variance function, ``dV / dmu`` (enters the observed
        information, see the module docstring).

        Parameters
        ----------
        mu : ndarray (n,)
            Means.

        Returns
        -------
        ndarray (n,)
        """
        raise NotImplementedError

    def variance_deriv2(self, mu: np.ndarray) -> np.ndarray:
        """Second derivative of the variance function, ``d^2 V / dmu^2`` (enters the
        derivative of the Laplace weights, which the exact gradient of glmer's Laplace
        deviance needs).

        Parameters
        ----------
        mu : ndarray (n,)
            Means.

        Returns
        -------
        ndarray (n,)
        """
        raise NotImplementedError

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Prior-weighted unit deviances ``d_i`` (R's ``family$dev.resids``).

        ``d_i = 2 w_i [log p(y_i | mu = y_i) - log p(y_i | mu_i)]`` at ``phi = 1``: zero when
        ``mu_i = y_i``, and ``-2 log p = d_i / phi + s_i``.

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        mu : ndarray (n,)
            Means.
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).

        Returns
        -------
        ndarray (n,)
        """
        raise NotImplementedError

    def saturated(self, y: np.ndarray, w: np.ndarray, phi: float = 1.0) -> np.ndarray:
        """Saturated terms ``s_i = -2 log p(y_i | mu_i = y_i, phi)`` (module docstring).

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).
        phi : float
            Dispersion (1 for families without one).

        Returns
        -------
        ndarray (n,)
        """
        raise NotImplementedError

    def valid_mu(self, mu: np.ndarray) -> bool:
        """Whether the means are inside the family's parameter space (finite; positive
        for counts and positive responses; inside (0, 1) for the binomial).

        Parameters
        ----------
        mu : ndarray (n,)
            Means.

        Returns
        -------
        bool
        """
        return bool(np.all(np.isfinite(mu)))

    def deviance_function(self, y: np.ndarray, w: np.ndarray):
        """``mu -> sum_i d_i(y_i, mu_i)`` for fixed ``y`` and ``w``.

        PIRLS evaluates the deviance several times per step; families override this with
        the terms that do not depend on ``mu`` summed once.

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).

        Returns
        -------
        callable
            ``f(mu) -> float``, the total deviance.
        """
        return lambda mu: float(np.sum(self.dev_resids(y, mu, w)))

    def m2ll_function(self, y: np.ndarray, w: np.ndarray):
        """``mu -> -2 log p(y_i | mu_i) = d_i + s_i`` per observation at ``phi = 1``, for
        fixed ``y`` and ``w``: what adaptive quadrature evaluates at every node of every
        level (:mod:`~mixedmodels.objective.agq`). Families override this with the terms
        that do not depend on ``mu`` formed once.

        Parameters
        ----------
        y, w : ndarray (n,)
            Responses and prior weights, as for :meth:`deviance_function`.

        Returns
        -------
        callable
            ``f(mu)``: a new array of ``mu``'s shape (its last axis runs over the
            observations).
        """
        sat = np.asarray(self.saturated(y, w, 1.0), dtype=float)
        return lambda mu: self.dev_resids(y, mu, w) + sat

    def mustart(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Starting means (R's ``family$initialize``), inside the parameter space.

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).

        Returns
        -------
        ndarray (n,)
        """
        return np.asarray(y, dtype=float).copy()

    def check_response(self, y: np.ndarray, w: np.ndarray, what: str) -> None:
        """Raise a :class:`DataError` for responses outside the support (and warn about
        non-integer counts).

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).
        what : str
            Names the response in the messages.
        """

    # -- derived quantities -----------------------------------------------------------
    def minus2_loglik(self, y, mu, w, phi: float = 1.0) -> float:
        """Minus twice the log-likelihood, ``-2 sum_i log p(y_i | mu_i, phi) =
        sum_i d_i / phi + sum_i s_i``.

        Parameters
        ----------
        y, mu, w : ndarray (n,)
            Responses, means and prior weights.
        phi : float
            Dispersion (1 for families without one).

        Returns
        -------
        float
        """
        return float(np.sum(self.dev_resids(y, mu, w)) / phi
                     + np.sum(self.saturated(y, w, phi)))

    def fisher_weights(self, eta, mu, w) -> np.ndarray:
        """Fisher (expected-information) weights ``w mu'(eta)^2 / V(mu)``: the PIRLS
        working weights.

        Parameters
        ----------
        eta, mu, w : ndarray (n,)
            Linear predictor, means and prior weights.

        Returns
        -------
        ndarray (n,)
        """
        me = self.link.mu_eta(eta)
        return w * me * me / self.variance(mu)

    def observed_weights(self, y, eta, mu, w) -> np.ndarray:
        """Observed information of ``d_i / 2`` with respect to ``eta_i`` (module
        docstring): the Fisher weight minus ``w (y - mu) [mu'' / V - mu'^2 V' / V^2]``.

        Parameters
        ----------
        y, eta, mu, w : ndarray (n,)
            Responses, linear predictor, means and prior weights.

        Returns
        -------
        ndarray (n,)
            Equal to :meth:`fisher_weights` for the canonical link.
        """
        me = self.link.mu_eta(eta)
        v = self.variance(mu)
        curv = self.link.mu_eta2(eta) / v - me * me * self.variance_deriv(mu) / (v * v)
        return w * me * me / v - w * (y - mu) * curv

    def laplace_weights(self, y, eta, mu, w, hessian: str | None = None) -> np.ndarray:
        """Weights ``W`` of the Laplace approximation's Hessian ``Lambda' Z' W Z Lambda + I``.

        Parameters
        ----------
        y, eta, mu, w : ndarray (n,)
            Responses, linear predictor, means and prior weights.
        hessian : {"expected", "observed"}, optional
            Overrides the family's default (:attr:`laplace_hessian`): lme4's expected
            information, or glmmTMB's observed information.

        Returns
        -------
        ndarray (n,)
        """
        kind = self.laplace_hessian if hessian is None else hessian
        if kind == "expected" or self.link.name == self.canonical_link:
            return self.fisher_weights(eta, mu, w)
        if kind != "observed":
            raise ValueError(f"hessian must be 'expected' or 'observed', got {kind!r}")
        return self.observed_weights(y, eta, mu, w)

    def profile_dispersion(self, y, w, total: float, counts=None) -> float:
        """Dispersion minimizing ``total / phi + sum_i s_i(phi)``.

        ``total`` is the sum of deviances plus the squared length of the spherical random
        effects at the conditional modes; only families with a dispersion parameter have
        one.

        Parameters
        ----------
        y : ndarray (n,)
            Responses (binomial: proportions of the trials).
        w : ndarray (n,)
            Prior weights (binomial: numbers of trials).
        total : float
            ``sum_i d_i + |u|^2`` at the conditional modes.
        counts : ndarray (n,), optional
            How many observations each entry stands for (``s_i(phi) - s_i(1)`` depends on
            ``w_i`` only, so distinct prior weights with their counts give the same
            profile as all rows: the Dask backend's reduced form). None: one each.

        Returns
        -------
        float
            The minimizing ``phi``.
        """
        raise NotImplementedError(f"the {self.name} family has no dispersion parameter")

    def label(self) -> str:
        """The family line of lme4's summary.

        Returns
        -------
        str
            ``"binomial  ( logit )"``; the negative binomial shows its shape.
        """
        return f"{self.name}  ( {self.link.name} )"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.link == other.link

    def __hash__(self) -> int:
        return hash((type(self), self.link))


def _warn_non_integer(counts: np.ndarray, what: str) -> None:
    frac = np.abs(counts - np.round(counts))
    bad = frac > INTEGER_TOL * np.maximum(1.0, np.abs(counts))
    if np.any(bad):
        warnings.warn(
            f"{int(bad.sum())} non-integer values in the {what}; the likelihood treats them "
            "as counts (check the response, or use a continuous family)",
            NonIntegerCountWarning, stacklevel=user_stacklevel(),
        )


class Binomial(Family):
    r"""Binomial: ``y`` is a proportion of ``w`` trials (``w = 1`` for 0/1 data),
    ``V(mu) = mu (1 - mu)``."""

    name = "binomial"
    links = ("logit", "probit", "cauchit", "log", "cloglog")
    default_link = canonical_link = "logit"
    canonical_is_natural = True

    def variance(self, mu):
        return mu * (1.0 - mu)

    def variance_deriv(self, mu):
        return 1.0 - 2.0 * mu

    def variance_deriv2(self, mu):
        return np.full_like(mu, -2.0)

    def dev_resids(self, y, mu, w):
        return 2.0 * w * (_xlogy(y, y / mu) + _xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))

    def deviance_function(self, y, w):
        if np.all((y == 0) | (y == 1)):
            # 0/1 data: d_i = -2 w_i log(mu_i or 1 - mu_i), one log per observation
            success = y == 1
            return lambda mu: -2.0 * float(w @ np.log(np.where(success, mu, 1.0 - mu)))
        const = 2.0 * float(np.sum(w * (_xlogy(y, y) + _xlogy(1.0 - y, 1.0 - y))))
        wy, wn = w * y, w * (1.0 - y)
        return lambda mu: const - 2.0 * float(wy @ np.log(mu) + wn @ np.log1p(-mu))

    def m2ll_function(self, y, w):
        # -2 log dbinom(k; w, mu) = -2 [lchoose(w, k) + k log mu + (w - k) log(1 - mu)],
        # k = w y: d_i + s_i with the saturated fit's terms cancelled, two logs per value
        k = w * y
        const = -2.0 * (special.gammaln(w + 1.0) - special.gammaln(k + 1.0)
                        - special.gammaln(w - k + 1.0))
        k2, f2 = 2.0 * k, 2.0 * (w - k)
        return lambda mu: const - (k2 * np.log(mu) + f2 * np.log1p(-mu))

    def saturated(self, y, w, phi=1.0):
        # -2 log dbinom(w y, w, y): binomial coefficient plus the saturated fit
        k = w * y
        lchoose = special.gammaln(w + 1.0) - special.gammaln(k + 1.0) \
            - special.gammaln(w - k + 1.0)
        return -2.0 * (lchoose + _xlogy(k, y) + _xlogy(w - k, 1.0 - y))

    def valid_mu(self, mu):
        lo, hi = np.min(mu), np.max(mu)     # NaN fails both comparisons
        return bool(lo > 0 and hi < 1)

    def mustart(self, y, w):
        return (w * y + 0.5) / (w + 1.0)

    def check_response(self, y, w, what):
        if np.any(y < 0) or np.any(y > 1):
            bad = int(np.sum((y < 0) | (y > 1)))
            raise DataError(
                f"binomial response {what} must be a proportion in [0, 1] (or 0/1, a boolean, "
                f"a two-level factor, or cbind(successes, failures)); {bad} values are "
                f"outside [0, 1] (range {np.min(y):g} to {np.max(y):g})"
            )
        _warn_non_integer(w * y, f"numbers of successes of {what}")


class Poisson(Family):
    r"""Poisson counts, ``V(mu) = mu``."""

    name = "poisson"
    links = ("log", "identity", "sqrt")
    default_link = canonical_link = "log"
    canonical_is_natural = True

    def variance(self, mu):
        return mu

    def variance_deriv(self, mu):
        return np.ones_like(mu)

    def variance_deriv2(self, mu):
        return np.zeros_like(mu)

    def dev_resids(self, y, mu, w):
        return 2.0 * w * _poisson_half_deviance(y, mu)

    def deviance_function(self, y, w):
        wy = w * y
        rounding = np.finfo(float).eps * float(np.sum(wy * (1.0 + np.abs(np.log1p(y)))))
        if rounding > SUM_FORM_MAX_ERROR * max(1.0, float(np.sum(w))):
            # large counts: the difference of large sums below would lose the digits PIRLS
            # needs (see _poisson_half_deviance)
            return lambda mu: 2.0 * float(w @ _poisson_half_deviance(y, mu))
        const = 2.0 * float(np.sum(w * (_xlogy(y, y) - y)))
        return lambda mu: const + 2.0 * float(w @ mu - wy @ np.log(mu))

    def saturated(self, y, w, phi=1.0):
        return -2.0 * w * (_xlogy(y, y) - y - special.gammaln(y + 1.0))

    def valid_mu(self, mu):
        return _positive_finite(mu)

    def mustart(self, y, w):
        return y + 0.1

    def check_response(self, y, w, what):
        if np.any(y < 0):
            raise DataError(
                f"negative counts in the Poisson response {what} ({int(np.sum(y < 0))} "
                f"values, smallest {np.min(y):g}); counts must be >= 0"
            )
        _warn_non_integer(y, f"Poisson response {what}")


class NegativeBinomial(Family):
    r"""Negative binomial (NB2) with shape ``theta``: ``V(mu) = mu + mu^2 / theta``.

    ``theta`` is R's (``MASS::negative.binomial(theta)``); :func:`mixedmodels.glmer_nb`
    estimates it, ``glmer(family=NegativeBinomial(theta=...))`` holds it fixed.

    Parameters
    ----------
    theta : float
        Shape, positive; the variance tends to the Poisson's as it grows.
    link : str or Link, optional
        ``"log"`` (default), ``"sqrt"`` or ``"identity"``.
    """

    name = "negative_binomial"
    links = ("log", "sqrt", "identity")
    default_link = "log"
    canonical_link = ""   # the canonical NB link depends on theta; none of ours is it

    def __init__(self, theta: float = 1.0, link: str | Link | None = None):
        super().__init__(link)
        theta = float(theta)
        if not np.isfinite(theta) or theta <= 0:
            raise ValueError(f"negative binomial theta must be positive, got {theta}")
        self.theta = theta

    def with_theta(self, theta: float) -> NegativeBinomial:
        """The same family and link with another shape.

        Parameters
        ----------
        theta : float
            New shape.

        Returns
        -------
        NegativeBinomial
        """
        return NegativeBinomial(theta, self.link)

    def variance(self, mu):
        return mu + mu * mu / self.theta

    def variance_deriv(self, mu):
        return 1.0 + 2.0 * mu / self.theta

    def variance_deriv2(self, mu):
        return np.full_like(mu, 2.0 / self.theta)

    def dev_resids(self, y, mu, w):
        k = self.theta
        return 2.0 * w * (_xlogy(y, y / mu) - (y + k) * np.log((y + k) / (mu + k)))

    def deviance_function(self, y, w):
        k = self.theta
        const = 2.0 * float(np.sum(w * (_xlogy(y, y) - (y + k) * np.log(y + k))))
        wy, wyk = w * y, w * (y + k)
        return lambda mu: const + 2.0 * float(wyk @ np.log(mu + k) - wy @ np.log(mu))

    def saturated(self, y, w, phi=1.0):
        k = self.theta
        ll = (special.gammaln(k + y) - special.gammaln(k) - special.gammaln(y + 1.0)
              + k * np.log(k / (k + y)) + _xlogy(y, y / (k + y)))
        return -2.0 * w * ll

    def valid_mu(self, mu):
        return _positive_finite(mu)

    def mustart(self, y, w):
        return y + (y == 0) / 6.0

    def check_response(self, y, w, what):
        if np.any(y < 0):
            raise DataError(
                f"negative counts in the negative binomial response {what} "
                f"({int(np.sum(y < 0))} values, smallest {np.min(y):g}); counts must be >= 0"
            )
        _warn_non_integer(y, f"negative binomial response {what}")

    def label(self) -> str:
        return f"Negative Binomial({self.theta:.4g})  ( {self.link.name} )"

    def __repr__(self) -> str:
        return f"NegativeBinomial(theta={self.theta:.6g}, link={self.link.name!r})"

    def __eq__(self, other) -> bool:
        return super().__eq__(other) and self.theta == other.theta

    def __hash__(self) -> int:
        return hash((type(self), self.link, self.theta))


class _DispersionFamily(Family):
    """Families with a dispersion parameter: profiled ``phi`` is closed form when
    ``s_i(phi) = log(phi) + c_i`` (Gaussian, inverse Gaussian)."""

    has_dispersion = True
    laplace_hessian = "observed"

    def profile_dispersion(self, y, w, total, counts=None):
        n = y.shape[0] if counts is None else float(np.sum(counts))
        return float(total) / n

    def check_positive(self, y, what):
        """Raise a :class:`DataError` unless every response is positive.

        Parameters
        ----------
        y : ndarray (n,)
            Responses.
        what : str
            Names the response in the message.
        """
        if np.any(y <= 0):
            raise DataError(
                f"the {self.name} response {what} must be positive; {int(np.sum(y <= 0))} "
                f"values are <= 0 (smallest {np.min(y):g})"
            )


class Gaussian(_DispersionFamily):
    r"""Normal responses, ``V(mu) = 1``; the identity link gives a linear mixed model fitted
    by maximum likelihood."""

    name = "gaussian"
    links = ("identity", "log", "inverse")
    default_link = canonical_link = "identity"

    def variance(self, mu):
        return np.ones_like(mu)

    def variance_deriv(self, mu):
        return np.zeros_like(mu)

    def variance_deriv2(self, mu):
        return np.zeros_like(mu)

    def dev_resids(self, y, mu, w):
        r = y - mu
        return w * r * r

    def saturated(self, y, w, phi=1.0):
        return np.log(2.0 * np.pi * phi / w)

    def mustart(self, y, w):
        if self.link.name == "log":
            return np.maximum(y, np.finfo(float).eps ** 0.5 * max(1.0, float(np.mean(np.abs(y)))))
        return np.asarray(y, dtype=float).copy()

    def valid_mu(self, mu):
        if self.link.name in ("log",):
            return _positive_finite(mu)
        return bool(np.all(np.isfinite(mu)))


class Gamma(_DispersionFamily):
    r"""Gamma responses, ``V(mu) = mu^2``; ``phi`` is the squared coefficient of variation
    (the shape is ``w / phi``)."""

    name = "Gamma"
    links = ("inverse", "log", "identity")
    default_link = canonical_link = "inverse"

    def variance(self, mu):
        return mu * mu

    def variance_deriv(self, mu):
        return 2.0 * mu

    def variance_deriv2(self, mu):
        return np.full_like(mu, 2.0)

    def dev_resids(self, y, mu, w):
        return -2.0 * w * (np.log(y / mu) - (y - mu) / mu)

    def observed_weights(self, y, eta, mu, w):
        r"""The general formula, grouped by ``y``: with ``a = mu'^2 / mu^2`` and
        ``b = mu'' / mu`` the observed information of ``d_i / 2`` is
        ``w [y (2a - b) / mu + (b - a)]``.

        Under the log link ``a = b = 1`` exactly, so the weight is ``w y / mu`` to full
        relative precision; ``w_F - w (y - mu) curv`` computes it as ``1 + (y - mu) / mu``,
        which cancels to zero (or below) for the tiny responses of very skewed data (shape
        0.1: ``y / mu`` down to 1e-35) and made PIRLS give up Newton's method and the
        Laplace Hessian look indefinite.
        """
        me = self.link.mu_eta(eta)
        a = (me * me) / (mu * mu)
        b = self.link.mu_eta2(eta) / mu
        return w * (y * (2.0 * a - b) / mu + (b - a))

    def deviance_function(self, y, w):
        const = -2.0 * float(np.sum(w * (np.log(y) + 1.0)))
        wy = w * y
        return lambda mu: const + 2.0 * float(w @ np.log(mu) + wy @ (1.0 / mu))

    def saturated(self, y, w, phi=1.0):
        a = w / phi
        return 2.0 * (special.gammaln(a) - a * np.log(a) + a + np.log(y))

    def valid_mu(self, mu):
        return _positive_finite(mu)

    def check_response(self, y, w, what):
        self.check_positive(y, what)

    def profile_dispersion(self, y, w, total, counts=None):
        r"""Solve ``dF / d log(phi) = 0`` for ``F = total / phi + sum s_i(phi)``:
        ``total / phi = 2 sum_i a_i (log a_i - digamma(a_i))`` with ``a_i = w_i / phi``
        (``counts``: each ``a_i`` term counted that many times)."""
        w = np.broadcast_to(np.asarray(w, dtype=float), y.shape)
        n = y.shape[0] if counts is None else float(np.sum(counts))

        def grad(t):
            a = w * np.exp(-t)
            terms = a * (np.log(a) - special.digamma(a))
            total_terms = float(np.sum(terms)) if counts is None else float(counts @ terms)
            return -total * np.exp(-t) + 2.0 * total_terms

        lo, hi = LOG_DISPERSION_BRACKET
        # Moment start: log a - digamma(a) ~ 1/(2a) gives phi ~ total / n
        t0 = float(np.log(max(total, 1e-300) / n))
        a, b = t0 - 1.0, t0 + 1.0
        while grad(a) > 0 and a > lo:
            a -= 2.0
        while grad(b) < 0 and b < hi:
            b += 2.0
        t = optimize.brentq(grad, a, b, xtol=DISPERSION_TOL)
        return float(np.exp(t))


class InverseGaussian(_DispersionFamily):
    r"""Inverse Gaussian responses, ``V(mu) = mu^3``."""

    name = "inverse.gaussian"
    links = ("1/mu^2", "inverse", "identity", "log")
    default_link = canonical_link = "1/mu^2"

    def variance(self, mu):
        return mu ** 3

    def variance_deriv(self, mu):
        return 3.0 * mu * mu

    def variance_deriv2(self, mu):
        return 6.0 * mu

    def dev_resids(self, y, mu, w):
        r = y - mu
        return w * r * r / (y * mu * mu)

    def saturated(self, y, w, phi=1.0):
        return np.log(2.0 * np.pi * phi * y ** 3 / w)

    def valid_mu(self, mu):
        return _positive_finite(mu)

    def check_response(self, y, w, what):
        self.check_positive(y, what)


#: Bracket (log scale) searched for the negative binomial shape.
LOG_NB_THETA_BRACKET = (-12.0, 12.0)


def nb_theta_ml(y: np.ndarray, mu: np.ndarray, w: np.ndarray | None = None) -> float:
    r"""Maximum-likelihood negative binomial shape for fixed means (``MASS::theta.ml``).

    Maximizes ``sum_i w_i log p(y_i | mu_i, theta)`` over ``log theta``; lme4's
    ``glmer.nb`` starts from this estimate on the fitted means of a Poisson GLMM. The score
    in ``theta`` is ``sum_i w_i [psi(theta + y_i) - psi(theta) + log theta + 1
    - log(theta + mu_i) - (y_i + theta) / (mu_i + theta)]``; its root is found on
    ``LOG_NB_THETA_BRACKET``, whose ends are returned when the score keeps its sign (no
    overdispersion: the upper end).

    Parameters
    ----------
    y, mu : array-like (n,)
        Counts and their (fixed) means.
    w : array-like (n,), optional
        Prior weights (default 1).

    Returns
    -------
    float
        The shape ``theta``.
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    return nb_theta_from_score(lambda k: nb_theta_score(y, mu, w, k))


def nb_theta_score(y: np.ndarray, mu: np.ndarray, w: np.ndarray, k: float) -> float:
    """``sum_i w_i [psi(k + y_i) - psi(k) + log k + 1 - log(k + mu_i) - (y_i + k) /
    (mu_i + k)]``: the negative binomial log-likelihood's derivative in the shape ``k``
    (of some rows: sums over rows add up)."""
    d = (special.digamma(k + y) - special.digamma(k) + np.log(k) + 1.0
         - np.log(k + mu) - (y + k) / (mu + k))
    return float(np.sum(w * d))


def nb_theta_from_score(score_sum) -> float:
    """:func:`nb_theta_ml`'s root search given ``score_sum(k)`` (:func:`nb_theta_score`
    over all rows; the Dask backend sums it over partitions)."""
    def score(t):   # d loglik / d log(theta)
        k = np.exp(t)
        return score_sum(k) * k

    lo, hi = LOG_NB_THETA_BRACKET
    if score(hi) > 0:       # no overdispersion: the likelihood keeps increasing
        return float(np.exp(hi))
    if score(lo) < 0:
        return float(np.exp(lo))
    return float(np.exp(optimize.brentq(score, lo, hi, xtol=DISPERSION_TOL)))


#: Family classes by the names accepted in ``family=`` (case-insensitive; R's spellings).
FAMILIES: dict[str, type[Family]] = {
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "gaussian": Gaussian,
    "inverse_gaussian": InverseGaussian,
    "inverse.gaussian": InverseGaussian,
    "negative_binomial": NegativeBinomial,
    "negative.binomial": NegativeBinomial,
    "nbinom2": NegativeBinomial,
}


def make_family(family, link=None) -> Family:
    """A :class:`Family` from a name (``"binomial"``, ``"Gamma"``), a family instance or a
    family class.

    Parameters
    ----------
    family : str, Family or Family subclass
        A name of :data:`FAMILIES` (case-insensitive; R's spellings such as
        ``"inverse.gaussian"`` too), a family object, or a family class.
    link : str or Link, optional
        Overrides the family's link (a negative binomial keeps its shape).

    Returns
    -------
    Family

    Raises
    ------
    FormulaError
        Unknown family name, or a link the family does not support.
    """
    if isinstance(family, Family):
        if link is None:
            return family
        if isinstance(family, NegativeBinomial):
            return NegativeBinomial(family.theta, link)
        return type(family)(link)
    if isinstance(family, type) and issubclass(family, Family):
        return family(link)
    if isinstance(family, str):
        key = family.strip().lower()
        if key in FAMILIES:
            return FAMILIES[key](link=link)
    raise FormulaError(
        f"unknown family {family!r}; choose one of 'binomial', 'poisson', 'Gamma', "
        "'inverse_gaussian', 'gaussian', 'negative_binomial' (or pass a family object such "
        "as mm.families.Binomial(link='probit'))"
    )

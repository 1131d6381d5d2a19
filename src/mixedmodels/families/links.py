r"""Link functions ``eta = g(mu)`` of generalized linear (mixed) models.

A :class:`Link` maps the mean ``mu`` to the linear predictor ``eta`` and back, and supplies
the derivatives the fitting code needs:

* ``mu_eta(eta)`` is ``d mu / d eta``; the Fisher (expected-information) working weights of
  PIRLS are ``w * mu_eta^2 / V(mu)``;
* ``mu_eta2(eta)`` is ``d^2 mu / d eta^2``; it enters the observed information used by the
  Laplace approximation of dispersion families (see :mod:`mixedmodels.families.family`).

* ``inverse_derivatives(eta, order)`` gives the unclipped inverse link and its derivatives
  up to third order, and the ``*_jet`` methods map a :class:`~mixedmodels.families.jet.Jet`
  of linear predictors to jets of ``mu``, ``log mu``, ``log(1 - mu)`` and ``1 - mu`` in
  forms that stay accurate where ``mu`` is near 0 or 1 (``log mu = eta`` for the log link,
  ``log(1 - mu) = -softplus(eta)`` for the logit); the density-based families use them.

Inverse links that map onto a bounded interval (probabilities) are kept strictly inside it
with the thresholds R's ``make.link`` and lme4's ``glmFamily`` use, so that ``log(mu)`` and
``log(1 - mu)`` stay finite: ``mu`` in ``[EPS, 1 - EPS]`` and ``mu_eta >= EPS`` with ``EPS``
the machine epsilon.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from . import jet as jt
from ._special import expit_pair

__all__ = [
    "LINKS",
    "BoundedLogit",
    "Cauchit",
    "Cloglog",
    "Identity",
    "InverseLink",
    "InverseSquare",
    "Link",
    "LogLink",
    "Logit",
    "Probit",
    "Sqrt",
    "make_link",
]

#: Smallest probability (and slope) the bounded inverse links return: R's ``DBL_EPSILON``.
EPS = float(np.finfo(float).eps)
#: |eta| beyond which the probit inverse link is flat at EPS / 1 - EPS (R: ``-qnorm(EPS)``).
PROBIT_THRESH = float(-special.ndtri(EPS))
#: Largest eta fed to ``exp`` in cloglog / log links (keeps ``exp(eta)`` finite).
EXP_THRESH = 700.0


def _clip(x, lo: float, hi: float):
    """``np.clip(x, lo, hi)`` as two ufuncs: the same values (NaN stays NaN), without
    ``np.clip``'s Python-level dispatch (~1.5 us per call, twice per PIRLS step)."""
    return np.minimum(np.maximum(x, lo), hi)


class Link:
    """Abstract link function; subclasses implement every method."""

    #: name as R spells it (``"logit"``, ``"log"``, ``"1/mu^2"``)
    name: str = ""
    #: some finite eta have no mean (``valid_eta`` must be checked)
    restricted_eta: bool = False
    #: the inverse link maps every eta strictly inside (0, 1)
    bounded: bool = False

    def link(self, mu: np.ndarray) -> np.ndarray:
        """The link, ``eta = g(mu)``.

        Parameters
        ----------
        mu : ndarray
            Means.

        Returns
        -------
        ndarray
            Linear predictor, elementwise.
        """
        raise NotImplementedError

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """The inverse link, ``mu = g^{-1}(eta)`` (bounded links stay inside
        ``[EPS, 1 - EPS]``).

        Parameters
        ----------
        eta : ndarray
            Linear predictor.

        Returns
        -------
        ndarray
            Means, elementwise.
        """
        raise NotImplementedError

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """Slope of the inverse link, ``d mu / d eta`` (in PIRLS' weights
        ``w mu_eta^2 / V(mu)``).

        Parameters
        ----------
        eta : ndarray
            Linear predictor.

        Returns
        -------
        ndarray
            Elementwise (bounded links: at least ``EPS``).
        """
        raise NotImplementedError

    def mu_eta2(self, eta: np.ndarray) -> np.ndarray:
        """Curvature of the inverse link, ``d^2 mu / d eta^2`` (in the observed
        information of dispersion families).

        Parameters
        ----------
        eta : ndarray
            Linear predictor.

        Returns
        -------
        ndarray
            Elementwise.
        """
        raise NotImplementedError

    def inverse_and_slope(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(linkinv(eta), mu_eta(eta))`` in one pass (PIRLS needs both every step).

        Parameters
        ----------
        eta : ndarray
            Linear predictor.

        Returns
        -------
        tuple of ndarray
            Means and slopes.
        """
        return self.linkinv(eta), self.mu_eta(eta)

    def inverse_derivatives(self, eta: np.ndarray, order: int = 3) -> tuple:
        """The inverse link and its first three derivatives, unclipped.

        Parameters
        ----------
        eta : ndarray
            Linear predictor values.
        order : int
            Highest derivative needed (links may compute all three anyway).

        Returns
        -------
        tuple of ndarray
            ``(mu, d mu/d eta, d^2 mu/d eta^2, d^3 mu/d eta^3)``.
        """
        raise NotImplementedError

    def slope_and_curvature(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d mu/d eta, d^2 mu/d eta^2)``, unclipped: the second and third values of
        :meth:`inverse_derivatives` (links whose third derivative costs extra passes
        override this to skip it; the Laplace gradient's canonical rows need only
        these two).

        Parameters
        ----------
        eta : ndarray
            Linear predictor values.

        Returns
        -------
        tuple of ndarray
        """
        d = self.inverse_derivatives(eta, 2)
        return d[1], d[2]

    def mu_eta3(self, eta: np.ndarray) -> np.ndarray:
        """Third derivative of the inverse link.

        Parameters
        ----------
        eta : ndarray
            Linear predictor values.

        Returns
        -------
        ndarray
            ``d^3 mu / d eta^3``.
        """
        return self.inverse_derivatives(np.asarray(eta, dtype=float), 3)[3]

    def inverse_jet(self, eta: jt.Jet) -> jt.Jet:
        """``mu = g^{-1}(eta)`` as a jet.

        Parameters
        ----------
        eta : Jet
            Linear predictor.

        Returns
        -------
        Jet
        """
        d = self.inverse_derivatives(eta.v, eta.order)
        return eta.chain(d[1], d[2], d[3], f0=d[0])

    def log_inverse_jet(self, eta: jt.Jet) -> jt.Jet:
        """``log mu`` as a jet (links with an accurate closed form override this).

        Parameters
        ----------
        eta : Jet
            Linear predictor.

        Returns
        -------
        Jet
        """
        return self.inverse_jet(eta).log()

    def log1m_inverse_jet(self, eta: jt.Jet) -> jt.Jet:
        """``log(1 - mu)`` as a jet.

        Parameters
        ----------
        eta : Jet
            Linear predictor.

        Returns
        -------
        Jet
        """
        return self.inverse_jet(eta).log1m()

    def complement_jet(self, eta: jt.Jet) -> jt.Jet:
        """``1 - mu`` as a jet.

        Parameters
        ----------
        eta : Jet
            Linear predictor.

        Returns
        -------
        Jet
        """
        return 1.0 - self.inverse_jet(eta)

    def logit_inverse_jet(self, eta: jt.Jet) -> jt.Jet:
        """``log(mu / (1 - mu))`` as a jet (the logit link: ``eta`` itself).

        Parameters
        ----------
        eta : Jet
            Linear predictor.

        Returns
        -------
        Jet
        """
        return self.log_inverse_jet(eta) - self.log1m_inverse_jet(eta)

    def above_jet(self, eta: jt.Jet, lower: float) -> jt.Jet:
        """``mu - lower`` as a jet.

        Parameters
        ----------
        eta : Jet
            Linear predictor.
        lower : float
            The bound.

        Returns
        -------
        Jet
        """
        return self.inverse_jet(eta) - lower

    def below_jet(self, eta: jt.Jet, upper: float) -> jt.Jet:
        """``upper - mu`` as a jet.

        Parameters
        ----------
        eta : Jet
            Linear predictor.
        upper : float
            The bound.

        Returns
        -------
        Jet
        """
        return upper - self.inverse_jet(eta)

    def valid_eta(self, eta: np.ndarray) -> bool:
        """Whether every ``eta`` maps to a mean (e.g. ``eta > 0`` for the inverse link).

        Parameters
        ----------
        eta : ndarray
            Linear predictor.

        Returns
        -------
        bool
        """
        return bool(np.isfinite(eta).all())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Logit(Link):
    r"""``eta = log(mu / (1 - mu))``; ``mu_eta = mu (1 - mu)``."""

    name = "logit"
    bounded = True

    def link(self, mu):
        return np.log(mu / (1.0 - mu))

    def linkinv(self, eta):
        return _clip(special.expit(eta), EPS, 1.0 - EPS)

    def mu_eta(self, eta):
        p = special.expit(eta)
        return np.maximum(p * (1.0 - p), EPS)

    def inverse_and_slope(self, eta):
        p = special.expit(eta)
        return _clip(p, EPS, 1.0 - EPS), np.maximum(p * (1.0 - p), EPS)

    def mu_eta2(self, eta):
        p = special.expit(eta)
        return p * (1.0 - p) * (1.0 - 2.0 * p)

    def inverse_derivatives(self, eta, order=3):
        s, sm = expit_pair(eta)
        f1 = s * sm
        return s, f1, f1 * (sm - s), f1 * (1.0 - 6.0 * f1)

    def slope_and_curvature(self, eta):
        # (inverse_derivatives' own formulas without the third derivative's three passes)
        s, sm = expit_pair(eta)
        f1 = s * sm
        return f1, f1 * (sm - s)

    def log_inverse_jet(self, eta):
        return jt.log_sigmoid(eta)

    def log1m_inverse_jet(self, eta):
        return jt.log_sigmoid(-eta)

    def complement_jet(self, eta):
        return jt.sigmoid(-eta)

    def logit_inverse_jet(self, eta):
        return eta


class Probit(Link):
    r"""``eta = Phi^{-1}(mu)``; ``mu_eta = phi(eta)``."""

    name = "probit"
    bounded = True

    def link(self, mu):
        return special.ndtri(mu)

    def linkinv(self, eta):
        e = _clip(eta, -PROBIT_THRESH, PROBIT_THRESH)
        return special.ndtr(e)

    def mu_eta(self, eta):
        return np.maximum(np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi), EPS)

    def mu_eta2(self, eta):
        return -eta * np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)

    def inverse_derivatives(self, eta, order=3):
        d = np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)
        return special.ndtr(eta), d, -eta * d, (eta * eta - 1.0) * d

    def log_inverse_jet(self, eta):
        return jt.log_ndtr(eta)

    def log1m_inverse_jet(self, eta):
        return jt.log_ndtr(-eta)

    def complement_jet(self, eta):
        return jt.ndtr(-eta)


class Cauchit(Link):
    r"""``eta = tan(pi (mu - 1/2))``, the Cauchy quantile function."""

    name = "cauchit"
    bounded = True

    def link(self, mu):
        return np.tan(np.pi * (mu - 0.5))

    def linkinv(self, eta):
        # R clamps eta at +-tan(pi/2 - EPS) style bounds; clipping mu is equivalent
        return _clip(0.5 + np.arctan(eta) / np.pi, EPS, 1.0 - EPS)

    def mu_eta(self, eta):
        return np.maximum(1.0 / (np.pi * (1.0 + eta * eta)), EPS)

    def mu_eta2(self, eta):
        return -2.0 * eta / (np.pi * (1.0 + eta * eta) ** 2)

    def inverse_derivatives(self, eta, order=3):
        q = 1.0 / (1.0 + eta * eta)
        return (0.5 + np.arctan(eta) / np.pi, q / np.pi, -2.0 * eta * q * q / np.pi,
                (6.0 * eta * eta - 2.0) * q * q * q / np.pi)


class Cloglog(Link):
    r"""``eta = log(-log(1 - mu))``; ``mu = 1 - exp(-exp(eta))``."""

    name = "cloglog"
    bounded = True

    def link(self, mu):
        return np.log(-np.log1p(-mu))

    def linkinv(self, eta):
        return _clip(-np.expm1(-np.exp(np.minimum(eta, EXP_THRESH))), EPS, 1.0 - EPS)

    def mu_eta(self, eta):
        e = np.exp(np.minimum(eta, EXP_THRESH))
        return np.maximum(e * np.exp(-e), EPS)

    def mu_eta2(self, eta):
        e = np.exp(np.minimum(eta, EXP_THRESH))
        return e * np.exp(-e) * (1.0 - e)

    def inverse_derivatives(self, eta, order=3):
        # mu = 1 - exp(-e), e = exp(eta); with t = e exp(-e) the derivatives are t, t (1 - e)
        # and t ((1 - e)^2 - e)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(eta)
            t = np.where(np.isfinite(e), e * np.exp(-e), 0.0)
            return -np.expm1(-e), t, t * (1.0 - e), t * ((1.0 - e) ** 2 - e)

    def log_inverse_jet(self, eta):
        return jt.log1mexp(-jt.exp(eta))

    def log1m_inverse_jet(self, eta):
        return -jt.exp(eta)

    def complement_jet(self, eta):
        return jt.exp(-jt.exp(eta))


class LogLink(Link):
    r"""``eta = log(mu)``; ``mu_eta = mu``."""

    name = "log"

    def link(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(np.minimum(eta, EXP_THRESH)), EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(np.minimum(eta, EXP_THRESH)), EPS)

    def inverse_and_slope(self, eta):
        mu = np.maximum(np.exp(np.minimum(eta, EXP_THRESH)), EPS)
        return mu, mu

    def mu_eta2(self, eta):
        return np.exp(np.minimum(eta, EXP_THRESH))

    def inverse_derivatives(self, eta, order=3):
        with np.errstate(over="ignore"):
            mu = np.exp(eta)
        return mu, mu, mu, mu

    def inverse_jet(self, eta):
        return jt.exp(eta)

    def log_inverse_jet(self, eta):
        return eta


class Identity(Link):
    r"""``eta = mu``."""

    name = "identity"

    def link(self, mu):
        return np.asarray(mu, dtype=float)

    def linkinv(self, eta):
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return np.ones_like(eta, dtype=float)

    def mu_eta2(self, eta):
        return np.zeros_like(eta, dtype=float)

    def inverse_derivatives(self, eta, order=3):
        eta = np.asarray(eta, dtype=float)
        return eta, np.ones_like(eta), np.zeros_like(eta), np.zeros_like(eta)

    def inverse_jet(self, eta):
        return eta


class Sqrt(Link):
    r"""``eta = sqrt(mu)``; ``mu = eta^2``.

    As in lme4, any finite eta is accepted (``mu = eta^2`` is a valid mean for every eta), so
    PIRLS may pass through negative eta on its way to the estimate.
    """

    name = "sqrt"

    def valid_eta(self, eta):
        """R's ``valideta``: ``eta > 0`` (``mu = eta^2`` folds negative ``eta`` onto the
        same means, a mirror image of the model with spurious optima)."""
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))

    def link(self, mu):
        return np.sqrt(mu)

    def linkinv(self, eta):
        return eta * eta

    def mu_eta(self, eta):
        return 2.0 * eta

    def mu_eta2(self, eta):
        return np.full_like(eta, 2.0, dtype=float)

    def inverse_derivatives(self, eta, order=3):
        eta = np.asarray(eta, dtype=float)
        return eta * eta, 2.0 * eta, np.full_like(eta, 2.0), np.zeros_like(eta)


class InverseLink(Link):
    r"""``eta = 1 / mu`` (canonical for Gamma); eta must be nonzero and, for positive
    means, positive."""

    name = "inverse"
    restricted_eta = True

    def link(self, mu):
        return 1.0 / mu

    def linkinv(self, eta):
        return 1.0 / eta

    def mu_eta(self, eta):
        return -1.0 / (eta * eta)

    def mu_eta2(self, eta):
        return 2.0 / (eta * eta * eta)

    def valid_eta(self, eta):
        return bool(np.all(np.isfinite(eta)) and np.all(eta != 0))

    def inverse_derivatives(self, eta, order=3):
        with np.errstate(divide="ignore"):
            r = 1.0 / np.asarray(eta, dtype=float)
        r2 = r * r
        return r, -r2, 2.0 * r2 * r, -6.0 * r2 * r2

    def log_inverse_jet(self, eta):
        return -jt.log(eta)


class InverseSquare(Link):
    r"""``eta = 1 / mu^2`` (canonical for the inverse Gaussian); eta must be positive."""

    name = "1/mu^2"
    restricted_eta = True

    def link(self, mu):
        return 1.0 / (mu * mu)

    def linkinv(self, eta):
        return 1.0 / np.sqrt(eta)

    def mu_eta(self, eta):
        return -0.5 * eta ** -1.5

    def mu_eta2(self, eta):
        return 0.75 * eta ** -2.5

    def valid_eta(self, eta):
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))

    def inverse_derivatives(self, eta, order=3):
        with np.errstate(all="ignore"):
            r = 1.0 / np.sqrt(np.asarray(eta, dtype=float))
            r2 = r * r
        return r, -0.5 * r * r2, 0.75 * r * r2 * r2, -1.875 * r * r2 * r2 * r2


class BoundedLogit(Link):
    r"""``mu = lower + (upper - lower) expit(eta)``: a parameter confined to an interval.

    glmmTMB's Tweedie power is ``1 + expit(psi)`` (``lower = 1, upper = 2``). The distances
    to the bounds, ``(upper - lower) expit(+-eta)``, are available without cancellation
    (:meth:`above_jet`, :meth:`below_jet`). Not an R link: it is not in :data:`LINKS`.

    Parameters
    ----------
    lower, upper : float
        The interval.
    """

    def __init__(self, lower: float = 0.0, upper: float = 1.0):
        self.lower, self.upper = float(lower), float(upper)
        self.name = f"logit({self.lower:g}, {self.upper:g})"

    def link(self, mu):
        x = (np.asarray(mu, dtype=float) - self.lower) / (self.upper - self.lower)
        return np.log(x / (1.0 - x))

    def linkinv(self, eta):
        return self.lower + (self.upper - self.lower) * special.expit(eta)

    def inverse_derivatives(self, eta, order=3):
        w = self.upper - self.lower
        s, sm = expit_pair(eta)
        f1 = s * sm
        return self.lower + w * s, w * f1, w * f1 * (sm - s), w * f1 * (1.0 - 6.0 * f1)

    def mu_eta(self, eta):
        return self.inverse_derivatives(np.asarray(eta, dtype=float))[1]

    def mu_eta2(self, eta):
        return self.inverse_derivatives(np.asarray(eta, dtype=float))[2]

    def above_jet(self, eta, lower):
        if lower == self.lower:
            return jt.sigmoid(eta) * (self.upper - self.lower)
        return super().above_jet(eta, lower)

    def below_jet(self, eta, upper):
        if upper == self.upper:
            return jt.sigmoid(-eta) * (self.upper - self.lower)
        return super().below_jet(eta, upper)

    def __repr__(self) -> str:
        return f"BoundedLogit({self.lower:g}, {self.upper:g})"

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.lower == other.lower
                and self.upper == other.upper)

    def __hash__(self) -> int:
        return hash((type(self), self.lower, self.upper))


#: Link classes by the names R accepts (``"mu^-2"`` is an alias of ``"1/mu^2"``).
LINKS: dict[str, type[Link]] = {
    "logit": Logit,
    "probit": Probit,
    "cauchit": Cauchit,
    "cloglog": Cloglog,
    "log": LogLink,
    "identity": Identity,
    "sqrt": Sqrt,
    "inverse": InverseLink,
    "1/mu^2": InverseSquare,
}


def make_link(link) -> Link:
    """A :class:`Link` from a name (``"probit"``) or an instance (returned as is).

    Parameters
    ----------
    link : str or Link
        A name of :data:`LINKS` (R's spelling: ``"logit"``, ``"1/mu^2"``, ...).

    Returns
    -------
    Link

    Raises
    ------
    FormulaError
        Unknown link name.
    """
    if isinstance(link, Link):
        return link
    if isinstance(link, str):
        key = link.strip()
        if key in ("mu^-2", "1/mu**2"):
            key = "1/mu^2"
        if key in LINKS:
            return LINKS[key]()
    from .._errors import FormulaError

    raise FormulaError(
        f"unknown link {link!r}; choose one of {', '.join(sorted(LINKS))}"
    )

r"""Response families as densities: the contract of glmmTMB's model class.

A model has several linear predictors, its **channels**: ``mu`` (the conditional mean,
through the family's link), ``zi`` (zero-inflation probability, logit link), ``phi``
(dispersion, log link: glmmTMB's ``dispformula``) and the family's extra parameters
(Tweedie ``power``, Student-t ``df``, nbinom12's ``psi``), which glmmTMB estimates as
scalars. A :class:`ResponseFamily` gives, per observation ``i``, the log-density
``l_i(y_i | mu_i, phi_i, ...)`` as a :class:`~mixedmodels.families.jet.Jet` of the
natural parameters; :class:`ModelDensity` maps the channels' linear predictors through
their links and returns ``l_i`` with its exact first, second and third derivatives with
respect to every channel's linear predictor (mixed partials included), which the general
Laplace engine needs.

Conventions
-----------
* ``y`` is the response as glmmTMB's C++ code sees it: counts for the count families, the
  number of successes for ``binomial`` and ``betabinomial`` with the numbers of trials in
  ``size`` (see :func:`binomial_response` for proportions with weights and
  ``cbind(successes, failures)``).
* Prior ``weights`` multiply the log-likelihood of every family (glmmTMB:
  ``tmp_loglik *= weights(i)``); for the binomial with proportions glmmTMB first turns
  ``(proportion, weights)`` into ``(successes, size)`` with unit weights.
* Natural parameters outside their range give NaN or ``-inf`` (as TMB's densities do);
  responses outside the support are rejected beforehand by :meth:`check_response`.
* Non-jet methods (``mean``, ``variance``, ``sample``, ``cdf``) take the natural
  parameters as arrays that broadcast together (a leading axis gives several draws).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from .._errors import DataError, FormulaError
from .._messages import user_stacklevel
from . import jet as jt
from .family import NonIntegerCountWarning
from .links import BoundedLogit, Link, make_link
from .sparse_jet import SparseJet
from .sparse_jet import focus as sparse_focus

__all__ = [
    "INTEGER_TOL",
    "ModelDensity",
    "Parameter",
    "ResponseFamily",
    "SparseParameter",
    "binomial_response",
    "make_param_link",
    "param_links",
]

#: Relative distance from a whole number below which a count counts as an integer.
INTEGER_TOL = 1e-8
#: A proportion times its weight (trials) this close to a whole number of successes, per
#: trial, is that number: proportions written with 6 decimals (a CSV) carry rounding
#: errors up to 5e-7 per trial, which must not make ``2/3`` of 3 trials non-integer.
PROPORTION_ROUNDING_TOL = 1e-5
#: Canonical order of the channels; extras follow in the family's order.
CHANNEL_ORDER = ("mu", "zi", "phi")


def param_links(**links: str) -> Mapping[str, str]:
    """A read-only ``parameter -> link name`` table (families' ``default_links``)."""
    return MappingProxyType(dict(links))


def make_param_link(link) -> Link:
    """A link from a name or instance; ``"tweedie_power"`` is glmmTMB's ``1 + expit``."""
    if isinstance(link, str) and link == "tweedie_power":
        return BoundedLogit(1.0, 2.0)
    return make_link(link)


class _Linked:
    """What :class:`Parameter` and :class:`SparseParameter` share: the natural parameter
    of one channel as a jet of its linear predictor, with the link's accurate forms of
    its transforms. ``_jet_type`` is the storage (:class:`~mixedmodels.families.jet.Jet`
    or :class:`~mixedmodels.families.sparse_jet.SparseJet`)."""

    __slots__ = ()
    _jet_type: type

    def __init__(self, link: Link, eta, index: int, m: int, order: int,
                 constant: bool = False):
        self.constant = bool(constant)
        self.link = link
        self.index = index
        self._eta = np.asarray(eta, dtype=float)
        self._cache: dict = {}
        self._set_base(m, order)

    def _make_base(self, m: int, order: int):
        """``g^{-1}(eta)`` as a jet of the storage type (zero derivatives if constant)."""
        jet_type, eta = self._jet_type, self._eta
        with np.errstate(all="ignore"):
            d = self.link.inverse_derivatives(eta, 0 if self.constant else order)
        if self.constant:
            return jet_type.constant(d[0], m, order)
        return jet_type.univariate(d[0], d[1:], self.index, m, order)

    def _set_base(self, m: int, order: int) -> None:
        base = self._make_base(m, order)
        for name in self._jet_type.__slots__:
            setattr(self, name, getattr(base, name))

    def _cached(self, key, make):
        # jets are immutable, so each transform is computed once per parameter
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def eta(self) -> jt.JetBase:
        """The channel's linear predictor as an independent variable."""
        jet_type = self._jet_type
        if self.constant:
            return self._cached("eta", lambda: jet_type.constant(self._eta, self.m,
                                                                 self.order))
        return self._cached("eta", lambda: jet_type.variable(self._eta, self.index,
                                                             self.m, self.order))

    def log(self):
        """``log mu`` in the link's accurate form (``eta`` itself for the log link).

        Returns
        -------
        Jet or SparseJet
        """
        return self._cached("log", lambda: self.link.log_inverse_jet(self.eta))

    def log1m(self):
        """``log(1 - mu)`` in the link's accurate form (``-softplus(eta)`` for the logit).

        Returns
        -------
        Jet or SparseJet
        """
        return self._cached("log1m", lambda: self.link.log1m_inverse_jet(self.eta))

    def complement(self):
        """``1 - mu`` in the link's accurate form (``expit(-eta)`` for the logit).

        Returns
        -------
        Jet or SparseJet
        """
        return self._cached("complement", lambda: self.link.complement_jet(self.eta))

    def logit(self):
        """``log(mu / (1 - mu))`` (``eta`` itself for the logit link).

        Returns
        -------
        Jet or SparseJet
        """
        return self._cached("logit", lambda: self.link.logit_inverse_jet(self.eta))

    def above(self, lower):
        """``mu - lower``, accurate near the bound for links confined above it.

        Parameters
        ----------
        lower : float
            The bound.

        Returns
        -------
        Jet or SparseJet
        """
        return self.link.above_jet(self.eta, lower)

    def below(self, upper):
        """``upper - mu``, accurate near the bound for links confined below it.

        Parameters
        ----------
        upper : float
            The bound.

        Returns
        -------
        Jet or SparseJet
        """
        return self.link.below_jet(self.eta, upper)


class Parameter(_Linked, jt.Jet):
    """The jet of a natural parameter ``g^{-1}(eta)`` of one channel, which remembers its
    link so that ``log``, ``log1m``, ``complement``, ``above`` and ``below`` use the link's
    accurate forms (``log mu = eta`` for the log link, ``1 - mu = expit(-eta)`` for the
    logit) instead of transforming the rounded ``mu``.

    Parameters
    ----------
    link : Link
        The channel's link.
    eta : array_like
        The channel's linear predictor values.
    index : int
        The channel's position among the ``m`` variables.
    m : int
        Number of channels.
    order : int
        Derivative order carried.
    constant : bool
        The channel is held fixed (not differentiated): its jet has zero derivatives.
    """

    __slots__ = ("_cache", "_eta", "constant", "index", "link")
    _jet_type = jt.Jet


class SparseParameter(_Linked, SparseJet):
    """:class:`Parameter` stored as a :class:`~mixedmodels.families.sparse_jet.SparseJet`
    (same parameters)."""

    __slots__ = ("_cache", "_eta", "_vd", "constant", "index", "link")
    _jet_type = SparseJet

    # the parameter's own value and derivatives are computed when first used (many
    # densities use only transforms such as ``log mu = eta``, ``log pi``)
    def _set_base(self, m: int, order: int) -> None:
        self.m, self.order = m, order
        self._vd = None

    def _value_entries(self):
        if self._vd is None:
            base = self._make_base(self.m, self.order)
            self._vd = (base.v, base.d)
        return self._vd

    @property
    def v(self) -> np.ndarray:
        """Values ``g^{-1}(eta)``."""
        return self._value_entries()[0]

    @property
    def d(self) -> dict:
        """Derivative entries of ``g^{-1}(eta)``."""
        return self._value_entries()[1]


def weighted_mean(x, w=None) -> float:
    """``sum w x / sum w`` (plain mean without weights); for moment-based starts."""
    x = np.asarray(x, dtype=float)
    w = np.ones_like(x) if w is None else np.broadcast_to(np.asarray(w, dtype=float), x.shape)
    return float(np.sum(w * x) / max(np.sum(w), 1e-300))


def _fail(what: str, name: str, mask: np.ndarray, y: np.ndarray, advice: str) -> None:
    bad = y[mask]
    raise DataError(
        f"the response {name!r} has {bad.size} {what} (e.g. {bad.flat[0]:g}); {advice}")


def check_finite(y: np.ndarray, name: str) -> None:
    """Raise a :class:`DataError` for NaN or infinite responses."""
    bad = ~np.isfinite(y)
    if np.any(bad):
        raise DataError(
            f"the response {name!r} has {int(bad.sum())} missing or infinite values; drop "
            "those rows (na_action) or fix the data")


def check_counts(y: np.ndarray, name: str, family: str, non_integer: str = "error") -> None:
    """Counts: finite, ``>= 0`` and whole (``non_integer="warn"`` only warns, as glmmTMB
    does)."""
    check_finite(y, name)
    if np.any(y < 0):
        _fail("negative values", name, y < 0, y,
              f"the {family} family models counts, which must be >= 0")
    frac = np.abs(y - np.round(y)) > INTEGER_TOL * np.maximum(1.0, np.abs(y))
    if np.any(frac):
        msg = (f"the response {name!r} has {int(frac.sum())} non-integer values (e.g. "
               f"{y[frac].flat[0]:.10g}) but the {family} family models counts; round them, "
               "or use a continuous family (tweedie, Gamma, lognormal)")
        if non_integer == "error":
            raise DataError(msg)
        warnings.warn(msg, NonIntegerCountWarning, stacklevel=user_stacklevel())


def binomial_response(y, weights=None, failures=None):
    r"""``(successes, size, weights)`` as glmmTMB builds them for binomial-type families.

    * ``failures`` given (``cbind(successes, failures)``): ``size = y + failures``;
    * ``y`` all 0/1 (or boolean): ``size = 1``;
    * otherwise ``y`` is a proportion of ``weights`` trials: ``successes = weights * y``,
      ``size = weights`` and the weights become 1.

    Parameters
    ----------
    y : array_like
        Successes, 0/1 values or proportions.
    weights : array_like, optional
        Prior weights (trials for proportions).
    failures : array_like, optional
        Failures, for ``cbind(successes, failures)``.

    Returns
    -------
    tuple of ndarray
        ``(successes, size, weights)``.
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.broadcast_to(
        np.asarray(weights, dtype=float), y.shape).copy()
    if failures is not None:
        return y, y + np.asarray(failures, dtype=float), w
    if np.all((y == 0) | (y == 1)):
        return y, np.ones_like(y), w
    successes = w * y
    whole = np.round(successes)
    with np.errstate(invalid="ignore"):
        near = np.abs(successes - whole) <= PROPORTION_ROUNDING_TOL * np.maximum(1.0, w)
    return np.where(near, whole, successes), w, np.ones_like(y)


class ResponseFamily:
    r"""A conditional distribution of the response given its natural parameters.

    Subclasses set the class attributes and implement :meth:`_log_density` with jets,
    plus the distribution's moments, sampler, cdf and response checks.

    Parameters
    ----------
    link : str or Link, optional
        Link of ``mu`` (the family's default when omitted).
    """

    #: glmmTMB's name of the family
    name: str = ""
    #: natural parameters, ``"mu"`` first, then ``"phi"`` (if any) and the extras
    parameters: tuple[str, ...] = ("mu",)
    #: default link of every parameter (``mu``'s is the family's default link)
    default_links: Mapping[str, str] = MappingProxyType({"mu": "log"})
    #: links accepted for ``mu``
    mu_links: tuple[str, ...] = ("log",)
    #: the response takes whole values (counts, successes)
    discrete: bool = False
    #: ``P(Y = 0) > 0`` is the density's value at ``y = 0`` (counts, Tweedie)
    point_mass_at_zero: bool = False
    #: ``y`` are successes out of ``size`` trials
    needs_size: bool = False
    #: :meth:`_log_density` uses only the generic jet operations (arithmetic, ``chain``
    #: and the functions of :mod:`~mixedmodels.families.jet` built on them), so it runs
    #: on sparse jets too (:meth:`ModelDensity.evaluate`'s fast path)
    supports_sparse: bool = False

    def __init__(self, link: str | Link | None = None):
        lk = make_param_link(self.default_links["mu"] if link is None else link)
        if lk.name not in self.mu_links:
            raise FormulaError(
                f"the {self.name} family does not support the {lk.name!r} link for the mean; "
                f"choose one of {', '.join(repr(x) for x in self.mu_links)}")
        self.link: Link = lk

    # -- description --------------------------------------------------------------------
    @property
    def has_dispersion(self) -> bool:
        """Whether the family has a dispersion parameter ``phi``."""
        return "phi" in self.parameters

    @property
    def extras(self) -> tuple[str, ...]:
        """Extra (scalar) family parameters besides ``mu``, ``zi`` and ``phi``."""
        return tuple(p for p in self.parameters if p not in CHANNEL_ORDER)

    @property
    def channels(self) -> tuple[str, ...]:
        """Parameters in the canonical channel order (``mu, zi, phi``, then extras)."""
        fixed = [c for c in CHANNEL_ORDER if c in self.parameters]
        return (*fixed, *self.extras)

    def parameter_link(self, name: str) -> Link:
        """Default link of a natural parameter.

        Parameters
        ----------
        name : str
            ``"mu"`` (the family's ``link``), ``"zi"``, ``"phi"`` or an extra.

        Returns
        -------
        Link
        """
        if name == "mu":
            return self.link
        return make_param_link(self.default_links[name])

    def label(self) -> str:
        """Short description, e.g. ``"nbinom2(log)"``.

        Returns
        -------
        str
        """
        return f"{self.name}({self.link.name})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), self.link))

    # -- density ----------------------------------------------------------------------
    def log_density(self, y, params: Mapping[str, jt.Jet], weights=None, size=None) -> jt.Jet:
        """Per-observation log-density ``w_i l_i`` as a jet of the parameters' jets.

        Parameters
        ----------
        y : ndarray
            Responses (successes for binomial-type families).
        params : mapping
            Natural parameters (``"mu"``, ``"phi"``, extras) as jets over the same
            variables; :class:`ModelDensity` builds them from linear predictors.
        weights : ndarray, optional
            Prior weights multiplying the log-density.
        size : ndarray, optional
            Numbers of trials (binomial, betabinomial).

        Returns
        -------
        Jet
            Batch shape ``y.shape``, derivatives over the parameters' variables.
        """
        y = np.asarray(y, dtype=float)
        with np.errstate(all="ignore"):
            out = self._log_density(y, params, self._size(y, size))
            if weights is not None:
                out = _weighted(out, np.asarray(weights, dtype=float))
        return out

    def _log_density(self, y, params, size) -> jt.Jet:
        raise NotImplementedError

    def log_density_with_zero(self, y, params, size=None) -> tuple[jt.Jet, jt.Jet]:
        """The log-density at ``y`` and at zero, unweighted (zero-truncation needs both;
        families with a normalizing constant share its computation).

        Parameters
        ----------
        y : ndarray
            Responses.
        params : mapping
            Natural parameters as jets.
        size : ndarray, optional
            Numbers of trials.

        Returns
        -------
        tuple of Jet
            ``(l(y), l(0))``.
        """
        return (self._log_density(y, params, size),
                self._log_density(np.zeros_like(y), params, size))

    def _size(self, y, size):
        if not self.needs_size:
            return None
        if size is None:
            raise ValueError(f"the {self.name} family needs size= (numbers of trials)")
        return np.broadcast_to(np.asarray(size, dtype=float), y.shape)

    # -- distribution -----------------------------------------------------------------
    def mean(self, params, size=None) -> np.ndarray:
        """``E[Y]``.

        Parameters
        ----------
        params : mapping
            Natural parameters (arrays that broadcast together).
        size : array_like, optional
            Numbers of trials (binomial-type families).

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def variance(self, mu, phi=None, extras=None, size=None) -> np.ndarray:
        """``Var[Y]`` from the natural parameters.

        Parameters
        ----------
        mu : array_like
            Means (the family's ``mu``; for wrappers the base family's).
        phi : array_like, optional
            Dispersion.
        extras : mapping, optional
            Other parameters (``zi``, ``power``, ``df``, ``psi``).
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def variance_of(self, params, size=None) -> np.ndarray:
        """:meth:`variance` from a parameter mapping.

        Parameters
        ----------
        params : mapping
            Natural parameters.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
        """
        extras = {k: v for k, v in params.items() if k not in ("mu", "phi")}
        return self.variance(params["mu"], params.get("phi"), extras, size=size)

    def sample(self, rng: np.random.Generator, params, size=None) -> np.ndarray:
        """Random draws, one per element of the (broadcast) parameters.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        params : mapping
            Natural parameters; give them a leading axis for several draws per
            observation.
        size : array_like, optional
            Numbers of trials (binomial-type families).

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def cdf(self, y, params, size=None) -> np.ndarray:
        """``P(Y <= y)``.

        Parameters
        ----------
        y : array_like
            Points.
        params : mapping
            Natural parameters.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def cdf_lower(self, y, params, size=None) -> np.ndarray:
        """``P(Y < y)``: ``cdf(y - 1)`` for discrete families, ``cdf(y)`` for continuous
        ones without atoms. Randomized quantile residuals draw between the two.

        Parameters
        ----------
        y : array_like
            Points.
        params : mapping
            Natural parameters.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
        """
        y = np.asarray(y, dtype=float)
        if self.discrete:
            return self.cdf(y - 1.0, params, size)
        return self.cdf(y, params, size)

    def sigma(self, phi) -> np.ndarray | float:
        """What glmmTMB's ``sigma()`` reports.

        Parameters
        ----------
        phi : array_like
            Dispersion (natural scale).

        Returns
        -------
        ndarray or float
            1 for families without dispersion.
        """
        return np.asarray(phi, dtype=float) if self.has_dispersion else 1.0

    # -- data -------------------------------------------------------------------------
    def check_response(self, y, name: str = "y", size=None, weights=None,
                       non_integer: str = "error") -> None:
        """Raise a :class:`DataError` naming the response when ``y`` is outside the
        family's support.

        Parameters
        ----------
        y : array_like
            Responses.
        name : str
            The response's name in messages.
        size : array_like, optional
            Numbers of trials (binomial-type families).
        weights : array_like, optional
            Prior weights (unused by most families).
        non_integer : {"error", "warn"}
            What non-integer counts give (glmmTMB warns).
        """
        check_finite(np.asarray(y, dtype=float), name)

    def start_mu(self, y, weights=None, size=None) -> np.ndarray:
        """Starting means (R's ``family$initialize``).

        Parameters
        ----------
        y : array_like
            Responses.
        weights : array_like, optional
            Prior weights.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
            Means (probabilities for binomial-type families).
        """
        return np.asarray(y, dtype=float).copy()

    def start_phi(self, y, mu, weights=None, size=None) -> float:
        """A moment-based starting dispersion.

        Parameters
        ----------
        y : array_like
            Responses.
        mu : array_like
            Means (e.g. :meth:`start_mu` or a GLM fit's).
        weights : array_like, optional
            Prior weights.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        float
            ``phi`` on the natural scale.
        """
        return 1.0

    def start_extras(self, y) -> dict[str, float]:
        """Starting values of the extra parameters.

        Parameters
        ----------
        y : array_like
            Responses.

        Returns
        -------
        dict
            Natural-scale values by parameter name.
        """
        return {}


def _weighted(out: jt.Jet, w: np.ndarray) -> jt.Jet:
    """``w * out`` with zero-weight observations contributing exactly 0 (even where their
    log-density is not finite)."""
    res = out * w
    zero = w == 0
    if np.any(zero):
        res = jt.where(zero, 0.0, res)
    return res


class ModelDensity:
    """A family with a link per channel: log-densities as jets of the linear predictors.

    Parameters
    ----------
    family : ResponseFamily
        Possibly wrapped (:class:`~mixedmodels.families.wrappers.ZeroInflated`,
        :class:`~mixedmodels.families.wrappers.Truncated`).
    links : mapping, optional
        Link per channel overriding the defaults (``mu``: the family's link; ``zi``:
        logit; ``phi``: log; extras: glmmTMB's transforms).

    Attributes
    ----------
    channels : tuple of str
        Order of the derivative axes of :meth:`evaluate`'s jets.
    """

    def __init__(self, family: ResponseFamily, links: Mapping | None = None):
        links = dict(links or {})
        unknown = set(links) - set(family.channels)
        if unknown:
            raise FormulaError(
                f"links given for {sorted(unknown)}, which the {family.name} family does "
                f"not have; its channels are {list(family.channels)}")
        self.family = family
        self.channels: tuple[str, ...] = family.channels
        self.links: dict[str, Link] = {
            c: make_param_link(links[c]) if c in links else family.parameter_link(c)
            for c in self.channels}
        from .fused import fused_kernel
        #: closed-form jets for the families that have them (:mod:`.fused`); used by
        #: ``engine="auto"``
        self._fused = fused_kernel(family, self.links)

    @property
    def sparse(self) -> bool:
        """Whether :meth:`evaluate` uses sparse jets by default (the family's
        ``supports_sparse``)."""
        return bool(getattr(self.family, "supports_sparse", False))

    def parameters(self, etas: Mapping, n: int, order: int, wrt=None,
                   sparse: bool = False) -> dict[str, jt.JetBase]:
        """Natural parameters as :class:`Parameter` jets over the channels (or over the
        channels ``wrt`` only, the others held constant); :class:`SparseParameter` jets
        with ``sparse=True``.

        Parameters
        ----------
        etas : mapping
            Linear predictor per channel (arrays of length ``n`` or scalars).
        n : int
            Number of observations.
        order : int
            Derivative order.
        wrt : sequence of str, optional
            The channels to differentiate (default: all, in :attr:`channels` order).
        sparse : bool
            Sparse jets instead of dense ones.

        Returns
        -------
        dict of Parameter or SparseParameter
        """
        wrt = self.channels if wrt is None else tuple(wrt)
        m = len(wrt)
        missing = [c for c in self.channels if c not in etas]
        if missing:
            raise ValueError(f"linear predictors missing for channels {missing}")
        unknown = [c for c in wrt if c not in self.channels]
        if unknown:
            raise ValueError(f"wrt names channels {unknown} that the {self.family.name} "
                             f"family does not have; its channels are "
                             f"{list(self.channels)}")
        kind = SparseParameter if sparse else Parameter
        out = {}
        for c in self.channels:
            eta = np.asarray(etas[c], dtype=float)
            if eta.shape != (n,):
                eta = np.broadcast_to(eta, (n,))
            out[c] = kind(self.links[c], eta, wrt.index(c) if c in wrt else 0, m, order,
                          constant=c not in wrt)
        return out

    def natural_parameters(self, etas: Mapping, n: int | None = None) -> dict[str, np.ndarray]:
        """Natural parameters as arrays (for ``mean``, ``sample``, ``cdf``).

        Parameters
        ----------
        etas : mapping
            Linear predictor per channel.
        n : int, optional
            Broadcast every channel to this length.

        Returns
        -------
        dict of ndarray
        """
        out = {}
        for c in self.channels:
            eta = np.asarray(etas[c], dtype=float)
            if n is not None:
                eta = np.broadcast_to(eta, (n,))
            with np.errstate(all="ignore"):
                out[c] = self.links[c].inverse_derivatives(eta, 0)[0]
        return out

    def evaluate(self, y, etas: Mapping, weights=None, size=None, order: int = 2,
                 wrt=None, engine: str = "auto", focus=None) -> jt.Jet:
        """``w_i l_i`` and its derivatives with respect to the channels' linear
        predictors.

        Parameters
        ----------
        y : array_like
            Responses, shape ``(n,)``.
        etas : mapping
            Linear predictor per channel (arrays of length ``n`` or scalars).
        weights : array_like, optional
            Prior weights (multiplying the log-density).
        size : array_like, optional
            Numbers of trials (binomial-type families).
        order : int
            Highest derivative order, 0 to 3; lower orders cost less.
        wrt : sequence of str, optional
            Differentiate with respect to these channels only (fewer variables cost
            less: the inner problem of the Laplace engine needs only the channels with
            random effects).
        engine : {"auto", "sparse", "dense"}
            Jet storage: ``"sparse"`` (:class:`~mixedmodels.families.sparse_jet.SparseJet`,
            several times faster: only the distinct nonzero derivative entries are
            computed) or ``"dense"`` (:class:`~mixedmodels.families.jet.Jet`, every
            family). ``"auto"`` is sparse for the families that support it
            (:attr:`sparse`). Both give the same numbers up to rounding.
        focus : sequence of str, optional
            Channels (among those differentiated) in focus: only the derivatives with at
            most one index outside them are computed, the others are returned as zeros
            (the Laplace gradient needs the third derivatives along the random-effects
            channels only; fewer entries cost less with the sparse engine).

        Returns
        -------
        Jet
            Derivative axes in :attr:`channels` order (or ``wrt``'s): ``d2[i, a, b]`` is
            ``d^2 w_i l_i / d eta_a d eta_b``.
        """
        if not 0 <= order <= jt.MAX_ORDER:
            raise ValueError(f"order must be 0..{jt.MAX_ORDER}, got {order}")
        if engine not in ("auto", "sparse", "dense"):
            raise ValueError(f"engine must be 'auto', 'sparse' or 'dense', got {engine!r}")
        sparse = self.sparse if engine == "auto" else engine == "sparse"
        if sparse and not self.sparse:
            raise ValueError(f"the {self.family.label()} family has no sparse-jet "
                             "log-density; use engine='dense' or 'auto'")
        y = np.asarray(y, dtype=float)
        names = self.channels if wrt is None else tuple(wrt)
        if focus is not None:
            unknown = [c for c in focus if c not in names]
            if unknown:
                raise ValueError(f"focus names channels {unknown} that are not "
                                 f"differentiated; they are {list(names)}")
        if self._fused is not None and engine == "auto":
            missing = [c for c in self.channels if c not in etas]
            bad = [c for c in names if c not in self.channels]
            if missing or bad:                 # parameters() words the error
                self.parameters(etas, y.shape[0], order, wrt)
            return self._fused(y, etas, weights, size, order, wrt, focus)
        if focus is not None:
            focus = [names.index(c) for c in focus]
        params = self.parameters(etas, y.shape[0], order, wrt, sparse=sparse)
        if not sparse:
            out = self.family.log_density(y, params, weights=weights, size=size)
            return out if focus is None else _outside_focus_zeroed(out, focus)
        with sparse_focus(focus):
            out = self.family.log_density(y, params, weights=weights, size=size)
        return out.to_jet()

    def log_density_value(self, y, etas: Mapping, weights=None, size=None) -> np.ndarray:
        """``w_i l_i`` without derivatives.

        Parameters
        ----------
        y : array_like
            Responses.
        etas : mapping
            Linear predictor per channel.
        weights : array_like, optional
            Prior weights.
        size : array_like, optional
            Numbers of trials.

        Returns
        -------
        ndarray
        """
        return self.evaluate(y, etas, weights=weights, size=size, order=0).v

    def check_response(self, y, name: str = "y", size=None, weights=None,
                       non_integer: str = "error") -> None:
        """The family's :meth:`ResponseFamily.check_response`.

        Parameters
        ----------
        y : array_like
            Responses.
        name : str
            The response's name in messages.
        size : array_like, optional
            Numbers of trials.
        weights : array_like, optional
            Prior weights.
        non_integer : {"error", "warn"}
            What non-integer counts give.
        """
        self.family.check_response(y, name, size=size, weights=weights,
                                   non_integer=non_integer)

    def __repr__(self) -> str:
        links = ", ".join(f"{c}={lk.name}" for c, lk in self.links.items())
        return f"ModelDensity({self.family!r}, {links})"


def _outside_focus_zeroed(jet: jt.Jet, focus) -> jt.Jet:
    """``jet`` with its derivative entries of more than one index outside ``focus`` set to
    zero (what the sparse engine leaves out under a focus)."""
    inside = np.zeros(jet.m, dtype=int)
    inside[list(focus)] = 1
    outside = 1 - inside
    arrays = [jet.g1]
    for k, g in ((2, jet.g2), (3, jet.g3)):
        if g is None:
            arrays.append(None)
            continue
        count = sum(np.expand_dims(outside, tuple(j for j in range(k) if j != ax))
                    for ax in range(k))
        keep = (count <= 1).reshape(count.shape + (1,) * (g.ndim - k))
        arrays.append(g * keep)
    return jt.Jet(jet.v, *arrays[:jet.order], m=jet.m, order=jet.order)

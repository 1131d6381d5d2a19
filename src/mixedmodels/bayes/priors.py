r"""Prior distributions of blme (Chung et al. 2013) for :func:`~mixedmodels.blmer` and
:func:`~mixedmodels.bglmer`.

A prior adds its deviance, ``-2 log p``, to the fit's objective. blme writes every prior's
deviance in one form that the profiled objective can carry,

.. math::

    -2\log p = \sum_k e_k\,\sigma^{k} + \pi + c + d\,\log\sigma^2,

an *exponential* part ``e_k`` multiplying a power ``k`` of the residual sd, a *polynomial*
part ``pi`` in the covariance factor, a constant ``c`` and a power ``d`` of
``sigma^2``. A prior on the **common scale** (``common_scale=True``, blme's default) is a
prior on the covariance relative to ``sigma^2`` -- ``Lambda Lambda'`` for a covariance, the
fixed effects in units of ``sigma`` -- and needs no power of ``sigma``; on the absolute scale
(``common_scale=False``) ``Sigma = sigma^2 Lambda Lambda'`` and powers of ``sigma`` appear.

Covariance priors (one per random-effects term; ``d`` effects per level, ``Sigma_r`` the
relative covariance ``Lambda Lambda'``, ``S`` the scale):

* :func:`wishart` -- ``p(Sigma) ~ |Sigma|^{(nu-d-1)/2} exp(-tr(S^{-1}Sigma)/2)``; default
  ``nu = d + 2.5`` with ``S = inf`` (blme's default prior: only the determinant term,
  ``-(nu - d - 1) log|Sigma_r|``, which is infinite at a singular covariance and so keeps
  the estimate off the boundary). For a scalar term it is a gamma(2.5, 0) on the sd.
* :func:`invwishart` -- ``|Sigma|^{-(nu+d+1)/2} exp(-tr(S Sigma^{-1})/2)``.
* :func:`gamma`, :func:`invgamma` -- on the sd (``posterior_scale="sd"``) or the variance of
  a scalar term.

Fixed-effect priors: :func:`normal` (mean 0; covariance ``sigma^2 C`` on the common scale)
and :func:`t` (multivariate t). Residual priors: :func:`gamma`, :func:`invgamma` (on
``sigma^2`` by default) and :func:`point` (``sigma`` fixed at a value: the GLMM FAQ's way to
fix the residual variance of a meta-analysis).

Every argument left at ``None`` takes blme's default *for the context it is used in* (a
covariance or residual prior, a linear or generalized linear model, the term's dimension
``d``), exactly as blme evaluates its prior calls: ``gamma()`` means shape 2.5 on the sd for a
covariance and a flat ``gamma(0, 0)`` on the variance for the residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import gammaln

from .._errors import MixedModelsError, MixedModelsWarning
from .._messages import emit_warning

__all__ = [
    "DEFAULT",
    "Gamma",
    "InvGamma",
    "InvWishart",
    "Normal",
    "Point",
    "Prior",
    "PriorContext",
    "PriorError",
    "PriorTypeError",
    "PriorWarning",
    "T",
    "Wishart",
    "gamma",
    "invgamma",
    "invwishart",
    "normal",
    "point",
    "t",
    "wishart",
]



class PriorError(MixedModelsError):
    """A prior does not fit the model: a negative or non-finite parameter, a scale matrix of
    the wrong dimension, a prior in the wrong place, a term that is not in the model.
    A ``ValueError``, as before it had its own class."""


class PriorTypeError(PriorError, TypeError):
    """A prior argument of the wrong type (a string for a prior, a non-boolean flag); also a
    ``TypeError``, as before it had its own class."""


class PriorWarning(MixedModelsWarning):
    """A prior was ignored or is unusual (blme warns in the same places)."""


_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)
_LOG_2PI = math.log(2.0 * math.pi)


class _Default:
    """Sentinel: the prior blme uses when the argument is not given."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DEFAULT"

    def __reduce__(self):
        return (_Default, ())


#: ``cov_prior=DEFAULT``: blme's default covariance prior (:func:`wishart` for every term).
DEFAULT = _Default()


@dataclass(frozen=True)
class PriorContext:
    """Where a prior is used; fixes blme's context-dependent defaults.

    Attributes
    ----------
    kind : {"cov", "fixef", "resid"}
    glmm : bool
        In a generalized linear mixed model (no residual scale: covariance priors are on the
        absolute scale of the random effects, fixed-effect priors on the coefficients).
    dim : int
        Random effects per level of the term (covariance priors).
    fixef_names : tuple of str
        Names of the fixed effects (fixed-effect priors).
    label : str
        What the prior is for, in messages.
    """

    kind: str
    glmm: bool = False
    dim: int = 1
    fixef_names: tuple[str, ...] = ()
    label: str = ""

    @property
    def p(self) -> int:
        return len(self.fixef_names)


class Prior:
    """Base of blme's priors (frozen dataclasses; see the module docstring).

    Subclasses fill in defaults with :meth:`resolve` and then provide their deviance's parts:
    :meth:`sigma_power`, :attr:`constant`, :attr:`df_adjust` and the exponential/polynomial
    terms of their kind.
    """

    #: Name as blme spells it in summaries.
    blme_name = ""
    #: Contexts the prior may be used in.
    kinds: tuple[str, ...] = ()
    #: A covariance prior on the sd of a scalar term (takes a number, not a matrix).
    scalar_term = False

    def resolve(self, ctx: PriorContext) -> Prior:  # pragma: no cover - abstract
        """A copy with every default filled in for ``ctx`` (validated)."""
        raise NotImplementedError

    def _check_kind(self, ctx: PriorContext) -> None:
        if ctx.kind not in self.kinds:
            allowed = {"cov": "covariance", "fixef": "fixed-effect",
                       "resid": "residual-variance"}
            raise PriorError(
                f"{self.blme_name}() cannot be a {allowed[ctx.kind]} prior ({ctx.label}); "
                f"it is a prior for: {', '.join(allowed[k] for k in self.kinds)}")

    def _common_scale(self, ctx: PriorContext, value) -> bool:
        """blme's GLMM priors have no residual scale to be relative to: covariance priors
        are on the random effects' own scale (blme's ``common.scale = TRUE`` there), fixed
        effect priors on the coefficients (``FALSE``); the argument is not accepted."""
        if ctx.glmm:
            if value is not None:
                raise PriorError(
                    f"common_scale does not apply to {self.blme_name}() in bglmer ({ctx.label}): "
                    "a GLMM has no residual scale; leave it out")
            return ctx.kind == "cov"
        return True if value is None else _flag("common_scale", value)

    # deviance parts, overridden where they are not zero
    @property
    def constant(self) -> float:
        """Normalizing constant on the deviance scale."""
        return 0.0

    @property
    def df_adjust(self) -> float:
        """Coefficient of ``log sigma^2`` in the prior's deviance."""
        return 0.0

    def sigma_power(self) -> int:
        """Power of ``sigma`` multiplying the exponential term (0: none)."""
        return 0

    def describe(self) -> str:
        """blme's one-line description of the (resolved) prior."""
        return repr(self)

    def infinite_at_zero(self) -> bool:
        """The (resolved) covariance prior's deviance is ``+inf`` at a zero sd, so the
        estimate is inside the parameter space."""
        return False


def _flag(name: str, value) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise PriorTypeError(f"{name} must be True or False, got {value!r}")


def _positive(name: str, value, what: str, allow_zero: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PriorTypeError(f"{what}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v) and not (name == "scale" and v == math.inf):
        raise PriorError(f"{what}: {name} must be finite, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise PriorError(f"{what}: {name} must be {'non-negative' if allow_zero else 'positive'}"
                         f", got {value!r}")
    return v


def _scale_choice(value, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise PriorError(f"{what}: posterior_scale must be one of {allowed}, got {value!r}")
    return value


#: blme prints its priors rounded to ``max(3, getOption("digits") - 3)`` decimals.
PRINT_DIGITS = 4


def _fmt(x: float) -> str:
    """A number as blme prints it: rounded to :data:`PRINT_DIGITS` decimals, then R's
    default 7 significant digits."""
    if x == math.inf:
        return "Inf"
    v = round(float(x), PRINT_DIGITS)
    return f"{v + 0.0:.7g}"


def _matrix_text(m: np.ndarray) -> str:
    """blme's rendering of a scale matrix: the number, or ``c(...)`` of its entries."""
    if m.size == 1:
        return _fmt(float(m.ravel()[0]))
    vals = m.ravel(order="F")
    if m.shape[0] > 2:
        return "c(" + ", ".join(_fmt(v) for v in vals[:3]) + ", ...)"
    return "c(" + ", ".join(_fmt(v) for v in vals) + ")"


# =========================================================================================
# covariance priors
# =========================================================================================

def _log_abs_diag(lam: np.ndarray) -> np.ndarray:
    """``log |Lambda_jj|`` (Lambda's column signs do not change the covariance)."""
    with np.errstate(divide="ignore"):
        return np.log(np.abs(np.diagonal(lam)))


def _matrix_sqrt(S: np.ndarray, inverse: bool = False) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    with np.errstate(divide="ignore"):
        d = 1.0 / np.sqrt(w) if inverse else np.sqrt(np.maximum(w, 0.0))
    return (V * d) @ V.T


def _scale_matrix(scale, d: int, what: str) -> np.ndarray:
    """A scale given as a number, a vector of d variances or a d x d matrix."""
    arr = np.asarray(scale, dtype=float)
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.ndim == 1:
        if arr.size != d:
            raise PriorError(f"{what}: scale has {arr.size} values for a term with {d} "
                             "random effects per level (give 1, d values or a d x d matrix)")
        if np.any(arr < 0):
            raise PriorError(f"{what}: scale must be non-negative, got {arr.tolist()}")
        return np.diag(arr)
    if arr.shape != (d, d):
        raise PriorError(f"{what}: scale must be a {d} x {d} matrix, got shape {arr.shape}")
    if not np.allclose(arr, arr.T):
        raise PriorError(f"{what}: scale matrix is not symmetric")
    return arr


def _wishart_lgamma_sum(nu: float, d: int) -> float:
    return float(sum(2.0 * gammaln(0.5 * (nu + 1.0 - i)) for i in range(1, d + 1)))


@dataclass(frozen=True)
class Wishart(Prior):
    r"""Wishart prior on a term's covariance (blme's default covariance prior).

    Deviance ``-(nu - d - 1) log|Sigma| + tr(S^{-1} Sigma) + const`` with ``Sigma`` the
    covariance (relative to ``sigma^2`` on the common scale). With ``posterior_scale="sqrt"``
    the trace uses ``Sigma^{1/2}``.

    Attributes
    ----------
    df : float or None
        Degrees of freedom ``nu > d - 1``; default ``d + 2.5``.
    scale : float, sequence or ndarray
        ``S``; ``inf`` (default) drops the trace term and the constant.
    common_scale : bool or None
        Relative to the residual variance (LMMs; default True).
    posterior_scale : {"cov", "sqrt"}
    """

    df: float | None = None
    scale: object = math.inf
    common_scale: bool | None = None
    posterior_scale: str = "cov"
    _R_inv: np.ndarray | None = field(default=None, repr=False, compare=False)
    _log_det_scale: float = field(default=math.inf, repr=False, compare=False)

    blme_name = "wishart"
    kinds = ("cov",)

    def resolve(self, ctx: PriorContext) -> Wishart:
        self._check_kind(ctx)
        d = ctx.dim
        what = f"wishart() prior for {ctx.label}"
        nu = d + 2.5 if self.df is None else float(self.df)
        if not nu > d - 1:
            raise PriorError(f"{what}: df must exceed d - 1 = {d - 1} (a Wishart with fewer "
                             f"degrees of freedom is singular), got {nu}")
        post = _scale_choice(self.posterior_scale, ("cov", "sqrt"), what)
        arr = np.asarray(self.scale, dtype=float)
        if arr.ndim == 0 and float(arr) == math.inf:
            R_inv, log_det = np.zeros((d, d)), math.inf
        else:
            S = _scale_matrix(self.scale, d, what)
            if np.any(np.isinf(S)):
                R_inv, log_det = np.zeros((d, d)), math.inf
            else:
                try:
                    R = np.linalg.cholesky(S).T          # S = R'R, R upper
                except np.linalg.LinAlgError:
                    raise PriorError(f"{what}: scale matrix is not positive definite") from None
                R_inv = np.linalg.inv(R)
                log_det = float(2.0 * np.sum(np.log(np.diagonal(R))))
        return replace(self, df=nu, common_scale=self._common_scale(ctx, self.common_scale),
                       posterior_scale=post, _R_inv=R_inv, _log_det_scale=log_det)

    @property
    def finite_scale(self) -> bool:
        return math.isfinite(self._log_det_scale)

    @property
    def constant(self) -> float:
        if not self.finite_scale:
            return 0.0
        d = self._R_inv.shape[0]
        return (self.df * (d * _LOG_2 + self._log_det_scale) + 0.5 * d * (d - 1) * _LOG_PI
                + _wishart_lgamma_sum(self.df, d))

    @property
    def df_adjust(self) -> float:
        d = self._R_inv.shape[0]
        if self.common_scale or not self.finite_scale:
            return 0.0
        return -d * (self.df - d - 1.0)

    def sigma_power(self) -> int:
        if self.common_scale or not self.finite_scale:
            return 0
        return 1 if self.posterior_scale == "sqrt" else 2

    def exponential(self, lam: np.ndarray) -> float:
        """``tr(S^{-1} Sigma_r)`` (or with ``Sigma_r^{1/2}``); 0 for an infinite scale."""
        if not self.finite_scale:
            return 0.0
        if self.posterior_scale == "cov":
            return float(np.sum((lam.T @ self._R_inv) ** 2))
        root = _matrix_sqrt(lam @ lam.T)
        return float(np.sum(root * (self._R_inv.T @ self._R_inv)))

    def polynomial(self, lam: np.ndarray) -> float:
        d = lam.shape[0]
        logs = _log_abs_diag(lam)
        if np.any(np.isneginf(logs)):
            return math.inf         # blme: infinite at a singular covariance, whatever df
        return float(-2.0 * (self.df - d - 1.0) * np.sum(logs))

    def infinite_at_zero(self) -> bool:
        return True

    def describe(self) -> str:
        if not self.finite_scale:
            scale = "Inf"
        else:
            scale = _matrix_text(np.linalg.inv(self._R_inv @ self._R_inv.T))
        return (f"wishart(df = {_fmt(self.df)}, scale = {scale}, posterior.scale = "
                f"{self.posterior_scale}, common.scale = {str(self.common_scale).upper()})")


@dataclass(frozen=True)
class InvWishart(Prior):
    r"""Inverse-Wishart prior on a term's covariance.

    Deviance ``(nu + d + 1) log|Sigma| + tr(S Sigma^{-1}) + const``.

    Attributes
    ----------
    df : float or None
        Default ``d - 0.998`` (LMM) or ``d - 0.5`` (GLMM), blme's.
    scale : float, sequence, ndarray or None
        Default ``diag(df + 0.1)`` (LMM) or ``diag(100 / (df + d + 1))`` (GLMM).
    common_scale : bool or None
    posterior_scale : {"cov", "sqrt"}
    """

    df: float | None = None
    scale: object = None
    common_scale: bool | None = None
    posterior_scale: str = "cov"
    _R: np.ndarray | None = field(default=None, repr=False, compare=False)
    _log_det_scale: float = field(default=-math.inf, repr=False, compare=False)

    blme_name = "invwishart"
    kinds = ("cov",)

    def resolve(self, ctx: PriorContext) -> InvWishart:
        self._check_kind(ctx)
        d = ctx.dim
        what = f"invwishart() prior for {ctx.label}"
        nu = (d - 0.5 if ctx.glmm else d - 0.998) if self.df is None else float(self.df)
        if not nu > d - 1:
            raise PriorError(f"{what}: df must exceed d - 1 = {d - 1}, got {nu}")
        post = _scale_choice(self.posterior_scale, ("cov", "sqrt"), what)
        if self.scale is None:
            s = 100.0 / (nu + d + 1.0) if ctx.glmm else nu + 0.1
            S = np.diag(np.full(d, s))
        else:
            S = _scale_matrix(self.scale, d, what)
        if np.all(S == 0):
            R, log_det = np.zeros((d, d)), -math.inf
        else:
            try:
                R = np.linalg.cholesky(S).T
            except np.linalg.LinAlgError:
                raise PriorError(f"{what}: scale matrix is not positive definite") from None
            log_det = float(2.0 * np.sum(np.log(np.diagonal(R))))
        common = self._common_scale(ctx, self.common_scale)
        return replace(self, df=nu, scale=S, common_scale=common, posterior_scale=post, _R=R,
                       _log_det_scale=log_det)

    @property
    def finite_scale(self) -> bool:
        return math.isfinite(self._log_det_scale)

    @property
    def constant(self) -> float:
        if not self.finite_scale:
            return 0.0
        d = self._R.shape[0]
        return (self.df * (d * _LOG_2 - self._log_det_scale) + 0.5 * d * (d - 1) * _LOG_PI
                + _wishart_lgamma_sum(self.df, d))

    @property
    def df_adjust(self) -> float:
        d = self._R.shape[0]
        if self.common_scale or not self.finite_scale:
            return 0.0
        return d * (self.df + d + 1.0)

    def sigma_power(self) -> int:
        if self.common_scale or not self.finite_scale:
            return 0
        return -1 if self.posterior_scale == "sqrt" else -2

    def exponential(self, lam: np.ndarray) -> float:
        """``tr(S Sigma_r^{-1})`` (``inf`` at a singular covariance)."""
        if not self.finite_scale:
            return 0.0
        if np.any(np.diagonal(lam) == 0):
            return math.inf
        if self.posterior_scale == "cov":
            return float(np.sum((self._R @ np.linalg.inv(lam.T)) ** 2))
        # blme's "sqrt" form pairs Sigma^{-1/2} with R R' (R = chol(S), upper): the same as
        # S for the diagonal scales blme is used with, kept as blme computes it
        root_inv = _matrix_sqrt(lam @ lam.T, inverse=True)
        return float(np.sum(root_inv * (self._R @ self._R.T)))

    def polynomial(self, lam: np.ndarray) -> float:
        d = lam.shape[0]
        logs = _log_abs_diag(lam)
        if np.any(np.isneginf(logs)):
            return math.inf
        return float(2.0 * (self.df + d + 1.0) * np.sum(logs))

    def infinite_at_zero(self) -> bool:
        return True

    def describe(self) -> str:
        scale = "0" if not self.finite_scale else _matrix_text(self._R.T @ self._R)
        return (f"invwishart(df = {_fmt(self.df)}, scale = {scale}, posterior.scale = "
                f"{self.posterior_scale}, common.scale = {str(self.common_scale).upper()})")


class _ScalarScalePrior(Prior):
    """What blme's gamma and inverse-gamma priors share: a prior on a scalar term's sd or
    variance, or on the residual variance (``posterior_scale`` picks sd or var, so the
    prior's argument is ``|lambda|`` raised to :attr:`_pow`), with the gamma function's
    normalizing constant in its second parameter (gamma's rate, inverse gamma's scale)."""

    @property
    def _pow(self) -> int:
        return 2 if self.posterior_scale == "var" else 1

    def _resolved_common_scale(self, ctx: PriorContext, what: str) -> bool | None:
        if ctx.kind == "resid":
            if self.common_scale is not None:
                raise PriorError(f"{what}: common_scale does not apply to a residual prior")
            return None         # a residual prior is on sigma itself (blme prints no scale)
        return self._common_scale(ctx, self.common_scale)

    def _gamma_constant(self, second: float) -> float:
        """``-2 (shape log(second) - lgamma(shape))``; 0 for the flat (zero) cases."""
        if self.shape == 0.0 or second == 0.0:
            return 0.0
        return float(-2.0 * (self.shape * math.log(second) - gammaln(self.shape)))

    def _describe(self, second_name: str, second: float) -> str:
        text = (f"{self.blme_name}(shape = {_fmt(self.shape)}, {second_name} = "
                f"{_fmt(second)}, posterior.scale = {self.posterior_scale}")
        return text + (f", common.scale = {str(self.common_scale).upper()})"
                       if self.common_scale is not None else ")")


@dataclass(frozen=True)
class Gamma(_ScalarScalePrior):
    r"""Gamma prior: on the sd or variance of a scalar random-effects term, or on the
    residual variance.

    Covariance use: ``lambda`` (the sd) or ``lambda^2`` has density
    ``~ x^{shape-1} exp(-rate x)``; defaults shape 2.5, rate 0, on the sd. Residual use:
    on ``sigma^2`` (default) or ``sigma``; defaults shape 0, rate 0 (flat).

    Attributes
    ----------
    shape, rate : float or None
    common_scale : bool or None
        Covariance use in an LMM: relative to ``sigma`` (default True).
    posterior_scale : {"sd", "var"} or None
        Default ``"sd"`` for covariances, ``"var"`` for the residual.
    """

    shape: float | None = None
    rate: float | None = None
    common_scale: bool | None = None
    posterior_scale: str | None = None

    blme_name = "gamma"
    kinds = ("cov", "resid")
    scalar_term = True

    def resolve(self, ctx: PriorContext) -> Gamma | None:
        self._check_kind(ctx)
        what = f"gamma() prior for {ctx.label}"
        if ctx.kind == "cov" and ctx.dim > 1:
            return None         # blme warns and ignores it; the caller says so
        resid = ctx.kind == "resid"
        shape = (0.0 if resid else 2.5) if self.shape is None else \
            _positive("shape", self.shape, what)
        rate = 0.0 if self.rate is None else _positive("rate", self.rate, what)
        post = ("var" if resid else "sd") if self.posterior_scale is None else \
            _scale_choice(self.posterior_scale, ("sd", "var"), what)
        return replace(self, shape=shape, rate=rate,
                       common_scale=self._resolved_common_scale(ctx, what),
                       posterior_scale=post)

    @property
    def constant(self) -> float:
        return self._gamma_constant(self.rate)

    @property
    def df_adjust(self) -> float:
        if self.common_scale:
            return 0.0
        return -(self.shape - 1.0) * self._pow

    def sigma_power(self) -> int:
        if self.common_scale or self.rate == 0.0:
            return 0
        return self._pow

    def exponential(self, lam: float = 1.0) -> float:
        if self.rate == 0.0:
            return 0.0
        return float(2.0 * self.rate * abs(lam) ** self._pow)

    def polynomial(self, lam: float) -> float:
        coef = -2.0 * self._pow * (self.shape - 1.0)
        return _coef_log(coef, abs(lam))

    def infinite_at_zero(self) -> bool:
        return self.shape > 1.0

    def describe(self) -> str:
        return self._describe("rate", self.rate)


@dataclass(frozen=True)
class InvGamma(_ScalarScalePrior):
    r"""Inverse-gamma prior on the sd or variance of a scalar term, or on the residual
    variance: density ``~ x^{-shape-1} exp(-scale / x)``.

    Defaults: covariance use in an LMM shape 0.001, scale ``shape + 0.05`` on the variance;
    in a GLMM shape 0.5, scale 100 on the sd (blme's); residual use shape 0, scale 0 on
    ``sigma^2`` (flat).

    Attributes
    ----------
    shape, scale : float or None
    common_scale : bool or None
    posterior_scale : {"sd", "var"} or None
    """

    shape: float | None = None
    scale: float | None = None
    common_scale: bool | None = None
    posterior_scale: str | None = None

    blme_name = "invgamma"
    kinds = ("cov", "resid")
    scalar_term = True

    def resolve(self, ctx: PriorContext) -> InvGamma | None:
        self._check_kind(ctx)
        what = f"invgamma() prior for {ctx.label}"
        if ctx.kind == "cov" and ctx.dim > 1:
            return None
        resid = ctx.kind == "resid"
        if resid:
            d_shape, d_post = 0.0, "var"
        elif ctx.glmm:
            d_shape, d_post = 0.5, "sd"
        else:
            d_shape, d_post = 0.001, "var"
        shape = d_shape if self.shape is None else _positive("shape", self.shape, what)
        if self.scale is None:
            scale = 0.0 if resid else (100.0 if ctx.glmm else shape + 0.05)
        else:
            scale = _positive("scale", self.scale, what)
        post = d_post if self.posterior_scale is None else \
            _scale_choice(self.posterior_scale, ("sd", "var"), what)
        return replace(self, shape=shape, scale=scale,
                       common_scale=self._resolved_common_scale(ctx, what),
                       posterior_scale=post)

    @property
    def constant(self) -> float:
        return self._gamma_constant(self.scale)

    @property
    def df_adjust(self) -> float:
        if self.common_scale:
            return 0.0
        return (self.shape + 1.0) * self._pow

    def sigma_power(self) -> int:
        if self.common_scale or self.scale == 0.0:
            return 0
        return -self._pow

    def exponential(self, lam: float = 1.0) -> float:
        if self.scale == 0.0:
            return 0.0
        a = abs(lam)
        if a == 0.0:
            return math.inf
        return float(2.0 * self.scale / a ** self._pow)

    def polynomial(self, lam: float) -> float:
        return _coef_log(2.0 * self._pow * (self.shape + 1.0), abs(lam))

    def infinite_at_zero(self) -> bool:
        return self.scale > 0.0

    def describe(self) -> str:
        return self._describe("scale", self.scale)


def _coef_log(coef: float, x: float) -> float:
    """``coef * log(x)`` with ``0 * log 0 = 0`` (a flat polynomial part)."""
    if coef == 0.0:
        return 0.0
    if x == 0.0:
        return math.inf if coef < 0 else -math.inf
    return coef * math.log(x)


# =========================================================================================
# fixed-effect priors
# =========================================================================================

def _two_level(values: np.ndarray, p: int) -> np.ndarray:
    """blme's expansion of a vector to the p fixed effects: one value for all, two values as
    (first, rest) when p > 2, else recycled."""
    if values.size == 1:
        return np.full(p, float(values[0]))
    if values.size == 2 and p > 2:
        return np.r_[values[0], np.full(p - 1, values[1])]
    return np.resize(values, p)


@dataclass(frozen=True)
class Normal(Prior):
    r"""Normal prior on the fixed effects, mean 0.

    Deviance ``beta' C^{-1} beta + log|2 pi C|`` with covariance ``C`` (``sigma^2 C`` on the
    common scale of an LMM). Entries with an infinite sd are left flat.

    Attributes
    ----------
    sd : float, sequence or dict, optional
        Standard deviations: one for all, ``(intercept, others)`` for two values and more
        than two fixed effects (blme's default ``(10, 2.5)``), one per fixed effect, or a
        dict ``{name: sd}`` (unnamed effects flat; one named value sets only that effect).
    cov : ndarray, optional
        Full covariance matrix (overrides ``sd``).
    common_scale : bool or None
    """

    sd: object = None
    cov: object = None
    common_scale: bool | None = None
    _R_inv: np.ndarray | None = field(default=None, repr=False, compare=False)

    blme_name = "normal"
    kinds = ("fixef",)

    def resolve(self, ctx: PriorContext) -> Normal:
        self._check_kind(ctx)
        p = ctx.p
        what = f"normal() prior for {ctx.label}"
        if self.cov is not None:
            C = np.asarray(self.cov, dtype=float)
            if C.ndim == 1:
                C = np.diag(_expand_values(C, p, what, "cov"))
        else:
            sd = (10.0, 2.5) if self.sd is None else self.sd
            if isinstance(sd, dict):
                unknown = [k for k in sd if k not in ctx.fixef_names]
                if unknown:
                    raise PriorError(f"{what}: no fixed effect named {unknown}; the fixed "
                                     f"effects are {list(ctx.fixef_names)}")
                var = np.full(p, math.inf)
                for k, v in sd.items():
                    var[ctx.fixef_names.index(k)] = float(v) ** 2
            else:
                sd = np.atleast_1d(np.asarray(sd, dtype=float))
                if sd.size > p:
                    # blme: "length of sd in normal prior exceeds number of fixed effects",
                    # and the extra values are dropped
                    emit_warning(f"{what}: {sd.size} sds for {p} fixed effects; the last "
                                 f"{sd.size - p} are ignored", PriorWarning, stacklevel=5)
                var = _two_level(sd, p) ** 2
            C = np.diag(var)
        if C.shape != (p, p):
            raise PriorError(f"{what}: cov must be {p} x {p} (the model has {p} fixed "
                             f"effects), got shape {C.shape}")
        if not np.allclose(C, C.T):
            raise PriorError(f"{what}: cov is not symmetric")
        diag = np.diagonal(C)
        if np.any(np.isinf(diag)):
            off = C[~np.eye(p, dtype=bool)]
            if np.any(off != 0):
                raise PriorError(f"{what}: an infinite variance needs a diagonal cov")
            if np.any(diag <= 0):
                raise PriorError(f"{what}: variances must be positive")
            R_inv = np.diag(1.0 / np.sqrt(diag))
        else:
            try:
                R_inv = np.linalg.inv(np.linalg.cholesky(C).T)
            except np.linalg.LinAlgError:
                raise PriorError(f"{what}: cov is not positive definite") from None
        return replace(self, cov=C, common_scale=self._common_scale(ctx, self.common_scale),
                       _R_inv=R_inv)

    @property
    def precision_root(self) -> np.ndarray:
        """``G`` with ``C^{-1} = G G'`` (zero columns for flat entries)."""
        return self._R_inv

    @property
    def rank(self) -> int:
        return int(np.sum(np.diagonal(self._R_inv) != 0))

    @property
    def constant(self) -> float:
        d = np.diagonal(self._R_inv)
        nz = d != 0
        return float(self.rank * _LOG_2PI - 2.0 * np.sum(np.log(d[nz])))

    @property
    def df_adjust(self) -> float:
        return float(self.rank) if self.common_scale else 0.0

    def sigma_power(self) -> int:
        return -2 if self.common_scale else 0

    def exponential(self, beta: np.ndarray) -> float:
        """``beta' C^{-1} beta``."""
        return float(np.sum((beta @ self._R_inv) ** 2))

    def describe(self) -> str:
        d = np.diagonal(self._R_inv)
        if np.any(d == 0):
            cov = np.diag(np.where(d == 0, math.inf, 1.0 / np.where(d == 0, 1.0, d) ** 2))
            sds = np.sqrt(np.diagonal(cov))
            corr = np.zeros_like(cov)
        else:
            cov = np.linalg.inv(self._R_inv @ self._R_inv.T)
            sds = np.sqrt(np.diagonal(cov))
            corr = cov / np.outer(sds, sds)
        lower = corr[np.tril_indices(corr.shape[0], -1)]
        if sds.size > 2:
            text = (f"sd = c({_fmt(sds[0])}, {_fmt(sds[1])}, ...), corr = c({_fmt(lower[0])} "
                    "...)")
        elif sds.size == 2:
            text = f"sd = c({_fmt(sds[0])}, {_fmt(sds[1])}), corr = {_fmt(lower[0])}"
        else:
            text = f"sd = {_fmt(sds[0])}"
        return f"normal({text}, common.scale = {str(self.common_scale).upper()})"


def _expand_values(values: np.ndarray, p: int, what: str, name: str) -> np.ndarray:
    if values.size == 1:
        return np.full(p, float(values[0]))
    if values.size == 2 and p > 1:
        return np.r_[values[0], np.full(p - 1, values[1])]
    if values.size != p:
        raise PriorError(f"{what}: {name} has {values.size} values for {p} fixed effects")
    return values.astype(float)


@dataclass(frozen=True)
class T(Prior):
    r"""Multivariate t prior on the fixed effects.

    Deviance ``(nu + d) log(1 + delta / nu) + const`` with
    ``delta = (beta - m)' S^{-1} (beta - m)`` (divided by ``sigma^2`` on the common scale).
    In an LMM only with ``REML=False`` (blme's restriction: beta is then optimized
    numerically).

    Attributes
    ----------
    df : float
        Degrees of freedom ``nu`` (default 3).
    mean : float or sequence
        ``m``: one value, ``(intercept, others)``, or one per fixed effect (default 0).
    scale : float, sequence or ndarray, optional
        ``S`` as variances: default ``(10^2, 2.5^2)``.
    common_scale : bool or None
    """

    df: float = 3.0
    mean: object = 0.0
    scale: object = None
    common_scale: bool | None = None
    _R_inv: np.ndarray | None = field(default=None, repr=False, compare=False)
    _d: int = field(default=0, repr=False, compare=False)

    blme_name = "t"
    kinds = ("fixef",)

    def resolve(self, ctx: PriorContext) -> T:
        self._check_kind(ctx)
        p = ctx.p
        what = f"t() prior for {ctx.label}"
        nu = _positive("df", self.df, what, allow_zero=False)
        mean = _expand_values(np.atleast_1d(np.asarray(self.mean, dtype=float)), p, what,
                              "mean")
        scale = (100.0, 6.25) if self.scale is None else self.scale
        S = np.asarray(scale, dtype=float)
        if S.ndim <= 1:
            S = np.diag(_expand_values(np.atleast_1d(S), p, what, "scale"))
        if S.shape != (p, p):
            raise PriorError(f"{what}: scale must be {p} x {p}, got shape {S.shape}")
        diag = np.diagonal(S)
        if np.any(np.isinf(diag)):
            R_inv = np.diag(1.0 / np.sqrt(diag))
            d = int(np.sum(np.isfinite(diag)))
        else:
            try:
                R_inv = np.linalg.inv(np.linalg.cholesky(S).T)
            except np.linalg.LinAlgError:
                raise PriorError(f"{what}: scale is not positive definite") from None
            d = p
        return replace(self, df=nu, mean=mean, scale=S,
                       common_scale=self._common_scale(ctx, self.common_scale),
                       _R_inv=R_inv, _d=d)

    @property
    def constant(self) -> float:
        diag = np.diagonal(self._R_inv)
        ldet = float(np.sum(np.log(diag[diag > 0])))
        d, nu = self._d, self.df
        return float(-2.0 * gammaln(0.5 * (nu + d)) + 2.0 * gammaln(0.5 * nu)
                     + d * (math.log(nu) + _LOG_PI) - 2.0 * ldet)

    @property
    def df_adjust(self) -> float:
        return float(self._d) if self.common_scale else 0.0

    def exponential(self, beta: np.ndarray, sigma: float | None = None) -> float:
        delta = float(np.sum(((beta - self.mean) @ self._R_inv) ** 2))
        if self.common_scale and sigma is not None:
            delta /= sigma * sigma
        return float((self.df + self._d) * math.log1p(delta / self.df))

    def describe(self) -> str:
        m = np.asarray(self.mean)
        mean = (f"mean = {_fmt(m[0])}" if m.size == 1 else
                "mean = c(" + ", ".join(_fmt(v) for v in m[:4]) + (", ...)" if m.size > 4
                                                                      else ")"))
        S = np.asarray(self.scale)
        dg = np.diagonal(S)
        if S.shape[0] == 1:
            scale = f"scale = {_fmt(dg[0])}"
        else:
            scale = "diag(scale) = c(" + ", ".join(_fmt(v) for v in dg[:4]) + (
                ", ..." if dg.size > 4 else ")")
        return (f"t(df = {_fmt(self.df)}, {mean}, {scale}, common.scale = "
                f"{str(self.common_scale).upper()})")


# =========================================================================================
# residual priors
# =========================================================================================

@dataclass(frozen=True)
class Point(Prior):
    """Point mass: the residual sd is fixed (blme's ``point``).

    Attributes
    ----------
    value : float
        The residual sd (``posterior_scale="sd"``) or variance (``"var"``).
    posterior_scale : {"sd", "var"}
    """

    value: float = 1.0
    posterior_scale: str = "sd"

    blme_name = "point"
    kinds = ("resid",)

    def resolve(self, ctx: PriorContext) -> Point:
        self._check_kind(ctx)
        what = f"point() prior for {ctx.label}"
        post = _scale_choice(self.posterior_scale, ("sd", "var"), what)
        v = _positive("value", self.value, what, allow_zero=False)
        return replace(self, value=math.sqrt(v) if post == "var" else v, posterior_scale="sd")

    @property
    def sigma(self) -> float:
        """The fixed residual sd."""
        return float(self.value)

    def describe(self) -> str:
        return f"point(value = {_fmt(self.value)})"


# =========================================================================================
# spellings: mm.priors.wishart(...) etc.
# =========================================================================================

def wishart(df: float | None = None, scale=math.inf, common_scale: bool | None = None,
            posterior_scale: str = "cov") -> Wishart:
    """Wishart covariance prior (blme's default); see :class:`Wishart`.

    Parameters
    ----------
    df : float, optional
        Degrees of freedom (default: the term's dimension + 2.5).
    scale : float, sequence or ndarray
        Scale matrix; ``inf`` (default) keeps only the determinant term.
    common_scale : bool, optional
        Relative to the residual variance (LMM default True; not for bglmer).
    posterior_scale : {"cov", "sqrt"}

    Returns
    -------
    Wishart
    """
    return Wishart(df, scale, common_scale, posterior_scale)


def invwishart(df: float | None = None, scale=None, common_scale: bool | None = None,
               posterior_scale: str = "cov") -> InvWishart:
    """Inverse-Wishart covariance prior; see :class:`InvWishart`.

    Parameters
    ----------
    df : float, optional
    scale : float, sequence or ndarray, optional
    common_scale : bool, optional
    posterior_scale : {"cov", "sqrt"}

    Returns
    -------
    InvWishart
    """
    return InvWishart(df, scale, common_scale, posterior_scale)


def gamma(shape: float | None = None, rate: float | None = None,
          common_scale: bool | None = None, posterior_scale: str | None = None) -> Gamma:
    """Gamma prior on a scalar term's sd/variance or on the residual variance; see
    :class:`Gamma`.

    Parameters
    ----------
    shape, rate : float, optional
    common_scale : bool, optional
    posterior_scale : {"sd", "var"}, optional

    Returns
    -------
    Gamma
    """
    return Gamma(shape, rate, common_scale, posterior_scale)


def invgamma(shape: float | None = None, scale: float | None = None,
             common_scale: bool | None = None, posterior_scale: str | None = None
             ) -> InvGamma:
    """Inverse-gamma prior on a scalar term's sd/variance or on the residual variance; see
    :class:`InvGamma`.

    Parameters
    ----------
    shape, scale : float, optional
    common_scale : bool, optional
    posterior_scale : {"sd", "var"}, optional

    Returns
    -------
    InvGamma
    """
    return InvGamma(shape, scale, common_scale, posterior_scale)


def normal(sd=None, cov=None, common_scale: bool | None = None) -> Normal:
    """Normal prior (mean 0) on the fixed effects; see :class:`Normal`.

    Parameters
    ----------
    sd : float, sequence or dict, optional
        Default ``(10, 2.5)``: 10 for the first fixed effect, 2.5 for the others.
    cov : ndarray, optional
    common_scale : bool, optional

    Returns
    -------
    Normal
    """
    return Normal(sd, cov, common_scale)


def t(df: float = 3.0, mean=0.0, scale=None, common_scale: bool | None = None) -> T:
    """Multivariate t prior on the fixed effects; see :class:`T`.

    Parameters
    ----------
    df : float
    mean : float or sequence
    scale : float, sequence or ndarray, optional
        Variances (default ``(100, 6.25)``).
    common_scale : bool, optional

    Returns
    -------
    T
    """
    return T(df, mean, scale, common_scale)


def point(value: float = 1.0, posterior_scale: str = "sd") -> Point:
    """Fix the residual sd (or variance) at ``value``; see :class:`Point`.

    Parameters
    ----------
    value : float
    posterior_scale : {"sd", "var"}

    Returns
    -------
    Point
    """
    return Point(value, posterior_scale)

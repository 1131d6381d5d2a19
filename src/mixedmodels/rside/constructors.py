"""The user-facing constructors, spelled as nlme's (``corAR1`` -> ``cor_ar1``).

Each returns a frozen spec to pass as ``correlation=`` or ``variance=`` to
:func:`~mixedmodels.lmer`, :func:`~mixedmodels.gls` or :func:`~mixedmodels.glmm_pql`.
"""

from __future__ import annotations

from .correlation import CorAR1, CorARMA, CorCAR1, CorCompSymm, CorSymm
from .spatial import CorExp, CorGaus, CorLin, CorRatio, CorSpatial, CorSpher
from .variance import (
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarianceFunction,
    VarIdent,
    VarPower,
)

__all__ = [
    "cor_ar1", "cor_arma", "cor_car1", "cor_comp_symm", "cor_exp", "cor_gaus", "cor_lin",
    "cor_ratio", "cor_spher", "cor_symm", "var_comb", "var_const_power", "var_exp",
    "var_fixed", "var_ident", "var_power",
]


def _tuple(value):
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    try:
        return tuple(float(v) for v in value)
    except TypeError:
        return (float(value),)


def cor_ar1(value: float | None = None, form: str = "~ 1", fixed: bool = False) -> CorAR1:
    """Autoregressive correlation of order 1, ``corr(e_t, e_t') = phi^|t - t'|``
    (nlme's ``corAR1``).

    Parameters
    ----------
    value : float, optional
        Starting ``phi`` in (-1, 1) (default 0).
    form : str
        ``"~ time | group"`` with whole-number times (gaps allowed, unique within a
        group), or ``"~ 1 | group"`` for the order of the rows.
    fixed : bool
        Hold ``phi`` at ``value``.

    Returns
    -------
    CorAR1
    """
    return CorAR1(form=form, value=_tuple(value), fixed=fixed)


def cor_car1(value: float | None = None, form: str = "~ 1", fixed: bool = False) -> CorCAR1:
    """Continuous-time AR(1), ``phi^|t - t'|`` for real times, ``0 < phi < 1``
    (nlme's ``corCAR1``).

    Parameters
    ----------
    value : float, optional
        Starting ``phi`` (default 0.2, nlme's).
    form : str
        ``"~ time | group"``.
    fixed : bool
        Hold ``phi`` at ``value``.

    Returns
    -------
    CorCAR1
    """
    return CorCAR1(form=form, value=_tuple(value), fixed=fixed)


def cor_arma(value=None, form: str = "~ 1", p: int = 0, q: int = 0,
             fixed: bool = False) -> CorARMA:
    """ARMA(p, q) correlation at whole-number times (nlme's ``corARMA``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(phi_1..p, theta_1..q)`` (default zeros).
    form : str
        ``"~ time | group"``.
    p, q : int
        Autoregressive and moving-average orders.
    fixed : bool
        Hold the coefficients at ``value``.

    Returns
    -------
    CorARMA
    """
    return CorARMA(form=form, value=_tuple(value), fixed=fixed, p=p, q=q)


def cor_comp_symm(value: float | None = None, form: str = "~ 1",
                  fixed: bool = False) -> CorCompSymm:
    """Compound symmetry: one correlation ``rho`` within each group
    (nlme's ``corCompSymm``).

    Parameters
    ----------
    value : float, optional
        Starting ``rho`` (default 0).
    form : str
        ``"~ 1 | group"``.
    fixed : bool
        Hold ``rho`` at ``value``.

    Returns
    -------
    CorCompSymm
    """
    return CorCompSymm(form=form, value=_tuple(value), fixed=fixed)


def cor_symm(value=None, form: str = "~ 1", fixed: bool = False) -> CorSymm:
    """General correlation matrix over the positions ``1..m`` of a group's rows
    (nlme's ``corSymm``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting correlations ``cor(1,2), cor(1,3), ..., cor(m-1,m)`` (default zeros).
    form : str
        ``"~ position | group"`` (consecutive whole numbers from 1) or ``"~ 1 | group"``.
    fixed : bool
        Hold the correlations at ``value``.

    Returns
    -------
    CorSymm
    """
    return CorSymm(form=form, value=_tuple(value), fixed=fixed)


def _spatial(cls: type[CorSpatial], value, form, nugget, metric, fixed) -> CorSpatial:
    return cls(form=form, value=_tuple(value), fixed=fixed, nugget=nugget, metric=metric)


def cor_exp(value=None, form: str = "~ 1", nugget: bool = False,
            metric: str = "euclidean", fixed: bool = False) -> CorExp:
    """Exponential spatial correlation ``exp(-d / range)``, times ``1 - nugget``
    (nlme's ``corExp``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(range,)`` or ``(range, nugget)`` (default: nlme's, from the smallest
        distance).
    form : str
        Coordinates and grouping: ``"~ x + y | group"``, ``"~ x + y"`` (one block).
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    fixed : bool
        Hold the parameters at ``value``.

    Returns
    -------
    CorExp
    """
    return _spatial(CorExp, value, form, nugget, metric, fixed)


def cor_gaus(value=None, form: str = "~ 1", nugget: bool = False,
             metric: str = "euclidean", fixed: bool = False) -> CorGaus:
    """Gaussian spatial correlation ``exp(-(d / range)^2)``, times ``1 - nugget``
    (nlme's ``corGaus``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(range,)`` or ``(range, nugget)`` (default: nlme's, from the smallest
        distance).
    form : str
        Coordinates and grouping: ``"~ x + y | group"``, ``"~ x + y"`` (one block).
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    fixed : bool
        Hold the parameters at ``value``.

    Returns
    -------
    CorGaus
    """
    return _spatial(CorGaus, value, form, nugget, metric, fixed)


def cor_spher(value=None, form: str = "~ 1", nugget: bool = False,
              metric: str = "euclidean", fixed: bool = False) -> CorSpher:
    """Spherical spatial correlation ``1 - 1.5 x + 0.5 x^3``, ``x = d / range < 1``
    (0 beyond), times ``1 - nugget`` (nlme's ``corSpher``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(range,)`` or ``(range, nugget)`` (default: nlme's, from the smallest
        distance).
    form : str
        Coordinates and grouping: ``"~ x + y | group"``, ``"~ x + y"`` (one block).
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    fixed : bool
        Hold the parameters at ``value``.

    Returns
    -------
    CorSpher
    """
    return _spatial(CorSpher, value, form, nugget, metric, fixed)


def cor_lin(value=None, form: str = "~ 1", nugget: bool = False,
            metric: str = "euclidean", fixed: bool = False) -> CorLin:
    """Linear spatial correlation ``1 - d / range`` (0 beyond the range), times
    ``1 - nugget`` (nlme's ``corLin``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(range,)`` or ``(range, nugget)`` (default: nlme's, from the smallest
        distance).
    form : str
        Coordinates and grouping: ``"~ x + y | group"``, ``"~ x + y"`` (one block).
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    fixed : bool
        Hold the parameters at ``value``.

    Returns
    -------
    CorLin
    """
    return _spatial(CorLin, value, form, nugget, metric, fixed)


def cor_ratio(value=None, form: str = "~ 1", nugget: bool = False,
              metric: str = "euclidean", fixed: bool = False) -> CorRatio:
    """Rational quadratic spatial correlation ``1 / (1 + (d / range)^2)``, times
    ``1 - nugget`` (nlme's ``corRatio``).

    Parameters
    ----------
    value : sequence of float, optional
        Starting ``(range,)`` or ``(range, nugget)`` (default: nlme's, from the smallest
        distance).
    form : str
        Coordinates and grouping: ``"~ x + y | group"``, ``"~ x + y"`` (one block).
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    fixed : bool
        Hold the parameters at ``value``.

    Returns
    -------
    CorRatio
    """
    return _spatial(CorRatio, value, form, nugget, metric, fixed)


def var_ident(value=None, form: str = "~ 1", fixed: bool = False) -> VarIdent:
    """A residual standard deviation per stratum (nlme's ``varIdent``).

    Parameters
    ----------
    value : dict or sequence of float, optional
        Starting ratios to the reference stratum: ``{"Female": 1.5}`` or one number per
        non-reference stratum (default 1).
    form : str
        ``"~ 1 | stratum"`` (several columns joined by ``*`` for their combinations).
    fixed : bool
        Hold the ratios at ``value`` (known relative variances). With a ``value`` dict
        naming only some strata, those are held and the others estimated (nlme's
        ``varIdent(fixed = c(b = 1.6))``).

    Returns
    -------
    VarIdent
    """
    return VarIdent(form=form, value=_tuple(value), fixed=fixed)


def var_power(value=None, form: str = "~ fitted(.)", fixed: bool = False) -> VarPower:
    """Standard deviation ``|v|^power`` of a covariate ``v`` (nlme's ``varPower``).

    Parameters
    ----------
    value : float or sequence, optional
        Starting power (default 0), one per stratum with ``| s``.
    form : str
        ``"~ v"``, ``"~ v | s"`` (a power per stratum) or ``"~ fitted(.)"`` (nlme's
        default: the fitted values, updated between optimizations).
    fixed : bool
        Hold the power at ``value``.

    Returns
    -------
    VarPower
    """
    return VarPower(form=form, value=_tuple(value), fixed=fixed)


def var_exp(value=None, form: str = "~ fitted(.)", fixed: bool = False) -> VarExp:
    """Standard deviation ``exp(expon v)`` (nlme's ``varExp``).

    Parameters
    ----------
    value : float or sequence, optional
        Starting exponent (default 0).
    form : str
        ``"~ v"``, ``"~ v | s"`` or ``"~ fitted(.)"``.
    fixed : bool
        Hold it at ``value``.

    Returns
    -------
    VarExp
    """
    return VarExp(form=form, value=_tuple(value), fixed=fixed)


def var_const_power(const: float | None = None, power: float | None = None,
                    form: str = "~ fitted(.)", fixed: bool = False) -> VarConstPower:
    """Standard deviation ``const + |v|^power`` (nlme's ``varConstPower``).

    Parameters
    ----------
    const, power : float, optional
        Starting values (nlme's defaults 0.1 and 0).
    form : str
        ``"~ v"``, ``"~ v | s"`` or ``"~ fitted(.)"``.
    fixed : bool
        Hold both at their values.

    Returns
    -------
    VarConstPower
    """
    value = None if const is None and power is None else \
        (0.1 if const is None else float(const), 0.0 if power is None else float(power))
    return VarConstPower(form=form, value=value, fixed=fixed)


def var_fixed(form: str) -> VarFixed:
    """Residual variance proportional to a covariate, no parameter (nlme's ``varFixed``;
    MASS::glmmPQL's working weights).

    Parameters
    ----------
    form : str
        ``"~ v"``.

    Returns
    -------
    VarFixed
    """
    return VarFixed(form=form)


def var_comb(*functions: VarianceFunction) -> VarComb:
    """The product of variance functions (nlme's ``varComb``); a list passed as
    ``variance=`` means the same.

    Parameters
    ----------
    *functions : variance functions

    Returns
    -------
    VarComb
    """
    return VarComb(functions=tuple(functions))

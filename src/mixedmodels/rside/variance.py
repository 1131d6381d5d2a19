r"""Variance functions, nlme's ``varFunc`` classes: heteroscedastic residuals.

A variance function makes the residual standard deviation of row ``j``
``sigma g_j(delta)``; the bound function returns ``log g`` for every row:

=======================  =============================================  ====================
``var_ident(~1 | s)``    ``g = delta_s`` (1 for the reference stratum)  ``log delta_s``
``var_power(~v)``        ``g = |v|^delta``                              ``delta``
``var_exp(~v)``          ``g = exp(delta v)``                           ``delta``
``var_const_power(~v)``  ``g = c + |v|^delta``                          ``log c``, ``delta``
``var_fixed(~v)``        ``g = sqrt(|v|)`` (variance proportional to v)  none
=======================  =============================================  ====================

The last column is the unconstrained scale, nlme's (``coef(vf, unconstrained = TRUE)``).
``| s`` after the covariate gives every stratum of ``s`` its own parameters (nlme's
``varPower(form = ~ v | s)``). :class:`VarComb` multiplies several functions (nlme's
``varComb``). A covariate ``fitted(.)`` (nlme's default for the power classes) is the
model's fitted values; nlme then alternates between optimizing the parameters with the
covariate fixed and recomputing it, and so does :mod:`mixedmodels.rside.fit`.

varIdent's reference stratum is the first in the order nlme reads the rows (sorted by the
grouping of the correlation structure in ``gls``, of the random effects in ``lme``); its
ratios are relative to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError
from ..design.identity_cache import IdentityCache
from ..design.random import _category_text, level_text
from .correlation import UNCONSTRAINED_MAX, covariate_values
from .form import StructureForm, parse_form

__all__ = [
    "BoundVariance",
    "VarComb",
    "VarConstPower",
    "VarExp",
    "VarFixed",
    "VarIdent",
    "VarPower",
    "VarianceFunction",
]


@dataclass(frozen=True)
class VarianceFunction:
    """Base of the variance-function specs.

    Attributes
    ----------
    form : str
        nlme's ``form``: ``"~ 1 | Sex"``, ``"~ age"``, ``"~ age | Sex"``, ``"~ fitted(.)"``.
    value : tuple of float or None
        Starting values on the natural scale; None for nlme's defaults.
    fixed : bool
        Hold the parameters at ``value``.
    """

    form: str = "~ fitted(.)"
    value: tuple[float, ...] | None = None
    fixed: bool = False

    label: ClassVar[str] = ""
    nlme_name: ClassVar[str] = ""

    def describe(self) -> str:
        """How the user wrote it, for messages."""
        return f"{self.label}(form={self.form!r})"

    def parsed_form(self) -> StructureForm:
        """The form, read."""
        return parse_form(self.form, self.describe())

    def parts(self) -> tuple[VarianceFunction, ...]:
        """The single functions this one multiplies (itself, or a combination's)."""
        return (self,)

    def bind(self, frame: pd.DataFrame, order: np.ndarray) -> BoundVariance:
        """The function on the rows of ``frame``.

        Parameters
        ----------
        frame : pandas.DataFrame
            The model frame.
        order : ndarray of int (n,)
            The rows in nlme's reading order (decides varIdent's reference stratum and the
            order of strata).

        Returns
        -------
        BoundVariance
        """
        raise NotImplementedError


class BoundVariance:
    """A variance function on data: ``log g(u)`` per row (see the module docstring)."""

    def __init__(self, spec: VarianceFunction, names: tuple[str, ...], start: np.ndarray,
                 covariate: np.ndarray | None = None):
        self.spec = spec
        self.names = tuple(names)
        self.start = np.asarray(start, dtype=float)
        #: the covariate values (None when the function has none); for ``fitted(.)`` the
        #: fitted values the last update used
        self.covariate = covariate
        if spec.value is not None and self.names:
            value = self._expand_value(spec.value)
            if value.shape != (len(self.names),):
                raise ValueError(f"{spec.describe()}: value has {value.size} numbers; the "
                                 f"function has {len(self.names)} ({', '.join(self.names)})")
            self.start = self.unconstrained(value)

    def _expand_value(self, value) -> np.ndarray:
        """``value`` as one natural number per parameter (a single number for all)."""
        value = np.atleast_1d(np.asarray(value, dtype=float))
        return np.repeat(value, len(self.names)) if value.size == 1 else value

    @property
    def n_par(self) -> int:
        """Number of estimated parameters."""
        return 0 if self.spec.fixed else len(self.names)

    @property
    def needs_fitted(self) -> bool:
        """The covariate is the fitted values (updated between optimizations)."""
        return False

    @property
    def zero_limits(self) -> np.ndarray:
        """Which estimated parameters are logs of a quantity whose limit 0 is itself a
        valid model (varConstPower's constant: ``c -> 0`` is ``varPower``); bool (n_par,).

        On the log scale that limit is infinitely far, and a derivative-free optimizer
        crawls towards it; the fit optimizes these on the natural scale with the bound 0
        instead (:mod:`mixedmodels.fitting.limit_scale`).
        """
        return np.zeros(self.n_par, dtype=bool)

    def full(self, u: np.ndarray) -> np.ndarray:
        return self.start if self.spec.fixed else np.asarray(u, dtype=float)

    def natural(self, u: np.ndarray) -> np.ndarray:
        """Natural values (ratios, powers, constants) from unconstrained ``u``."""
        return np.asarray(u, dtype=float)

    def unconstrained(self, nat: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`natural`."""
        return np.asarray(nat, dtype=float)

    def log_sd(self, u: np.ndarray) -> np.ndarray:
        """``log g_j`` for every row (n,)."""
        raise NotImplementedError

    def log_sd_jacobian(self, u: np.ndarray) -> np.ndarray:
        """``d log g_j / d u_k`` for every row and estimated parameter, ``(n, n_par)``."""
        raise NotImplementedError

    @property
    def has_jacobian(self) -> bool:
        """:meth:`log_sd_jacobian` is implemented (the criteria then have an analytic
        gradient in the function's parameters)."""
        return type(self).log_sd_jacobian is not BoundVariance.log_sd_jacobian

    def _strata_columns(self, values: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
        """``values`` of each row in the column of its stratum, ``(n, k)``."""
        out = np.zeros((codes.shape[0], k))
        out[np.arange(codes.shape[0]), codes] = values
        return out

    def with_fitted(self, fitted: np.ndarray) -> BoundVariance:
        """This function with the covariate ``fitted(.)`` set to ``fitted``."""
        return self

    def display_values(self, u: np.ndarray) -> dict[str, float]:
        """Natural values by name, as the fit's ``var_params`` shows them."""
        return dict(zip(self.names, self.natural(self.full(u)).tolist(), strict=True))


# -- helpers ---------------------------------------------------------------------------------
def _strata(spec: VarianceFunction, frame: pd.DataFrame, form: StructureForm,
            order: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Stratum code of every row and the stratum labels in nlme's order (first seen in
    ``order`` first)."""
    # integer codes of the combined strata (mixed radix over the groups' factorized
    # labels); text is made for the distinct strata only, from one row of each
    combo = np.zeros(len(frame), dtype=np.int64)
    texts = []
    for g in form.groups:
        codes_g, n_g, text = _stratum_codes(frame[g])
        combo = combo * max(n_g, 1) + codes_g
        texts.append(text)
    uniq, first = np.unique(combo[order], return_index=True)
    by_first = np.argsort(first)
    rank = np.empty(int(uniq.max()) + 1 if uniq.size else 0, dtype=np.int64)
    rank[uniq[by_first]] = np.arange(uniq.size)
    rep_rows = np.asarray(order)[first[by_first]]
    labels = ["*".join(str(t(r)) for t in texts) for r in rep_rows]
    return rank[combo], labels


#: Codings per categories index (an index is immutable: see
#: :mod:`~mixedmodels.design.identity_cache`).
_CODINGS = IdentityCache()


def _coding_of(categories: pd.Index) -> tuple[np.ndarray, np.ndarray, int]:
    cat_text = _category_text(categories)
    seen: dict = {}
    cat_codes = np.array([seen.setdefault(t, len(seen)) for t in cat_text.tolist()],
                         dtype=np.int64)
    return cat_text, cat_codes, len(seen)


def _category_coding(categories: pd.Index) -> tuple[np.ndarray, np.ndarray, int]:
    """``(text, code, number of codes)`` of a categorical's categories: each category's
    label, and one code per distinct label (categories that print alike share one), made
    once per categories index (an ``Index`` is immutable: new categories make a new one;
    :class:`~mixedmodels.design.identity_cache.IdentityCache`)."""
    return _CODINGS.get(categories, _coding_of)


def _stratum_codes(col: pd.Series):
    """``(codes, number of codes, text of row r)`` of one strata column: values that
    print alike (:func:`~mixedmodels.design.random.level_text`) share a code. A
    categorical is coded from its categories' text (a few labels) instead of a text per
    row (~25 us a fit of a few hundred rows)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat_text, cat_codes, n_codes = _category_coding(col.dtype.categories)
        raw = np.asarray(col.array.codes)
        codes = np.where(raw >= 0, cat_codes[np.maximum(raw, 0)], -1) if len(cat_codes) \
            else np.full(raw.shape, -1, dtype=np.int64)
        return codes, n_codes, lambda r: cat_text[raw[r]] if raw[r] >= 0 else None
    text = np.asarray(level_text(col), dtype=object)
    codes, uniq = pd.factorize(text)
    return codes, len(uniq), text.__getitem__


def _one_covariate(spec: VarianceFunction, frame: pd.DataFrame, form: StructureForm,
                   fitted_ok: bool = True) -> np.ndarray | None:
    """The covariate values, or None for ``fitted(.)`` (filled in by the fit)."""
    if form.fitted:
        if not fitted_ok:
            raise FormulaError(f"{spec.describe()}: fitted(.) is not allowed here; name a "
                               "covariate column")
        return None
    if not form.covariates:
        raise FormulaError(f"{spec.describe()}: the form must name one covariate, e.g. "
                           "'~ age' or '~ age | Sex' (or '~ fitted(.)')")
    # the covariate side is one expression, as nlme evaluates it ('~ Days + 1': Days + 1)
    return covariate_values(form.expression, frame, spec.describe())


class _StrataParams:
    """Parameters per stratum (one set when the form has no ``| s``)."""

    def _init_strata(self, spec, frame, form, order, base_names):
        if form.groups:
            self.codes, self.strata = _strata(spec, frame, form, order)
        else:
            self.codes, self.strata = np.zeros(len(frame), dtype=np.int64), []
        k = max(len(self.strata), 1)
        self.k = k
        if self.strata:
            return tuple(f"{b}.{s}" if len(base_names) > 1 else s
                         for b in base_names for s in self.strata)
        return tuple(base_names)


# -- varIdent ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarIdent(VarianceFunction):
    """A standard deviation per stratum, relative to the reference stratum's
    (nlme's ``varIdent``)."""

    form: str = "~ 1"
    label: ClassVar[str] = "var_ident"
    nlme_name: ClassVar[str] = "varIdent"

    def bind(self, frame, order):
        form = self.parsed_form()
        if form.covariates or form.fitted:
            raise FormulaError(f"{self.describe()}: var_ident takes strata only, "
                               "'~ 1 | group'")
        if not form.groups:
            raise FormulaError(f"{self.describe()}: var_ident needs strata after '|', e.g. "
                               "'~ 1 | Sex' (without them the variance is constant)")
        return _BoundIdent(self, frame, form, order)


class _BoundIdent(BoundVariance):
    """varIdent on data. ``fixed=True`` with a ``value`` dict naming only some strata holds
    those (nlme's ``varIdent(fixed = c(b = 1.6))``) and estimates the others' ratios:
    :attr:`names` and the parameters are then the free strata only, :meth:`full` puts
    the held ones back."""

    def __init__(self, spec, frame, form, order):
        self.codes, self.strata = _strata(spec, frame, form, order)
        if len(self.strata) < 2:
            raise DataError(f"{spec.describe()}: the strata column(s) have a single value "
                            f"({self.strata[0]!r}) on the rows used; there is nothing to "
                            "estimate")
        others = tuple(self.strata[1:])
        #: per non-reference stratum, held at its value (None: all or none, spec.fixed)
        self._held = None
        if spec.fixed and isinstance(spec.value, dict):
            named = {str(k) for k in spec.value}
            held = np.array([s in named for s in others])
            if 0 < held.sum() < held.size:
                super().__init__(replace(spec, fixed=False), others, np.zeros(len(others)))
                self._all_u = self.start          # every ratio at value (others 1)
                self._held = held
                self.names = tuple(s for s, h in zip(others, held, strict=True) if not h)
                self.start = self._all_u[~held]
                return
        super().__init__(spec, others, np.zeros(len(others)))

    def full(self, u):
        if self._held is None:
            return super().full(u)
        out = self._all_u.copy()
        out[~self._held] = np.asarray(u, dtype=float)
        return out

    def _expand_value(self, value):
        if isinstance(value, dict):
            unknown = sorted(set(map(str, value)) - set(self.strata))
            if unknown:
                raise ValueError(f"{self.spec.describe()}: value names strata {unknown} "
                                 f"that the data do not have ({', '.join(self.strata)})")
            ref = float(value.get(self.strata[0], 1.0))
            return np.array([float(value.get(s, ref)) / ref for s in self.names])
        return super()._expand_value(value)

    def natural(self, u):
        return np.exp(np.clip(u, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        if np.any(nat <= 0):
            raise ValueError(f"{self.spec.describe()}: standard deviation ratios must be > 0")
        return np.log(nat)

    def log_sd(self, u):
        return np.concatenate([[0.0], self.full(u)])[self.codes]

    def log_sd_jacobian(self, u):
        if self.spec.fixed:
            return np.zeros((self.codes.shape[0], 0))
        # the stratum indicators, whatever u: made once, read-only (every evaluation of
        # the gradient reads them)
        jac = self.__dict__.get("_jacobian")
        if jac is None:
            # one column per non-reference stratum: the reference (code 0) goes to a
            # column that is dropped (and so do held strata's)
            jac = self._strata_columns(np.ones(self.codes.shape[0]), self.codes,
                                       len(self.strata))[:, 1:]
            if self._held is not None:
                jac = np.ascontiguousarray(jac[:, ~self._held])
            jac.flags.writeable = False
            self._jacobian = jac
        return jac

    def display_values(self, u):
        ratios = self.natural(self.full(u))
        return {self.strata[0]: 1.0,
                **dict(zip(self.strata[1:], ratios.tolist(), strict=True))}


# -- varPower / varExp -------------------------------------------------------------------------
@dataclass(frozen=True)
class VarPower(VarianceFunction):
    """Standard deviation ``|v|^delta`` (nlme's ``varPower``)."""

    label: ClassVar[str] = "var_power"
    nlme_name: ClassVar[str] = "varPower"

    def bind(self, frame, order):
        return _BoundPower(self, frame, self.parsed_form(), order)


class _BoundPower(_StrataParams, BoundVariance):
    base = ("power",)

    def __init__(self, spec, frame, form, order, covariate=None):
        self.spec, self.form = spec, form
        names = self._init_strata(spec, frame, form, order, self.base)
        if covariate is None:
            covariate = _one_covariate(spec, frame, form)
        self._set_covariate(covariate)
        super().__init__(spec, names, self._default_start(), covariate)

    @property
    def needs_fitted(self):
        return self.form.fitted

    def _default_start(self):
        return np.zeros(self.k)

    def _set_covariate(self, v):
        if v is None:
            self._logabs = np.zeros(self.codes.shape[0])
            return
        if (v == 0.0).any():
            raise DataError(
                f"{self.spec.describe()}: the covariate is 0 in {int(np.sum(v == 0))} rows; "
                "|v|^power is then 0 or infinite -- use var_const_power, or shift the "
                "covariate")
        self._logabs = np.log(np.abs(v))

    def log_sd(self, u):
        return self.full(u)[self.codes] * self._logabs

    def log_sd_jacobian(self, u):
        if self.spec.fixed:
            return np.zeros((self.codes.shape[0], 0))
        return self._strata_columns(self._logabs, self.codes, self.k)

    def with_fitted(self, fitted):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.covariate = np.asarray(fitted, dtype=float)
        new._set_covariate(new.covariate)
        return new


@dataclass(frozen=True)
class VarExp(VarianceFunction):
    """Standard deviation ``exp(delta v)`` (nlme's ``varExp``)."""

    label: ClassVar[str] = "var_exp"
    nlme_name: ClassVar[str] = "varExp"

    def bind(self, frame, order):
        return _BoundExp(self, frame, self.parsed_form(), order)


class _BoundExp(_BoundPower):
    base = ("expon",)

    def _set_covariate(self, v):
        self._v = np.zeros(self.codes.shape[0]) if v is None else np.asarray(v, float)

    def log_sd(self, u):
        return self.full(u)[self.codes] * self._v

    def log_sd_jacobian(self, u):
        if self.spec.fixed:
            return np.zeros((self.codes.shape[0], 0))
        return self._strata_columns(self._v, self.codes, self.k)


# -- varConstPower -------------------------------------------------------------------------
@dataclass(frozen=True)
class VarConstPower(VarianceFunction):
    """Standard deviation ``c + |v|^delta`` (nlme's ``varConstPower``); ``value`` is
    ``(c, delta)``."""

    label: ClassVar[str] = "var_const_power"
    nlme_name: ClassVar[str] = "varConstPower"

    def bind(self, frame, order):
        return _BoundConstPower(self, frame, self.parsed_form(), order)


class _BoundConstPower(_BoundPower):
    base = ("const", "power")

    def _expand_value(self, value):
        value = np.atleast_1d(np.asarray(value, dtype=float))
        # (c, delta) for every stratum
        return np.repeat(value, self.k) if value.size == 2 else value

    def _default_start(self):
        return np.concatenate([np.full(self.k, np.log(0.1)), np.zeros(self.k)])

    @property
    def zero_limits(self):
        mask = np.zeros(self.n_par, dtype=bool)
        mask[:self.k if self.n_par else 0] = True
        return mask

    def _set_covariate(self, v):
        self._abs = np.ones(self.codes.shape[0]) if v is None else np.abs(np.asarray(v, float))
        # log|v| (0 where v = 0, whose power term has no slope in delta): fixed per
        # binding, read by every gradient
        with np.errstate(divide="ignore"):
            self._log_abs = np.where(self._abs > 0.0, np.log(self._abs), 0.0)
        #: ``(delta, |v|^delta)`` and ``((log c, delta), Jacobian)`` of the last
        #: one-stratum evaluation: a gradient evaluates log_sd and its Jacobian at the same
        #: point, and Fisher scoring (fitting/gls_scoring) the Jacobian once more
        self._power_last: tuple[float, np.ndarray] | None = None
        self._jacobian_last: tuple[tuple[float, float], np.ndarray] | None = None

    def _power(self, delta: float) -> np.ndarray:
        """``|v|^delta`` per row (numpy's power with a full exponent array, as before the
        cache: the same numbers), the last one reused."""
        last = self._power_last
        if last is not None and last[0] == delta:
            return last[1]
        pw = self._abs ** np.full(self._abs.shape, delta)
        self._power_last = (delta, pw)
        return pw

    def natural(self, u):
        u = np.asarray(u, dtype=float).copy()
        u[:self.k] = np.exp(np.clip(u[:self.k], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))
        return u

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        if np.any(nat[:self.k] <= 0):
            raise ValueError(f"{self.spec.describe()}: the constant must be > 0")
        out = nat.copy()
        out[:self.k] = np.log(nat[:self.k])
        return out

    def log_sd(self, u):
        u = self.full(u)
        if self.k == 1:
            # one stratum: the constant a scalar (numpy's exp, so the values are those of
            # the per-row arrays bit for bit), no clip or gathers; the power stays a full
            # array (numpy takes a stride-0 exponent of 0.5 or 2 as sqrt or square)
            log_c = min(max(float(u[0]), -UNCONSTRAINED_MAX), UNCONSTRAINED_MAX)
            return np.log(np.exp(np.float64(log_c)) + self._power(float(u[1])))
        c = np.exp(np.clip(u[:self.k], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))[self.codes]
        return np.log(c + self._abs ** u[self.k:][self.codes])

    def log_sd_jacobian(self, u):
        # d/d log c = c / g, d/d delta = |v|^delta log|v| / g with g = c + |v|^delta
        if self.spec.fixed:
            return np.zeros((self.codes.shape[0], 0))
        u = self.full(u)
        if self.k == 1:
            # one stratum: the same numbers as the per-row arrays below (log_sd's scalar
            # constant and full exponent array), written into the two columns directly
            log_c = min(max(float(u[0]), -UNCONSTRAINED_MAX), UNCONSTRAINED_MAX)
            key = (log_c, float(u[1]))
            last = self._jacobian_last
            if last is not None and last[0] == key:
                return last[1]
            c1 = np.exp(np.float64(log_c))
            pw = self._power(key[1])
            g = c1 + pw
            out = np.empty((g.shape[0], 2))
            np.divide(c1, g, out=out[:, 0])
            np.divide(pw * self._log_abs, g, out=out[:, 1])
            out.flags.writeable = False         # shared with the next call at this point
            self._jacobian_last = (key, out)
            return out
        c = np.exp(np.clip(u[:self.k], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))[self.codes]
        pw = self._abs ** u[self.k:][self.codes]
        g = c + pw
        return np.hstack([self._strata_columns(c / g, self.codes, self.k),
                          self._strata_columns(pw * self._log_abs / g, self.codes, self.k)])


# -- varFixed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarFixed(VarianceFunction):
    """Variance proportional to a covariate: standard deviation ``sqrt(|v|)``, no
    parameter (nlme's ``varFixed``)."""

    label: ClassVar[str] = "var_fixed"
    nlme_name: ClassVar[str] = "varFixed"

    def bind(self, frame, order):
        form = self.parsed_form()
        if form.groups:
            raise FormulaError(f"{self.describe()}: var_fixed has no strata; write '~ v'")
        v = _one_covariate(self, frame, form, fitted_ok=False)
        if (v == 0.0).any():
            raise DataError(f"{self.describe()}: the covariate is 0 in "
                            f"{int(np.sum(v == 0))} rows; a variance cannot be 0")
        return _BoundFixed(self, v)


class _BoundFixed(BoundVariance):
    def __init__(self, spec, v):
        super().__init__(spec, (), np.zeros(0), v)
        self._half_log = 0.5 * np.log(np.abs(v))

    def log_sd(self, u):
        return self._half_log

    def log_sd_jacobian(self, u):
        return np.zeros((self._half_log.shape[0], 0))


# -- varComb -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarComb(VarianceFunction):
    """The product of several variance functions (nlme's ``varComb``).

    Attributes
    ----------
    functions : tuple of VarianceFunction
    """

    functions: tuple[VarianceFunction, ...] = ()
    form: str = "~ 1"
    label: ClassVar[str] = "var_comb"
    nlme_name: ClassVar[str] = "varComb"

    def describe(self) -> str:
        return "var_comb(" + ", ".join(f.describe() for f in self.functions) + ")"

    def parts(self):
        return tuple(p for f in self.functions for p in f.parts())

    def bind(self, frame, order):
        parts = self.parts()
        if not parts:
            raise ValueError("var_comb() needs at least one variance function")
        return _BoundComb(self, [p.bind(frame, order) for p in parts])


class _BoundComb(BoundVariance):
    def __init__(self, spec, bound):
        self.parts = bound
        every = [n for b in bound for n in b.names]
        # names are the parts' own unless two parts would share one
        self._prefix = len(set(every)) < len(every)
        names = tuple(self._name(b, n) for b in bound if not b.spec.fixed for n in b.names)
        self._sizes = [b.n_par for b in bound]
        start = [b.start for b in bound if not b.spec.fixed]
        super().__init__(replace(spec, value=None, fixed=False), names,
                         np.concatenate(start) if start else np.zeros(0))

    def _name(self, b, n):
        return f"{b.spec.label}.{n}" if self._prefix else n

    @property
    def needs_fitted(self):
        return any(b.needs_fitted for b in self.parts)

    @property
    def has_jacobian(self):
        return all(b.has_jacobian for b in self.parts)

    def _split(self, u):
        out, off = [], 0
        for k in self._sizes:
            out.append(u[off:off + k])
            off += k
        return out

    def natural(self, u):
        return np.concatenate([b.natural(x) for b, x in
                               zip(self.parts, self._split(np.asarray(u, float)), strict=True)
                               if b.n_par] or [np.zeros(0)])

    def unconstrained(self, nat):
        return np.concatenate([b.unconstrained(x) for b, x in
                               zip(self.parts, self._split(np.asarray(nat, float)),
                                   strict=True) if b.n_par] or [np.zeros(0)])

    @property
    def zero_limits(self):
        return np.concatenate([b.zero_limits for b in self.parts] or
                              [np.zeros(0, dtype=bool)])

    def log_sd(self, u):
        return sum(b.log_sd(x) for b, x in
                   zip(self.parts, self._split(np.asarray(u, float)), strict=True))

    def log_sd_jacobian(self, u):
        return np.hstack([b.log_sd_jacobian(x) for b, x in
                          zip(self.parts, self._split(np.asarray(u, float)), strict=True)])

    def with_fitted(self, fitted):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.parts = [b.with_fitted(fitted) for b in self.parts]
        return new

    def display_values(self, u):
        out = {}
        for b, x in zip(self.parts, self._split(np.asarray(u, float)), strict=True):
            out.update({self._name(b, k): v for k, v in b.display_values(x).items()})
        return out

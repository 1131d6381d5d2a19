"""The :class:`Design`: everything numeric a mixed model needs, materialized from data."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._errors import DataError, DroppedRowsWarning, FormulaError
from ..formula.spec import MixedModelSpec
from .fixed import FixedEffects, build_fixed
from .frame import DroppedRows, build_model_frame
from .random import RandomEffectsTerm, build_random_term
from .response import evaluate_numeric, numeric_response, per_row_argument
from .variables import expression_variables

__all__ = ["Design", "check_lmm_identifiable", "materialize", "model_columns"]


@dataclass(frozen=True)
class Design:
    """Numeric design of a mixed model.

    Attributes
    ----------
    spec : MixedModelSpec
    y : ndarray (n,)
        Response (for binomial GLMMs: the proportion of successes).
    fixed : FixedEffects
        ``X`` (n x p) and its column names.
    terms : tuple of RandomEffectsTerm
        Random-effects terms in lme4's order: by decreasing number of levels (ties keep the
        order written). theta and the random-effects vector ``u`` follow this order.
    weights : ndarray (n,) or None
        Prior weights.
    offset : ndarray (n,)
        Sum of formula and argument offsets (zeros when none).
    frame : pandas.DataFrame
        Complete-case model frame (row labels of the rows used).
    dropped : DroppedRows
        Rows left out and why.
    extra : dict
        Family-specific response information (binomial trial counts, ...).
    """

    spec: MixedModelSpec
    y: np.ndarray
    fixed: FixedEffects
    terms: tuple[RandomEffectsTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray
    frame: pd.DataFrame
    dropped: DroppedRows
    extra: dict = field(default_factory=dict)

    @property
    def X(self) -> np.ndarray:
        return self.fixed.X

    @property
    def nobs(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.fixed.X.shape[1]

    @property
    def q(self) -> int:
        return sum(t.q for t in self.terms)

    @property
    def n_theta(self) -> int:
        return sum(t.structure.n_theta for t in self.terms)

    def theta0(self) -> np.ndarray:
        """lme4's starting point (identity relative covariance for every term)."""
        return np.concatenate([t.structure.theta0() for t in self.terms])

    def theta_lower(self) -> np.ndarray:
        return np.concatenate([t.structure.lower_bounds() for t in self.terms])

    def theta_slices(self) -> list[slice]:
        out, start = [], 0
        for t in self.terms:
            out.append(slice(start, start + t.structure.n_theta))
            start += t.structure.n_theta
        return out

    def with_response(self, y: np.ndarray) -> Design:
        """Same design, new response (for simulation and refitting)."""
        y = np.asarray(y, dtype=float)
        if y.shape != self.y.shape:
            raise DataError(f"new response has shape {y.shape}, expected {self.y.shape}")
        return Design(self.spec, y, self.fixed, self.terms, self.weights, self.offset,
                      self.frame, self.dropped, self.extra)


def model_columns(spec: MixedModelSpec, response_vars: list[str] | None = None) -> dict:
    """Data columns the model reads, each with its role (for errors and NA handling)."""
    roles: dict[str, str] = {}

    def add(names, role):
        for n in names:
            roles.setdefault(n, role)

    add(response_vars if response_vars is not None else expression_variables(spec.response),
        "response")
    add(expression_variables(spec.fixed), "fixed effects")
    for off in spec.offsets:
        add(expression_variables(off), "offset")
    for term in spec.random:
        add(expression_variables(term.expr), f"random-effects term {term.source}")
        add(term.group_vars, f"grouping factor of {term.source}")
    return roles


def _prior_weights(w: np.ndarray) -> np.ndarray:
    if np.any(w < 0):
        raise DataError(f"weights must be non-negative; {int(np.sum(w < 0))} are negative")
    return w


def materialize(
    spec: MixedModelSpec,
    data: pd.DataFrame,
    *,
    weights=None,
    offset=None,
    response=numeric_response,
    response_vars: list[str] | None = None,
    require_random: bool = True,
) -> Design:
    """Build the :class:`Design` of ``spec`` on ``data``.

    Parameters
    ----------
    spec : MixedModelSpec
    data : pandas.DataFrame
        Not modified.
    weights, offset : str or array-like, optional
        Prior weights / offset: a column name or one value per row.
    response : callable
        ``response(expr, frame) -> (y, extra)`` or ``-> y``; the LMM default requires a
        numeric response.
    response_vars : list of str, optional
        Columns the response reads, when the response syntax is not a plain expression
        (``cbind(...)``).
    require_random : bool
        Raise when the formula has no random-effects term.
    """
    if require_random and not spec.random:
        raise FormulaError(
            f"formula {spec.formula!r} has no random-effects term such as (1 | group); for "
            "a model without random effects use mm.lm() (or mm.glm())"
        )
    columns = model_columns(spec, response_vars)
    w_col, w_arr = per_row_argument(weights, data, "weights")
    o_col, o_arr = per_row_argument(offset, data, "offset")
    if w_col:
        columns.setdefault(w_col, "weights")
    if o_col:
        columns.setdefault(o_col, "offset")
    extra_rows = {}
    if w_arr is not None:
        extra_rows["weights"] = w_arr
    if o_arr is not None:
        extra_rows["offset"] = o_arr
    mf = build_model_frame(data, columns, extra_rows)
    frame = mf.frame
    keep = mf.mask.copy()

    w = None
    if w_col or w_arr is not None:
        w = frame[w_col].to_numpy(dtype=float) if w_col else w_arr[keep]
        w = _prior_weights(w)
        zero = w == 0
        if zero.any():
            # A zero prior weight removes the observation from the likelihood (lme4 returns
            # an infinite criterion instead); fit the remaining rows and say so.
            warnings.warn(
                f"{int(zero.sum())} rows with zero prior weight dropped", DroppedRowsWarning,
                stacklevel=3,
            )
            frame = frame.loc[~zero]
            w = w[~zero]
            for name in columns:
                if isinstance(frame[name].dtype, pd.CategoricalDtype):
                    frame[name] = frame[name].cat.remove_unused_categories()
            idx = np.flatnonzero(keep)
            keep[idx[zero]] = False
        if np.all(w == 1.0):
            w = None

    out = response(spec.response, frame)
    y, extra = out if isinstance(out, tuple) else (out, {})
    fixed: FixedEffects = build_fixed(spec.fixed, frame)
    off = np.zeros(len(frame))
    for expr in spec.offsets:
        off = off + evaluate_numeric(expr, frame, "offset")
    if o_col:
        off = off + frame[o_col].to_numpy(dtype=float)
    elif o_arr is not None:
        off = off + o_arr[keep]
    terms = [build_random_term(t, frame) for t in spec.random]
    # lme4 order: decreasing number of levels, stable for ties
    order = sorted(range(len(terms)), key=lambda i: -terms[i].nlevels)
    terms = tuple(terms[i] for i in order)
    return Design(spec, np.ascontiguousarray(y, dtype=float), fixed, terms, w, off, frame,
                  mf.dropped, extra)


def check_lmm_identifiable(design: Design) -> None:
    """lme4's checks for linear mixed models (``lmerControl`` defaults that stop).

    * every grouping factor needs at least 2 levels;
    * fewer levels than observations (otherwise the random effect is confounded with the
      residual);
    * more observations than random effects in each term.
    """
    n = design.nobs
    for t in design.terms:
        if t.nlevels < 2:
            raise DataError(
                f"grouping factor {t.group!r} has only {t.nlevels} level; a random effect "
                "needs at least 2 groups (drop the term or use a fixed effect)"
            )
        if t.nlevels >= n:
            raise DataError(
                f"grouping factor {t.group!r} has {t.nlevels} levels for {n} observations; "
                "the number of levels of each grouping factor must be less than the number of "
                "observations, or the random effect cannot be told apart from the residual"
            )
        if t.q >= n:
            raise DataError(
                f"term {t.term.source!r} has {t.q} random effects for {n} observations; the "
                "random-effects parameters and the residual variance are probably "
                "unidentifiable (number of observations must exceed the number of random "
                "effects)"
            )
    if design.p >= n:
        raise DataError(f"{design.p} fixed effects for {n} observations: too few observations")

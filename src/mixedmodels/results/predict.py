r"""Linear predictors for the fitting data or new data, with or without random effects.

.. math:: \eta = X\beta + \textstyle\sum_{k \in \text{re\_form}} Z_k b_k + \text{offset}

as lme4's ``predict(..., re.form=)``:

* ``re_form=None`` conditions on every random-effects term; ``"~0"``, ``"NA"``, ``False``
  or NaN on none (population level);
* a formula such as ``"~(1 | Subject)"`` conditions on the listed terms. A listed term picks
  the columns it names from the model's terms with the same grouping factor, so
  ``"~(1 | Subject)"`` on a ``(Days | Subject)`` fit uses the random intercepts only, as in
  lme4.

On new data, stateful transforms (``scale(x)``, ``center(x)``) use the fitting data's centre
and scale; categorical predictors are coded with the fit's levels (a level the fit did not see
is an error naming the column); rows with a missing predictor get a missing prediction
(lme4's ``na.pass``); a grouping level the fit did not see -- or a missing one -- contributes
nothing when ``allow_new_levels=True`` (the population-level prediction) and is an error
otherwise.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import DataError, DataWarning, FormulaError
from .._messages import user_stacklevel
from ..design import Design
from ..design.dtypes import normalize_frame
from ..design.frame import as_data_frame, missing_mask
from ..design.random import level_text
from ..design.response import evaluate_numeric, is_numeric_column
from ..design.simple import simple_matrix
from ..design.variables import expression_variables

__all__ = ["NewRows", "linear_predictor", "new_rows", "select_term_columns", "select_terms"]

_NONE_FORMS = {"0", "NA", "-1"}


def _is_population(re_form) -> bool:
    if re_form is False:
        return True
    if isinstance(re_form, float) and np.isnan(re_form):
        return True
    if isinstance(re_form, str):
        text = re.sub(r"\s+", "", re_form).lstrip("~")
        return text in _NONE_FORMS
    return False


def _expr_columns(expr: str, design: Design) -> tuple[str, ...]:
    """Column names formulaic gives ``expr`` on the fitting data."""
    simple = simple_matrix(expr, design.frame)
    if simple is not None:
        return simple[1]
    from formulaic import model_matrix

    try:
        return tuple(str(c) for c in model_matrix(expr, design.frame,
                                                  na_action="ignore").columns)
    except Exception as exc:
        raise FormulaError(f"cannot evaluate re_form term expression {expr!r}: {exc}") from exc


def select_term_columns(design: Design, re_form) -> dict[int, np.ndarray]:
    """Which random effects ``re_form`` keeps: term index -> boolean mask over its columns.

    Parameters
    ----------
    design : Design
    re_form : None, False, NaN or str
        None keeps everything; ``"~0"``, ``"0"``, ``"NA"``, ``False`` or NaN keep nothing; a
        formula of random-effects terms keeps, for each listed term ``(expr | g)``, the
        columns ``expr`` names in the model's terms grouped by ``g``.

    Raises
    ------
    FormulaError
        When ``re_form`` lists a grouping factor or a column the model does not have.
    """
    if re_form is None or re_form is True:
        return {k: np.ones(t.p, dtype=bool) for k, t in enumerate(design.terms)}
    if _is_population(re_form):
        return {}
    if not isinstance(re_form, str):
        raise FormulaError(
            f"re_form must be None (all random effects), '~0' (none) or a formula of "
            f"random-effects terms such as '~(1 | Subject)', got {re_form!r}"
        )
    from ..formula import parse_formula

    text = re_form.strip()
    spec = parse_formula("y " + (text if text.startswith("~") else "~ " + text))
    if not spec.random or spec.fixed.replace(" ", "") not in ("1", "0", "-1", "1-1"):
        raise FormulaError(
            f"re_form {re_form!r} must list random-effects terms only, e.g. "
            "'~(1 | Subject)', or be '~0' for none"
        )
    out: dict[int, np.ndarray] = {}
    for term in spec.random:
        wanted = set(_expr_columns(term.expr, design))
        found: set[str] = set()
        for k, t in enumerate(design.terms):
            if t.group != term.group:
                continue
            mask = np.array([n in wanted for n in t.names], dtype=bool)
            if mask.any():
                out[k] = out.get(k, np.zeros(t.p, dtype=bool)) | mask
                found.update(n for n in t.names if n in wanted)
        if wanted - found:
            model_terms = ", ".join(f"({' + '.join(t.names)} | {t.group})"
                                    for t in design.terms)
            raise FormulaError(
                f"re_form term {term.source!r} asks for random effects the model does not "
                f"have ({', '.join(sorted(wanted - found))} for {term.group!r}); the model's "
                f"random effects are {model_terms}"
            )
    return out


def select_terms(design: Design, re_form) -> list[int]:
    """Indices of the random-effects terms ``re_form`` uses (all or some of their columns);
    see :func:`select_term_columns`."""
    return sorted(select_term_columns(design, re_form))


@dataclass(frozen=True)
class NewRows:
    """The model's matrices on the rows to predict (the fitting rows or new data).

    Attributes
    ----------
    n : int
        Rows of ``newdata`` (or of the fit).
    complete : ndarray of bool (n,)
        Rows with every predictor the prediction needs (the others predict NaN).
    X : ndarray (n_complete, p)
        Fixed-effects model matrix of the complete rows, the fit's columns.
    offset : ndarray (n_complete,)
        Offsets: those written in the formula plus the ``offset=`` argument.
    terms : tuple of (int, ndarray, ndarray, ndarray)
        Per random-effects term kept by ``re_form``: its index ``k`` in the design, the
        mask of its kept columns, its model matrix ``Z_k`` (n_complete, p_k) and the level
        codes (-1 for a level the fit did not see: it contributes nothing).
    kriged : tuple of (int, ndarray, ndarray, ndarray)
        Per term with rows at positions the fit did not see (kriged, see
        :func:`_unseen_columns`): ``k``, those rows (indices into the complete rows), their
        coordinates (m, dim) and the term's covariance parameters -- what a prediction's
        standard error needs beyond ``Z_k``.
    """

    n: int
    complete: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    terms: tuple
    kriged: tuple = ()

    def eta(self, beta: np.ndarray, b: list) -> np.ndarray:
        """``X beta + offset + sum_k Z_k b_k`` on every row (NaN where incomplete)."""
        part = self.X @ beta + self.offset
        for k, mask, Z, codes in self.terms:
            new = codes < 0
            contrib = np.einsum("ij,ij->i", Z[:, mask], b[k][np.where(new, 0, codes)][:, mask])
            part = part + np.where(new, 0.0, contrib)
        out = np.full(self.n, np.nan)
        out[self.complete] = part
        return out


def new_rows(design: Design, newdata=None, re_form=None, allow_new_levels: bool = False,
             offset=None, theta: np.ndarray | None = None) -> NewRows:
    """The fixed and random-effects matrices of ``newdata`` (default: the fitting rows);
    the arguments are those of :func:`linear_predictor`.

    Parameters
    ----------
    design : Design
    newdata : DataFrame or dict, optional
    re_form : None, str or False
    allow_new_levels : bool
    offset : str or array-like, optional
    theta : ndarray, optional
        The fit's covariance parameters (``design.theta_slices()`` order): a term over
        positions (``exp``, ``gau``, ``mat``, ``ou``) predicts a position the fit did not see
        from them by kriging (see :func:`_unseen_columns`); without them such a row gets
        the population level.

    Returns
    -------
    NewRows
    """
    keep = select_term_columns(design, re_form)
    if newdata is None:
        terms = tuple((k, mask, design.terms[k].Z, design.terms[k].grouping.codes)
                      for k, mask in keep.items())
        return NewRows(design.nobs, np.ones(design.nobs, dtype=bool), design.X,
                       design.offset, terms)
    newdata = as_data_frame(newdata, "newdata") if not isinstance(newdata, pd.DataFrame) \
        else newdata
    n = len(newdata)
    if n == 0:
        return NewRows(0, np.zeros(0, dtype=bool), np.zeros((0, design.p)), np.zeros(0),
                       tuple((k, mask, np.zeros((0, design.terms[k].p)),
                              np.zeros(0, dtype=np.int64)) for k, mask in keep.items()))
    off_arg = _offset_values(_fit_offset(design, newdata) if offset is None else offset,
                             newdata)
    value_cols, group_cols = _needed_columns(design, keep, offset)
    frame = _prepare_newdata(design, newdata, value_cols, group_cols)
    complete = np.ones(n, dtype=bool)
    for col in value_cols:
        complete &= ~missing_mask(frame[col])
    if off_arg is not None:
        complete &= np.isfinite(off_arg)
    sub = frame.loc[complete] if not complete.all() else frame
    if not complete.any():
        return NewRows(n, complete, np.zeros((0, design.p)), np.zeros(0),
                       tuple((k, mask, np.zeros((0, design.terms[k].p)),
                              np.zeros(0, dtype=np.int64)) for k, mask in keep.items()))
    X = design.fixed.new_matrix(sub)
    off = np.zeros(X.shape[0])
    for expr in design.spec.offsets:
        off = off + evaluate_numeric(expr, sub, "offset")
    if off_arg is not None:
        off = off + off_arg[complete]
    slices = design.theta_slices() if theta is not None else None
    terms, kriged = [], []
    for k, mask in keep.items():
        theta_k = None if slices is None else np.asarray(theta, dtype=float)[slices[k]]
        Z, where = _unseen_columns(design.terms[k], sub, allow_new_levels, theta_k)
        terms.append((k, mask, Z, _new_codes(design, k, sub, allow_new_levels)))
        if where is not None:
            kriged.append((k, *where, theta_k))
    return NewRows(n, complete, X, off, tuple(terms), tuple(kriged))


def _unseen_columns(t, frame: pd.DataFrame, allow_new_levels: bool,
                    theta: np.ndarray | None) -> tuple[np.ndarray, tuple | None]:
    r"""The model matrix of term ``t`` on new data, checking the columns a term over
    positions or over the levels of a known matrix has one of per fitted position or level.

    A row at a position (or of a level) the fit did not see has no column. Unless
    ``allow_new_levels`` that is an error, as a new level of a grouping factor is. With it,
    a term whose correlation is a function of distance predicts the row's effect by
    kriging, its conditional mean given the fitted positions' effects of its level,
    ``E[b_new | b] = r' R^{-1} b``: the row of ``Z`` becomes the weights ``r' R^{-1}``
    (:meth:`~mixedmodels.covariance.spatial._Positional.kriging_weights`), as glmmTMB's
    prediction, which refits with the new positions added and the parameters fixed, has
    it. Standard errors: glmmtmb's (TMB's delta method, :mod:`mixedmodels.prediction.delta`)
    add the new position's conditional variance ``s^2 (1 - r' R^{-1} r)`` and the weights'
    dependence on the correlation parameters, as glmmTMB's do; lmer's and glmer's follow
    lme4's recipe, conditional on the covariance parameters, and treat the prediction as
    the linear combination ``W b`` of the fitted effects. A new level of a known matrix
    (``propto``, ``equalto``), which has no covariance with the fitted ones, and any row
    when ``theta`` is not given, get the population level (a zero row).

    Returns
    -------
    Z : ndarray (n, p)
    kriged : (ndarray, ndarray) or None
        The kriged rows' indices and coordinates (m, dim), when there are any.
    """
    from ..design.random import LevelCoder, PositionCoder

    coder = t.coder
    if isinstance(coder, PositionCoder):
        codes = coder.positions.code_new(frame)
    elif isinstance(coder, LevelCoder):
        codes = coder.grouping.code_new(frame, coder.variables)
    else:
        return t.new_Z(frame), None
    Z = coder(frame)
    unseen = codes < 0
    if not unseen.any():
        return Z, None
    if isinstance(coder, PositionCoder):
        cols = coder.positions.columns
        where = np.column_stack([np.asarray(frame[c], dtype=float) for c in cols])[unseen]
        what = f"positions ({', '.join(cols)})"
        shown = list(dict.fromkeys("(" + ",".join(f"{v:g}" for v in r) + ")" for r in where))
    else:
        where = None
        what = f"levels of {', '.join(repr(v) for v in coder.variables)}"
        shown = list(dict.fromkeys(
            ":".join("<missing>" if pd.isna(x) else str(x) for x in row)
            for row in zip(*[frame[v].to_numpy(dtype=object)[unseen]
                             for v in coder.variables], strict=True)))
    if not allow_new_levels:
        count = int(unseen.sum())
        how = ("predict them by kriging from the fitted correlation"
               if hasattr(t.structure, "kriging_weights") else
               "predict them at the population level")
        raise DataError(
            f"newdata has {count} row{'s' if count > 1 else ''} at {what} of term "
            f"{t.term.source!r} that the fit did not see: "
            f"{', '.join(shown[:5])}{'...' if len(shown) > 5 else ''}; pass "
            f"allow_new_levels=True to {how}, or re_form='~0' to leave out the random "
            "effects")
    if where is not None and theta is not None and hasattr(t.structure, "kriging_weights"):
        Z = np.array(Z, dtype=float)
        Z[unseen] = t.structure.kriging_weights(theta, where)
        return Z, (np.flatnonzero(unseen), where)
    return Z, None


def linear_predictor(
    design: Design,
    beta: np.ndarray,
    b: list,
    newdata: pd.DataFrame | None = None,
    re_form=None,
    allow_new_levels: bool = False,
    offset=None,
    theta: np.ndarray | None = None,
) -> np.ndarray:
    """``X beta + sum_k Z_k b_k + offset`` on the fitting data or on ``newdata``.

    Parameters
    ----------
    design : Design
        The fit's design.
    beta : ndarray (p,)
    b : list of ndarray (levels_k, p_k)
        Conditional modes per term.
    newdata : DataFrame or dict, optional
        Data to predict for (default: the fitting rows). Not modified.
    re_form : None, str, False
        Random effects to condition on (module docstring).
    allow_new_levels : bool
        Predict unseen or missing grouping levels at the population level instead of
        raising; positions a spatial or temporal term did not see are kriged from the
        fitted ones when ``theta`` is given (see :func:`_unseen_columns`).
    offset : str or array-like, optional
        Offset for ``newdata`` (a column or one value per row), added to the offsets written
        in the formula, which are evaluated on ``newdata``. When not given, the fit's
        ``offset=`` is carried over if it named a column (read from ``newdata``, which must
        have it); an offset the fit was given as values cannot be recomputed and is left out,
        with a :class:`~mixedmodels.DataWarning` (lme4 leaves it out silently).
    theta : ndarray, optional
        The fit's covariance parameters (see :func:`new_rows`).

    Returns
    -------
    ndarray
        One value per row of ``newdata`` (NaN where a predictor is missing).
    """
    return new_rows(design, newdata, re_form, allow_new_levels, offset, theta).eta(beta, b)


def _new_codes(design: Design, k: int, frame: pd.DataFrame,
               allow_new_levels: bool) -> np.ndarray:
    """Level codes of term ``k`` on new data (-1: new or missing), refusing new levels
    unless ``allow_new_levels``."""
    t = design.terms[k]
    codes = t.grouping.code_new(frame, t.term.group_vars)
    new = codes < 0
    if new.any() and not allow_new_levels:
        parts = [frame[v].to_numpy(dtype=object)[new] for v in t.term.group_vars]
        labels = [":".join("<missing>" if pd.isna(x) else str(x) for x in row)
                  for row in zip(*parts, strict=True)]
        unique = list(dict.fromkeys(labels))
        shown = ", ".join(repr(v) for v in unique[:5])
        raise DataError(
            f"newdata has {int(new.sum())} row{'s' if new.sum() > 1 else ''} with levels of "
            f"{t.group!r} not seen in the fit "
            f"(or missing): {shown}{'...' if len(unique) > 5 else ''}; pass "
            "allow_new_levels=True to predict them at the population level, or re_form='~0' "
            "to leave out the random effects"
        )
    return codes


def _fit_offset(design: Design, newdata: pd.DataFrame):
    """The fit's ``offset=`` for new data: its column name, or None (with a warning when it
    was given as values)."""
    column = getattr(design, "offset_column", None)
    if column is not None:
        if column not in newdata.columns:
            raise DataError(
                f"the model was fitted with offset={column!r}, but newdata has no column "
                f"{column!r}; add it, or pass offset= to predict (offset=0 for none)"
            )
        return column
    if getattr(design, "offset_array", False):
        warnings.warn(
            "the model's offset= was given as values, which cannot be recomputed for newdata: "
            "these predictions leave it out. Pass offset= to predict for newdata's rows, or "
            "fit with offset= naming a column so that predict reads it from newdata",
            DataWarning,
            stacklevel=user_stacklevel(),
        )
    return None


def _offset_values(offset, newdata: pd.DataFrame) -> np.ndarray | None:
    if offset is None:
        return None
    if np.ndim(offset) == 0 and not isinstance(offset, str):
        return np.full(len(newdata), float(offset))  # a constant (offset=0: none)
    from ..design.response import per_row_values

    return per_row_values(offset, newdata, "offset")[1]


def _needed_columns(design: Design, keep: dict, offset) -> tuple[list[str], list[str]]:
    """Columns of newdata the prediction reads: values (fixed effects, offsets, the kept
    random-effect terms' expressions) and grouping variables."""
    values: list[str] = []
    groups: list[str] = []

    def add(target, names):
        for name in names:
            if name not in target:
                target.append(name)

    fitted = design.frame.columns  # names formulaic also knows are columns if they were
    add(values, expression_variables(design.spec.fixed, fitted))
    for expr in design.spec.offsets:
        add(values, expression_variables(expr, fitted))
    for k in keep:
        t = design.terms[k]
        add(values, expression_variables(t.term.expr, fitted))
        add(groups, t.term.group_vars)
    return values, groups


def _prepare_newdata(design: Design, newdata: pd.DataFrame, value_cols: list[str],
                     group_cols: list[str]) -> pd.DataFrame:
    """The columns the prediction needs, categorical ones coded with the fit's levels."""
    missing = [c for c in value_cols + group_cols if c not in newdata.columns]
    if missing:
        raise DataError(
            f"newdata lacks column(s) {', '.join(map(repr, missing))} that the prediction "
            f"needs; it has: {', '.join(map(str, newdata.columns))}"
        )
    used = list(dict.fromkeys(value_cols + group_cols))
    # positions: unused columns of newdata may share a name
    frame = newdata.take([newdata.columns.get_loc(c) for c in used], axis=1)
    roles = {c: "fixed effects" for c in value_cols}
    roles.update({c: "grouping factor" for c in group_cols if c not in roles})
    frame = normalize_frame(frame, roles).copy()  # one dtype per kind, as in the fit
    for col in value_cols:
        if col not in design.frame.columns:
            continue
        fitted = design.frame[col]
        if is_numeric_column(fitted):
            if not is_numeric_column(frame[col]):
                raise DataError(
                    f"newdata column {col!r} has dtype {frame[col].dtype} but the fit used "
                    "numbers; convert it with pd.to_numeric"
                )
            continue
        frame[col] = _as_fitted_levels(col, fitted, frame[col])
    return frame


def _as_fitted_levels(col: str, fitted: pd.Series, values: pd.Series) -> pd.Series:
    """Code a categorical predictor of newdata with the fit's levels, refusing new ones."""
    if isinstance(fitted.dtype, pd.CategoricalDtype):
        levels = fitted.dtype.categories
    else:
        levels = pd.Index(pd.unique(fitted.dropna()))
    # compare as text, so '1', 1 and 1.0 name the same level
    text_levels = pd.Index(level_text(pd.Series(levels)))
    text = level_text(values)
    present = ~pd.isna(text)
    codes = text_levels.get_indexer(np.where(present, text, ""))
    unknown = present & (codes < 0)
    if unknown.any():
        shown = ", ".join(repr(v) for v in pd.unique(text[unknown])[:5])
        raise DataError(
            f"newdata column {col!r} has levels the fit did not see: {shown}; a categorical "
            f"predictor can only take the fitted levels ({', '.join(map(str, levels[:10]))}"
            f"{'...' if len(levels) > 10 else ''})"
        )
    codes[~present] = -1
    if isinstance(fitted.dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical.from_codes(codes, dtype=fitted.dtype),
                         index=values.index)
    return pd.Series(np.where(present, np.asarray(levels, dtype=object)[np.maximum(codes, 0)],
                              None), index=values.index, dtype=object)

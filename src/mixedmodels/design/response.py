"""Evaluate the left-hand side and per-row arguments (weights, offsets) on the model frame."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError, plain_message
from .dtypes import float_values, numbers_of
from .fast import fast_arithmetic

__all__ = ["evaluate_numeric", "is_numeric_column", "numeric_response", "per_row_values"]

#: numpy dtype kinds that pandas' ``is_numeric_dtype`` accepts: booleans, integers,
#: floats, complex numbers.
_NUMERIC_KINDS = frozenset("biufc")


def is_numeric_column(col: pd.Series) -> bool:
    """Numbers (booleans included), not categories or text."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype):
        # pandas' is_numeric_dtype / is_bool_dtype on a numpy dtype, without their generic
        # dispatch (~10 us a column): booleans, integers, floats and complex numbers, not
        # dates or durations (``timedelta64`` subclasses numpy's integers)
        return dtype.kind in _NUMERIC_KINDS
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def evaluate_numeric(expr: str, frame: pd.DataFrame, role: str) -> np.ndarray:
    """Evaluate a numeric expression (a column name, ``log(y)``, ``size - incidence``).

    Missing or non-finite results are returned as they are (NaN, inf): the caller decides
    whether rows are dropped (:func:`~mixedmodels.design.materialize` drops and reports them)
    or predictions are missing.

    Parameters
    ----------
    expr : str
        Expression in formulaic's syntax.
    frame : pandas.DataFrame
        Model frame.
    role : str
        What the expression is for, used in error messages (``"response"``).
    """
    expr = expr.strip()
    if expr in frame.columns:
        return _numeric_column(frame[expr], expr, role)
    fast = fast_arithmetic(expr, frame)
    if fast is not None:
        return fast
    from .materializer import build_matrix

    try:
        with warnings.catch_warnings():
            # log(0), sqrt(-1): the non-finite values are reported by the caller, per row
            warnings.simplefilter("ignore", RuntimeWarning)
            mm = build_matrix(f"0 + I({expr})", frame)
    except Exception as exc:
        raise FormulaError(f"cannot evaluate the {role} {expr!r}: {plain_message(exc)}") from exc
    if mm.shape[1] != 1:
        raise DataError(f"the {role} {expr!r} must evaluate to one numeric column")
    return np.asarray(mm, dtype=float)[:, 0]


def _numeric_column(col: pd.Series, expr: str, role: str) -> np.ndarray:
    """:func:`evaluate_numeric` of the column ``expr`` (``col``)."""
    if not is_numeric_column(col):
        raise DataError(
            f"the {role} {expr!r} is not numeric (dtype {col.dtype}); convert it with "
            f"pd.to_numeric or choose a numeric column"
        )
    return float_values(col)


def numeric_response(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """Response of a linear mixed model: must be numeric, and booleans are refused."""
    if expr in frame.columns:
        col = frame[expr]
        if _is_bool(col.dtype):
            raise DataError(
                f"the response {expr!r} is boolean; for a binary response fit a binomial "
                "GLMM with mm.glmer(..., family='binomial')"
            )
        if expr == expr.strip():
            # evaluate_numeric's first branch, without looking the column up again
            return _numeric_column(col, expr, "response")
    return evaluate_numeric(expr, frame, "response")


def _is_bool(dtype) -> bool:
    """pandas' ``is_bool_dtype`` of a column's dtype (a numpy dtype read directly)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind == "b"
    return pd.api.types.is_bool_dtype(dtype)


def _aligned(series: pd.Series, data: pd.DataFrame, name: str) -> pd.Series:
    """``series`` in the row order of ``data``, matched by index labels."""
    if series.index.equals(data.index):
        return series
    if len(series) == len(data) and series.index.is_unique and data.index.is_unique:
        missing = data.index.difference(series.index)
        if not len(missing):
            return series.reindex(data.index)
    else:
        missing = data.index.difference(series.index) if series.index.is_unique else ()
    shown = ", ".join(repr(v) for v in list(missing)[:3])
    detail = (f"{len(missing)} row labels of data are not in it ({shown}"
              f"{'...' if len(missing) > 3 else ''})" if len(missing)
              else "its labels are not unique or do not match data's one to one")
    raise DataError(
        f"the {name} Series has an index that does not match data's: {detail}. A Series is "
        f"matched to the rows of data by its index; pass {name}.to_numpy() to use it in row "
        f"order, or add it to data as a column and pass the column name"
    )


def per_row_values(value, data: pd.DataFrame, name: str) -> tuple[str, np.ndarray] | None:
    """Resolve a ``weights=``/``offset=`` argument to (label, one float per row of data).

    Parameters
    ----------
    value : None, str or array-like
        A column name of ``data`` or one number per row: a list or array in row order, or a
        pandas Series aligned with ``data`` by its index (as pandas aligns; a Series whose
        index does not match ``data``'s is refused rather than taken by position). Missing
        values are kept as NaN; the rows are dropped later, with a count.
    data : pandas.DataFrame
    name : str
        ``"weights"`` or ``"offset"``, for messages.

    Returns
    -------
    (label, values) or None
        ``label`` is the column name, or ``name`` for an array.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in data.columns:
            raise DataError(
                f"{name} column {value!r} not found in data; available columns: "
                f"{', '.join(map(str, data.columns))}"
            )
        col = numbers_of(data[value], value, name)
        if not is_numeric_column(col):
            raise DataError(
                f"{name} column {value!r} is not numeric (dtype {col.dtype}); {name} must be "
                "numbers"
            )
        return value, col.to_numpy(dtype=float, na_value=np.nan)
    if np.ndim(value) == 0:
        raise DataError(
            f"{name} must be a column name or one number per row of data, got the single "
            f"value {value!r}"
        )
    if isinstance(value, pd.Series):
        value = numbers_of(value, str(value.name), name)
        if not is_numeric_column(value):
            raise DataError(f"{name} must be numeric, got a Series of dtype {value.dtype}")
        value = _aligned(value, data, name)
    try:
        arr = np.asarray(pd.array(value, dtype="Float64").to_numpy(dtype=float,
                                                                   na_value=np.nan))
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must be a column name or one number per row of data; could not read "
            f"it as numbers ({plain_message(exc)})"
        ) from exc
    if arr.ndim != 1 or arr.shape[0] != len(data):
        raise DataError(
            f"{name} must be a column name or one number per row of data ({len(data)} rows), "
            f"got {arr.size} values"
        )
    return name, arr

"""Evaluate the left-hand side and per-row arguments (weights, offsets) on the model frame."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError

__all__ = ["evaluate_numeric", "numeric_response", "per_row_argument"]

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def evaluate_numeric(expr: str, frame: pd.DataFrame, role: str) -> np.ndarray:
    """Evaluate a numeric expression (a column name, ``log(y)``, ``size - incidence``).

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
        col = frame[expr]
        if isinstance(col.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)
        ):
            raise DataError(
                f"the {role} {expr!r} is not numeric (dtype {col.dtype}); convert it with "
                f"pd.to_numeric or choose a numeric column"
            )
        return col.to_numpy(dtype=float)
    from formulaic import model_matrix

    try:
        mm = model_matrix(f"0 + I({expr})", frame)
    except Exception as exc:
        raise FormulaError(f"cannot evaluate the {role} {expr!r}: {exc}") from exc
    if mm.shape[1] != 1:
        raise DataError(f"the {role} {expr!r} must evaluate to one numeric column")
    out = np.asarray(mm, dtype=float)[:, 0]
    return out


def numeric_response(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """Response of a linear mixed model: must be numeric, and booleans are refused."""
    if expr in frame.columns and pd.api.types.is_bool_dtype(frame[expr].dtype):
        raise DataError(
            f"the response {expr!r} is boolean; for a binary response fit a binomial GLMM "
            "with mm.glmer(..., family='binomial')"
        )
    y = evaluate_numeric(expr, frame, "response")
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response {expr!r} has non-finite values after transformation")
    return y


def per_row_argument(value, data: pd.DataFrame, name: str) -> tuple[str | None, np.ndarray | None]:
    """Split a ``weights=``/``offset=`` argument into (column name, array)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        if value not in data.columns:
            raise DataError(f"{name} column {value!r} not found in data")
        return value, None
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != len(data):
        raise DataError(
            f"{name} must be a column name or one number per row of data ({len(data)}), got "
            f"shape {arr.shape}"
        )
    return None, arr

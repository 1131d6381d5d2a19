"""Model matrices of simple formulas without formulaic: intercept and numeric columns.

``1``, ``x``, ``1 + x + z``, ``0 + x``, ``x - 1``: the formulas of most mixed models. Building
these directly costs microseconds, where a formulaic round trip costs about a millisecond --
which matters for small models refitted thousands of times (bootstrap, simulation). Column
names and order are formulaic's (``Intercept`` first, then the columns as written), so both
paths give the same design. Anything else returns None: factors and interactions go to
:mod:`.fast`, the rest through formulaic.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from .dtypes import float_values

__all__ = ["simple_has_intercept", "simple_matrix"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _plain_numeric(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """The column ``name`` when it is a plain numeric one (else None)."""
    if not _NAME.match(name) or name not in frame.columns:
        return None
    col = frame[name]
    if not isinstance(col, pd.Series):
        return None  # a repeated column name
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return col
    if (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not isinstance(dtype, pd.CategoricalDtype)):
        return col
    return None


@functools.lru_cache(maxsize=1024)
def _tokens(expr: str) -> tuple[str, ...]:
    """The ``+``-separated terms of ``expr`` (``-`` kept with its term); cached by the
    text, as every fit of a formula reads them."""
    return tuple(t.strip() for t in expr.replace("-", "+-").split("+") if t.strip())


def simple_has_intercept(expr: str) -> bool:
    """Whether a simple formula keeps its intercept (no ``0`` or ``- 1`` term)."""
    return not any(tok in ("0", "-1") for tok in _tokens(expr))


def simple_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """Model matrix and column names of ``expr`` on ``frame``, or None if it is not simple.

    Parameters
    ----------
    expr : str
        A formula right-hand side, e.g. ``"1 + Days"``.
    frame : pandas.DataFrame
        Data; a numeric column with missing values gives NaN rows (the caller drops them).
    """
    tokens = _tokens(expr)
    intercept, cols, series = True, [], []
    for tok in tokens:
        if tok == "1":
            continue
        if tok in ("0", "-1"):
            intercept = False
            continue
        col = None if tok in cols else _plain_numeric(frame, tok)
        if col is None:
            return None
        cols.append(tok)
        series.append(col)
    names = (["Intercept"] if intercept else []) + cols
    if not names:
        return None
    out = np.empty((len(frame), len(names)))
    j = 0
    if intercept:
        out[:, 0] = 1.0
        j = 1
    for col in series:
        out[:, j] = float_values(col)
        j += 1
    return out, tuple(names)

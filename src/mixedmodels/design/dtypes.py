"""Column types of the model frame: every pandas spelling of a type fits the same model.

pandas has several spellings of one kind of column: ``int64`` and ``Int64``, ``float64`` and
``Float64`` or ``double[pyarrow]``, ``bool`` and ``boolean``, ``object`` text and the
``string`` / ``string[pyarrow]`` / ``str`` dtypes (what ``convert_dtypes()`` and pyarrow
produce). The model frame (complete rows only) turns each into the numpy spelling -- numbers
as ``int64``/``float64``, booleans as ``bool``, text as ``object`` -- so formulaic and the
fast paths see one type per kind, and a ``convert_dtypes()`` frame fits exactly like the
numpy frame.

``object`` columns are looked at once (``pandas.api.types.infer_dtype``):

* numbers stored as objects (a column read or built as Python objects) are numbers: used as
  numbers with a :class:`~mixedmodels.DataWarning` naming the column -- never silently a
  factor. The response, weights and predictors all go through here, so they agree;
* numbers mixed with text (``3.5`` next to ``"n/a"``) in a predictor or the response are
  refused, naming the column and a text value (R would have read the column as text);
* for a grouping factor all of these are fine: values are labels, and ``3`` and ``"3"`` are
  one level.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._errors import DataError, DataWarning
from .._messages import user_stacklevel

__all__ = ["float_values", "normalize_frame", "normalized_columns", "numbers_of"]

_NUMBER_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


def _normalize(col: pd.Series, name: str, role: str) -> pd.Series | None:
    """The numpy spelling of ``col`` (complete rows), or None when it already is one."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return None
    if isinstance(dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_bool_dtype(dtype):
        return col.astype(bool)
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, np.dtype):
        integer = pd.api.types.is_integer_dtype(dtype) and not col.isna().any()
        return pd.Series(col.to_numpy(dtype=np.int64 if integer else float,
                                      na_value=None if integer else np.nan),
                         index=col.index, name=col.name)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return col.astype(object)
    if pd.api.types.is_object_dtype(dtype):
        return _object_column(col, name, role)
    return None


def _object_column(col: pd.Series, name: str, role: str) -> pd.Series | None:
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind in ("string", "empty") or role.startswith("grouping factor"):
        return None
    if kind == "boolean":
        return col.astype(bool)
    if kind in _NUMBER_KINDS:
        warnings.warn(
            f"column {name!r} (used in the {role}) holds numbers stored as Python objects; "
            "it is used as numbers. Convert it once with "
            f"data[{name!r}] = pd.to_numeric(data[{name!r}]) to silence this warning, or "
            f"with .astype(str) / .astype('category') if it is meant as a factor",
            DataWarning,
            stacklevel=user_stacklevel(),
        )
        return pd.Series(col.to_numpy(dtype=float, na_value=np.nan), index=col.index,
                         name=col.name)
    if kind.startswith("mixed"):
        values = col.dropna()
        text = [v for v in values.iloc[:1000] if isinstance(v, str)]
        numbers = [v for v in values.iloc[:1000] if not isinstance(v, str)]
        if text and numbers:
            raise DataError(
                f"column {name!r} (used in the {role}) mixes numbers ({numbers[0]!r}) and "
                f"text ({text[0]!r}); for numbers use data[{name!r}] = "
                f"pd.to_numeric(data[{name!r}], errors='coerce') (text becomes missing), for "
                f"a factor data[{name!r}].astype(str)"
            )
    return None


def float_values(col: pd.Series) -> np.ndarray:
    """A numeric column's values as float64, missing values as NaN.

    A numpy-typed column is converted directly: ``to_numpy(na_value=...)`` first scans it
    for missing values (``hasnans``), which costs more than the conversion on small data
    and finds nothing a float NaN would not already be."""
    dtype = col.dtype       # (read once: three properties deep)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        # Series.to_numpy(dtype=float)'s own steps without its argument handling (~1 us
        # a column): the values as float, a read-only view when no conversion copied them
        # (copy-on-write: the caller's data stay untouched), pandas' call the fallback
        values = getattr(col, "_values", None)
        if not isinstance(values, np.ndarray):    # pragma: no cover - other internals
            return col.to_numpy(dtype=float)
        out = np.asarray(values, dtype=float)
        if out is values or np.shares_memory(out, values):
            out = out.view()
            out.flags.writeable = False
        return out
    return col.to_numpy(dtype=float, na_value=np.nan)


def numbers_of(col: pd.Series, name: str, role: str) -> pd.Series:
    """``col`` in its numpy spelling when it holds numbers in another one (``Int64``, numbers
    stored as objects -- with the same warning as in a formula), else ``col`` unchanged;
    for ``weights=``/``offset=``, so they read columns as the formula does."""
    new = _normalize(col, name, role)
    return col if new is None else new


def normalize_frame(frame: pd.DataFrame, roles: dict[str, str],
                    dtypes: dict | None = None,
                    columns: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """``frame`` with each column of ``roles`` in its numpy spelling (module docstring); the
    same object when nothing changes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Model frame (complete rows) or new data.
    roles : dict
        Column name -> role (``"response"``, ``"fixed effects"``, ``"grouping factor of
        ..."``), for the rules on object columns and for messages.
    dtypes : dict, optional
        Column name -> dtype when the caller knows them (skips a column lookup per column
        already in its numpy spelling, the common case).
    columns : dict, optional
        Column name -> the column itself, when the caller holds ``frame``'s columns of
        ``roles`` (same rows): read instead of looked up in ``frame`` (a first lookup in a
        new frame builds its column index's hash table, ~0.1 ms with pandas' text labels).

    Raises
    ------
    DataError
        For a predictor or response column mixing numbers and text.
    """
    changed = normalized_columns(frame, roles, dtypes, columns)
    if not changed:
        return frame
    frame = frame.copy(deep=False)
    for name, values in changed.items():
        frame[name] = values
    return frame


def normalized_columns(frame: pd.DataFrame, roles: dict[str, str], dtypes: dict | None = None,
                       columns: dict[str, pd.Series] | None = None) -> dict[str, pd.Series]:
    """The columns of ``roles`` that :func:`normalize_frame` would replace, in their numpy
    spelling (name -> new column; empty when none). Parameters as for
    :func:`normalize_frame`.

    Returns
    -------
    dict
    """
    changed = {}
    for name, role in roles.items():
        dtype = None if dtypes is None else dtypes.get(name)
        if (isinstance(dtype, np.dtype) and dtype.kind in "biuf") or \
                isinstance(dtype, pd.CategoricalDtype):
            continue  # already the numpy spelling (see _normalize)
        if columns is not None:
            col = columns[name]
        elif name in frame.columns:
            col = frame[name]
        else:
            continue
        new = _normalize(col, str(name), role)
        if new is not None:
            changed[name] = new
    return changed

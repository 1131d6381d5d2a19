"""Select the rows a model can use: required columns present, no missing or infinite values.

lme4 drops incomplete rows silently (``na.action = na.omit``); we drop them too but say so,
with a count per column, and keep the original row labels so results line up with the
caller's DataFrame. The caller's DataFrame is never modified.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import DataError, DroppedRowsWarning

__all__ = ["DroppedRows", "ModelFrame", "build_model_frame"]


@dataclass(frozen=True)
class DroppedRows:
    """Report of the rows left out of a fit.

    Attributes
    ----------
    n_total : int
        Rows in the data passed in.
    n_dropped : int
        Rows left out.
    by_column : dict
        Column name -> number of rows with a missing or non-finite value in it (a row with
        two bad columns counts in both).
    labels : pandas.Index
        Index labels of the dropped rows.
    """

    n_total: int
    n_dropped: int
    by_column: dict
    labels: pd.Index

    def __str__(self) -> str:
        if not self.n_dropped:
            return "no rows dropped"
        cols = ", ".join(f"{c!r}: {k}" for c, k in self.by_column.items() if k)
        return (f"{self.n_dropped} of {self.n_total} rows dropped for missing or non-finite "
                f"values ({cols})")


@dataclass(frozen=True)
class ModelFrame:
    """The complete rows of the columns a model needs (a copy; unused categories removed)."""

    frame: pd.DataFrame
    dropped: DroppedRows
    #: boolean mask over the rows of the data passed in: True for rows kept
    mask: np.ndarray


def _missing_column_error(missing: list[str], data: pd.DataFrame, role: dict[str, str]):
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{name!r} used in the {role.get(name, 'formula')}{hint}")
    return DataError(
        "column(s) not found in data: " + "; ".join(parts)
        + f". Available columns: {', '.join(map(str, data.columns))}"
    )


def _bad_mask(col: pd.Series) -> np.ndarray:
    bad = col.isna().to_numpy().copy()
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        bad |= ~np.isfinite(values)
    return bad


def build_model_frame(
    data: pd.DataFrame, columns: dict[str, str], extra: dict[str, np.ndarray] | None = None
) -> ModelFrame:
    """Subset ``data`` to ``columns`` and drop incomplete rows.

    Parameters
    ----------
    data : pandas.DataFrame
        The caller's data (left untouched).
    columns : dict
        Column name -> the role it plays (``"response"``, ``"fixed effects"``, ...), used in
        error messages. Order is kept.
    extra : dict, optional
        Per-row arrays that are not columns of ``data`` (weights or offsets passed as
        arrays); rows where they are missing or non-finite are dropped too.
    """
    if not isinstance(data, pd.DataFrame):
        if isinstance(data, dict):
            data = pd.DataFrame(data)
        else:
            raise DataError(
                f"data must be a pandas DataFrame (or a dict of columns), got "
                f"{type(data).__name__}"
            )
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise _missing_column_error(missing, data, columns)
    frame = data.loc[:, list(columns)].copy()
    by_column = {}
    bad = np.zeros(len(frame), dtype=bool)
    for name in columns:
        col_bad = _bad_mask(frame[name])
        by_column[name] = int(col_bad.sum())
        bad |= col_bad
    for name, values in (extra or {}).items():
        arr = np.asarray(values)
        if arr.shape != (len(frame),):
            raise DataError(
                f"{name} has {arr.size} values but data has {len(frame)} rows; pass one "
                "value per row"
            )
        col_bad = pd.isna(arr) | ~np.isfinite(arr.astype(float))
        by_column[name] = int(col_bad.sum())
        bad |= col_bad
    dropped = DroppedRows(len(frame), int(bad.sum()), by_column, frame.index[bad])
    if dropped.n_dropped == len(frame):
        raise DataError(
            f"all {len(frame)} rows have a missing or non-finite value in a column the model "
            f"uses ({', '.join(f'{c}: {k}' for c, k in by_column.items() if k)}); nothing "
            "is left to fit"
        )
    if dropped.n_dropped:
        warnings.warn(str(dropped), DroppedRowsWarning, stacklevel=4)
        frame = frame.loc[~bad]
    for name in columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.remove_unused_categories()
    return ModelFrame(frame=frame, dropped=dropped, mask=~bad)

"""Data in: the one adapter that turns the caller's table into the pandas frame used inside.

A pandas DataFrame is used as it is (never copied here); a dict of columns becomes a
DataFrame; anything narwhals reads eagerly -- a polars DataFrame (or LazyFrame, collected), a
pyarrow Table, modin, cuDF, ... -- is converted column by column through narwhals, so no
backend-specific converter (polars' ``to_pandas`` needs pyarrow) and no backend-specific
dtypes reach the model:

* numbers become numpy arrays (integers with nulls become floats with NaN, which the model
  frame drops and reports);
* text and unordered categoricals become text (levels sorted, as R's ``factor()`` sorts
  them, and as a pandas text column is read);
* an ``Enum`` (a fixed, ordered list of levels: R's factor with ``levels=``) becomes a
  pandas categorical with those categories;
* booleans stay booleans (nulls as None).

The same table therefore gives the same fit, bit for bit, whichever library holds it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import DataError

__all__ = ["as_pandas"]


def as_pandas(data, what: str = "data") -> pd.DataFrame:
    """The caller's table as a pandas DataFrame.

    Parameters
    ----------
    data : pandas.DataFrame, dict of columns, or a table narwhals supports
    what : str
        The argument's name, for error messages (``"data"``, ``"newdata"``).

    Raises
    ------
    DataError
        For anything else, naming the type.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if (type(data).__module__ or "").split(".")[0] in ("dask", "dask_expr"):
        # decided by the module name: the in-memory path never imports dask
        raise DataError(
            f"{what} is a Dask object: lmer() and glmer() fit Dask input (its rows stay "
            "on the workers, docs/scale.md); glmer_nb, glmmtmb and the other fitters need "
            f"in-memory data -- use {what}.compute() when it fits in memory"
        )
    if isinstance(data, dict):
        try:
            return pd.DataFrame({k: _column_values(v) for k, v in data.items()})
        except (ValueError, TypeError) as exc:
            raise DataError(f"{what}: cannot make a table of the dict given ({exc})") from exc
    frame = _from_narwhals(data)
    if frame is None:
        raise DataError(
            f"{what} must be a pandas DataFrame (or a polars or pyarrow table, or a dict of "
            f"columns), got {type(data).__name__}"
        )
    return frame


def _column_values(values):
    """A dict value as pandas accepts it (a polars or pyarrow column through narwhals)."""
    if isinstance(values, pd.Series | np.ndarray | list | tuple | range):
        return values
    import narwhals as nw

    try:
        series = nw.from_native(values, series_only=True)
    except TypeError:
        return values
    return _series_values(series)


def _from_narwhals(data) -> pd.DataFrame | None:
    import narwhals as nw

    try:
        frame = nw.from_native(data)
    except TypeError:
        return None
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, nw.DataFrame):
        return None
    return pd.DataFrame({name: _series_values(frame[name]) for name in frame.columns})


def _series_values(series):
    """One narwhals column as numpy values or a pandas categorical (module docstring)."""
    import narwhals as nw

    dtype = series.dtype
    values = series.to_numpy()
    if isinstance(dtype, nw.Enum):
        return pd.Categorical(values, categories=list(dtype.categories))
    if dtype == nw.Categorical or dtype == nw.String:
        return np.asarray(values, dtype=object)
    return values

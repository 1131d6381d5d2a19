"""Classic mixed-model data sets, bundled with the package.

The CSV files are those lme4, nlme and glmmTMB users know (sleepstudy, Dyestuff, Penicillin,
Pastes, InstEval, cbpp, VerbAgg, grouseticks, ...). Factor columns come back as pandas
categoricals whose category order is R's level order, so the first category is the reference
level of treatment contrasts, exactly as in R.

Examples
--------
>>> import mixedmodels as mm
>>> df = mm.datasets.load("sleepstudy")
>>> df.shape
(180, 3)
>>> list(df["Subject"].cat.categories[:3])
['308', '309', '310']
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["load", "names"]

_DATA_PACKAGE = "mixedmodels.datasets"


def _data_dir():
    return resources.files(_DATA_PACKAGE).joinpath("data")


@cache
def _factor_levels() -> dict[str, dict[str, list[str]]]:
    with _data_dir().joinpath("factor_levels.json").open("r", encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _files() -> dict[str, str]:
    out = {}
    for entry in _data_dir().iterdir():
        name = entry.name
        for suffix in (".csv.gz", ".csv"):
            if name.endswith(suffix):
                out[name[: -len(suffix)]] = name
    return out


def names() -> list[str]:
    """Names of the bundled data sets, sorted case-insensitively.

    Returns
    -------
    list of str
        The names :func:`load` accepts.
    """
    return sorted(_files(), key=str.lower)


@cache
def _read(name: str) -> pd.DataFrame:
    levels = _factor_levels().get(name, {})
    dtypes = {col: str for col in levels}
    with _data_dir().joinpath(_files()[name]).open("rb") as fh:
        compression = "gzip" if _files()[name].endswith(".gz") else None
        frame = pd.read_csv(fh, dtype=dtypes, compression=compression)
    for col, lev in levels.items():
        frame[col] = pd.Categorical(frame[col], categories=lev)
    return frame


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame (a fresh copy on every call).

    Parameters
    ----------
    name : str
        Data set name, case-insensitive (``"sleepstudy"``, ``"InstEval"``, ...); see
        :func:`names`.

    Returns
    -------
    pandas.DataFrame
        Factor columns are categoricals with R's level order.
    """
    files = _files()
    if name not in files:
        lookup = {k.lower(): k for k in files}
        if name.lower() not in lookup:
            raise KeyError(
                f"no bundled data set named {name!r}; available: {', '.join(names())}"
            )
        name = lookup[name.lower()]
    return _read(name).copy()

"""Pass 1 over the partitions: dtypes, missing values, level sets, a sample of rows.

Per partition (:func:`scan_partition`) and combined over partitions (:func:`combine_scans`):

* the kind of every model column (numbers, booleans, text, categorical, dates): a column
  whose kind differs between partitions is refused, naming the partitions -- one file of a
  parquet data set with ``"12"`` where the others have ``12`` would otherwise code a
  predictor as numbers in some partitions and as a factor in others;
* missing or non-finite values per column, counted as an in-memory fit counts them (a row
  with two bad columns counts in both), and the rows they leave out;
* the distinct values of every grouping factor (the distinct combinations, for
  ``(1 | a:b)``) and of every text, boolean or categorical predictor, among the complete
  rows: the global level sets that code every partition alike;
* prior weights: negative ones (an error) and zero ones (left out, as in memory);
* the first complete rows, a template from which the formula's encodings are built.

Everything returned is proportional to the number of levels, never to n.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..._errors import DataError
from ...design.frame import missing_mask

__all__ = ["SAMPLE_ROWS", "ScanResult", "column_kind", "combine_scans", "scan_partition"]

#: Complete rows kept as the template of the formula's encodings.
SAMPLE_ROWS = 64
#: Partitions named per kind in a dtype-mismatch error.
SHOWN_PARTITIONS = 5


def column_kind(dtype) -> str:
    """The kind of a column that decides how a formula reads it."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(
            dtype):
        return "date/time"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text"
    return str(dtype)


@dataclass
class ScanResult:
    """What pass 1 learns (per partition, then combined; see the module docstring).

    Attributes
    ----------
    n_rows : int
        Rows in the data.
    n_dropped : int
        Rows with a missing or non-finite value in a model column, or zero weight.
    by_column : dict
        Column -> rows with a missing value there (``"zero prior weight"`` too).
    kinds : dict
        Column -> {kind: [partition indices]} (a few per kind).
    dtypes : dict
        Column -> a dtype seen (of the first partition that has rows).
    levels : dict
        Tuple of variables -> DataFrame of their distinct complete values.
    n_negative_weights : int
    sample : DataFrame
        Up to :data:`SAMPLE_ROWS` complete rows.
    """

    n_rows: int = 0
    n_dropped: int = 0
    by_column: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)
    dtypes: dict = field(default_factory=dict)
    levels: dict = field(default_factory=dict)
    n_negative_weights: int = 0
    sample: pd.DataFrame | None = None


def scan_partition(part: pd.DataFrame, index: int, columns: tuple, level_sets: tuple,
                   weights: str | None) -> ScanResult:
    """Pass 1 on one partition (``columns``: every column the model reads)."""
    out = ScanResult(n_rows=len(part))
    bad = np.zeros(len(part), dtype=bool)
    for name in columns:
        col = part[name]
        out.kinds[name] = {column_kind(col.dtype): [index]}
        if len(part):
            out.dtypes[name] = col.dtype
        mask = missing_mask(col)
        out.by_column[name] = int(mask.sum())
        bad |= mask
    if weights is not None and len(part):
        w = pd.to_numeric(part[weights], errors="coerce").to_numpy(dtype=float,
                                                                  na_value=np.nan)
        out.n_negative_weights = int(np.sum(w < 0))
        zero = ~bad & (w == 0)
        if zero.any():
            out.by_column["zero prior weight"] = int(zero.sum())
        bad |= zero
    out.n_dropped = int(bad.sum())
    keep = part.loc[~bad] if bad.any() else part
    for variables in level_sets:
        out.levels[variables] = keep[list(variables)].drop_duplicates()
    out.sample = keep[list(columns)].head(SAMPLE_ROWS)
    return out


def _merge_kinds(a: dict, b: dict) -> dict:
    out = {c: {k: list(v) for k, v in kinds.items()} for c, kinds in a.items()}
    for col, kinds in b.items():
        mine = out.setdefault(col, {})
        for kind, parts in kinds.items():
            mine[kind] = (mine.get(kind, []) + parts)[:SHOWN_PARTITIONS]
    return out


def combine_scans(results: list[ScanResult]) -> ScanResult:
    """Sum of pass-1 results over partitions (``combine_scans([x])`` is ``x``)."""
    if len(results) == 1:
        return results[0]
    out = ScanResult()
    for r in results:
        out.n_rows += r.n_rows
        out.n_dropped += r.n_dropped
        out.n_negative_weights += r.n_negative_weights
        for k, v in r.by_column.items():
            out.by_column[k] = out.by_column.get(k, 0) + v
        out.kinds = _merge_kinds(out.kinds, r.kinds)
        for k, v in r.dtypes.items():
            out.dtypes.setdefault(k, v)
    for variables in results[0].levels:
        out.levels[variables] = pd.concat([r.levels[variables] for r in results],
                                          ignore_index=True).drop_duplicates()
    samples = [r.sample for r in results if r.sample is not None and len(r.sample)]
    out.sample = (pd.concat(samples).head(SAMPLE_ROWS) if samples
                  else results[0].sample)
    return out


def check_scan(scan: ScanResult, roles: dict) -> None:
    """Refuse what the scan found wrong: dtypes that differ between partitions, negative
    weights, no complete row.

    Raises
    ------
    DataError
        Naming the column, the kinds and the partitions.
    """
    for col, kinds in scan.kinds.items():
        if len(kinds) > 1:
            shown = "; ".join(f"{kind} in partition{'s' if len(p) > 1 else ''} "
                              f"{', '.join(map(str, p))}" for kind, p in kinds.items())
            raise DataError(
                f"column {col!r} (used in the {roles.get(col, 'model')}) has different "
                f"dtypes in different partitions: {shown}; give it one dtype in every "
                f"partition (for example ddf[{col!r}] = ddf[{col!r}].astype(float) or "
                ".astype(str)) -- parquet files written separately often disagree"
            )
    if scan.n_negative_weights:
        raise DataError(f"weights: prior weights must be non-negative; "
                        f"{scan.n_negative_weights} are negative")
    if scan.n_rows == 0:
        raise DataError("data has no rows")
    if scan.n_dropped == scan.n_rows:
        detail = ", ".join(f"{c}: {k}" for c, k in scan.by_column.items() if k)
        raise DataError(
            f"all {scan.n_rows} rows have a missing or non-finite value in a column the "
            f"model uses ({detail}); nothing is left to fit")

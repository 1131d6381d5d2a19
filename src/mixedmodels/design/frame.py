"""Select the rows a model can use: required columns present, no missing or infinite values.

lme4 drops incomplete rows silently (``na.action = na.omit``); we drop them too but say so,
with a count per column, and keep the original row labels so results line up with the
caller's DataFrame. The caller's DataFrame is never modified.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

try:        # pandas' internals, as BlockManager.iget uses them (columns_at falls back)
    from pandas._libs.internals import BlockPlacement
    from pandas.core.internals.managers import SingleBlockManager
except ImportError:                # pragma: no cover - other pandas internals
    BlockPlacement = SingleBlockManager = None

from .._errors import DataError, DroppedRowsWarning
from .._messages import user_stacklevel
from .adapter import as_pandas
from .dtypes import normalize_frame, normalized_columns
from .identity_cache import IdentityCache

__all__ = [
    "ColumnFrame",
    "ColumnSelection",
    "DroppedRows",
    "ModelFrame",
    "as_data_frame",
    "build_model_frame",
    "column_names",
    "column_positions",
    "columns_at",
    "drop_more_rows",
    "missing_mask",
    "model_columns_frame",
    "shallow_manager",
    "subset_rows",
]


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

    @property
    def n_used(self) -> int:
        return self.n_total - self.n_dropped


@dataclass(frozen=True)
class ModelFrame:
    """The complete rows of the columns a model needs (a copy; unused categories removed)."""

    frame: pd.DataFrame
    dropped: DroppedRows
    #: boolean mask over the rows of the data passed in: True for rows kept
    mask: np.ndarray
    #: the same data as ``frame`` as a plain DataFrame, for the :class:`Design` (None: call
    #: ``frame.plain()``, or see ``selection``)
    plain: pd.DataFrame | None = None
    #: when ``frame`` reads all of the caller's columns (every row kept, nothing to
    #: convert): the model's columns of it, selected on first use
    selection: ColumnSelection | None = None


#: Read the caller's columns through a snapshot of all of them when every row is kept (see
#: :func:`build_model_frame`); False always selects the model's columns first (the tests
#: build designs both ways and compare them).
LIGHT_FRAME = True

#: Column-name sets per column index (an index is immutable: see :mod:`.identity_cache`).
_NAME_SETS = IdentityCache()


class _ColumnIndexInfo:
    """What a fit reads off a column index: its names as a set, and for a unique index
    each name's position (``Index.get_loc``'s answer there: ~1.5 us a lookup in a fit,
    where a dictionary's is ~0.1 us)."""

    __slots__ = ("names", "positions")

    def __init__(self, index: pd.Index):
        labels = list(index)        # (boxing the labels once: one pass)
        self.names = frozenset(labels)
        self.positions = dict(zip(labels, range(len(labels)), strict=True)) \
            if len(self.names) == len(labels) and index.is_unique else None


def _column_index_info(data: pd.DataFrame) -> _ColumnIndexInfo:
    return _NAME_SETS.get(data.columns, _ColumnIndexInfo)


def column_names(data: pd.DataFrame) -> frozenset:
    """``data``'s column names as a set, made once per column index.

    Iterating pandas' text column index costs ~10-15 us a pass (pyarrow strings are boxed
    one by one), and every fit reads the set. Renaming or adding a column gives the frame
    a new index, so the set is kept per index object
    (:class:`.identity_cache.IdentityCache`)."""
    return _column_index_info(data).names


def column_positions(data: pd.DataFrame, names) -> tuple[int, ...]:
    """The positions of the columns ``names`` of ``data`` (each present once): from the
    positions kept per column index when it is unique, else ``Index.get_loc``'s."""
    positions = _column_index_info(data).positions
    if positions is None:
        columns = data.columns
        return tuple(columns.get_loc(c) for c in names)
    return tuple(positions[c] for c in names)


#: An empty selection of each range row index (``index[:0]``, the labels of no dropped
#: row), kept per index object as :data:`_NAME_SETS` keeps the names (a range holds no
#: array: keeping its empty slice keeps no data alive).
_NO_LABELS = IdentityCache()


def _no_labels(index: pd.Index) -> pd.Index:
    """``index[:0]``: kept per object for a ``RangeIndex`` (~1-3 us a fit), else made."""
    if type(index) is pd.RangeIndex:
        return _NO_LABELS.get(index, _slice_none)
    return index[:0]


def _slice_none(index: pd.Index) -> pd.Index:
    return index[:0]


def columns_at(data: pd.DataFrame, names, positions, index: pd.Index | None = None,
               dtypes: dict | None = None, arrays: dict | None = None
               ) -> dict[str, pd.Series]:
    """``{name: data[name]}`` for columns at known positions, without ``__getitem__``'s
    key handling (~10 us of a ~15 us lookup): each Series is made from the frame's
    single-column manager, as pandas makes it (``BlockManager.iget``), references tracked
    (copy-on-write: a write into one copies it first and never reaches ``data``). The
    Series share one view of ``data``'s row index (``index``, or one made here) where
    pandas makes a view per column (~1 us each). pandas' ``data[name]`` is the fallback
    should its internals change. ``dtypes``, when given, receives each column's dtype by
    name: its values' dtype, which ``Series.dtype`` reads through three properties;
    ``arrays``, when given, each column's values (``Series.array``'s numpy array or
    extension array) by name."""
    try:
        mgr = data._mgr
        index = mgr.axes[1].view() if index is None else index
        blocks, blknos, blklocs = mgr.blocks, mgr.blknos, mgr.blklocs
        out = {}
        for name, loc in zip(names, positions, strict=True):
            block = blocks[blknos[loc]]
            values = block.iget(blklocs[loc])
            one = type(block)(values, placement=BlockPlacement(slice(0, len(values))),
                              ndim=1, refs=block.refs)
            sub = SingleBlockManager(one, index)
            col = pd.Series._from_mgr(sub, axes=sub.axes)
            object.__setattr__(col, "_name", name)     # (== data.columns[loc])
            out[name] = col
            if dtypes is not None:
                dtypes[name] = values.dtype
            if arrays is not None:
                arrays[name] = values
        return out
    except Exception:              # pragma: no cover - other pandas internals
        out = {name: data[name] for name in names}
        if dtypes is not None:
            dtypes.update((name, col.dtype) for name, col in out.items())
        if arrays is not None:
            arrays.update((name, col._values) for name, col in out.items())
        return out


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


def missing_mask(col: pd.Series) -> np.ndarray:
    """Missing or non-finite entries of a column (vectorized per dtype)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return col.array.codes < 0
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return np.zeros(len(col), dtype=bool)  # numpy ints and bools cannot be missing
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return ~np.isfinite(col.to_numpy())
    # the array's isna, not the Series': same mask without building a boolean Series
    bad = np.asarray(col.array.isna(), dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        bad = bad | ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
    return bad


def _missing(col: pd.Series, dtype=None) -> tuple[int, np.ndarray | None]:
    """``(count, mask)`` of the missing or non-finite entries of a column, the mask None
    when there are none: :func:`missing_mask`'s rule, without a mask to count, combine
    and invert for the complete columns of most data (numpy integers and booleans cannot
    be missing; complete categoricals and floats are told by one reduction). ``dtype`` is
    ``col.dtype`` when the caller has it."""
    if dtype is None:
        dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return 0, None
    if isinstance(dtype, pd.CategoricalDtype):
        mask = col.array.codes < 0
    elif isinstance(dtype, np.dtype) and dtype.kind == "f":
        finite = np.isfinite(col.to_numpy())
        if finite.all():
            return 0, None
        mask = ~finite
    else:
        mask = missing_mask(col)
    return (int(np.count_nonzero(mask)), mask) if mask.any() else (0, None)


def _missing_values(col: pd.Series, values, dtype) -> tuple[int, np.ndarray | None]:
    """:func:`_missing` of a column whose values (``values``: a numpy array or
    ``pandas.Categorical``) and dtype the caller holds: a complete float or categorical
    column is told by one reduction of its values, without the Series' accessors (~1 us
    each); other dtypes go to :func:`_missing`."""
    if isinstance(dtype, np.dtype):
        kind = dtype.kind
        if kind in "iub":
            return 0, None
        if kind == "f" and isinstance(values, np.ndarray):
            finite = np.isfinite(values)
            if finite.all():
                return 0, None
            mask = ~finite
            return int(np.count_nonzero(mask)), mask
    elif isinstance(dtype, pd.CategoricalDtype) and isinstance(values, pd.Categorical):
        codes = values.codes
        if np.minimum.reduce(codes) >= 0:    # (codes are -1 where missing; n > 0 rows)
            return 0, None
        mask = codes < 0
        return int(np.count_nonzero(mask)), mask
    return _missing(col, dtype)


def _check_no_dates(dtypes: dict, columns: dict[str, str]) -> None:
    """Dates and durations are fine as grouping factors but not as numbers in a formula;
    complex numbers are not numbers a model can use either (``dtypes``: the columns'
    dtypes by name)."""
    for name, role in columns.items():
        if role.startswith("grouping factor"):
            continue
        dtype = dtypes[name]
        if (isinstance(dtype, np.dtype) and dtype.kind in "biufO") or \
                isinstance(dtype, pd.CategoricalDtype):
            # numbers, booleans, objects, factors (a categorical of dates is a factor):
            # no dates, without pandas' dtype tests (~1-3 us a column)
            continue
        if isinstance(dtype, np.dtype) and dtype.kind == "c":
            # numpy would drop the imaginary parts on the way to float with a ComplexWarning
            raise DataError(
                f"column {name!r} used in the {role} holds complex numbers (dtype {dtype}); "
                f"a model needs real numbers: take the real part (data[{name!r}].to_numpy()"
                ".real) or the modulus (np.abs) first"
            )
        if pd.api.types.is_datetime64_any_dtype(dtype) or \
                pd.api.types.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            raise DataError(
                f"column {name!r} used in the {role} holds dates or durations (dtype {dtype}); "
                "convert it to numbers first, e.g. days since the first date: "
                f"(data[{name!r}] - data[{name!r}].min()).dt.days"
            )


def _has_unused_categories(col: pd.Series, complete: bool = False, dtype=None) -> bool:
    """Whether a categorical column leaves a category unobserved (``complete``: the
    caller knows that no value is missing, so no code is -1; ``dtype``: ``col.dtype``
    when the caller has it)."""
    codes = col.array.codes  # Categorical.codes: no accessor/Series overhead
    if not complete:
        codes = codes[codes >= 0]
    return _unobserved(codes, len((col.dtype if dtype is None else dtype).categories))


def _unobserved(codes: np.ndarray, k: int) -> bool:
    """Whether the codes ``codes`` (none missing) of ``k`` categories leave one out."""
    return bool(k) and not np.bincount(codes, minlength=k).all()


def as_data_frame(data, what: str = "data") -> pd.DataFrame:
    """The caller's data as a pandas DataFrame (see :mod:`.adapter`: pandas as it is, dicts,
    polars, pyarrow and other narwhals tables converted); never copied for pandas."""
    frame = as_pandas(data, what)
    if len(frame) == 0:
        raise DataError(f"{what} has no rows")
    return frame


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
        arrays), keyed by the name used in reports; rows where they are missing or
        non-finite are dropped too.
    """
    data = as_data_frame(data)
    info = _column_index_info(data)
    present = info.names
    missing = [c for c in columns if c not in present]
    if missing:
        raise _missing_column_error(missing, data, columns)
    if not data.columns.is_unique:
        duplicated = [c for c in columns if np.sum(data.columns == c) > 1]
        if duplicated:
            raise DataError(
                f"data has more than one column named {', '.join(map(repr, duplicated))}; "
                "rename them so the formula is unambiguous"
            )
    # positions, not get_indexer: unused columns may share a name (the model's are unique);
    # of a unique index, those kept for it (get_loc's answers)
    positions = column_positions(data, columns)
    # one view of the row index for the columns and the snapshot below (pandas makes one
    # per column and one per copy)
    row_index = data.index.view()
    # each dtype read once, off the values (a Series' dtype is three properties deep)
    dtypes: dict = {}
    arrays: dict = {}
    series = columns_at(data, columns, positions, row_index, dtypes, arrays)
    _check_no_dates(dtypes, columns)
    n_rows = len(data)
    by_column = {}
    masks = []       # the masks of the columns with missing values (most data: none)
    # whether a complete categorical leaves a category unobserved, told from the codes
    # read here for the missing values (None: a categorical not told here)
    unused: bool | None = False
    for name in columns:
        values, dtype = arrays[name], dtypes[name]
        if isinstance(dtype, pd.CategoricalDtype):
            if isinstance(values, pd.Categorical):
                codes = values.codes
                if np.minimum.reduce(codes) >= 0:      # complete (-1 marks missing)
                    by_column[name] = 0
                    if unused is False and _unobserved(codes, len(dtype.categories)):
                        unused = True
                    continue
            else:                  # pragma: no cover - other pandas internals
                unused = None
        by_column[name], col_bad = _missing_values(series[name], values, dtype)
        if col_bad is not None:
            masks.append(col_bad)
    for name, values in (extra or {}).items():
        arr = np.asarray(values, dtype=float)
        if arr.shape != (n_rows,):
            raise DataError(
                f"{name} has {arr.size} values but data has {n_rows} rows; pass one "
                "value per row"
            )
        col_bad = ~np.isfinite(arr)
        by_column[name] = by_column.get(name, 0) + int(np.count_nonzero(col_bad))
        masks.append(col_bad)
    bad = np.logical_or.reduce(masks) if masks else np.zeros(n_rows, dtype=bool)
    n_bad = int(np.count_nonzero(bad)) if masks else 0
    # no boolean indexing of the index when nothing is dropped (the common case)
    dropped = DroppedRows(n_rows, n_bad, by_column,
                          data.index[bad] if n_bad else _no_labels(data.index))
    if dropped.n_dropped == n_rows:
        raise DataError(
            f"all {n_rows} rows have a missing or non-finite value in a column the model "
            f"uses ({', '.join(f'{c}: {k}' for c, k in by_column.items() if k)}); nothing "
            "is left to fit"
        )
    if dropped.n_dropped:
        warnings.warn(str(dropped), DroppedRowsWarning, stacklevel=user_stacklevel())
    if unused is None:             # pragma: no cover - other pandas internals
        unused = bool(not n_bad and _unused_categories(series, complete=True, dtypes=dtypes))
    if LIGHT_FRAME and not n_bad and data.columns.is_unique and not unused:
        # Every row kept, no category to drop: the model frame is the caller's columns,
        # those of another dtype spelling converted (dtypes.py). The columns are read
        # through a frame over all of the caller's columns (a shallow, copy-on-write
        # snapshot), whose column index shares the caller's lookup table: a selection of
        # columns has a new index, whose first lookup builds a new table (~0.1 ms with
        # text labels) -- and the selection itself costs ~0.1-0.3 ms. The Design's frame
        # (the model's columns only) is selected from the snapshot when first read.
        changed = normalized_columns(data, columns, dtypes, series)
        if changed:
            base = data.copy(deep=False)
            for name, values in changed.items():
                base[name] = values            # (an existing column: the index is kept)
            snapshot = ColumnFrame.wrap(base, {**series, **changed})
        else:
            snapshot = ColumnFrame.wrap(data, series, row_index)
        return ModelFrame(frame=snapshot, dropped=dropped, mask=~bad,
                          selection=ColumnSelection(snapshot, positions))
    # A new frame object over the caller's columns; nothing is ever written into it in place
    # (subset_rows and _drop_unused make new frames), so the caller's data stays untouched.
    if len(positions) == len(data.columns) and positions == tuple(range(len(positions))):
        # the data's own columns in order (compared by position: listing a text column
        # index boxes every name)
        frame = data.copy(deep=False)  # ~10 us instead of ~150 us for a column selection
    else:
        frame = data.take(list(positions), axis=1)
    before = frame
    frame = subset_rows(frame, ~bad) if dropped.n_dropped else _drop_unused(frame, series)
    unchanged = frame is before
    # with no row dropped the caller's columns are the frame's (normalization reads only
    # non-categorical ones, which _drop_unused leaves alone)
    normalized = normalize_frame(frame, columns, dtypes, None if dropped.n_dropped else series)
    # when no row, category or dtype changed, the columns looked up above are the frame's
    seed = series if unchanged and normalized is frame else {}
    # normalized is a new frame object (a copy, a selection or a subset), never the caller's
    return ModelFrame(frame=ColumnFrame.wrap(normalized, seed), dropped=dropped, mask=~bad,
                      plain=normalized)


def shallow_manager(mgr, index: pd.Index | None = None):
    """``mgr.copy(deep=False)``: the same blocks, each a copy-on-write reference to its
    values (a write into either side copies first), and views of the axes -- built as
    pandas builds it, without its generic ``apply`` dispatch (~40% of the copy of a small
    frame, which every fit makes: :meth:`ColumnFrame.wrap`). ``index``: a view of the
    row index already made (shared with the columns of :func:`columns_at`). pandas' own
    copy is the fallback should its internals change."""
    try:
        rows = mgr.axes[1].view() if index is None else index
        new = type(mgr)(tuple(b.copy(deep=False) for b in mgr.blocks),
                        [mgr.axes[0].view(), rows], verify_integrity=False)
        blknos = mgr._blknos
        if blknos is not None:           # (kept, as pandas' copy keeps them)
            new._blknos = blknos.copy()
            new._blklocs = mgr._blklocs.copy()
        return new
    except Exception:              # pragma: no cover - other pandas internals
        return mgr.copy(deep=False)


class ColumnSelection:
    """The model's columns of a frame, selected when first asked for.

    Holds a :class:`ColumnFrame` over all of the caller's columns (a copy-on-write
    snapshot: later changes to the caller's data do not reach it) and the positions of the
    model's columns in it; :meth:`resolve` makes the selection once -- the model frame
    :func:`build_model_frame` would otherwise have made eagerly, the same columns in the
    same order. Pickles as the selected frame.
    """

    __slots__ = ("_frame", "positions", "source")

    def __init__(self, source: ColumnFrame, positions: tuple[int, ...]):
        self.source, self.positions = source, positions
        self._frame = None

    def resolve(self) -> pd.DataFrame:
        """The plain DataFrame of the model's columns (made on the first call).

        Returns
        -------
        pandas.DataFrame
        """
        if self._frame is None:
            src, pos = self.source, self.positions
            if len(pos) == len(src.columns) and pos == tuple(range(len(pos))):
                self._frame = src.plain()
            else:
                self._frame = src.take(list(pos), axis=1)     # (a plain DataFrame)
        return self._frame

    def __reduce__(self):
        return (_identity, (self.resolve(),))


def _identity(value):
    return value


def model_columns_frame(frame: pd.DataFrame, selection: ColumnSelection | None
                        ) -> pd.DataFrame:
    """``frame`` restricted to the model's columns: the selection's frame as a
    :class:`ColumnFrame` when ``frame`` is the snapshot over all of the caller's columns
    (before rows are dropped from it), else ``frame`` itself."""
    if selection is not None and frame is selection.source:
        return ColumnFrame.wrap(selection.resolve())
    return frame


class ColumnFrame(pd.DataFrame):
    """A model frame that keeps the columns it hands out by name.

    Every later step of :func:`~mixedmodels.design.materialize` reads the model's columns
    by name (the response, the fixed-effects builder, each random-effects term and its
    grouping factor, formulaic for transforms), and with pandas' copy-on-write a lookup
    builds a new Series each time (~35 us apiece with text column labels: a quarter of
    sleepstudy's design). Here the first lookup of a name is kept and returned again.
    Assigning or deleting a column clears what is kept, but a write into a column's values
    (``.loc``) would not: the package writes nothing into a model frame, and the
    :class:`Design`'s ``frame`` is a plain DataFrame (:meth:`plain`, or the selection of a
    :class:`ColumnSelection`); the design keeps this frame only for reading columns by name
    (``Design.lookup_frame``). Frames derived from it (copies, row subsets, ``assign``)
    are plain DataFrames.
    """

    _columns_memo: dict | None = None
    _internal_names: ClassVar[list] = [*pd.DataFrame._internal_names, "_columns_memo"]
    _internal_names_set: ClassVar[set] = set(_internal_names)

    @classmethod
    def wrap(cls, frame: pd.DataFrame, seed: dict | None = None,
             index: pd.Index | None = None) -> ColumnFrame:
        """``frame``'s data (not copied) as a :class:`ColumnFrame`; ``seed`` are columns of
        it already looked up (name -> Series), ``index`` the view of its row index they
        share, if any. (pandas' own ``_from_mgr``, as a shallow ``copy`` does it: the
        public constructor costs ~50 us, four column lookups' worth.)"""
        mgr = shallow_manager(frame._mgr, index)
        out = cls._from_mgr(mgr, axes=mgr.axes)
        object.__setattr__(out, "_columns_memo", dict(seed or {}))
        return out

    def plain(self) -> pd.DataFrame:
        """The same data (not copied) as a plain DataFrame, keeping nothing."""
        mgr = shallow_manager(self._mgr)
        return pd.DataFrame._from_mgr(mgr, axes=mgr.axes)

    @property
    def _constructor(self):
        return pd.DataFrame

    def _constructor_from_mgr(self, mgr, axes):
        return pd.DataFrame._from_mgr(mgr, axes=axes)

    def _constructor_sliced_from_mgr(self, mgr, axes):
        ser = pd.Series._from_mgr(mgr, axes)
        object.__setattr__(ser, "_name", None)     # (the caller sets the real name)
        return ser

    def __getitem__(self, key):
        if not isinstance(key, str):
            return super().__getitem__(key)
        memo = self._columns_memo
        if memo is None:
            memo = {}
            object.__setattr__(self, "_columns_memo", memo)
        col = memo.get(key)
        if col is None:
            col = super().__getitem__(key)
            if isinstance(col, pd.Series):        # (a repeated name gives a frame)
                memo[key] = col
        return col

    def __setitem__(self, key, value) -> None:
        if self._columns_memo:
            self._columns_memo.clear()
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        if self._columns_memo:
            self._columns_memo.clear()
        super().__delitem__(key)


def _unused_categories(series: dict, complete: bool = False, dtypes: dict | None = None
                       ) -> list:
    """Names of the categorical columns among ``series`` with unobserved categories
    (``complete``: no value of them is missing; ``dtypes``: the columns' dtypes by name,
    when the caller has them)."""
    if dtypes is None:
        dtypes = {name: col.dtype for name, col in series.items()}
    return [name for name, col in series.items()
            if isinstance(dtypes[name], pd.CategoricalDtype)
            and _has_unused_categories(col, complete, dtypes[name])]


def _drop_unused(frame: pd.DataFrame, series: dict | None = None) -> pd.DataFrame:
    """``frame`` with unobserved categories removed (a new frame only when needed);
    ``series`` are its columns when the caller already has them."""
    series = {name: frame[name] for name in frame.columns} if series is None else series
    unused = _unused_categories(series)
    if unused:
        frame = frame.copy()
        for name in unused:
            frame[name] = frame[name].cat.remove_unused_categories()
    return frame


def subset_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Rows ``keep`` of a model frame, with categories no longer observed removed (as R's
    model frame drops unused levels, so they get no coefficient and no random effect)."""
    return _drop_unused(frame.loc[keep])


def drop_more_rows(dropped: DroppedRows, frame: pd.DataFrame, bad: np.ndarray,
                   reasons: dict[str, int], what: str) -> tuple[pd.DataFrame, DroppedRows]:
    """Drop rows ``bad`` of the model frame for ``reasons`` (label -> count), warn with the
    count, and return the smaller frame and the updated report.

    Raises
    ------
    DataError
        When no row would be left.
    """
    n_bad = int(bad.sum())
    detail = ", ".join(f"{k!r}: {v}" for k, v in reasons.items() if v)
    detail = "" if list(reasons) == [what] else f" ({detail})"
    if n_bad == len(frame):
        raise DataError(f"all {len(frame)} remaining rows have {what}{detail}; nothing is "
                        "left to fit")
    warnings.warn(f"{n_bad} of {dropped.n_total} rows dropped: {what}{detail}",
                  DroppedRowsWarning, stacklevel=user_stacklevel())
    by_column = dict(dropped.by_column)
    for k, v in reasons.items():
        by_column[k] = by_column.get(k, 0) + v
    report = DroppedRows(dropped.n_total, dropped.n_dropped + n_bad, by_column,
                         dropped.labels.append(frame.index[bad]))
    return subset_rows(frame, ~bad), report

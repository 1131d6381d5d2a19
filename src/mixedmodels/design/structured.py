r"""The data side of structured covariance terms: positions, known matrices, time columns.

* **Positions** -- ``exp(0 + pos(x, y) | g)``, ``ou(0 + pos(t) | id)``: the term gets one
  indicator column per distinct position (ordered as glmmTMB's ``numFactor`` levels: by
  the last coordinate, then the ones before), and the structure the coordinates of its
  columns. Two readings of the grouping factor, as the data decide:

  - levels that visit several positions (subjects observed at several times) are
    independent replicates of one process over all positions -- glmmTMB's
    ``ou(times + 0 | id)``;
  - levels that each sit at a single position (an observation-level factor, sites with
    fixed coordinates) are the process's units: one process over every position, which
    correlates the levels with each other -- glmmTMB's ``exp(pos + 0 | group)`` with a
    one-level ``group``, the GLMM FAQ's spatial model ``eta ~ MVN(a + bx, Sigma)``.

* **Known matrices** -- ``propto(0 + sp | g, K)``, ``propto(1 | species, K)`` with
  ``covariance_matrices={"K": K}``: ``K`` is matched by its row and column names (a
  DataFrame's index and columns) to the term's columns (the levels of ``sp``: glmmTMB's
  form, one block per level of ``g``) or, for a one-column term, to the levels of the
  grouping factor: then the covariance spans the levels (``Cov(b_species) = lambda K``,
  not block-diagonal by level), held as one block over the levels. ``K`` must be finite,
  symmetric and positive semi-definite.

* **Time columns** of ``ar1``/``hetar1`` (``0 + factor(time)``) and ``ou``: each row must
  fall in exactly one column, and within a group no two rows may share a time.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError

__all__ = [
    "KNOWN_MATRIX_TOL",
    "TIME_KEYWORDS",
    "PositionColumns",
    "check_time_columns",
    "known_matrix",
    "parse_positions",
    "position_columns",
]

#: Relative asymmetry and negative eigenvalue (against the largest) tolerated in a known
#: matrix (rounding in a matrix computed elsewhere and read back from text).
KNOWN_MATRIX_TOL = 1e-8
#: Structures whose columns are times in order, one observation per time within a group.
TIME_KEYWORDS = frozenset({"ar1", "hetar1", "ou"})

_POS = re.compile(r"^\s*(?:(?:0|-\s*1)\s*\+\s*)?pos\s*\(([^()]*)\)\s*(?:(?:\+\s*0|-\s*1)\s*)?$")


def parse_positions(expr: str, source: str) -> list[str] | None:
    """The coordinate columns of ``0 + pos(x, y)`` (None when the term has no ``pos``)."""
    if "pos" not in expr or not re.search(r"(?<![\w.])pos\s*\(", expr):
        return None
    m = _POS.match(expr)
    if m is None:
        raise FormulaError(
            f"random-effects term {source!r}: pos() must be the whole term, as in "
            "exp(0 + pos(x, y) | g) (one column per distinct position, no intercept)")
    names = [v.strip().strip("`") for v in m.group(1).split(",")]
    if not names or any(not v for v in names):
        raise FormulaError(f"random-effects term {source!r}: pos() needs the coordinate "
                           "columns, e.g. pos(x, y) or pos(time)")
    return names


def _label(values) -> str:
    return "(" + ",".join(f"{v:g}" for v in values) + ")"


class PositionColumns:
    """Distinct positions of the rows and the term's indicator columns.

    Attributes
    ----------
    coordinates : ndarray (p, dim)
        The distinct positions, in glmmTMB's order.
    index : ndarray (n,)
        Column of each row.
    names : tuple of str
        ``"(x,y)"`` labels of the columns.
    """

    def __init__(self, columns: list[str], frame: pd.DataFrame, source: str):
        values = []
        for c in columns:
            if c not in frame.columns:
                raise DataError(f"pos() in {source!r} names {c!r}, which is not a column of "
                                "the data")
            col = frame[c]
            if not (pd.api.types.is_numeric_dtype(col.dtype)
                    and not pd.api.types.is_bool_dtype(col.dtype)):
                raise DataError(
                    f"pos() in {source!r}: coordinate column {c!r} is not numeric (dtype "
                    f"{col.dtype}); positions must be numbers -- convert it, e.g. "
                    f"data[{c!r}] = pd.to_numeric(data[{c!r}])")
            v = np.asarray(col, dtype=float)
            if not np.isfinite(v).all():
                raise DataError(f"pos() in {source!r}: coordinate column {c!r} has "
                                f"{int(np.sum(~np.isfinite(v)))} missing or infinite values")
            values.append(v)
        X = np.column_stack(values)
        # glmmTMB's numFactor order: sorted by the last coordinate, ties by the ones before
        uniq, index = np.unique(X[:, ::-1], axis=0, return_inverse=True)
        self.columns = tuple(columns)
        self.coordinates = uniq[:, ::-1]
        self.index = index.ravel().astype(np.int64)
        self.names = tuple(_label(r) for r in self.coordinates)

    @property
    def p(self) -> int:
        return self.coordinates.shape[0]

    def indicators(self, index: np.ndarray) -> np.ndarray:
        """Indicator matrix (n, p) of column indices (-1: no column, a row of zeros)."""
        Z = np.zeros((index.shape[0], self.p))
        ok = index >= 0
        Z[np.flatnonzero(ok), index[ok]] = 1.0
        return Z

    def code_new(self, frame: pd.DataFrame) -> np.ndarray:
        """Column of each row of new data; -1 for positions the fit did not see."""
        X = np.column_stack([np.asarray(frame[c], dtype=float) for c in self.columns])
        keys = {tuple(r): k for k, r in enumerate(self.coordinates)}
        return np.array([keys.get(tuple(r), -1) for r in X], dtype=np.int64)


def position_columns(columns: list[str], frame: pd.DataFrame, source: str) -> PositionColumns:
    """Build the position columns of a ``pos()`` term (see :class:`PositionColumns`)."""
    return PositionColumns(columns, frame, source)


def single_position_levels(codes: np.ndarray, index: np.ndarray, nlevels: int) -> bool:
    """Whether every level of the grouping factor sits at one position."""
    first = np.full(nlevels, -1, dtype=np.int64)
    first[codes[::-1]] = index[::-1]
    return bool(np.all(first[codes] == index))


def _labels(index: pd.Index) -> list[str]:
    """An index's labels as strings; through ``tolist`` because iterating a pandas string
    (Arrow-backed) Index boxes one scalar at a time (~4 us per label: 120 us for a 30 x 30
    known matrix's names, half a small propto fit's set-up)."""
    return [str(v) for v in index.tolist()]


def _names_of(K, where: str):
    if isinstance(K, pd.DataFrame):
        rows = _labels(K.index)
        cols = _labels(K.columns)
        if rows != cols:
            if sorted(rows) == sorted(cols):
                return K.loc[K.columns, K.columns].to_numpy(dtype=float), cols
            raise DataError(f"{where}: the row and column names of the known matrix differ "
                            f"(rows {rows[:4]}..., columns {cols[:4]}...)")
        # to_numpy, not np.asarray: the latter goes through __array__ (22 us vs 1 us).
        return K.to_numpy(dtype=float), cols
    try:
        return np.asarray(K, dtype=float), None
    except (TypeError, ValueError):
        raise DataError(f"{where}: the known matrix must be a numeric array or DataFrame, "
                        f"got {type(K).__name__}") from None


def _check_psd(K: np.ndarray, where: str) -> None:
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise DataError(f"{where}: the known matrix must be square, got shape {K.shape}")
    if not np.isfinite(K).all():
        raise DataError(f"{where}: the known matrix has {int(np.sum(~np.isfinite(K)))} "
                        "missing or infinite entries")
    scale = max(float(np.max(np.abs(K))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(K - K.T))) / scale
    if asym > KNOWN_MATRIX_TOL:
        i, j = np.unravel_index(int(np.argmax(np.abs(K - K.T))), K.shape)
        raise DataError(f"{where}: the known matrix is not symmetric (entry [{i}, {j}] = "
                        f"{K[i, j]:.6g} but [{j}, {i}] = {K[j, i]:.6g}); a covariance "
                        "matrix must be symmetric")
    low = float(np.linalg.eigvalsh(0.5 * (K + K.T)).min())
    if low < -KNOWN_MATRIX_TOL * scale * K.shape[0]:
        raise DataError(f"{where}: the known matrix is not positive semi-definite (smallest "
                        f"eigenvalue {low:.4g}); a covariance matrix has no negative "
                        "eigenvalues")


def _column_keys(names: tuple[str, ...]) -> list[set[str]]:
    """Labels a known matrix may use for each term column: the column name, the level in
    formulaic's brackets (``sp[a]`` -> ``a``), and R's spelling (``spa``)."""
    out = []
    for n in names:
        keys = {n}
        m = re.match(r"^(.*)\[(.*)\]$", n)
        if m:
            keys |= {m.group(2), re.sub(r"^C\((.*)\)$", r"\1", m.group(1)) + m.group(2)}
        out.append(keys)
    return out


def _order_by_names(K, names, labels: list[set[str]], what: str, where: str):
    """K reordered (and subset) to the term's ``labels`` by its names."""
    pos = {nm: k for k, nm in enumerate(names)}
    idx, missing = [], []
    for keys, shown in zip(labels, what, strict=True):
        hit = [pos[k] for k in keys if k in pos]
        if not hit:
            missing.append(shown)
        else:
            idx.append(hit[0])
    if missing:
        return None, missing
    idx = np.asarray(idx)
    return K[np.ix_(idx, idx)], []


def known_matrix(key: str, matrices, term_names: tuple[str, ...], levels: pd.Index | None,
                 where: str) -> tuple[np.ndarray, bool]:
    """The known matrix ``key`` ordered as the term's columns, or -- for a one-column term
    -- as the grouping factor's levels (then ``spans = True``).

    Returns
    -------
    (K, spans)

    Raises
    ------
    DataError
        Matrix missing from ``covariance_matrices``, not square, symmetric or positive
        semi-definite, or with names that match neither the columns nor the levels.
    """
    where = f"{where!r} (covariance_matrices[{key!r}])"
    if not matrices or key not in matrices:
        have = ", ".join(repr(k) for k in (matrices or {})) or "none"
        raise DataError(f"{where}: no known matrix named {key!r}; pass it as "
                        f"covariance_matrices={{{key!r}: K}} (given: {have})")
    K, names = _names_of(matrices[key], where)
    _check_psd(K, where)
    p = len(term_names)
    if names is None:
        if K.shape[0] == p and (p > 1 or levels is None or len(levels) != p):
            return K, False
        if p == 1 and levels is not None and K.shape[0] == len(levels):
            return K, True
        lv = "" if levels is None else f" or the {len(levels)} levels of the grouping factor"
        raise DataError(f"{where}: the known matrix is {K.shape[0]} x {K.shape[1]}; it must "
                        f"match the term's {p} columns{lv} (give it as a DataFrame with "
                        "names to match them by name)")
    ordered, missing = _order_by_names(K, names, _column_keys(term_names), term_names, where)
    if ordered is not None:
        return ordered, False
    if p == 1 and levels is not None:
        lv = _labels(levels)
        spanned, miss_lv = _order_by_names(K, names, [{v} for v in lv], lv, where)
        if spanned is not None:
            return spanned, True
        raise DataError(f"{where}: the names of the known matrix do not match the levels of "
                        f"the grouping factor; levels without a row: {miss_lv[:5]}"
                        f"{' ...' if len(miss_lv) > 5 else ''}")
    raise DataError(f"{where}: the names of the known matrix do not match the term's "
                    f"columns; columns without a row: {missing[:5]}"
                    f"{' ...' if len(missing) > 5 else ''} (matrix names: {names[:5]}...)")


#: Median rows per observed group/time pair of an ``ar1``/``ou`` term from which repeated
#: pairs are read as replicates (glmmTMB's model) rather than as a time entered twice.
REPLICATED_TIMES_MEDIAN = 2


def check_time_columns(keyword: str, Z: np.ndarray, codes: np.ndarray, levels: pd.Index,
                       names: tuple[str, ...], source: str, frame_index) -> None:
    """``ar1``/``ou`` columns: one time per row, and no time repeated within a group of
    data that otherwise has one row per group and time.

    Replicated designs -- most group/time pairs observed on several rows -- are glmmTMB's
    model with rows at one time sharing the group's effect there (its objective is ours on
    such data, tests/test_everystruct_matrix.py). Where the typical pair has one row
    (:data:`REPLICATED_TIMES_MEDIAN`), a repeated pair is a data error (a time typed twice,
    rows not aggregated): refused with the group, the time and the rows.
    """
    if keyword not in TIME_KEYWORDS:
        return
    ones = (Z == 1.0).sum(axis=1)
    if not (np.all((Z == 0.0) | (Z == 1.0)) and np.all(ones == 1)):
        raise FormulaError(
            f"{keyword}() in {source!r} needs one column per time, each row in exactly one: "
            f"write {keyword}(0 + factor(time) | g)" if keyword != "ou" else
            f"ou() in {source!r} needs pos(time): ou(0 + pos(time) | g)")
    col = np.argmax(Z, axis=1)
    key = codes.astype(np.int64) * Z.shape[1] + col
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    if np.all(counts == 1) or np.median(counts) >= REPLICATED_TIMES_MEDIAN:
        return
    k = int(np.argmax(counts > 1))
    rows = np.flatnonzero(key == uniq[k])
    shown = ", ".join(str(frame_index[r]) for r in rows[:5])
    raise DataError(
        f"{keyword}() in {source!r}: time {names[col[first[k]]]!r} appears {counts[k]} times "
        f"in group {levels[codes[first[k]]]!r} (rows {shown}), where most group/time pairs "
        f"have one row ({int(np.sum(counts > 1))} of {counts.size} pairs are repeated); "
        "an autoregressive process has one value per time and group -- aggregate the "
        "repeated rows or give each a distinct time (replicated designs, with most pairs "
        "on several rows, are fitted with the rows of a pair sharing its effect)")

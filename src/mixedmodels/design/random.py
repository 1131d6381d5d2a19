"""Random-effects terms materialized on data: grouping codes and the per-term model matrix.

A term ``(expr | group)`` becomes integer level codes (n,) for the grouping factor and a dense
n x p model matrix ``Z_k`` for ``expr``. The full sparse ``Z`` of the mixed model is never
needed explicitly: row i of ``Z`` has ``Z_k[i]`` in the columns of level ``codes[i]`` of each
term. Levels keep R's order: categorical categories as given (unused ones dropped), sorted
values otherwise, and for an interaction ``a:b`` the observed combinations in lexicographic
order of (a, b) -- R's ``a:b`` factor.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError, plain_message
from ..covariance import REGISTRY, CovarianceStructure, StructureData, make_structure
from ..formula.spec import RandomTerm
from .fast import LazyModelSpec, fast_matrix, indicator_matrix
from .fixed import new_model_matrix, unique_names
from .identity_cache import IdentityCache
from .materializer import build_matrix
from .names import r_coefficient_names, shown_names, simple_r_names
from .simple import simple_matrix
from .structured import (
    check_time_columns,
    known_matrix,
    parse_positions,
    position_columns,
    single_position_levels,
)

__all__ = [
    "GroupingFactor",
    "LevelCoder",
    "PositionCoder",
    "RandomEffectsTerm",
    "SingleGroup",
    "build_grouping",
    "build_random_term",
    "grouping_codes",
    "level_text",
    "term_order",
]

#: formulaic's name of an indicator column of ``0 + C(f)`` (:func:`.fast.indicator_matrix`)
_INDICATOR_NAME = re.compile(r"^C\((\w+)\)\[(.*)\]$")

@dataclass(frozen=True)
class GroupingFactor:
    """Integer codes of a (possibly interacted) grouping factor and its level labels.

    Attributes
    ----------
    name : str
        ``"Subject"`` or ``"cask:batch"``.
    codes : ndarray of int64 (n,)
        Level of each row.
    levels : pandas.Index
        Level labels (unique): the variable's labels, or for an interaction the parts joined
        by ``:`` -- with parts that themselves contain ``:`` put in parentheses when plain
        joining would give two combinations one label (``('1:2', '3')`` and
        ``('1', '2:3')``).
    var_levels : tuple of pandas.Index
        Per variable, the labels of its own levels (to code new data the same way).
    steps : tuple of ndarray
        For an interaction, the sorted combination keys observed after each variable is
        added (``key = code_so_far * n_levels(next variable) + code(next variable)``): new
        data is coded by the same steps, never by comparing joined labels.
    """

    name: str
    codes: np.ndarray
    levels: pd.Index
    var_levels: tuple[pd.Index, ...]
    steps: tuple[np.ndarray, ...] = ()

    @functools.cached_property
    def nlevels(self) -> int:
        # cached: hot loops read a term's q and levels, and the length of a pandas Index
        # of labels costs a few microseconds a call
        return len(self.levels)

    def code_new(self, frame: pd.DataFrame, variables: tuple[str, ...]) -> np.ndarray:
        """Codes for new data; -1 for combinations not seen in the fit and for missing
        values (lme4 treats both as new levels)."""
        parts = []
        for v, lev in zip(variables, self.var_levels, strict=True):
            text = level_text(frame[v])  # None where missing
            missing = pd.isna(text)
            part = np.asarray(lev.get_indexer(pd.Index(np.where(missing, "", text))),
                              dtype=np.int64)
            part[missing] = -1
            parts.append(part)
        codes = np.asarray(parts[0], dtype=np.int64)
        bad = codes < 0
        for c, lev, uniq in zip(parts[1:], self.var_levels[1:], self.steps, strict=True):
            bad |= c < 0
            key = np.where(bad, -1, codes * len(lev) + c)
            pos = np.clip(np.searchsorted(uniq, key), 0, max(len(uniq) - 1, 0))
            found = (uniq[pos] == key) if len(uniq) else np.zeros(len(key), dtype=bool)
            bad |= ~found
            codes = pos
        return np.where(bad, -1, codes).astype(np.int64)


@dataclass(frozen=True)
class SingleGroup(GroupingFactor):
    """One group holding every row: the grouping of a term whose covariance spans the
    levels of its factor (a known matrix over species, a spatial process over sites).
    New data always belongs to the one group."""

    def code_new(self, frame: pd.DataFrame, variables: tuple[str, ...]) -> np.ndarray:
        return np.zeros(len(frame), dtype=np.int64)


def single_group(name: str, n: int) -> SingleGroup:
    """A :class:`SingleGroup` named ``name`` for ``n`` rows."""
    return SingleGroup(name, np.zeros(n, dtype=np.int64), pd.Index(["(all)"]), ())


@dataclass(frozen=True)
class PositionCoder:
    """New-data columns of a ``pos()`` term: indicators of the fitted positions (a position
    the fit did not see gets no column: its random effect is the prior mean, zero)."""

    positions: Any

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return self.positions.indicators(self.positions.code_new(frame))


@dataclass(frozen=True)
class LevelCoder:
    """New-data columns of a term spanning the levels of ``grouping``: indicators of the
    fitted levels (new levels get none)."""

    grouping: GroupingFactor
    variables: tuple[str, ...]
    zcol: str | None = None

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        codes = self.grouping.code_new(frame, self.variables)
        Z = np.zeros((len(frame), self.grouping.nlevels))
        ok = codes >= 0
        Z[np.flatnonzero(ok), codes[ok]] = 1.0
        return Z


def _one_label(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def level_text(values) -> np.ndarray:
    """String labels of grouping (or categorical) values, NA as None.

    A number prints the same whatever its type -- ``308``, ``308.0`` and ``'308'`` are one
    level -- so a grouping column read as float (because it has a missing value) or as text
    in new data still finds the fitted levels. Only the distinct values are formatted.
    """
    col = pd.Series(values) if not isinstance(values, pd.Series) else values
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = _category_text(col.dtype.categories)
        codes = col.array.codes
    else:
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        cats = np.array([_one_label(u) for u in uniques], dtype=object)
    if not len(cats):
        return np.full(len(col), None, dtype=object)
    return np.where(codes >= 0, cats[np.maximum(codes, 0)], None).astype(object)


def _all_text(categories: pd.Index) -> bool:
    """Whether every category is a Python string. A pandas string dtype holds nothing else
    (and categories are never missing), so only other dtypes are looked at value by value
    (``inferred_type`` boxes each pyarrow string: ~2 us a category)."""
    if isinstance(categories.dtype, pd.StringDtype):
        return True
    return pd.api.types.is_string_dtype(categories.dtype) and \
        categories.inferred_type == "string"


def _category_text(categories: pd.Index) -> np.ndarray:
    """Labels of a categorical's categories (the common string case without a round trip).

    Integer categories print as their decimal digits (:func:`_one_label` is ``str`` of
    each): numpy formats them in one pass, where a Python call per level cost crossed_1m's
    20,000 + 2,000 levels ~0.1 s."""
    if _all_text(categories):
        return np.asarray(categories, dtype=object)
    values = np.asarray(categories)
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    return np.array([_one_label(c) for c in categories], dtype=object)


def _merge_equal_labels(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    """Levels whose labels coincide (``3`` and ``'3'``, ``3`` and ``3.0`` in one object
    column) become one level, at the position of its first occurrence."""
    uniq, first, inverse = np.unique(labels.astype(str), return_index=True,
                                     return_inverse=True)
    if len(uniq) == len(labels):
        return codes, pd.Index(labels)
    order = np.argsort(first, kind="stable")          # merged levels in first-seen order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse][codes], pd.Index(uniq[order].astype(object))


def _mixed_sort_key(value) -> tuple:
    """Order of the values of a column that mixes numbers and text: numbers first, by value,
    then text, alphabetically (numbers and their text form then share one level)."""
    if isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
        return (0, float(value), "")
    return (1, 0.0, str(value))


@functools.cache
def _text_index_dtype():
    """The dtype pandas gives an Index of Python strings (``str`` in pandas 3)."""
    return pd.Index(["a"]).dtype


def _plain_text_labels(categories: pd.Index) -> bool:
    """Whether a categorical's categories are its level labels as they are: unnamed text
    of pandas' default text dtype."""
    return categories.name is None and categories.dtype == _text_index_dtype() and \
        _all_text(categories)


#: :func:`_plain_text_labels` per categories index (immutable: see :mod:`.identity_cache`;
#: comparing pandas' string dtypes costs ~1 us, and every grouping factor asks).
_TEXT_LABELS = IdentityCache()


def _distinct_category_labels(categories: pd.Index) -> pd.Index | None:
    """The string labels of ``categories`` as an index, or None when two of them print
    alike (those levels merge, which depends on the codes)."""
    labels = _category_text(categories)
    if len(labels) > 1 and len(set(labels)) < len(labels):
        return None
    return pd.Index(labels)


#: :func:`_distinct_category_labels` per categories index (immutable: see
#: :mod:`.identity_cache`; refits of one data frame ask for the same labels every time).
_CATEGORY_LABELS = IdentityCache()


def _as_str_labels(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and string labels of one grouping variable in R's level order: a categorical's
    categories as ordered (unused ones dropped), sorted values otherwise. Values that print
    alike (``3``, ``3.0``, ``'3'``) are one level, as :func:`level_text` codes new data."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = col.array.codes.astype(np.int64)
        categories = dtype.categories
        counts = np.bincount(codes, minlength=len(categories))
        if counts.all():
            if _TEXT_LABELS.get(categories, _plain_text_labels):
                # text categories: they are the labels already (unique, so nothing to
                # merge), without a round trip through an object array
                return codes, categories
            # labels distinct: the labels index depends on the categories alone (~80 us
            # of label text and pandas' string inference per factor)
            labels_index = _CATEGORY_LABELS.get(categories, _distinct_category_labels)
            if labels_index is not None:
                return codes, labels_index
        used = counts > 0
        labels = _category_text(categories)
        if not used.all():
            codes = (np.cumsum(used) - 1)[codes]
            labels = labels[used]
    else:
        try:
            codes, uniques = pd.factorize(col, sort=True)
        except TypeError:  # numbers and text in one object column
            codes, uniques = pd.factorize(col)
            order = sorted(range(len(uniques)), key=lambda i: _mixed_sort_key(uniques[i]))
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            codes, uniques = rank[codes], np.asarray(uniques, dtype=object)[order]
        codes = codes.astype(np.int64)
        labels = np.array([_one_label(u) for u in uniques], dtype=object)  # unique, no NA
    if len(labels) > 1 and len(set(labels)) < len(labels):
        return _merge_equal_labels(codes, np.asarray(labels, dtype=object))
    return codes, pd.Index(labels)


def _joined(parts: list[np.ndarray], bracket: bool) -> np.ndarray:
    if bracket:
        parts = [np.array([f"({p})" if ":" in p else p for p in col], dtype=object)
                 for col in parts]
    out = parts[0]
    for col in parts[1:]:
        out = out + ":" + col
    return out


def build_grouping(name: str, variables: tuple[str, ...], frame: pd.DataFrame) -> GroupingFactor:
    """Code the grouping factor ``name`` (an interaction of ``variables``) on ``frame``.

    For ``a:b`` the levels are the observed combinations, ordered with ``a`` varying slowest
    (R's ``a:b`` factor with unused levels dropped, which lme4 uses). Combinations are
    distinct by their codes, so labels containing ``:`` cannot merge two of them (R's
    ``interaction()`` would).
    """
    codes_list, level_list = zip(*(_as_str_labels(frame[v]) for v in variables), strict=True)
    if len(variables) == 1:
        # one variable: its codes and levels (what _interaction returns for it, without
        # the combination table nothing reads)
        codes, steps, levels = codes_list[0], [], level_list[0]
    else:
        codes, combo, steps = _interaction(codes_list, level_list)
        parts = [np.asarray(lev, dtype=object)[combo[:, k]].astype(str).astype(object)
                 for k, lev in enumerate(level_list)]
        labels = _joined(parts, bracket=False)
        if len(set(labels)) < len(labels):
            labels = _joined(parts, bracket=True)
        levels = pd.Index(labels.astype(str))
    return GroupingFactor(name, np.ascontiguousarray(codes, dtype=np.int64), levels,
                          tuple(level_list), tuple(steps))


def _interaction(codes_list, level_list) -> tuple[np.ndarray, np.ndarray, list]:
    """Codes of the observed combinations of several coded variables (the first varying
    slowest), each combination's code of every variable ``combo`` (one row per
    combination), and the keys of every step (:attr:`GroupingFactor.steps`)."""
    codes = codes_list[0]
    # per observed combination, the code of each variable (columns added step by step)
    combo = np.arange(len(level_list[0]))[:, None]
    steps = []
    for c, lev in zip(codes_list[1:], level_list[1:], strict=True):
        # key < (observed levels so far) * len(lev) <= n^2: no overflow below n ~ 3e9
        key = codes * len(lev) + c
        uniq, codes = np.unique(key, return_inverse=True)
        combo = np.column_stack([combo[uniq // len(lev)], uniq % len(lev)])
        steps.append(uniq)
    return codes, combo, steps


def grouping_codes(variables: tuple[str, ...], frame: pd.DataFrame) -> np.ndarray:
    """:func:`build_grouping`'s codes of the interaction of ``variables``, without its
    level labels: where only the partition of the rows is needed (an R-side correlation's
    groups), joining the labels as text would cost most of the work (BodyWeight's
    ``Diet/Rat``: ~0.3 ms)."""
    codes_list, level_list = zip(*(_as_str_labels(frame[v]) for v in variables), strict=True)
    codes, _, _ = _interaction(codes_list, level_list)
    return np.ascontiguousarray(codes, dtype=np.int64)


@dataclass(frozen=True)
class RandomEffectsTerm:
    """A random-effects term on data.

    Attributes
    ----------
    term : RandomTerm
        The parsed term.
    grouping : GroupingFactor
        Codes (n,) and level labels.
    Z : ndarray (n, p)
        The term's model matrix (columns ``names``).
    names : tuple of str
        Column names of ``Z`` as formulaic spells them (``"Intercept"``, ``"Days"``).
    structure : CovarianceStructure
        Parameterization of the term's covariance.
    model_spec : formulaic ModelSpec, LazyModelSpec or None
        Rebuilds ``Z`` for new data (None for plain numeric columns; built on first use
        for factors coded directly, see :mod:`.fast`).
    coder : callable or None
        Builds ``Z`` for new data where no model spec can (positions, known matrices).
    r_names : tuple of str
        R's names of the columns (``"(Intercept)"``, ``"Days"``, ``"factor(time)0"``,
        ``"phaseb"``), as lme4's and glmmTMB's ``ranef`` and ``VarCorr`` print them (see
        :mod:`.names`); empty when not known.
    """

    term: RandomTerm
    grouping: GroupingFactor
    Z: np.ndarray
    names: tuple[str, ...]
    structure: CovarianceStructure
    model_spec: Any = None
    coder: Any = None
    r_names: tuple[str, ...] = ()

    def labels(self) -> tuple[str, ...]:
        """The columns' names as results present them (``ranef`` columns, ``VarCorr``
        rows): formulaic's, or R's under the option ``coef_names="r"``, as the fixed
        effects (:meth:`~mixedmodels.design.fixed.FixedEffects.labels`).

        Returns
        -------
        tuple of str
        """
        return shown_names(self.names, self.r_names)

    @property
    def structured(self) -> bool:
        """Whether the covariance has fewer free parameters than the columns' variances
        and correlations would (every structure but ``us`` and ``diag``): lme4's checks of
        levels against observations do not apply to it (an AR(1) of one long series, a
        spatial process with one effect per observation are identifiable)."""
        return self.structure.keyword not in ("us", "diag")

    @property
    def group(self) -> str:
        return self.grouping.name

    @property
    def nlevels(self) -> int:
        return self.grouping.nlevels

    @property
    def p(self) -> int:
        return self.Z.shape[1]

    @property
    def q(self) -> int:
        return self.nlevels * self.p

    def new_Z(self, frame: pd.DataFrame) -> np.ndarray:
        """The term's model matrix evaluated on new data."""
        if self.coder is not None:
            return self.coder(frame)
        if self.model_spec is None:
            simple = simple_matrix(self.term.expr, frame)
            if simple is None:
                raise DataError(
                    f"newdata columns of random-effects term {self.term.source!r} must be "
                    "numeric, as in the fit"
                )
            return simple[0]
        return new_model_matrix(self.model_spec, frame)


def term_order(terms) -> list[int]:
    """lme4's order of the terms: decreasing number of levels, stable for ties -- except
    that among terms with as many levels a structured term with more columns goes first
    (lme4 has none; the blocked factorization keeps the first term's per-level blocks
    diagonal, the cheap place for a wide block)."""
    if len(terms) < 2:
        return list(range(len(terms)))     # (one term: no keys to read)
    return sorted(range(len(terms)),
                  key=lambda i: (-terms[i].nlevels, -terms[i].p if terms[i].structured else 0))


def _model_matrix(term: RandomTerm, frame: pd.DataFrame):
    """``(Z, names, formulaic spec or None, R's names)`` of the term's own expression."""
    simple = simple_matrix(term.expr, frame)
    if simple is not None:
        names = simple[1]
        return simple[0], names, None, simple_r_names(names, names[0] == "Intercept")
    indicators = indicator_matrix(term.expr, frame)
    if indicators is not None:
        names = indicators[1]
        # C(f)[level] is R's factor(f)level (R's name of a factor() call's column)
        r_names = tuple(_INDICATOR_NAME.sub(r"factor(\1)\2", n) for n in names)
        return indicators[0], names, LazyModelSpec(term.expr, frame), r_names
    fast = fast_matrix(term.expr, frame)
    if fast is not None:
        return fast.X, fast.names, LazyModelSpec(term.expr, frame), fast.r_names
    try:
        with warnings.catch_warnings():
            # non-finite values are reported per row by materialize()
            warnings.simplefilter("ignore", RuntimeWarning)
            mm = build_matrix(term.expr, frame)
    except Exception as exc:
        raise FormulaError(
            f"cannot build the model matrix of random-effects term {term.source!r}: "
            f"{plain_message(exc)}"
        ) from exc
    names = tuple(str(c) for c in mm.columns)
    return (np.asarray(mm, dtype=float), names, mm.model_spec,
            r_coefficient_names(mm.model_spec, list(names)))


def build_random_term(term: RandomTerm, frame: pd.DataFrame,
                      matrices: dict | None = None,
                      groupings: dict | None = None) -> RandomEffectsTerm:
    """Materialize ``term`` on the complete-case model frame.

    Parameters
    ----------
    term : RandomTerm
    frame : DataFrame
    matrices : dict, optional
        The front doors' ``covariance_matrices`` (known matrices of ``propto`` and
        ``equalto`` terms, by name).
    groupings : dict, optional
        Grouping factors already coded on this ``frame``, by ``(group, variables)``; the
        term's is taken from it or added to it (``(x || g)`` and other terms on one
        factor code it once: ~90 us per term on 2,000 rows).
    """
    key = (term.group, tuple(term.group_vars))
    grouping = None if groupings is None else groupings.get(key)
    if grouping is None:
        grouping = build_grouping(term.group, term.group_vars, frame)
        if groupings is not None:
            groupings[key] = grouping
    entry = REGISTRY[term.structure]
    spec = coder = None
    coords = matrix = None
    r_names: tuple[str, ...] = ()
    positions = parse_positions(term.expr, term.source)
    if positions is not None:
        pos = position_columns(positions, frame, term.source)
        Z, names, coords = pos.indicators(pos.index), pos.names, pos.coordinates
        coder = PositionCoder(pos)
        if grouping.nlevels > 1 and single_position_levels(grouping.codes, pos.index,
                                                           grouping.nlevels):
            # every level sits at one position: the levels are the process's units
            grouping = single_group(term.group, len(frame))
    else:
        Z, names, spec, r_names = _model_matrix(term, frame)
    if Z.shape[1] == 0:
        raise FormulaError(
            f"random-effects term {term.source!r} has no columns: it removes the intercept and "
            "names no variable; write (1 | group) for a random intercept"
        )
    if entry.needs == "matrix":
        key = dict(term.options)["matrix"]
        matrix, spans = known_matrix(key, matrices, tuple(names), grouping.levels,
                                     term.source)
        if spans:
            # Cov(b_level) = lambda K across the levels: one block over all of them
            zcol = Z[:, 0]
            coder = LevelCoder(grouping, term.group_vars)
            Z = np.zeros((len(frame), grouping.nlevels))
            Z[np.arange(len(frame)), grouping.codes] = zcol
            names = tuple(str(v) for v in grouping.levels)
            grouping = single_group(term.group, len(frame))
            spec, r_names = None, ()
    check_time_columns(term.structure, Z, grouping.codes, grouping.levels, tuple(names),
                       term.source, frame.index)
    data = StructureData(tuple(names), coords, matrix, term.source)
    try:
        structure = make_structure(term.structure, Z.shape[1], term.options, data)
    except ValueError as exc:
        raise FormulaError(f"random-effects term {term.source!r}: {exc}") from exc
    return RandomEffectsTerm(term, grouping, np.ascontiguousarray(Z), unique_names(names),
                             structure, spec, coder, tuple(r_names))

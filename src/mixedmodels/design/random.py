"""Random-effects terms materialized on data: grouping codes and the per-term model matrix.

A term ``(expr | group)`` becomes integer level codes (n,) for the grouping factor and a dense
n x p model matrix ``Z_k`` for ``expr``. The full sparse ``Z`` of the mixed model is never
needed explicitly: row i of ``Z`` has ``Z_k[i]`` in the columns of level ``codes[i]`` of each
term. Levels keep R's order: categorical categories as given (unused ones dropped), sorted
values otherwise, and for an interaction ``a:b`` the observed combinations in lexicographic
order of (a, b) -- R's ``a:b`` factor.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError, plain_message
from ..covariance import CovarianceStructure, make_structure
from ..formula.spec import RandomTerm
from .fixed import raise_on_unseen_levels
from .simple import simple_matrix

__all__ = [
    "GroupingFactor",
    "RandomEffectsTerm",
    "build_grouping",
    "build_random_term",
    "level_text",
]

@dataclass(frozen=True)
class GroupingFactor:
    """Integer codes of a (possibly interacted) grouping factor and its level labels."""

    name: str
    codes: np.ndarray
    levels: pd.Index
    #: per variable, the labels of its own levels (to code new data the same way)
    var_levels: tuple[pd.Index, ...]

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def code_new(self, frame: pd.DataFrame, variables: tuple[str, ...]) -> np.ndarray:
        """Codes for new data; -1 for combinations not seen in the fit and for missing
        values (lme4 treats both as new levels)."""
        parts = [level_text(frame[v]) for v in variables]  # None where missing
        missing = np.zeros(len(frame), dtype=bool)
        for p in parts:
            missing |= pd.isna(p)
        out = parts[0].astype(object)
        for p in parts[1:]:
            out = out + ":" + p.astype(object)
        codes = self.levels.get_indexer(pd.Index(np.where(missing, "", out)))
        codes[missing] = -1
        return codes


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


def _category_text(categories: pd.Index) -> np.ndarray:
    """Labels of a categorical's categories (the common string case without a round trip)."""
    if pd.api.types.is_string_dtype(categories.dtype) and categories.inferred_type == "string":
        return np.asarray(categories, dtype=object)
    return np.array([_one_label(c) for c in categories], dtype=object)


def _as_str_labels(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and string labels of one grouping variable in R's level order: a categorical's
    categories as ordered (unused ones dropped), sorted values otherwise."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.array.codes.astype(np.int64)
        labels = _category_text(col.dtype.categories)
        used = np.bincount(codes, minlength=len(labels)) > 0
        if not used.all():
            codes = (np.cumsum(used) - 1)[codes]
            labels = labels[used]
        return codes, pd.Index(labels)
    codes, uniques = pd.factorize(col, sort=True)
    return codes.astype(np.int64), pd.Index(level_text(pd.Series(uniques)))


def build_grouping(name: str, variables: tuple[str, ...], frame: pd.DataFrame) -> GroupingFactor:
    """Code the grouping factor ``name`` (an interaction of ``variables``) on ``frame``.

    For ``a:b`` the levels are the observed combinations, ordered with ``a`` varying slowest
    (R's ``a:b`` factor with unused levels dropped, which lme4 uses).
    """
    codes_list, level_list = zip(*(_as_str_labels(frame[v]) for v in variables), strict=True)
    codes = codes_list[0]
    labels = np.asarray(level_list[0], dtype=object)
    for c, lev in zip(codes_list[1:], level_list[1:], strict=True):
        # key < (observed levels so far) * len(lev) <= n^2: no overflow below n ~ 3e9
        key = codes * len(lev) + c
        uniq, codes = np.unique(key, return_inverse=True)
        labels = labels[uniq // len(lev)] + ":" + np.asarray(lev, dtype=object)[uniq % len(lev)]
    levels = pd.Index(labels.astype(str)) if len(variables) > 1 else level_list[0]
    return GroupingFactor(name, np.ascontiguousarray(codes, dtype=np.int64), levels,
                          tuple(level_list))


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
    model_spec : formulaic ModelSpec or None
        Rebuilds ``Z`` for new data (None for the fast paths).
    """

    term: RandomTerm
    grouping: GroupingFactor
    Z: np.ndarray
    names: tuple[str, ...]
    structure: CovarianceStructure
    model_spec: Any = None

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
        if self.model_spec is None:
            simple = simple_matrix(self.term.expr, frame)
            if simple is None:
                raise DataError(
                    f"newdata columns of random-effects term {self.term.source!r} must be "
                    "numeric, as in the fit"
                )
            return simple[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mm = self.model_spec.get_model_matrix(frame)
        raise_on_unseen_levels(caught)
        return np.asarray(mm.loc[:, list(self.names)], dtype=float)


def build_random_term(term: RandomTerm, frame: pd.DataFrame) -> RandomEffectsTerm:
    """Materialize ``term`` on the complete-case model frame."""
    grouping = build_grouping(term.group, term.group_vars, frame)
    simple = simple_matrix(term.expr, frame)
    spec = None
    if simple is not None:
        Z, names = simple
    else:
        from formulaic import model_matrix

        try:
            with warnings.catch_warnings():
                # non-finite values are reported per row by materialize()
                warnings.simplefilter("ignore", RuntimeWarning)
                mm = model_matrix(term.expr, frame, na_action="ignore")
        except Exception as exc:
            raise FormulaError(
                f"cannot build the model matrix of random-effects term {term.source!r}: "
                f"{plain_message(exc)}"
            ) from exc
        Z = np.asarray(mm, dtype=float)
        names = tuple(str(c) for c in mm.columns)
        spec = mm.model_spec
    if Z.shape[1] == 0:
        raise FormulaError(
            f"random-effects term {term.source!r} has no columns: it removes the intercept and "
            "names no variable; write (1 | group) for a random intercept"
        )
    structure = make_structure(term.structure, Z.shape[1])
    return RandomEffectsTerm(term, grouping, np.ascontiguousarray(Z), names, structure, spec)

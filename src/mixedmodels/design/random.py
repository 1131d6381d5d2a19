"""Random-effects terms materialized on data: grouping codes and the per-term model matrix.

A term ``(expr | group)`` becomes integer level codes (n,) for the grouping factor and a dense
n x p model matrix ``Z_k`` for ``expr``. The full sparse ``Z`` of the mixed model is never
needed explicitly: row i of ``Z`` has ``Z_k[i]`` in the columns of level ``codes[i]`` of each
term. Levels keep R's order: categorical categories as given (unused ones dropped), sorted
values otherwise, and for an interaction ``a:b`` the observed combinations in lexicographic
order of (a, b) -- R's ``a:b`` factor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError
from ..covariance import CovarianceStructure, make_structure
from ..formula.spec import RandomTerm

__all__ = ["GroupingFactor", "RandomEffectsTerm", "build_grouping", "build_random_term"]

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        """Codes for new data; -1 for combinations not seen in the fit."""
        labels = _labels(frame, variables)
        return self.levels.get_indexer(labels)


def _as_str_labels(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and string labels of one grouping variable in R's level order."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy(np.int64), pd.Index(cat.cat.categories.astype(str))
    codes, uniques = pd.factorize(col, sort=True)
    return codes.astype(np.int64), pd.Index(pd.Index(uniques).astype(str))


def _labels(frame: pd.DataFrame, variables: tuple[str, ...]) -> pd.Index:
    parts = [frame[v].astype(str).to_numpy() for v in variables]
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + ":" + p.astype(object)
    return pd.Index(out)


def build_grouping(name: str, variables: tuple[str, ...], frame: pd.DataFrame) -> GroupingFactor:
    """Code the grouping factor ``name`` (an interaction of ``variables``) on ``frame``."""
    codes_list, level_list = zip(*(_as_str_labels(frame[v]) for v in variables), strict=True)
    if len(variables) == 1:
        codes, levels = codes_list[0], level_list[0]
    else:
        # lexicographic combination (first variable slowest), then keep observed combos
        combined = np.zeros(len(frame), dtype=np.int64)
        for c, lev in zip(codes_list, level_list, strict=True):
            combined = combined * len(lev) + c
        uniq, codes = np.unique(combined, return_inverse=True)
        labels = []
        rem = uniq.copy()
        for lev in reversed(level_list):
            labels.append(np.asarray(lev, dtype=object)[rem % len(lev)])
            rem //= len(lev)
        labels = labels[::-1]
        text = labels[0]
        for lab in labels[1:]:
            text = text + ":" + lab
        levels = pd.Index(text.astype(str))
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
            return _simple_matrix(self.term.expr, frame)[0]
        mm = self.model_spec.get_model_matrix(frame)
        return np.asarray(mm.loc[:, list(self.names)], dtype=float)


def _simple_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """Fast path for ``1``, ``x``, ``1 + x``, ``0 + x`` with numeric columns (no formulaic).

    Returns None when the expression needs formulaic.
    """
    tokens = [t.strip() for t in expr.replace("-", "+-").split("+") if t.strip()]
    intercept, cols = True, []
    for tok in tokens:
        if tok == "1":
            continue
        if tok in ("0", "-1"):
            intercept = False
        elif _SIMPLE.match(tok) and tok in frame.columns and \
                pd.api.types.is_numeric_dtype(frame[tok].dtype) and \
                not pd.api.types.is_bool_dtype(frame[tok].dtype):
            if tok in cols:
                return None
            cols.append(tok)
        else:
            return None
    names = (["Intercept"] if intercept else []) + cols
    if not names:
        return None
    out = np.empty((len(frame), len(names)))
    j = 0
    if intercept:
        out[:, 0] = 1.0
        j = 1
    for c in cols:
        out[:, j] = frame[c].to_numpy(dtype=float)
        j += 1
    return out, tuple(names)


def build_random_term(term: RandomTerm, frame: pd.DataFrame) -> RandomEffectsTerm:
    """Materialize ``term`` on the complete-case model frame."""
    grouping = build_grouping(term.group, term.group_vars, frame)
    simple = _simple_matrix(term.expr, frame)
    spec = None
    if simple is not None:
        Z, names = simple
    else:
        from formulaic import model_matrix

        try:
            mm = model_matrix(term.expr, frame)
        except Exception as exc:
            raise FormulaError(
                f"cannot build the model matrix of random-effects term {term.source!r}: {exc}"
            ) from exc
        Z = np.asarray(mm, dtype=float)
        names = tuple(str(c) for c in mm.columns)
        spec = mm.model_spec
    if Z.shape[1] == 0:
        raise FormulaError(f"random-effects term {term.source!r} has no columns")
    if not np.all(np.isfinite(Z)):
        raise DataError(f"random-effects term {term.source!r} has non-finite values")
    structure = make_structure(term.structure, Z.shape[1])
    return RandomEffectsTerm(term, grouping, np.ascontiguousarray(Z), names, structure, spec)

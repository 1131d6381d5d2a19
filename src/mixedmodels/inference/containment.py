r"""The "containment" (inner-outer) denominator df of Pinheiro & Bates, as ``nlme::lme``.

For nested grouping factors ordered from the outermost (fewest groups) to the innermost,
the strata are the grouping levels and the residual. Stratum ``s`` has
``N_s - N_{s-1}`` degrees of freedom (``N_s`` groups at level ``s``, ``N_0 = 0``, the
residual stratum ending at the number of observations). A fixed-effect column is estimated
in the innermost stratum within whose enclosing groups it varies (it is "inner" to the level
above): a covariate that varies within subjects belongs to the residual stratum, a
between-subject covariate to the subject stratum. Each stratum loses one df per column
estimated in it, the intercept takes one from the outermost stratum and gets the largest
remaining df, and every column's df is its stratum's (nlme's ``getFixDF``). Terms get the df
of the innermost stratum among their columns, each stratum losing one df per term parameter.

The rule needs nested grouping factors; for crossed factors use Satterthwaite's df.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .._errors import MixedModelsError
from .terms import fixed_terms

__all__ = ["ContainmentDF", "containment_df"]

#: A column is constant (intercept-like) when all entries equal the first within this
#: relative tolerance (nlme's ``const``: sqrt(machine eps)).
CONST_TOL = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True)
class ContainmentDF:
    """Containment df per fixed-effect column and per term.

    Attributes
    ----------
    columns : ndarray (p,)
    terms : dict of str -> float
    strata : tuple of str
        Grouping factors from outermost to innermost, then ``"Residual"``.
    """

    columns: np.ndarray
    terms: dict
    strata: tuple


def _is_const(x: np.ndarray) -> bool:
    if x[0] == 0:
        return bool(np.all(np.abs(x) < CONST_TOL))
    return bool(np.all(np.abs(x / x[0] - 1.0) < CONST_TOL))


def _nested_levels(design) -> list[tuple[str, np.ndarray]]:
    """Distinct grouping factors, outermost first; raise unless they are nested."""
    seen: dict[str, np.ndarray] = {}
    for t in design.terms:
        seen.setdefault(t.group, t.grouping.codes)
    levels = sorted(seen.items(), key=lambda kv: len(np.unique(kv[1])))
    for (outer, co), (inner, ci) in itertools.pairwise(levels):
        pairs = np.unique(np.column_stack([ci, co]), axis=0)
        if len(pairs) != len(np.unique(ci)):
            raise MixedModelsError(
                f"containment df need nested grouping factors, but {inner!r} is not nested "
                f"in {outer!r} (crossed random effects); use ddf='satterthwaite' or "
                "'kenward-roger'")
    return levels


def _varies_within(x: np.ndarray, codes: np.ndarray) -> bool:
    """Does ``x`` vary within at least one group of ``codes``? (nlme's inner percentage
    > 0.)"""
    order = np.lexsort((x, codes))
    xs, cs = x[order], codes[order]
    same_group = cs[1:] == cs[:-1]
    return bool(np.any(same_group & (xs[1:] != xs[:-1])))


def containment_df(design) -> ContainmentDF:
    """Containment df of every fixed-effect column and term of ``design``."""
    levels = _nested_levels(design)
    X = design.X
    n, p = X.shape
    ngrps = [len(np.unique(c)) for _, c in levels]
    strata = tuple([g for g, _ in levels] + ["Residual"])
    base = np.diff(np.concatenate([[0], ngrps, [n]])).astype(float)
    const = np.array([_is_const(X[:, j]) for j in range(p)])
    stratum = np.zeros(p, dtype=int)
    for j in np.flatnonzero(~const):
        inner = [s + 1 for s, (_, c) in enumerate(levels) if _varies_within(X[:, j], c)]
        stratum[j] = max([0, *inner])
    df_cols = base.copy()
    np.subtract.at(df_cols, stratum[~const], 1.0)
    if const.any():
        df_cols[0] -= 1.0
    else:
        df_cols[1:] += 1.0
    col_df = np.where(const, df_cols.max(), df_cols[stratum])
    return ContainmentDF(col_df, _term_df(design, base, stratum, const), strata)


def _term_df(design, base, stratum, const) -> dict:
    terms = fixed_terms(design)
    df_terms = base.copy()
    term_stratum = {}
    for t in terms:
        cols = [c for c in t.columns if not const[c]]
        if not cols:
            continue
        term_stratum[t.label] = max(stratum[c] for c in cols)
        df_terms[term_stratum[t.label]] -= len(t.columns)
    if const.any():
        df_terms[0] -= 1.0
    else:
        df_terms[1:] += 1.0
    return {t.label: float(df_terms[term_stratum[t.label]]) if t.label in term_stratum
            else float(df_terms.max()) for t in terms}

"""How every partition is materialized alike: a sizes-only design and a partition plan.

An in-memory :class:`~mixedmodels.design.Design` holds the rows. Here the rows stay in
the partitions, so the design is split in two:

* :class:`ReducedDesign` -- what the client keeps: the spec, the fixed-effects encoding
  (formulaic's model spec, names, R names, kept columns), the random-effects terms with
  their *global* level sets and covariance structures, the number of observations, a
  small template frame (column dtypes and levels, for prediction on new data) and the
  report of dropped rows. Every array of length n raises instead of existing.
* :class:`PartitionPlan` -- the recipe a worker applies to its partition: complete rows,
  the same dtype normalization as in memory, ``X`` from the template's encoding (so a
  factor has the same columns in every partition whatever levels it happens to hold),
  ``Z`` and the global codes of each grouping factor, offsets, weights, and the rows a
  transformation made non-finite.

The encodings come from a template frame: the first complete rows, with every text,
boolean or categorical predictor cycling through its global levels (found by the scan).
Stateful transforms (``scale(x)``, ``poly(x)``) would learn their centre or basis from
that template, not from the data, so they are refused on this path with the remedy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..._errors import DataError, FormulaError
from ...covariance.registry import REGISTRY
from ...design import Design, build_fixed, build_grouping, build_random_term, nonfinite_rows
from ...design.dtypes import normalize_frame
from ...design.frame import DroppedRows, missing_mask
from ...design.random import term_order
from ...design.response import evaluate_numeric
from ...design.variables import called_names
from ...formula.spec import MixedModelSpec
from ...results.levels import level_index
from .scan import ScanResult

__all__ = ["STATEFUL_TRANSFORMS", "PartitionArrays", "PartitionPlan", "ReducedDesign",
           "build_plan", "check_stateful", "level_columns", "scan_level_sets"]

#: Transforms whose result depends on all rows (centre, scale, a basis): refused on Dask
#: input, where the template frame would supply that state.
STATEFUL_TRANSFORMS = frozenset({"center", "scale", "standardize", "poly", "bs", "cr", "cs",
                                 "cc", "te"})

_ROWS_NOT_HERE = ("the rows of a Dask fit stay on the cluster: {what} is not held on the "
                  "client; use fitted() / residuals() (lazy Dask series) or predict(newdata)")


@dataclass(frozen=True, eq=False)
class ReducedDesign:
    """A design whose rows live in the partitions of a Dask DataFrame (module docstring).

    Attributes
    ----------
    spec : MixedModelSpec
    fixed : FixedEffects
        Encoding, names and kept columns; its ``X`` has no rows (shape (0, p)).
    terms : tuple of RandomEffectsTerm
        lme4's order; grouping factors with the global levels, ``Z`` without rows.
    n : int
        Observations used.
    frame : pandas.DataFrame
        The template frame (dtypes and levels of the model's columns, not fitted rows).
    dropped : DroppedRows
        Counts of the rows left out (no labels: they stay in the partitions).
    level_indexes : tuple of pandas.Index
        Per term, its levels as the user's values (``ranef``'s index).
    weights_column, offset_column : str or None
    """

    spec: MixedModelSpec
    fixed: object
    terms: tuple
    n: int
    frame: pd.DataFrame
    dropped: DroppedRows
    level_indexes: tuple = ()
    weights_column: str | None = None
    offset_column: str | None = None
    offset_array: bool = False

    # sizes and theta bookkeeping read only the terms: the in-memory Design's methods
    p = Design.p
    q = Design.q
    n_theta = Design.n_theta
    theta0 = Design.theta0
    theta_lower = Design.theta_lower
    theta_slices = Design.theta_slices
    scale_spherical = Design.scale_spherical

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.n

    @property
    def extra_components(self) -> tuple:
        return ()

    def _absent(self, what: str):
        raise DataError(_ROWS_NOT_HERE.format(what=what))

    @property
    def X(self):
        return self._absent("the fixed-effects matrix X")

    @property
    def y(self):
        return self._absent("the response y")

    @property
    def weights(self):
        return self._absent("the weights vector")

    @property
    def offset(self):
        return self._absent("the offset vector")


@dataclass(frozen=True)
class PartitionArrays:
    """The numeric pieces of one partition's fitted rows.

    Attributes
    ----------
    index : pandas.Index
        Labels of the rows used.
    y, offset : ndarray (n_k,)
    X : ndarray (n_k, p)
        The kept fixed-effects columns.
    weights : ndarray (n_k,) or None
    codes, Z : list of ndarray
        Per term: global level codes (n_k,) and values (n_k, p_t).
    reasons : dict
        Rows a transformation made non-finite, per expression.
    trials : ndarray (n_k,) or None
        Binomial numbers of trials of a ``cbind(successes, failures)`` response.
    """

    index: pd.Index
    y: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    weights: np.ndarray | None
    codes: list
    Z: list
    reasons: dict
    trials: np.ndarray | None = None

    @property
    def prior(self) -> np.ndarray | None:
        """Prior weights: ``weights=`` times binomial trials (None when both are absent),
        as :func:`~mixedmodels.objective.pirls.prior_weights` in memory."""
        if self.trials is None:
            return self.weights
        return self.trials if self.weights is None else self.weights * self.trials


@dataclass(frozen=True)
class PartitionPlan:
    """Materializes a partition exactly as every other one (module docstring).

    Attributes
    ----------
    design : ReducedDesign
    roles : dict
        Every data column the model reads -> its role.
    response : callable
        ``response(expr, frame) -> y`` (the LMM's numeric response) or ``-> (y, extra)``
        (a GLMM family's, :func:`~mixedmodels.design.lhs.make_response`).
    code_maps : tuple
        Per term, None or an array mapping scanned codes to the codes of the levels that
        are left once transformations dropped rows (-1: gone).
    check : callable or None
        ``check(y, prior)``: the family's response check (pass 2 runs it per partition).
    response_levels : tuple or None
        The global levels of a text or categorical response column (a binomial factor
        response: its first level is failure in every partition, whichever levels the
        partition holds).
    block_groups : tuple of tuple of int
        The terms per block of the cross-products a GLMM pass forms (the client PIRLS's
        merge of terms on one grouping factor, :attr:`TermMerge.groups`); empty: one
        block per term.
    """

    design: ReducedDesign
    roles: dict
    response: object
    code_maps: tuple = ()
    check: object = None
    response_levels: tuple | None = None
    block_groups: tuple = ()

    def complete_rows(self, part: pd.DataFrame) -> pd.DataFrame:
        """The complete rows of the model's columns, in the numpy spelling of each kind."""
        columns = list(self.roles)
        bad = np.zeros(len(part), dtype=bool)
        for name in columns:
            bad |= missing_mask(part[name])
        w = self.design.weights_column
        if w is not None:
            bad |= part[w].to_numpy(dtype=float, na_value=np.nan) == 0
        frame = part.loc[~bad, columns] if bad.any() else part[columns]
        return normalize_frame(frame, self.roles)

    def arrays(self, part: pd.DataFrame) -> PartitionArrays:
        """:class:`PartitionArrays` of ``part``'s fitted rows."""
        d = self.design
        frame = self.complete_rows(part)
        if self.response_levels is not None:
            col = d.spec.response
            frame = frame.assign(**{col: pd.Categorical(frame[col],
                                                        categories=self.response_levels)})
        out = self.response(d.spec.response, frame)
        y, extra = out if isinstance(out, tuple) else (out, {})
        y = np.asarray(y, dtype=float)
        trials = extra.get("trials")
        X = d.fixed.new_matrix(frame) if len(frame) else np.zeros((0, d.p))
        off = np.zeros(len(frame))
        for expr in d.spec.offsets:
            off = off + evaluate_numeric(expr, frame, "offset")
        if d.offset_column is not None:
            off = off + frame[d.offset_column].to_numpy(dtype=float)
        Zs = [t.new_Z(frame) if len(frame) else np.zeros((0, t.p)) for t in d.terms]
        parts = SimpleNamespace(
            y=y, fixed=SimpleNamespace(X=X, names=d.fixed.names), formula_offset=off,
            terms=[SimpleNamespace(term=t.term, Z=Z) for t, Z in zip(d.terms, Zs,
                                                                      strict=True)])
        bad, reasons = nonfinite_rows(d.spec, parts)
        if bad.any():
            keep = ~bad
            frame, y, X, off = frame.loc[keep], y[keep], X[keep], off[keep]
            Zs = [Z[keep] for Z in Zs]
            trials = None if trials is None else trials[keep]
        codes = [t.grouping.code_new(frame, t.term.group_vars) for t in d.terms]
        if self.code_maps:
            codes = [c if mp is None else mp[c] for c, mp in zip(codes, self.code_maps,
                                                                  strict=True)]
        if any(np.any(c < 0) for c in codes):
            raise DataError("a partition has a grouping level that the scan of the data did "
                            "not find: the data changed between passes (persist it, or "
                            "fit from files that are not being written)")
        w = None
        if d.weights_column is not None:
            w = frame[d.weights_column].to_numpy(dtype=float)
        return PartitionArrays(frame.index, y, X, off, w, codes, Zs, reasons,
                               None if trials is None else np.asarray(trials, dtype=float))


def check_structures(spec: MixedModelSpec) -> None:
    """Refuse covariance structures that need more than a partition's rows give: the
    coordinates of ``ou``/``exp``/``gau``/``mat`` (``pos(...)``: one effect per distinct
    position, all of them) and the known matrix of ``propto``/``equalto``."""
    for t in spec.random:
        needs = REGISTRY[t.structure].needs
        if needs is not None:
            what = ("positions pos(...)" if needs == "coordinates"
                    else "a known matrix (covariance_matrices=)")
            raise NotImplementedError(
                f"{t.structure}() in {t.source!r} is not supported on Dask input: it needs "
                f"{what} of the whole data; fit on a pandas DataFrame (e.g. ddf.compute()), "
                "or use a structure over the columns of the term (us, diag, cs, ar1, toep, "
                "rr)")


def check_stateful(spec: MixedModelSpec) -> None:
    exprs = [("fixed effects", spec.fixed), ("response", spec.response)]
    exprs += [("offset", e) for e in spec.offsets]
    exprs += [(f"random-effects term {t.source}", t.expr) for t in spec.random]
    for where, expr in exprs:
        found = sorted(called_names(expr) & STATEFUL_TRANSFORMS)
        if found:
            raise FormulaError(
                f"{found[0]}() in the {where} is a stateful transform (its centre, scale or "
                "basis comes from all rows), which a Dask fit cannot learn from one "
                "partition; compute the column on the Dask frame first, e.g. "
                "ddf['x_c'] = ddf['x'] - ddf['x'].mean(), and use it in the formula"
            )


def level_columns(spec: MixedModelSpec, roles: dict, kinds: dict) -> list[str]:
    """Columns whose distinct values the scan collects for the encodings: text, boolean
    and categorical columns of the model's expressions, and numeric ones a formula turns
    into a factor with ``C(...)``."""
    out = []
    factor_calls = " ".join([spec.fixed] + [t.expr for t in spec.random])
    for col, role in roles.items():
        if role.startswith("grouping factor") or role in ("weights", "offset"):
            continue
        kind = kinds[col]
        if kind in ("text", "boolean", "categorical") or re.search(
                r"C\(\s*`?" + re.escape(col) + r"`?\s*[,)]", factor_calls):
            out.append(col)
    return out


def _template(scan: ScanResult, roles: dict, factors: list[str]) -> pd.DataFrame:
    """The sample rows, repeated, with every factor column cycling through its levels."""
    sample = normalize_frame(scan.sample, roles)
    sizes = [len(scan.levels[(c,)]) for c in factors]
    n = max([len(sample), *[2 * s for s in sizes]])
    frame = sample.iloc[np.resize(np.arange(len(sample)), n)].reset_index(drop=True)
    frame = frame.copy()
    for col in factors:
        values = normalize_frame(scan.levels[(col,)], roles)[col]
        cycled = values.iloc[np.resize(np.arange(len(values)), n)].reset_index(drop=True)
        if isinstance(cycled.dtype, pd.CategoricalDtype):
            # categories no complete row uses get no column, as in memory
            cycled = cycled.cat.remove_unused_categories()
        frame[col] = cycled
    return frame


def _grouping_terms(spec: MixedModelSpec, scan: ScanResult, roles: dict, template):
    """The random-effects terms with global level sets, in lme4's order."""
    terms, indexes = [], []
    for term in spec.random:
        t = build_random_term(term, template)
        levels = normalize_frame(scan.levels[tuple(term.group_vars)].reset_index(drop=True),
                                 roles)
        grouping = build_grouping(term.group, tuple(term.group_vars), levels)
        indexes.append(level_index(SimpleNamespace(frame=levels),
                                   replace(t, grouping=grouping)))
        grouping = replace(grouping, codes=np.zeros(0, dtype=np.int64))
        terms.append(replace(t, grouping=grouping, Z=np.zeros((0, t.p))))
    order = term_order(terms)
    return tuple(terms[i] for i in order), tuple(indexes[i] for i in order)


def build_plan(spec: MixedModelSpec, scan: ScanResult, roles: dict, factors: list[str],
               response, *, weights: str | None, offset: str | None,
               contrasts=None) -> PartitionPlan:
    """The plan of a model on scanned data (the fixed effects keep every column; the rank
    check on the reduced system may drop some later). ``factors``: the
    :func:`level_columns` the scan collected."""
    template = _template(scan, roles, factors)
    fixed = build_fixed(spec.fixed, template, contrasts, check_rank=False)
    fixed = replace(fixed, X=np.zeros((0, fixed.X.shape[1])))
    terms, indexes = _grouping_terms(spec, scan, roles, template)
    dropped = DroppedRows(scan.n_rows, scan.n_dropped, dict(scan.by_column), pd.Index([]))
    design = ReducedDesign(spec, fixed, terms, scan.n_rows - scan.n_dropped, template,
                           dropped, indexes, weights, offset)
    return PartitionPlan(design, dict(roles), response)


def scan_level_sets(spec: MixedModelSpec, factors: list[str]) -> tuple:
    """The variable tuples whose distinct values the scan collects."""
    sets = [tuple(t.group_vars) for t in spec.random] + [(c,) for c in factors]
    return tuple(dict.fromkeys(sets))

"""Passes 1 and 2 on Dask input: from a formula and a Dask frame to the reduced fixed part.

:func:`prepare` runs the scan (:mod:`.scan`), builds the partition plan (:mod:`.plan`),
runs the tall-skinny QR (:mod:`.reduce`), applies what it found -- rows a transformation
made non-finite (reported as in memory), levels those rows emptied, aliased fixed-effect
columns (R's rank rule on the reduced ``R``) -- and returns the plan with the fixed-effects
basis. The LMM and GLMM fitters build their cross-products on it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..._errors import DataError, DroppedRowsWarning
from ..._messages import user_stacklevel
from ...design import model_columns
from ...design.dot import expand_dot
from ...design.fixed import keep_columns, keep_from_triangular
from ...design.frame import DroppedRows
from ...design.variables import expression_variables
from ...formula import parse_formula
from ...linalg import FixedBasis
from .plan import (
    PartitionPlan,
    build_plan,
    check_stateful,
    check_structures,
    level_columns,
    scan_level_sets,
)
from .reduce import QRPart, _r_of, combine_qr, qr_partition
from .reduce_tree import map_reduce
from .scan import check_scan, column_kind, combine_scans, scan_partition

__all__ = ["Prepared", "prepare"]

_ZERO_WEIGHT = "zero prior weight"


@dataclass(frozen=True)
class Prepared:
    """The plan and the reduced fixed part of a model on Dask input.

    Attributes
    ----------
    plan : PartitionPlan
    qr : QRPart
        Pass 2 over all partitions (``R`` of ``W^{1/2} [X y - o]`` for the kept columns).
    basis : FixedBasis
        ``X~ = X R^{-1}`` (no rows held).
    coef0 : ndarray (p,)
        ``X~' W (y - o)``: ``y~ = y - o - X~ coef0``.
    frame : dask.dataframe.DataFrame
        The data restricted to the model's columns (parquet reads only those).
    """

    plan: PartitionPlan
    qr: QRPart
    basis: FixedBasis
    coef0: np.ndarray
    frame: object


def _roles(spec, frame, weights, offset, response_vars=None) -> dict:
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"{name}= must name a column of the Dask frame (values given as an array "
                f"cannot be split into its partitions); add them as a column first")
    roles = model_columns(spec, response_vars, frame.columns)
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None:
            roles.setdefault(value, name)
    missing = [c for c in roles if c not in frame.columns]
    if missing:
        raise DataError(
            f"column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (used in the "
            f"{roles[missing[0]]}) not found in the Dask frame; its columns: "
            f"{', '.join(map(str, frame.columns))}")
    return roles


def _apply_nonfinite(plan: PartitionPlan, qr: QRPart) -> PartitionPlan:
    """Report rows a transformation made non-finite; drop the levels they emptied."""
    d = plan.design
    if qr.reasons:
        n_bad = sum(qr.reasons.values())
        detail = ", ".join(f"{k!r}: {v}" for k, v in qr.reasons.items() if v)
        warnings.warn(f"{n_bad} of {d.dropped.n_total} rows dropped: a missing or infinite "
                      f"value from a transformation ({detail})", DroppedRowsWarning,
                      stacklevel=user_stacklevel())
    if qr.n == 0:
        raise DataError("every row has a missing or infinite value after the "
                        "transformations of the formula; nothing is left to fit")
    by_column = dict(d.dropped.by_column)
    for k, v in qr.reasons.items():
        by_column[k] = by_column.get(k, 0) + v
    dropped = DroppedRows(d.dropped.n_total, d.dropped.n_total - qr.n, by_column,
                          pd.Index([]))
    terms, indexes, maps = list(d.terms), list(d.level_indexes), []
    for k, counts in enumerate(qr.level_counts):
        used = np.asarray(counts) > 0
        if used.all():
            maps.append(None)
            continue
        t = terms[k]
        mp = np.where(used, np.cumsum(used) - 1, -1)
        terms[k] = replace(t, grouping=replace(t.grouping, levels=t.grouping.levels[used]))
        indexes[k] = indexes[k][used]
        maps.append(mp)
        qr.level_counts[k] = np.asarray(counts)[used]
    design = replace(d, n=qr.n, dropped=dropped, terms=tuple(terms),
                     level_indexes=tuple(indexes))
    return replace(plan, design=design,
                   code_maps=tuple(maps) if any(m is not None for m in maps) else ())


def _apply_rank(plan: PartitionPlan, qr: QRPart) -> tuple[PartitionPlan, QRPart]:
    """R's rank rule on the reduced factor; aliased columns are dropped with lme4's
    warning and ``R`` is re-reduced for the kept ones (``QR`` of ``R``'s columns)."""
    d = plan.design
    p = d.p
    R_x = qr.R_unweighted if qr.R_unweighted is not None else qr.R[:, :p]
    keep = keep_from_triangular(_square(R_x, p)) if p else np.ones(0, dtype=bool)
    if keep.all():
        return plan, qr
    fixed = keep_columns(replace(d.fixed, X=np.zeros((0, p))), keep, stacklevel=5)
    cols = [*np.flatnonzero(keep).tolist(), p]
    qr = replace(qr, R=_r_of(qr.R[:, cols]),
                 R_unweighted=None if qr.R_unweighted is None else
                 _r_of(qr.R_unweighted[:, np.flatnonzero(keep)]))
    return replace(plan, design=replace(d, fixed=fixed)), qr


def _square(R: np.ndarray, m: int) -> np.ndarray:
    """``R`` padded with zero rows to m x m (fewer rows than columns in the data)."""
    if R.shape[0] >= m:
        return R[:m]
    return np.vstack([R, np.zeros((m - R.shape[0], R.shape[1]))])


def _basis(qr: QRPart, p: int) -> tuple[FixedBasis, np.ndarray]:
    RM = _square(qr.R, p + 1)
    signs = np.where(np.diag(RM)[:p] < 0, -1.0, 1.0)
    RM = RM.copy()
    RM[:p] *= signs[:, None]          # positive diagonal, as FixedBasis keeps it
    basis = FixedBasis.from_triangular(RM[:p, :p])
    if not np.array_equal(basis.R, np.triu(RM[:p, :p])):
        return basis, np.zeros(p)     # degenerate X: identity basis, y not residualized
    return basis, RM[:p, p].copy()


def _warn_dropped(scan) -> None:
    """The in-memory warnings: rows with missing values first, then rows of zero prior
    weight among the others (a second warning, as :func:`materialize` gives)."""
    zero = scan.by_column.get(_ZERO_WEIGHT, 0)
    missing = scan.n_dropped - zero
    if missing:
        by_column = {k: v for k, v in scan.by_column.items() if k != _ZERO_WEIGHT}
        warnings.warn(str(DroppedRows(scan.n_rows, missing, by_column, pd.Index([]))),
                      DroppedRowsWarning, stacklevel=user_stacklevel())
    if zero:
        warnings.warn(f"{zero} of {scan.n_rows} rows dropped: {_ZERO_WEIGHT}",
                      DroppedRowsWarning, stacklevel=user_stacklevel())


def _response_levels(spec, scan, kinds) -> tuple | None:
    """The global levels of a text or categorical response column (sorted, as pandas
    orders the categories of text; a categorical's own order), else None."""
    col = spec.response
    if kinds.get(col) not in ("text", "categorical") or (col,) not in scan.levels:
        return None
    dtype = scan.dtypes.get(col)
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories is not None:
        return tuple(dtype.categories)
    return tuple(sorted(scan.levels[(col,)][col].dropna().unique()))


def prepare(formula: str, data, *, weights, offset, contrasts, response,
            response_vars=None, check=None) -> Prepared:
    """Passes 1 and 2 (module docstring) of ``formula`` on the Dask frame ``data``
    (``check(y, prior)``: a GLMM family's response check, run on every partition)."""
    spec = parse_formula(formula)
    if not spec.random:
        from ..._errors import FormulaError
        raise FormulaError(f"formula {spec.formula!r} has no random-effects term such as "
                           "(1 | group)")
    spec = expand_dot(spec, data.columns,
                      response_vars if response_vars is not None
                      else expression_variables(spec.response, data.columns))
    roles = _roles(spec, data, weights, offset, response_vars)
    check_stateful(spec)
    check_structures(spec)
    data = data[list(roles)]          # column projection: parquet reads only these
    kinds = {c: column_kind(data.dtypes[c]) for c in roles}
    factors = level_columns(spec, roles, kinds)
    scan = map_reduce(data, scan_partition, combine_scans, tuple(roles),
                      scan_level_sets(spec, factors), weights)
    check_scan(scan, roles)
    _warn_dropped(scan)
    plan = build_plan(spec, scan, roles, factors, response, weights=weights, offset=offset,
                      contrasts=contrasts)
    plan = replace(plan, check=check, response_levels=_response_levels(spec, scan, kinds))
    qr = map_reduce(data, qr_partition, combine_qr, plan)
    for category, message in qr.messages:
        warnings.warn(message, category, stacklevel=user_stacklevel())
    plan = _apply_nonfinite(plan, qr)
    plan, qr = _apply_rank(plan, qr)
    basis, coef0 = _basis(qr, plan.design.p)
    return Prepared(plan, qr, basis, coef0, data)

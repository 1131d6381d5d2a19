"""Fixed-effects model matrix: formulaic evaluates it, we drop aliased columns as lme4 does.

Rank check. For the Householder QR ``X = QR`` computed without pivoting, ``|R_jj|`` is the
distance from column ``j`` to the span of the columns before it. A column whose distance is
below ``RANK_TOL`` times its own norm is aliased with earlier columns and is dropped -- the rule
of R's ``qr()`` (LINPACK ``dqrdc2`` with limited pivoting), which is what lme4 uses, so the
same columns are dropped as in R.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FormulaError, RankDeficiencyWarning

__all__ = ["RANK_TOL", "FixedEffects", "build_fixed", "drop_aliased_columns"]

#: Relative tolerance for declaring a fixed-effect column aliased (R's ``qr(tol = 1e-7)``).
RANK_TOL = 1e-7


@dataclass(frozen=True)
class FixedEffects:
    """Fixed-effects design.

    Attributes
    ----------
    X : ndarray (n, p)
        Model matrix with aliased columns removed.
    names : tuple of str
        Column names as formulaic spells them (``"Intercept"``, ``"Sex[T.Female]"``).
    dropped : tuple of str
        Names of the aliased columns that were removed.
    model_spec : formulaic ModelSpec or None
        Recipe that rebuilds the full matrix for new data (stateful transforms such as
        ``scale()`` keep their training centre and scale).
    """

    X: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...]
    model_spec: Any

    def new_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Model matrix for new data, with the same columns as ``X``."""
        if self.model_spec is None:
            return np.ones((len(frame), len(self.names)))
        mm = self.model_spec.get_model_matrix(frame)
        return np.asarray(mm.loc[:, list(self.names)], dtype=float)


def drop_aliased_columns(X: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Boolean mask of the columns of ``X`` to keep (see the module docstring)."""
    n, p = X.shape
    if p == 0:
        return np.ones(0, dtype=bool)
    norms = np.linalg.norm(X, axis=0)
    keep = norms > 0
    if n >= p:
        r = np.linalg.qr(X, mode="r")
        diag = np.abs(np.diag(r))
    else:
        # more columns than rows: fall back to sequential projection
        diag = np.zeros(p)
        basis = np.zeros((n, 0))
        for j in range(p):
            resid = X[:, j] - basis @ (basis.T @ X[:, j])
            diag[j] = np.linalg.norm(resid)
            if diag[j] > tol * max(norms[j], 1e-300):
                basis = np.column_stack([basis, resid / diag[j]])
    keep &= diag > tol * np.where(norms > 0, norms, 1.0)
    return keep


def build_fixed(formula: str, frame: pd.DataFrame) -> FixedEffects:
    """Evaluate the fixed-effects right-hand side on the (complete-case) model frame."""
    if formula.strip() == "1":
        # fast path: an intercept-only model needs no formulaic round trip
        return FixedEffects(np.ones((len(frame), 1)), ("Intercept",), (), None)
    from formulaic import model_matrix

    try:
        mm = model_matrix(formula, frame)
    except Exception as exc:
        raise FormulaError(
            f"cannot build the fixed-effects model matrix for {formula!r}: {exc}"
        ) from exc
    X = np.asarray(mm, dtype=float)
    names = tuple(str(c) for c in mm.columns)
    keep = drop_aliased_columns(X)
    dropped = tuple(n for n, k in zip(names, keep, strict=True) if not k)
    if dropped:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column{'s' if len(dropped) > 1 else ''} / coefficient"
            f"{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}",
            RankDeficiencyWarning,
            stacklevel=4,
        )
        X = X[:, keep]
        names = tuple(n for n, k in zip(names, keep, strict=True) if k)
    return FixedEffects(np.ascontiguousarray(X), names, dropped, mm.model_spec)

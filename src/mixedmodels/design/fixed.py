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

from .._errors import DataError, FormulaError, RankDeficiencyWarning, plain_message
from .simple import simple_matrix

__all__ = [
    "RANK_TOL",
    "FixedEffects",
    "build_fixed",
    "drop_aliased_columns",
    "raise_on_unseen_levels",
]

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
        ``scale()`` keep their training centre and scale). None when the formula was simple
        enough to build without formulaic (see :mod:`.simple`).
    formula : str
        The fixed-effects right-hand side, rebuilt directly for new data when
        ``model_spec`` is None.
    """

    X: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...]
    model_spec: Any
    formula: str = "1"

    def new_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Model matrix for new data, with the same columns as ``X``.

        Raises
        ------
        DataError
            When a categorical predictor has a level the fit did not see.
        """
        if self.model_spec is None:
            simple = simple_matrix(self.formula, frame)
            if simple is None:  # columns changed type since the fit; formulaic decides
                return _formulaic_new(self.formula, frame, self.names)
            X, names = simple
            return X[:, [names.index(n) for n in self.names]]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mm = self.model_spec.get_model_matrix(frame)
        raise_on_unseen_levels(caught)
        return np.asarray(mm.loc[:, list(self.names)], dtype=float)


def raise_on_unseen_levels(caught) -> None:
    """Turn formulaic's warning about unseen levels (it codes them as all-zero dummy rows,
    i.e. silently as the reference level) into an error; re-emit any other warning."""
    for w in caught:
        text = str(w.message)
        if "categories outside of the nominated levels" in text or \
                "not seen in original dataset" in text:
            raise DataError(
                "newdata has levels of a categorical predictor that the fit did not see: "
                f"{text.split(':', 1)[-1].split('.')[0].strip()}; predictions need the "
                "fitted levels"
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _formulaic_new(formula: str, frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    from formulaic import model_matrix

    mm = model_matrix(formula, frame, na_action="ignore")
    return np.asarray(mm.loc[:, list(names)], dtype=float)


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
    simple = simple_matrix(formula, frame)
    if simple is not None:
        X, names = simple
        return _checked(X, names, None, formula)
    from formulaic import model_matrix

    try:
        with warnings.catch_warnings():
            # log(0), sqrt(-1): materialize() drops and reports those rows
            warnings.simplefilter("ignore", RuntimeWarning)
            mm = model_matrix(formula, frame, na_action="ignore")
    except Exception as exc:
        raise FormulaError(
            f"cannot build the fixed-effects model matrix for {formula!r}: "
            f"{plain_message(exc)}"
        ) from exc
    X = np.asarray(mm, dtype=float)
    names = tuple(str(c) for c in mm.columns)
    if X.shape[0] != len(frame):
        raise FormulaError(
            f"the fixed-effects model matrix for {formula!r} has {X.shape[0]} rows for "
            f"{len(frame)} rows of data; a term must give one value per row"
        )
    return _checked(X, names, mm.model_spec, formula)


def _checked(X: np.ndarray, names: tuple[str, ...], model_spec, formula: str) -> FixedEffects:
    """Drop aliased columns (with lme4's message) and wrap up."""
    if not np.isfinite(X).all():
        # materialize() drops the rows with missing/infinite values and evaluates again;
        # the rank check is only meaningful on the rows that are fitted
        return FixedEffects(X, names, (), model_spec, formula)
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
    return FixedEffects(np.ascontiguousarray(X), names, dropped, model_spec, formula)

"""Fixed-effects model matrix: formulaic evaluates it, we drop aliased columns as lme4 does.

Rank check. For the Householder QR ``X = QR`` computed without pivoting, ``|R_jj|`` is the
distance from column ``j`` to the span of the columns before it. A column whose distance is
below ``RANK_TOL`` times its own norm is aliased with earlier columns and is dropped -- the rule
of R's ``qr()`` (LINPACK ``dqrdc2`` with limited pivoting), which is what lme4 uses, so the
same columns are dropped as in R.
"""

from __future__ import annotations

import math
import re
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from .._errors import (
    DataError,
    FormulaError,
    FormulaWarning,
    RankDeficiencyWarning,
    plain_message,
)
from .._messages import user_stacklevel
from .._threads import blas_threads
from .fast import LazyModelSpec, fast_matrix
from .materializer import build_matrix
from .names import r_coefficient_names, shown_names, simple_r_names
from .simple import simple_has_intercept, simple_matrix

__all__ = [
    "RANK_TOL",
    "SERIAL_QR_SIZE",
    "FixedEffects",
    "build_fixed",
    "check_new_levels",
    "drop_aliased_columns",
    "keep_columns",
    "keep_from_triangular",
    "known_finite",
    "new_model_matrix",
    "raise_on_unseen_levels",
    "take_rank_factor",
    "unique_names",
]

#: Relative tolerance for declaring a fixed-effect column aliased (R's ``qr(tol = 1e-7)``).
RANK_TOL = 1e-7
#: Entries (rows x columns) up to which the rank QR runs without the BLAS thread limit:
#: OpenBLAS runs its level-2 kernels (``dgemv``, ``dger``: all of an unblocked QR) on one
#: thread below 9216 and 8192 entries, so smaller matrices never start a thread.
SERIAL_QR_SIZE = 8192
#: Up to this many columns the rank rule is read off ``R`` on Python floats
#: (:func:`_keep_from_upper`): cheaper than numpy's calls on a few numbers.
SCALAR_RANK_MAX_P = 16


@dataclass(frozen=True)
class FixedEffects:
    """Fixed-effects design.

    Attributes
    ----------
    X : ndarray (n, p)
        Model matrix with aliased columns removed.
    names : tuple of str
        Column names as formulaic spells them (``"Intercept"``, ``"Sex[T.Female]"``), made
        unique: a data column that formulaic would name like another column (a column
        called ``Intercept``) is written in backticks (```Intercept```).
    dropped : tuple of str
        Names of the aliased columns that were removed.
    model_spec : formulaic ModelSpec or None
        Recipe that rebuilds the full matrix for new data (stateful transforms such as
        ``scale()`` keep their training centre and scale; contrasts and levels are kept).
        None when the formula was simple enough to build without formulaic (see
        :mod:`.simple`); a :class:`~mixedmodels.design.fast.LazyModelSpec` (formulaic's
        spec, built on first use) when factors and interactions were built directly (see
        :mod:`.fast`).
    formula : str
        The fixed-effects right-hand side, rebuilt directly for new data when
        ``model_spec`` is None.
    r_names : tuple of str
        R's names of the columns of ``X`` (``"(Intercept)"``, ``"SexFemale"``,
        ``"age:SexFemale"``, ``"I(age^2)"``, ``"x.L"``), as lme4 reports them; see
        :mod:`.names`.
    columns : tuple of int or None
        Positions of ``X``'s columns in the full model matrix (before aliased columns were
        dropped); None when ``X`` has them all.
    """

    X: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...]
    model_spec: Any
    formula: str = "1"
    r_names: tuple[str, ...] = ()
    columns: tuple[int, ...] | None = None

    def labels(self) -> tuple[str, ...]:
        """The columns' names as results present them: formulaic's, or R's under the
        option ``coef_names="r"`` (:func:`mixedmodels.options`).

        Returns
        -------
        tuple of str
        """
        return shown_names(self.names, self.r_names)

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
                full = np.asarray(build_matrix(self.formula, frame), dtype=float)
            else:
                full = simple[0]
        else:
            full = new_model_matrix(self.model_spec, frame)
        return full if self.columns is None else full[:, list(self.columns)]


def new_model_matrix(model_spec, frame: pd.DataFrame) -> np.ndarray:
    """``model_spec``'s matrix on new data, refusing levels the fit did not see."""
    check_new_levels(model_spec, frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mm = model_spec.get_model_matrix(frame)
    raise_on_unseen_levels(caught)
    return np.asarray(mm, dtype=float)


_NUMPY_SCALAR = re.compile(r"np\.\w+\(([^()]*)\)")


def check_new_levels(model_spec, frame: pd.DataFrame) -> None:
    """Refuse new data with levels of a categorical factor the fit did not see, naming the
    factor and its column (formulaic would code them as all-zero rows, silently the
    reference level).

    A factor that is a column (``f``) or a call on one column (``C(k)``, R's
    ``factor(k)``; ``C(k, Sum)``) is checked here value by value; other factors are left to
    formulaic's warning, which :func:`raise_on_unseen_levels` turns into an error.
    """
    from .random import level_text
    from .variables import expression_variables

    for expr, (kind, state) in model_spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        variables = expression_variables(expr, frame.columns)
        if len(variables) != 1 or variables[0] not in frame.columns:
            continue
        column = variables[0]
        if expr != column and not re.match(r"^C\(\s*`?" + re.escape(column) + r"`?\s*[,)]",
                                           expr):
            continue
        known = set(level_text(pd.Series(list(state["categories"]), dtype=object)))
        text = level_text(frame[column])
        present = ~pd.isna(text)
        new = [v for v in pd.unique(text[present]) if v not in known]
        if new:
            shown = ", ".join(repr(v) for v in new[:5]) + ("..." if len(new) > 5 else "")
            what = f"column {column!r}" if expr == column else f"{expr} (column {column!r})"
            raise DataError(
                f"newdata {what} has levels the fit did not see: {shown}; predictions need "
                f"the fitted levels ({', '.join(map(str, list(state['categories'])[:10]))}"
                f"{'...' if len(state['categories']) > 10 else ''})"
            )


def raise_on_unseen_levels(caught) -> None:
    """Turn formulaic's warning about unseen levels (it codes them as all-zero dummy rows,
    i.e. silently as the reference level) into an error; re-emit any other warning."""
    for w in caught:
        text = str(w.message)
        if "categories outside of the nominated levels" in text or \
                "not seen in original dataset" in text:
            found = re.search(r"\{(.*)\}", text)
            levels = _NUMPY_SCALAR.sub(r"\1", found.group(1)) if found else "?"
            raise DataError(
                "newdata has levels of a categorical predictor that the fit did not see: "
                f"{levels}; predictions need the fitted levels"
            )
        if "Constructing a Categorical with a dtype and values containing non-null" in text:
            continue  # pandas' companion of the warning above
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def drop_aliased_columns(X: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Boolean mask of the columns of ``X`` to keep (see the module docstring)."""
    return _aliased_and_factor(X, tol)[0]


def take_rank_factor(fixed: FixedEffects) -> np.ndarray | None:
    """The QR factorization of ``fixed.X`` that the rank check of this design made
    (LAPACK ``dgeqrf``'s packed output), handed over once, or None.

    The fit's fixed-effects basis (:meth:`~mixedmodels.linalg.basis.FixedBasis.of`, unit
    weights) factors the same matrix the same way: the same call on the same numbers,
    so the same factor bit for bit. :func:`build_fixed` attaches it to a small design's
    :class:`FixedEffects` (at most :data:`SERIAL_QR_SIZE` entries, every column kept) as
    an attribute outside the dataclass fields, so ``dataclasses.replace`` (a new ``X``)
    never carries it; the first call here takes it away, so a later fit of the same design
    (a refit after the caller changed ``X``) factors again. It is used only while it
    belongs to the ``X`` it was made from."""
    got = fixed.__dict__.pop("_rank_qr", None)
    if got is None:
        return None
    X, qr = got
    return qr if X is fixed.X else None


def _aliased_and_factor(X: np.ndarray, tol: float = RANK_TOL
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`drop_aliased_columns`'s mask and the QR factorization it read it from
    (``dgeqrf``'s packed output; None where none was made: more columns than rows)."""
    n, p = X.shape
    if p == 0:
        return np.ones(0, dtype=bool), None
    if n >= p:
        # under the package's BLAS thread control like every other factorization: with
        # the library's default threads this small QR spins idle threads and, on a busy
        # machine, stalls (644 x 14: 20 ms wall, 7 ms CPU, against 0.1 ms on one thread).
        # A matrix of at most SERIAL_QR_SIZE entries never reaches a threaded kernel, and
        # switching the threads costs four times the QR (sleepstudy: 12 us against 3 us)
        limit = nullcontext() if n * p <= SERIAL_QR_SIZE else blas_threads(p)
        with limit:
            # LAPACK's QR directly (numpy's qr wrapper costs more than the work on small
            # designs); R is the upper triangle of its first p rows
            qr, _, _, info = lapack.dgeqrf(np.asarray(X, dtype=float))
        if info != 0:
            raise np.linalg.LinAlgError(f"QR of the fixed-effects matrix failed (info={info})")
        if p <= SCALAR_RANK_MAX_P:
            return _keep_from_upper(qr[:p].tolist(), tol), qr
        R = qr[:p].copy()
        for i in range(1, p):           # below the diagonal: Householder vectors
            R[i, :i] = 0.0              # (row slices: np.triu costs ~6 us even at 2 x 2)
        return keep_from_triangular(R, tol), qr
    else:
        # more columns than rows: fall back to sequential projection
        norms = _column_norms(X)
        keep = norms > 0
        diag = np.zeros(p)
        basis = np.zeros((n, 0))
        for j in range(p):
            resid = X[:, j] - basis @ (basis.T @ X[:, j])
            diag[j] = np.linalg.norm(resid)
            if diag[j] > tol * max(norms[j], 1e-300):
                basis = np.column_stack([basis, resid / diag[j]])
    keep &= diag > tol * np.where(norms > 0, norms, 1.0)
    return keep, None


def _column_norms(A: np.ndarray) -> np.ndarray:
    """Euclidean norms of the columns of a real matrix: ``np.linalg.norm(A, axis=0)``'s
    own operations (the same values, bit for bit) without its argument handling, which
    costs more than the work on a few columns."""
    A = np.asarray(A, dtype=float)
    return np.sqrt(np.add.reduce(A * A, axis=0))


def _keep_from_upper(rows: list[list[float]], tol: float) -> np.ndarray:
    """:func:`keep_from_triangular` of the upper triangle of ``rows`` (R's rows as Python
    lists; what lies below the diagonal is ignored), on Python floats: the same
    operations in the same order -- each column's squares summed from the first row down,
    as numpy's reduction over the rows adds them (the zeros below the diagonal add
    nothing), a correctly rounded square root -- so the same answer bit for bit, without
    a dozen numpy calls on a few numbers."""
    keep = []
    for j in range(len(rows)):
        s = rows[0][j] * rows[0][j]
        for i in range(1, j + 1):
            s = s + rows[i][j] * rows[i][j]
        norm = math.sqrt(s) if s >= 0.0 else math.nan     # (NaN stays NaN)
        keep.append(norm > 0 and abs(rows[j][j]) > tol * (norm if norm > 0 else 1.0))
    return np.array(keep, dtype=bool)


def keep_from_triangular(R: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """The rank rule of :func:`drop_aliased_columns` read off the triangular factor ``R``
    of ``X`` (p x p; ``X = QR``): the column norms of ``X`` are those of ``R``, so the rule
    needs only ``R``, which a chunked backend reduces without holding ``X``."""
    norms = _column_norms(R)
    diag = np.abs(np.diag(R))
    return (norms > 0) & (diag > tol * np.where(norms > 0, norms, 1.0))


def build_fixed(formula: str, frame: pd.DataFrame,
                contrasts: dict | None = None, check_rank: bool = True) -> FixedEffects:
    """Evaluate the fixed-effects right-hand side on the (complete-case) model frame.

    Parameters
    ----------
    formula : str
        Right-hand side in formulaic's syntax.
    frame : pandas.DataFrame
        The model frame.
    contrasts : dict, optional
        Column name -> formulaic ``Contrasts`` (see :mod:`.contrasts`).
    check_rank : bool
        Drop aliased columns (default). False keeps every column and skips the checks on
        the rows of ``frame``: for a template frame standing for data held elsewhere,
        whose rank is checked on the reduced cross-products instead.
    """
    simple = simple_matrix(formula, frame)
    if simple is not None:
        X, names = simple
        r_names = simple_r_names(names, simple_has_intercept(formula))
        return _checked(X, names, r_names, None, formula, check_rank)
    fast = fast_matrix(formula, frame, contrasts)
    if fast is not None:
        # factors and interactions built directly; formulaic's spec (new data, term
        # tables) only when asked for
        return _checked(fast.X, fast.names, fast.r_names,
                        LazyModelSpec(formula, frame, contrasts), formula, check_rank)
    try:
        with warnings.catch_warnings():
            # log(0), sqrt(-1): materialize() drops and reports those rows
            warnings.simplefilter("ignore", RuntimeWarning)
            mm = build_matrix(formula, frame, contrasts)
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
    if check_rank:
        _warn_single_levels(mm.model_spec)
    r_names = r_coefficient_names(mm.model_spec, list(names))
    return _checked(X, names, r_names, mm.model_spec, formula, check_rank)


def _warn_single_levels(model_spec) -> None:
    """A factor with one level has no contrast: it vanishes from X (R stops instead)."""
    for expr, (kind, state) in model_spec.encoder_state.items():
        levels = list(state.get("categories", ()))
        if getattr(kind, "value", kind) == "categorical" and len(levels) == 1:
            warnings.warn(
                f"the factor {expr!r} has a single level ({levels[0]!r}) in the rows used, so "
                "it has no contrast and is left out of the fixed effects (R stops here: "
                "'contrasts can be applied only to factors with 2 or more levels'); drop it "
                "from the formula or check the data",
                FormulaWarning,
                stacklevel=user_stacklevel(),
            )


def unique_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` made unique: a repeat of an earlier name is backticked (a data column called
    ``Intercept`` after formulaic's intercept, which always comes first), then numbered if
    it still repeats."""
    if len(set(names)) == len(names):
        return names
    out, seen = [], set()
    for n in names:
        candidate, k = (f"`{n}`" if n in seen else n), 0
        while candidate in seen:
            k += 1
            candidate = f"`{n}`.{k}"
        seen.add(candidate)
        out.append(candidate)
    return tuple(out)


def _checked(X: np.ndarray, names: tuple[str, ...], r_names: tuple[str, ...], model_spec,
             formula: str, check_rank: bool = True) -> FixedEffects:
    """Make names unique, drop aliased columns (with lme4's message) and wrap up."""
    names = unique_names(names)
    if not check_rank or not np.isfinite(X).all():
        # materialize() drops the rows with missing/infinite values and evaluates again;
        # the rank check is only meaningful on the rows that are fitted
        return FixedEffects(X, names, (), model_spec, formula, r_names)
    fixed = FixedEffects(np.ascontiguousarray(X), names, (), model_spec, formula, r_names)
    keep, qr = _aliased_and_factor(X)
    out = keep_columns(fixed, keep, stacklevel=4)
    if out is fixed and qr is not None and X.size <= SERIAL_QR_SIZE:
        # for the fit's basis (take_rank_factor): outside the frozen fields, so
        # dataclasses.replace drops it
        fixed.__dict__["_rank_qr"] = (fixed.X, qr)
    # X was found finite above (a subset of its columns is too): materialize's check of
    # the parts for non-finite values need not scan it again (known_finite)
    out.__dict__["_finite_X"] = out.X
    return out


def known_finite(fixed: FixedEffects) -> bool:
    """Whether :func:`build_fixed`'s rank check found every value of ``fixed.X`` finite
    (True only while ``X`` is the matrix it checked: ``dataclasses.replace`` and a new
    ``X`` forget it)."""
    return fixed.__dict__.get("_finite_X") is fixed.X


def keep_columns(fixed: FixedEffects, keep: np.ndarray, stacklevel: int = 2) -> FixedEffects:
    """``fixed`` without the aliased columns (``keep`` False), with lme4's warning.

    Parameters
    ----------
    fixed : FixedEffects
        With every column of the model matrix (``columns`` None).
    keep : ndarray of bool (p,)
    stacklevel : int
        Ignored (kept for callers that pass it): the warning names the first frame
        outside the package (:func:`mixedmodels._messages.user_stacklevel`).

    Returns
    -------
    FixedEffects
        The same object when every column is kept.
    """
    names = fixed.names
    dropped = tuple(n for n, k in zip(names, keep, strict=True) if not k)
    if not dropped:
        return fixed
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
        f"column{'s' if len(dropped) > 1 else ''} / coefficient"
        f"{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}",
        RankDeficiencyWarning,
        stacklevel=user_stacklevel(),
    )
    columns = tuple(int(j) for j in np.flatnonzero(keep))
    return FixedEffects(np.ascontiguousarray(fixed.X[:, keep]), tuple(names[j] for j in columns),
                        dropped, fixed.model_spec, fixed.formula,
                        tuple(fixed.r_names[j] for j in columns), columns)

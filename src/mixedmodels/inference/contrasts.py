r"""Hypothesis matrices of type I, II and III tests of fixed-effect terms (lmerTest's).

Each function returns, per term, a matrix ``L`` (rows: contrasts, columns: the columns of
``X``) such that the term's test is ``L beta = 0``.

* **Type I** (sequential): with ``X'X = L_D D L_D'`` (``L_D`` unit lower triangular, the
  Doolittle factor), the rows of ``L_D'`` belonging to a term test it after the terms before
  it.
* **Type II**: a term not contained in any other is tested marginally (the rows of the
  identity for its columns); otherwise the Doolittle factor is computed with the term and the
  terms containing it moved last, so it is tested after everything that does not contain it.
* **Type III** (SAS's): the hypotheses are written on the full cell-means ("rank-deficient")
  design ``X_rd`` of all levels of every term, mapped to the model's coefficients by
  ``X^+ X_rd``, and each term's columns are orthogonalized against those of the terms
  containing it (highest order first). The rows that correspond to the model's own columns
  form the hypothesis. With treatment contrasts these are the tests SAS and lmerTest report.
  Other codings (sum, Helmert, the polynomial contrasts of ordered factors) are handled as
  lmerTest does: the hypotheses are formed on the treatment-coded matrix ``X_t`` of the same
  formula and carried to the model's coefficients by ``L_t X_t^+ X``.
"""

from __future__ import annotations

import numpy as np

from .._errors import MixedModelsError
from .terms import FixedTerm, contained_in, fixed_terms, has_intercept

__all__ = ["contrasts_type1", "contrasts_type2", "contrasts_type3", "term_contrasts",
           "zapsmall"]

#: Doolittle entries below this are set to zero (lmerTest's ``doolittle(eps = 1e-6)``).
DOOLITTLE_EPS = 1e-6
#: Contrast rows with absolute sum below this are dropped (lmerTest).
ZERO_ROW_TOL = 1e-8
#: Significant digits kept by :func:`zapsmall` (R's default).
ZAPSMALL_DIGITS = 7
#: Columns equal within this (relative) are the same column of the cell-means design.
COLUMN_MATCH_TOL = 1e-10


def zapsmall(x: np.ndarray, digits: int = ZAPSMALL_DIGITS) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    x = np.asarray(x, dtype=float)
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx <= 0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _doolittle_lower(A: np.ndarray) -> np.ndarray:
    """Unit lower-triangular Doolittle factor ``L`` of a symmetric positive definite
    ``A = L U`` (via Cholesky: ``L = C diag(C)^{-1}``), small entries zeroed as lmerTest."""
    C = np.linalg.cholesky(A)
    L = C / np.diag(C)[None, :]
    L[np.abs(L) < DOOLITTLE_EPS] = 0.0
    return L


def _nonzero_rows(L: np.ndarray) -> np.ndarray:
    return L[np.sum(np.abs(L), axis=1) > ZERO_ROW_TOL]


def contrasts_type1(design) -> dict[str, np.ndarray]:
    """Sequential (type I) hypothesis matrices per term."""
    X = design.X
    p = X.shape[1]
    terms = fixed_terms(design)
    Lt = np.ones((1, 1)) if p == 1 else _doolittle_lower(X.T @ X).T
    return {t.label: Lt[list(t.columns)] for t in terms}


def contrasts_type2(design) -> dict[str, np.ndarray]:
    """Type II hypothesis matrices per term (lmerTest's ``get_contrasts_type2_unfolded``)."""
    terms = fixed_terms(design)
    X = design.X
    p = X.shape[1]
    if p <= 1 or len(terms) <= 1:
        return contrasts_type1(design)
    out = {}
    for t in terms:
        containing = contained_in(t, terms)
        if not containing:
            out[t.label] = np.eye(p)[list(t.columns)]
            continue
        last = list(t.columns) + [c for u in containing for c in u.columns]
        order = [c for c in range(p) if c not in last] + last
        Lt = _doolittle_lower(X[:, order].T @ X[:, order]).T
        rows = [order.index(c) for c in t.columns]
        back = np.argsort(order)
        out[t.label] = Lt[rows][:, back]
    return out


def _cell_means_design(design, terms: list[FixedTerm]) -> np.ndarray:
    """lmerTest's ``get_rdX``: every term with all its levels (``~ 0 + term``), and the
    intercept."""
    from formulaic import model_matrix

    blocks = []
    if has_intercept(design):
        blocks.append(np.ones((design.nobs, 1)))
    for t in terms:
        mm = model_matrix(f"0 + {t.label}", design.frame, ensure_full_rank=False)
        blocks.append(np.asarray(mm, dtype=float))
    return np.hstack(blocks)


def _match_columns(X: np.ndarray, rdX: np.ndarray, names) -> np.ndarray:
    """For each column of X, the index of the identical column of ``rdX``."""
    norms = np.linalg.norm(rdX, axis=0)
    idx = []
    for j in range(X.shape[1]):
        diff = np.linalg.norm(rdX - X[:, [j]], axis=0)
        hit = np.flatnonzero(diff <= COLUMN_MATCH_TOL * np.maximum(norms, 1.0))
        if hit.size == 0:
            raise MixedModelsError(
                "type III hypotheses are computed for treatment-coded factors (R's default "
                f"contrasts); column {names[j]!r} of the fixed-effects matrix is not an "
                "indicator or product column. Refit with default contrasts, or use type=1")
        idx.append(int(hit[0]))
    return np.asarray(idx)


def _treatment_coded(design):
    """The design's fixed effects rebuilt with R's default (treatment) contrasts for every
    factor -- lmerTest's ``get_model_matrix(type = "remake", contrasts =
    "contr.treatment")`` -- as the few attributes :func:`contrasts_type3` reads; None when
    the formula has no such rebuild (no formula text or model frame)."""
    import warnings
    from types import SimpleNamespace

    import pandas as pd

    from ..design.fixed import build_fixed

    formula = getattr(design.fixed, "formula", None)
    frame = getattr(design, "frame", None)
    if not formula or frame is None:
        return None
    frame = frame.copy(deep=False)
    for col in frame.columns:
        dtype = frame[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered:
            frame[col] = frame[col].cat.as_unordered()     # polynomial -> treatment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the rank message was given for the fit itself
        fixed = build_fixed(formula, frame)
    return SimpleNamespace(X=fixed.X, fixed=fixed, frame=design.frame, nobs=design.nobs,
                           spec=getattr(design, "spec", None))


def contrasts_type3(design) -> dict[str, np.ndarray]:
    """Type III hypothesis matrices per term (lmerTest's ``extract_contrasts_type3``; for
    codings other than treatment, lmerTest's ``get_contrasts_type3``: the treatment-coded
    hypotheses mapped to the model's coefficients)."""
    terms = fixed_terms(design)
    X = design.X
    if X.shape[1] <= 1 or len(terms) <= 1:
        return contrasts_type1(design)
    try:
        return _contrasts_type3_treatment(design, terms)
    except MixedModelsError:
        treated = _treatment_coded(design)
        if treated is None:
            raise
    L_t = _contrasts_type3_treatment(treated, fixed_terms(treated))
    carry = zapsmall(np.linalg.pinv(treated.X) @ X)          # X_t^+ X: (p_t, p)
    return {t.label: _nonzero_rows(zapsmall(L_t[t.label] @ carry)) for t in terms}


def _contrasts_type3_treatment(design, terms: list[FixedTerm]) -> dict[str, np.ndarray]:
    """:func:`contrasts_type3` for a treatment-coded ``design`` (a MixedModelsError from
    :func:`_match_columns` otherwise)."""
    X = design.X
    rdX = _cell_means_design(design, terms)
    L = zapsmall((np.linalg.pinv(X) @ rdX).T)            # (cells, p)
    by_order = sorted(terms, key=lambda t: -t.order)       # stable: formula order for ties
    for t in by_order:
        containing = contained_in(t, terms)
        if not containing:
            continue
        cols = list(t.columns)
        basis = L[:, [c for u in containing for c in u.columns]]
        coef, *_ = np.linalg.lstsq(basis, L[:, cols], rcond=None)
        L[:, cols] = zapsmall(L[:, cols] - basis @ coef)
    L = L[_match_columns(X, rdX, design.fixed.names)]     # rows in the order of X's columns
    return {t.label: _nonzero_rows(L[:, list(t.columns)].T) for t in terms}


def term_contrasts(design, type: int | str) -> dict[str, np.ndarray]:
    """Hypothesis matrices of ``type`` 1, 2 or 3 (``"I"``, ``"II"``, ``"III"`` accepted)."""
    key = {"1": 1, "I": 1, "2": 2, "II": 2, "3": 3, "III": 3}.get(str(type).upper())
    if key is None:
        raise ValueError(f"type must be 1, 2 or 3 (or 'I', 'II', 'III'), got {type!r}")
    return {1: contrasts_type1, 2: contrasts_type2, 3: contrasts_type3}[key](design)

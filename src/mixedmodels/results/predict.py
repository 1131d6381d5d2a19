"""Linear predictors for the fitting data or new data, with or without random effects."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError
from ..design import Design
from ..design.response import evaluate_numeric

__all__ = ["linear_predictor", "select_terms"]

_NONE_FORMS = {"~0", "0", "~ 0", "NA", "~NA"}


def select_terms(design: Design, re_form) -> list[int]:
    """Indices of the random-effects terms ``re_form`` keeps.

    ``None`` keeps every term (lme4's default); ``"~0"``, ``"0"``, ``"NA"`` or ``False``
    keep none (population-level prediction); a formula such as ``"~(1 | Subject)"`` keeps
    the terms it lists.
    """
    if re_form is None or re_form is True:
        return list(range(len(design.terms)))
    if re_form is False or (isinstance(re_form, float) and np.isnan(re_form)):
        return []
    if not isinstance(re_form, str):
        raise FormulaError(f"re_form must be None, '~0' or a formula string, got {re_form!r}")
    text = re_form.strip()
    if text in _NONE_FORMS or re.fullmatch(r"~\s*0", text):
        return []
    from ..formula import parse_formula

    spec = parse_formula("y " + (text if text.startswith("~") else "~ " + text))
    wanted = {(t.expr.replace(" ", ""), t.group) for t in spec.random}
    keep = [i for i, t in enumerate(design.terms)
            if (t.term.expr.replace(" ", ""), t.group) in wanted]
    found = {(design.terms[i].term.expr.replace(" ", ""), design.terms[i].group) for i in keep}
    missing = wanted - found
    if missing:
        raise FormulaError(
            f"re_form {re_form!r} lists terms not in the model: "
            + ", ".join(f"({e} | {g})" for e, g in missing)
        )
    return keep


def linear_predictor(
    design: Design,
    beta: np.ndarray,
    b: list,
    newdata: pd.DataFrame | None = None,
    re_form=None,
    allow_new_levels: bool = False,
    offset=None,
) -> np.ndarray:
    """``X beta + sum_k Z_k b_k + offset`` on the fitting data or on ``newdata``.

    New levels of a grouping factor contribute zero (the population mean) when
    ``allow_new_levels`` is True, and raise a :class:`DataError` naming them otherwise.
    """
    keep = select_terms(design, re_form)
    if newdata is None:
        eta = design.X @ beta + design.offset
        for k in keep:
            t = design.terms[k]
            eta += np.einsum("ij,ij->i", t.Z, b[k][t.grouping.codes])
        return eta
    if not isinstance(newdata, pd.DataFrame):
        newdata = pd.DataFrame(newdata)
    frame = _prepare_newdata(design, newdata)
    X = design.fixed.new_matrix(frame)
    eta = X @ beta
    for expr in design.spec.offsets:
        eta = eta + evaluate_numeric(expr, frame, "offset")
    if offset is not None:
        eta = eta + (frame[offset].to_numpy(float) if isinstance(offset, str)
                     else np.asarray(offset, float))
    for k in keep:
        t = design.terms[k]
        codes = t.grouping.code_new(frame, t.term.group_vars)
        new = codes < 0
        if new.any() and not allow_new_levels:
            labels = sorted(set(pd.Index(frame.index)[new].map(str)))[:5]
            raise DataError(
                f"newdata has {int(new.sum())} rows with levels of {t.group!r} not seen in the "
                f"fit (rows {', '.join(labels)}...); pass allow_new_levels=True to predict "
                "them at the population level, or re_form='~0' to drop random effects"
            )
        Z = t.new_Z(frame)
        contrib = np.einsum("ij,ij->i", Z, b[k][np.where(new, 0, codes)])
        eta = eta + np.where(new, 0.0, contrib)
    return eta


def _prepare_newdata(design: Design, newdata: pd.DataFrame) -> pd.DataFrame:
    """Cast categorical columns to the fitting data's categories so contrasts line up."""
    frame = newdata.copy()
    for col in design.frame.columns:
        if col not in frame.columns:
            continue
        dtype = design.frame[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) and not isinstance(
                frame[col].dtype, pd.CategoricalDtype):
            vals = frame[col].astype(str)
            cats = dtype.categories.astype(str)
            unknown = set(vals.unique()) - set(cats)
            if unknown:
                if col in _grouping_columns(design):
                    continue  # new groups are handled by allow_new_levels
                raise DataError(
                    f"newdata column {col!r} has levels not in the fit: {sorted(unknown)[:5]}"
                )
            frame[col] = pd.Categorical(vals, categories=cats)
    return frame


def _grouping_columns(design: Design) -> set[str]:
    return {v for t in design.terms for v in t.term.group_vars}

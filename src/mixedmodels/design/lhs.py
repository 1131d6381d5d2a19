"""Left-hand sides of GLMM formulas: ``cbind(successes, failures)``, factors, booleans.

These are the response forms R's ``binomial()`` accepts. The functions here are handed to
:func:`mixedmodels.design.materialize` as its ``response=`` callable; they return the
response (proportions for the binomial) and, in ``extra["trials"]``, the numbers of trials
that become prior weights (multiplied with any ``weights=`` the user gave, as R does).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError
from ..families.density import binomial_response
from ..families.family import Binomial, Family
from .response import evaluate_numeric
from .variables import expression_variables

__all__ = ["binomial_parts", "make_response", "response_variables", "split_cbind"]

_CBIND = re.compile(r"^\s*cbind\s*\((.*)\)\s*$", re.DOTALL)


@functools.lru_cache(maxsize=256)
def split_cbind(expr: str) -> tuple[str, str] | None:
    """Split a ``cbind(successes, failures)`` response into its two expressions.

    Commas inside parentheses do not split (``cbind(f(a, b), n - f(a, b))``).

    Parameters
    ----------
    expr : str
        The left-hand side of a formula.

    Returns
    -------
    tuple of str or None
        ``("s", "n - s")`` for ``"cbind(s, n - s)"``; None when ``expr`` is not a cbind.
        Cached by the text: every fit of a formula splits its response more than once.
    """
    m = _CBIND.match(expr)
    if not m:
        return None
    inner, depth, parts, start = m.group(1), 0, [], 0
    for pos, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:pos])
            start = pos + 1
    parts.append(inner[start:])
    parts = [p.strip() for p in parts]
    if len(parts) != 2 or not all(parts):
        raise FormulaError(
            f"cbind() on the left of the formula needs exactly two columns, successes and "
            f"failures: cbind(successes, failures); got {expr!r}"
        )
    return parts[0], parts[1]


_ARITH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?)\s*([-+*/])\s*"
                    r"([A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?)\s*$")
_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _operand(tok: str, frame: pd.DataFrame) -> np.ndarray | float | None:
    """A numeric column's values as floats, a number, or None (anything else)."""
    if tok in frame.columns:
        dtype = frame[tok].dtype
        if isinstance(dtype, np.dtype):
            # numpy numbers converted directly (pandas' dtype tests and to_numpy's
            # argument handling cost more than the conversion on small data)
            return frame[tok].to_numpy().astype(float) if dtype.kind in "iuf" else None
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return frame[tok].to_numpy(dtype=float)
        return None
    return float(tok) if tok[0].isdigit() else None


def _numeric(expr: str, frame: pd.DataFrame, role: str) -> np.ndarray:
    """A column, or ``a op b`` of two numeric columns / numbers (``size - incidence``,
    the usual failure count), without a formulaic round trip; anything else goes to
    :func:`~mixedmodels.design.response.evaluate_numeric`."""
    m = _ARITH.match(expr)
    if m:
        a, op, b = m.groups()
        left, right = _operand(a, frame), _operand(b, frame)
        if left is not None and right is not None:
            value = _OPS[op](left, right)
            if np.ndim(value) == 0:                  # two numbers: one value per row
                return np.full(len(frame), float(value))
            return np.asarray(value, dtype=float)
    return evaluate_numeric(expr, frame, role)


def response_variables(expr: str) -> list[str]:
    """Data columns the response reads (both sides of a cbind).

    Parameters
    ----------
    expr : str
        The left-hand side of a formula.

    Returns
    -------
    list of str
        Column names in order of appearance, without repeats.
    """
    pair = split_cbind(expr)
    if pair is None:
        return expression_variables(expr)
    out: list[str] = []
    for p in pair:
        out += [v for v in expression_variables(p) if v not in out]
    return out


def _binomial_response(expr: str, frame: pd.DataFrame):
    pair = split_cbind(expr)
    if pair is not None:
        succ = _numeric(pair[0], frame, "number of successes")
        fail = _numeric(pair[1], frame, "number of failures")
        for name, v in ((pair[0], succ), (pair[1], fail)):
            if np.any(v < 0):
                raise DataError(
                    f"cbind({pair[0]}, {pair[1]}): {name!r} has {int(np.sum(v < 0))} "
                    f"negative values (smallest {np.min(v):g}); successes and failures are "
                    "counts and must be >= 0 (the second column is the number of failures, "
                    "not of trials)"
                )
        trials = succ + fail
        y = np.divide(succ, trials, out=np.zeros_like(succ), where=trials > 0)
        return y, {"trials": trials, "response_kind": "cbind"}
    col = frame[expr] if expr in frame.columns else None
    if col is not None and pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=float), {"response_kind": "boolean"}
    if col is not None and (isinstance(col.dtype, pd.CategoricalDtype)
                            or pd.api.types.is_object_dtype(col.dtype)
                            or pd.api.types.is_string_dtype(col.dtype)):
        cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
        levels = list(cat.cat.categories)
        if len(levels) < 2:
            raise DataError(
                f"the binomial response {expr!r} is a factor with only {len(levels)} level "
                f"({levels}); it needs two (the first is failure, the others success)"
            )
        # R: the first level denotes failure and all others success
        return (cat.cat.codes.to_numpy() > 0).astype(float), {
            "response_kind": "factor", "levels": (levels[0], tuple(levels[1:]))}
    return evaluate_numeric(expr, frame, "response"), {"response_kind": "numeric"}


def _numeric_response(family: Family):
    def response(expr: str, frame: pd.DataFrame):
        if split_cbind(expr) is not None:
            raise FormulaError(
                f"cbind(successes, failures) responses are for the binomial family, not "
                f"{family.name}"
            )
        if expr in frame.columns:
            col = frame[expr]
            if pd.api.types.is_bool_dtype(col.dtype) or isinstance(
                    col.dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(col.dtype):
                raise DataError(
                    f"the response {expr!r} ({col.dtype}) is not numeric; a {family.name} "
                    "model needs numbers (binary or factor responses go with "
                    "family='binomial')"
                )
        return evaluate_numeric(expr, frame, "response"), {"response_kind": "numeric"}

    return response


def make_response(family: Family):
    """The ``response=`` callable for :func:`~mixedmodels.design.materialize`.

    Parameters
    ----------
    family : Family
        Binomial families accept ``cbind(successes, failures)`` (``y`` becomes the
        proportion, the trials go to ``extra["trials"]``), booleans and two-level factors
        (the first level is failure, as in R); other families need a numeric response.

    Returns
    -------
    callable
        ``response(expr, frame) -> (y, extra)`` with ``y`` a float array and ``extra`` a
        dict (``response_kind``, and ``trials`` / ``levels`` where they apply).
    """
    if isinstance(family, Binomial):
        return _binomial_response
    return _numeric_response(family)


def binomial_parts(design):
    """``(successes, size, weights)`` from the binomial response forms glmer accepts
    (a materialized :class:`~mixedmodels.design.Design`), for the density-based engines."""
    w = np.ones(design.nobs) if design.weights is None else np.asarray(design.weights)
    trials = design.extra.get("trials")
    y = design.y
    if trials is not None:                      # cbind(successes, failures)
        return y * trials, trials, w
    # 0/1 responses, or proportions whose weights are the numbers of trials (R's
    # binomial convention; successes within rounding of whole numbers are made whole)
    return binomial_response(y, w)

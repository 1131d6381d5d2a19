r"""``poly(x, k)``: the orthonormal polynomial basis of R's ``poly`` and formulaic's.

The columns are the polynomials of degree 1 to ``k`` in ``x`` that are orthonormal over the
rows of the fit: with the monic three-term recurrence

.. math:: P_0 = 1, \quad P_1 = (x - \alpha_0) P_0, \quad
          P_{i+1} = (x - \alpha_i) P_i - \frac{\|P_i\|^2}{\|P_{i-1}\|^2} P_{i-1},
          \qquad \alpha_i = \frac{\sum x P_i^2}{\sum P_i^2},

column ``i`` is ``P_i / ||P_i||``. R computes the same basis by a QR decomposition of the
centred powers (``Q diag(R)``: each column's sign makes its leading coefficient positive,
as the monic recurrence does), so the values agree to rounding; formulaic's ``poly`` runs
this recurrence. The recurrence is written here so that :mod:`.fast` builds a model
matrix with ``poly`` terms without formulaic (2-3 ms of a sleepstudy fit); new data still
go through formulaic's spec, which keeps the ``alpha`` and norms of the fit's rows.

A basis of degree ``k`` needs ``k + 1`` distinct values: with fewer the last polynomials
vanish on every row and their normalization divides rounding by rounding. R refuses
(``'degree' must be less than number of unique points``); so does :func:`poly_basis`.
"""

from __future__ import annotations

import ast

import numpy as np

from .._errors import FormulaError

__all__ = ["poly_arguments", "poly_basis", "poly_labels", "raw_powers"]


def poly_arguments(call: ast.Call) -> tuple[ast.AST, int, bool] | None:
    """``(x, degree, raw)`` of ``poly(x)``, ``poly(x, k)``, ``poly(x, degree=k)`` or
    ``poly(x, k, raw=True)`` with an integer literal ``k >= 1`` and a logical literal
    ``raw``; None for anything else (other arguments or keywords), which formulaic
    evaluates."""
    if not call.args or len(call.args) > 2:
        return None
    degree_node = call.args[1] if len(call.args) == 2 else None
    raw = False
    for kw in call.keywords:
        if kw.arg == "degree" and degree_node is None:
            degree_node = kw.value
        elif kw.arg == "raw" and isinstance(kw.value, ast.Constant) and \
                type(kw.value.value) is bool:
            raw = kw.value.value
        else:
            return None
    degree = 1
    if degree_node is not None:
        if not (isinstance(degree_node, ast.Constant) and type(degree_node.value) is int):
            return None
        degree = degree_node.value
    if degree < 1:
        return None
    return call.args[0], degree, raw


def poly_labels(degree: int, raw: bool) -> tuple[tuple[str, str], ...]:
    """``(formulaic's label, R's suffix)`` of each column: R numbers the columns ``1 .. k``
    either way; formulaic labels its orthonormal columns ``1 .. k`` but its raw powers
    ``0 .. k-1`` (their positions)."""
    return tuple((str(k - 1 if raw else k), str(k)) for k in range(1, degree + 1))


def raw_powers(x: np.ndarray, degree: int) -> np.ndarray:
    """``poly(x, k, raw=True)``: the columns ``x, x^2, ..., x^k``."""
    return np.stack([np.power(x, k) for k in range(1, degree + 1)], axis=1)


def poly_basis(x: np.ndarray, degree: int, label: str) -> np.ndarray:
    """The ``(n, degree)`` orthonormal basis of the module docstring.

    Parameters
    ----------
    x : ndarray (n,)
        Finite values.
    degree : int
    label : str
        The call as the formula writes it, for the error.

    Raises
    ------
    FormulaError
        When ``x`` has ``degree`` or fewer distinct values.
    """
    n_unique = np.unique(x).size
    if degree >= n_unique:
        raise FormulaError(
            f"{label}: the degree ({degree}) must be less than the number of distinct "
            f"values of its variable ({n_unique}), as R's poly() requires; lower the "
            "degree"
        )
    P = np.empty((x.shape[0], degree + 1))
    P[:, 0] = 1.0
    norms2 = [float(x.shape[0])]
    for i in range(1, degree + 1):
        prev = P[:, i - 1]
        alpha = np.sum(x * prev ** 2) / norms2[i - 1]
        P[:, i] = (x - alpha) * prev
        if i >= 2:
            P[:, i] -= (norms2[i - 1] / norms2[i - 2]) * P[:, i - 2]
        norms2.append(float(np.sum(P[:, i] ** 2)))
    return P[:, 1:] / np.sqrt(norms2[1:])

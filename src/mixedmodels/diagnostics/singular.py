"""Singular fits: covariance parameters on the boundary, as lme4's ``isSingular``."""

from __future__ import annotations

import numpy as np

__all__ = ["SINGULAR_TOL", "is_singular_theta", "singular_groups", "singular_message"]

#: lme4's ``isSingular(tol = 1e-4)``: a Cholesky diagonal below this counts as zero.
SINGULAR_TOL = 1e-4


def is_singular_theta(theta: np.ndarray, lower: np.ndarray, tol: float = SINGULAR_TOL) -> bool:
    """True when a parameter with a finite lower bound is within ``tol`` of it."""
    bounded = np.isfinite(lower)
    return bool(np.any(theta[bounded] - lower[bounded] < tol))


def singular_groups(terms, slices, theta: np.ndarray, tol: float = SINGULAR_TOL) -> list[str]:
    """Grouping factors of the terms whose covariance is on its boundary (each structure's
    ``is_singular``: lme4's bound rule for the Cholesky parameterizations, a vanishing sd
    or a correlation of +-1 for the structured ones), in order, without repeats."""
    out: list[str] = []
    for t, sl in zip(terms, slices, strict=True):
        if t.structure.is_singular(np.asarray(theta, dtype=float)[sl], tol) \
                and t.group not in out:
            out.append(t.group)
    return out


def singular_message(groups: list[str]) -> str:
    """Explain a singular fit, naming the grouping factors involved."""
    where = ", ".join(repr(g) for g in groups)
    return (
        f"boundary (singular) fit: the estimated random-effects covariance for {where} is "
        "singular (a variance is zero or a correlation is +-1). The data do not support "
        "that part of the model; consider removing or simplifying the term (see "
        "is_singular())."
    )

"""Linear predictors of a model on data: one :class:`LinearPredictor` per component.

The conditional component is the design's own ``X``, ``terms`` and ``offset``; the others
(``zi``, ``disp``) are built on the same complete-case model frame, so that every component
sees the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import DataError
from .fixed import FixedEffects, build_fixed
from .random import RandomEffectsTerm, build_random_term, term_order
from .response import evaluate_numeric

__all__ = ["LinearPredictor", "build_component"]


@dataclass(frozen=True)
class LinearPredictor:
    """One component's linear predictor ``eta = X beta + sum_k Z_k b_k + offset``.

    Attributes
    ----------
    name : str
        ``"cond"``, ``"zi"`` or ``"disp"``.
    fixed : FixedEffects
        ``X`` (n x p) and its column names.
    terms : tuple of RandomEffectsTerm
        Random-effects terms, by decreasing number of levels (lme4's order).
    offset : ndarray (n,)
    """

    name: str
    fixed: FixedEffects
    terms: tuple[RandomEffectsTerm, ...]
    offset: np.ndarray

    @property
    def X(self) -> np.ndarray:
        return self.fixed.X

    @property
    def p(self) -> int:
        return self.fixed.X.shape[1]

    @property
    def q(self) -> int:
        return sum(t.q for t in self.terms)

    @property
    def n_theta(self) -> int:
        return sum(t.structure.n_theta for t in self.terms)

    def theta_slices(self) -> list[slice]:
        """Slices of this component's theta belonging to each term."""
        out, start = [], 0
        for t in self.terms:
            out.append(slice(start, start + t.structure.n_theta))
            start += t.structure.n_theta
        return out


def build_component(component, frame: pd.DataFrame, contrasts=None,
                    matrices=None) -> LinearPredictor:
    """Materialize a :class:`~mixedmodels.formula.components.ComponentSpec` on the
    complete-case model frame.

    Raises
    ------
    DataError
        When an expression of the component gives missing or infinite values on the rows
        the conditional model uses (the rows are shared, so they cannot be dropped here).
    """
    what = {"zi": "ziformula", "disp": "dispformula"}.get(component.name, component.name)
    fixed = build_fixed(component.fixed, frame, contrasts)
    offset = np.zeros(len(frame))
    for expr in component.offsets:
        offset = offset + evaluate_numeric(expr, frame, f"offset of the {what}")
    terms = [build_random_term(t, frame, matrices) for t in component.random]
    bad = {}
    if fixed.X.shape[1]:
        cols = ~np.isfinite(fixed.X).all(axis=0)
        bad.update({name: int(np.sum(~np.isfinite(fixed.X[:, j])))
                    for j, name in enumerate(fixed.names) if cols[j]})
    if not np.isfinite(offset).all():
        bad["offset"] = int(np.sum(~np.isfinite(offset)))
    for t in terms:
        if not np.isfinite(t.Z).all():
            bad[t.term.source] = int(np.sum(~np.isfinite(t.Z).all(axis=1)))
    if bad:
        detail = ", ".join(f"{k!r}: {v} rows" for k, v in bad.items())
        raise DataError(
            f"the {what} {component.formula!r} gives missing or infinite values ({detail}); "
            "remove those rows from the data or change the transformation")
    order = term_order(terms)
    return LinearPredictor(component.name, fixed, tuple(terms[i] for i in order),
                           np.ascontiguousarray(offset))


def cond_predictor(fixed: FixedEffects, terms, offset: np.ndarray) -> LinearPredictor:
    """The conditional component of a design."""
    return LinearPredictor("cond", fixed, tuple(terms), offset)

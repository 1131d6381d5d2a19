"""Covariance structures for random-effects terms (theta <-> Lambda)."""

from __future__ import annotations

from .._errors import FormulaError
from .base import CovarianceStructure
from .unstructured import Unstructured

__all__ = ["CovarianceStructure", "Unstructured", "make_structure"]

_STRUCTURES: dict[str, type[CovarianceStructure]] = {"us": Unstructured}


def make_structure(keyword: str, p: int) -> CovarianceStructure:
    """Instantiate the covariance structure named ``keyword`` for ``p`` effects."""
    try:
        cls = _STRUCTURES[keyword]
    except KeyError:
        raise FormulaError(
            f"covariance structure {keyword}() is not available yet; available: "
            f"{', '.join(sorted(_STRUCTURES))}"
        ) from None
    return cls(p)

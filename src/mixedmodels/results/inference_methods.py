"""Inference methods of a fitted model (likelihood-ratio tests, intervals, df methods).

Kept apart from the result classes so that the inference code can grow in
:mod:`mixedmodels.inference` without touching them; the result classes inherit this mixin.
"""

from __future__ import annotations

__all__ = ["InferenceMixin"]


class InferenceMixin:
    """Methods that delegate to :mod:`mixedmodels.inference` (filled in as it grows)."""

"""Frozen results of fits and their display."""

from .glmm import GeneralizedLinearMixedModelResult
from .glmm_summary import GLMMSummary
from .glmmtmb import GlmmTMBResult
from .lmm import LinearMixedModelResult
from .recipe import FitRecipe, RecipeMixin
from .summary import LMMSummary
from .varcorr import VarCorr, VarCorrTerm

__all__ = [
    "FitRecipe",
    "GLMMSummary",
    "GeneralizedLinearMixedModelResult",
    "GlmmTMBResult",
    "LMMSummary",
    "LinearMixedModelResult",
    "RecipeMixin",
    "VarCorr",
    "VarCorrTerm",
]

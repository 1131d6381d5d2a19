"""Frozen results of fits and their display."""

from .glmm import GeneralizedLinearMixedModelResult
from .glmm_summary import GLMMSummary
from .lmm import LinearMixedModelResult
from .summary import LMMSummary
from .varcorr import VarCorr, VarCorrTerm

__all__ = [
    "GLMMSummary",
    "GeneralizedLinearMixedModelResult",
    "LMMSummary",
    "LinearMixedModelResult",
    "VarCorr",
    "VarCorrTerm",
]

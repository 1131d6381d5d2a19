"""Frozen results of fits and their display."""

from .lmm import LinearMixedModelResult
from .summary import LMMSummary
from .varcorr import VarCorr, VarCorrTerm

__all__ = ["LMMSummary", "LinearMixedModelResult", "VarCorr", "VarCorrTerm"]

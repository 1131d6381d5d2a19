"""Objectives: LMM profiled deviance / REML criterion (GLMM Laplace and AGQ to come)."""

from .glmm import GLMMObjective, GLMMSolution
from .lmm import LMMObjective, LMMSolution
from .pirls import PIRLS, PIRLSError, PIRLSResult

__all__ = [
    "PIRLS",
    "GLMMObjective",
    "GLMMSolution",
    "LMMObjective",
    "LMMSolution",
    "PIRLSError",
    "PIRLSResult",
]

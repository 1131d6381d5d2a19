"""Objectives: LMM profiled deviance / REML criterion (GLMM Laplace and AGQ to come)."""

from .lmm import LMMObjective, LMMSolution

__all__ = ["LMMObjective", "LMMSolution"]

"""Objectives: the LMM profiled deviance / REML criterion (lmm.py), glmer's Laplace and
adaptive-quadrature deviance over PIRLS (glmm.py, pirls.py, agq.py), and the general Laplace
objective of glmmtmb with its exact gradient (laplace/)."""

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

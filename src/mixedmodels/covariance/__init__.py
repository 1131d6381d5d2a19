"""Covariance structures for random-effects terms (theta <-> Lambda), one class each, and
the registry the formula parser reads (:data:`REGISTRY`)."""

from __future__ import annotations

from .base import SINGULAR_TOL, CovarianceStructure, StructureData
from .correlated import AR1, CompoundSymmetry, ScaledCorrelation, Toeplitz
from .diagonal import Diagonal
from .known import Fixed, Proportional
from .reduced_rank import ReducedRank
from .registry import KEYWORDS, REGISTRY, StructureEntry, make_structure, normalize_options
from .spatial import Exponential, Gaussian, Matern, OrnsteinUhlenbeck
from .unstructured import Unstructured

__all__ = [
    "AR1",
    "KEYWORDS",
    "REGISTRY",
    "SINGULAR_TOL",
    "CompoundSymmetry",
    "CovarianceStructure",
    "Diagonal",
    "Exponential",
    "Fixed",
    "Gaussian",
    "Matern",
    "OrnsteinUhlenbeck",
    "Proportional",
    "ReducedRank",
    "ScaledCorrelation",
    "StructureData",
    "StructureEntry",
    "Toeplitz",
    "Unstructured",
    "make_structure",
    "normalize_options",
]

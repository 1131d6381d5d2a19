"""Diagnostics: convergence checks, singular fits, refits with every optimizer (allfit),
principal components of the random effects (rePCA), predictor scales."""

from .allfit import AllFitResult, allfit
from .convergence import (
    CONV_GRAD_TOL,
    NEGATIVE_CURVATURE_TOL,
    ConvergenceReport,
    check_convergence,
    check_convergence_gradient,
    finite_difference_derivatives,
)
from .overdispersion import OverdispersionTest, overdispersion_test
from .re_pca import RePCA, re_pca
from .scaling import SCALE_TOL, ScalingWarning, scale_advice
from .singular import SINGULAR_TOL, is_singular_theta, singular_groups, singular_message

__all__ = [
    "CONV_GRAD_TOL",
    "NEGATIVE_CURVATURE_TOL",
    "SCALE_TOL",
    "SINGULAR_TOL",
    "AllFitResult",
    "ConvergenceReport",
    "OverdispersionTest",
    "RePCA",
    "ScalingWarning",
    "allfit",
    "check_convergence",
    "check_convergence_gradient",
    "finite_difference_derivatives",
    "is_singular_theta",
    "overdispersion_test",
    "re_pca",
    "scale_advice",
    "singular_groups",
    "singular_message",
]

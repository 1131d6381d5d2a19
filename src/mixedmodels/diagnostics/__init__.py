"""Diagnostics: convergence checks, singular fits (residual diagnostics to come)."""

from .convergence import (
    CONV_GRAD_TOL,
    NEGATIVE_CURVATURE_TOL,
    ConvergenceReport,
    check_convergence,
    check_convergence_gradient,
    finite_difference_derivatives,
)
from .overdispersion import OverdispersionTest, overdispersion_test
from .singular import SINGULAR_TOL, is_singular_theta, singular_message

__all__ = [
    "CONV_GRAD_TOL",
    "NEGATIVE_CURVATURE_TOL",
    "SINGULAR_TOL",
    "ConvergenceReport",
    "OverdispersionTest",
    "check_convergence",
    "check_convergence_gradient",
    "finite_difference_derivatives",
    "is_singular_theta",
    "overdispersion_test",
    "singular_message",
]

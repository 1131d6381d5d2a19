"""Optimizers for the covariance parameters and the record of what they did."""

from .backends import DEFAULT_SETTINGS, OPTIMIZERS, minimize
from .bounded_bfgs import minimize_bounded_bfgs
from .gradient import minimize_with_gradient
from .summary import OptSummary

__all__ = ["DEFAULT_SETTINGS", "OPTIMIZERS", "OptSummary", "minimize", "minimize_bounded_bfgs",
           "minimize_with_gradient"]

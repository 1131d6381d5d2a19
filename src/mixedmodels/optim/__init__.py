"""Optimizers for the covariance parameters and the record of what they did."""

from .backends import DEFAULT_SETTINGS, OPTIMIZERS, minimize
from .summary import OptSummary

__all__ = ["DEFAULT_SETTINGS", "OPTIMIZERS", "OptSummary", "minimize"]

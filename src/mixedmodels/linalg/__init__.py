"""Linear algebra of the penalized least-squares system: layouts, blocked Cholesky."""

from .blocked import BlockedFactor, BlockedSystem
from .dense import DENSE_MAX_SIZE, DenseFactor, DenseSystem
from .layout import CrossProductPattern, CrossProducts, TermBlock

__all__ = [
    "DENSE_MAX_SIZE",
    "BlockedFactor",
    "BlockedSystem",
    "CrossProductPattern",
    "CrossProducts",
    "DenseFactor",
    "DenseSystem",
    "TermBlock",
]

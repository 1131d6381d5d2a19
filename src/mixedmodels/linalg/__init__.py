"""Linear algebra of the penalized least-squares system: layouts, blocked Cholesky."""

from .blocked import BlockedFactor, BlockedSystem
from .layout import CrossProductPattern, CrossProducts, TermBlock

__all__ = ["BlockedFactor", "BlockedSystem", "CrossProductPattern", "CrossProducts", "TermBlock"]

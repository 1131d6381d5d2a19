"""Linear algebra of the penalized least-squares system: layouts, blocked Cholesky."""

from .basis import FixedBasis
from .blocked import BlockedFactor, BlockedSystem
from .dense import DENSE_MAX_SIZE, DenseFactor, DenseSystem, dense_cross_product
from .layout import (
    BlockLayout,
    CrossProductPattern,
    CrossProducts,
    TermBlock,
    add_cross_products,
    level_blocks,
)
from .merged import BlockDiagonalStructure, MergedSystem, TermMerge, merge_blocks
from .sparse import SPARSE_MIN_REST, SparseFactor, SparseSystem

__all__ = [
    "DENSE_MAX_SIZE",
    "SPARSE_MIN_REST",
    "BlockDiagonalStructure",
    "BlockLayout",
    "BlockedFactor",
    "BlockedSystem",
    "CrossProductPattern",
    "CrossProducts",
    "DenseFactor",
    "DenseSystem",
    "FixedBasis",
    "MergedSystem",
    "SparseFactor",
    "SparseSystem",
    "TermBlock",
    "TermMerge",
    "add_cross_products",
    "dense_cross_product",
    "level_blocks",
    "merge_blocks",
]

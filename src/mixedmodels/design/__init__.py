"""Design materialization: DataFrame + spec -> numeric :class:`Design`."""

from .design import (
    Design,
    check_lmm_identifiable,
    check_lmm_sizes,
    constant_response_message,
    materialize,
    model_columns,
    nonfinite_rows,
)
from .fixed import FixedEffects, build_fixed, drop_aliased_columns
from .frame import DroppedRows, build_model_frame
from .random import GroupingFactor, RandomEffectsTerm, build_grouping, build_random_term

__all__ = [
    "Design",
    "DroppedRows",
    "FixedEffects",
    "GroupingFactor",
    "RandomEffectsTerm",
    "build_fixed",
    "build_grouping",
    "build_model_frame",
    "build_random_term",
    "check_lmm_identifiable",
    "check_lmm_sizes",
    "constant_response_message",
    "drop_aliased_columns",
    "materialize",
    "model_columns",
    "nonfinite_rows",
]

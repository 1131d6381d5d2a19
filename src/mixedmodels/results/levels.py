"""Grouping-factor levels as the user's values, for the index of ``ranef`` and ``coef``.

The design codes every grouping factor by string labels (:mod:`mixedmodels.design.random`):
interactions (``a:b``) and columns mixing types need one common key, and new data must find
``308`` whether it arrives as ``308``, ``308.0`` or ``"308"``. A user indexing the random
effects of a factor that is one numeric column expects its values back, though:
``ranef()["Subject"].loc[308]``. For such factors (a single column of integers, floats or
booleans, or a categorical with such categories) the index holds the original values, in
the levels' order and with the column's dtype; every other factor keeps its labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["level_index"]


def _numeric(dtype) -> bool:
    return (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
        and not pd.api.types.is_complex_dtype(dtype)


def level_index(design, term) -> pd.Index:
    """Index of ``term``'s levels: the original values where the grouping factor is one
    numeric column (see the module docstring), the string labels otherwise."""
    grouping = term.grouping
    labels = grouping.levels
    variables = term.term.group_vars
    if len(variables) != 1 or variables[0] not in design.frame.columns:
        return labels
    col = design.frame[variables[0]]
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if not _numeric(dtype.categories.dtype):
            return labels
    elif not _numeric(dtype):
        return labels
    codes = grouping.codes
    if codes.size == 0:
        return labels
    # the value at each level's first row (levels are the codes 0 .. nlevels - 1)
    _, first = np.unique(codes, return_index=True)
    if first.size != len(labels):
        return labels
    values = col.iloc[first]
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(dtype.categories.dtype)
    index = pd.Index(values.to_numpy(), dtype=values.dtype)
    return labels if index.has_duplicates else index

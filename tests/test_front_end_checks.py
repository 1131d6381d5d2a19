"""The front end's cheaper checks decide as the full ones do.

* :func:`mixedmodels.design.frame._missing` (count and mask of the missing values of a
  column, no mask for complete columns) against :func:`missing_mask`, over every dtype a
  model column may have;
* the magnitude check of :func:`check_lmm_identifiable` (one sum of squares per block
  first): a block whose columns' sums are finite but whose total overflows passes, a
  column whose own sum overflows is named;
* :func:`_has_unused_categories` with and without the caller's promise that nothing is
  missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import check_lmm_identifiable, materialize
from mixedmodels.design.frame import (
    _has_unused_categories,
    _missing,
    _missing_values,
    column_positions,
    missing_mask,
)
from mixedmodels.formula import parse_formula

#: The largest double: sums of squares above it overflow.
DBL_MAX = np.finfo(float).max

COLUMNS = {
    "float": pd.Series([1.0, np.nan, np.inf, -np.inf, 2.0]),
    "float_complete": pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]),
    "int": pd.Series([1, 2, 3, 4, 5]),
    "bool": pd.Series([True, False, True, True, False]),
    "categorical": pd.Series(pd.Categorical(["a", None, "b", "a", None])),
    "categorical_complete": pd.Series(pd.Categorical(["a", "b", "b", "a", "a"])),
    "object": pd.Series(["a", None, "b", "c", "d"], dtype=object),
    "nullable_int": pd.Series([1, None, 3, 4, 5], dtype="Int64"),
    "nullable_float": pd.Series([1.0, None, np.inf, 4.0, 5.0], dtype="Float64"),
    "string": pd.Series(["a", None, "b", "c", "d"], dtype="string"),
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_missing_counts_and_masks_as_missing_mask(name):
    col = COLUMNS[name]
    expected = missing_mask(col)
    count, mask = _missing(col)
    assert count == int(expected.sum())
    if count:
        np.testing.assert_array_equal(mask, expected)
    else:
        assert mask is None


def _design(formula, **columns):
    n = len(next(iter(columns.values())))
    data = pd.DataFrame(
        {
            "y": np.random.default_rng(1).normal(size=n),
            **columns,
            "g": np.repeat(np.arange(n // 4), 4).astype(str),
        }
    )
    return materialize(parse_formula(formula), data)


def test_block_whose_total_overflows_but_no_column_passes():
    n = 16
    # each column's sum of squares is 0.6 DBL_MAX: finite; the block's total is not
    value = np.sqrt(0.6 * DBL_MAX / n)
    design = _design(
        "y ~ 0 + x1 + x2 + (1 | g)", x1=np.full(n, value), x2=value * np.resize([1.0, -1.0], n)
    )
    with np.errstate(over="ignore"):
        assert np.isinf(np.ravel(design.X) @ np.ravel(design.X))
    check_lmm_identifiable(design)  # no error


def test_column_whose_squares_overflow_is_named():
    n = 16
    value = np.sqrt(DBL_MAX / n) * np.sqrt(2.0)  # this column's own sum overflows
    design = _design("y ~ 1 + (1 + z | g)", z=np.full(n, value) * np.resize([1.0, 0.5], n))
    with pytest.raises(
        mm.DataError, match=r"random-effects term '\(1 \+ z \| g\)' 'z' are too large"
    ):
        check_lmm_identifiable(design)


@pytest.mark.parametrize(
    ("values", "categories", "unused"),
    [
        (["a", "b", "a"], ["a", "b"], False),
        (["a", "a", "a"], ["a", "b"], True),
        (["b", None, "b"], ["a", "b"], True),
        (["a", None, "b"], ["a", "b"], False),
    ],
)
def test_unused_categories(values, categories, unused):
    col = pd.Series(pd.Categorical(values, categories=categories))
    assert _has_unused_categories(col) is unused
    if col.notna().all():
        assert _has_unused_categories(col, complete=True) is unused


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_missing_from_values_as_missing(name):
    """The model frame's check on a column's values (``Series.array``) counts and masks
    as :func:`_missing` does on the Series."""
    col = COLUMNS[name]
    count, mask = _missing_values(col, col.array, col.dtype)
    expected_count, expected_mask = _missing(col)
    assert count == expected_count
    if expected_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, expected_mask)


def test_column_positions_as_get_loc():
    """Positions kept per column index are ``Index.get_loc``'s, unique or not."""
    unique = pd.DataFrame({"b": [1], "a": [2], "c": [3]})
    assert column_positions(unique, ["c", "a", "b"]) == tuple(
        unique.columns.get_loc(c) for c in ["c", "a", "b"])
    repeated = pd.DataFrame([[1, 2, 3]], columns=["x", "y", "x"])
    assert column_positions(repeated, ["y"]) == (repeated.columns.get_loc("y"),)


def test_unused_category_with_every_row_complete_drops_it():
    """A complete categorical with an unobserved category gives a model frame without it
    (the check the frame makes from the codes it reads for missing values)."""
    rng = np.random.default_rng(3)
    n = 24
    data = pd.DataFrame({
        "y": rng.normal(size=n),
        "f": pd.Categorical(np.resize(["a", "b"], n), categories=["a", "b", "z"]),
        "g": np.repeat(np.arange(6), 4).astype(str),
    })
    design = materialize(parse_formula("y ~ f + (1 | g)"), data)
    assert list(design.frame["f"].cat.categories) == ["a", "b"]
    assert design.fixed.names == ("Intercept", "f[T.b]")

"""``0 + factor(f)`` random-term columns built without formulaic: the same columns, names
and order as formulaic's for integer, text and categorical columns; every other column
type left to formulaic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels.design.fast import indicator_matrix
from mixedmodels.design.materializer import build_matrix

FRAME = pd.DataFrame({
    "t": [3, 1, 2, 1, 10, 3],
    "u": np.array([4, 2, 4, 2, 4, 9], dtype=np.uint8),
    "s": ["b", "a", "c", "a", "b", "c"],
    "c": pd.Categorical(["x", "y", "z", "x", "y", "x"], categories=["z", "x", "y"]),
    "ci": pd.Categorical([1, 2, 1, 2, 1, 2]),
    "f": [0.5, 1.0, 0.5, 1.0, 2.0, 2.0],
    "b": [True, False, True, True, False, False],
    "o": pd.Categorical(["a", "b", "a", "b", "a", "b"], ordered=True),
    "one": [1, 1, 1, 1, 1, 1],
})
SPELLINGS = ["0 + C({})", "C({}) - 1", "-1 + C({})", "C({}) + 0"]


@pytest.mark.parametrize("col", ["t", "u", "s", "c"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_indicators_are_formulaics(col, spelling):
    expr = spelling.format(col)
    ours = indicator_matrix(expr, FRAME)
    ref = build_matrix(expr, FRAME)
    assert ours is not None
    assert list(ours[1]) == [str(c) for c in ref.columns]
    np.testing.assert_array_equal(ours[0], np.asarray(ref, dtype=float))


@pytest.mark.parametrize("expr", ["0 + C(ci)", "0 + C(f)", "0 + C(b)", "0 + C(o)",
                                  "0 + C(one)", "0 + C(missing)", "1 + C(t)", "C(t)",
                                  "0 + C(t) + x", "0 + C(t):s"])
def test_everything_else_is_left_to_formulaic(expr):
    assert indicator_matrix(expr, FRAME) is None

"""The kink handling of the linear spatial correlation's fit (fitting/rside.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.fitting.rside import INSIDE_PIECE, _inside_piece

KINKS = np.array([1.0, 2.0, 4.0])


@pytest.mark.parametrize(
    ("x", "inside"),
    [
        (1.5, True),  # middle of [1, 2]
        (1.0 + 0.5 * INSIDE_PIECE, False),  # within the margin of kink 1
        (2.0 - 1e-7, False),  # a search creeping onto kink 2
        (2.0, False),  # on a kink
        (3.0, True),  # middle of [2, 4]
        (4.0 + 2 * INSIDE_PIECE, True),  # the unbounded last piece, clear of its end
        (4.0 + 0.5 * INSIDE_PIECE, False),
        (0.0, True),  # the unbounded first piece (no lower limit)
    ],
)
def test_inside_piece(x, inside):
    assert _inside_piece(x, KINKS, -np.inf) is inside


def test_inside_piece_uses_the_lower_limit():
    # the first piece ends at the parameter's lower limit where it has one
    assert not _inside_piece(0.5 + 0.5 * INSIDE_PIECE * 0.5, KINKS, 0.5)
    assert _inside_piece(0.75, KINKS, 0.5)

"""The dense whitening's factor of a one-matrix batch (rside/correlation.py
``_batch_cholesky``: LAPACK's dpotrf directly) and the single-group exit of
rside/patterns.py ``shared_patterns``."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.rside.blocks import RowBlocks
from mixedmodels.rside.correlation import _batch_cholesky
from mixedmodels.rside.patterns import shared_patterns

#: dpotrf here and numpy's batched Cholesky run the same algorithm through two OpenBLAS
#: builds: their factors agree to a few ulps of the largest entry.
FACTOR_RTOL = 1e-13


def _spd(rng, n, g=1):
    A = rng.normal(size=(g, n, n))
    return A @ np.swapaxes(A, 1, 2) / n + 0.5 * np.eye(n)


@pytest.mark.parametrize("n", [1, 2, 19, 80, 150])
def test_one_matrix_factor_is_numpys_to_rounding(n):
    C = _spd(np.random.default_rng(n), n)
    L = _batch_cholesky(C)
    ref = np.linalg.cholesky(C)
    assert L.shape == (1, n, n)
    np.testing.assert_allclose(L, ref, rtol=0, atol=FACTOR_RTOL * np.abs(ref).max())
    assert np.array_equal(np.triu(L[0], 1), np.zeros((n, n)))   # upper triangle cleared
    np.testing.assert_allclose(L[0] @ L[0].T, C[0], rtol=1e-12, atol=1e-12)


def test_several_matrices_keep_numpys_factor_exactly():
    C = _spd(np.random.default_rng(7), 6, g=4)
    np.testing.assert_array_equal(_batch_cholesky(C), np.linalg.cholesky(C))


@pytest.mark.parametrize("g", [1, 3])
def test_not_positive_definite_is_none(g):
    C = _spd(np.random.default_rng(3), 5, g=g)
    C[-1, 2, 2] = -1.0
    assert _batch_cholesky(C) is None


def test_a_single_group_has_no_shared_plan_and_two_equal_groups_do():
    rng = np.random.default_rng(4)
    xy = rng.uniform(size=(30, 2))
    assert shared_patterns(RowBlocks.from_codes(np.zeros(30, dtype=np.intp)), xy) is None
    # the same coordinates in two groups: one pattern for both
    plan = shared_patterns(RowBlocks.from_codes(np.repeat([0, 1], 30)), np.vstack([xy, xy]))
    assert plan is not None and len(plan) == 1 and plan[0].rep_rows.shape[0] == 1

"""The dense-table build of :class:`BlockProductPattern` equals the chunked sparse build.

Small patterns (few rows, e.g. the cross-products of a crossed term with a handful of
levels against a vector-valued first term) take the dense path; the chunked path stays for
large ones. Both must give the same pattern and the same ``P``, entry for entry, so that
every product, and hence every fit, is bit-identical whichever path built it.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import mixedmodels.linalg.product as product


def _block_complete_matrix(rng, n_rows: int, n_blocks: int, p: int, density: float):
    present = rng.random((n_rows, n_blocks)) < density
    mask = np.repeat(present, p, axis=1)
    values = rng.standard_normal(mask.shape)
    # explicit zeros inside present blocks stay structural entries
    values[mask & (rng.random(mask.shape) < 0.1)] = 0.0
    r, c = np.nonzero(mask)
    return sp.csr_matrix((values[r, c], (r, c)), shape=(n_rows, n_blocks * p))


def _both(A, p, keep_refresh, monkeypatch):
    dense = product.BlockProductPattern(A, p, keep_refresh=keep_refresh)
    with monkeypatch.context() as m:
        m.setattr(product, "DENSE_PAIR_TABLE_MAX_CELLS", -1)
        chunked = product.BlockProductPattern(A, p, keep_refresh=keep_refresh)
    return dense, chunked


def _assert_same(a, b):
    for name in ("flat", "rows", "cols", "weights"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.P.shape == b.P.shape
    for name in ("indices", "indptr", "data"):
        assert np.array_equal(getattr(a.P, name), getattr(b.P, name)), name


@pytest.mark.parametrize("keep_refresh", [False, True])
@pytest.mark.parametrize(("n_rows", "n_blocks", "p", "density"), [
    (12, 100, 2, 0.9), (5, 7, 3, 0.3), (1, 4, 2, 1.0), (30, 50, 2, 0.05),
    (8, 20, 4, 0.5), (4, 6, 2, 0.0),
])
def test_dense_build_equals_chunked(n_rows, n_blocks, p, density, keep_refresh,
                                    monkeypatch):
    rng = np.random.default_rng(n_rows * 1000 + n_blocks)
    A = _block_complete_matrix(rng, n_rows, n_blocks, p, density)
    dense, chunked = _both(A, p, keep_refresh, monkeypatch)
    _assert_same(dense, chunked)
    W = rng.standard_normal((n_blocks, p, p))
    S = rng.standard_normal(dense.flat.size)
    assert np.array_equal(dense.values(W), chunked.values(W))
    assert np.array_equal(dense.block_quadratic(S), chunked.block_quadratic(S))
    assert dense.can_refresh == chunked.can_refresh == keep_refresh
    if keep_refresh:
        new = rng.standard_normal(A.nnz)
        dense.refresh(new)
        chunked.refresh(new)
        _assert_same(dense, chunked)


def test_dense_build_matches_definition():
    rng = np.random.default_rng(7)
    A = _block_complete_matrix(rng, 6, 9, 2, 0.5)
    pat = product.BlockProductPattern(A, 2)
    W = rng.standard_normal((9, 2, 2))
    D = A.toarray()
    full = sum(D[:, 2 * c:2 * c + 2] @ W[c] @ D[:, 2 * c:2 * c + 2].T for c in range(9))
    expected = np.zeros_like(full)
    expected.reshape(-1)[pat.flat] = pat.values(W)
    lower = np.tril(full)
    # positions outside the pattern have no shared block: exactly zero
    assert np.allclose(np.tril(expected), lower, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(("n_keys", "key_range"), [
    (4000, 2400), (0, 10), (1, 1), (50, 100_000), (10_000, 10_000), (300, 40_000),
])
def test_unique_keys_equals_np_unique(n_keys, key_range):
    from mixedmodels.linalg.layout import unique_keys

    rng = np.random.default_rng(n_keys + key_range)
    keys = rng.integers(0, key_range, n_keys).astype(np.int64)
    uniq, inverse = unique_keys(keys, key_range)
    ref_uniq, ref_inverse = np.unique(keys, return_inverse=True)
    assert uniq.dtype == ref_uniq.dtype and np.array_equal(uniq, ref_uniq)
    assert np.array_equal(inverse, ref_inverse.reshape(-1))
    assert np.array_equal(uniq[inverse], keys)


def test_cached_category_labels_match_fresh_ones():
    import pandas as pd

    from mixedmodels.design import random as rnd

    col = pd.Series(pd.Categorical([3, 1, 2, 3, 1], categories=[1, 2, 3]))
    rnd._CATEGORY_LABELS.clear()
    codes, labels = rnd._as_str_labels(col)
    codes2, labels2 = rnd._as_str_labels(col)            # from the cache
    assert list(labels) == ["1", "2", "3"] and labels2 is labels
    assert np.array_equal(codes, [2, 0, 1, 2, 0]) and np.array_equal(codes2, codes)
    # labels that print alike still merge (depends on the codes: not cached)
    mixed = pd.Series(pd.Categorical(["3", 3, 1], categories=[1, 3, "3"]))
    codes3, labels3 = rnd._as_str_labels(mixed)
    assert list(labels3) == ["1", "3"] and np.array_equal(codes3, [1, 1, 0])
    # unused categories take the uncached path
    sparse = pd.Series(pd.Categorical([2, 2], categories=[1, 2]))
    codes4, labels4 = rnd._as_str_labels(sparse)
    assert list(labels4) == ["2"] and np.array_equal(codes4, [0, 0])

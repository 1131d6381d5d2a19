"""The chunked build of :class:`ProductPattern` stores every pair product exactly.

``P[(a, b), j] = A[a, j] * A[b, j]`` is one floating-point product, so the pattern can be
checked entry for entry (``assert_array_equal``) against the products computed from the
dense matrix, whatever the chunking, the entries' order within the rows of ``A`` and
whether the refresh positions are kept.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import mixedmodels.linalg.product as product


def _shuffled_csr(rng, dense):
    """CSR of ``dense`` with the entries of every row in random order (unsorted indices)."""
    A = sp.csr_matrix(dense)
    for r in range(A.shape[0]):
        s = slice(A.indptr[r], A.indptr[r + 1])
        p = rng.permutation(s.stop - s.start)
        A.indices[s], A.data[s] = A.indices[s][p], A.data[s][p]
    A.has_sorted_indices = False
    return A


def _expected_P(dense):
    """Dense (n_rows^2 lower-triangle positions with a common column) x n_cols products."""
    n = dense.shape[0]
    prod = dense[:, None, :] * dense[None, :, :]                 # (a, b, j) single products
    common = (dense != 0)[:, None, :] & (dense != 0)[None, :, :]
    a, b = np.tril_indices(n)
    keep = common[a, b].any(axis=1)
    flat = (a * n + b)[keep]
    return flat, np.where(common[a, b][keep], prod[a, b][keep], 0.0), common[a, b][keep]


@pytest.mark.parametrize("chunk", [1, 13, 1_000_000])
@pytest.mark.parametrize("keep_refresh", [False, True])
def test_pattern_holds_the_exact_pair_products(monkeypatch, chunk, keep_refresh):
    monkeypatch.setattr(product, "PAIRS_PER_CHUNK", chunk)
    rng = np.random.default_rng(11)
    dense = rng.normal(size=(23, 31)) * (rng.uniform(size=(23, 31)) < 0.25)
    dense[[3, 9], :] = 0.0                                       # empty rows
    dense[:, [0, 7]] = 0.0                                       # empty columns
    dense[5, 2] = 3.0                                            # integer counts
    A = _shuffled_csr(rng, dense)
    pat = product.ProductPattern(A, keep_refresh=keep_refresh)
    flat, vals, mask = _expected_P(dense)
    np.testing.assert_array_equal(pat.flat, flat)
    assert pat.P.has_canonical_format
    np.testing.assert_array_equal(pat.P.toarray(), vals)
    np.testing.assert_array_equal(pat.P.toarray() != 0, mask)
    assert pat.can_refresh is keep_refresh
    if keep_refresh:
        # new values at A's own (unsorted) CSR positions: the products of the new values
        A2 = A.copy()
        A2.data = rng.normal(size=A2.nnz)
        pat.refresh(A2.data)
        _, vals2, _ = _expected_P(A2.toarray())
        np.testing.assert_array_equal(pat.P.toarray(), vals2)


def test_chunking_does_not_change_the_pattern(monkeypatch):
    """One chunk per row and one chunk for everything build the same arrays, bit for bit."""
    rng = np.random.default_rng(5)
    g1 = rng.integers(0, 300, 4000)
    g2 = rng.integers(0, 40, 4000)
    A = sp.coo_matrix((np.ones(g1.size), (g2, g1)), shape=(40, 300)).tocsr()  # counts
    built = []
    for chunk in (1, 997, 10**9):
        monkeypatch.setattr(product, "PAIRS_PER_CHUNK", chunk)
        built.append(product.ProductPattern(A, keep_refresh=True))
    for pat in built[1:]:
        for name in ("flat", "rows", "cols", "weights"):
            np.testing.assert_array_equal(getattr(pat, name), getattr(built[0], name))
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(pat.P, name), getattr(built[0].P, name))
        np.testing.assert_array_equal(pat._ea, built[0]._ea)
        np.testing.assert_array_equal(pat._eb, built[0]._eb)

"""Fixed-cost cuts of small structured fits (benchmarks/results/tmbsmall_notes.md): each
shortcut gives what the general path gives."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.covariance.diagonal import Diagonal
from mixedmodels.linalg.layout import CrossProductPattern, TermBlock
from mixedmodels.objective.laplace.objective import _relative_jacobian


@pytest.mark.parametrize("hom", [False, True])
@pytest.mark.parametrize("p", [1, 2, 6])
def test_diagonal_relative_jacobian_is_the_generic_form(hom, p):
    # the closed form M_k = E_kk / theta_k is the generic SVD-and-solve form bit for bit,
    # and None exactly where that one is (singular or ill-conditioned Lambda)
    rng = np.random.default_rng(p + 10 * hom)
    d = Diagonal(p, hom)
    thetas = [rng.standard_normal(d.n_theta) * np.exp(rng.uniform(-9, 3, d.n_theta))
              for _ in range(200)]
    thetas += [np.zeros(d.n_theta), np.r_[1.0, np.zeros(d.n_theta - 1)]]
    for th in thetas:
        got = d.relative_jacobian(th)
        want = _relative_jacobian(d.lambda_(th), d.lambda_jacobian(th))
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got, want)


def _general(pattern, XY, w, Z=None):
    """compute() by the per-observation bincount path, whatever the number of levels."""
    b1 = pattern.blocks[0]
    Z1 = b1.Z if Z is None else Z[0]
    p1 = pattern.p1
    wz1 = Z1 * w[:, None]
    v11 = (wz1[:, :, None] * Z1[:, None, :]).ravel()
    A11 = np.bincount(pattern._idx11, v11, minlength=pattern.l1 * p1 * p1).reshape(
        pattern.l1, p1, p1)
    S1 = pattern._S1 if Z is None else pattern._values_like("S1", Z1)
    A1X = np.asarray(S1 @ (XY * w[:, None])).reshape(pattern.l1, p1, XY.shape[1])
    return A11, A1X


@pytest.mark.parametrize("rest", [False, True])
def test_one_level_cross_products(rest):
    # a first block of one level (a known matrix over all levels): matrix products give
    # the bincount path's blocks to rounding, with and without a rest block and with
    # replaced Z values (the whitened design of correlated residuals)
    rng = np.random.default_rng(3)
    n, p1 = 150, 30
    b1 = TermBlock(np.zeros(n, dtype=np.int64), rng.standard_normal((n, p1)), 1)
    blocks = [b1]
    if rest:
        blocks.append(TermBlock(rng.integers(0, 7, n), rng.standard_normal((n, 2)), 7))
    pattern = CrossProductPattern(blocks)
    XY = rng.standard_normal((n, 3))
    w = rng.uniform(0.1, 2.0, n)
    Zs = [None, [rng.standard_normal((n, p1))] + [b.Z for b in blocks[1:]]]
    for Z in Zs:
        A = pattern.compute(XY, w, Z)
        A11, A1X = _general(pattern, XY, w, Z)
        assert A.A11.shape == A11.shape and A.A1X.shape == A1X.shape
        np.testing.assert_allclose(A.A11, A11, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(A.A1X, A1X, rtol=1e-12, atol=1e-12)
        if rest:
            assert A.A21 is not None and A.A21.shape == (pattern.q_r, pattern.q1)


def test_padded_slots_follow_the_array():
    # the padding of the slot values is remembered for the array object itself: a new
    # array (the next theta's slot values) is padded afresh, the same one is not
    from mixedmodels.objective.laplace.hessian import BlockDiagonalHessian

    class _T:
        pass

    rng = np.random.default_rng(5)
    n, levels, P = 60, 6, 3
    codes = np.sort(rng.integers(0, levels, n))
    codes[:levels] = np.arange(levels)
    term = _T()
    term.grouping = _T()
    term.grouping.codes, term.nlevels, term.p, term.q = codes, levels, P, levels * P
    ts = _T()
    ts.term, ts.slots, ts.u_offset = term, slice(0, P), 0
    structure = _T()
    structure.P, structure.terms, structure.n_channels = P, [ts], 1
    kernel = BlockDiagonalHessian(structure)
    assert kernel.padded
    a1, a2 = rng.standard_normal((n, P)), rng.standard_normal((n, P))
    w = rng.uniform(0.5, 2.0, n)
    for a in (a1, a1, a2, a1):
        want = np.matmul(kernel.padded_rows(a).transpose(0, 2, 1)
                         * kernel.padded_rows(w)[:, None, :], kernel.padded_rows(a))
        np.testing.assert_array_equal(kernel.padded_products(a, w), want)

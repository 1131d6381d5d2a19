"""The first block's ``Z1' W [X y]`` of :class:`CrossProductPattern` by ``bincount``
(its first uses) against the sparse product with ``S1`` (later uses) and against a dense
independent computation: the same sums to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.linalg import layout
from mixedmodels.linalg.layout import CrossProductPattern, TermBlock

#: Independent dense computation vs the pattern's (sums in another order).
DENSE_RTOL = 1e-12


def _case(p1: int, crossed: bool, seed: int = 3):
    rng = np.random.default_rng(seed)
    n, l1 = 90, 11
    blocks = [TermBlock(rng.integers(0, l1, n), rng.standard_normal((n, p1)), l1)]
    if crossed:
        blocks.append(TermBlock(rng.integers(0, 5, n), rng.standard_normal((n, 1)), 5))
    XY = rng.standard_normal((n, 4))
    w = rng.uniform(0.2, 2.0, n)
    return blocks, XY, w


def _dense_a1x(block: TermBlock, Z1: np.ndarray, XY: np.ndarray, w: np.ndarray):
    """``Z1' W XY`` per level through the dense (n, l1 p1) design of the block."""
    n, p1 = Z1.shape
    D = np.zeros((n, block.nlevels * p1))
    for a in range(p1):
        D[np.arange(n), block.codes * p1 + a] = Z1[:, a]
    return (D.T @ (w[:, None] * XY)).reshape(block.nlevels, p1, XY.shape[1])


@pytest.mark.parametrize("p1", [1, 2])
@pytest.mark.parametrize("crossed", [False, True])
def test_bincount_uses_match_sparse_product(p1, crossed):
    blocks, XY, w = _case(p1, crossed)
    pattern = CrossProductPattern(blocks)
    first = [pattern.compute(XY, w).A1X for _ in range(layout.S1_BINCOUNT_USES)]
    assert pattern._S1_cache is None            # bincount: no incidence matrix yet
    later = pattern.compute(XY, w).A1X
    assert pattern._S1_cache is not None        # third use: the sparse product
    for a in first:
        np.testing.assert_array_equal(a, later)
    np.testing.assert_allclose(later, _dense_a1x(blocks[0], blocks[0].Z, XY, w),
                               rtol=DENSE_RTOL, atol=DENSE_RTOL)


@pytest.mark.parametrize("p1", [1, 2])
def test_bincount_uses_with_other_values(p1):
    """``Z`` replacing the terms' values (correlated residuals' whitened design)."""
    blocks, XY, w = _case(p1, True)
    rng = np.random.default_rng(9)
    Z = [rng.standard_normal(b.Z.shape) for b in blocks]
    pattern = CrossProductPattern(blocks)
    first = [pattern.compute(XY, w, Z).A1X for _ in range(layout.S1_BINCOUNT_USES)]
    later = pattern.compute(XY, w, Z).A1X
    for a in first:
        np.testing.assert_array_equal(a, later)
    np.testing.assert_allclose(later, _dense_a1x(blocks[0], Z[0], XY, w),
                               rtol=DENSE_RTOL, atol=DENSE_RTOL)


def _crossed_poisson(seed: int = 5):
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 300
    g1, g2 = rng.integers(0, 12, n), rng.integers(0, 9, n)
    x = rng.standard_normal(n)
    eta = 0.3 + 0.4 * x + rng.normal(0, 0.5, 12)[g1] + rng.normal(0, 0.4, 9)[g2]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x,
                         "g1": [f"a{k}" for k in g1], "g2": [f"b{k}" for k in g2]})


def test_factor_at_refreshes_product_pattern():
    """PIRLS's blocked system (``new_weights``) keeps its ``A21`` product pattern
    refreshable from the first build: cross-products with other weights refresh it (no
    rebuild) and give the factor, to the bit, of a fresh system built on them;
    ``factor_at`` (one theta per weights: ``once``) builds no pattern and agrees with
    the pattern's factor to rounding and with a dense log-determinant."""
    import mixedmodels as mm

    res = mm.glmer("y ~ x + (1 | g1) + (1 | g2)", _crossed_poisson(), "poisson")
    pirls = res.objective_function.pirls
    theta = np.asarray(res.theta, dtype=float)
    rng = np.random.default_rng(2)
    w1, w2 = rng.uniform(0.5, 3.0, pirls.n), rng.uniform(0.5, 3.0, pirls.n)
    system = pirls.system
    system._product = None
    f_once = pirls.factor_at(theta, w2)
    assert system._product is None                # once: no pattern built
    system.set_cross_products(pirls.pattern.compute(pirls.Xt, w1))
    product = system._product
    assert product is not None and product.can_refresh
    system.set_cross_products(pirls.pattern.compute(pirls.Xt, w2))
    assert system._product is product             # refreshed, not built again
    f2 = system.factorize(theta)
    fresh = mm.glmer("y ~ x + (1 | g1) + (1 | g2)", _crossed_poisson(), "poisson")
    other = fresh.objective_function.pirls.system
    other._product = None
    other.set_cross_products(pirls.pattern.compute(pirls.Xt, w2))
    assert other._product is not None
    g2 = other.factorize(theta)
    assert f2.logdet_Z == g2.logdet_Z
    np.testing.assert_array_equal(np.tril(f2.LXX), np.tril(g2.LXX))
    np.testing.assert_allclose(np.tril(f_once.LXX), np.tril(f2.LXX), rtol=DENSE_RTOL,
                               atol=DENSE_RTOL * np.abs(f2.LXX).max())
    # independent: log det(I + Lambda' Z' W Z Lambda) densely
    ZL = pirls.Zs.toarray() * np.repeat(theta, [12, 9])[None, :]
    _, dense = np.linalg.slogdet(np.eye(ZL.shape[1]) + ZL.T @ (w2[:, None] * ZL))
    for f in (f_once, f2):
        assert abs(f.logdet_Z - dense) <= DENSE_RTOL * abs(dense)


@pytest.mark.parametrize("values,size", [(-np.inf, 3), (0, 4), (True, 2), (np.float64(2.5), 3),
                                         (np.arange(4.0), 4), (np.arange(3), 3), ([1.0, 2.0], 2),
                                         (np.array(1.5), 3)])
def test_as_vector_fast_paths_match_broadcast(values, size):
    """The parameter layout's scalar / right-sized-vector shortcuts give what
    ``np.broadcast_to`` gives (a float copy of the size)."""
    from mixedmodels.parameters.layout import _as_vector

    out = _as_vector(values, size, "start")
    ref = np.array(np.broadcast_to(np.asarray(values, dtype=float), (size,)), dtype=float)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
    if isinstance(values, np.ndarray):
        assert not np.shares_memory(out, values)

"""The padded kernels of a one-channel block-diagonal Laplace Hessian against the general
per-observation assembly (:mod:`mixedmodels.objective.laplace.hessian`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from laplace_oracles import PoissonLog
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.objective.laplace import LaplaceObjective
from mixedmodels.objective.laplace import hessian as hk
from mixedmodels.objective.laplace.parameters import make_layout

#: Two assemblies of the same sums agree to rounding.
ASSEMBLY_RTOL = 1e-12


def _objective(levels: int, n: int, seed: int) -> LaplaceObjective:
    """A Poisson model with a correlated (intercept, slope) term over ``levels`` groups of
    unequal sizes."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, n)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.2 + 0.4 * x + rng.normal(0, 0.5, levels)[g]))
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i:03d}" for i in g]})
    design = materialize(parse_formula("y ~ x + (x | g)"), data, require_random=False)
    comps = design.components
    return LaplaceObjective(PoissonLog(), design.y, comps, make_layout(comps))


def _slot_inputs(obj, seed: int):
    rng = np.random.default_rng(seed)
    S = obj.structure
    a = S.slot_values(S.lambdas(rng.uniform(0.3, 1.2, S.n_theta)))
    W = rng.uniform(0.1, 5.0, (S.n, 1, 1))
    return S, a, W


@pytest.mark.parametrize("levels, n", [(12, 150), (25, 300)])
def test_padded_assembly_and_inverse_rows(levels, n):
    obj = _objective(levels, n, seed=levels)
    kernel = obj.hessian
    assert isinstance(kernel, hk.BlockDiagonalHessian) and kernel.padded
    S, a, W = _slot_inputs(obj, seed=1)
    # the general assembly: per-observation products summed into the level blocks
    L, P = kernel.levels, kernel.P
    ref = np.bincount(kernel._keys, S.slot_products(a, W).ravel(),
                      minlength=L * P * P).reshape(L, P, P)
    np.testing.assert_allclose(kernel.padded_products(a, W[:, 0, 0]), ref,
                               rtol=ASSEMBLY_RTOL, atol=ASSEMBLY_RTOL * np.abs(ref).max())
    assert hk.factor_at(kernel, S, a, W)
    logdet = kernel.logdet
    dense = ref + np.eye(P)[None]
    assert logdet == pytest.approx(float(np.sum(np.linalg.slogdet(dense)[1])),
                                   rel=ASSEMBLY_RTOL)
    # a_i H^{-1} a_i' against the gather of H^{-1} per observation
    quad = hk.slot_quadratics(kernel, S, a)[:, 0, 0]
    direct = S.channel_blocks(a, kernel.slot_inverse())[:, 0, 0]
    np.testing.assert_allclose(quad, direct, rtol=ASSEMBLY_RTOL)


def test_unbalanced_levels_fall_back():
    """One level with most of the observations: padding would multiply the rows, so the
    kernel keeps the per-observation assembly (and the same results through it)."""
    codes = np.r_[np.zeros(90, dtype=np.intp), np.arange(1, 11, dtype=np.intp)]
    pad, pos = hk._padding(codes, 11)
    assert pad is None and pos is None
    pad, pos = hk._padding(np.repeat(np.arange(5), 3), 5)
    # each observation at its level's row, in order, padding marked by n
    assert pad.shape == (5, 3) and np.array_equal(pad.ravel()[pos], np.arange(15))

"""The R-side LMM's evaluation shortcuts against the general path they replace.

* :class:`~mixedmodels.rside.level_gram.LevelCrossProduct`: the one-term dense
  cross-product summed level by level equals the dense product of the whitened rows
  (random intercepts and slopes, rows out of level order, correlation groups nested in the
  term's levels), and applies to one term only.
* :class:`~mixedmodels.rside.arma_whitening.ArmaWhitening`: the whitened cross-products
  and ``log|V|`` equal the correlation's own whitening (shared patterns, the band of
  groups with gaps, a variance function, prior weights, ARMA(2, 1)), with None in the same
  places.
* The objective with both equals the objective without them at random parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.linalg.dense import dense_cross_product
from mixedmodels.objective.lmm import LMMObjective
from mixedmodels.rside.arma_whitening import ArmaWhitening
from mixedmodels.rside.level_gram import LevelCrossProduct
from mixedmodels.rside.objective import LEVEL_GRAM_MIN_Q, RSideLMMObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns

#: Agreement of two sums of the same products in another order.
SUM_TOL = 1e-12


def _panel(seed=5, gaps=True, shuffle=True):
    rng = np.random.default_rng(seed)
    g, m = 12, 7
    d = pd.DataFrame({"sub": np.repeat([f"s{i:02d}" for i in range(g)], m),
                      "t": np.tile(np.arange(1, m + 1), g),
                      "x": rng.normal(size=g * m), "z": rng.uniform(0.5, 3.0, g * m),
                      "w": rng.uniform(0.5, 2.0, g * m)})
    d["clinic"] = d["sub"].map(lambda s: f"c{int(s[1:]) % 3}")
    if gaps:        # unequal groups with holes in the times: no shared patterns
        d = d.drop(index=[2, 9, 10, 20, 33, 41, 47, 60, 61, 75]).reset_index(drop=True)
    else:           # dropouts: every group's times a prefix of 1..m
        d = d.drop(index=[6, 13, 12, 27, 41, 40, 39]).reset_index(drop=True)
    if shuffle:
        d = d.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    d["y"] = 1.0 + d.x + rng.normal(size=len(d)) * d.z
    return d


def _bound(d, formula, cor, var=None, weights=None):
    spec = ResidualSpec.make(cor, var)
    design = materialize(parse_formula(formula), d, weights=weights,
                         extra_columns=residual_columns(spec))
    return design, bind_residual(spec, design)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | sub)", "y ~ x + (x | sub)",
                                     "y ~ x + (1 | clinic)"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_level_cross_product_equals_dense_product(formula, shuffle):
    d = _panel(shuffle=shuffle)
    design, bound = _bound(d, formula, mm.cor_ar1(form="~ t | sub"))
    assert LevelCrossProduct.applies(design, bound)
    lmm = LMMObjective(design, reml=True, method="dense")
    M = np.column_stack([design.terms[0].Z, lmm.internal_XY])
    Mw, _ = bound.whiten(np.array([0.7]), M)
    level = LevelCrossProduct(design, design.p + 1)
    k = design.terms[0].p
    dense = dense_cross_product(lmm.system.blocks, Mw[:, k:], None, [Mw[:, :k]])
    got = level(Mw)
    assert np.allclose(got, dense, rtol=SUM_TOL, atol=SUM_TOL * np.abs(dense).max())


def test_level_cross_product_applies_to_one_term():
    # (bind_residual itself refuses correlation groups that span a term's levels)
    d = _panel()
    design, bound = _bound(d, "y ~ x + (1 | sub) + (1 | clinic)",
                           mm.cor_ar1(form="~ t | sub"))
    assert not LevelCrossProduct.applies(design, bound)       # two terms
    design, bound = _bound(d, "y ~ x + (1 | sub)", None, mm.var_power(form="~ z"))
    assert LevelCrossProduct.applies(design, bound)           # no correlation


#: (correlation, variance, prior weights, gaps in the times, shared patterns expected)
ARMA_CASES = [
    (mm.cor_arma(form="~ t | sub", p=1, q=1), None, None, True, False),
    (mm.cor_arma(form="~ t | sub", p=1, q=1), None, None, False, True),
    (mm.cor_arma(form="~ t | sub", p=2, q=1), mm.var_power(form="~ z"), None, True, False),
    (mm.cor_arma(form="~ t | sub", p=1, q=1), mm.var_power(form="~ z"), None, False, True),
    (mm.cor_arma(form="~ t | sub", q=2), None, "w", False, True),
    # positions 1..n_i in data order: consecutive whatever the times
    (mm.cor_arma(form="~ 1 | sub", p=1, q=1), None, None, True, True),
]


@pytest.mark.parametrize("cor, var, weights, gaps, patterns", ARMA_CASES)
def test_arma_whitening_equals_the_correlations_own(cor, var, weights, gaps, patterns):
    d = _panel(gaps=gaps)
    design, bound = _bound(d, "y ~ x + (1 | sub)", cor, var, weights=weights)
    assert ArmaWhitening.applies(bound)
    rng = np.random.default_rng(2)
    M = rng.normal(size=(design.nobs, 4))
    plan = ArmaWhitening(bound, M)
    assert (plan._patterns is not None) == patterns
    nones = 0
    for _ in range(25):
        phi = bound.start + rng.normal(scale=1.5, size=bound.n_par)
        got, ref = plan(phi), bound.whiten(phi, M)
        assert (got is None) == (ref is None)
        if ref is None:
            nones += 1
            continue
        A, B = got[0].T @ got[0], ref[0].T @ ref[0]
        assert np.allclose(A, B, rtol=SUM_TOL, atol=SUM_TOL * np.abs(B).max())
        assert got[1] == pytest.approx(ref[1], rel=SUM_TOL, abs=SUM_TOL)
    assert nones < 25


@pytest.mark.parametrize("formula, cor, var", [
    ("y ~ x + (1 | sub)", mm.cor_arma(form="~ t | sub", p=1, q=1), None),
    ("y ~ x + (x | sub)", mm.cor_arma(form="~ t | sub", p=1, q=1), mm.var_power(form="~ z")),
    ("y ~ x + (1 | clinic)", mm.cor_ar1(form="~ t | sub"), None),
    ("y ~ x + (1 | sub)", None, mm.var_const_power(form="~ z")),
])
@pytest.mark.parametrize("gaps", [True, False])
def test_objective_with_shortcuts_equals_without(formula, cor, var, gaps):
    d = _panel(gaps=gaps)
    design, bound = _bound(d, formula, cor, var)
    fast = RSideLMMObjective(design, bound, reml=True)
    assert (fast._level_gram is not None) == (design.q >= LEVEL_GRAM_MIN_Q)
    fast._level_gram = LevelCrossProduct(design, design.p + 1)    # also for a small q
    slow = RSideLMMObjective(design, bound, reml=True)
    slow._level_gram = None
    slow._whiten = lambda phi: bound.whiten(phi, slow._M)
    rng = np.random.default_rng(4)
    for _ in range(15):
        x = fast.x0 + rng.normal(scale=0.5, size=fast.x0.size)
        a, b = fast(x), slow(x)
        assert a == pytest.approx(b, rel=SUM_TOL) or (a == b == np.inf)


@pytest.mark.parametrize("groups", [("sub",), ("clinic", "sub"), ("sub", "clinic"),
                                    ("clinic", "t")])
def test_correlation_group_codes_are_build_groupings(groups):
    from mixedmodels.design.random import build_grouping, grouping_codes

    d = _panel()
    d["clinic"] = d["clinic"].astype("category")
    ref = build_grouping(":".join(groups), groups, d).codes
    assert np.array_equal(grouping_codes(groups, d), ref)

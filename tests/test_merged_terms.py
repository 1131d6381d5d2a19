"""Terms on one grouping factor factored as one block (mixedmodels.linalg.merged).

The merged factorization must give the criterion, its gradient, the random effects and
their conditional variances of the unmerged one (each term its own block; itself checked
against a dense oracle in test_linalg.py), in the terms' order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.linalg import BlockDiagonalStructure, TermMerge

#: the two factorizations differ only in the order of floating-point operations
MERGE_ATOL = 1e-10
SOLUTION_ATOL = 1e-9


def _data(seed=7, n=900):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 120, n)
    h = rng.integers(0, 15, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = (2 + 0.5 * x + rng.normal(size=120)[g] + 0.4 * rng.normal(size=120)[g] * x
         + 0.3 * rng.normal(size=15)[h] * z + rng.normal(size=n))
    return pd.DataFrame({"resp": y + 100.0, "x": x, "z": z, "gr.1": [f"L{i}" for i in g],
                         "h": h})


FORMULAS = [
    "resp ~ x + (x || gr.1)",
    "resp ~ x + (1 | gr.1) + (0 + x | gr.1) + (0 + z | gr.1)",
    "resp ~ x + (1 | h) + (0 + z | h) + (1 | gr.1) + (0 + x | gr.1)",
    "resp ~ x + diag(0 + x + z | gr.1) + (1 | gr.1) + (1 | h)",
    "resp ~ x + (1 | gr.1) + cs(0 + x + z | gr.1)",
    "resp ~ z + (x | gr.1) + (0 + z | gr.1) + (z | h)",
]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("reml", [True, False])
def test_merged_equals_unmerged(formula, reml):
    design = mm.materialize(mm.parse_formula(formula), _data())
    merged = mm.LMMObjective(design, reml=reml)
    plain = mm.LMMObjective(design, reml=reml, merge_terms=False)
    assert merged.merge is not None and merged.merge.merges
    assert plain.merge is None
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = np.maximum(design.theta0() + rng.uniform(-0.3, 0.5, design.n_theta),
                           design.theta_lower())
        assert abs(merged(theta) - plain(theta)) < MERGE_ATOL
        fa, ga = merged.value_and_gradient(theta)
        fb, gb = plain.value_and_gradient(theta)
        assert abs(fa - fb) < MERGE_ATOL
        np.testing.assert_allclose(ga, gb, atol=MERGE_ATOL)
    sa, sb = merged.solve(theta), plain.solve(theta)
    np.testing.assert_allclose(sa.u, sb.u, atol=SOLUTION_ATOL)
    np.testing.assert_allclose(sa.beta, sb.beta, rtol=1e-10)
    for ba, bb in zip(sa.b, sb.b, strict=True):
        np.testing.assert_allclose(ba, bb, atol=SOLUTION_ATOL)
    for ca, cb in zip(merged.cond_var(sa), plain.cond_var(sb), strict=True):
        np.testing.assert_allclose(ca, cb, atol=SOLUTION_ATOL)


def test_shared_factor_leaves_no_rest_block():
    # (x || g) alone: both terms in the block-diagonal first block, no dense rest block
    design = mm.materialize(mm.parse_formula("resp ~ x + (x || gr.1)"), _data())
    obj = mm.LMMObjective(design, method="blocked")
    assert obj.merge.groups == ((0, 1),)
    assert not obj.pattern.has_rest and obj.pattern.p1 == 2


def test_merge_plan_permutes_theta_and_u():
    design = mm.materialize(
        mm.parse_formula("resp ~ x + (1 | gr.1) + (1 | h) + (0 + x | gr.1)"), _data())
    blocks = [mm.linalg.TermBlock(t.grouping.codes, t.Z, t.nlevels) for t in design.terms]
    plan = TermMerge.of(blocks, [t.structure for t in design.terms],
                        [t.grouping.name for t in design.terms])
    names = [t.grouping.name for t in design.terms]
    g_terms = tuple(k for k, nm in enumerate(names) if nm == "gr.1")
    assert g_terms in plan.groups
    # the index maps are permutations
    assert sorted(plan.theta_index) == list(range(design.n_theta))
    assert sorted(plan.u_index) == list(range(design.q))
    s = plan.structures[plan.groups.index(g_terms)]
    assert isinstance(s, BlockDiagonalStructure) and s.p == 2


def test_block_diagonal_structure_jacobian_matches_differences():
    design = mm.materialize(mm.parse_formula("resp ~ x + (1 | gr.1) + cs(0 + x + z | gr.1)"),
                            _data())
    s = BlockDiagonalStructure([t.structure for t in design.terms])
    theta = np.array([0.8, 0.6, 0.3])[: s.n_theta]
    theta = np.concatenate([theta, np.full(s.n_theta - theta.size, 0.2)])
    h = 1e-6
    num = np.stack([(s.lambda_(theta + h * e) - s.lambda_(theta - h * e)) / (2 * h)
                    for e in np.eye(s.n_theta)])
    np.testing.assert_allclose(s.lambda_jacobian(theta), num, atol=1e-8)
    assert s.lambda_(theta)[0, 1:].tolist() == [0.0, 0.0]      # block diagonal


def test_block_diagonal_structure_of_selections_is_a_gather():
    design = mm.materialize(
        mm.parse_formula("resp ~ x + (1 | gr.1) + (0 + x | gr.1) + (z | h)"), _data())
    s = BlockDiagonalStructure([t.structure for t in design.terms])
    theta = np.array([0.7, 0.4, 0.9, -0.2, 0.5])
    dense = np.zeros((4, 4))
    dense[0, 0], dense[1, 1] = 0.7, 0.4
    dense[2:, 2:] = design.terms[2].structure.lambda_(theta[2:])
    np.testing.assert_array_equal(s.lambda_(theta), dense)
    h = 1e-6
    num = np.stack([(s.lambda_(theta + h * e) - s.lambda_(theta - h * e)) / (2 * h)
                    for e in np.eye(5)])
    np.testing.assert_allclose(s.lambda_jacobian(theta), num, atol=1e-8)
    assert not s.lambda_jacobian(theta).flags.writeable      # shared constant


def test_lmer_fit_unchanged_by_merging():
    data = _data()
    fit = mm.lmer("resp ~ x + (x || gr.1) + (1 | h)", data)
    design = mm.materialize(mm.parse_formula("resp ~ x + (x || gr.1) + (1 | h)"), data)
    plain = mm.LMMObjective(design, merge_terms=False)
    assert fit.objective == pytest.approx(plain(np.asarray(fit.theta)), abs=MERGE_ATOL)

"""The level-by-level evaluation of LMMs whose terms share one grouping factor.

Oracles: the same objective through the dense or blocked factorization
(``LMMObjective(..., one_factor=False)``: value and exact gradient), central finite
differences of the objective (gradient), and the fit through the old path (optimum).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.linalg.one_factor import BAND_MAX_LEVELS, OneFactorSystem
from mixedmodels.objective import LMMObjective
from mixedmodels.objective.lmm_one_factor import one_factor_system

#: Relative agreement of the value with the other factorization (both exact; rounding).
VALUE_RTOL = 1e-10
#: Agreement of the gradient with the other path's exact gradient, relative to
#: max(1, max |gradient|) (rounding of sums over ~1,000 terms of size ~|value|).
GRAD_RTOL = 1e-10
#: Central-difference step (relative to max(|theta|, 1)) and the agreement expected:
#: truncation ~h^2 f''' and rounding ~1e-13 |f| / h are both below 1e-6 here.
FD_H = 1e-5
FD_RTOL = 1e-6
#: Optimum of the fit through the level-by-level path against the old path's.
OBJ_ATOL = 1e-7
THETA_ATOL = 1e-4


def _sim(k: int, n_levels: int = 40, seed: int = 0, weights: bool = False) -> pd.DataFrame:
    """Unbalanced levels (1 to 14 rows each), k - 1 slopes, an intercept-level effect."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 15, n_levels)
    g = np.repeat(np.arange(n_levels), sizes)
    n = g.size
    df = pd.DataFrame(
        {
            "g": pd.Categorical([f"L{c:03d}" for c in g]),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "v": rng.uniform(-1, 1, size=n),
        }
    )
    slopes = rng.normal(size=(n_levels, 4)) * [1.0, 0.5, 0.3, 0.2]
    df["y"] = (
        2.0
        + df.x
        + slopes[g, 0]
        + slopes[g, 1] * df.x
        + slopes[g, 2] * df.z
        + slopes[g, 3] * df.v
        + rng.normal(size=n)
    )
    if weights:
        df["w"] = rng.uniform(0.5, 2.0, size=n)
    return df


_RE = {1: "(1 | g)", 2: "(x | g)", 3: "(x + z | g)", 4: "(x + z + v | g)"}


def _design(formula: str, data: pd.DataFrame, weights=None):
    return materialize(parse_formula(formula), data, weights=weights)


def _pair(design, reml: bool):
    """(level-by-level objective, oracle objective) of one design."""
    new = LMMObjective(design, reml=reml)
    new.one_factor = one_factor_system(new, min_dense_size=0)
    old = LMMObjective(design, reml=reml, one_factor=False)
    assert new.one_factor is not None
    assert old.one_factor is None
    return new, old


def _thetas(obj, seed: int = 1, n: int = 4):
    """lme4's start, random interior points, and one with every bounded entry at 0."""
    rng = np.random.default_rng(seed)
    th0 = obj.theta0
    out = [th0]
    for _ in range(n):
        th = th0 * rng.uniform(0.2, 2.0, th0.size) + rng.normal(0, 0.3, th0.size) * (
            obj.lower == -np.inf
        )
        out.append(np.maximum(th, obj.lower))
    out.append(np.where(np.isfinite(obj.lower), 0.0, th0 * 0.5))
    return out


def _check_against_oracle(new, old):
    for th in _thetas(new):
        v1, g1 = new.value_and_gradient(th)
        v0, g0 = old.value_and_gradient(th)
        assert abs(v1 - v0) <= VALUE_RTOL * abs(v0)
        assert abs(new(th) - v0) <= VALUE_RTOL * abs(v0)
        scale = max(1.0, float(np.max(np.abs(g0))))
        np.testing.assert_allclose(g1, g0, rtol=0, atol=GRAD_RTOL * scale)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("weights", [False, True])
def test_simulated_matches_the_other_factorization(k, reml, weights):
    data = _sim(k, weights=weights, seed=k)
    design = _design(f"y ~ x + z + {_RE[k]}", data, weights="w" if weights else None)
    _check_against_oracle(*_pair(design, reml))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_many_levels_loops_match_blocked(k):
    """Beyond BAND_MAX_LEVELS levels the per-level loops factor ``M``; unbalanced levels
    with weights, both criteria."""
    data = _sim(k, n_levels=3 * BAND_MAX_LEVELS, seed=30 + k, weights=True)
    design = _design(f"y ~ x + {_RE[k]}", data, weights="w")
    for reml in (True, False):
        new, old = _pair(design, reml)
        assert not new.one_factor.system.band
        _check_against_oracle(new, old)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_band_and_loops_agree(k):
    data = _sim(k, n_levels=50, seed=40 + k)
    design = _design(f"y ~ x + z + {_RE[k]}", data)
    obj, _ = _pair(design, True)
    band = obj.one_factor.system
    assert band.band
    A = obj._core.A if obj.method == "blocked" else None
    if A is None:
        q = band.g * band.k
        loops = OneFactorSystem.from_dense(
            obj.system.full, np.arange(q).reshape(band.g, band.k), band.structure
        )
        loops.band = False
    else:
        loops = OneFactorSystem(A.A11, A.A1X, A.AXX, band.structure, band=False)
    psi = np.eye(band.m) + 0.1
    for th in _thetas(obj):
        fa, fb = band.factorize(th), loops.factorize(th)
        assert fa.logdet_Z == pytest.approx(fb.logdet_Z, rel=VALUE_RTOL)
        np.testing.assert_allclose(np.tril(fa.LXX), np.tril(fb.LXX), rtol=1e-11, atol=1e-11)
        ga, gb = band.lambda_gradient(fa, psi), loops.lambda_gradient(fb, psi)
        np.testing.assert_allclose(ga, gb, rtol=0, atol=GRAD_RTOL * max(1.0, np.abs(ga).max()))


@pytest.mark.parametrize(
    "formula,dataset",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),
        ("Reaction ~ Days + (0 + Days | Subject)", "sleepstudy"),
        ("Yield ~ 1 + (1 | Batch)", "Dyestuff"),
        ("Yield ~ 1 + (1 | Batch)", "Dyestuff2"),
        ("diameter ~ 1 + (1 | plate)", "Penicillin"),
        ("distance ~ age * Sex + (age | Subject)", "Orthodont"),
        ("distance ~ age + (Sex | Subject)", "Orthodont"),
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_datasets_match_the_other_factorization(formula, dataset, reml):
    design = _design(formula, mm.datasets.load(dataset))
    _check_against_oracle(*_pair(design, reml))


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 | g) + (0 + x | g) + (0 + z | g)",  # merged scalar terms
        "y ~ x + (x || g) + (0 + z | g)",
        "y ~ x + (1 | g) + (0 + x + z | g)",  # scalar + vector merged
    ],
)
def test_merged_terms_match_blocked(formula):
    data = _sim(3, n_levels=60, seed=7)
    design = _design(formula, data)
    for reml in (True, False):
        new, old = _pair(design, reml)
        assert old.method == "blocked" and old.merge is not None
        _check_against_oracle(new, old)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + diag(x + z | g)",
        "y ~ x + cs(x + z | g)",
    ],
)
def test_structured_terms_match(formula):
    data = _sim(3, n_levels=30, seed=11)
    design = _design(formula, data)
    new, old = _pair(design, True)
    _check_against_oracle(new, old)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gradient_matches_finite_differences(k):
    data = _sim(k, seed=20 + k)
    design = _design(f"y ~ x + {_RE[k]}", data)
    new, _ = _pair(design, True)
    for th in _thetas(new, seed=5, n=3)[1:-1]:
        _, grad = new.value_and_gradient(th)
        fd = np.empty_like(th)
        for j in range(th.size):
            h = FD_H * max(abs(th[j]), 1.0)
            e = np.zeros_like(th)
            e[j] = h
            fd[j] = (new(th + e) - new(th - e)) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(fd))))
        np.testing.assert_allclose(grad, fd, rtol=0, atol=FD_RTOL * scale)


def test_singular_point_is_exact():
    """A zero variance (theta on its bound): no lambda^{-1} is formed, so the value and
    gradient there agree with the dense factorization's."""
    design = _design("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    new, old = _pair(design, True)
    th = np.zeros(1)
    v1, g1 = new.value_and_gradient(th)
    v0, g0 = old.value_and_gradient(th)
    assert abs(v1 - v0) <= VALUE_RTOL * abs(v0)
    np.testing.assert_allclose(g1, g0, rtol=0, atol=GRAD_RTOL * max(1.0, abs(g0[0])))


def test_dispatch():
    data = _sim(2, n_levels=60)
    # blocked (q + p + 1 > 80), one factor: level by level
    assert LMMObjective(_design("y ~ x + (x | g)", data)).one_factor is not None
    # merged terms on one factor
    assert LMMObjective(_design("y ~ x + (x || g)", data)).one_factor is not None
    # a second grouping factor: not one block
    data["h"] = pd.Categorical(np.arange(len(data)) % 7)
    assert LMMObjective(_design("y ~ x + (x | g) + (1 | h)", data)).one_factor is None
    # a known sigma is not profiled: the other paths
    assert LMMObjective(_design("y ~ x + (x | g)", data), sigma=1.0).one_factor is None
    # a small dense system stays dense (its ~10 calls are cheaper)
    small = _sim(1, n_levels=8)
    assert LMMObjective(_design("y ~ x + (1 | g)", small)).one_factor is None
    # turned off on request
    assert LMMObjective(_design("y ~ x + (x | g)", data), one_factor=False).one_factor is None


def test_set_data_falls_back_to_the_refreshed_factorization():
    data = _sim(2, n_levels=60, seed=3)
    design = _design("y ~ x + (x | g)", data)
    obj = LMMObjective(design)
    th = obj.theta0 * 0.8
    before = obj(th)
    XY = obj.internal_XY * 2.0
    Z = [t.Z * 2.0 for t in design.terms]
    obj.set_data(XY, Z, 0.0)
    assert obj.one_factor is None
    ref = LMMObjective(design, one_factor=False)
    ref.set_data(XY, Z, 0.0)
    assert obj(th) == pytest.approx(ref(th), rel=VALUE_RTOL)
    assert obj(th) != pytest.approx(before, rel=1e-3)


def test_from_dense_reorders_columns():
    """``from_dense`` reads each level's block through ``index``, whatever the column
    order of the dense cross-product."""
    rng = np.random.default_rng(4)
    g, k, m = 5, 2, 3
    Zc = rng.normal(size=(40, g * k))
    XY = rng.normal(size=(40, m))
    full = np.column_stack([Zc, XY])
    full = full.T @ full
    perm = rng.permutation(g * k)
    permuted = full.copy()
    order = np.concatenate([perm, np.arange(g * k, g * k + m)])
    permuted = full[np.ix_(order, order)]
    index = np.argsort(perm).reshape(g, k)
    struct = LMMObjective(_design("y ~ x + (x | g)", _sim(2, n_levels=g))).design.terms[0]
    a = OneFactorSystem.from_dense(permuted, index, struct.structure)
    b = OneFactorSystem.from_dense(full, np.arange(g * k).reshape(g, k), struct.structure)
    th = np.array([0.9, 0.2, 0.4])
    fa, fb = a.factorize(th), b.factorize(th)
    assert fa.logdet_Z == pytest.approx(fb.logdet_Z, rel=1e-12)
    np.testing.assert_allclose(np.tril(fa.LXX), np.tril(fb.LXX), rtol=1e-12)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (x | g)",
        "y ~ x + (1 | g) + (0 + x | g) + (0 + z | g)",
    ],
)
def test_fit_reaches_the_old_paths_optimum(formula):
    data = _sim(3, n_levels=80, seed=9)
    design = _design(formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.fit_lmm(design)
    old = LMMObjective(design, one_factor=False)
    assert m.objective_function.one_factor is not None
    assert old(m.theta) == pytest.approx(m.objective, abs=1e-9)
    from mixedmodels.fitting.lmm import optimize_lmm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol, _, _ = optimize_lmm(old)
    assert m.objective <= sol.objective + OBJ_ATOL
    np.testing.assert_allclose(m.theta, sol.theta, rtol=0, atol=THETA_ATOL)


def test_copied_objective_builds_its_plan():
    """The not-yet-built marker survives pickling and deep copies."""
    import copy
    import pickle

    design = _design("y ~ x + (x | g)", _sim(2, n_levels=120, seed=5))
    obj = LMMObjective(design)
    th = obj.theta0 * 0.9
    for other in (copy.deepcopy(obj), pickle.loads(pickle.dumps(obj))):
        assert other.one_factor is not None
        assert other(th) == pytest.approx(obj(th), rel=VALUE_RTOL)

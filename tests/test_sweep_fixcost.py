"""The fixed per-fit cost lane (s13 ``fixcost``): each shortcut gives what it replaces.

* the scalar paths of the small-model checks (rank rule, bound curvatures, gradient test,
  boundary snap, a direct structure's singularity) equal the numpy ones bit for bit on
  random inputs with zeros, NaN and infinities;
* :meth:`DenseSystem.factorize` answers a factor at the last scratch theta with a copy that
  equals a fresh factorization bit for bit, owns its array, and is not reused after new data;
* :func:`fast_matrix`'s cached plans give the matrix a fresh plan gives, and a level set
  that differs gives its own names;
* :func:`shallow_manager` snapshots are isolated from later writes both ways;
* ``_outer_rows`` by ``einsum`` equals the broadcast products bit for bit;
* :func:`lmer`'s single collection keeps the messages and the design fitter's options.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.covariance import make_structure
from mixedmodels.design import fast as fast_mod
from mixedmodels.design.fast import fast_matrix
from mixedmodels.design.fixed import RANK_TOL, _keep_from_upper, keep_from_triangular
from mixedmodels.design.frame import ColumnFrame, shallow_manager
from mixedmodels.diagnostics import convergence as conv_mod
from mixedmodels.fitting import common as common_mod
from mixedmodels.objective import LMMObjective
from mixedmodels.rside.gram import _outer_rows

_SPECIAL = (0.0, -0.0, 1e-300, 1e-9, np.nan, np.inf, -np.inf)


def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_scalar_rank_rule_matches_numpy():
    rng = np.random.default_rng(11)
    for _ in range(3000):
        p = int(rng.integers(1, 10))
        R = rng.standard_normal((p, p)) * 10.0 ** rng.integers(-150, 150, size=(p, p))
        if rng.random() < 0.4:
            R[:, rng.integers(p)] *= rng.choice([0.0, 1e-9, RANK_TOL, 1e-300])
        if rng.random() < 0.1:
            R[rng.integers(p), rng.integers(p)] = rng.choice(_SPECIAL)
        R = np.triu(R)
        junk = R + np.tril(rng.standard_normal((p, p)), -1)   # Householder vectors below
        with np.errstate(all="ignore"):
            expected = keep_from_triangular(R, RANK_TOL)
        assert _equal(_keep_from_upper(junk.tolist(), RANK_TOL), expected)


def _scalar_and_numpy(monkeypatch, module, name, limit, fn):
    got = fn()
    monkeypatch.setattr(module, name, 0)
    ref = fn()
    monkeypatch.setattr(module, name, limit)
    return got, ref


@pytest.mark.parametrize("seed", range(4))
def test_convergence_scalar_paths_match_numpy(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    values = np.array([0.0, 1e-6, 1e-4, 1e-3, 0.5, 2.0, -3.0, 1e5, np.nan])
    for _ in range(400):
        k = int(rng.integers(1, 9))
        x = rng.choice(values, size=k) * rng.choice([1.0, 1.0000001], size=k)
        lower = rng.choice([0.0, -np.inf, 1e-5], size=k)
        g = rng.choice([0.0, 1e-4, -1e-4, 2e-3, -5.0, np.nan], size=k)

        def second(i, e):
            return float(i) - 3.0 * e[i]

        got, ref = _scalar_and_numpy(
            monkeypatch, conv_mod, "SCALAR_CHECK_MAX", conv_mod.SCALAR_CHECK_MAX,
            lambda x=x, lower=lower, g=g: conv_mod._bound_curvatures(x, lower, g, second))
        assert all(_equal(a, b) for a, b in zip(got, ref, strict=True))
        active = ref[0]

        def verdict(x=x, g=g, active=active):
            try:
                return conv_mod._gradient_verdict(lambda z, g=g: (0.0, g), x, g, active,
                                                  None, 1e-3, 1e-6).converged
            except np.linalg.LinAlgError:
                return "error"

        got, ref = _scalar_and_numpy(monkeypatch, conv_mod, "SCALAR_CHECK_MAX",
                                     conv_mod.SCALAR_CHECK_MAX, verdict)
        assert got == ref

        def snap(x=x, lower=lower):
            return common_mod.snap_to_boundary(lambda z: float(np.nansum(z)), x, 1.0, lower)

        got, ref = _scalar_and_numpy(monkeypatch, common_mod, "SCALAR_SNAP_MAX",
                                     common_mod.SCALAR_SNAP_MAX, snap)
        assert _equal(got[0], ref[0]) and got[1] == ref[1]


def test_direct_singularity_scalar_path_matches_numpy(monkeypatch):
    from mixedmodels.covariance import base

    rng = np.random.default_rng(5)
    for p in (1, 2, 3):
        s = make_structure("us", p)
        for _ in range(300):
            theta = rng.choice([0.0, -0.0, 5e-5, -5e-5, 1e-4, 0.3, -2.0, np.nan],
                               size=s.n_theta)
            got, ref = _scalar_and_numpy(monkeypatch, base, "SCALAR_SINGULAR_MAX",
                                         base.SCALAR_SINGULAR_MAX,
                                         lambda s=s, theta=theta: bool(s.is_singular(theta)))
            assert got == ref


def test_dense_factor_at_the_last_scratch_theta_is_a_fresh_factor():
    data = mm.datasets.load("sleepstudy")
    design = mm.materialize(mm.parse_formula("Reaction ~ Days + (Days | Subject)"), data)
    obj = LMMObjective(design)
    assert obj.method == "dense"
    theta = np.array([0.9, 0.02, 0.25])
    obj.value_and_gradient(theta)
    reused = obj.system.factorize(theta)
    fresh = LMMObjective(design).system.factorize(theta)
    for name in ("L", "log_diag"):
        assert _equal(getattr(reused, name), getattr(fresh, name))
    assert reused.logdet_Z == fresh.logdet_Z
    # the copy owns its array: the next evaluation's scratch does not reach it
    kept = reused.L.copy()
    obj.value_and_gradient(theta * 1.1)
    assert _equal(reused.L, kept)
    # another theta, or new data at the same theta, is factored afresh
    other = obj.system.factorize(theta * 1.1)
    assert _equal(other.L, LMMObjective(design).system.factorize(theta * 1.1).L)
    obj.value_and_gradient(theta)
    obj.system.set_cross_product(obj.system.full * 2.0, design.p + 1)
    doubled = obj.system.factorize(theta)
    assert not _equal(doubled.L, fresh.L)
    # solve() of the fit is the solve of a fresh objective
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    sol = LMMObjective(design).solve(m.theta)
    assert _equal(m.solution.beta, sol.beta) and m.solution.objective == sol.objective
    assert _equal(m.solution.factor.L, sol.factor.L)


def _frame(levels, n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.standard_normal(n),
        "z": rng.integers(0, 5, n).astype(float),
        "f": pd.Categorical(rng.choice(levels, n), categories=levels),
        "g": rng.choice(["u", "v"], n),
        "b": rng.random(n) < 0.5,
    })


@pytest.mark.parametrize("formula", ["x * f", "1 + x + f + x:f", "0 + f + g", "x * z + g",
                                     "f * g", "b + x:b", "x + z + f:g + f + g"])
def test_fast_matrix_cached_plan_equals_a_fresh_one(formula):
    frame = _frame(["a", "b", "c"])
    fast_mod._PLANS.clear()
    first = fast_matrix(formula, frame)
    again = fast_matrix(formula, frame)
    fast_mod._PLANS.clear()
    fresh = fast_matrix(formula, frame)
    if fresh is None:
        assert first is None and again is None
        return
    for got in (first, again):
        assert _equal(got.X, fresh.X)
        assert got.names == fresh.names and got.r_names == fresh.r_names
        assert got.has_factors == fresh.has_factors


def test_fast_matrix_plan_is_per_level_set():
    one = fast_matrix("x * f", _frame(["a", "b", "c"]))
    two = fast_matrix("x * f", _frame(["a", "b", "d"]))
    assert "f[T.c]" in one.names and "f[T.d]" in two.names
    assert "f[T.c]" not in two.names
    # numbers and their text are different levels' names
    ints = fast_matrix("f", pd.DataFrame({"f": pd.Categorical([1, 2, 3, 1])}))
    floats = fast_matrix("f", pd.DataFrame({"f": pd.Categorical([1.0, 2.5, 3.0, 1.0])}))
    assert ints is not None and floats is not None
    assert ints.names != floats.names


def test_shallow_manager_snapshot_is_isolated():
    data = mm.datasets.load("sleepstudy").copy()
    snap = ColumnFrame.wrap(data)
    first = snap["Reaction"].iloc[0]
    data.loc[0, "Reaction"] = -1.0
    data["Days"] = 0
    assert snap["Reaction"].iloc[0] == first and snap["Days"].max() == 9
    plain = snap.plain()
    plain.loc[1, "Reaction"] = -5.0
    assert snap["Reaction"].iloc[1] != -5.0 and data["Reaction"].iloc[1] != -5.0
    copy = pd.DataFrame._from_mgr(shallow_manager(data._mgr), axes=data._mgr.axes)
    pd.testing.assert_frame_equal(copy, data)
    assert copy.index is not data.index        # (views of the axes, as pandas' copy)


def test_outer_rows_equal_the_broadcast_products():
    rng = np.random.default_rng(3)
    for n, k in ((1, 1), (7, 3), (300, 4), (50, 9)):
        A = rng.standard_normal((n, k))
        B = rng.standard_normal((n, k))
        A.flat[rng.integers(0, A.size, 3)] = rng.choice(_SPECIAL, 3)
        B.flat[rng.integers(0, B.size, 3)] = rng.choice(_SPECIAL, 3)
        with np.errstate(invalid="ignore"):
            expected = (A[:, :, None] * B[:, None, :]).reshape(n, k * k)
            got = _outer_rows(A, B)
        assert _equal(got, expected) and got.flags.c_contiguous
        # signed zeros too (a NaN's sign may differ: M is finite, materialize saw to it)
        real = ~np.isnan(expected)
        assert np.array_equal(np.signbit(got[real]), np.signbit(expected[real]))


def test_lmer_messages_and_recipe_after_one_collection():
    data = mm.datasets.load("sleepstudy")
    # a singular fit: its warning is collected once, and the design fitter's options are
    # those fit_lmm records
    boundary = data.assign(Reaction=data["Reaction"] + 0.0)
    boundary["Reaction"] = data["Days"] * 3.0 + np.sin(np.arange(len(data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Reaction ~ Days + (Days | Subject)", boundary, REML=False)
        ref = mm.fit_lmm(m.design, REML=False)
    assert m.messages == ref.messages
    assert any("singular" in msg for msg in m.messages)
    assert m.recipe.design_kwargs == ref.recipe.design_kwargs
    assert m.recipe.fitter is mm.lmer
    assert m.objective == ref.objective


def test_columns_at_shares_one_index_and_stays_isolated():
    from mixedmodels.design.frame import columns_at

    data = mm.datasets.load("sleepstudy").copy()
    names = list(data.columns)
    cols = columns_at(data, names, tuple(range(len(names))))
    for name in names:
        pd.testing.assert_series_equal(cols[name], data[name])
    assert cols[names[0]].index is cols[names[-1]].index
    assert cols[names[0]].index is not data.index
    first = cols["Reaction"].iloc[0]
    data.loc[0, "Reaction"] = -9.0                 # the caller's write copies first
    assert cols["Reaction"].iloc[0] == first
    mine = columns_at(data, ["Reaction"], (names.index("Reaction"),))["Reaction"]
    mine.iloc[1] = -7.0                            # and ours never reaches the caller
    assert data["Reaction"].iloc[1] != -7.0

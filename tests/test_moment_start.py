"""Moment starting values of large LMMs (fitting/moment_start): the estimate is close to
the optimum it starts from, declines where it does not apply, and the fit it starts
reaches the same optimum as lme4's start."""

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.fitting.moment_start import moment_theta
from mixedmodels.formula import parse_formula
from mixedmodels.objective import LMMObjective

#: The moment estimate's largest relative distance from the REML optimum on the
#: simulated design below (an estimate for the start only; measured 0.11, and 0.10 for
#: the weighted variant).
START_REL_TOL = 0.2
#: Same optimum from both starts: objective (deviance units) and theta.
OBJ_TOL = 1e-6
THETA_TOL = 1e-4


def _crossed(n=6000, k1=150, k2=40, k3=20, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g1, g2, g3 = (rng.integers(0, k, n) for k in (k1, k2, k3))
    x = rng.standard_normal(n)
    y = (
        0.5
        + x
        + 0.8 * rng.standard_normal(k1)[g1]
        + 0.4 * rng.standard_normal(k2)[g2]
        + 0.3 * rng.standard_normal(k3)[g3]
        + 0.3 * rng.standard_normal(k3)[g3] * x
        + rng.standard_normal(n)
    )
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "g1": pd.Categorical(g1),
            "g2": pd.Categorical(g2),
            "g3": pd.Categorical(g3),
        }
    )


FORMULA = "y ~ x + (1 | g1) + (1 | g2) + (x | g3)"


def _design(formula, data, **kw):
    return mm.materialize(parse_formula(formula), data, **kw)


def test_moment_start_near_the_optimum():
    data = _crossed()
    design = _design(FORMULA, data)
    guess = moment_theta(design)
    fit = mm.lmer(FORMULA, data, start=design.theta0())
    scale = np.maximum(np.abs(fit.theta), 0.1)
    assert np.max(np.abs(guess - fit.theta) / scale) < START_REL_TOL


def test_moment_start_lower_than_lme4_start():
    design = _design(FORMULA, _crossed())
    obj = LMMObjective(design, reml=True)
    assert obj(moment_theta(design)) < obj(design.theta0())


def test_fit_from_moment_start_reaches_the_same_optimum(monkeypatch):
    from mixedmodels.fitting import lmm as fitting_lmm

    data = _crossed()
    # below MOMENT_START_MIN_ROWS the search starts where lme4 does (next test)
    monkeypatch.setattr(fitting_lmm, "MOMENT_START_MIN_ROWS", len(data))
    auto = mm.lmer(FORMULA, data)
    design = _design(FORMULA, data)
    assert LMMObjective(design).method != "dense"  # the path the moment start serves
    assert not np.array_equal(auto.opt.x0, design.theta0())
    lme4_start = mm.lmer(FORMULA, data, start=design.theta0())
    assert auto.objective <= lme4_start.objective + OBJ_TOL
    np.testing.assert_allclose(auto.theta, lme4_start.theta, atol=THETA_TOL)
    np.testing.assert_allclose(auto.fixef, lme4_start.fixef, atol=THETA_TOL)


def test_small_models_start_where_lme4_does(monkeypatch):
    """Below MOMENT_START_MIN_ROWS rows the gradient search starts at lme4's theta0 (the
    path small fits have always taken); at the threshold it takes the moment start (on
    Dask input too: tests/test_dask_moment_start.py)."""
    from mixedmodels.fitting import lmm as fitting_lmm

    data = _crossed()
    design = _design(FORMULA, data)
    monkeypatch.setattr(fitting_lmm, "MOMENT_START_MIN_ROWS", len(data) + 1)
    np.testing.assert_array_equal(mm.lmer(FORMULA, data).opt.x0, design.theta0())
    monkeypatch.setattr(fitting_lmm, "MOMENT_START_MIN_ROWS", len(data))
    assert not np.array_equal(mm.lmer(FORMULA, data).opt.x0, design.theta0())


def test_diagonal_term_theta_is_per_column_sd():
    data = _crossed()
    design = _design("y ~ x + (1 | g1) + (x || g3)", data)
    guess = moment_theta(design)
    assert guess.shape == design.theta0().shape and np.all(guess > 0)


def test_declines_with_structured_terms():
    data = _crossed()
    data["t"] = pd.Categorical(np.arange(len(data)) % 3)
    assert moment_theta(_design("y ~ x + (1 | g1) + cs(0 + t | g3)", data)) is None


def test_weighted_moment_start_near_the_weighted_optimum():
    # residual variance sigma^2 / w: the weighted moments estimate the model's theta
    data = _crossed()
    w = np.random.default_rng(8).uniform(0.3, 3.0, len(data))
    data["y"] += np.random.default_rng(9).standard_normal(len(data)) * np.sqrt(1 / w - 1 / 3)
    design = _design(FORMULA, data, weights=w)
    guess = moment_theta(design)
    fit = mm.lmer(FORMULA, data, weights=w, start=design.theta0())
    scale = np.maximum(np.abs(fit.theta), 0.1)
    assert np.max(np.abs(guess - fit.theta) / scale) < START_REL_TOL
    obj = LMMObjective(design)
    assert obj(guess) < obj(design.theta0())


@pytest.mark.filterwarnings("ignore:boundary .singular. fit")
@pytest.mark.parametrize("sd", [0.0, 1e-3])
def test_vanishing_variance_starts_near_the_bound(sd):
    # g2 has (almost) no variance: its moment estimate is at or below zero and starts at
    # the floor, inside the region; the fit still agrees with lme4's start
    rng = np.random.default_rng(5)
    n, k1, k2 = 4000, 120, 30
    g1, g2 = rng.integers(0, k1, n), rng.integers(0, k2, n)
    y = rng.standard_normal(k1)[g1] + sd * rng.standard_normal(k2)[g2] + rng.standard_normal(n)
    data = pd.DataFrame({"y": y, "g1": pd.Categorical(g1), "g2": pd.Categorical(g2)})
    f = "y ~ 1 + (1 | g1) + (1 | g2)"
    guess = moment_theta(_design(f, data))
    assert 0 < guess[1] < 0.2
    auto = mm.lmer(f, data)
    ref = mm.lmer(f, data, start=[1.0, 1.0])
    assert auto.objective <= ref.objective + OBJ_TOL
    np.testing.assert_allclose(auto.theta, ref.theta, atol=THETA_TOL)


@pytest.mark.parametrize("p", [1, 2])
def test_level_moments_against_per_level_least_squares(p):
    # oracle: an explicit least-squares fit per level (levels 3 and 7 have too few rows
    # for p = 2 coefficients and drop out; level 9 is unused)
    from mixedmodels.fitting.moment_start import _level_moments

    rng = np.random.default_rng(11)
    codes = rng.integers(0, 9, 300)
    codes[codes == 3] = 4
    codes[np.flatnonzero(codes == 7)[1:]] = 6
    codes[0], codes[1] = 3, 7
    Z = np.column_stack([np.ones(300), rng.standard_normal(300)])[:, :p]
    r = rng.standard_normal(300)
    ZZ = np.stack([Z[codes == lev].T @ Z[codes == lev] for lev in range(10)])
    Zr = np.stack([Z[codes == lev].T @ r[codes == lev] for lev in range(10)])
    B, H, M, levels = _level_moments(ZZ, Zr, 300)
    bs, hs = [], []
    for lev in range(10):
        rows = codes == lev
        if rows.sum() < p:
            continue
        Zl = Z[rows]
        bs.append(np.linalg.lstsq(Zl, r[rows], rcond=None)[0])
        hs.append(np.linalg.inv(Zl.T @ Zl))
    bs = np.array(bs)
    assert levels == len(bs)
    np.testing.assert_allclose(B, bs.T @ bs / len(bs), rtol=1e-10)
    np.testing.assert_allclose(H, np.mean(hs, axis=0), rtol=1e-10)
    np.testing.assert_allclose(M, Z.T @ Z / 300, rtol=1e-12)


def _per_level_oracle(codes, nlevels, Z, r):
    """``Z_l'Z_l`` and ``Z_l'r`` of every level, one level at a time."""
    ZZ = np.stack([Z[codes == lev].T @ Z[codes == lev] for lev in range(nlevels)])
    Zr = np.stack([Z[codes == lev].T @ r[codes == lev] for lev in range(nlevels)])
    return ZZ, Zr


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("method", ["blocked", "sparse"])
def test_term_products_are_the_rows_per_level_products(method, weighted):
    # the first block merges the two g1 terms (the second's columns after the first's),
    # the rest block holds g2's term and the merged g3 terms after it (a dense A22 for
    # "blocked", a sparse one for "sparse"); the residual is the (weighted) least-squares
    # one, and the products are weighted: W^{1/2} applied to Z and r
    from mixedmodels.fitting.moment_start import _term_products

    data = _crossed()
    w = np.linspace(0.5, 2.0, len(data)) if weighted else None
    design = _design("y ~ x + (x || g1) + (1 | g2) + (x || g3)", data, weights=w)
    obj = LMMObjective(design, method=method)
    assert obj.merge is not None and obj.merge.groups == ((0, 1), (2,), (3, 4))
    sw = np.ones(len(data)) if w is None else np.sqrt(w)
    X, y = design.X * sw[:, None], np.asarray(design.y, float) * sw
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    for t, (ZZ, Zr) in zip(design.terms, _term_products(obj), strict=True):
        Z = np.asarray(t.Z) * sw[:, None]
        want_ZZ, want_Zr = _per_level_oracle(t.grouping.codes, t.nlevels, Z, r)
        np.testing.assert_allclose(ZZ, want_ZZ, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(Zr, want_Zr, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(obj.cross_products.AXX[-1, -1], r @ r, rtol=1e-10)


def test_moment_start_of_sparse_and_blocked_objectives_agree():
    design = _design(FORMULA, _crossed())
    blocked = moment_theta(LMMObjective(design, method="blocked"))
    sparse = moment_theta(LMMObjective(design, method="sparse"))
    np.testing.assert_allclose(sparse, blocked, rtol=1e-12)
    np.testing.assert_array_equal(moment_theta(design), blocked)

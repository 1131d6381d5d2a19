"""Kernels of the insteval lane against dense oracles.

* :meth:`BlockedSystem.factorize` writing the dense block at the product pattern's
  positions (scalar rest terms, ``A22`` inside the pattern) gives the same factor bit for
  bit as the general branch (copy of ``A22``, pattern subtraction, scaling), and both the
  Cholesky factor of the dense ``S = D (A22 - A21 C A21') D + I`` formed with numpy;
  with an ``A22`` non-zero off the pattern the general branch is taken.
* :func:`shrinkage_curvature` through ``value_and_gradient(theta, curvature=...)``: the rest
  terms' ``4 sum (1 - (M^{-1})_ii)^2`` from the dense ``M = Lambda Z'Z Lambda + I``, the
  first term's from its level blocks; and the estimate within a factor of the Hessian
  (central differences of the analytic gradient in log theta).
* the gradient search started with that curvature reaches the optimum of the identity
  start in no more evaluations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.fitting.lmm as lmm_fitting

#: Factor of the pattern branch against numpy's Cholesky of the dense S (relative to the
#: largest entry; both round differently).
FACTOR_RTOL = 1e-12
#: The curvature estimate against the dense oracle (same formula, other rounding).
CURVATURE_RTOL = 1e-9
#: The estimate is an approximation of the Hessian's diagonal: within this factor of it.
CURVATURE_FACTOR = 2.0
#: Step (log theta) of the central differences of the gradient.
HESS_STEP = 1e-4
#: Objectives of the two starts of the search (relative).
OPTIMUM_RTOL = 1e-10


def _crossed(seed: int, n: int = 3000, levels=(400, 90, 7)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = {f"g{i + 1}": rng.integers(0, k, n) for i, k in enumerate(levels)}
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(size=n)
    for i, g in enumerate(codes.values()):
        y = y + rng.normal(scale=0.9 / (i + 1), size=levels[i])[g]
    # odd ordering: the rows shuffled, the levels not in order of appearance
    perm = rng.permutation(n)
    df = pd.DataFrame({"y": y, "x": x, "w": rng.uniform(0.5, 2.0, n),
                       **{k: v.astype(str) for k, v in codes.items()}})
    return df.iloc[perm].reset_index(drop=True)


def _objective(formula: str, data: pd.DataFrame, weights=None, reml=True):
    design = mm.materialize(mm.parse_formula(formula), data, weights=weights)
    obj = mm.LMMObjective(design, reml=reml)
    assert obj.method == "blocked" and obj._core._product is not None
    return obj


def _dense_s(system, theta: np.ndarray) -> np.ndarray:
    """``D (A22 - A21 C A21') D + I`` with numpy (C = lambda_1^2 / (1 + lambda_1^2 a11))."""
    A = system.A
    lam1 = theta[0]
    a11 = A.A11[:, 0, 0]
    C = lam1 * lam1 / (1.0 + lam1 * lam1 * a11)
    A21 = A.A21.toarray()
    D = system.rest_lambda(theta)
    S = D[:, None] * (A.A22 - (A21 * C[None, :]) @ A21.T) * D[None, :]
    return S + np.eye(S.shape[0])


THETAS = [np.array([0.7, 0.4, 1.3]), np.array([1.0, 0.0, 0.2]), np.array([0.05, 2.0, 0.6])]


@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("theta", THETAS, ids=["inner", "zero", "spread"])
def test_pattern_block_matches_general_branch_and_dense_cholesky(weights, theta):
    obj = _objective("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)", _crossed(3), weights)
    system = obj._core
    assert system._a22_pattern is not None      # the pattern branch applies here
    f_new = system.factorize(theta)
    saved, system._a22_pattern = system._a22_pattern, None
    try:
        f_old = system.factorize(theta)
    finally:
        system._a22_pattern = saved
    new, old = np.tril(f_new.L22), np.tril(f_old.L22)
    assert np.array_equal(new, old)
    assert f_new.logdet_Z == f_old.logdet_Z and np.array_equal(f_new.LXX, f_old.LXX)
    oracle = np.linalg.cholesky(_dense_s(system, theta))
    np.testing.assert_allclose(new, oracle, rtol=0, atol=FACTOR_RTOL * np.abs(oracle).max())


def test_a22_outside_the_pattern_takes_the_general_branch():
    # A21's structure comes from the rows (explicit zeros of a vanishing covariate
    # included), so every A22 non-zero of real data lies in the pattern; the guard is
    # checked on cross-products with one non-zero moved off it
    from dataclasses import replace

    obj = _objective("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)", _crossed(5, levels=(1500, 300, 7)))
    system = obj._core
    assert system._a22_pattern is not None
    n = system.A.A22.shape[0]
    lower = np.flatnonzero(np.tri(n, k=-1, dtype=bool).ravel())
    off = np.setdiff1d(lower, system._product.flat)
    assert off.size                          # a sparse enough pattern to leave room
    A22 = system.A.A22.copy()
    a, b = divmod(int(off[0]), n)
    A22[a, b] = A22[b, a] = 0.5
    system._a22_inside = None                # the check runs once per pattern: again
    assert system._rest_pattern_values(replace(system.A, A22=A22)) is None
    theta = np.array([0.6, 0.5, 0.8])
    system._a22_inside = None
    system.set_cross_products(replace(system.A, A22=A22))
    assert system._a22_pattern is None
    f = system.factorize(theta)
    oracle = np.linalg.cholesky(_dense_s(system, theta))
    np.testing.assert_allclose(np.tril(f.L22), oracle, rtol=0,
                               atol=FACTOR_RTOL * np.abs(oracle).max())


def _curvature_oracle(system, theta: np.ndarray) -> np.ndarray:
    A = system.A
    a11 = A.A11[:, 0, 0]
    A21 = A.A21.toarray()
    ZtZ = np.block([[np.diag(a11), A21.T], [A21, A.A22]])
    lam = np.concatenate([np.full(a11.size, theta[0]), system.rest_lambda(theta)])
    M = lam[:, None] * ZtZ * lam[None, :] + np.eye(lam.size)
    r = 1.0 - np.diagonal(np.linalg.inv(M))
    r[:a11.size] = 1.0 - 1.0 / (1.0 + theta[0] ** 2 * a11)   # first term: level blocks
    sizes = [a11.size] + [b.q for b in system.pattern.blocks[1:]]
    return np.array([4.0 * np.sum(part ** 2) for part in np.split(r, np.cumsum(sizes)[:-1])])


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("theta", THETAS, ids=["inner", "zero", "spread"])
def test_shrinkage_curvature_matches_dense_inverse(reml, theta):
    obj = _objective("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)", _crossed(11), "w", reml)
    out = np.full(3, np.nan)
    f, g = obj.value_and_gradient(theta, curvature=out)
    f0, g0 = obj.value_and_gradient(theta)
    assert f == f0 and np.array_equal(g, g0)    # asking for it changes nothing else
    np.testing.assert_allclose(out, _curvature_oracle(obj._core, theta), rtol=CURVATURE_RTOL)


def test_curvature_is_nan_where_the_path_has_none():
    data = _crossed(2)
    obj = mm.LMMObjective(mm.materialize(mm.parse_formula("y ~ x + (x | g1)"), data))
    out = np.zeros(3)
    obj.value_and_gradient(np.array([0.8, 0.1, 0.5]), curvature=out)
    assert np.all(np.isnan(out))


def test_curvature_estimate_is_near_the_hessian_diagonal():
    data = _crossed(17)
    formula = "y ~ x + (1 | g1) + (1 | g2) + (1 | g3)"
    obj = _objective(formula, data)
    theta = mm.lmer(formula, data).theta      # the Fisher-type estimate holds at the optimum
    out = np.full(3, np.nan)
    obj.value_and_gradient(theta, curvature=out)

    def glog(z):
        x = np.exp(z)
        return obj.value_and_gradient(x)[1] * x

    z = np.log(theta)
    hess = np.array([(glog(z + HESS_STEP * e) - glog(z - HESS_STEP * e))[i] / (2 * HESS_STEP)
                     for i, e in enumerate(np.eye(3))])
    assert np.all(hess > 0)
    ratio = out / hess
    assert np.all((ratio > 1 / CURVATURE_FACTOR) & (ratio < CURVATURE_FACTOR)), ratio


def test_search_with_start_curvature_reaches_the_same_optimum(monkeypatch):
    data = _crossed(23, n=12_000, levels=(1500, 200, 9))
    formula = "y ~ x + (1 | g1) + (1 | g2) + (1 | g3)"
    assert len(data) >= lmm_fitting.MOMENT_START_MIN_ROWS
    fit = mm.lmer(formula, data)
    monkeypatch.setattr(lmm_fitting, "start_curvature", lambda estimate: None)
    plain = mm.lmer(formula, data)
    assert fit.objective == pytest.approx(plain.objective, rel=OPTIMUM_RTOL)
    assert fit.opt.n_evals <= plain.opt.n_evals
    np.testing.assert_allclose(fit.theta, plain.theta, rtol=1e-4)

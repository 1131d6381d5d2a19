"""The start curvature of vector-valued and crossed terms (:func:`fisher_curvature`
through ``value_and_gradient(theta, curvature=...)`` on the blocked system's general
gradient).

* against a dense oracle: ``M = Lambda' Z'Z Lambda + I`` from the design's ``Z``, its
  inverse's level blocks (the first term's from its own level blocks), the per-level
  information ``tr(K F_j K F_j)`` with ``F_j`` from the structures' Jacobians, times
  ``theta_j^2`` for the parameters bounded at 0;
* on scalar terms the same as :func:`shrinkage_curvature` (``4 sum r_i^2``);
* within a factor of the Hessian's diagonal (central differences of the analytic gradient)
  at the optimum;
* the gradient search started with it reaches the optimum of the identity start in fewer
  evaluations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.fitting.lmm as lmm_fitting
from mixedmodels.covariance.unstructured import Unstructured
from mixedmodels.objective.lmm_gradient import fisher_curvature, shrinkage_curvature

#: The estimate against the dense oracle (same formula, other rounding).
ORACLE_RTOL = 1e-9
#: The estimate approximates the Hessian's diagonal: within this factor of it.
HESSIAN_FACTOR = 2.0
#: Step of the central differences (log theta for the parameters bounded at 0).
HESS_STEP = 1e-4
#: Objectives of the two starts of the search (relative).
OPTIMUM_RTOL = 1e-10


def _data(seed: int, n: int = 3000, levels=(300, 40)) -> pd.DataFrame:
    """Two crossed factors, a slope on each, shifted covariates, levels named oddly."""
    rng = np.random.default_rng(seed)
    g1, g2 = rng.integers(0, levels[0], n), rng.integers(0, levels[1], n)
    x = rng.normal(size=n) + 3.0
    z = rng.uniform(size=n)
    b1 = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.4]], levels[0])
    b2 = rng.multivariate_normal([0, 0, 0], [[0.8, 0.2, 0.0], [0.2, 0.3, 0.1],
                                             [0.0, 0.1, 0.5]], levels[1])
    y = (5.0 + 0.4 * x + b1[g1, 0] + b1[g1, 1] * x + b2[g2, 0] + b2[g2, 1] * x
         + b2[g2, 2] * z + rng.normal(size=n))
    return pd.DataFrame({"y": 50.0 * y + 1e3, "x": x, "z": z,
                         "g1": [f"a-{v}" for v in g1], "g2": [f"B {v}" for v in g2]})


FORMULAS = ["y ~ x + (x | g1) + (1 | g2)", "y ~ x + z + (1 | g1) + (x + z | g2)",
            "y ~ x + (x | g1) + (x | g2)"]


def _objective(formula: str, data: pd.DataFrame, reml: bool = True):
    obj = mm.LMMObjective(mm.materialize(mm.parse_formula(formula), data), reml=reml)
    assert obj.method == "blocked" and obj.merge is None and not obj._scalar_gradient
    return obj


def _oracle(obj, theta: np.ndarray) -> np.ndarray:
    design = obj.design
    lams = [t.structure.lambda_(theta[sl])
            for t, sl in zip(design.terms, design.theta_slices(), strict=True)]
    parts = []
    for t in design.terms:      # rows' values in their level's p columns
        Zk = np.zeros((t.Z.shape[0], t.nlevels, t.p))
        Zk[np.arange(t.Z.shape[0]), t.grouping.codes] = t.Z
        parts.append(Zk.reshape(t.Z.shape[0], -1))
    Z = np.hstack(parts)
    Lam = np.zeros((Z.shape[1], Z.shape[1]))
    off = 0
    for t, lam in zip(design.terms, lams, strict=True):
        for _ in range(t.nlevels):
            Lam[off:off + t.p, off:off + t.p] = lam
            off += t.p
    ZL = Z @ Lam
    Minv = np.linalg.inv(ZL.T @ ZL + np.eye(Z.shape[1]))
    out = np.empty(theta.size)
    off = 0
    for k, (t, sl, lam) in enumerate(zip(design.terms, design.theta_slices(), lams,
                                         strict=True)):
        p = t.p
        blocks = []
        for _ in range(t.nlevels):
            cols = slice(off, off + p)
            if k == 0:      # the first term: its levels' own blocks
                blocks.append(np.linalg.inv(ZL[:, cols].T @ ZL[:, cols] + np.eye(p)))
            else:
                blocks.append(Minv[cols, cols])
            off += p
        th = theta[sl]
        jac = np.asarray(t.structure.lambda_jacobian(th)).reshape(-1, p, p)
        for j in range(jac.shape[0]):
            D = jac[j] * (th[j] if t.structure.lower_bounds()[j] == 0.0 else 1.0)
            E = np.linalg.inv(lam) @ D
            F = E + E.T
            out[sl.start + j] = sum(np.trace((np.eye(p) - B) @ F @ (np.eye(p) - B) @ F)
                                    for B in blocks)
    return out


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("formula", FORMULAS)
def test_curvature_matches_the_dense_oracle(formula, reml):
    data = _data(3, n=1200, levels=(150, 25))
    obj = _objective(formula, data, reml)
    rng = np.random.default_rng(5)
    theta = obj.theta0 * rng.uniform(0.3, 1.5, obj.theta0.size) + 0.05 * (obj.lower < 0)
    out = np.full(theta.size, np.nan)
    f, g = obj.value_and_gradient(theta, curvature=out)
    f0, g0 = obj.value_and_gradient(theta)
    assert f == f0 and np.array_equal(g, g0)    # asking for it changes nothing else
    np.testing.assert_allclose(out, _oracle(obj, theta), rtol=ORACLE_RTOL)


def test_scalar_terms_give_the_shrinkage_formula():
    rng = np.random.default_rng(1)
    d = 1.0 + rng.uniform(0.1, 3.0, 40)                 # level diagonals of L11
    rest = rng.uniform(0.05, 0.95, 12)                  # (M^{-1})_ii of the rest terms
    term_of_rest = np.repeat([0, 1], [5, 7])
    expect = shrinkage_curvature(d, rest, term_of_rest, 3)
    structs = [Unstructured(1) for _ in range(3)]
    theta = np.array([0.7, 1.9, 0.2])
    lams = [np.array([[t]]) for t in theta]
    blocks = [(1.0 / d ** 2).reshape(-1, 1, 1), rest[:5].reshape(-1, 1, 1),
              rest[5:].reshape(-1, 1, 1)]
    slices = [slice(i, i + 1) for i in range(3)]
    out = fisher_curvature(structs, slices, theta, lams, blocks, [None] * 3)
    np.testing.assert_allclose(out, expect, rtol=1e-12)


def test_curvature_is_nan_for_a_singular_term():
    obj = _objective(FORMULAS[0], _data(8, n=1200, levels=(150, 25)))
    theta = obj.theta0.copy()
    theta[0] = 0.0                      # (x | g1)'s first diagonal at its bound
    out = np.zeros(theta.size)
    obj.value_and_gradient(theta, curvature=out)
    sl = obj.design.theta_slices()[0]
    assert np.all(np.isnan(out[sl]))


@pytest.mark.parametrize("formula", FORMULAS[:2])
def test_curvature_estimate_is_near_the_hessian_diagonal(formula):
    data = _data(17)
    obj = _objective(formula, data)
    theta = mm.lmer(formula, data).theta      # the Fisher-type estimate holds at the optimum
    out = np.full(theta.size, np.nan)
    obj.value_and_gradient(theta, curvature=out)
    logp = obj.lower == 0.0

    def to_x(z):
        return np.where(logp, np.exp(z), z)

    def gz(z):
        x = to_x(z)
        return obj.value_and_gradient(x)[1] * np.where(logp, x, 1.0)

    z = np.where(logp, np.log(theta), theta)
    hess = np.array([(gz(z + HESS_STEP * e) - gz(z - HESS_STEP * e))[i] / (2 * HESS_STEP)
                     for i, e in enumerate(np.eye(theta.size))])
    assert np.all(hess > 0)
    ratio = out / hess
    assert np.all((ratio > 1 / HESSIAN_FACTOR) & (ratio < HESSIAN_FACTOR)), ratio


def test_search_with_start_curvature_takes_fewer_evaluations(monkeypatch):
    data = _data(23, n=12_000, levels=(1500, 60))
    formula = FORMULAS[0]
    assert len(data) >= lmm_fitting.MOMENT_START_MIN_ROWS
    fit = mm.lmer(formula, data)
    monkeypatch.setattr(lmm_fitting, "start_curvature", lambda estimate: None)
    plain = mm.lmer(formula, data)
    assert fit.objective == pytest.approx(plain.objective, rel=OPTIMUM_RTOL)
    assert fit.opt.n_evals < plain.opt.n_evals
    np.testing.assert_allclose(fit.theta, plain.theta, rtol=1e-4, atol=1e-6)

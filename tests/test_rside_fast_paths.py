"""The cheap per-evaluation paths of the R-side structures against independent oracles:
ARMA autocorrelations (Python-float recursion) against the MA(infinity) sum, compound
symmetry's closed-form whitening (group sums by reduceat; kept group means and the
scalar path of equal groups) and AR(1)'s one-lag path against dense Cholesky factors, and
variance strata of two factors (integer-coded) against the rows' labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.arma import (
    arma_acf,
    arma_acf_and_jacobian,
    arma_acf_jacobian,
    arma_constrained,
)

#: Terms of the MA(infinity) sum: the weights of these processes decay below 1e-30 by then.
PSI_TERMS = 3000
ORACLE_TOL = 1e-12
#: Complex-step Jacobian against central differences (step :data:`FD_H`: O(h^2)
#: truncation and ~1e-10 of rounding).
FD_JAC_TOL = 1e-8
FD_H = 1e-6


def _acf_by_psi(phi: np.ndarray, theta: np.ndarray, max_lag: int) -> np.ndarray:
    """rho_k = sum_j psi_j psi_{j+k} / sum_j psi_j^2 with psi the MA(infinity) weights."""
    psi = np.zeros(PSI_TERMS)
    psi[0] = 1.0
    for j in range(1, PSI_TERMS):
        ma = theta[j - 1] if j - 1 < theta.size else 0.0
        psi[j] = ma + sum(phi[i] * psi[j - 1 - i] for i in range(min(phi.size, j)))
    gamma = np.array([psi[:PSI_TERMS - k] @ psi[k:] for k in range(max_lag + 1)])
    return gamma / gamma[0]


@pytest.mark.parametrize("phi,theta", [
    ([0.6], [0.2]), ([0.5, -0.3], []), ([], [0.4, -0.25]), ([0.3, 0.2, -0.1], [0.5]),
    ([-0.7], [])])
def test_arma_acf_matches_the_ma_infinity_sum(phi, theta):
    phi, theta = np.asarray(phi, float), np.asarray(theta, float)
    got = arma_acf(phi, theta, 25)
    assert np.max(np.abs(got - _acf_by_psi(phi, theta, 25))) < ORACLE_TOL


@pytest.mark.parametrize("p, u", [(1, [0.8, -0.4]), (2, [1.1, -0.6]), (0, [0.5, 0.9]),
                                  (3, [0.4, -0.2, 0.3, 0.7])])
def test_arma_value_and_jacobian_from_the_same_passes(p, u):
    # the real part of the complex-step passes is the autocorrelation itself, and the
    # Jacobian matches central differences of arma_acf
    u = np.asarray(u, float)
    acf, jac = arma_acf_and_jacobian(u, p, 20)
    coef = arma_constrained(u, p)
    assert np.max(np.abs(acf - arma_acf(coef[:p], coef[p:], 20))) < ORACLE_TOL
    assert np.array_equal(jac, arma_acf_jacobian(u, p, 20))
    h = FD_H
    for j in range(u.size):
        e = np.zeros(u.size)
        e[j] = h
        hi, lo = arma_constrained(u + e, p), arma_constrained(u - e, p)
        fd = (arma_acf(hi[:p], hi[p:], 20) - arma_acf(lo[:p], lo[p:], 20)) / (2 * h)
        assert np.max(np.abs(jac[j] - fd)) < FD_JAC_TOL


def _unequal_groups(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=12)
    g = np.repeat([f"s{i}" for i in range(sizes.size)], sizes)
    rng.shuffle(g)                                     # groups interleaved in data order
    return pd.DataFrame({"g": g, "x": rng.standard_normal(g.size),
                         "y": rng.standard_normal(g.size)})


def test_comp_symm_whitening_matches_dense_cholesky():
    d = _unequal_groups(5)
    fit = mm.gls("y ~ x", d, correlation=mm.cor_comp_symm(form="~ 1 | g"))
    cor = fit.objective_function.residual.correlation
    u = np.array([0.8])
    rho = float(cor.natural(u)[0])
    M = np.random.default_rng(1).standard_normal((len(d), 3))
    Mw, logdet = cor.whiten(u, M)
    # dense oracle: C block diagonal, W'W = C^{-1} <=> (W M)'(W M) = M' C^{-1} M
    same = d["g"].to_numpy()[:, None] == d["g"].to_numpy()[None, :]
    C = np.where(same, rho, 0.0) + (1.0 - rho) * np.eye(len(d))
    np.testing.assert_allclose(Mw.T @ Mw, M.T @ np.linalg.solve(C, M), rtol=1e-10)
    assert logdet == pytest.approx(np.linalg.slogdet(C)[1], rel=1e-12)


def _equal_groups(seed: int, size: int = 5, groups: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"g": np.repeat([f"s{i}" for i in range(groups)], size),
                         "t": np.tile(np.arange(1, size + 1), groups),
                         "x": rng.standard_normal(size * groups),
                         "y": rng.standard_normal(size * groups)})


def _block_oracle(d: pd.DataFrame, corr) -> np.ndarray:
    """The dense correlation matrix: ``corr(t_i, t_j)`` within a group, 0 across."""
    same = d["g"].to_numpy()[:, None] == d["g"].to_numpy()[None, :]
    t = d["t"].to_numpy(dtype=float)
    return np.where(same, corr(np.abs(t[:, None] - t[None, :])), 0.0)


def test_comp_symm_equal_groups_and_kept_means_match_dense_cholesky():
    # one group size takes the scalar path; the rows' group means are kept for the last
    # M only: a second data matrix must not reuse them
    d = _equal_groups(3)
    fit = mm.gls("y ~ x", d, correlation=mm.cor_comp_symm(form="~ 1 | g"))
    cor = fit.objective_function.residual.correlation
    rng = np.random.default_rng(2)
    for u, M in [(np.array([0.8]), rng.standard_normal((len(d), 3))),
                 (np.array([-1.3]), rng.standard_normal((len(d), 2)))]:
        rho = float(cor.natural(u)[0])
        C = _block_oracle(d, lambda lag, rho=rho: np.where(lag == 0, 1.0, rho))
        for _ in range(2):                                # second call: kept means
            Mw, logdet = cor.whiten(u, M)
            np.testing.assert_allclose(Mw.T @ Mw, M.T @ np.linalg.solve(C, M), rtol=1e-10)
            assert logdet == pytest.approx(np.linalg.slogdet(C)[1], rel=1e-12)


@pytest.mark.parametrize("shuffle", [False, True])
def test_ar1_one_lag_whitening_matches_dense_cholesky(shuffle):
    # equally spaced times in group order take the scalar one-lag path; shuffled rows the
    # general gather path
    d = _equal_groups(4, size=6, groups=7)
    if shuffle:
        d = d.sample(frac=1.0, random_state=1).reset_index(drop=True)
    fit = mm.gls("y ~ x", d, correlation=mm.cor_ar1(form="~ t | g"))
    cor = fit.objective_function.residual.correlation
    M = np.random.default_rng(6).standard_normal((len(d), 3))
    for u in (np.array([0.9]), np.array([-2.2])):
        phi = float(cor.natural(u)[0])
        C = _block_oracle(d, lambda lag, phi=phi: phi ** lag)
        Mw, logdet = cor.whiten(u, M)
        np.testing.assert_allclose(Mw.T @ Mw, M.T @ np.linalg.solve(C, M), rtol=1e-10)
        assert logdet == pytest.approx(np.linalg.slogdet(C)[1], rel=1e-12)


def test_two_factor_strata_codes_follow_the_row_labels():
    rng = np.random.default_rng(7)
    n = 90
    d = pd.DataFrame({"a": rng.choice(["lo", "hi"], n), "b": rng.choice([3, 1, 2], n),
                      "x": rng.standard_normal(n)})
    d["y"] = d["x"] + rng.standard_normal(n) * np.where(d["a"] == "hi", 2.0, 1.0)
    fit = mm.gls("y ~ x", d, variance=mm.var_ident(form="~ 1 | a * b"))
    var = fit.objective_function.residual.variance
    labels = (d["a"].astype(str) + "*" + d["b"].astype(str)).to_numpy()
    # nlme's order: first seen in the data (gls without correlation reads data order)
    first_seen = list(dict.fromkeys(labels))
    assert var.strata == first_seen
    np.testing.assert_array_equal(np.asarray(var.strata, dtype=object)[var.codes], labels)
    assert list(fit.var_params) == first_seen

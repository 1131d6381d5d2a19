"""Shared whitening factors (mixedmodels.rside.patterns) against dense oracles.

Groups observed at prefixes of a common time grid (dropouts), in shuffled row order, share
one Cholesky factor per maximal pattern. The shared path must give the same ``M' C^{-1} M``
and ``log|C|`` as the block-diagonal correlation written out densely here, and the same
whitened cross-products as the per-group batched path; groups with gaps or distinct
coordinates fall back to that path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.blocks import RowBlocks
from mixedmodels.rside.patterns import shared_patterns

ORACLE_TOL = 1e-9


def _dropout_panel(seed: int, n_sub: int = 15, m: int = 7, gaps: bool = False):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sub):
        k = int(rng.integers(1, m + 1))
        times = np.arange(1, k + 1) if not gaps else \
            np.sort(rng.choice(np.arange(1, m + 3), size=k, replace=False))
        for t in rng.permutation(times):
            rows.append({"subj": f"id {s}", "t": float(t), "x": rng.normal()})
    d = pd.DataFrame(rows)
    d["y"] = 2.0 + 0.5 * d.x + rng.normal(size=len(d))
    return d


def _dense_C(d, corr_of_lag):
    t = d.t.to_numpy()
    same = d.subj.to_numpy()[:, None] == d.subj.to_numpy()[None, :]
    return np.where(same, corr_of_lag(np.abs(t[:, None] - t[None, :])), 0.0)


CASES = [
    ("arma", lambda: mm.cor_arma(p=1, q=1, form="~ t | subj"), np.array([0.7, -0.4])),
    ("exp", lambda: mm.cor_exp(form="~ t | subj"), np.array([np.log(1.7)])),
    ("gaus_nugget", lambda: mm.cor_gaus(form="~ t | subj", nugget=True),
     np.array([np.log(2.2), -1.0])),
]


def _oracle_corr(name, cor, u):
    nat = cor.natural(u)
    if name == "arma":
        from mixedmodels.rside.arma import arma_acf
        acf = arma_acf(nat[:1], nat[1:], 40)
        return lambda lag: acf[lag.astype(int)]
    if name == "exp":
        return lambda lag: np.exp(-lag / nat[0])
    return lambda lag: np.where(lag == 0, 1.0, (1 - nat[1]) * np.exp(-(lag / nat[0]) ** 2))


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("name,make,u", CASES, ids=[c[0] for c in CASES])
def test_shared_whitening_matches_dense_oracle(name, make, u, gaps):
    d = _dropout_panel(seed=3 if gaps else 4, gaps=gaps)
    fit = mm.gls("y ~ x", d, correlation=make())
    cor = fit.objective_function.residual.correlation
    rng = np.random.default_rng(0)
    M = rng.standard_normal((len(d), 3))
    Mw, logdet = cor.whiten(u, M)
    C = _dense_C(d, _oracle_corr(name, cor, u))
    np.testing.assert_allclose(Mw.T @ Mw, M.T @ np.linalg.solve(C, M), rtol=ORACLE_TOL,
                               atol=ORACLE_TOL)
    assert logdet == pytest.approx(np.linalg.slogdet(C)[1], abs=ORACLE_TOL)
    # the per-group batched path agrees
    shared = cor._shared()
    cor._shared_plan = None
    Mw2, logdet2 = cor.whiten(u, M)
    np.testing.assert_allclose(Mw.T @ Mw, Mw2.T @ Mw2, rtol=ORACLE_TOL, atol=ORACLE_TOL)
    assert logdet == pytest.approx(logdet2, abs=ORACLE_TOL)
    if not gaps:       # dropouts: one maximal pattern covers every series
        assert shared is not None and sum(c.rep_rows.shape[0] for c in shared[0]) == 1


def test_patterns_of_prefixes_and_fallback():
    # three groups at times 1..3, 1..2 and 1..3 (shuffled): one pattern of size 3
    codes = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    t = np.array([3.0, 1.0, 2.0, 2.0, 1.0, 1.0, 3.0, 2.0])
    (cls,) = shared_patterns(RowBlocks.from_codes(codes), t)
    assert cls.size == 3 and cls.rep_rows.shape == (1, 3)
    np.testing.assert_array_equal(t[cls.rows[cls.valid]].reshape(-1)[:3], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(cls.last, [2, 1, 2])
    # every group its own coordinates: no sharing
    xy = np.arange(16, dtype=float).reshape(8, 2)
    assert shared_patterns(RowBlocks.from_codes(codes), xy) is None
    # one group alone: nothing to share
    assert shared_patterns(RowBlocks.single(4), np.arange(4.0)) is None


def test_rebinding_weights_equals_binding_afresh():
    # PQL reuses one binding with each iteration's weights: the same whitening as a new
    # binding of the reweighted design
    import dataclasses

    from mixedmodels.rside.residual import ResidualSpec, bind_residual

    d = _dropout_panel(seed=5)
    fit = mm.gls("y ~ x", d, correlation=mm.cor_arma(p=1, form="~ t | subj"),
                 variance=mm.var_exp(form="~ x"))
    design = fit.design
    spec = ResidualSpec.make(mm.cor_arma(p=1, form="~ t | subj"), mm.var_exp(form="~ x"))
    w = np.random.default_rng(2).uniform(0.5, 2.0, design.nobs)
    reweighted = dataclasses.replace(design, weights=w)
    afresh = bind_residual(spec, reweighted)
    reused = bind_residual(spec, design).with_weights(w)
    M = np.random.default_rng(3).standard_normal((design.nobs, 2))
    phi = np.array([0.4, 0.3])
    (a, la), (b, lb) = afresh.whiten(phi, M), reused.whiten(phi, M)
    np.testing.assert_allclose(a, b, rtol=ORACLE_TOL, atol=ORACLE_TOL)
    assert la == pytest.approx(lb, abs=ORACLE_TOL)

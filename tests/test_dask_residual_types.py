"""Every residual type of the in-memory LMM on a Dask-backed fit (backends/dask/result.py).

Oracle: the in-memory ``lmer`` fit of the same rows. Both fits use the gradient
optimizer with tight tolerances, which reaches the same optimum to ~1e-15 on this model
(theta, hence beta and the modes), so the residuals can be compared far below the
estimates' usual 1e-7 agreement: what is left is the partition-wise arithmetic.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.results.lmm import LMM_RESIDUAL_TYPES

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

#: Dask vs in-memory residuals, absolute (observed ~3e-15 on this model).
RESID_TOL = 1e-10
#: Optimizer tolerances tight enough that both fits stop at the same theta.
TIGHT = {"xtol_abs": 1e-14, "ftol_abs": 1e-15}
FORMULA = "y ~ x + (x | g)"


def _data(n: int = 600, ng: int = 30, seed: int = 3) -> pd.DataFrame:
    """Random slopes, prior weights, NA responses and NA covariates spread over rows."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, ng, n)
    x = rng.normal(size=n)
    y = (1.0 + 0.5 * x + rng.normal(0, 0.8, ng)[g] + rng.normal(0, 0.3, ng)[g] * x
         + rng.normal(size=n))
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{v}" for v in g],
                       "w": rng.uniform(0.5, 2.0, n)})
    df.loc[rng.choice(n, 12, replace=False), "y"] = np.nan
    df.loc[rng.choice(n, 5, replace=False), "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def fits():
    df = _data()
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.DroppedRowsWarning)
        m_mem = mm.lmer(FORMULA, df, weights="w", optimizer="gradient",
                        optimizer_settings=TIGHT)
        fitted = {k: mm.lmer(FORMULA, dd.from_pandas(df, npartitions=k), weights="w",
                             optimizer="gradient", optimizer_settings=TIGHT)
                  for k in (2, 3)}
    return m_mem, fitted


@pytest.mark.parametrize("npartitions", [2, 3])
@pytest.mark.parametrize("kind", LMM_RESIDUAL_TYPES)
@pytest.mark.parametrize("scaled", [False, True])
def test_type_equals_in_memory(fits, npartitions, kind, scaled):
    m_mem, fitted = fits
    m = fitted[npartitions]
    assert type(m).__name__ == "DaskLinearMixedModelResult"
    lazy = m.residuals(kind, scaled=scaled)
    assert hasattr(lazy, "compute")                   # lazy, computed per partition
    with dask.config.set(scheduler="synchronous"):
        got = lazy.compute().sort_index()
    want = m_mem.residuals(kind, scaled=scaled)
    assert list(got.index) == list(want.index)        # the NA rows are absent in both
    assert len(got) == m_mem.nobs < 600
    err = np.max(np.abs(got.to_numpy() - want.to_numpy()))
    assert err <= RESID_TOL, err


def test_weights_distinguish_the_types(fits):
    """With prior weights pearson/deviance differ from response/working (so the
    comparison above covers both formulas, not one)."""
    _, fitted = fits
    with dask.config.set(scheduler="synchronous"):
        r = {t: fitted[2].residuals(t).compute() for t in LMM_RESIDUAL_TYPES}
    assert np.max(np.abs(r["pearson"] - r["response"])) > 0.1
    np.testing.assert_array_equal(r["deviance"], r["pearson"])
    np.testing.assert_array_equal(r["working"], r["response"])


def test_unknown_type_same_error(fits):
    m_mem, fitted = fits
    with pytest.raises(ValueError) as mem_err:
        m_mem.residuals("partial")
    with pytest.raises(ValueError) as dask_err:
        fitted[2].residuals("partial")
    assert str(dask_err.value) == str(mem_err.value)
    assert "'partial'" in str(dask_err.value)
    assert all(t in str(dask_err.value) for t in LMM_RESIDUAL_TYPES)

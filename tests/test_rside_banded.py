"""Whitening by one banded Cholesky factorization (mixedmodels.rside.banded) against a dense
oracle: groups of several sizes in shuffled row order, their correlation matrices written out
as one block-diagonal matrix here; and the structures that take the band path (an ARMA with
gaps in the times, a spatial correlation) against the per-batch path they had before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.banded import BAND_MAX_WORK, BandedWhitening
from mixedmodels.rside.blocks import RowBlocks
from mixedmodels.rside.correlation import BoundCorrelation

ORACLE_TOL = 1e-10


def _spd_stacks(rng, batches):
    """A random correlation-like SPD matrix per group, one stack per batch."""
    out = []
    for b in batches:
        g, s = b.shape
        A = rng.normal(size=(g, s, s))
        out.append(np.matmul(A, np.swapaxes(A, 1, 2)) + s * np.eye(s))
    return out


def _blocks(rng, sizes):
    codes = np.repeat(np.arange(len(sizes)), sizes)
    return RowBlocks.from_codes(rng.permutation(codes))


def test_band_whitening_matches_dense_oracle():
    rng = np.random.default_rng(11)
    blocks = _blocks(rng, [1, 3, 5, 5, 2, 7, 3, 4])
    batches = blocks.batches
    mats = _spd_stacks(rng, batches)
    n = blocks.codes.size
    C = np.zeros((n, n))
    for b, S in zip(batches, mats, strict=True):
        for rows, Si in zip(b, S, strict=True):
            C[np.ix_(rows, rows)] = Si
    M = rng.normal(size=(n, 4))
    out, logdet = BandedWhitening(batches).whiten(mats, M)
    # W M with W' W = C^{-1}: the cross-products and the log-determinant are the oracle's
    np.testing.assert_allclose(out.T @ out, M.T @ np.linalg.solve(C, M), rtol=ORACLE_TOL)
    assert logdet == pytest.approx(np.linalg.slogdet(C)[1], rel=ORACLE_TOL)
    # and W is block-lower-triangular L^{-1} row by row: each group's first row is
    # M's scaled by 1 / sqrt(C_11)
    for b, S in zip(batches, mats, strict=True):
        first = b[:, 0]
        np.testing.assert_allclose(out[first], M[first] / np.sqrt(S[:, :1, 0]), rtol=ORACLE_TOL)


def test_band_whitening_refuses_indefinite():
    rng = np.random.default_rng(12)
    blocks = _blocks(rng, [2, 3, 3])
    mats = _spd_stacks(rng, blocks.batches)
    mats[-1][0] = -np.eye(3)  # one group not positive definite
    assert BandedWhitening(blocks.batches).whiten(mats, np.ones((8, 2))) is None


def test_band_only_where_it_pays():
    rng = np.random.default_rng(13)
    assert BandedWhitening.worthwhile(_blocks(rng, [4, 5, 6, 7] * 10).batches)
    assert not BandedWhitening.worthwhile(_blocks(rng, [30]).batches)  # one group
    # one long group among many short ones: every row would pay for its width
    sizes = [200] + [2] * 400
    batches = _blocks(rng, sizes).batches
    assert sum(sizes) * 200**2 > BAND_MAX_WORK * sum(s**3 for s in sizes)
    assert not BandedWhitening.worthwhile(batches)


def _per_batch(cor, u, M):
    """The per-batch path (numpy's stacked factorizations), as before the band path."""
    factors = cor.cholesky(u)
    out = np.empty_like(M)
    logdet = 0.0
    for rows, L in zip(cor.blocks.batches, factors, strict=True):
        out[rows] = np.linalg.solve(L, M[rows])
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
    return out, logdet


@pytest.mark.filterwarnings("ignore::mixedmodels.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
@pytest.mark.parametrize(
    "correlation, u",
    [
        (mm.cor_arma(form="~ t | g", p=1, q=1), np.array([0.8, -0.4])),
        (mm.cor_exp(form="~ cx + cy | g", nugget=True), np.array([0.3, -1.0])),
    ],
)
def test_structures_take_the_band_path(correlation, u):
    rng = np.random.default_rng(14)
    sizes = rng.integers(2, 8, size=25)
    d = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(25)], sizes)})
    # integer times with gaps (no shared patterns), distinct coordinates
    d["t"] = np.concatenate([np.sort(rng.choice(12, size=k, replace=False)) for k in sizes])
    d["cx"], d["cy"] = rng.uniform(0, 10, size=(2, len(d)))
    d["x"] = rng.normal(size=len(d))
    d["y"] = d.x + rng.normal(size=len(d))
    # (the fit only binds the structure to the rows; its estimates are not used)
    m = mm.lmer("y ~ x + (1 | g)", d, correlation=correlation)
    cor = m.objective_function.residual.correlation
    assert isinstance(cor, BoundCorrelation) and cor._shared() is None
    M = rng.normal(size=(len(d), 3))
    out, logdet = cor.whiten(u, M)
    assert cor._banded is not None
    ref, ref_logdet = _per_batch(cor, u, M)
    np.testing.assert_allclose(out, ref, rtol=ORACLE_TOL, atol=ORACLE_TOL)
    assert logdet == pytest.approx(ref_logdet, rel=ORACLE_TOL)

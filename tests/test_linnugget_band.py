"""The spatial band built over the whole storage (rside/spatial_band.py) and the R-side
LMM criterion's recent loads (rside/load_cache.py): both must give exactly the numbers of
the paths they shortcut."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.load_cache import LOAD_CACHE_SIZE, RecentLoads
from mixedmodels.rside.spatial_band import SpatialBand

CLASSES = ("cor_exp", "cor_gaus", "cor_lin", "cor_ratio", "cor_spher")


def _sites(seed: int = 3, groups: int = 9, sizes=(4, 6)) -> pd.DataFrame:
    """Sites with unequal numbers of rows (two batches in the band), coordinates in a
    square of side 10, a random site effect and noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        m = sizes[g % len(sizes)]
        cx, cy = rng.uniform(0, 10, m), rng.uniform(0, 10, m)
        b = rng.normal()
        for i in range(m):
            x = rng.normal()
            rows.append((f"g{g}", cx[i], cy[i], x, 1 + 0.5 * x + b + rng.normal()))
    return pd.DataFrame(rows, columns=["site", "cx", "cy", "x", "y"])


def _fit(cls: str, nugget: bool = True):
    d = _sites()
    cor = getattr(mm, cls)(form="~ cx + cy | site", nugget=nugget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer("y ~ x + (1 | site)", d, correlation=cor)


@pytest.mark.parametrize("cls", CLASSES)
def test_band_equals_the_scattered_band_bit_for_bit(cls):
    cor = _fit(cls).objective_function.residual.correlation
    band = cor._banded
    assert band is not None
    inplace = getattr(cor.spec, "shape_inplace", None)
    assert (inplace is None) == (cls == "cor_spher")
    whole = SpatialBand(cor._dist, cor.spec.shape, band, inplace)
    scattered = SpatialBand(cor._dist, cor.spec.shape, band, None)
    # ranges from below the smallest distance to beyond the largest, nuggets 0 .. 0.9
    for rng in (0.05, 0.7, 2.0, 5.5, 13.0, 400.0):
        for scale in (1.0, 0.73, 0.1):
            a, b = whole(rng, scale), scattered(rng, scale)
            assert np.array_equal(a, b)
            assert np.signbit(a).sum() == np.signbit(b).sum() == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_band_storage_whitens_as_the_matrices(cls):
    # the band from the distances and the one gathered from the correlation matrices
    # factor to the same whitening, to the last bit
    cor = _fit(cls).objective_function.residual.correlation
    M = np.random.default_rng(1).normal(size=(cor._banded.n, 3))
    for u in ([0.4, -1.0], [1.9, 0.5], [-0.5, -3.0]):
        u = np.array(u)
        direct = cor._banded.whiten_band(cor.band_storage(u), M)
        gathered = cor._banded.whiten(cor.batch_matrices(u), M)
        assert np.array_equal(direct[0], gathered[0])
        assert direct[1] == gathered[1]


def test_recent_loads_keep_the_last_few():
    cache = RecentLoads()
    A = np.arange(4.0).reshape(2, 2)
    for k in range(LOAD_CACHE_SIZE + 1):
        cache.put((float(k),), A + k, -float(k))
    assert cache.get((0.0,)) is None                      # the oldest went
    hit = cache.get((1.0,))
    assert np.array_equal(hit[0], A + 1) and hit[1] == -1.0
    A += 100.0                                            # a copy was kept
    assert np.array_equal(cache.get((2.0,))[0], np.arange(4.0).reshape(2, 2) + 2)
    # (1,) was used last but one: a new entry pushes out (3,), the least recent
    cache.put((9.0,), A, 0.0)
    cache.put((10.0,), A, 0.0)
    assert cache.get((1.0,)) is not None and cache.get((3.0,)) is None


@pytest.mark.parametrize("cls", ("cor_lin", "cor_exp"))
def test_criterion_at_a_cached_phi_is_the_fresh_one(cls):
    m = _fit(cls)
    obj = m.objective_function
    assert obj._level_gram is not None           # the path that keeps its loads
    x = np.concatenate([m.theta, m.phi])
    steps = [np.zeros(x.size)] + [np.eye(x.size)[j] * 0.1 for j in range(x.size)]
    first = [obj(x + s) for s in steps]                    # phi revisited in turn
    again = [obj(x + s) for s in reversed(steps)][::-1]
    assert first == again
    fresh = type(obj)(obj.design, obj.residual, reml=obj.reml)
    assert [fresh(x + s) for s in steps] == first

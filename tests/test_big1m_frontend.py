"""Fast paths of the large-fit front end equal the general paths they shortcut.

* ``unique_keys``'s radix sort (key ranges up to 2^32) returns ``np.unique``'s arrays.
* Integer categories get their labels from numpy's formatting, as ``_one_label`` gives
  them one by one.
* A crossed fit whose ``A21`` keys take the radix path is bit-identical to the same fit
  through ``np.unique``, and the grouping factor coded from an integer categorical (with
  unused categories and missing rows) is the one coded from the plain integer column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import random as random_mod
from mixedmodels.linalg import layout


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n, key_range", [(4096, 40_000_000), (50_000, 2**32),
                                          (10_000, 2**17 + 3), (5000, 10**9)])
def test_radix_unique_keys_equal_numpy_unique(dtype, n, key_range):
    rng = np.random.default_rng(n)
    if dtype is np.int32:
        key_range = min(key_range, 2**31)
    keys = rng.integers(0, key_range, n, dtype=np.int64)
    keys[: n // 3] = keys[n // 3: 2 * (n // 3)]          # many duplicates
    keys[-1], keys[-2] = key_range - 1, 0                 # both ends of the range
    keys = keys.astype(dtype)
    assert key_range > layout.UNIQUE_TABLE_RATIO * n + layout.UNIQUE_TABLE_SLACK
    uniq, inverse = layout.unique_keys(keys, key_range)
    u0, i0 = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(uniq, u0)
    np.testing.assert_array_equal(inverse, i0.reshape(-1))
    assert uniq.dtype == keys.dtype and inverse.dtype == np.intp
    for order in (np.sort(keys), np.sort(keys)[::-1].copy()):   # sorted, reversed input
        uniq, inverse = layout.unique_keys(order, key_range)
        u0, i0 = np.unique(order, return_inverse=True)
        np.testing.assert_array_equal(uniq, u0)
        np.testing.assert_array_equal(inverse, i0.reshape(-1))


def test_unique_keys_out_of_radix_range_falls_back():
    keys = np.array([2**40, 3, 2**40, 7] * 2000, dtype=np.int64)
    uniq, inverse = layout.unique_keys(keys, 2**41)
    np.testing.assert_array_equal(uniq, [3, 7, 2**40])
    np.testing.assert_array_equal(uniq[inverse], keys)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16",
                                   "uint32", "uint64"])
def test_integer_category_labels_equal_one_by_one_labels(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    drawn = rng.integers(max(int(info.min), -10**6), min(int(info.max), 10**6), 50)
    values = np.unique(np.array([int(info.min), int(info.max), 0, 1, *map(int, drawn)],
                                dtype=dtype))
    categories = pd.Index(values, dtype=dtype)
    fast = random_mod._category_text(categories)
    slow = np.array([random_mod._one_label(c) for c in categories], dtype=object)
    assert fast.dtype == object and all(type(v) is str for v in fast)
    np.testing.assert_array_equal(fast, slow)


def _crossed(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g1, g2 = rng.integers(0, 400, n), rng.integers(0, 300, n)
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=400)[g1] + 0.5 * rng.normal(size=300)[g2] \
        + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g one": g1, "g2": g2})


def _same_fit(a, b):
    assert a.objective == b.objective
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.beta, b.beta)


def test_crossed_fit_through_radix_keys_equals_numpy_unique(monkeypatch):
    df = _crossed()
    formula = "y ~ x + (1 | `g one`) + (1 | g2)"
    fast = mm.lmer(formula, df)
    monkeypatch.setattr(layout, "RADIX_MIN_KEYS", 10**12)     # np.unique for every key set
    slow = mm.lmer(formula, df)
    _same_fit(fast, slow)


def test_integer_categorical_grouping_equals_plain_integer_column():
    """Unused categories, missing values and a column name with a space: the integer
    categorical codes the same factor (levels in numeric order, unused dropped, missing
    rows dropped) as the plain column, so the fits are identical."""
    df = _crossed()
    df.loc[df.index % 97 == 5, "y"] = np.nan
    plain = df.copy()
    plain["g one"] = plain["g one"].where(plain.index % 89 != 7)    # float with NaN
    cat = df.copy()
    cat["g one"] = pd.Categorical(df["g one"], categories=np.arange(-3, 450))
    cat.loc[cat.index % 89 == 7, "g one"] = np.nan
    cat["g2"] = pd.Categorical(df["g2"].astype(np.int16))
    formula = "y ~ x + (1 | `g one`) + (1 | g2)"
    with pytest.warns(UserWarning):
        a = mm.lmer(formula, plain)
    with pytest.warns(UserWarning):
        b = mm.lmer(formula, cat)
    _same_fit(a, b)
    ra, rb = a.ranef(), b.ranef()
    for name in ("g one", "g2"):
        assert list(ra[name].index) == list(rb[name].index)
        np.testing.assert_array_equal(ra[name].to_numpy(), rb[name].to_numpy())

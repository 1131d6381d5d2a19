"""The per-object cache of values derived from immutable pandas indexes."""

import gc

import pandas as pd

from mixedmodels.design.identity_cache import IdentityCache


def test_hit_for_the_same_object_and_miss_for_an_equal_new_one():
    calls = []
    cache = IdentityCache(size=4)

    def make(index):
        calls.append(index)
        return frozenset(index)

    a = pd.Index(["x", "y"])
    assert cache.get(a, make) == {"x", "y"}
    assert cache.get(a, make) == {"x", "y"}
    assert len(calls) == 1
    b = pd.Index(["x", "y", "z"])              # a new index: a frame with a new column
    assert cache.get(b, make) == {"x", "y", "z"}
    assert len(calls) == 2
    cache.clear()
    assert cache.get(a, make) == {"x", "y"}
    assert len(calls) == 3


def test_dead_object_is_never_served_and_full_cache_is_cleared():
    cache = IdentityCache(size=2)
    a = pd.Index(["p"])
    cache.get(a, frozenset)
    del a
    gc.collect()
    c = pd.Index(["q"])                        # may reuse the dead object's id
    assert cache.get(c, frozenset) == {"q"}
    for k in range(5):
        idx = pd.Index([f"c{k}"])
        assert cache.get(idx, frozenset) == {f"c{k}"}
    assert len(cache._store) <= 2


def test_object_without_weak_references_is_served_uncached():
    calls = []
    cache = IdentityCache()
    value = (1, 2)                             # tuples take no weak references
    for _ in range(2):
        assert cache.get(value, lambda v: calls.append(v) or sum(v)) == 3
    assert len(calls) == 2

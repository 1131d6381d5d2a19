"""Values derived from immutable pandas objects, kept per object.

A pandas ``Index`` (column names, a categorical's categories) never changes: renaming,
adding a column or new categories make a new index object. So a value computed from one
-- a set of names, a tuple of levels, a coding -- can be kept per object, found by its
``id`` and checked by a weak reference: an ``id`` is reused only after its object is gone,
and then the reference is dead, so a hit is always the same object.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["IdentityCache"]


class IdentityCache:
    """``make(obj)`` computed once per live object ``obj``.

    Parameters
    ----------
    size
        Entries kept at most; the cache is cleared when full (a refitting loop needs a
        few, and clearing keeps the bookkeeping to one dictionary).
    """

    __slots__ = ("_size", "_store")

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._store: dict[int, tuple[weakref.ref, Any]] = {}

    def clear(self) -> None:
        """Forget every entry (tests compare a cached build with a fresh one)."""
        self._store.clear()

    def get(self, obj: Any, make: Callable[[Any], Any]) -> Any:
        """The value for ``obj``, from the cache or made now (and kept when ``obj`` takes
        weak references; an index type without them is served uncached)."""
        hit = self._store.get(id(obj))
        if hit is not None and hit[0]() is obj:
            return hit[1]
        value = make(obj)
        try:
            ref = weakref.ref(obj)
        except TypeError:
            return value
        if len(self._store) >= self._size:
            self._store.clear()
        self._store[id(obj)] = (ref, value)
        return value

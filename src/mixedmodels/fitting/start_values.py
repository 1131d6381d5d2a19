"""Starting values given to the front doors, checked and put in one form.

lme4 takes ``start`` as a numeric vector (theta) or a named list: ``list(theta = ...)`` for
lmer, ``list(theta = ..., fixef = ...)`` for glmer, and errors on any other name ("bad
name(s) for start vector"). The same spellings are accepted here -- ``"beta"`` is this
package's name for lme4's ``fixef`` -- so that a start written for lme4 is used, not
silently dropped, and a misspelt block is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["glmm_start", "lmm_start"]

#: lme4's name of the fixed-effects block of ``start`` -> this package's.
_ALIASES = {"fixef": "beta"}


def _as_numbers(value, what: str, scalar: bool = False) -> np.ndarray | float:
    """``value`` as a float array (a positive float when ``scalar``), or a ValueError
    naming ``what``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite numbers, got {value!r}")
    if scalar:
        if arr.size != 1 or not float(arr.ravel()[0]) > 0:
            raise ValueError(f"{what} must be one positive number, got {value!r}")
        return float(arr.ravel()[0])
    return arr.ravel()


def _blocks(start: Mapping, allowed: tuple[str, ...], where: str) -> dict:
    names = [str(k) for k in start]
    bad = [k for k in names if _ALIASES.get(k, k) not in allowed]
    if bad:
        also = " (lme4's 'fixef' is accepted for 'beta')" if "beta" in allowed else ""
        raise ValueError(
            f"{where}: unknown block(s) {', '.join(map(repr, bad))} in start; the blocks "
            f"are {', '.join(map(repr, allowed))}{also}")
    out: dict = {}
    for key, value in start.items():
        name = _ALIASES.get(str(key), str(key))
        if name in out:
            raise ValueError(f"{where}: start gives {name!r} twice (as 'beta' and 'fixef')")
        out[name] = _as_numbers(value, f"{where}: start[{str(key)!r}]",
                                scalar=name == "nb_theta")
    return out


def lmm_start(start, where: str = "lmer") -> np.ndarray | None:
    """lmer's ``start``: None, theta as numbers, or a mapping with the one block
    ``"theta"`` (lme4's ``list(theta = ...)``).

    Returns
    -------
    ndarray or None
        theta to start from.
    """
    if start is None:
        return None
    if isinstance(start, Mapping):
        return _blocks(start, ("theta",), where).get("theta")
    return _as_numbers(start, f"{where}: start")


def glmm_start(start, where: str = "glmer", nb: bool = False) -> dict:
    """glmer's / glmer_nb's ``start``: None, theta as numbers (as lme4), or a mapping of
    ``"theta"``, ``"beta"`` (or lme4's ``"fixef"``) and, for glmer_nb, ``"nb_theta"``.

    Returns
    -------
    dict
        The blocks given, as float arrays (``"nb_theta"`` a float).
    """
    if start is None:
        return {}
    allowed = ("theta", "beta", "nb_theta") if nb else ("theta", "beta")
    if isinstance(start, Mapping):
        return _blocks(start, allowed, where)
    return {"theta": _as_numbers(start, f"{where}: start")}

r"""The parameter layout: named blocks of a model's parameters mapped to one flat vector.

A model with several linear predictors has several kinds of parameters: covariance
parameters ``theta`` and fixed effects ``beta`` for each component (``cond``, ``zi``,
``disp``), and family parameters (a Tweedie power, a Student-t df). Optimizers, Hessians and
profiles want one flat vector; results, summaries and users want names. A
:class:`ParameterLayout` is the single map between the two:

.. math:: x = [\, x_{b_1} \mid x_{b_2} \mid \dots \,], \qquad
          x_{b} \in \mathbb{R}^{n_b}, \quad \ell_b \le x_b \le u_b,

with, per block ``b``, a name (``"beta.zi"``), a role (``theta``, ``beta``, ``family``), the
component it belongs to, one label per entry (``"zi~sppPR"``), start values, bounds, and the
scale on which the entries live (``transform``: ``"identity"``, or ``"log"`` for a positive
quantity optimized on the log scale). Entries can be **fixed** (held at their start value,
glmmTMB's ``map``): the optimizer then sees only the free entries, through
:meth:`ParameterLayout.free` and :meth:`ParameterLayout.expand`.

There are no positional flags: code asks the layout for a block by name
(``layout.get(x, "beta.cond")``) instead of slicing by counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["ROLES", "TRANSFORMS", "ParameterBlock", "ParameterLayout"]

#: What a block's entries are.
ROLES = ("theta", "beta", "family")
#: Scales a block's entries may live on (what the optimizer sees vs. the natural value).
TRANSFORMS = ("identity", "log")


def _as_vector(values, size: int, what: str) -> np.ndarray:
    # the usual cases without np.broadcast_to (~5 us of Python-level dispatch each; four
    # per block, every fit makes its layout): a scalar, or already a vector of the size
    if isinstance(values, float | int):
        return np.full(size, float(values))
    if isinstance(values, np.ndarray) and values.shape == (size,):
        return np.array(values, dtype=float)
    arr = np.array(np.broadcast_to(np.asarray(values, dtype=float), (size,)), dtype=float)
    if arr.shape != (size,):  # pragma: no cover - broadcast_to raises first
        raise ValueError(f"{what} must have {size} values")
    return arr


@dataclass(frozen=True, eq=False)
class ParameterBlock:
    """One named block of parameters.

    Attributes
    ----------
    name : str
        Unique name, by convention ``"<role>.<component>"`` (``"theta.cond"``,
        ``"beta.zi"``) or ``"family.<parameter>"`` (``"family.power"``).
    role : {"theta", "beta", "family"}
    component : str or None
        Linear-predictor component (``"cond"``, ``"zi"``, ``"disp"``) or None.
    labels : tuple of str
        One label per entry, used for names in ``vcov_full``, profiles and summaries.
    start, lower, upper : ndarray
        Start values and bounds (``-inf``/``inf`` for none), on the optimizer's scale.
    fixed : ndarray of bool
        Entries held at their start value.
    transform : {"identity", "log"}
        Scale of the entries: ``"log"`` means the natural value is ``exp(x)``.
    """

    name: str
    role: str
    component: str | None
    labels: tuple[str, ...]
    start: np.ndarray
    lower: np.ndarray = field(default=None)      # type: ignore[assignment]
    upper: np.ndarray = field(default=None)      # type: ignore[assignment]
    fixed: np.ndarray = field(default=None)      # type: ignore[assignment]
    transform: str = "identity"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"block {self.name!r}: role must be one of {ROLES}, "
                             f"got {self.role!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"block {self.name!r}: transform must be one of {TRANSFORMS}, "
                             f"got {self.transform!r}")
        n = len(self.labels)
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "start", _as_vector(self.start, n, f"{self.name} start"))
        lower = -np.inf if self.lower is None else self.lower
        upper = np.inf if self.upper is None else self.upper
        object.__setattr__(self, "lower", _as_vector(lower, n, f"{self.name} lower"))
        object.__setattr__(self, "upper", _as_vector(upper, n, f"{self.name} upper"))
        fixed = np.zeros(n, dtype=bool) if self.fixed is None else \
            np.array(np.broadcast_to(np.asarray(self.fixed, dtype=bool), (n,)))
        object.__setattr__(self, "fixed", fixed)
        if np.any(self.lower > self.upper):
            raise ValueError(f"block {self.name!r}: a lower bound exceeds its upper bound")

    @property
    def size(self) -> int:
        return len(self.labels)

    def natural(self, x: np.ndarray) -> np.ndarray:
        """The block's entries on their natural scale (``exp`` for log-scale blocks)."""
        return np.exp(x) if self.transform == "log" else np.asarray(x, dtype=float)


class ParameterLayout:
    """Named blocks mapped to one flat parameter vector (see the module docstring).

    Parameters
    ----------
    blocks : iterable of ParameterBlock
        In the order they take in the flat vector. Names must be unique.
    """

    def __init__(self, blocks: Iterable[ParameterBlock]):
        self.blocks: tuple[ParameterBlock, ...] = tuple(blocks)
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate parameter block names: {dup}")
        self._slices: dict[str, slice] = {}
        start = 0
        for b in self.blocks:
            self._slices[b.name] = slice(start, start + b.size)
            start += b.size
        self.size = start
        self.start = self._concat("start")
        self.lower = self._concat("lower")
        self.upper = self._concat("upper")
        self.fixed = np.concatenate([b.fixed for b in self.blocks]) if self.blocks \
            else np.zeros(0, dtype=bool)
        self.labels: tuple[str, ...] = tuple(lab for b in self.blocks for lab in b.labels)
        self.free_index = np.flatnonzero(~self.fixed)

    def _concat(self, attr: str) -> np.ndarray:
        if not self.blocks:
            return np.zeros(0)
        return np.concatenate([getattr(b, attr) for b in self.blocks])

    # -- lookup -------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._slices

    def __iter__(self):
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def block(self, name: str) -> ParameterBlock:
        """The block called ``name`` (KeyError naming the available blocks otherwise)."""
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"no parameter block {name!r}; blocks: {list(self._slices)}")

    def slice(self, name: str) -> slice:
        """Position of block ``name`` in the flat vector."""
        if name not in self._slices:
            raise KeyError(f"no parameter block {name!r}; blocks: {list(self._slices)}")
        return self._slices[name]

    def get(self, x: np.ndarray, name: str, default=None) -> np.ndarray:
        """Entries of block ``name`` in ``x`` (``default`` when there is no such block)."""
        if name not in self._slices:
            if default is not None:
                return np.asarray(default, dtype=float)
            raise KeyError(f"no parameter block {name!r}; blocks: {list(self._slices)}")
        return np.asarray(x, dtype=float)[self._slices[name]]

    def unpack(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``x -> {block name: entries}``."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.size,):
            raise ValueError(f"parameter vector has shape {x.shape}, layout needs "
                             f"({self.size},)")
        return {name: x[sl] for name, sl in self._slices.items()}

    def pack(self, values: Mapping[str, np.ndarray], base: np.ndarray | None = None
             ) -> np.ndarray:
        """Flat vector from ``{block name: entries}``; blocks not given come from ``base``
        (default: the start values)."""
        out = (self.start if base is None else np.asarray(base, dtype=float)).copy()
        for name, v in values.items():
            sl = self.slice(name)
            out[sl] = _as_vector(v, sl.stop - sl.start, f"values of block {name!r}")
        return out

    def names_of(self, role: str | None = None, component: str | None = None
                 ) -> list[str]:
        """Block names with the given role and/or component."""
        return [b.name for b in self.blocks
                if (role is None or b.role == role)
                and (component is None or b.component == component)]

    # -- free entries (what an optimizer sees) --------------------------------------------
    @property
    def n_free(self) -> int:
        return int(self.free_index.size)

    def free(self, x: np.ndarray) -> np.ndarray:
        """The free entries of a full vector."""
        return np.asarray(x, dtype=float)[self.free_index]

    def expand(self, z: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Full vector with free entries ``z`` and fixed entries from ``base`` (default: the
        start values)."""
        out = (self.start if base is None else np.asarray(base, dtype=float)).copy()
        out[self.free_index] = z
        return out

    def free_labels(self) -> tuple[str, ...]:
        return tuple(self.labels[i] for i in self.free_index)

    # -- derived layouts ------------------------------------------------------------------
    def with_start(self, x: np.ndarray) -> ParameterLayout:
        """The same layout with the start values of ``x`` (bounds and fixed flags kept)."""
        x = np.asarray(x, dtype=float)
        blocks = [replace(b, start=x[self._slices[b.name]]) for b in self.blocks]
        return ParameterLayout(blocks)

    def __repr__(self) -> str:
        parts = ", ".join(f"{b.name}[{b.size}]" for b in self.blocks)
        return f"ParameterLayout({parts})"

r"""Spatial residual correlations, nlme's ``corSpatial`` classes.

For two rows of a group at distance ``d > 0`` the correlation is
``(1 - nugget) f(d / range)`` with

======================  ================================================
``cor_exp``             ``f(x) = exp(-x)``
``cor_gaus``            ``f(x) = exp(-x^2)``
``cor_spher``           ``f(x) = 1 - 1.5 x + 0.5 x^3`` for ``x < 1``, else 0
``cor_lin``             ``f(x) = 1 - x`` for ``x < 1``, else 0
``cor_ratio``           ``f(x) = 1 / (1 + x^2)``
======================  ================================================

(``nugget = 0`` unless ``nugget=True``). Distances are Euclidean (``metric="euclidean"``),
``"maximum"`` or ``"manhattan"`` between the rows' coordinates (the covariates of the form;
with none, the positions ``1..n_i`` of the rows in the group). nlme's unconstrained scale:
``log(range)`` (``log(range - d_min)`` for the spherical and linear classes, whose range must
exceed the smallest distance ``d_min``) and ``log(nugget / (1 - nugget))``; its starting
values: ``range = 0.9 d_min`` (``1.1 d_min`` for spherical / linear), ``nugget = 0.1``.
Two rows of a group at the same place (distance 0) are refused, as in nlme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._errors import DataError
from .correlation import (
    UNCONSTRAINED_MAX,
    BoundCorrelation,
    CorrelationStructure,
    covariate_values,
)
from .spatial_band import SpatialBand

__all__ = ["CorExp", "CorGaus", "CorLin", "CorRatio", "CorSpatial", "CorSpher"]

_METRICS = ("euclidean", "maximum", "manhattan")


@dataclass(frozen=True)
class CorSpatial(CorrelationStructure):
    """Base of the spatial classes (see the module docstring).

    Attributes
    ----------
    nugget : bool
        Estimate a nugget effect.
    metric : {"euclidean", "maximum", "manhattan"}
        Distance between coordinates.
    """

    nugget: bool = False
    metric: str = "euclidean"

    #: ``True`` for the classes whose range must exceed the smallest distance
    range_above_min: ClassVar[bool] = False

    def describe(self) -> str:
        extra = ", nugget=True" if self.nugget else ""
        return f"{self.label}(form={self.form!r}{extra})"

    @staticmethod
    def shape(x: np.ndarray) -> np.ndarray:
        """``f(x)`` of the class (distance over range)."""
        raise NotImplementedError

    @staticmethod
    def dshape(x: np.ndarray) -> np.ndarray:
        """``f'(x)`` (one-sided where ``f`` has a kink: the linear class at 1)."""
        raise NotImplementedError

    def bind(self, frame, blocks, form):
        if self.metric not in _METRICS:
            raise ValueError(f"{self.describe()}: metric must be one of {_METRICS}, not "
                             f"{self.metric!r}")
        return _BoundSpatial(self, frame, blocks, form)


def _distances(coords: np.ndarray, metric: str) -> np.ndarray:
    diff = coords[:, :, None, :] - coords[:, None, :, :]
    if metric == "euclidean":
        return np.sqrt(np.sum(diff * diff, axis=-1))
    if metric == "maximum":
        return np.max(np.abs(diff), axis=-1)
    return np.sum(np.abs(diff), axis=-1)


class _BoundSpatial(BoundCorrelation):
    def __init__(self, spec: CorSpatial, frame, blocks, form):
        self.spec, self.blocks = spec, blocks
        self._frame_index = frame.index
        if form.covariates:
            coords = np.column_stack([covariate_values(c, frame, spec.describe())
                                      for c in form.covariates])
        else:
            coords = blocks.position.astype(float)[:, None] + 1.0
        self._coords = coords
        self._dist = [_distances(coords[rows], spec.metric) for rows in blocks.batches]
        off = [d[:, ~np.eye(d.shape[1], dtype=bool)] for d in self._dist if d.shape[1] > 1]
        if not off:
            raise DataError(f"{spec.describe()}: every group has a single row; a spatial "
                            "correlation needs groups of two or more rows")
        alld = np.concatenate([o.ravel() for o in off])
        if np.any(alld == 0.0):
            rows = self._zero_pair()
            raise DataError(
                f"{spec.describe()}: rows {rows[0]!r} and {rows[1]!r} of the same group have "
                "the same coordinates (distance 0); nlme refuses zero distances too -- "
                "jitter or aggregate the duplicated locations")
        self.min_dist = float(alld.min())
        self._eye = [np.eye(d.shape[1], dtype=bool) for d in self._dist]
        names = ("range", "nugget") if spec.nugget else ("range",)
        r0 = (1.1 if spec.range_above_min else 0.9) * self.min_dist
        start_nat = np.array([r0, 0.1]) if spec.nugget else np.array([r0])
        value = spec.value
        if value is not None and spec.nugget and len(np.atleast_1d(value)) == 1:
            # nlme: a range alone as the start, the nugget starts at 0.1
            value = (float(np.atleast_1d(value)[0]), 0.1)
        self._names = names
        super().__init__(_with_value(spec, value), blocks, form, names,
                         self.unconstrained(start_nat))
        self.spec = spec

    def _zero_pair(self):
        for rows, d in zip(self.blocks.batches, self._dist, strict=True):
            hit = np.argwhere((d == 0.0) & ~np.eye(d.shape[1], dtype=bool)[None])
            if hit.size:
                g, i, j = hit[0]
                return self._frame_index[rows[g, i]], self._frame_index[rows[g, j]]
        return None, None

    def natural(self, u):
        # np.clip's values by its two ufuncs, without its Python-level dispatch (a third
        # of this function's cost, which every evaluation pays)
        u = np.minimum(np.maximum(np.asarray(u, dtype=float), -UNCONSTRAINED_MAX),
                       UNCONSTRAINED_MAX)
        rng = np.exp(u[0]) + (self.min_dist if self.spec.range_above_min else 0.0)
        if self.spec.nugget:
            return np.array([rng, 1.0 / (1.0 + np.exp(-u[1]))])
        return np.array([rng])

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        base = self.min_dist if self.spec.range_above_min else 0.0
        if nat[0] <= base:
            raise ValueError(f"{self.spec.describe()}: range must exceed "
                             f"{'the smallest distance ' if base else ''}{base:g}")
        out = [np.log(nat[0] - base)]
        if self.spec.nugget:
            if not 0.0 < nat[1] < 1.0:
                raise ValueError(f"{self.spec.describe()}: nugget must lie in (0, 1)")
            out.append(np.log(nat[1] / (1.0 - nat[1])))
        return np.asarray(out)

    def distance_quantiles(self, q) -> np.ndarray:
        """Quantiles ``q`` of the distances between two rows of a group, over the pairs of
        every group.

        Parameters
        ----------
        q : array_like of float in [0, 1]

        Returns
        -------
        ndarray
        """
        if "_pair_d" not in self.__dict__:
            self._pair_d = np.concatenate(
                [d[:, ~np.eye(d.shape[1], dtype=bool)].ravel() for d in self._dist
                 if d.shape[1] > 1])
        return np.quantile(self._pair_d, q)

    def kinks(self) -> np.ndarray:
        """Where the correlation's first derivative jumps, on the unconstrained scale of
        the range (``u_0``), sorted: ``log(d - d_min)`` for every distinct distance
        ``d > d_min`` between rows of a group (the linear class's ``1 - d / range``
        meets 0 there); empty for the smooth classes."""
        if not self.spec.kinked:
            return np.zeros(0)
        if "_kinks" not in self.__dict__:
            d = np.unique(np.concatenate([o.ravel() for o in self._dist]))
            d = d[d > self.min_dist]
            self._kinks = np.log(d - self.min_dist) if self.spec.range_above_min \
                else np.log(d)
        return self._kinks

    def pattern_key(self):
        return self._coords

    def geometry(self, rows):
        d = _distances(self._coords[rows], self.spec.metric)
        return d, np.eye(d.shape[1], dtype=bool)

    def matrices(self, u, geometries):
        nat = self.natural(u)
        scale = 1.0 - nat[1] if self.spec.nugget else 1.0
        out = []
        for d, _ in geometries:
            C = np.ascontiguousarray(scale * self.spec.shape(d / nat[0]))   # (G, s, s)
            s = C.shape[-1]
            # the unit diagonals through a strided view (a boolean-mask assignment costs
            # a fifth of a small spatial evaluation)
            C.reshape(C.shape[0], s * s)[:, ::s + 1] = 1.0
            out.append(C)
        return out

    def batch_matrices(self, u):
        return self.matrices(u, list(zip(self._dist, self._eye, strict=True)))

    def band_storage(self, u):
        """The band of :meth:`batch_matrices` from the distances at the band's positions
        (:class:`~.spatial_band.SpatialBand`), bit for bit the gathered one."""
        if "_band_values" not in self.__dict__:
            self._band_values = SpatialBand(self._dist, self.spec.shape, self._banded,
                                            getattr(self.spec, "shape_inplace", None))
        nat = self.natural(u)
        return self._band_values(nat[0], 1.0 - nat[1] if self.spec.nugget else 1.0)

    def batch_derivatives(self, u):
        r"""``dC / du``: with ``x = d / range``, ``range = e^{u_0} (+ d_min)`` and
        ``nugget = logistic(u_1)``, off the diagonal
        ``dC/du_0 = -(1 - nugget) f'(x) x e^{u_0} / range`` and
        ``dC/du_1 = -nugget (1 - nugget) f(x)``."""
        u = np.asarray(u, dtype=float)
        nat = self.natural(u)
        scale = 1.0 - nat[1] if self.spec.nugget else 1.0
        drange = float(np.exp(np.clip(u[0], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX)))
        out = []
        for d, eye in zip(self._dist, self._eye, strict=True):
            x = d / nat[0]
            parts = [-scale * self.spec.dshape(x) * x * (drange / nat[0])]
            if self.spec.nugget:
                parts.append(-nat[1] * (1.0 - nat[1]) * self.spec.shape(x))
            D = np.stack(parts)                                   # (n_u, G, s, s)
            D[:, :, eye] = 0.0
            out.append(D)
        return out


def _with_value(spec, value):
    from dataclasses import replace

    return spec if value is spec.value else replace(spec, value=value)


@dataclass(frozen=True)
class CorExp(CorSpatial):
    """Exponential spatial correlation ``exp(-d / range)`` (nlme's ``corExp``)."""

    nlme_name: ClassVar[str] = "corExp"
    label: ClassVar[str] = "cor_exp"

    @staticmethod
    def shape(x):
        return np.exp(-x)

    @staticmethod
    def shape_inplace(x):
        """:meth:`shape` in place (the band storage's, :mod:`.spatial_band`)."""
        np.negative(x, out=x)
        np.exp(x, out=x)

    @staticmethod
    def dshape(x):
        return -np.exp(-x)


@dataclass(frozen=True)
class CorGaus(CorSpatial):
    """Gaussian spatial correlation ``exp(-(d / range)^2)`` (nlme's ``corGaus``)."""

    nlme_name: ClassVar[str] = "corGaus"
    label: ClassVar[str] = "cor_gaus"

    @staticmethod
    def shape(x):
        return np.exp(-x * x)

    @staticmethod
    def shape_inplace(x):
        """:meth:`shape` in place: ``-(x x)`` is ``(-x) x`` exactly."""
        np.multiply(x, x, out=x)
        np.negative(x, out=x)
        np.exp(x, out=x)

    @staticmethod
    def dshape(x):
        return -2.0 * x * np.exp(-x * x)


@dataclass(frozen=True)
class CorSpher(CorSpatial):
    """Spherical spatial correlation (nlme's ``corSpher``): zero beyond the range."""

    nlme_name: ClassVar[str] = "corSpher"
    label: ClassVar[str] = "cor_spher"
    range_above_min: ClassVar[bool] = True

    @staticmethod
    def shape(x):
        return np.where(x < 1.0, 1.0 - 1.5 * x + 0.5 * (x * x * x), 0.0)

    @staticmethod
    def dshape(x):
        return np.where(x < 1.0, -1.5 + 1.5 * x * x, 0.0)


@dataclass(frozen=True)
class CorLin(CorSpatial):
    """Linear spatial correlation ``1 - d / range``, zero beyond (nlme's ``corLin``)."""

    nlme_name: ClassVar[str] = "corLin"
    label: ClassVar[str] = "cor_lin"
    range_above_min: ClassVar[bool] = True
    kinked: ClassVar[bool] = True

    @staticmethod
    def shape(x):
        return np.where(x < 1.0, 1.0 - x, 0.0)

    @staticmethod
    def shape_inplace(x):
        """:meth:`shape` in place: ``max(1 - x, 0)`` (``1 - x`` is positive exactly
        where ``x < 1``, and ``+0`` at ``x = 1``)."""
        np.subtract(1.0, x, out=x)
        np.maximum(x, 0.0, out=x)

    @staticmethod
    def dshape(x):
        return np.where(x < 1.0, -1.0, 0.0)


@dataclass(frozen=True)
class CorRatio(CorSpatial):
    """Rational quadratic spatial correlation ``1 / (1 + (d / range)^2)``
    (nlme's ``corRatio``)."""

    nlme_name: ClassVar[str] = "corRatio"
    label: ClassVar[str] = "cor_ratio"

    @staticmethod
    def shape(x):
        return 1.0 / (1.0 + x * x)

    @staticmethod
    def shape_inplace(x):
        """:meth:`shape` in place."""
        np.multiply(x, x, out=x)
        np.add(x, 1.0, out=x)
        np.divide(1.0, x, out=x)

    @staticmethod
    def dshape(x):
        return -2.0 * x / (1.0 + x * x) ** 2

"""Contrasts of categorical predictors: the ``contrasts=`` argument and R's column suffixes.

The numbers are formulaic's contrast matrices, which are R's: ``contr.treatment`` (the
default; first level is the reference), ``contr.sum`` (last level coded -1), ``contr.helmert``,
``contr.poly`` (orthonormal polynomials of the level index: column ``k`` is the degree-``k``
polynomial, orthogonal to the lower degrees and of unit length, with R's signs), ``contr.SAS``
(last level is the reference) and formulaic's backward-difference ``diff``.

R names a contrast column by the factor's name and the column name of the contrast matrix:
the level for treatment and SAS contrasts (``SexFemale``), ``.L``, ``.Q``, ``.C``, ``^4`` ...
for polynomial contrasts (``x.L``), and the column index for contrast matrices without column
names -- sum and Helmert contrasts (``f1``, ``f2``). A factor coded in full (no intercept to
absorb a level) gets one indicator per level (``fa``, ``fb``, ``fc``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np
from formulaic.transforms.contrasts import (
    Contrasts,
    CustomContrasts,
    DiffContrasts,
    HelmertContrasts,
    PolyContrasts,
    SASContrasts,
    SumContrasts,
    TreatmentContrasts,
)

from .._errors import DataError

__all__ = ["CONTRAST_NAMES", "r_contrast_suffixes", "resolve_contrasts"]

#: Accepted spellings of the ``contrasts=`` values (R's ``contr.`` prefix is optional).
CONTRAST_NAMES = {
    "treatment": TreatmentContrasts,
    "sum": SumContrasts,
    "helmert": HelmertContrasts,
    "poly": PolyContrasts,
    "sas": SASContrasts,
    "diff": DiffContrasts,
}


def _one(column: str, spec) -> Contrasts:
    if isinstance(spec, Contrasts):
        return spec
    if inspect.isclass(spec) and issubclass(spec, Contrasts):
        return spec()
    if isinstance(spec, str):
        key = spec.strip().lower().removeprefix("contr.")
        if key in CONTRAST_NAMES:
            return CONTRAST_NAMES[key]()
        raise DataError(
            f"contrasts[{column!r}] = {spec!r} is not a known contrast; use one of "
            f"{', '.join(repr(k) for k in CONTRAST_NAMES)} (R's 'contr.sum' spelling works "
            "too), a formulaic Contrasts object or a levels x columns coding matrix"
        )
    if isinstance(spec, Mapping) or np.ndim(spec) == 2:
        return CustomContrasts(spec)
    raise DataError(
        f"contrasts[{column!r}] must be a name such as 'sum', a formulaic Contrasts object "
        f"or a coding matrix, got {type(spec).__name__}"
    )


def resolve_contrasts(contrasts) -> dict[str, Contrasts] | None:
    """``contrasts=`` as column name -> formulaic ``Contrasts`` (None when not given).

    Parameters
    ----------
    contrasts : dict or None
        Column name -> ``"treatment"``, ``"sum"``, ``"helmert"``, ``"poly"``, ``"SAS"``,
        ``"diff"`` (with or without R's ``contr.`` prefix), a formulaic ``Contrasts``
        instance or class (``formulaic.transforms.contrasts.SumContrasts``), or a coding
        matrix (levels x columns, array or dict of columns).

    Raises
    ------
    DataError
        For anything else, naming the column.
    """
    if contrasts is None:
        return None
    if not isinstance(contrasts, Mapping):
        raise DataError(
            "contrasts must be a dict mapping column names to contrasts, e.g. "
            f"contrasts={{'x': 'sum'}}; got {type(contrasts).__name__}"
        )
    return {str(k): _one(str(k), v) for k, v in contrasts.items()} or None


def r_contrast_suffixes(contrasts: Contrasts, levels: list, reduced: bool,
                        level_label) -> list[str]:
    """R's suffixes of the columns that ``contrasts`` gives a factor (module docstring).

    Parameters
    ----------
    contrasts : formulaic Contrasts
    levels : list
        The factor's levels, in order.
    reduced : bool
        Whether the coding is reduced-rank (an intercept absorbs one level).
    level_label : callable
        Level -> its text as R prints it (``TRUE``, ``3``).
    """
    fields = contrasts.get_coding_column_names(levels, reduced_rank=reduced)
    if not reduced:
        return [level_label(f) for f in fields]
    if isinstance(contrasts, SumContrasts | HelmertContrasts):
        return [str(k) for k in range(1, len(fields) + 1)]
    if isinstance(contrasts, PolyContrasts):
        return [str(f) for f in fields]
    return [level_label(f) for f in fields]

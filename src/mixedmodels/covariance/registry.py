"""The one registry of covariance structures: formula keywords, their options, their data.

The parser's keyword list (:data:`KEYWORDS`) and its option checks
(:func:`normalize_options`) read this table; :func:`make_structure` builds the class for a
materialized term. Spellings are glmmTMB's; lme4 2.0's ``hom =`` argument of ``diag``,
``cs`` and ``ar1`` selects the homogeneous or heterogeneous variant of the same class
(``ar1(..., hom = FALSE)`` is glmmTMB's ``hetar1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import FormulaError
from .base import CovarianceStructure, StructureData
from .correlated import AR1, CompoundSymmetry, Toeplitz
from .diagonal import Diagonal
from .known import Fixed, Proportional
from .reduced_rank import ReducedRank
from .spatial import Exponential, Gaussian, Matern, OrnsteinUhlenbeck
from .unstructured import Unstructured

__all__ = ["KEYWORDS", "REGISTRY", "StructureEntry", "make_structure", "normalize_options"]


@dataclass(frozen=True)
class StructureEntry:
    """One formula keyword.

    Attributes
    ----------
    cls : type
        The structure's class.
    fixed : dict
        Constructor arguments the keyword implies (``homdiag``: ``hom=True``).
    options : tuple of str
        Arguments a formula may give (``hom``, ``d``, ``matrix``), in positional order.
    needs : str or None
        ``"coordinates"`` (``pos(...)`` in the term) or ``"matrix"`` (a known matrix).
    summary : str
        One line for messages and the docs.
    """

    cls: type
    fixed: dict = field(default_factory=dict)
    options: tuple[str, ...] = ()
    needs: str | None = None
    summary: str = ""


REGISTRY: dict[str, StructureEntry] = {
    "us": StructureEntry(Unstructured, summary="unstructured (lme4's default)"),
    "diag": StructureEntry(Diagonal, {"hom": False}, ("hom",),
                           summary="independent effects, one sd each"),
    "homdiag": StructureEntry(Diagonal, {"hom": True}, summary="independent, one common sd"),
    "cs": StructureEntry(CompoundSymmetry, {"hom": False}, ("hom",),
                         summary="compound symmetry, one sd per effect"),
    "homcs": StructureEntry(CompoundSymmetry, {"hom": True},
                            summary="compound symmetry, one common sd"),
    "ar1": StructureEntry(AR1, {"hom": True}, ("hom",),
                          summary="AR(1) over the columns, one common sd"),
    "hetar1": StructureEntry(AR1, {"hom": False}, summary="AR(1), one sd per column"),
    "toep": StructureEntry(Toeplitz, {"hom": False}, ("hom",),
                           summary="Toeplitz (one correlation per lag), one sd per column"),
    "homtoep": StructureEntry(Toeplitz, {"hom": True}, summary="Toeplitz, one common sd"),
    "ou": StructureEntry(OrnsteinUhlenbeck, needs="coordinates",
                         summary="Ornstein-Uhlenbeck over times pos(t)"),
    "exp": StructureEntry(Exponential, needs="coordinates",
                          summary="exponential spatial correlation over pos(x, y)"),
    "gau": StructureEntry(Gaussian, needs="coordinates",
                          summary="Gaussian spatial correlation over pos(x, y)"),
    "mat": StructureEntry(Matern, needs="coordinates",
                          summary="Matern spatial correlation over pos(x, y)"),
    "rr": StructureEntry(ReducedRank, {"d": 2}, ("d",),
                         summary="reduced rank (factor analytic) with d factors"),
    "propto": StructureEntry(Proportional, options=("matrix",), needs="matrix",
                             summary="proportional to a known matrix"),
    "equalto": StructureEntry(Fixed, options=("matrix",), needs="matrix",
                              summary="equal to a known matrix"),
}

#: The covariance keywords a formula accepts around a bar term.
KEYWORDS = frozenset(REGISTRY)

_TRUE = {"TRUE", "True", "T", "true", "1"}
_FALSE = {"FALSE", "False", "F", "false", "0"}


def _entry(keyword: str, where: str) -> StructureEntry:
    try:
        return REGISTRY[keyword]
    except KeyError:
        raise FormulaError(
            f"unknown covariance structure {keyword}() in {where!r}; available: "
            f"{', '.join(sorted(REGISTRY))}") from None


def _value(keyword: str, name: str, text: str, where: str):
    text = text.strip()
    if name == "hom":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise FormulaError(f"{keyword}(..., hom = {text}) in {where!r}: hom must be TRUE or "
                           "FALSE")
    if name == "d":
        try:
            d = int(text)
        except ValueError:
            raise FormulaError(f"rr(..., d = {text}) in {where!r}: d must be a whole number "
                               "of factors, e.g. rr(0 + trait | id, d = 2)") from None
        if d < 1 or str(d) != text:
            raise FormulaError(f"rr(..., d = {text}) in {where!r}: d must be a positive "
                               "whole number")
        return d
    # matrix: a name of covariance_matrices=
    name_text = text.strip("`'\"")
    if not name_text.isidentifier() and not (text[:1] in "`'\"" and name_text):
        raise FormulaError(f"{keyword}(..., {text}) in {where!r}: give the known matrix by a "
                           "name, e.g. propto(0 + sp | g, K) with covariance_matrices="
                           "{'K': matrix}")
    return name_text


def normalize_options(keyword: str, positional: list[str], named: dict[str, str],
                      where: str) -> tuple[tuple[str, object], ...]:
    """The options of ``keyword(bar, *positional, **named)`` checked and converted.

    Returns
    -------
    tuple of (name, value)
        Sorted by name (hashable: part of the frozen formula spec).

    Raises
    ------
    FormulaError
        Unknown keyword or option, too many arguments, a bad value, a missing matrix name.
    """
    entry = _entry(keyword, where)
    if len(positional) > len(entry.options):
        allowed = ", ".join(entry.options) or "none"
        raise FormulaError(f"{keyword}() in {where!r} takes {len(entry.options)} argument(s) "
                           f"after the bar term ({allowed}), got {len(positional)}")
    out = dict(zip(entry.options, positional, strict=False))
    for name, text in named.items():
        if name not in entry.options:
            allowed = ", ".join(entry.options) or "none"
            raise FormulaError(f"{keyword}() in {where!r} has no argument {name!r} (allowed: "
                               f"{allowed})")
        if name in out:
            raise FormulaError(f"{keyword}() in {where!r} got {name!r} twice")
        out[name] = text
    values = {k: _value(keyword, k, v, where) for k, v in out.items()}
    if entry.needs == "matrix" and "matrix" not in values:
        raise FormulaError(f"{keyword}() in {where!r} needs the name of its known matrix: "
                           f"{keyword}(0 + species | g, K) with covariance_matrices={{'K': K}}")
    return tuple(sorted(values.items()))


def make_structure(keyword: str, p: int, options=(), data: StructureData | None = None
                   ) -> CovarianceStructure:
    """Instantiate the covariance structure named ``keyword`` for ``p`` effects.

    Parameters
    ----------
    keyword : str
    p : int
    options : tuple of (name, value)
        From :func:`normalize_options` (``hom``, ``d``; the matrix name is resolved by the
        design layer into ``data.matrix``).
    data : StructureData, optional
        Coordinates or the known matrix.
    """
    data = data or StructureData()
    entry = _entry(keyword, data.where or keyword)
    kwargs = dict(entry.fixed)
    kwargs.update((k, v) for k, v in options if k != "matrix")
    if entry.needs == "coordinates":
        kwargs["coordinates"] = data.coordinates
    elif entry.needs == "matrix":
        kwargs["matrix"] = data.matrix
    elif data.coordinates is not None:
        raise FormulaError(
            f"pos() in {data.where!r} gives positions, which {keyword}() does not use; "
            "pos() goes with ou(), exp(), gau() and mat() (for ar1() write "
            "ar1(0 + factor(time) | g))")
    return entry.cls(p, **kwargs)

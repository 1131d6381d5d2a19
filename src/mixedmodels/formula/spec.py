"""Frozen specifications produced by parsing a model formula.

A :class:`MixedModelSpec` says *what* the model is, independent of any data: the response
expression, the fixed-effects formula (handed to formulaic), offsets written in the formula,
and the random-effects terms after lme4's expansions (``||`` into independent terms, ``a/b``
into ``a`` and ``b:a``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .components import ComponentSpec

__all__ = ["MixedModelSpec", "RandomTerm"]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``.

    Attributes
    ----------
    expr : str
        Right-hand side of the term's own model formula (``"1 + Days"``, ``"0 + x"``, ``"1"``).
        Its model matrix ``Z_k`` (n x p_k) is evaluated by formulaic, so an intercept is
        implicit unless removed with ``0 +`` or ``- 1``, as in R.
    group : str
        Grouping factor as lme4 names it: ``"Subject"``, or ``"cask:batch"`` for an
        interaction (levels are the observed combinations, first factor varying slowest).
    group_vars : tuple of str
        Data columns whose combination defines the groups.
    structure : str
        Covariance structure keyword: ``"us"`` (unstructured, lme4's default), or one of
        glmmTMB's (``"diag"``, ``"cs"``, ``"ar1"``, ...).
    source : str
        The term as the user wrote it, for error messages.
    options : tuple of (str, object)
        The structure's arguments, sorted by name: ``(("d", 2),)`` for ``rr(... , d = 2)``,
        ``(("hom", False),)`` for lme4 2.0's ``ar1(..., hom = FALSE)``, ``(("matrix",
        "K"),)`` for ``propto(... , K)`` (a name of the front doors' ``covariance_matrices``).
    """

    expr: str
    group: str
    group_vars: tuple[str, ...]
    structure: str = "us"
    source: str = ""
    options: tuple[tuple[str, object], ...] = ()

    def __str__(self) -> str:
        inner = f"{self.expr} | {self.group}"
        if self.structure == "us":
            return f"({inner})"
        args = "".join(f", {k} = {v}" for k, v in self.options)
        return f"{self.structure}({inner}{args})"


@dataclass(frozen=True)
class MixedModelSpec:
    """A parsed mixed-model formula.

    Attributes
    ----------
    formula : str
        The formula as given.
    response : str
        Left-hand side expression (``"Reaction"``, ``"log(y)"``,
        ``"cbind(incidence, size - incidence)"``).
    fixed : str
        Fixed-effects right-hand side for formulaic, offsets and random terms removed
        (``"1 + Days"``; ``"1"`` when only an intercept remains).
    offsets : tuple of str
        Expressions found inside ``offset(...)`` in the formula.
    random : tuple of RandomTerm
        Random-effects terms in the order written (lme4's reordering by number of levels
        happens when the design is built, because it depends on the data).
    extra_components : tuple of ComponentSpec
        Linear predictors besides the conditional one (``zi``, ``disp``; see
        :mod:`mixedmodels.formula.components`); empty for lme4's models.
    """

    formula: str
    response: str
    fixed: str
    offsets: tuple[str, ...]
    random: tuple[RandomTerm, ...]
    extra_components: tuple[ComponentSpec, ...] = ()

    @property
    def components(self) -> dict[str, ComponentSpec]:
        """Every linear predictor by name, ``cond`` first."""
        from .components import cond_component

        out = {"cond": cond_component(self)}
        out.update((c.name, c) for c in self.extra_components)
        return out

    def __str__(self) -> str:
        parts = [self.fixed] + [f"offset({o})" for o in self.offsets]
        parts += [str(t) for t in self.random]
        return f"{self.response} ~ " + " + ".join(parts)

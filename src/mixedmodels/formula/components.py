"""Linear-predictor components: the conditional model and glmmTMB's one-sided formulas.

A model has named components, each a linear predictor with its own fixed effects,
random-effects terms and offsets:

* ``cond`` -- the conditional mean, from the two-sided model formula;
* ``zi`` -- the zero-inflation probability (glmmTMB's ``ziformula``, logit scale);
* ``disp`` -- the dispersion (glmmTMB's ``dispformula``, log scale).

The extra components are written as one-sided formulas: ``"~ x + (1 | g)"``, ``"~1"``
(an intercept), ``"~0"`` (no linear predictor: no zero-inflation; for the dispersion of a
Gaussian model, glmmTMB's fixed, tiny residual variance), and ``"~."`` (a copy of the
conditional model's fixed and random parts, as glmmTMB's ``ziformula = ~.``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import FormulaError
from .parse import parse_formula
from .spec import MixedModelSpec, RandomTerm

__all__ = ["COMPONENTS", "ComponentSpec", "cond_component", "parse_component"]

#: Component names in the order parameters are laid out.
COMPONENTS = ("cond", "zi", "disp")
#: Placeholder response for parsing a right-hand side with the two-sided parser.
_PLACEHOLDER = "_mm_component_"
#: Fixed parts without columns (spaces removed): ``0``, ``-1``, ``1 - 1``, ``0 - 1``.
_EMPTY_FIXED = frozenset({"0", "-1", "+0", "1-1", "0-1", "0+0"})


@dataclass(frozen=True)
class ComponentSpec:
    """One linear predictor of a model, independent of data.

    Attributes
    ----------
    name : str
        ``"cond"``, ``"zi"`` or ``"disp"``.
    formula : str
        The formula as given (one-sided for ``zi``/``disp``).
    fixed : str
        Fixed-effects right-hand side for formulaic (``"1 + spp"``; ``"0"`` for none).
    offsets : tuple of str
        Expressions inside ``offset(...)``.
    random : tuple of RandomTerm
        Random-effects terms in the order written.
    """

    name: str
    formula: str
    fixed: str
    offsets: tuple[str, ...] = ()
    random: tuple[RandomTerm, ...] = ()

    @property
    def is_empty(self) -> bool:
        """``~0``: no fixed effects, no random effects, no offset."""
        fixed = re.sub(r"\s+", "", self.fixed)
        return fixed in _EMPTY_FIXED and not self.random and not self.offsets

    def __str__(self) -> str:
        parts = [self.fixed] + [f"offset({o})" for o in self.offsets]
        parts += [str(t) for t in self.random]
        return "~ " + " + ".join(parts)


def cond_component(spec: MixedModelSpec) -> ComponentSpec:
    """The conditional component of a two-sided model spec."""
    rhs = spec.formula.split("~", 1)[1].strip() if "~" in spec.formula else spec.fixed
    return ComponentSpec("cond", rhs, spec.fixed, spec.offsets, spec.random)


def parse_component(formula: str | None, name: str, cond: MixedModelSpec) -> ComponentSpec:
    """Parse a one-sided component formula (``"~ x + (1 | g)"``, ``"~0"``, ``"~."``).

    Parameters
    ----------
    formula : str or None
        One-sided formula; None means ``"~0"``. A leading ``~`` is optional.
    name : str
        Component name, for messages (``"zi"``, ``"disp"``).
    cond : MixedModelSpec
        The conditional model, for ``"~."``.

    Raises
    ------
    FormulaError
        For a two-sided formula or a syntax error, naming the component.
    """
    what = {"zi": "ziformula", "disp": "dispformula"}.get(name, f"{name} formula")
    if formula is None:
        formula = "~0"
    if not isinstance(formula, str):
        raise FormulaError(f"{what} must be a one-sided formula string such as '~ x', got "
                           f"{type(formula).__name__}")
    text = " ".join(formula.split())
    if not text.startswith("~"):
        if "~" in text:
            raise FormulaError(
                f"{what} {formula!r} must be one-sided (nothing left of '~'), e.g. '~ x'")
        text = "~ " + text
    rhs = text[1:].strip()
    if "~" in rhs:
        raise FormulaError(f"{what} {formula!r} must be one-sided with a single '~'")
    if not rhs:
        raise FormulaError(f"{what} {formula!r} is empty; write '~1' for an intercept or "
                           "'~0' for none")
    if rhs == ".":
        c = cond_component(cond)
        return ComponentSpec(name, formula, c.fixed, c.offsets, c.random)
    try:
        parsed = parse_formula(f"{_PLACEHOLDER} ~ {rhs}")
    except FormulaError as exc:
        message = str(exc).replace(f"{_PLACEHOLDER} ~ ", "~ ")
        raise FormulaError(f"{what}: {message}") from None
    return ComponentSpec(name, formula, parsed.fixed, parsed.offsets, parsed.random)

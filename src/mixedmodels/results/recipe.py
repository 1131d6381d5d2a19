"""How a fit was made, frozen with the result: the front door and its exact arguments.

A :class:`FitRecipe` lets a result be refitted without reconstructing arguments from what
the fit happens to expose (which loses whatever is not exposed -- an optimizer's settings,
a starting value, ``nAGQ``). Two levels are recorded, because refits happen at both:

* the **front door** (``lmer``, ``glmer``, ``glmer_nb``) with the formula, a reference to
  the data and every keyword argument: :meth:`FitRecipe.fit` calls it again, with changes
  (``m.update(...)``);
* the **design fitter** (``fit_lmm``, ``fit_glmm``) with its keyword arguments:
  :meth:`FitRecipe.fit_design` fits another :class:`~mixedmodels.Design` (a simulated
  response, the same design by ML) with the same settings -- what ``refit``, the bootstrap,
  ``pb_test``, profiles and ``anova``'s ML refits use.

The fitters are stored as callables, so this module needs nothing from ``fitting/``
(results never import the fitting code; the fitting code builds the recipes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["MODEL_SETTINGS", "FitRecipe", "RecipeMixin"]


#: Settings a design-level refit may change that define the model the front door would fit
#: (propagated to the recorded front-door options); starting values, the family at the
#: estimate and the light-refit switches of a bootstrap replicate are not.
MODEL_SETTINGS = frozenset({"REML", "nAGQ", "optimizer", "optimizer_settings"})


def _frozen(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(options.items())


@dataclass(frozen=True)
class FitRecipe:
    """The fitter and its exact arguments (see the module docstring).

    Attributes
    ----------
    fitter : callable or None
        The front door, ``fitter(formula, data, **options)``; None for a fit made from a
        Design directly (``fit_lmm``), which has no formula front door to call again.
    formula : str
        The formula as given.
    data : object or None
        The data object passed to the front door (a reference, not a copy: as R's
        ``update``, a refit sees the data as they are when it runs).
    options : tuple of (str, value)
        Every keyword argument of the front door, defaults included.
    design_fitter : callable
        ``design_fitter(design, **design_options)``.
    design_options : tuple of (str, value)
        Keyword arguments of the design fitter.
    """

    fitter: Callable | None
    formula: str
    data: Any
    options: tuple[tuple[str, Any], ...]
    design_fitter: Callable
    design_options: tuple[tuple[str, Any], ...]

    @classmethod
    def make(cls, fitter, formula, data, options: Mapping, design_fitter,
             design_options: Mapping) -> FitRecipe:
        """A recipe from the options as dicts (stored as tuples: the recipe is frozen).

        Parameters
        ----------
        fitter, formula, data, design_fitter
            As the attributes.
        options, design_options : mapping
            Keyword arguments of the front door and of the design fitter.

        Returns
        -------
        FitRecipe
        """
        return cls(fitter, formula, data, _frozen(options), design_fitter,
                   _frozen(design_options))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The front door's keyword arguments (a copy)."""
        return dict(self.options)

    @property
    def design_kwargs(self) -> dict[str, Any]:
        """The design fitter's keyword arguments (a copy)."""
        return dict(self.design_options)

    @property
    def optimizers(self) -> tuple[str, ...]:
        """The ``optimizer=`` values the front door accepts (its ``optimizers``
        attribute; empty for a front door without that argument, or no front door)."""
        return tuple(getattr(self.fitter, "optimizers", ()))

    @property
    def fitter_name(self) -> str:
        """Name of the front door (or of the design fitter when there is none)."""
        fn = self.fitter if self.fitter is not None else self.design_fitter
        return getattr(fn, "__name__", repr(fn))

    def fit(self, formula: str | None = None, data=None, **changes):
        """Call the front door again: same arguments, with ``formula``, ``data`` and the
        keyword ``changes`` replacing the recorded ones.

        Parameters
        ----------
        formula : str, optional
            A complete new formula (``update`` resolves R's ``.`` first).
        data : DataFrame, optional
            New data (default: the recorded data reference).
        **changes
            Keyword arguments of the front door.

        Returns
        -------
        The new fit.
        """
        if self.fitter is None:
            raise TypeError(
                f"this fit was made by {self.fitter_name}() from a Design, not by a formula "
                "front door: call mm.lmer()/mm.glmer() with the formula and data instead")
        unknown = sorted(set(changes) - set(self.kwargs))
        if unknown:
            raise TypeError(f"{self.fitter_name}() has no argument(s) {', '.join(unknown)}; "
                            f"its arguments are formula, data, {', '.join(self.kwargs)}")
        data = self.data if data is None else data
        if data is None:
            raise TypeError("the recipe holds no data reference: pass data=")
        return self.fitter(self.formula if formula is None else formula, data,
                           **{**self.kwargs, **changes})

    def fit_design(self, design, **changes):
        """Fit ``design`` with the recorded design-fitter arguments, ``changes`` replacing
        some; the new result carries this recipe with the changes recorded (``REML``,
        ``nAGQ`` ... also in the front door's options, so that ``update`` keeps them).

        Parameters
        ----------
        design : Design
            The same model on another response (or the same design).
        **changes
            Design-fitter arguments to change (``REML=False``, ``start=...``).

        Returns
        -------
        The new fit.
        """
        result = self.design_fitter(design, **{**self.design_kwargs, **changes})
        return result.with_recipe(self.with_changes(**changes))

    def with_changes(self, **changes) -> FitRecipe:
        """This recipe with ``changes`` applied to the design options and, for the
        :data:`MODEL_SETTINGS`, to the front door's options too.

        Parameters
        ----------
        **changes
            Design-fitter arguments.

        Returns
        -------
        FitRecipe
        """
        design = {**self.design_kwargs, **changes}
        front = self.kwargs
        for key, value in changes.items():
            if key in front and key in MODEL_SETTINGS:
                front[key] = value
        return replace(self, options=_frozen(front), design_options=_frozen(design))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.options)
        return f"FitRecipe({self.fitter_name}({self.formula!r}, data, {shown}))"


def _short(value) -> str:
    """A compact repr: arrays and frames by shape, other values as repr (truncated)."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, str | int | float):
        return f"<{type(value).__name__} {tuple(shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RecipeMixin:
    """``update`` and ``with_recipe`` for results that carry a ``recipe`` field."""

    def with_recipe(self, recipe: FitRecipe):
        """This result with another recipe (the fitting code attaches its own).

        Parameters
        ----------
        recipe : FitRecipe

        Returns
        -------
        A copy of the result.
        """
        return replace(self, recipe=recipe)

    def _require_recipe(self) -> FitRecipe:
        recipe = getattr(self, "recipe", None)
        if recipe is None:
            raise TypeError(f"this {type(self).__name__} carries no FitRecipe (it was not "
                            "made by a fitting function), so it cannot be refitted")
        return recipe

    def update(self, formula: str | None = None, data=None, **changes):
        """Refit with a changed formula, data or arguments (R's ``update``).

        The fit is made again by the same front door with exactly the recorded arguments
        (its :attr:`recipe`), except what is passed here.

        Parameters
        ----------
        formula : str, optional
            A new formula, in which ``.`` stands for the old formula's sides, as in R:
            ``". ~ . + x"`` adds a term, ``". ~ . - Days"`` removes one,
            ``". ~ . - (Days | Subject) + (1 | Subject)"`` swaps random-effects terms,
            ``"log(.) ~ ."`` transforms the response. A formula without ``.`` replaces the
            old one.
        data : DataFrame, optional
            New data (default: the data of the fit, as they are now).
        **changes
            Keyword arguments of the front door to change (``REML=False``,
            ``optimizer="bobyqa"``, ``weights=...``).

        Returns
        -------
        A new fitted model of the same type.
        """
        from ..formula.update import update_formula

        recipe = self._require_recipe()
        new = None if formula is None else update_formula(recipe.formula, formula)
        return recipe.fit(new, data, **changes)

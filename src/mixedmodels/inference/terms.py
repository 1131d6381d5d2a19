"""The terms of the fixed-effects formula: which columns of X each term owns, its variables,
and which terms contain which (for type II/III hypotheses and the containment df)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FixedTerm", "contained_in", "fixed_terms", "has_intercept"]


@dataclass(frozen=True)
class FixedTerm:
    """One term of the fixed-effects formula.

    Attributes
    ----------
    label : str
        As R labels it (``age``, ``Sex``, ``age:Sex``).
    columns : tuple of int
        Indices of its columns in ``design.X`` (aliased columns, dropped from X, are left
        out).
    variables : frozenset of str
        The factors (variables) the term multiplies.
    numeric : frozenset of str
        Those of ``variables`` that are numeric (the others are categorical).
    """

    label: str
    columns: tuple[int, ...]
    variables: frozenset[str]
    numeric: frozenset[str]

    @property
    def order(self) -> int:
        return len(self.variables)


def has_intercept(design) -> bool:
    return "Intercept" in design.fixed.names


def _variable_order(design) -> dict[str, int]:
    """Position of each variable's first appearance in the fixed-effects formula as written
    (R orders the factors of an interaction's label that way: ``urban:livch`` in
    ``age * urban + livch * urban``); empty when the text cannot be read back."""
    from formulaic import Formula

    text = getattr(getattr(design, "spec", None), "fixed", None)
    if not text:
        return {}
    try:
        terms = list(Formula(str(text), _ordering="none"))
    except Exception:
        return {}
    order: dict[str, int] = {}
    for term in terms:
        for f in term.factors:
            order.setdefault(str(f), len(order))
    return order


def _r_label(factors: list[str], order: dict[str, int]) -> str:
    if len(factors) < 2 or not all(f in order for f in factors):
        return ":".join(factors)
    return ":".join(sorted(factors, key=order.__getitem__))


def fixed_terms(design) -> list[FixedTerm]:
    """Non-intercept terms of the fixed-effects formula, in formula order, labelled as R
    labels them (an interaction's variables in their order of appearance in the
    formula)."""
    spec = design.fixed.model_spec
    if spec is None:
        # built without formulaic: an intercept and plain numeric columns, one term each
        return [FixedTerm(n, (j,), frozenset([n]), frozenset([n]))
                for j, n in enumerate(design.fixed.names) if n != "Intercept"]
    categorical = {str(f) for f in spec.factor_contrasts}
    # position in the full model matrix -> column of X (aliased columns are not in X); by
    # position, since names may repeat in formulaic's spelling (a column named Intercept)
    kept = design.fixed.columns
    index = {j: i for i, j in enumerate(kept if kept is not None
                                        else range(len(design.fixed.names)))}
    order = _variable_order(design)
    out = []
    start = 0
    for struct in spec.structure:
        factors = [str(f) for f in struct.term.factors]
        positions = range(start, start + len(struct.columns))
        start += len(struct.columns)
        if factors == ["1"]:
            continue
        cols = tuple(index[j] for j in positions if j in index)
        variables = frozenset(factors)
        out.append(FixedTerm(_r_label(factors, order), cols, variables,
                             frozenset(v for v in variables if v not in categorical)))
    return out


def contained_in(term: FixedTerm, terms: list[FixedTerm]) -> list[FixedTerm]:
    """Terms that contain ``term`` (lmerTest's ``containment``): their variables include
    all of ``term``'s and more, and they have the same numeric variables (so ``x:f``
    contains ``x`` and ``f:g`` contains ``f``, but ``x:f`` does not contain ``f``)."""
    return [t for t in terms
            if term.variables < t.variables and t.numeric == term.numeric]

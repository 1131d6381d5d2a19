"""The ``.`` of ``y ~ . + (1 | g)``: every column of the data but the response.

R's rule (``terms.formula`` with ``data=``, which lme4 uses twice: once to build the model
frame and once for the fixed-effects matrix on it): ``.`` stands for all columns that are not
variables of the left-hand side. Grouping columns are columns like any other, so in lme4
``y ~ . + (1 | g)`` has ``g`` among the fixed effects as well -- so it has here. Columns named
elsewhere in the formula are not repeated (``x + .`` has ``x`` once); ``. - x`` removes one.
The expansion is formulaic's (its ``.`` operator over a given list of variables); the
expanded right-hand side replaces ``.`` in the spec, so everything downstream (missing
values, prediction) sees ordinary columns.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from .._errors import FormulaError, plain_message
from ..formula.spec import MixedModelSpec

__all__ = ["expand_dot", "has_dot"]

# a '.' standing alone: not part of a name (my.var, np.log), a number (.5) or a backticked
# name; string literals inside calls are not expected to hold a lone dot
_DOT = re.compile(r"(?<![\w.`'\"])\.(?![\w.`'\"])")
_PLAIN_NAME = re.compile(r"^(?!\d)\w+$")


def has_dot(fixed: str) -> bool:
    """Whether a fixed-effects right-hand side uses ``.``."""
    return "." in fixed and bool(_DOT.search(fixed))


def _quoted(name: str) -> str:
    return name if _PLAIN_NAME.match(name) else "`" + name + "`"


@lru_cache(maxsize=128)
def _expand(fixed: str, available: tuple[str, ...]) -> str:
    from formulaic import Formula

    try:
        terms = list(Formula(fixed, _context={"__formulaic_variables_available__":
                                              list(available)}))
    except Exception as exc:
        raise FormulaError(f"cannot expand '.' in {fixed!r}: {plain_message(exc)}") from exc
    pieces = []
    for term in terms:
        if str(term) == "1":
            continue
        pieces.append(":".join(_quoted(f.expr) if f.eval_method.value == "lookup" else f.expr
                               for f in term.factors))
    intercept = any(str(t) == "1" for t in terms)
    if not pieces:
        return "1" if intercept else "0"
    return ("" if intercept else "0 + ") + " + ".join(pieces)


def expand_dot(spec: MixedModelSpec, columns, response_vars: list[str]) -> MixedModelSpec:
    """``spec`` with ``.`` in its fixed part replaced by the data's non-response columns.

    Parameters
    ----------
    spec : MixedModelSpec
    columns : sequence
        The data's column names, in order.
    response_vars : list of str
        The columns the response reads (left out of ``.``).
    """
    if not has_dot(spec.fixed):
        return spec
    left_out = set(response_vars)
    available = tuple(str(c) for c in columns if str(c) not in left_out)
    return replace(spec, fixed=_expand(spec.fixed, available))

"""Checks of a parsed formula that need formulaic's parser (still without data).

* The response on the right-hand side (``y ~ y + x``): R drops the term ``y`` with the
  warning "the response appeared on the right-hand side and was dropped"; interactions that
  contain it (``x:y``) stay, as in R.
* Python keywords inside calls (``log(yield)``): formulaic evaluates calls as Python, where
  ``yield``, ``class`` or ``lambda`` cannot be names. Bare, such a column works (formulaic
  looks it up by name), so only the call form is refused -- with a message that says so.
"""

from __future__ import annotations

import ast
import keyword
import re
from functools import lru_cache

from .._errors import FormulaError

__all__ = ["check_python_calls", "drop_response"]

_KEYWORD = re.compile(r"(?<![\w.`'\"])(" + "|".join(keyword.kwlist) + r")(?![\w.`'\"])")


@lru_cache(maxsize=256)
def _single_term(expr: str):
    """formulaic's term for an expression that is one name or one call, else None."""
    from formulaic import Formula
    from formulaic.parser.algos.tokenize import tokenize

    try:
        tokens = list(tokenize(expr))
        if len(tokens) != 1 or tokens[0].kind.value not in ("name", "python"):
            return None
        terms = [t for t in Formula(expr) if str(t) != "1"]
    except Exception:  # not formula syntax: it cannot be a term of the right-hand side
        return None
    return terms[0] if len(terms) == 1 else None


@lru_cache(maxsize=256)
def drop_response(response: str, fixed: str) -> tuple[str, bool]:
    """``fixed`` without the term equal to the response, and whether there was one.

    Parameters
    ----------
    response : str
        Left-hand side in formulaic's syntax (``"y"``, ``"log(y)"``).
    fixed : str
        Fixed-effects right-hand side in formulaic's syntax.
    """
    if response.strip("`") not in fixed:  # the common case, without parsing
        return fixed, False
    term = _single_term(response)
    if term is None:
        return fixed, False
    from formulaic import Formula

    try:
        rhs = list(Formula(fixed))
    except Exception:  # a syntax error (or '.') is reported later, with its context
        return fixed, False
    if term not in rhs:
        return fixed, False
    return f"{fixed} - {response}", True


def check_python_calls(text: str, where: str) -> None:
    """Refuse Python keywords used as names inside a call (``log(yield)``).

    Raises
    ------
    FormulaError
        Naming the keyword and the two ways out: use the column bare or rename it.
    """
    if not _KEYWORD.search(text):
        return
    from formulaic.parser.algos.tokenize import tokenize
    from formulaic.utils.code import sanitize_variable_names

    try:
        tokens = list(tokenize(text))
    except Exception:  # formulaic reports its own syntax errors later
        return
    for tok in tokens:
        if tok.kind.value != "python":
            continue
        try:
            ast.parse(sanitize_variable_names(tok.token, {}, {}), mode="eval")
        except SyntaxError:
            words = sorted({m.group(1) for m in _KEYWORD.finditer(tok.token)})
            if not words:
                continue
            shown = ", ".join(repr(w) for w in words)
            raise FormulaError(
                f"{where}: {tok.token!r} uses {shown}, a Python keyword, as a name inside a "
                "call; formulaic evaluates calls as Python, where that is a syntax error. The "
                f"column works bare (as a term or as the response); to transform it, rename "
                f"it first, e.g. data.rename(columns={{{words[0]!r}: {words[0] + '_'!r}}})"
            ) from None

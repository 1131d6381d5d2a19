r"""R's ``update.formula`` for mixed-model formulas: ``.`` stands for the old formula.

``update_formula(old, new)``:

* on the left of ``~``, each ``.`` is the old response (``"log(.) ~ ."`` gives
  ``log(Reaction) ~ ...``); a one-sided ``new`` (``"~ . + x"``) keeps the old response;
* on the right, a ``.`` standing as a term is the old right-hand side, term by term; a ``.``
  inside an expression (``"(.)^2"``) is the old fixed-effects part in parentheses;
* then terms are added and removed as R simplifies them: ``- Days`` removes the fixed term
  ``Days`` (after expanding ``*``, ``/``, ``^`` into their terms, so ``- a:b`` removes the
  interaction of ``a * b``), ``- (Days | Subject)`` removes that random-effects term, and a
  term that is already there is not added twice. ``- 1`` and ``+ 0`` remove the intercept,
  ``+ 1`` restores it.

Removing a term the model does not have is an error naming the terms it has (R ignores it
silently, which hides typos). Terms compare by their text with spaces removed, and
interactions whatever the order of their factors (``b:a`` is ``a:b``).
"""

from __future__ import annotations

import re

from .._errors import FormulaError
from .parse import _check_balanced, _enclosed, _find_top, _power_inside_calls, _split_top

__all__ = ["rhs_terms", "update_formula"]

#: A backticked name that needs no backticks (``x`` or R's dotted ``my.var``).
_PLAIN_QUOTED = re.compile(r"`([A-Za-z_.][A-Za-z0-9_.]*)`")
#: A ``.`` that stands alone: not part of a name (``my.var``), a number (``0.5``) or ``..``.
_DOT = re.compile(r"(?<![A-Za-z0-9_.`])\.(?![A-Za-z0-9_.`])")
_COVARIANCE_CALL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*\(")


def _sides(formula: str, what: str) -> tuple[str, str]:
    text = " ".join(str(formula).split())
    _check_balanced(text)
    parts = _split_top(text, "~")
    if len(parts) == 1:
        return "", text.strip()
    if len(parts) != 2:
        raise FormulaError(f"the {what} formula {formula!r} has more than one '~'")
    return parts[0][1].strip(), parts[1][1].strip()


def _key(term: str) -> str:
    """Comparison key: no spaces, ``^`` inside calls as the parser reads it (``I(x^2)`` is
    ``I(x**2)``), no backticks around plain names, the factors of an interaction sorted."""
    text = _PLAIN_QUOTED.sub(r"\1", _power_inside_calls(re.sub(r"\s+", "", term)))
    if _enclosed(text) is None and _find_top(text, ":") >= 0:
        return ":".join(sorted(p for _, p in _split_top(text, ":")))
    return text


def _is_random(term: str) -> bool:
    inner = _enclosed(term)
    if inner is not None:
        return _find_top(inner, "|") >= 0
    if _COVARIANCE_CALL.match(term) and term.endswith(")"):
        body = term[term.index("(") + 1:-1]
        return _find_top(body, "|") >= 0
    return False


def _signed_terms(rhs: str) -> list[tuple[str, str]]:
    """Top-level ``(sign, term)`` pieces of a right-hand side (sign ``+`` or ``-``)."""
    out = []
    for sign, raw in _split_top(rhs, "+-"):
        term = raw.strip()
        if term:
            out.append(("-" if sign == "-" else "+", term))
    return out


def _expand_fixed(terms: list[str]) -> list[str]:
    """Expand ``*``, ``/``, ``^`` and parentheses of fixed terms into single terms, in the
    order formulaic gives them (intercept handling is done by the caller)."""
    needs = [t for t in terms if re.search(r"[*/^]", re.sub(r"\([^()]*\)", "", t))
             or (_enclosed(t) is not None)]
    if not needs:
        return terms
    from formulaic import Formula

    out: list[str] = []
    for t in terms:
        if t not in needs:
            out.append(t)
            continue
        try:
            parsed = Formula(t)
        except Exception as exc:  # formulaic's own syntax errors
            raise FormulaError(f"cannot expand the term {t!r}: {exc}") from exc
        for term in parsed:
            if str(term) == "1":
                continue
            out.append(":".join(_factor_text(f) for f in term.factors))
    return out


def _factor_text(factor) -> str:
    text = str(factor.expr)
    if getattr(factor, "eval_method", None) is not None and \
            str(factor.eval_method).endswith("LOOKUP") and not re.match(r"^[A-Za-z_.][\w.]*$",
                                                                        text):
        return f"`{text}`"
    return text


def _substitute_lhs(new_lhs: str, old_lhs: str) -> str:
    if not new_lhs or new_lhs.strip() == ".":
        return old_lhs
    # parentheses only where the old response has a top-level operator (a + b)
    atomic = len(_split_top(old_lhs, "+-*/^:")) == 1
    return _DOT.sub(lambda _: old_lhs if atomic else f"({old_lhs})", new_lhs)


def _expand_dots(new_rhs: str, old_terms: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Replace ``.`` in the new right-hand side by the old terms."""
    old_fixed = [t for s, t in old_terms if not _is_random(t) and s == "+"]
    out: list[tuple[str, str]] = []
    for sign, term in _signed_terms(new_rhs):
        if term == ".":
            if sign == "-":
                raise FormulaError("'- .' (removing every term) is not supported; write the "
                                   "new formula out instead")
            out.extend(old_terms)
        elif _DOT.search(term):
            if any(_is_random(t) for _, t in old_terms) and _DOT.search(term):
                fixed = " + ".join(old_fixed) or "1"
                term = _DOT.sub(f"({fixed})", term)
            else:
                term = _DOT.sub(f"({' + '.join(t for _, t in old_terms)})", term)
            out.append((sign, term))
        else:
            out.append((sign, term))
    return out


def _intercept_state(sign: str, term: str) -> bool | None:
    """True/False when ``term`` sets the intercept on/off, None otherwise."""
    if term == "1":
        return sign == "+"
    if term == "0":
        return sign == "-"
    return None


def _simplify(pieces: list[tuple[str, str]], new: str) -> tuple[list[str], bool]:
    """Apply additions and removals in order: (terms kept, intercept)."""
    intercept = True
    kept: list[str] = []
    keys: list[str] = []
    for sign, term in pieces:
        state = _intercept_state(sign, term)
        if state is not None:
            intercept = state
            continue
        random = _is_random(term)
        group = [term] if random else _expand_fixed([term])
        for t in group:
            k = _key(t)
            if sign == "+":
                if k not in keys:
                    kept.append(t)
                    keys.append(k)
            elif k in keys:
                i = keys.index(k)
                del kept[i], keys[i]
            else:
                raise FormulaError(
                    f"update formula {new!r} removes {t!r}, which the model does not have; "
                    f"its terms are {', '.join(kept) or 'none'}")
    return kept, intercept


def rhs_terms(rhs: str) -> list[str]:
    """The single fixed-effect terms a one-sided formula's right-hand side adds
    (``"~ a * b + c"`` -> ``a``, ``b``, ``a:b``, ``c``), the way R's ``terms`` labels a
    ``scope``; the intercept and subtracted terms are left out.

    Parameters
    ----------
    rhs : str
        ``"~ ..."`` or the right-hand side alone.

    Returns
    -------
    list of str
    """
    text = rhs.strip()
    if text.startswith("~"):
        text = text[1:]
    added = [t for sign, t in _signed_terms(text) if sign == "+" and t not in ("0", "1")]
    return list(dict.fromkeys(_expand_fixed(added)))


def update_formula(old: str, new: str) -> str:
    """The formula ``new`` with ``.`` standing for the parts of ``old`` (R's
    ``update.formula``; see the module docstring).

    Parameters
    ----------
    old : str
        The formula of the fit.
    new : str
        The update: ``". ~ . + x"``, ``". ~ . - (Days | Subject)"``, ``"log(.) ~ ."``,
        ``"~ . + z"`` (keeps the response), or a formula without ``.``.

    Returns
    -------
    str
        The new formula, terms added and removed.

    Raises
    ------
    FormulaError
        A removed term the model does not have, an empty right-hand side, or one that
        ends with an operator.

    Examples
    --------
    >>> update_formula("Reaction ~ Days + (Days | Subject)", ". ~ . - Days")
    'Reaction ~ (Days | Subject)'
    >>> update_formula("y ~ x + (1 | g)", "log(.) ~ . + z")
    'log(y) ~ x + (1 | g) + z'
    """
    old_lhs, old_rhs = _sides(old, "old")
    new_lhs, new_rhs = _sides(new, "new")
    if not old_lhs:
        raise FormulaError(f"the formula {old!r} has no response")
    lhs = _substitute_lhs(new_lhs, old_lhs)
    if not new_rhs:
        raise FormulaError(f"the update formula {new!r} has nothing on the right of '~'")
    if new_rhs[-1] in "+-*:/^|":
        # R cannot parse it either ('unexpected end of input'); dropped silently before
        raise FormulaError(f"the update formula {new!r} ends with {new_rhs[-1]!r}: a term "
                           "is missing after it")
    pieces = _expand_dots(new_rhs, _signed_terms(old_rhs))
    terms, intercept = _simplify(pieces, new)
    fixed = [t for t in terms if not _is_random(t)]
    random = [t for t in terms if _is_random(t)]
    parts = ([] if intercept or not (fixed or random) else ["0"]) + fixed + random
    if not parts or (not intercept and parts == ["0"]):
        parts = ["1"] if intercept else ["0"]
    return f"{lhs} ~ {' + '.join(parts)}"

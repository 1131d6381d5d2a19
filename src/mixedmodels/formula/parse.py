"""Parse lme4 / glmmTMB-style mixed-model formulas into a :class:`MixedModelSpec`.

Grammar handled here (everything else in the fixed part is formulaic's job)::

    response ~ fixed_terms + (expr | group) + (expr || group) + kw(expr | group) + offset(e)

* ``(expr || g)`` expands as lme4 does: ``(1 | g) + (0 + t1 | g) + (0 + t2 | g) + ...`` for the
  terms ``t1, t2, ...`` of ``expr`` (the ``(1 | g)`` only when ``expr`` has an intercept).
* ``(expr | a/b)`` expands to ``(expr | b:a) + (expr | a)``; ``a/b/c`` to ``c:b:a``, ``b:a``,
  ``a`` -- lme4's names and order.
* ``kw(expr | g)`` with ``kw`` a glmmTMB covariance keyword records the structure.
* R spellings are translated for formulaic: ``factor(x)`` -> ``C(x)``, ``^`` inside a
  function call -> ``**`` (``I(x^2)``; Python's ``^`` would be a bitwise xor), dotted column
  names such as ``my.var`` -> ```my.var```.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

from .._errors import FormulaError, FormulaWarning
from .._messages import user_stacklevel
from ..covariance.registry import KEYWORDS, normalize_options
from .checks import check_python_calls, drop_response
from .spec import MixedModelSpec, RandomTerm

__all__ = ["COVARIANCE_KEYWORDS", "parse_formula"]

#: glmmTMB's covariance-structure keywords accepted around a bar term: the covariance
#: registry's (:data:`mixedmodels.covariance.REGISTRY`), not a copy.
COVARIANCE_KEYWORDS = KEYWORDS
#: ``name = value`` argument of a structure call (``hom = FALSE``, ``d = 2``)
_NAMED_ARG = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(?!=)\s*(.*?)\s*$", re.DOTALL)

# R names: letters (any script: ``sujét``), digits, '_' and '.', not starting with a digit or
# with '.' and a digit; or anything between backticks.
_IDENT = re.compile(r"^(?!\d|\.\d)[\w.]+$|^`[^`]+`$")
_CALL = re.compile(r"^((?!\d)\w+)\s*\((.*)\)$", re.DOTALL)
_FACTOR_CALL = re.compile(r"(?<![\w.])factor\s*\(")
_NAME_CHAR = re.compile(r"[\w.]")
# an R-style dotted name (my.var, x.1) that is not a call (np.log(...)) nor inside a number
_DOTTED = re.compile(r"(?<![\w.])(?!\d)\w+(?:\.\w+)+(?![\w(])")
# attribute access that is not a dotted column name: modules and formulaic's contrasts
# registry (``C(x, contr.sum)``)
_MODULES = frozenset({"np", "numpy", "math", "scipy", "contr"})
# pieces of an expression that are already quoted: backticked names and string literals
_QUOTED = re.compile(r"(`[^`]*`|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")")


def _check_balanced(text: str) -> None:
    """Refuse unbalanced parentheses, pointing at the offending one (1-based character)."""
    open_at: list[int] = []
    for pos, ch in enumerate(text):
        if ch == "(":
            open_at.append(pos)
        elif ch == ")":
            if not open_at:
                raise FormulaError(
                    f"unbalanced ')' at character {pos + 1} of formula {text!r}: "
                    f"{text[:pos + 1]!r} closes a '(' that was never opened"
                )
            open_at.pop()
    if open_at:
        pos = open_at[0] if len(open_at) > 1 else open_at[-1]
        raise FormulaError(
            f"formula {text!r} has {len(open_at)} unclosed '(' (the "
            f"{'first ' if len(open_at) > 1 else ''}one at character {pos + 1}: "
            f"{text[pos:pos + 20]!r})"
        )


def _split_top(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at depth-0 characters in ``seps``; return (separator, piece) pairs.

    The first piece gets separator ``""``. Parentheses protect their contents, so
    ``I(x - 1)`` and ``(Days | Subject)`` stay whole.
    """
    pieces: list[tuple[str, str]] = []
    depth, start, sep = 0, 0, ""
    for pos, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in seps:
            # '**' and 'e-5' style exponents never appear at depth 0 in a sensible formula;
            # a '-' right after another operator is a unary minus and stays with its term.
            pieces.append((sep, text[start:pos]))
            sep, start = ch, pos + 1
    pieces.append((sep, text[start:]))
    return pieces


def _find_top(text: str, token: str) -> int:
    depth = 0
    for pos in range(len(text)):
        ch = text[pos]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and text.startswith(token, pos):
            return pos
    return -1


def _enclosed(term: str) -> str | None:
    """Inside of ``term`` when the whole term is one parenthesised group, else None."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    depth = 0
    for pos, ch in enumerate(term):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and pos != len(term) - 1:
                return None
    return term[1:-1]


def _has_nested_bar(term: str) -> bool:
    """True when ``term`` holds a bare ``( ... | ... )`` group inside it (``I(x + (1 | g))``);
    a call's own parentheses (``I(a | b)``, a boolean or) do not count."""
    for start, ch in enumerate(term):
        if ch != "(":
            continue
        before = term[:start].rstrip()
        if before and _NAME_CHAR.match(before[-1]):
            continue  # a call's own parentheses
        depth = 0
        for pos in range(start, len(term)):
            depth += {"(": 1, ")": -1}.get(term[pos], 0)
            if depth == 0:
                if _find_top(term[start + 1:pos], "|") >= 0:
                    return True
                break
    return False


def _rewrite_inside_calls(expr: str, pattern: re.Pattern, replace) -> str:
    """``expr`` with each match of ``pattern`` that lies inside a function call's
    parentheses replaced by ``replace(match text)``; backticked names and string literals
    are copied as they are (a column named ``x^2`` stays ``x^2``)."""
    starts = {m.start(): m.group(0) for m in pattern.finditer(expr)}
    if not starts:
        return expr
    quoted = {m.start(): m.end() for m in _QUOTED.finditer(expr)}
    out, calls, pos = [], [], 0  # calls: for each open parenthesis, whether it is a call's
    while pos < len(expr):
        if pos in quoted:
            out.append(expr[pos:quoted[pos]])
            pos = quoted[pos]
            continue
        ch = expr[pos]
        if ch == "(":
            before = expr[:pos].rstrip()
            calls.append(bool(before) and bool(_NAME_CHAR.match(before[-1])))
        elif ch == ")" and calls:
            calls.pop()
        elif pos in starts and any(calls):
            out.append(replace(starts[pos]))
            pos += len(starts[pos])
            continue
        out.append(ch)
        pos += 1
    return "".join(out)


_CARET = re.compile(r"\^")


def _power_inside_calls(expr: str) -> str:
    """``^`` inside a function call is R's power: ``I(x^2)`` -> ``I(x**2)``.

    Inside a call formulaic evaluates Python, where ``^`` is a bitwise xor -- silently wrong
    numbers for an R user's ``I(x^2)``. At the formula level ``(a + b)^2`` keeps its meaning
    (all interactions up to order 2), in R and in formulaic alike.
    """
    if "^" not in expr:
        return expr
    return _rewrite_inside_calls(expr, _CARET, lambda _: "**")


#: R's logical constants as words (not part of a longer name such as ``TRUE_x``).
_R_LOGICAL = re.compile(r"(?<![\w.])(?:TRUE|FALSE)(?![\w.])")


def _logicals_inside_calls(expr: str) -> str:
    """R's ``TRUE`` / ``FALSE`` inside a function call are Python's ``True`` / ``False``:
    ``poly(x, 2, raw = TRUE)`` -> ``poly(x, 2, raw = True)``.

    formulaic evaluates a call's arguments as Python, where ``TRUE`` is a name: it looked
    for a column called ``TRUE`` ("column(s) not found"). Both are reserved words in R, so
    no column of an R user's formula has either name.
    """
    if "TRUE" not in expr and "FALSE" not in expr:
        return expr
    return _rewrite_inside_calls(expr, _R_LOGICAL, lambda word: word.title())


def _quote_dotted(expr: str) -> str:
    """Backtick R-style dotted column names (``my.var`` -> ```my.var```) for formulaic, which
    would read them as attribute access; module references (``np.log``) are left alone."""

    def quote(m: re.Match) -> str:
        name = m.group(0)
        if name.split(".", 1)[0] in _MODULES:
            return name
        return f"`{name}`"

    pieces = _QUOTED.split(expr)  # odd pieces are backticked names or string literals
    for i in range(0, len(pieces), 2):
        pieces[i] = _DOTTED.sub(quote, pieces[i])
    return "".join(pieces)


def _translate_r(expr: str) -> str:
    """R spellings formulaic does not know: ``factor(x)`` -> ``C(x)``, ``I(x^2)`` ->
    ``I(x**2)``, ``TRUE`` inside a call -> ``True``, dotted column names."""
    return _quote_dotted(_logicals_inside_calls(
        _power_inside_calls(_FACTOR_CALL.sub("C(", expr))))


def _group_name(text: str, source: str) -> str:
    """One grouping variable: a column name (``Subject``, ``my.var``) or a backticked one."""
    name = text.strip()
    while (inner := _enclosed(name)) is not None:
        name = inner.strip()
    if _IDENT.match(name):
        return name.strip("`")
    if not name:
        raise FormulaError(f"grouping expression in {source!r} has an empty part around ':'")
    if _find_top(name, "+") >= 0 or _find_top(name, "*") >= 0:
        hint = ("for crossed factors write separate terms, (1 | a) + (1 | b); for their "
                "combinations write (1 | a:b)")
    else:
        hint = ("compute it as a column of the data first (data['g'] = ...) and write "
                "(... | g)")
    raise FormulaError(
        f"grouping factor {name!r} in random-effects term {source!r} is not a column name; "
        f"{hint}"
    )


def _group_vars(group: str, source: str) -> list[tuple[str, ...]]:
    """Expand a grouping expression into lme4's list of interaction terms."""
    levels = [p.strip() for _, p in _split_top(group, "/")]
    if any(not p for p in levels):
        raise FormulaError(
            f"grouping expression {group!r} in {source!r} is incomplete: '/' needs a factor "
            "on each side, as in (1 | a/b)"
        )
    parsed = []
    for part in levels:
        inner = _enclosed(part)
        part = inner if inner is not None else part
        parsed.append(tuple(_group_name(v, source) for _, v in _split_top(part, ":")))
    # a/b/c -> c:b:a, b:a, a (innermost first, as lme4's expandSlash produces them)
    out = []
    for depth in range(len(parsed), 0, -1):
        combined: tuple[str, ...] = ()
        for names in reversed(parsed[:depth]):
            combined += names
        out.append(combined)
    return out


def _check_terms(expr: str, where: str) -> None:
    """Refuse a dangling ``+`` or ``-`` (``x +``, ``+ + x``) with a message naming ``where``.

    A leading sign (``-1 + x``) is fine; formulaic would accept some of these silently
    (``x + + z``) and refuse others with a message about operators, not about the term.
    """
    pieces = _split_top(expr, "+-")
    for k, (sign, piece) in enumerate(pieces):
        if piece.strip() or (k == 0 and len(pieces) > 1):
            continue
        before = pieces[k - 1][1].strip() if k else ""
        after = f" after {before!r}" if before else ""
        raise FormulaError(
            f"{where} has a '{sign}' with nothing next to it{after}; "
            "remove it or add the missing term"
        )


def _expand_double_bar(expr: str, source: str) -> list[str]:
    from formulaic import Formula

    try:
        terms = [str(t) for t in Formula(expr)]
    except Exception as exc:  # formulaic's own parse errors
        raise FormulaError(
            f"cannot parse {expr!r} in random-effects term {source!r}: {exc}"
        ) from exc
    out = ["1"] if "1" in terms else []
    out += [f"0 + {t}" for t in terms if t != "1"]
    return out


def _structure_call(args: str, keyword: str, source: str):
    """``kw(bar, arg, name = value)``: the bar term and the structure's options."""
    pieces = [piece for _, piece in _split_top(args, ",")]
    bar, rest = pieces[0], pieces[1:]
    if _find_top(bar, "|") < 0:
        raise FormulaError(f"{source!r}: the first argument of {keyword}() must be the "
                           f"random-effects term, e.g. {keyword}(0 + factor(time) | g)")
    positional, named = [], {}
    for piece in rest:
        if not piece.strip():
            raise FormulaError(f"{source!r} has an empty argument after a ','")
        m = _NAMED_ARG.match(piece)
        if m:
            named[m.group(1)] = m.group(2)
        elif named:
            raise FormulaError(f"{source!r}: a positional argument follows a named one")
        else:
            positional.append(piece.strip())
    return bar, normalize_options(keyword, positional, named, source)


def _parse_bar(inner: str, structure: str, source: str, options=()) -> list[RandomTerm]:
    pos = _find_top(inner, "||")
    double = pos >= 0
    if not double:
        pos = _find_top(inner, "|")
    expr, group = inner[:pos].strip(), inner[pos + (2 if double else 1):].strip()
    if _find_top(group, "|") >= 0:
        raise FormulaError(f"random-effects term {source!r} has more than one '|'")
    if not group:
        raise FormulaError(
            f"random-effects term {source!r} has no grouping variable after '|'; "
            "write it as (expr | group), e.g. (1 | Subject)"
        )
    if not expr:
        raise FormulaError(
            f"random-effects term {source!r} has nothing before '|'; write (1 | group) for a "
            "random intercept"
        )
    if double and structure != "us":
        raise FormulaError(f"'||' cannot be combined with {structure}() in {source!r}")
    _check_terms(expr, f"random-effects term {source!r}")
    exprs = _expand_double_bar(_translate_r(expr), source) if double else [_translate_r(expr)]
    terms = []
    for e in exprs:
        for gv in _group_vars(group, source):
            terms.append(
                RandomTerm(expr=e, group=":".join(gv), group_vars=gv, structure=structure,
                           source=source, options=options)
            )
    return terms


def _join_fixed(fixed: list[str]) -> str:
    """The fixed-effects right-hand side from its signed pieces (``"1"`` when empty)."""
    text = " ".join(fixed).strip()
    if text.startswith("+"):
        text = text[1:].strip()
    if not text:
        return "1"
    return "1 " + text if text.startswith("-") else text


def parse_formula(formula: str) -> MixedModelSpec:
    """Parse a mixed-model formula string.

    As R does, a term equal to the response (``y ~ y + x``) is dropped from the right-hand
    side with a :class:`~mixedmodels.FormulaWarning`. Parsing is cached: refitting loops
    parse each formula once.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    MixedModelSpec

    Raises
    ------
    FormulaError
        For syntax errors (unbalanced parentheses, a missing ``~`` or response, a bar term
        without a grouping variable, a subtracted random-effects term), naming the term.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    spec, notes = _parse(formula)
    for note in notes:
        warnings.warn(note, FormulaWarning, stacklevel=user_stacklevel())
    return spec


@lru_cache(maxsize=512)
def _parse(formula: str) -> tuple[MixedModelSpec, tuple[str, ...]]:
    """:func:`parse_formula` without its warnings, which are returned as messages."""
    text = " ".join(formula.split())
    _check_balanced(text)
    sides = _split_top(text, "~")
    if len(sides) != 2:
        raise FormulaError(
            f"formula {formula!r} must have exactly one '~' separating response and predictors"
        )
    lhs, rhs = sides[0][1].strip(), sides[1][1].strip()
    if not lhs:
        raise FormulaError(f"formula {formula!r} has no response on the left of '~'")
    if not rhs:
        raise FormulaError(f"formula {formula!r} has nothing on the right of '~'")

    fixed: list[str] = []
    offsets: list[str] = []
    random: list[RandomTerm] = []
    previous = ""
    for sign, raw in _split_top(rhs, "+-"):
        term = raw.strip()
        if not term:
            if sign == "-" or (not fixed and not random and not offsets):
                continue  # leading sign or '- -'; formulaic sees the sign on the next term
            after = f" after {previous!r}" if previous else ""
            raise FormulaError(
                f"formula {formula!r} has a '{sign}' with nothing next to it{after}; remove "
                "it or add the missing term"
            )
        previous = term
        inner = _enclosed(term)
        # ((1 | g)) is (1 | g), as in lme4's findbars
        while inner is not None and _find_top(inner, "|") < 0 and \
                _enclosed(inner.strip()) is not None:
            inner = _enclosed(inner.strip())
        call = _CALL.match(term)
        options = ()
        if inner is not None and _find_top(inner, "|") >= 0:
            bar, structure = inner, "us"
        elif call and call.group(1) in COVARIANCE_KEYWORDS and _find_top(call.group(2), "|") >= 0:
            structure = call.group(1)
            bar, options = _structure_call(call.group(2), structure, term)
        elif call and call.group(1) == "offset":
            if sign == "-":
                raise FormulaError(f"an offset cannot be subtracted: '- {term}'")
            if not call.group(2).strip():
                raise FormulaError(
                    f"{term!r} in formula {formula!r} is empty; write the offset's expression "
                    "inside, e.g. offset(log(exposure))"
                )
            offsets.append(_translate_r(call.group(2).strip()))
            continue
        else:
            if _find_top(term, "|") >= 0:
                raise FormulaError(
                    f"term {term!r} contains '|' but is not a parenthesised random-effects "
                    "term; write (expr | group)"
                )
            if _has_nested_bar(term):
                raise FormulaError(
                    f"term {term!r} has a random-effects term inside a function call; write "
                    "random-effects terms at the top level of the formula, (expr | group)"
                )
            fixed.append(f"{sign} {_translate_r(term)}" if sign else _translate_r(term))
            continue
        if sign == "-":
            raise FormulaError(f"a random-effects term cannot be subtracted: '- {term}'")
        random.extend(_parse_bar(bar, structure, term, options))

    fixed_text = _join_fixed(fixed)
    check_python_calls(text, f"formula {formula!r}")
    notes = []
    response = _translate_r(lhs)
    fixed_text, dropped = drop_response(response, fixed_text)
    if dropped:
        # a plain '+ y' piece is simply left out; 'x*y' keeps formulaic's '- y'
        plain = _join_fixed([f for f in fixed if f.lstrip("+ ") != response])
        if not drop_response(response, plain)[1]:
            fixed_text = plain
        notes.append(f"the response {lhs!r} appeared on the right-hand side of {formula!r} and "
                     "was dropped (as R does); remove it from the predictors")
    if not _IDENT.match(lhs):
        lhs = _translate_r(lhs)
    spec = MixedModelSpec(
        formula=formula,
        response=lhs,
        fixed=fixed_text,
        offsets=tuple(offsets),
        random=tuple(random),
    )
    return spec, tuple(notes)

"""Which data columns a formula expression reads.

formulaic's ``required_variables`` skips the arguments of stateful transforms such as
``scale(x)``, so missing-value handling and the "column not found" check use this small
tokenizer instead: a variable is a name that is not called (``log(``), not an attribute base
(``np.``), not an attribute (``.x``) and not a keyword argument (``base=``).
"""

from __future__ import annotations

import io
import keyword
import re
import token
import tokenize
from functools import lru_cache

__all__ = ["expression_variables"]

_BACKTICK = re.compile(r"`([^`]+)`")
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
# Names formulaic evaluates in its own context rather than from the data.
_CONTEXT_NAMES = frozenset({"np", "numpy", "pi", "e", "inf", "nan", "True", "False", "None"})


def expression_variables(expr: str) -> list[str]:
    """Names of the data columns referenced by ``expr``, in order of first appearance.

    Parameters
    ----------
    expr : str
        A formula fragment such as ``"log(y) + I(x**2) + scale(z) + a:b"``.
    """
    # cached: the same few expressions are tokenized on every fit of a refitting loop
    return list(_variables(expr))


@lru_cache(maxsize=1024)
def _variables(expr: str) -> tuple[str, ...]:
    if _DOTTED_NAME.match(expr.strip()):
        return (expr.strip(),)  # a bare R-style column name such as Reaction.time
    found: list[str] = []
    quoted = _BACKTICK.findall(expr)
    found.extend(q for q in quoted if q not in found)
    text = _BACKTICK.sub(" 0 ", expr).replace("~", " + ").replace("|", " + ")
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in (token.NEWLINE, token.NL, token.ENDMARKER, token.INDENT,
                                  token.DEDENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        toks = []
    for i, tok in enumerate(toks):
        if tok.type != token.NAME or keyword.iskeyword(tok.string):
            continue
        if tok.string in _CONTEXT_NAMES:
            continue
        nxt = toks[i + 1].string if i + 1 < len(toks) else ""
        prev = toks[i - 1].string if i > 0 else ""
        if nxt in ("(", ".", "=") or prev == ".":
            continue
        if tok.string not in found:
            found.append(tok.string)
    return tuple(found)

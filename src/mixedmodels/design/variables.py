"""Which data columns a formula expression reads, found with formulaic's own parser.

formulaic's tokenizer splits an expression into names (looked up in the data by name,
whatever characters they hold: ``class``, ``sujét``, a backticked ``body mass``), Python code
(calls: ``log(x)``, ``scale(x)``, ``C(f, Sum)``, ``Q('body mass')``), operators and values.
Python code is walked as formulaic's variable extraction walks it, with one difference:
formulaic's ``required_variables`` loses the arguments of stateful transforms such as
``scale(x)`` (it evaluates them to ask the transform, which fails without data), so here the
arguments of every call are walked, and a transform is asked for its variables only when its
arguments are literals (``Q('body mass')`` names the column ``body mass``).

A name is one of

* **data**: must be a column of the data (``x`` in ``log(x)``);
* **context**: a name formulaic also knows (``Sum`` and ``contr`` in ``C(f, Sum)``,
  ``C(f, contr.sum)``; ``np``): a column when the data has one (formulaic looks in the data
  first), otherwise formulaic's;
* **called**: a function (``I`` in ``I(x**2)``, ``np`` in ``np.log(x)``), never a column --
  R, too, skips non-functions when it looks up a function, so a column named ``I`` does not
  break ``I(a / b)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["called_names", "expression_variables"]

DATA, CONTEXT, CALLED = "data", "context", "called"


def expression_variables(expr: str, columns: Iterable | None = None) -> list[str]:
    """Names of the data columns ``expr`` reads, in order of first appearance.

    Parameters
    ----------
    expr : str
        A formula right-hand side (``"log(y) + I(x**2) + scale(z) + a:b"``) or a Python
        expression (``"size - incidence"``).
    columns : iterable, optional
        The data's column names: names formulaic also knows (``Sum``, ``np``) count as
        columns when the data has them. Without ``columns`` they never do.
    """
    names = _names(expr)
    if columns is None:
        return [n for n, kind in names if kind == DATA]
    present = columns if isinstance(columns, set | frozenset) else set(columns)
    return [n for n, kind in names if kind == DATA or (kind == CONTEXT and n in present)]


def called_names(expr: str) -> frozenset[str]:
    """Names ``expr`` only calls as functions (``I``, ``log``, ``np``)."""
    return frozenset(n for n, kind in _names(expr) if kind == CALLED)


@lru_cache(maxsize=2048)
def _names(expr: str) -> tuple[tuple[str, str], ...]:
    """(name, kind) pairs of ``expr``, unique, in order; cached (refitting loops re-read the
    same few expressions)."""
    from formulaic.parser.algos.tokenize import tokenize

    from .materializer import transform_names

    known = transform_names()
    found: dict[str, str] = {}

    def add(name: str, kind: str) -> None:
        # a name both read and called is read (it must then be a column)
        if name not in found or (found[name] == CALLED and kind != CALLED):
            found[name] = kind

    try:
        tokens = list(tokenize(expr))
    except Exception:  # formulaic reports its syntax errors later, with the context
        return ()
    for tok in tokens:
        kind = tok.kind.value
        if kind == "name":
            add(tok.token, CONTEXT if tok.token in known else DATA)
        elif kind == "python":
            for name, role in _python_names(tok.token, known):
                add(name, role)
    return tuple(found.items())


def _python_names(code: str, known: frozenset[str]) -> list[tuple[str, str]]:
    from formulaic.utils.code import sanitize_variable_names

    aliases: dict[str, str] = {}
    try:
        tree = ast.parse(sanitize_variable_names(code, {}, aliases), mode="eval")
    except SyntaxError:  # keywords are refused by the parser; formulaic reports the rest
        return []
    out: list[tuple[str, str]] = []
    _walk(tree.body, out, aliases, known)
    return out


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _walk(node: ast.AST, out: list, aliases: dict, known: frozenset[str]) -> None:
    """Append (name, kind) for ``node`` in source order (see the module docstring)."""
    if isinstance(node, ast.Call):
        func = node.func
        root = _root(func)
        if root is None:
            _walk(func, out, aliases, known)
        elif isinstance(func, ast.Name) or root in known:
            out.append((aliases.get(root, root), CALLED))
        else:  # a method of a column: x.fillna(0)
            out.append((aliases.get(root, root), DATA))
        delegated = _delegated(func, node, known) if isinstance(func, ast.Name) else None
        if delegated is not None:
            out.extend((name, DATA) for name in delegated)
            return
        for arg in node.args:
            _walk(arg, out, aliases, known)
        for kw in node.keywords:
            _walk(kw.value, out, aliases, known)
    elif isinstance(node, ast.Attribute | ast.Name):
        root = _root(node)
        if root is None:
            _walk(node.value, out, aliases, known)
            return
        name = aliases.get(root, root)
        out.append((name, CONTEXT if root in known and root not in aliases else DATA))
    else:
        for child in ast.iter_child_nodes(node):
            _walk(child, out, aliases, known)


def _delegated(func: ast.Name, call: ast.Call, known: frozenset[str]) -> list[str] | None:
    """Variables a stateful transform names itself (``Q('body mass')``), when its arguments
    are literals; None when the arguments are to be walked instead."""
    if func.id not in known:
        return None
    from formulaic.transforms import TRANSFORMS

    transform = TRANSFORMS[func.id]
    if not getattr(transform, "__is_stateful_transform__", False):
        return None
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except ValueError:
        return None
    if func.id == "Q" and len(args) == 1 and isinstance(args[0], str) and not kwargs:
        return [args[0]]  # patsy's quoting (formulaic < 1.2 cannot say so itself)
    asker = getattr(transform, "get_required_variables", None)
    try:
        names = [str(v) for v in asker(*args, **kwargs)] if asker is not None else []
    except Exception:  # the transform cannot say: walk the arguments instead
        return None
    return names or None

"""R's names of the fixed-effect coefficients, built from formulaic's model spec.

lme4 names a coefficient as R's ``model.matrix`` names the column: ``(Intercept)``; a numeric
term by its deparsed expression (``Days``, ``I(age^2)``, ``log(x + 10)``, a non-syntactic name
in backticks: ```body mass```); a factor's column by the factor's name and its contrast
column (``SexFemale``, ``x.L``, ``f1`` -- see :mod:`.contrasts`); an interaction by joining
its factors' parts with ``:`` (``age:SexFemale``). The pieces come from the model spec: each
term's scoped factors, whether each factor is coded in full or reduced rank, its levels and
contrasts. Python expressions are deparsed from their syntax tree with R's operator spelling
(``x**2`` is ``x^2``, strings in double quotes, ``True`` is ``TRUE``); ``C(x)`` is written
``factor(x)``, its R spelling, and ``Q('a b')`` is the column ```a b```.
"""

from __future__ import annotations

import ast
import functools
import itertools
import keyword
import re

from .contrasts import r_contrast_suffixes

__all__ = ["INTERCEPT", "deparse_python", "r_coefficient_names", "r_label", "r_name_of",
           "shown_names", "simple_r_names"]

INTERCEPT = "(Intercept)"

_R_RESERVED = frozenset({
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE",
    "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "in",
})
_R_SYNTACTIC = re.compile(r"^((?!\d)(?!_)[\w.]*|\.)$")
_R_DOT_DIGIT = re.compile(r"^\.\d")

# R's operator precedence (higher binds tighter) and spelling for Python's binary operators
_BINOPS = {ast.Pow: ("^", 14, False), ast.Mult: ("*", 10, True), ast.Div: ("/", 10, True),
           ast.Mod: ("%%", 11, True), ast.FloorDiv: ("%/%", 11, True),
           ast.MatMult: ("%*%", 11, True), ast.Add: ("+", 9, True), ast.Sub: ("-", 9, True)}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
           ast.GtE: ">="}
_UNARY_PREC, _CMP_PREC, _NOT_PREC, _AND_PREC, _OR_PREC, _ATOM = 13, 7, 6, 5, 4, 20


def r_name_of(column: str) -> str:
    """A column name as R deparses it: as is when syntactic, else in backticks."""
    if _R_SYNTACTIC.match(column) and not _R_DOT_DIGIT.match(column) \
            and column not in _R_RESERVED and column:
        return column
    return "`" + column.replace("`", "\\`") + "`"


def r_label(value) -> str:
    """A level as R prints it in a coefficient name (``TRUE``, ``3`` for 3.0)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return r_label(value.item())
    return str(value)


def _constant(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return r_label(value) if value.is_integer() else repr(value)
    return repr(value)


class _Deparser:
    """Python expression tree -> R's deparsed text (``aliases`` undo formulaic's renaming of
    backticked names)."""

    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases

    def __call__(self, node: ast.AST) -> tuple[str, int]:
        """(text, precedence of its outermost operator)."""
        if isinstance(node, ast.Name):
            return r_name_of(self.aliases.get(node.id, node.id)), _ATOM
        if isinstance(node, ast.Constant):
            return _constant(node.value), _ATOM
        if isinstance(node, ast.Attribute):
            return f"{self.wrap(node.value, _ATOM)}.{node.attr}", _ATOM
        if isinstance(node, ast.Call):
            return self.call(node), _ATOM
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op, prec, left_assoc = _BINOPS[type(node.op)]
            left = self.wrap(node.left, prec if left_assoc else prec + 1)
            right = self.wrap(node.right, prec + 1 if left_assoc else prec)
            return (f"{left}^{right}" if op == "^" else f"{left} {op} {right}"), prec
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return "!" + self.wrap(node.operand, _NOT_PREC), _NOT_PREC
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return sign + self.wrap(node.operand, _UNARY_PREC), _UNARY_PREC
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and \
                type(node.ops[0]) in _CMPOPS:
            left = self.wrap(node.left, _CMP_PREC + 1)
            right = self.wrap(node.comparators[0], _CMP_PREC + 1)
            return f"{left} {_CMPOPS[type(node.ops[0])]} {right}", _CMP_PREC
        if isinstance(node, ast.BoolOp):
            op, prec = ("&", _AND_PREC) if isinstance(node.op, ast.And) else ("|", _OR_PREC)
            return f" {op} ".join(self.wrap(v, prec + 1) for v in node.values), prec
        if isinstance(node, ast.Subscript):
            return f"{self.wrap(node.value, _ATOM)}[{self(node.slice)[0]}]", _ATOM
        return ast.unparse(node), _ATOM  # nothing R would spell differently that we know of

    def wrap(self, node: ast.AST, need: int) -> str:
        text, prec = self(node)
        return f"({text})" if prec < need else text

    def call(self, node: ast.Call) -> str:
        func = self.wrap(node.func, _ATOM)
        if func == "Q" and len(node.args) == 1 and not node.keywords and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return r_name_of(node.args[0].value)
        if func == "C" and len(node.args) == 1 and not node.keywords:
            func = "factor"
        args = [self(a)[0] for a in node.args]
        args += [f"{k.arg} = {self(k.value)[0]}" if k.arg else f"**{self(k.value)[0]}"
                 for k in node.keywords]
        return f"{func}({', '.join(args)})"


def deparse_python(expr: str) -> str:
    """R's text of a Python expression formulaic evaluates (``I(x ** 2)`` -> ``I(x^2)``,
    ``np.log(x)`` -> ``np.log(x)``); the text itself when it does not parse."""
    from formulaic.utils.code import sanitize_variable_names

    aliases: dict[str, str] = {}
    try:
        tree = ast.parse(sanitize_variable_names(expr, {}, aliases), mode="eval")
    except SyntaxError:
        return expr
    return _Deparser(aliases)(tree.body)[0]


def factor_r_name(factor) -> str:
    """R's name of one formulaic factor (a column, or a deparsed Python expression)."""
    if factor.eval_method.value == "lookup":
        return r_name_of(factor.expr)
    if keyword.iskeyword(factor.expr):
        return factor.expr
    return deparse_python(factor.expr)


def _factor(scoped):
    """The formulaic ``Factor`` of a scoped factor (held directly or by its evaluation)."""
    factor = scoped.factor
    return getattr(factor, "factor", factor)


def _factor_parts(scoped, encoder_state, columns: list[str]) -> list[tuple[str, str]] | None:
    """(formulaic column part, R part) of each column one scoped factor contributes to a
    term whose formulaic column names are ``columns``; None when that cannot be told."""
    factor = _factor(scoped)
    name = str(factor)
    r_name = factor_r_name(factor)
    kind, state = encoder_state.get(factor.expr, (None, {}))
    if getattr(kind, "value", kind) != "categorical":
        # a numeric factor with several columns (poly(x, 2), bs(x)): formulaic appends
        # [key] to the factor's name, R appends the key
        keys = re.findall(re.escape(name) + r"\[([^\]]*)\]", "\n".join(columns))
        if keys:
            shift = _raw_poly(factor.expr)
            return [(f"{name}[{k}]", r_name + (str(int(k) + 1) if shift else k))
                    for k in dict.fromkeys(keys)]
        return [(name, r_name)]
    info = state.get("contrasts")
    if info is None:
        return None
    contrasts, levels = info.contrasts, list(info.levels)
    reduced = bool(scoped.reduced)
    fmt = contrasts.get_factor_format(levels, reduced_rank=reduced)
    fields = contrasts.get_coding_column_names(levels, reduced_rank=reduced)
    suffixes = r_contrast_suffixes(contrasts, levels, reduced, r_label)
    return [(fmt.format(name=name, field=f), r_name + s)
            for f, s in zip(fields, suffixes, strict=True)]


def _raw_poly(expr: str) -> bool:
    """Whether ``expr`` is ``poly(x, k, raw=True)``, whose columns formulaic labels by
    position (``[0]``) and R from 1 (:func:`.poly.poly_labels`)."""
    from .poly import poly_arguments

    if not expr.startswith("poly("):
        return False
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return False
    args = poly_arguments(tree) if isinstance(tree, ast.Call) else None
    return args is not None and args[2]


def _term_names(struct, encoder_state) -> list[str] | None:
    """R names of one term's columns, or None when they cannot be derived part by part."""
    out: list[tuple[str, str]] = []
    columns = list(struct.columns)
    for scoped_term in struct.scoped_terms:
        factors = list(scoped_term.factors)
        if not factors:
            out.append(("Intercept", INTERCEPT))
            continue
        parts = [_factor_parts(sf, encoder_state, columns) for sf in factors]
        if any(p is None for p in parts):
            return None
        # formulaic's column order: the first factor varies fastest
        for combo in itertools.product(*reversed(parts)):
            combo = combo[::-1]
            out.append((":".join(p[0] for p in combo), ":".join(p[1] for p in combo)))
    if [c for c, _ in out] != columns:
        return None
    return [r for _, r in out]


def r_coefficient_names(model_spec, columns: list[str]) -> tuple[str, ...]:
    """R's names of the model matrix columns ``columns`` of ``model_spec`` (formulaic's
    names, in order), derived term by term; a term that cannot be derived falls back to a
    textual translation of formulaic's names."""
    out: list[str] = []
    encoder_state = model_spec.encoder_state
    for struct in model_spec.structure:
        names = _term_names(struct, encoder_state)
        out += names if names is not None else [_fallback(c) for c in struct.columns]
    if len(out) != len(columns):  # not expected; never give misaligned names
        return tuple(_fallback(c) for c in columns)
    return tuple(out)


_FIELD = re.compile(r"\[(?:[TSHD]\.)?([^\]]*)\]")


def _fallback(column: str) -> str:
    """Textual translation of a formulaic column name (``x[T.b]`` -> ``xb``)."""
    if column == "Intercept":
        return INTERCEPT
    return _FIELD.sub(r"\1", column).replace(" ** ", "^").replace("**", "^")


@functools.lru_cache(maxsize=1024)
def simple_r_names(names: tuple[str, ...], intercept: bool) -> tuple[str, ...]:
    """R names of a design built without formulaic: the intercept (first, when there is
    one) and plain columns (cached: a pure function of the names)."""
    return tuple(INTERCEPT if (j == 0 and intercept) else r_name_of(n)
                 for j, n in enumerate(names))


def shown_names(names: tuple[str, ...], r_names: tuple[str, ...]) -> tuple[str, ...]:
    """The names results show: formulaic's ``names``, or R's ``r_names`` under the option
    ``coef_names="r"`` (:func:`mixedmodels.options`) when there is one for every column."""
    from .._options import get_options

    if get_options()["coef_names"] == "r" and len(r_names) == len(names):
        return r_names
    return names

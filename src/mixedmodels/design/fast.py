"""Model matrices of factor formulas without formulaic: contrasts and interactions.

formulaic takes 5-10 ms to build ``age * Sex`` or ``spp * mined`` on a few hundred rows --
more than the whole fit of a small mixed model. The formulas of most models are simple:
numeric columns, unordered factors (categorical, text or boolean columns) with the default
treatment contrasts, and interactions of them written with Wilkinson's operators (``a * b``,
``a + b + a:b``, ``(a + b + c)^2``, ``f / x``; :class:`_TermParser`). Those are built here
with numpy in tens of microseconds, with formulaic's column names, order and values:

* terms are ordered by degree, stably (the intercept, main effects as written, then
  two-way interactions ...); a term written twice (``a:b`` and ``b:a``) keeps its first
  spelling;
* a factor is coded by treatment contrasts (``f[T.b]``: the first level is the reference)
  when the intercept, or an earlier factor, absorbs a level; without an intercept the first
  factor main effect is coded in full (``f[a]``, ``f[b]``);
* in an interaction the first factor varies fastest (``a[T.y]:b[T.v], a[T.z]:b[T.v],
  a[T.y]:b[T.w], ...``);
* levels are a categorical's categories in order, sorted values for text, ``False, True``
  for booleans (:mod:`.materializer` makes booleans factors);
* a numeric call -- ``I(Days ** 2)``, ``log(x)``, ``np.sqrt(x / 2)``, ``scale(x)``,
  ``center(x)``, ``I(Days > 4)`` (0/1, as formulaic makes it) -- is a number,
  evaluated by :func:`fast_arithmetic` and named as formulaic names it (the expression as
  :func:`ast.unparse` writes it; R's name deparsed from it: ``I(Days^2)``); ``C(x)``
  (R's ``factor(x)``) is the factor of a text, categorical or integer column
  (``C(Days)[T.1]``, R's ``factor(Days)1``);
* ``poly(x, k)`` (or ``degree=k``) of a numeric expression is ``k`` numbers, the
  orthonormal basis of :mod:`.poly` (``poly(Days, 2)[1]``, R's ``poly(Days, 2)1``), or
  with ``raw=True`` the powers (formulaic's ``[0]`` is R's ``1``);
* ``contrasts=`` (formulaic's sum, Helmert, polynomial, SAS, difference and treatment
  classes) and ordered categoricals (R's ``contr.poly``) code a factor by the contrast's own
  matrix (``f[S.a]``, ``temperature[.L]``; R's ``f1``, ``temperature.L``) where it is
  reduced, by indicators where it is coded in full (:func:`_coding`).

Anything else -- other functions (``scale`` with options, ``C(f)`` with
contrasts, or of a column given contrasts), values that are not finite, a coding matrix or
a contrast of another class, contrasts on numbers or logicals, an
interaction of several factors whose lower-order terms are not all in the formula
(formulaic's coding rule then depends on which terms span which; one factor times numbers
is coded by contrasts when the numbers' product is already spanned, else in full, as
formulaic codes ``f / x``), products of three numbers, single-level or incomplete
factors, calls holding backticked names -- returns None, and formulaic builds the matrix
as before. Backticked column names (the parser's spelling of R's dotted ``Days.since``)
are names like any other, named without their backticks as formulaic names them.

The formulaic model spec (new-data prediction, term tables) is built lazily, by formulaic
on the same frame, only when something asks for it: :class:`LazyModelSpec`.
"""

from __future__ import annotations

import ast
import functools
import itertools
import keyword
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic.transforms.contrasts import PolyContrasts

from .contrasts import CONTRAST_NAMES, r_contrast_suffixes
from .dtypes import float_values
from .identity_cache import IdentityCache
from .names import INTERCEPT, deparse_python, r_label, r_name_of
from .poly import poly_arguments, poly_basis, poly_labels, raw_powers

__all__ = ["FastMatrix", "LazyModelSpec", "fast_arithmetic", "fast_matrix",
           "indicator_matrix"]

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(`[^`]+`)|(\d+)|(\*\*|[+\-*:/^()]))")
#: Names formulaic would not read as a plain column lookup.
_RESERVED = frozenset({"True", "False", "None"}) | frozenset(keyword.kwlist)


@dataclass(frozen=True)
class FastMatrix:
    """A model matrix built without formulaic.

    Attributes
    ----------
    X : ndarray (n, p)
    names : tuple of str
        formulaic's column names.
    r_names : tuple of str
        R's names of the columns (``(Intercept)``, ``SexFemale``, ``age:SexFemale``).
    has_factors : bool
        Whether a factor is involved (else the plain numeric path applies).
    """

    X: np.ndarray
    names: tuple[str, ...]
    r_names: tuple[str, ...]
    has_factors: bool


#: A function call's head: ``log(``, ``np.sqrt(``, ``I(``.
_CALL_HEAD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\(")
#: Characters that end the fast path inside a call: quotes and backticks (text arguments,
#: formulaic's renamed columns), keyword arguments and formula operators.
_CALL_REFUSED = frozenset("'\"`=|~,:;[]{}")
#: ``poly``'s arguments hold commas and keywords (:func:`.poly.poly_arguments` reads them).
_POLY_REFUSED = _CALL_REFUSED - frozenset(",=")


def _call_token(text: str, pos: int) -> tuple[str, int] | None:
    """The call starting at ``pos`` (``I(Days ** 2)``, ``log(x)``) as formulaic names it
    -- the expression as :func:`ast.unparse` writes it (formulaic's ``format_expr``), so
    ``I(x**2)`` and ``I(x ** 2)`` are one term -- and the position after it; None when
    there is no call there or it holds something other than a numeric expression."""
    m = _CALL_HEAD.match(text, pos)
    if m is None:
        return None
    refused = _POLY_REFUSED if m.group(1) == "poly" else _CALL_REFUSED
    depth, end = 1, m.end()
    while end < len(text) and depth:
        ch = text[end]
        if ch in refused:
            return None
        depth += (ch == "(") - (ch == ")")
        end += 1
    if depth:
        return None
    tree = _expression_tree(text[pos:end].strip())
    if not isinstance(tree, ast.Call):
        return None
    return ast.unparse(tree), end


def _tokens(expr: str) -> list[str] | None:
    """Names, numbers, operators and whole function calls (formulaic's name of each)."""
    out, pos, text = [], 0, expr.strip()
    while pos < len(text):
        call = _call_token(text, pos) if "(" in text else None
        if call is not None:
            out.append(call[0])
            pos = call[1]
        else:
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                return None
            out.append(m.group(m.lastindex))
            pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


@functools.lru_cache(maxsize=1024)
def _parse_terms(expr: str) -> tuple[bool, tuple[tuple[str, ...], ...]] | None:
    """(intercept, terms as tuples of variable names in formulaic's order) or None.

    Grammar: a sum of summands of names and calls joined by Wilkinson's ``:``, ``*``,
    ``/`` and ``^`` with parentheses (:class:`_TermParser`); ``1``, ``0`` and ``- 1``
    stand alone at the top level. Cached by the expression (a pure function of the text; the
    answer is immutable): refits and repeated fits parse a formula once."""
    tokens = _tokens(expr)
    if not tokens:
        return None
    chunks: list[tuple[str, list[str]]] = []
    sign, current, depth = "+", [], 0
    for tok in tokens:
        depth += (tok == "(") - (tok == ")")
        if depth < 0:
            return None
        if tok in ("+", "-") and depth == 0:
            if current:
                chunks.append((sign, current))
            elif chunks or sign == "-":
                return None        # "a + + b", "- - 1"
            sign, current = tok, []
        else:
            current.append(tok)
    if not current:
        return None
    chunks.append((sign, current))
    intercept, removed, added, terms = True, False, False, []
    for sign, toks in chunks:
        if toks in (["0"], ["1"]) or sign == "-":
            if sign == "-" and toks != ["1"]:
                return None        # removing a term: formulaic's business
            if toks == ["1"] and sign == "+":
                added = True
            else:
                removed = True
            continue
        product = _product(toks)
        if product is None:
            return None
        terms.extend(product)
    if removed and added:
        return None                # "1 + x - 1", "0 + 1": order-dependent, leave it
    intercept = not removed
    seen: dict[frozenset, tuple[str, ...]] = {}
    for term in terms:
        seen.setdefault(frozenset(term), term)
    ordered = sorted(seen.values(), key=len)   # stable: formulaic's degree ordering
    return intercept, tuple(ordered)


def _product(tokens: list[str]) -> list[tuple[str, ...]] | None:
    """Terms of one summand of the formula (``a:b * c``, ``(a + b)^2``, ``f / x``) in the
    order formulaic writes them before sorting by degree, or None where it is not this
    grammar (:class:`_TermParser`)."""
    parser = _TermParser(tokens)
    try:
        terms = parser.product()
    except _DeclineError:
        return None
    return terms if parser.pos == len(tokens) else None


def _union(*lists: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The terms of the lists in order, each set of variables once (its first spelling)."""
    seen: dict[frozenset, tuple[str, ...]] = {}
    for terms in lists:
        for term in terms:
            seen.setdefault(frozenset(term), term)
    return list(seen.values())


def _join(left: tuple[str, ...], right: tuple[str, ...]) -> tuple[str, ...]:
    """The interaction ``left:right``: a variable met twice counts once (``a:a`` is ``a``)."""
    return left + tuple(v for v in right if v not in left)


class _TermParser:
    """Wilkinson's operators on lists of terms, with R's and formulaic's precedence
    (``^`` binds tightest, then ``:``, then ``*`` and ``/`` from the left; parentheses
    group a sum):

    * ``A:B`` -- every ``a:b``, ``a`` varying slowest (``(a + b):(c + d)`` is ``a:c, a:d,
      b:c, b:d``);
    * ``A * B`` -- ``A + B + A:B``;
    * ``A / B`` -- ``A`` plus the interaction of all of ``A``'s variables with each term of
      ``B`` (``a / b`` is ``a + a:b``);
    * ``A ^ k`` -- ``A * A * ... * A`` (``k`` times; ``(a + b + c)^2`` is the main effects
      and the two-way interactions), for ``A`` a sum of single variables (a power of a
      sum holding interactions is formulaic's).

    Inside parentheses only ``+`` sums: ``-``, ``0`` and ``1`` there are formulaic's.
    """

    def __init__(self, tokens: list[str]):
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _DeclineError
        self.pos += 1
        return tok

    def sum(self) -> list[tuple[str, ...]]:
        terms = self.product()
        while self.peek() == "+":
            self.pos += 1
            terms = _union(terms, self.product())
        return terms

    def product(self) -> list[tuple[str, ...]]:
        terms = self.interaction()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.interaction()
            if op == "*":
                terms = _union(terms, right, _interact(terms, right, strict=True))
            else:
                every = functools.reduce(_join, terms, ())
                terms = _union(terms, [_join(every, t) for t in right])
        return terms

    def interaction(self) -> list[tuple[str, ...]]:
        terms = self.power()
        while self.peek() == ":":
            self.pos += 1
            terms = _interact(terms, self.power(), strict=True)
        return terms

    def power(self) -> list[tuple[str, ...]]:
        terms = self.atom()
        if self.peek() in ("^", "**"):
            self.pos += 1
            k = self.take()
            if not k.isdigit() or int(k) < 1:
                raise _DeclineError
            if int(k) > 1 and any(len(t) > 1 for t in terms):
                # a power of a sum holding interactions ((a + b:c)^2): formulaic orders
                # the products of equal degree its own way
                raise _DeclineError
            base = terms
            for _ in range(int(k) - 1):
                terms = _union(terms, base, _interact(terms, base))
        return terms

    def atom(self) -> list[tuple[str, ...]]:
        tok = self.take()
        if tok == "(":
            terms = self.sum()
            if self.take() != ")":
                raise _DeclineError
            return terms
        if not (_is_call(tok) or re.fullmatch(r"[A-Za-z_]\w*", tok)
                or (_is_quoted(tok) and ":" not in tok)) or tok in _RESERVED:
            # (a colon in a backticked name reads as an interaction in formulaic's R names)
            raise _DeclineError
        return [(tok,)]


def _interact(left: list[tuple[str, ...]], right: list[tuple[str, ...]],
              strict: bool = False) -> list[tuple[str, ...]]:
    """Every ``a:b``, each set of variables once. ``strict`` (``:``, ``*``) declines where
    formulaic's order is its own business: interactions on both sides
    (``(a * b) * (c * d)``: it orders the products of equal degree differently), or one
    set met in two spellings (``(z + f)^2 : z`` gives ``f:z`` and ``z:f``); a power's
    products keep the first spelling, as formulaic does."""
    if strict and any(len(t) > 1 for t in left) and any(len(t) > 1 for t in right):
        raise _DeclineError    # interactions on both sides: formulaic's order of the products
    joined = [_join(a, b) for a in left for b in right]
    out = _union(joined)
    if strict and len(out) < len(set(joined)):
        raise _DeclineError     # a set of variables in two spellings
    return out


def _is_quoted(token: str) -> bool:
    """Whether a token is a backticked column name (the parser's spelling of R's dotted
    names such as ``Days.since``, or any name that is not an identifier)."""
    return token.startswith("`")


def _column_name(token: str) -> str:
    """The column a name token looks up (and formulaic's name of its values): a
    backticked name without its backticks."""
    return token[1:-1] if _is_quoted(token) else token


def _is_call(token: str) -> bool:
    """Whether a token of :func:`_tokens` is a function call (names hold no parenthesis)."""
    return token.endswith(")")


@dataclass(frozen=True)
class _Coding:
    """A factor's reduced-rank coding by a formulaic contrast (``contrasts=``, or R's
    polynomial contrasts of an ordered categorical): the ``levels x m`` matrix, formulaic's
    name format and field of each column, and R's suffixes."""

    key: tuple
    matrix: np.ndarray
    fmt: str
    fields: tuple
    r_suffixes: tuple[str, ...]


@dataclass(frozen=True)
class _Variable:
    values: np.ndarray | None     # numeric values (float; (n, k) for poly), None for a factor
    codes: np.ndarray | None      # factor codes (int), None for a number
    levels: tuple = ()            # a factor's levels; a poly basis's (label, R suffix)s
    coding: _Coding | None = None  # a factor's contrasts other than the default treatment


def _call_variable(frame: pd.DataFrame, call: str) -> _Variable | None:
    """A numeric call (``I(Days ** 2)``, ``log(x)``) evaluated by :func:`fast_arithmetic`;
    None when it declines or a value is not finite (formulaic then builds the matrix, and
    materialize reports the rows ``log(0)`` or ``sqrt(-1)`` spoil, as before)."""
    values = fast_arithmetic(call, frame)
    if values is None or values.shape != (len(frame),) or not np.isfinite(values).all():
        return None
    return _Variable(values, None)


#: Levels per categories index (an index is immutable: see :mod:`.identity_cache`).
_LEVELS = IdentityCache()


def _levels_of(categories: pd.Index) -> tuple:
    return tuple(categories.tolist() if isinstance(categories.dtype, pd.StringDtype)
                 else categories)


def _category_levels(categories: pd.Index) -> tuple:
    """A categorical's categories as a tuple, text as Python strings, made once per
    categories index.

    Text categories are converted in one pass (iterating a pyarrow-backed index boxes
    them one by one: ~3 us a category), and even that pass costs a small fit's factor
    ~3 us; the tuple is kept per index object (:class:`.identity_cache.IdentityCache`)."""
    return _LEVELS.get(categories, _levels_of)


#: ``C(x)`` as :func:`ast.unparse` writes it: R's ``factor(x)`` after the parser's translation.
_FACTOR_CALL = re.compile(r"C\(([A-Za-z_]\w*)\)")


def _factor_call_variable(frame: pd.DataFrame, column: str, contrasts) -> _Variable | None:
    """``C(column)``: the column's factor (text, unordered categorical) or, for integers,
    the factor of their sorted distinct values, levels labelled as formulaic labels them
    (``C(Days)[T.1]``). Floats and booleans (labels ``1.0``, ``True``) are formulaic's."""
    if contrasts and (f"C({column})" in contrasts or column in contrasts):
        return None                # contrasts on the call or on the column: formulaic's
    var = _variable(frame, column, contrasts)
    if var is None or var.coding is not None:
        return None
    if var.codes is not None:
        return None if var.levels == (False, True) else var
    col = frame[column]
    if col.dtype.kind not in "iu":
        return None
    uniques, codes = np.unique(col.to_numpy(), return_inverse=True)
    if uniques.size < 2:
        return None                # formulaic's single-level warning
    return _Variable(None, codes.astype(np.int64).ravel(), tuple(uniques.tolist()))


def _poly_variable(frame: pd.DataFrame, call: str) -> _Variable | None:
    """``poly(x, k)``: the basis of :func:`.poly.poly_basis` (``raw=True``: the powers) on
    the finite values of the numeric expression ``x``, its columns labelled as
    :func:`.poly.poly_labels` says; None for other arguments (formulaic's business)."""
    tree = _expression_tree(call)
    args = poly_arguments(tree) if isinstance(tree, ast.Call) else None
    if args is None:
        return None
    x = fast_arithmetic(ast.unparse(args[0]), frame)
    if x is None or x.shape != (len(frame),) or not np.isfinite(x).all():
        return None
    _, degree, raw = args
    values = raw_powers(x, degree) if raw else poly_basis(x, degree, call)
    if not np.isfinite(values).all():
        return None                # raw powers overflowing: formulaic's business
    return _Variable(values, None, poly_labels(degree, raw))


def _variable(frame: pd.DataFrame, name: str, contrasts) -> _Variable | None:
    if _is_call(name):
        m = _FACTOR_CALL.fullmatch(name)
        if m is not None:
            return _factor_call_variable(frame, m.group(1), contrasts)
        if name.startswith("poly(") and "poly" not in frame.columns:
            return _poly_variable(frame, name)
        return _call_variable(frame, name)
    name = _column_name(name)
    if name not in frame.columns:
        return None
    contrast = contrasts.get(name) if contrasts else None
    col = frame[name]
    if not isinstance(col, pd.Series):
        return None                # duplicated column name
    dtype = col.dtype
    if contrast is not None and not (
            isinstance(dtype, pd.CategoricalDtype | pd.StringDtype)
            or (isinstance(dtype, np.dtype) and dtype.kind == "O")):
        return None                # contrasts on numbers or logicals: formulaic's
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        # (Series.to_numpy(dtype=float)'s own steps: dtypes.float_values)
        return _Variable(float_values(col), None)
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return _Variable(None, col.to_numpy().astype(np.int64), (False, True))
    if isinstance(dtype, pd.CategoricalDtype):
        cat_dtype = dtype.categories.dtype
        if not (isinstance(cat_dtype, pd.StringDtype) or (
                isinstance(cat_dtype, np.dtype) and cat_dtype.kind in "iuf")):
            return None            # levels formulaic prints its way
        if dtype.ordered and contrast is None:
            contrast = PolyContrasts()   # R's contr.poly for an ordered factor
        codes = col.array.codes
        levels = _category_levels(dtype.categories)
    elif (isinstance(dtype, np.dtype) and dtype.kind == "O") or \
            isinstance(dtype, pd.StringDtype):
        values = col.to_numpy(dtype=object)
        if pd.isna(values).any() or pd.api.types.infer_dtype(values, skipna=False) != "string":
            return None            # numbers or missing values among the text
        uniques, codes = np.unique(values, return_inverse=True)
        levels = tuple(str(u) for u in uniques)
    else:
        return None
    if len(levels) < 2 or (codes < 0).any():
        return None                # formulaic's single-level warning / missing values
    coding = None
    if contrast is not None:
        coding = _coding(contrast, levels)
        if coding is None:
            return None
    return _Variable(None, np.asarray(codes, dtype=np.int64), levels, coding)


#: The contrasts :func:`_coding` builds (the classes ``contrasts=`` names, by their
#: parameters); others (a coding matrix, subclasses) are formulaic's.
_CODED = tuple(CONTRAST_NAMES.values())
#: :func:`_coding`'s answers by contrast and levels (cleared when full).
_CODINGS: dict = {}


def _coding(contrast, levels: tuple) -> _Coding | None:
    """The reduced-rank coding of ``levels`` by ``contrast`` from formulaic's own contrast
    object (its matrix, names and, through :func:`.contrasts.r_contrast_suffixes`, R's
    suffixes), made once per contrast and levels; None for contrasts not in
    :data:`_CODED` or with parameters that are not plain values."""
    if type(contrast) not in _CODED:
        return None
    try:
        key = (type(contrast).__name__, tuple(sorted(vars(contrast).items())), levels)
        got = _CODINGS.get(key)
    except TypeError:               # a parameter that does not hash (a list of scores)
        return None
    if got is None:
        lv = list(levels)
        matrix = np.asarray(contrast.get_coding_matrix(lv, reduced_rank=True), dtype=float)
        fmt = contrast.get_factor_format(lv, reduced_rank=True)
        fields = contrast.get_coding_column_names(lv, reduced_rank=True)
        matrix.setflags(write=False)
        got = _Coding(key, matrix, fmt, tuple(fields),
                      tuple(r_contrast_suffixes(contrast, lv, True, r_label)))
        if len(_CODINGS) >= _PLANS_SIZE:
            _CODINGS.clear()
        _CODINGS[key] = got
    return got


#: ``0 + C(f)``, ``C(f) + 0``, ``C(f) - 1``, ``-1 + C(f)``: one indicator column per level.
_INDICATOR = re.compile(r"\s*(?:0\s*\+\s*C\((\w+)\)|C\((\w+)\)\s*(?:\+\s*0|-\s*1)"
                        r"|-\s*1\s*\+\s*C\((\w+)\))\s*")


def indicator_matrix(expr: str, frame: pd.DataFrame
                     ) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """``(X, names)`` of ``0 + C(f)`` -- the parser's spelling of ``0 + factor(time)``, the
    columns of AR(1), compound-symmetry and Toeplitz terms -- as formulaic codes it: one
    indicator per level, levels sorted (integers) or as :func:`fast_matrix` orders them
    (text, unordered categoricals), names ``C(f)[level]``. None for anything else
    (floats, booleans, ordered or numeric-category factors, one level, missing values),
    which formulaic builds (its 4-6 ms were a tenth of a small structured fit)."""
    m = _INDICATOR.fullmatch(expr)
    if m is None:
        return None
    name = next(g for g in m.groups() if g)
    if name not in frame.columns or not isinstance(frame[name], pd.Series):
        return None
    col = frame[name]
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        uniques, codes = np.unique(col.to_numpy(), return_inverse=True)
        levels = tuple(str(u) for u in uniques.tolist())
    else:
        if isinstance(dtype, pd.CategoricalDtype) and not isinstance(
                dtype.categories.dtype, pd.StringDtype) and dtype.categories.dtype != object:
            return None            # numeric categories: formulaic's own level labels
        var = _variable(frame, name, None)
        if var is None or var.codes is None or var.levels == (False, True) \
                or var.coding is not None:
            return None            # (ordered: formulaic's contrasts inside C())
        codes, levels = var.codes, tuple(str(lev) for lev in var.levels)
    if len(levels) < 2:
        return None
    X = np.zeros((len(col), len(levels)))
    X[np.arange(len(col)), np.asarray(codes).ravel()] = 1.0
    return X, tuple(f"C({name})[{lev}]" for lev in levels)


def fast_matrix(expr: str, frame: pd.DataFrame, contrasts: dict | None = None
                ) -> FastMatrix | None:
    """The model matrix of ``expr`` on ``frame``, or None when formulaic must build it.

    Parameters
    ----------
    expr : str
        A formula right-hand side (``"age * Sex"``).
    frame : pandas.DataFrame
        Model frame (numeric columns may hold NaN; factors must be complete).
    contrasts : dict, optional
        Column name -> formulaic ``Contrasts`` (:func:`.contrasts.resolve_contrasts`):
        the classes of :data:`_CODED` are built here, others make the formula formulaic's.
    """
    parsed = _parse_terms(expr)
    if parsed is None:
        return None
    intercept, terms = parsed
    if not intercept and not terms:
        return None
    variables: dict[str, _Variable] = {}
    for term in terms:
        for name in term:
            if name not in variables:
                var = _variable(frame, name, contrasts)
                if var is None:
                    return None
                variables[name] = var
    # the columns' names and recipes depend on the formula and on each variable's kind and
    # levels only, not on the values: made once per such key (a refitted or bootstrapped
    # model asks for the same ones; the text formatting was a third of this function)
    key = (expr, tuple((n, None) if v.codes is None else
                       (n, type(v.levels[0]), v.levels, v.coding and v.coding.key)
                       for n, v in variables.items()))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(intercept, terms, variables)
        if len(_PLANS) >= _PLANS_SIZE:
            _PLANS.clear()
        _PLANS[key] = plan
    if plan is _NO_PLAN:
        return None
    names, r_names, recipes, has_factors = plan
    n = len(frame)
    indicators: dict[tuple[str, int], np.ndarray] = {}

    def part(name: str, j: int) -> np.ndarray:
        var = variables[name]
        if j < 0 and var.codes is None:  # a number; column -1 - j of a poly basis
            return var.values if var.values.ndim == 1 else var.values[:, -1 - j]
        got = indicators.get((name, j))
        if got is None:
            if j < 0:                   # column -1 - j of the factor's contrast coding
                got = var.coding.matrix[:, -1 - j].take(var.codes)
            else:                       # the indicator of level j
                got = (var.codes == j).astype(float)
            indicators[(name, j)] = got
        return got

    X = np.empty((n, len(recipes)))
    for col, recipe in enumerate(recipes):
        if not recipe:
            X[:, col] = 1.0             # the intercept (np.ones' values)
            continue
        values = part(*recipe[0])
        for name, j in recipe[1:]:
            values = values * part(name, j)
        X[:, col] = values
    return FastMatrix(X, names, r_names, has_factors)


#: :func:`fast_matrix`'s plans by formula and variable kinds (cleared when full).
_PLANS: dict = {}
_PLANS_SIZE = 256
#: A plan meaning "formulaic builds this one" (the coding rules below refuse it).
_NO_PLAN = ("no plan",)


def _plan(intercept: bool, terms, variables: dict[str, _Variable]):
    """``(names, R names, recipes, has_factors)`` of the columns of a formula for variables
    of these kinds and levels, or :data:`_NO_PLAN`. A recipe lists the parts whose product
    is the column, in the order they are multiplied: ``(variable, j)`` as
    :func:`_part_names` makes them; the intercept has none."""
    present = {frozenset(t) for t in terms}
    full_done = intercept
    # products of numbers alone that earlier columns span: number terms, and the margin of
    # a factor coded in full against it (below)
    spanned_numbers: set[frozenset] = set()
    columns: list[tuple[str, str, tuple]] = []
    if intercept:
        columns.append(("Intercept", INTERCEPT, ()))
    has_factors = False
    for term in terms:
        factor_names = [n for n in term if variables[n].codes is not None]
        has_factors = has_factors or bool(factor_names)
        numbers = frozenset(term) - frozenset(factor_names)
        if len(numbers) > 2:
            return _NO_PLAN   # three numbers multiplied: the rounding depends on the order
        if len(factor_names) == 1 and numbers:
            # one factor times numbers (x:f, f / x): the factor is coded by its contrasts
            # when the numbers' product is spanned already, else in full -- which then
            # spans that product (f:x + g:x codes g by contrasts); nothing else matters
            reduced = numbers in spanned_numbers
            spanned_numbers.add(numbers)
        elif len(term) > 1 and factor_names:
            # several factors: every lower-order term present, so that each factor is
            # coded by its contrasts (formulaic's spans decide the other cases)
            for k in range(1, len(term)):
                if any(frozenset(s) not in present for s in itertools.combinations(term, k)):
                    return _NO_PLAN
            if not full_done:
                return _NO_PLAN
            reduced = True
        elif factor_names:
            reduced = full_done
            full_done = True
        else:
            reduced = True
        if not factor_names:
            spanned_numbers.add(numbers)
        parts = [_part_names(n, variables[n], reduced) for n in term]
        # formulaic's column order: the first factor varies fastest
        for combo in itertools.product(*reversed(parts)):
            combo = combo[::-1]
            columns.append((":".join(p[0] for p in combo), ":".join(p[1] for p in combo),
                            tuple(p[2] for p in combo)))
    return (tuple(c[0] for c in columns), tuple(c[1] for c in columns),
            tuple(c[2] for c in columns), has_factors)


def _part_names(name: str, var: _Variable, reduced: bool):
    """(formulaic name, R name, ``(variable, j)``) of each column a variable gives a term:
    a number's values (``j = -1``; column ``-1 - j`` of a poly basis), or for a factor the
    indicator of each level ``j`` -- the first level left out when ``reduced`` (treatment
    contrasts) -- or, reduced with another contrast, column ``-1 - j`` of its coding."""
    # (``name`` is the token the recipe looks up; ``shown`` formulaic's name of it)
    shown = _column_name(name)
    r_base = deparse_python(name) if _is_call(name) else r_name_of(shown)
    if var.codes is None:
        if var.values.ndim == 2:        # poly: formulaic appends [label], R a suffix
            return [(f"{shown}[{lab}]", r_base + suffix, (name, -1 - k))
                    for k, (lab, suffix) in enumerate(var.levels)]
        return [(shown, r_base, (name, -1))]
    if reduced and var.coding is not None:
        coding = var.coding
        return [(coding.fmt.format(name=shown, field=field), r_base + suffix, (name, -1 - k))
                for k, (field, suffix) in enumerate(zip(coding.fields, coding.r_suffixes,
                                                        strict=True))]
    start = 1 if reduced else 0
    fmt = "{}[T.{}]" if reduced else "{}[{}]"
    return [(fmt.format(shown, lev), r_base + r_label(lev), (name, j))
            for j, lev in enumerate(var.levels) if j >= start]


class LazyModelSpec:
    """formulaic's model spec of ``formula`` on ``frame``, built on first use.

    Stands in for the spec of a matrix :func:`fast_matrix` built: every attribute
    (``get_model_matrix``, ``structure``, ``encoder_state``, ...) is the spec's, which
    formulaic builds from the same frame and contrasts the first time one is read.
    """

    __slots__ = ("_contrasts", "_formula", "_frame", "_spec")

    def __init__(self, formula: str, frame: pd.DataFrame, contrasts: dict | None = None):
        self._formula, self._frame, self._contrasts = formula, frame, contrasts
        self._spec = None

    def resolve(self):
        """The formulaic ``ModelSpec`` (built once)."""
        if self._spec is None:
            from .materializer import build_matrix

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self._spec = build_matrix(self._formula, self._frame,
                                          self._contrasts).model_spec
        return self._spec

    def __getattr__(self, name: str):
        if name.startswith("__") or name in self.__slots__:
            raise AttributeError(name)  # special methods and unset slots are not the spec's
        return getattr(self.resolve(), name)

    def __reduce__(self):
        return (_resolved, (self.resolve(),))


def _resolved(spec):
    return spec


#: Functions of numeric expressions evaluated directly: formulaic's ``log``, ``exp``, ...
#: (numpy's ufuncs) and the same under ``np.``.
_FUNCTIONS = {"log": np.log, "log10": np.log10, "log2": np.log2, "exp": np.exp,
              "exp2": np.exp2}
_NP_FUNCTIONS = {**_FUNCTIONS, "sqrt": np.sqrt, "log1p": np.log1p, "expm1": np.expm1,
                 "abs": np.abs}


def _center(values: np.ndarray) -> np.ndarray:
    """formulaic's ``center(x)``: ``x - mean(x)``."""
    return values - np.mean(values, axis=0)


def _scale(values: np.ndarray) -> np.ndarray:
    """formulaic's (and R's) ``scale(x)``: centred, divided by the standard deviation with
    ``n - 1``, by the same numpy operations as formulaic (so the same bits)."""
    centred = _center(values)
    return centred / np.sqrt(np.sum(centred ** 2, axis=0) / (centred.shape[0] - 1))


#: Stateful transforms of one argument evaluated on the model frame, where formulaic
#: learns their state (the mean and standard deviation) from the same rows; new data goes
#: through formulaic's spec (:class:`LazyModelSpec`), which keeps that state.
_STATEFUL = {"scale": _scale, "center": _center}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
          ast.Pow: np.power}


_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less,
            ast.LtE: np.less_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}


class _DeclineError(Exception):
    """The expression is not one :func:`fast_arithmetic` evaluates."""


def fast_arithmetic(expr: str, frame: pd.DataFrame) -> np.ndarray | None:
    """A numeric expression of columns (``size - incidence``, ``log(n)``, ``np.sqrt(x) / 2``)
    evaluated with numpy, or None when formulaic must evaluate it.

    Columns keep their numpy types while the expression is evaluated, as pandas Series
    would in formulaic's ``I(...)`` (integer arithmetic stays integer until the end), so
    the values are the same; anything that raises is left to formulaic and its message.
    """
    tree = _expression_tree(expr.strip())
    if tree is None:
        return None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("error")     # any warning: formulaic's business
            value = _evaluate(tree, frame)
    except (_DeclineError, ArithmeticError, ValueError, TypeError, Warning):
        return None
    if not isinstance(value, np.ndarray):
        return None                            # a constant: formulaic broadcasts it
    return value.astype(float)


@functools.lru_cache(maxsize=512)
def _expression_tree(expr: str) -> ast.AST | None:
    """The parsed expression (None: not Python syntax), cached by its text: parsing costs
    more than evaluating a small one, and every fit of a formula evaluates the same
    expressions (the tree is only read)."""
    try:
        return ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None


def _evaluate(node: ast.AST, frame: pd.DataFrame):
    if isinstance(node, ast.Name):
        if node.id in _RESERVED or node.id not in frame.columns:
            raise _DeclineError
        col = frame[node.id]
        if not isinstance(col, pd.Series) or not isinstance(col.dtype, np.dtype) or \
                col.dtype.kind not in "iuf":
            raise _DeclineError
        return col.to_numpy()
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        left, right = _evaluate(node.left, frame), _evaluate(node.right, frame)
        if isinstance(node.op, ast.Pow) and not isinstance(left, np.ndarray):
            raise _DeclineError                     # a constant base: leave it
        return _ARITH[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        # I(x > 4): formulaic's value is the 0/1 number of the comparison (a missing value
        # compares False there, where R's is missing: left to formulaic and its rows)
        left, right = _evaluate(node.left, frame), _evaluate(node.comparators[0], frame)
        if not all(np.isfinite(v).all() for v in (left, right)):
            raise _DeclineError
        return _COMPARE[type(node.ops[0])](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, frame)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "I" and "I" not in frame.columns:
            return _evaluate(node.args[0], frame)          # formulaic's I: the identity
        if isinstance(func, ast.Name) and func.id in _FUNCTIONS and func.id not in frame.columns:
            return _FUNCTIONS[func.id](_evaluate(node.args[0], frame))
        if isinstance(func, ast.Name) and func.id in _STATEFUL and func.id not in frame.columns:
            value = _evaluate(node.args[0], frame)
            if not isinstance(value, np.ndarray):
                raise _DeclineError                 # scale(3): formulaic's business
            return _STATEFUL[func.id](value)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                func.value.id == "np" and "np" not in frame.columns and \
                func.attr in _NP_FUNCTIONS:
            return _NP_FUNCTIONS[func.attr](_evaluate(node.args[0], frame))
    raise _DeclineError

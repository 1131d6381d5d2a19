"""Unit tests of the formula parser: lme4's expansions and the spec it produces.

The expected expansions are lme4's (``findbars`` / ``expandDoubleVerts`` / ``expandSlash``):
``(x || g)`` -> ``(1 | g) + (0 + x | g)``; ``(1 | a/b)`` -> ``(1 | b:a) + (1 | a)``.
"""

from __future__ import annotations

import pytest

import mixedmodels as mm
from mixedmodels.formula import parse_formula


def _terms(formula: str) -> list[tuple[str, str, tuple[str, ...], str]]:
    return [(t.expr, t.group, t.group_vars, t.structure) for t in parse_formula(formula).random]


def test_random_intercept():
    spec = parse_formula("Reaction ~ Days + (1 | Subject)")
    assert spec.response == "Reaction"
    assert spec.fixed == "Days"
    assert spec.offsets == ()
    assert _terms(spec.formula) == [("1", "Subject", ("Subject",), "us")]
    assert spec.random[0].source == "(1 | Subject)"


@pytest.mark.parametrize("formula", ["y ~ x + (x | g)", "y ~ x + (1 + x | g)",
                                     "y~x+(x|g)", "y ~ x +\n   (x | g)"])
def test_correlated_slope_spellings(formula):
    (expr, group, _, structure), = _terms(formula)
    assert (group, structure) == ("g", "us")
    assert expr.replace(" ", "") in ("x", "1+x")


@pytest.mark.parametrize("formula", ["y ~ x + (0 + x | g)", "y ~ x + (-1 + x | g)",
                                     "y ~ x + (x - 1 | g)"])
def test_slope_without_intercept_keeps_expression(formula):
    (expr, group, _, _), = _terms(formula)
    assert group == "g"
    assert "x" in expr and ("0" in expr or "-" in expr)


def test_double_bar_expands_like_lme4():
    assert _terms("y ~ x + (x || g)") == [("1", "g", ("g",), "us"),
                                          ("0 + x", "g", ("g",), "us")]
    assert _terms("y ~ (x + z || g)") == [("1", "g", ("g",), "us"),
                                          ("0 + x", "g", ("g",), "us"),
                                          ("0 + z", "g", ("g",), "us")]
    # no intercept to split off
    assert _terms("y ~ (0 + x || g)") == [("0 + x", "g", ("g",), "us")]
    # interactions are single terms
    assert [t[0] for t in _terms("y ~ (x * z || g)")] == ["1", "0 + x", "0 + z", "0 + x:z"]


def test_double_bar_equals_explicit_terms():
    assert _terms("y ~ x + (x || g)") == _terms("y ~ x + (1 | g) + (0 + x | g)")


def test_nesting_slash_expands_like_lme4():
    assert _terms("y ~ (1 | a/b)") == [("1", "b:a", ("b", "a"), "us"),
                                       ("1", "a", ("a",), "us")]
    assert [t[1] for t in _terms("y ~ (1 | a/b/c)")] == ["c:b:a", "b:a", "a"]
    assert _terms("y ~ (x | a/b)") == [("x", "b:a", ("b", "a"), "us"),
                                       ("x", "a", ("a",), "us")]
    # the explicit form names the interaction as written
    assert _terms("y ~ (1 | a) + (1 | a:b)") == [("1", "a", ("a",), "us"),
                                                 ("1", "a:b", ("a", "b"), "us")]


def test_double_bar_with_nesting():
    assert [(t[0], t[1]) for t in _terms("y ~ (x || a/b)")] == [
        ("1", "b:a"), ("1", "a"), ("0 + x", "b:a"), ("0 + x", "a")]


def test_crossed_and_multiple_terms_keep_order():
    assert [t[1] for t in _terms("y ~ (1 | a) + (1 | b)")] == ["a", "b"]
    assert _terms("y ~ (x1 | a) + (x2 | b)") == [("x1", "a", ("a",), "us"),
                                                 ("x2", "b", ("b",), "us")]


def test_fixed_part_passes_through_to_formulaic():
    spec = parse_formula("y ~ x * a + I(x**2) + log(z) + scale(w) + center(v) + (x | a:b)")
    assert spec.fixed == "x * a + I(x**2) + log(z) + scale(w) + center(v)"
    assert _terms(spec.formula) == [("x", "a:b", ("a", "b"), "us")]
    assert parse_formula("y ~ (1 | g)").fixed == "1"
    assert parse_formula("y ~ 0 + (1 | g)").fixed == "0"
    assert parse_formula("y ~ x + (1 | g) - 1").fixed == "x - 1"
    assert parse_formula("y ~ -1 + x + (1 | g)").fixed == "1 - 1 + x"


def test_random_terms_anywhere_in_the_formula():
    spec = parse_formula("y ~ (1 | g) + x + (0 + x | g) + z")
    assert spec.fixed == "x + z"
    assert [t[0] for t in _terms(spec.formula)] == ["1", "0 + x"]


def test_factor_is_translated_to_formulaic_C():
    spec = parse_formula("y ~ factor(x) + (0 + factor(x) | g)")
    assert spec.fixed == "C(x)"
    assert spec.random[0].expr == "0 + C(x)"


def test_r_spellings_translated():
    """``^`` inside a call is R's power (Python's ``^`` is xor); dotted R column names."""
    spec = parse_formula("log(y.obs) ~ I(x^2) + (a + b)^2 + my.var + offset(log(n.i)) "
                         "+ (1 + my.var | grp.id)")
    assert spec.fixed == "I(x**2) + (a + b)^2 + `my.var`"
    assert spec.response == "log(`y.obs`)"
    assert spec.offsets == ("log(`n.i`)",)
    assert _terms(spec.formula) == [("1 + `my.var`", "grp.id", ("grp.id",), "us")]
    # module references and numbers are left alone
    assert parse_formula("y ~ np.log(x) + I(x * 1.5) + (1 | g)").fixed == \
        "np.log(x) + I(x * 1.5)"
    # a backticked name keeps its caret (a column called x^2), inside a call or not
    assert parse_formula("y ~ I(`x^2` / 10) + `z^3` + (1 | g)").fixed == "I(`x^2` / 10) + `z^3`"


def test_r_logicals_inside_calls_are_python_logicals():
    """``raw = TRUE`` is R's logical; formulaic evaluates the call as Python, where it
    looked for a column ``TRUE``. Outside calls, in backticks, strings and longer names it
    stays as written."""
    spec = parse_formula("y ~ poly(x, 2, raw = TRUE) + f(a, g(FALSE)) + TRUE_x + (1 | g)")
    assert spec.fixed == "poly(x, 2, raw = True) + f(a, g(False)) + TRUE_x"
    assert parse_formula("y ~ I(`TRUE` + 1) + h(x, 'TRUE') + (1 | g)").fixed == \
        "I(`TRUE` + 1) + h(x, 'TRUE')"


def test_offsets_are_collected():
    spec = parse_formula("y ~ x + offset(log(n)) + offset(t) + (1 | g)")
    assert spec.offsets == ("log(n)", "t")
    assert spec.fixed == "x"


def test_response_expressions():
    assert parse_formula("log(y) ~ x + (1 | g)").response == "log(y)"
    assert parse_formula("cbind(s, n - s) ~ x + (1 | g)").response == "cbind(s, n - s)"


def test_extra_parentheses_and_backticks():
    assert _terms("y ~ x + ((1 | g))") == [("1", "g", ("g",), "us")]
    assert _terms("y ~ (1 | (a:b))") == [("1", "a:b", ("a", "b"), "us")]
    assert _terms("y ~ (1 | `my group`)") == [("1", "my group", ("my group",), "us")]
    assert _terms("y ~ (1 | my.group)") == [("1", "my.group", ("my.group",), "us")]


def test_covariance_keywords():
    assert _terms("y ~ ar1(0 + factor(t) | s)") == [("0 + C(t)", "s", ("s",), "ar1")]
    assert _terms("y ~ diag(x | g)") == [("x", "g", ("g",), "diag")]
    # a keyword without a bar is an ordinary fixed-effect function call
    assert parse_formula("y ~ exp(x) + (1 | g)").fixed == "exp(x)"


def test_spec_is_frozen_and_prints_like_the_formula():
    spec = parse_formula("y ~ x + offset(o) + (x || g)")
    with pytest.raises(AttributeError):
        spec.fixed = "1"  # type: ignore[misc]
    assert str(spec) == "y ~ x + offset(o) + (1 | g) + (0 + x | g)"
    assert parse_formula(str(spec)) == parse_formula("y ~ x + offset(o) + (1 | g) + (0 + x | g)")


def test_no_random_terms_is_a_valid_spec():
    """Parsing alone accepts it (mm.lm uses the same parser); lmer refuses it."""
    spec = parse_formula("y ~ x")
    assert spec.random == ()


@pytest.mark.parametrize(("formula", "message"), [
    ("y ~ (1 | )", "no grouping variable"),
    ("y ~ ( | g)", "nothing before"),
    ("y ~ (1 | g", "unclosed"),
    ("y ~ x)", "unbalanced"),
    ("y ~ 1 | g", "not a parenthesised"),
    ("y ~ x ~ z", "exactly one '~'"),
    ("~ x", "no response"),
    ("y ~", "nothing on the right"),
    ("y ~ (1 | a | b)", "more than one '|'"),
    ("y ~ x - (1 | g)", "cannot be subtracted"),
    ("y ~ x - offset(o)", "cannot be subtracted"),
    ("y ~ x + + z", "nothing next to it after 'x'"),
    ("y ~ (x + | g)", "nothing next to it after 'x'"),
    ("y ~ (1 | g/)", "needs a factor on each side"),
    ("y ~ (1 | a:)", "empty part"),
    ("y ~ (1 | f(g))", "is not a column name"),
    ("y ~ (1 | a + b)", "crossed factors"),
    ("y ~ diag(x || g)", "cannot be combined"),
    ("y ~ offset() + (1 | g)", "is empty"),
    ("y ~ log(x + (1 | g)) + (1 | g)", "inside a function call"),
])
def test_syntax_errors(formula, message):
    with pytest.raises(mm.FormulaError, match=message):
        parse_formula(formula)

"""The formulaic-free model matrices (design/fast.py) against formulaic on the same frames.

Each formula is built both ways on many frames -- numeric, categorical (with unused and
numeric categories), text, boolean columns, odd names, missing values -- and must give the
same column names, order, values and R names; where the fast path declines (returns None)
formulaic builds it, so the test also checks that it declines exactly where it must not
guess. Then whole fits: the fast path and a forced formulaic path give the same design,
coefficients, prediction on new data (unseen levels refused alike) and term tables.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import fast as fast_mod
from mixedmodels.design.contrasts import resolve_contrasts
from mixedmodels.design.fast import LazyModelSpec, fast_matrix
from mixedmodels.design.materializer import build_matrix
from mixedmodels.design.names import r_coefficient_names

EXACT = 0.0  # the same arithmetic: products of 0/1 indicators and the column values


def _frames():
    rng = np.random.default_rng(20261201)
    n = 40
    base = pd.DataFrame({
        "x": rng.normal(size=n),
        "z": rng.integers(0, 7, n),
        "f": rng.choice(list("cab"), n),
        "g": pd.Categorical(rng.choice(["v", "u", "w"], n), categories=["w", "v", "u", "t"]),
        "b": rng.random(n) < 0.4,
        "h": pd.Categorical(rng.choice([3, 1, 2], n)),
        "k": pd.Categorical(rng.choice([0.5, 1.0, 2.5], n)),
        "Intercept": rng.normal(size=n),
        # R's dotted and other non-identifier names, which the parser backticks
        "Days.since": np.random.default_rng(11).normal(size=n),
        "f.g": np.random.default_rng(12).choice(["lo", "hi", "mid"], n),
        "my var": np.random.default_rng(13).normal(size=n),
        "a:b": np.random.default_rng(14).normal(size=n),
        "odd_Name2": rng.choice(["Level one", "x:y", "[z]"], n),
        # positive values for log(p) (their own stream: the draws below stay as they were)
        "p": np.random.default_rng(7).uniform(0.5, 3.0, n),
    })
    yield "base", base
    yield "object text", base.astype({"f": object, "odd_Name2": object})
    yield "missing x", base.assign(x=np.where(rng.random(n) < 0.2, np.nan, base["x"]))
    two = base.copy()
    two["f"] = rng.choice(["only", "other"], n)
    yield "two levels", two
    ordered = base.assign(g=base["g"].cat.as_ordered())
    yield "ordered g", ordered
    yield "one level f", base.assign(f="a")
    yield "float z", base.assign(z=base["z"] * 0.5)
    yield "missing f", base.assign(f=base["f"].where(rng.random(n) > 0.1))


FORMULAS = [
    "1", "x", "f", "0 + f", "f - 1", "-1 + f", "x + f", "f + x", "x * f", "f * x",
    "f:x + f + x", "x + f + x:f", "f * g", "g * f", "0 + f * g", "0 + x + f + g",
    "f + g + f:g + x", "x * f * g", "f:g:x + f * g * x", "b", "0 + b", "b * x", "h + x:z",
    "k * x", "h * f", "x:z + z:x", "z * x", "x + x", "f + f", "f + f:x", "x:f + z",
    "0 + f:g + f + g", "Intercept + f", "odd_Name2 * x", "1 + f - 1", "f + 0",
    "x*f + g", "f:g", "x:f", "log(x) + f", "C(f) + x", "f + I(x**2)", "f*x - x", ". + x",
    "f + + x", "f * (x + z)", "f / x", "x ** 2", "True + f", "f + nothere", "2 + f",
    # numeric calls, named as formulaic names them (ast.unparse: I(p ** 2), I(p ** (-1)))
    "f + I(p**2)", "p + I(p ** 2) + I(p**3)", "g * log(p)", "I(p**2) * f", "log(p) + log( p )",
    "log(p):x + log(p) + x", "np.sqrt(p) + exp(p / 10)", "I(z ** 2) + z", "I(z / 2)",
    "I((p - 2)**2)", "I(p**-1)", "I(1e-3 * p)", "I(x*z)", "I(log(p) * 2) + f:g + f + g",
    "0 + f + I(p**2)", "I(p)", "log10(p) + log2(p) + np.log1p(p)", "I(p**2):f",
    "b * I(p / 3)", "scale(p)", "I(p > 1)", "poly(p, 2)", "center(p) + f",
    # stateful transforms learnt on the frame: scale(x) (sd with n - 1) and center(x)
    "scale(p) + f", "scale(z) * f", "center(x) + scale(p)", "I(scale(p) ** 2) + scale(p)",
    "scale(p, scale=False)", "scale(p + 1)", "np.log(scale(p))",
    # C(x), the parser's factor(x): text, categorical and integer columns
    "C(z)", "C(z) + x", "x * C(f)", "C(g) * x", "0 + C(z)", "C(z):x + C(z) + x", "C(f) + f",
    "C(h) + p", "C(b) + x", "C(x)", "C(k)", "C(odd_Name2) + x", "C(z) * C(f)",
    # poly(x, k): orthonormal bases, alone, with factors (both orders) and numbers
    "poly(x, 3) + f", "f * poly(p, 2)", "poly(p, 2) * g", "poly(z, 2):x + poly(z, 2) + x",
    "poly(p, degree=2)", "poly(log(p), 2)", "poly(p,2, raw=False)", "poly(p)", "poly(z, 6)",
    "poly(p, 2) + poly(x, 2)", "0 + poly(p, 2)", "poly(p, 2, raw=True)", "poly(p, 2.0)",
    "poly(z, 3, raw=True) * f", "poly(p, raw=True)", "poly(z, 9, raw=True)",
    # Wilkinson's operators with parentheses: ^, / and products of sums
    "(x + f)^2", "(f + g + b)^2", "(f + g + b)^3", "(x + z + p)^2", "(f + x)**2", "x^2",
    "f * (x + g)", "(f + g) * (x + p)", "0 + (f + g)^2", "(f + g)^2 - 1", "(x + f)^1",
    "f:(g + b) + f + g + b", "((f + x)) * g", "(f)", "(x + x)^2", "x:x + f", "f / x",
    "(f + g) / x", "x / f", "(x + z):(p + f)", "x:z * p", "(x + f)^0", "(x + 1)^2",
    "(x - f)", "x + (f", "f)", "(x + f)^z", "(x + f)^2 - x:f", "(poly(p, 2) + f)^2",
    # one factor times numbers without the factor's margin: coded in full, which spans it
    "0 + f / x", "f:x", "0 + x:f", "x + x:f", "f:x + g:x", "f:x + g:x + x", "x:z:f",
    "x + z + x:z + x:z:f", "x:z + x:z:f", "x:f + x:z:f", "f / (x + z)", "g + f:x",
    "0 + f:x + g", "f / x + g / x", "x / z", "z:x", "x:z:x", "b:x", "x:b + b",
    "f / poly(p, 2)", "h / p", "k:x",
    # backticked column names (R's dotted ones): named without the backticks
    "`Days.since`", "`Days.since` * `f.g`", "`my var` + f", "(`my var` + x)^2",
    "`f.g` / `Days.since`", "0 + `f.g`", "`Days.since`:z + `Days.since` + z", "`a:b` + x",
    # comparisons: formulaic's 0/1 numbers
    "I(x > 0) * f", "I(z >= 3) + x", "I(p == 2)", "I(x > 0):f + f", "0 + I(x > 0)",
    "I((p > 1) * 2)", "I(1 < p)", "I(z != 0) * I(p <= 2)",
]


def _formulaic(expr, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return build_matrix(expr, frame)
        except Exception:
            return None


@pytest.mark.parametrize("label,frame", list(_frames()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_fast_matrix_equals_formulaic(label, frame):
    built = 0
    for expr in FORMULAS:
        fast = fast_matrix(expr, frame)
        if fast is None:
            continue
        ref = _formulaic(expr, frame)
        assert ref is not None, f"{expr!r} on {label}: fast path built what formulaic refuses"
        names = tuple(str(c) for c in ref.columns)
        assert fast.names == names, (expr, label)
        np.testing.assert_allclose(fast.X, np.asarray(ref, dtype=float), rtol=EXACT,
                                   atol=EXACT, equal_nan=True, err_msg=f"{expr} on {label}")
        assert fast.r_names == r_coefficient_names(ref.model_spec, list(names)), (expr, label)
        built += 1
    assert built >= 3  # the frames are meant to exercise the fast path


@pytest.mark.parametrize("expr,frame_label", [
    ("f*x - x", "base"), ("f:g", "base"), ("f / g", "base"), ("(f + g) / x", "base"),
    ("x * z * p", "base"), ("`a:b` + x", "base"), ("`nothere` + x", "base"),
    ("log(`my var`)", "base"),
    ("f * x", "one level f"), ("f * x", "missing f"), ("1 + f - 1", "base"),
    ("f + nothere", "base"), ("True + f", "base"), ("x * z * Intercept", "base"),
    # calls formulaic must evaluate: stateful transforms, comparisons, several arguments, a
    # value that is not finite (log of a negative x: materialize reports those rows), a
    # missing value, two factors interacting without their margins
    ("scale(p, scale=False)", "base"), ("I(x > 0)", "missing x"), ("I(0 < p < 2)", "base"),
    ("poly(p, 2, raw=1)", "base"),
    ("poly(x, 2)", "missing x"), ("poly(p, 2.0)", "base"), ("poly(p, 0)", "base"),
    ("poly(p, 2, 3)", "base"), ("poly(p, 2, other=1)", "base"), ("poly(f, 2)", "base"),
    ("scale(x) + f", "missing x"), ("np.log(scale(p))", "base"),
    ("log(p, 2)", "base"), ("log(x) + f", "base"), ("I(x ** 2) + f", "missing x"),
    ("I('a') + p", "base"), ("C(x) + f", "base"),
    ("C(b) + x", "base"), ("C(f) + x", "missing f"), ("C(f) + x", "one level f"),
])
def test_fast_matrix_declines(expr, frame_label):
    frame = dict(_frames())[frame_label]
    assert fast_matrix(expr, frame) is None


@pytest.mark.parametrize("expr", ["`Days.since` * `f.g`", "f + I(p**2)", "g * log(p)",
                                  "I(p**-1)", "I(z / 2)",
                                  "np.sqrt(p) + exp(p / 10)", "b * I(p / 3)", "C(z) + x",
                                  "x * C(f)", "C(g)", "C(f) + I(p ** 2)", "scale(p) + f",
                                  "center(z) * f"])
def test_numeric_calls_take_the_fast_path(expr):
    """formulaic takes 3 ms or more for ``I(Days^2)`` on 180 rows (sleepstudy's quadratic
    growth model: 4.9 ms a fit against 1.9 without the term): these calls are built here
    (and equal formulaic's matrices in test_fast_matrix_equals_formulaic)."""
    assert fast_matrix(expr, dict(_frames())["base"]) is not None


def test_categories_formulaic_prints_its_way_decline():
    frame = dict(_frames())["base"]
    dates = pd.Categorical(pd.to_datetime(["2020-01-01", "2021-06-30"] * 20))
    assert fast_matrix("x + d", frame.assign(d=dates)) is None


def test_contrasts_argument_declines():
    """A coding matrix, a contrast object of no known class, contrasts on numbers or
    logicals, and C(f) of a column with contrasts are formulaic's."""
    frame = dict(_frames())["base"]
    assert fast_matrix("x * f", frame, {"f": object()}) is None
    assert fast_matrix("x * f", frame, {"g": object()}).has_factors
    for contrasts in ({"f": np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])}, {"x": "sum"},
                      {"b": "sum"}):
        assert fast_matrix("x * f + b", frame, resolve_contrasts(contrasts)) is None
    assert fast_matrix("C(f) + x", frame, resolve_contrasts({"f": "sum"})) is None


#: ``contrasts=`` as users give them, and formulas they apply to (a column with
#: contrasts in an interaction, coded in full without an intercept, beside a factor left
#: to treatment contrasts, an ordered categorical overridden).
CONTRASTS = [{"f": "sum"}, {"f": "helmert", "g": "sum"}, {"f": "poly"}, {"f": "SAS"},
             {"f": "diff"}, {"f": "treatment"}, {"g": "contr.sum"}, {"h": "sum"},
             {"g": "treatment"}]
CONTRAST_FORMULAS = ["f", "x * f", "f * g", "0 + f", "0 + f * g", "f / x", "f:x",
                     "x + f + g + f:g", "g * x + f", "h + f", "(f + g)^2", "f * b"]


def _built_equals_formulaic(expr, frame, contrasts) -> bool:
    """Whether the fast path builds ``expr``; where it does, its matrix, names and R names
    are formulaic's bit for bit (asserted)."""
    fast = fast_matrix(expr, frame, contrasts)
    if fast is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = build_matrix(expr, frame, contrasts)
    names = tuple(str(c) for c in ref.columns)
    assert fast.names == names, expr
    np.testing.assert_array_equal(fast.X, np.asarray(ref, dtype=float), err_msg=expr)
    assert fast.r_names == r_coefficient_names(ref.model_spec, list(names)), expr
    return True


@pytest.mark.parametrize("contrasts", CONTRASTS,
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("label", ["base", "ordered g", "object text", "two levels"])
def test_contrasts_equal_formulaic(contrasts, label):
    """Sum, Helmert, polynomial, SAS, difference and treatment contrasts (and R's
    polynomial contrasts of an ordered categorical) built here equal formulaic's matrices,
    names and R names bit for bit."""
    frame = dict(_frames())[label]
    resolved = resolve_contrasts(contrasts)
    built = sum(_built_equals_formulaic(expr, frame, resolved) for expr in CONTRAST_FORMULAS)
    assert built >= 6


#: lme4 1.1-31, Orthodont ``distance ~ age * Sex + (1 | Subject)`` with
#: ``contrasts = list(Sex = "contr.sum")`` (tools/r/contrast_reference.R).
ORTH_SUM_FIXEF = [16.85667614, 0.63196023, -0.51605114, 0.15241477]


def test_ordered_and_contrast_fits_match_r():
    """lme4's cake fit with the ordered temperature (contr.poly) and Orthodont with sum
    contrasts on Sex, through the fast path (tools/r/contrast_reference.R)."""
    cake = mm.datasets.load("cake").copy()
    cake["temperature"] = cake["temperature"].cat.as_ordered()
    fit = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", cake)
    assert fit.design.fixed.r_names[3:8] == ("temperature.L", "temperature.Q",
                                              "temperature.C", "temperature^4",
                                              "temperature^5")
    np.testing.assert_allclose(fit.fixef.to_numpy()[:8],
                               [33.1222222, -1.4777778, -1.5222222, 6.4303299, -0.7128451,
                                -2.3255107, -3.3512850, -0.1511858], rtol=LME4_PRINTED_RTOL)
    assert abs(fit.loglik - -819.3107) < LME4_LOGLIK_ATOL
    orth = mm.lmer("distance ~ age * Sex + (1 | Subject)", mm.datasets.load("Orthodont"),
                   contrasts={"Sex": "sum"})
    assert orth.design.fixed.r_names == ("(Intercept)", "age", "Sex1", "age:Sex1")
    np.testing.assert_allclose(orth.fixef.to_numpy(), ORTH_SUM_FIXEF, rtol=LME4_PRINTED_RTOL)


def test_lazy_spec_builds_once_and_pickles():
    frame = dict(_frames())["base"]
    lazy = LazyModelSpec("x * f", frame)
    assert lazy._spec is None
    names = [str(c) for c in lazy.get_model_matrix(frame).columns]
    assert names == list(fast_matrix("x * f", frame).names)
    spec = lazy._spec
    assert lazy.structure is spec.structure
    restored = pickle.loads(pickle.dumps(lazy))
    assert [str(c) for c in restored.get_model_matrix(frame).columns] == names


def _fit_both(monkeypatch, fit):
    fast_fit = fit()
    monkeypatch.setattr(fast_mod, "_parse_terms", lambda expr: None)
    import mixedmodels.design.fixed as fixed_mod
    import mixedmodels.design.random as random_mod

    monkeypatch.setattr(fixed_mod, "fast_matrix", lambda *a, **k: None)
    monkeypatch.setattr(random_mod, "fast_matrix", lambda *a, **k: None)
    slow_fit = fit()
    return fast_fit, slow_fit


def _orthodont():
    d = mm.datasets.load("Orthodont").copy()
    d["older"] = d["age"] > 10
    d["grp"] = np.where(d["distance"] > 24, "hi", "lo")
    d["age.yrs"] = d["age"] - 8.0          # an R-style dotted name
    return d


CASES = [
    ("distance ~ age * Sex + (age | Subject)", {}),
    ("distance ~ Sex + older + grp:Sex + grp + (1 + Sex | Subject)", {}),
    ("distance ~ 0 + Sex + age + (1 | Subject)", {"REML": False}),
    ("distance ~ age + I(age^2) + Sex + log(age) + (1 + I(age / 10) | Subject)", {}),
    ("distance ~ factor(age) * Sex + (1 | Subject)", {}),
    # new data must be scaled by the training rows' mean and sd (formulaic's state)
    ("distance ~ scale(age) * Sex + center(age) + (scale(age) | Subject)", {}),
    # and by the training rows' polynomial recurrence
    ("distance ~ poly(age, 2) * Sex + (poly(age, 2) | Subject)", {}),
    ("distance ~ poly(age, 2, raw = TRUE) + Sex + (1 | Subject)", {}),
    ("distance ~ age.yrs * Sex + (age.yrs | Subject)", {}),
    ("distance ~ age * Sex + grp + (1 | Subject)", {"contrasts": {"Sex": "sum", "grp": "helmert"}}),
]


@pytest.mark.parametrize("formula,kw", CASES)
def test_fits_identical_to_formulaic_path(monkeypatch, formula, kw):
    data = _orthodont()
    fast_fit, slow_fit = _fit_both(monkeypatch, lambda: mm.lmer(formula, data, **kw))
    assert fast_fit.design.fixed.names == slow_fit.design.fixed.names
    assert fast_fit.design.fixed.r_names == slow_fit.design.fixed.r_names
    np.testing.assert_array_equal(fast_fit.design.X, slow_fit.design.X)
    for a, b in zip(fast_fit.design.terms, slow_fit.design.terms, strict=True):
        assert a.names == b.names
        np.testing.assert_array_equal(a.Z, b.Z)
    assert fast_fit.objective == slow_fit.objective
    pd.testing.assert_series_equal(fast_fit.fixef, slow_fit.fixef)
    new = data.iloc[[0, 30, 60, 90]].copy()
    np.testing.assert_array_equal(np.asarray(fast_fit.predict(new)),
                                  np.asarray(slow_fit.predict(new)))
    bad = new.assign(Sex=pd.Categorical(["Other"] * 4))
    msgs = []
    for fit in (fast_fit, slow_fit):
        with pytest.raises(mm.DataError) as err:
            fit.predict(bad)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1]


def test_term_tables_identical(monkeypatch):
    data = _orthodont()
    formula = "distance ~ age * Sex + (1 | Subject)"
    fast_fit, slow_fit = _fit_both(monkeypatch, lambda: mm.lmer(formula, data))
    from mixedmodels.inference.wald_anova import wald_anova

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ContrastsWarning)  # type III on treatment coding
        for kind in (2, 3):
            pd.testing.assert_frame_equal(wald_anova(fast_fit, type=kind),
                                          wald_anova(slow_fit, type=kind))
    pd.testing.assert_frame_equal(fast_fit.anova_table(), slow_fit.anova_table())


def test_lazy_spec_not_stale_after_data_changes():
    """The spec is built from the model frame of the fit, whatever happens to the caller's
    data afterwards (pandas copy-on-write keeps the frame's columns)."""
    data = _orthodont()
    formula = "distance ~ age * Sex + (1 | Subject)"
    early = mm.lmer(formula, data)
    early.design.fixed.model_spec.resolve()           # built before the data change
    late = mm.lmer(formula, data)
    data.loc[:, "age"] = 0.0
    data["Sex"] = pd.Categorical(["Other"] * len(data))
    new = _orthodont().iloc[[0, 50, 100]]
    np.testing.assert_array_equal(np.asarray(late.predict(new)),
                                  np.asarray(early.predict(new)))


ARITHMETIC = ["size - incidence", "x + z", "x * z", "x / z", "z / 0", "-x", "+z", "x ** 2",
              "z ** 2", "z ** -1", "2 ** x", "log(z)", "log(x)", "np.log(z + 1)", "exp(x) / 2",
              "np.sqrt(z)", "log10(z) - log2(z + 1)", "np.abs(x)", "x - 1.5", "3",
              "sqrt(z)", "np.sin(x)", "x ^ 2", "f", "b * x", "nothere + 1", "scale(x)",
              "x if z else 1", "lambda: 1"]


@pytest.mark.parametrize("expr", ARITHMETIC)
def test_fast_arithmetic_equals_formulaic(expr):
    from mixedmodels.design.response import evaluate_numeric

    frame = dict(_frames())["missing x"].assign(size=lambda d: d["z"] + 3,
                                                incidence=lambda d: d["z"] // 2)
    fast = fast_mod.fast_arithmetic(expr, frame)
    ref = _formulaic(f"0 + I({expr})", frame)
    if fast is None:
        return  # formulaic evaluates it (or reports why it cannot)
    assert ref is not None and ref.shape[1] == 1, expr
    np.testing.assert_array_equal(fast, np.asarray(ref, dtype=float)[:, 0])
    np.testing.assert_array_equal(evaluate_numeric(expr, frame, "offset"), fast)


def test_fast_arithmetic_declines():
    frame = dict(_frames())["base"]
    for expr in ("z ** -1", "2 ** x", "3", "sqrt(z)", "np.sin(x)", "x ^ 2", "f", "b * x",
                 "nothere + 1", "scale(x, scale=False)", "poly(x, 2)", "scale(3)"):
        assert fast_mod.fast_arithmetic(expr, frame) is None, expr
    assert fast_mod.fast_arithmetic("log(z)", frame) is not None
    # scale(x): formulaic's stateful transform, learnt on these rows (its spec keeps the state)
    np.testing.assert_array_equal(fast_mod.fast_arithmetic("scale(x)", frame),
                                  np.asarray(_formulaic("0 + scale(x)", frame))[:, 0])


def test_poly_degree_needs_more_distinct_values():
    """R's poly refuses a degree of as many distinct values or more (the last columns would
    be rounding divided by rounding); formulaic returned them and the fit dropped one as
    aliased."""
    frame = dict(_frames())["base"]                 # z takes 7 values
    message = r"poly\(z, 7\).*degree \(7\).*distinct values.*\(7\)"
    with pytest.raises(mm.FormulaError, match=message):
        fast_matrix("poly(z, 7) + x", frame)
    sleep = mm.datasets.load("sleepstudy")
    with pytest.raises(mm.FormulaError, match="poly"):
        mm.lmer("Reaction ~ poly(Days, 10) + (1 | Subject)", sleep)


#: lme4 1.1-31 on sleepstudy (REML), tools/r/poly_reference.R.
LME4_POLY = {
    "Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject)":
        ([255.4493728, 7.4340850, 0.3370223], -892.8976),
    "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)":
        ([298.50789, 403.36417, 32.85579], -856.4042),
}
#: The digits lme4 prints (7 significant in fixef, 4 decimals in logLik).
LME4_PRINTED_RTOL = 1e-6
LME4_LOGLIK_ATOL = 1e-4


@pytest.mark.parametrize("formula", list(LME4_POLY))
def test_poly_fits_match_lme4(formula):
    """Orthonormal and raw (R's ``raw = TRUE``, whose ``TRUE`` the parser now passes as
    Python's ``True``) polynomial bases give lme4's estimates."""
    fit = mm.lmer(formula, mm.datasets.load("sleepstudy"))
    beta, loglik = LME4_POLY[formula]
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta, rtol=LME4_PRINTED_RTOL)
    assert abs(fit.loglik - loglik) < LME4_LOGLIK_ATOL


#: Random formulas per contrast setting in :func:`test_random_formulas_equal_formulaic`.
N_RANDOM_FORMULAS = 150
_RANDOM_ATOMS = ["x", "z", "p", "f", "g", "h", "log(p)", "poly(x, 2)", "I(z > 2)"]


def _random_formula(rnd, depth):
    """A formula of the atoms under ``:``, ``*``, ``/``, ``+`` and ``^``, nested."""
    if depth == 0 or rnd.random() < 0.3:
        return rnd.choice(_RANDOM_ATOMS)
    op = rnd.choice([":", "*", "/", "+", "^"])
    if op == "^":
        return (f"({_random_formula(rnd, depth - 1)} + {_random_formula(rnd, depth - 1)})"
                f"^{rnd.choice([1, 2, 3])}")
    a, b = _random_formula(rnd, depth - 1), _random_formula(rnd, depth - 1)
    if op == "+":
        return f"({a} + {b})" if rnd.random() < 0.5 else f"{a} + {b}"
    return f"{a}{op}{b}" if rnd.random() < 0.5 else f"{a} {op} {b}"


@pytest.mark.parametrize("contrasts", [None, {"f": "sum", "h": "helmert"}])
def test_random_formulas_equal_formulaic(contrasts):
    """Whatever the fast path builds of nested random formulas equals formulaic's matrix,
    names and R names bit for bit (a session's fuzzing: ~3,400 built, none differing, once
    a power of a sum holding interactions and products with interactions on both sides
    were left to formulaic)."""
    import random

    rnd = random.Random(20261206)
    rng = np.random.default_rng(3)
    n = 30
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n) + 2,
                          "p": rng.uniform(1, 3, n), "f": rng.choice(list("abc"), n),
                          "g": pd.Categorical(rng.choice(list("uv"), n)),
                          "h": rng.choice(list("pqr"), n)})
    resolved = resolve_contrasts(contrasts)
    built = 0
    for _ in range(N_RANDOM_FORMULAS):
        expr = _random_formula(rnd, 3)
        if rnd.random() < 0.2:
            expr = "0 + " + expr
        built += _built_equals_formulaic(expr, frame, resolved)
    assert built >= N_RANDOM_FORMULAS // 4

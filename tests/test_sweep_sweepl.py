"""Regressions for what the lme4-class sweep (tools/r/sweep/sweepl_lme4.R, sweepl.py,
sweepl_bad_inputs.py) found: starting values written as for lme4, and bad inputs that
failed deep inside numpy or went through. lme4 1.1.31 numbers and error messages from
tools/r/sweep/sweepl_fixtures.R (tests/fixtures/sweep/sweepl_start.*)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
#: objectives against lme4's tight fits (BOBYQA to rhoend 1e-9): ours within this, or lower
OBJECTIVE_ATOL = 1e-6
#: fixed effects and theta, relative, where the optima agree
ESTIMATE_RTOL = 1e-4


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads((FIXTURES / "sweepl_start.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "sweepl_start.csv")
    df["g"] = pd.Categorical(df["g"])
    return df


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return fn(*args, **kw)


def _check_fit(m, ref):
    assert m.objective <= ref["objective"] + OBJECTIVE_ATOL
    assert m.objective == pytest.approx(ref["objective"], abs=1e-4)
    np.testing.assert_allclose(m.beta, list(ref["beta"].values()), rtol=ESTIMATE_RTOL)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=ESTIMATE_RTOL)


def test_glmer_start_with_lme4_fixef_block_is_used(fx, data):
    """lme4's start=list(theta, fixef): the fixef block starts the fixed effects (it was
    silently dropped, so the fit ran from stage 1's estimate instead)."""
    ref = fx["glmer_start"]
    start = ref["start"]
    m = _quiet(mm.glmer, ref["formula"], data, family=ref["family"], start=start)
    _check_fit(m, ref)
    same = _quiet(mm.glmer, ref["formula"], data, family=ref["family"],
                  start={"theta": start["theta"], "beta": start["fixef"]})
    # one starting point, one deterministic search: the same numbers to the last bit
    assert np.array_equal(m.theta, same.theta) and np.array_equal(m.beta, same.beta)


def test_start_blocks_lme4_refuses_are_errors(fx, data):
    """lme4: 'bad name(s) for start vector'; a misspelt block went unnoticed here."""
    assert "bad name" in fx["r_errors"]["glmer_start_unknown_block"]
    with pytest.raises(ValueError, match=r"unknown block.*'nope'.*'theta', 'beta'"):
        mm.glmer("y ~ x + (1 | g)", data, family="poisson", start={"nope": [1.0]})
    with pytest.raises(ValueError, match=r"unknown block.*'theta_nb'.*'nb_theta'"):
        mm.glmer_nb("y ~ x + (1 | g)", data, start={"theta_nb": 2.0})
    with pytest.raises(ValueError, match=r"unknown block.*'fixef'.*the blocks are 'theta'"):
        mm.lmer("yn ~ x + (1 | g)", data, start={"fixef": [1.0, 0.0]})
    with pytest.raises(ValueError, match="'beta' twice"):
        mm.glmer("y ~ x + (1 | g)", data, family="poisson",
                 start={"beta": [1.0, 0.0], "fixef": [1.0, 0.0]})


def test_glmer_start_beta_of_wrong_length_names_the_fixed_effects(data):
    with pytest.raises(ValueError, match=r"start\['beta'\] has 3 values; the model has 2 "
                                         r"fixed effects \(Intercept, x\)"):
        mm.glmer("y ~ x + (1 | g)", data, family="poisson", start={"beta": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"start\['theta'\] must be numbers"):
        mm.glmer("y ~ x + (1 | g)", data, family="poisson", start={"theta": ["a"]})


def test_lmer_start_as_lme4_list(fx, data):
    """lmer(start = list(theta = ...)) as lme4: a dict with the theta block (a TypeError
    from numpy before)."""
    ref = fx["lmer_start"]
    m = _quiet(mm.lmer, ref["formula"], data, start=ref["start"])
    _check_fit(m, ref)
    plain = _quiet(mm.lmer, ref["formula"], data, start=ref["start"]["theta"])
    assert np.array_equal(m.theta, plain.theta)


def test_all_trials_zero_is_a_data_error(fx, data):
    """lme4: 'Response is constant'; PIRLS divided by the zero total weight before."""
    assert fx["r_errors"]["cbind_zero_trials"] == "Response is constant"
    with pytest.raises(mm.DataError, match="has zero trials"):
        mm.glmer("cbind(zero, zero) ~ x + (1 | g)", data, family="binomial")


def test_complex_columns_are_refused(fx, data):
    """lme4: 'response must be numeric'; numpy dropped the imaginary parts before."""
    assert fx["r_errors"]["complex_response"] == "response must be numeric"
    df = data.assign(yc=data["yn"] + 1j, xc=data["x"] + 0.5j)
    with pytest.raises(mm.DataError, match="'yc' used in the response holds complex"):
        mm.lmer("yc ~ x + (1 | g)", df)
    with pytest.raises(mm.DataError, match="'xc' used in the fixed effects holds complex"):
        mm.glmer("y ~ xc + (1 | g)", df, family="poisson")


@pytest.mark.parametrize("seed", ["abc", 1.5, -3, True])
def test_bad_seeds_are_our_errors(data, seed):
    m = _quiet(mm.lmer, "yn ~ x + (1 | g)", data)
    with pytest.raises((TypeError, ValueError), match="seed must be None, a non-negative"):
        m.simulate(nsim=2, seed=seed)
    with pytest.raises((TypeError, ValueError), match="seed must be None, a non-negative"):
        m.bootstrap(nsim=2, seed=seed)


def test_good_seeds_still_reproduce(data):
    m = _quiet(mm.lmer, "yn ~ x + (1 | g)", data)
    a = m.simulate(nsim=2, seed=np.int64(7))
    b = m.simulate(nsim=2, seed=np.random.SeedSequence(7))
    pd.testing.assert_frame_equal(a, b)


def test_anova_of_a_non_model_and_bootstrap_of_text(data):
    m = _quiet(mm.lmer, "yn ~ x + (1 | g)", data)
    with pytest.raises(TypeError, match="argument 2 is a str, not a fitted model"):
        mm.anova(m, "m0")
    with pytest.raises(ValueError, match="func must return numbers"):
        m.bootstrap(func=lambda fit: "x", nsim=2, seed=1)


# -- type III tests with other codings, drop1 of terms formulaic spells differently ----------
#: lmerTest's tables against ours (both fits to ~1e-9): df, F relative; p absolute
TABLE_RTOL = 1e-5
P_ATOL = 1e-7
#: drop1's AIC / LRT (ML refits on both sides), absolute
DROP1_ATOL = 1e-5


@pytest.fixture(scope="module")
def terms_fx() -> dict:
    return json.loads((FIXTURES / "sweepl_terms.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def terms_data() -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "sweepl_terms.csv")
    for col in ("g", "f", "f2"):
        df[col] = pd.Categorical(df[col])
    df["fo"] = pd.Categorical(df["fo"], categories=["lo", "mid", "hi"], ordered=True)
    df["x 1"] = df["x"]
    return df


def _check_table(tab: pd.DataFrame, ref: dict) -> None:
    assert list(tab.index) == ref["terms"]
    np.testing.assert_array_equal(tab["NumDF"], ref["NumDF"])
    np.testing.assert_allclose(tab["DenDF"], ref["DenDF"], rtol=TABLE_RTOL)
    np.testing.assert_allclose(tab["F value"], ref["F"], rtol=TABLE_RTOL)
    np.testing.assert_allclose(tab["Pr(>F)"], ref["p"], rtol=TABLE_RTOL, atol=P_ATOL)


@pytest.mark.parametrize("case", ["sum", "helmert", "ordered"])
def test_type3_tables_with_other_codings_as_lmerTest(terms_fx, terms_data, case):
    """Type III F tests (lmerTest's default) of models with sum, Helmert or polynomial
    (ordered factor) contrasts: lmerTest forms them on the treatment-coded matrix and maps
    them to the model's coefficients; they were refused ('computed for treatment-coded
    factors')."""
    ref = terms_fx[case]
    m = _quiet(mm.lmer, ref["formula"], terms_data, contrasts=ref.get("contrasts"))
    _check_table(m.anova_table(), ref)
    if "kr" in ref:
        _check_table(m.anova_table(ddf="kenward-roger"), ref["kr"])


@pytest.mark.parametrize("case", ["drop1_power", "drop1_spaced"])
def test_drop1_of_terms_spelt_differently_by_formulaic(terms_fx, terms_data, case):
    """drop1 of I(x^2) (formulaic: I(x ** 2)) and of a column named 'x 1' (backticks in the
    formula): the update formula named a term the model 'does not have'."""
    ref = terms_fx[case]
    m = _quiet(mm.lmer, ref["formula"], terms_data, REML=ref.get("REML", True))
    tab = _quiet(m.drop1, test="Chisq")
    assert len(tab) == len(ref["terms"])
    np.testing.assert_allclose(tab["AIC"], ref["AIC"], atol=DROP1_ATOL)
    np.testing.assert_allclose(tab["LRT"].iloc[1:], ref["LRT"][1:], atol=DROP1_ATOL)
    np.testing.assert_allclose(tab["Pr(Chi)"].iloc[1:], ref["p"][1:], rtol=1e-4, atol=1e-12)


def test_drop1_scope_in_formula_spelling(terms_data):
    m = _quiet(mm.lmer, "y ~ x + I(x^2) + `x 1`:f + (1 | g)", terms_data, REML=False)
    tab = _quiet(m.drop1, scope="~ I(x^2) + `x 1`:f")
    assert len(tab) == 3


def test_simulate_outside_the_range_of_an_inverse_link_is_a_clear_error():
    """Gamma with the inverse link: new random effects can make a mean negative; numpy
    said only 'scale < 0'."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(20), 8)
    eta = np.maximum(0.5 + rng.normal(0, 0.25, 20)[g], 0.05)
    df = pd.DataFrame({"g": pd.Categorical(g), "x": rng.normal(size=g.size)})
    df["y"] = rng.gamma(5.0, (1.0 / eta) / 5.0)
    m = _quiet(mm.glmer, "y ~ x + (1 | g)", df, family="Gamma", link="inverse")
    with pytest.raises(ValueError, match="outside the Gamma family's range under its "
                                         "inverse link"):
        m.simulate(nsim=50, seed=1)
    assert m.simulate(nsim=2, seed=1, re_form=None).shape == (len(df), 2)


#: profile intervals against lme4's (its spline interpolation of the profile), relative to
#: the interval's width
PROFILE_WIDTH_RTOL = 1e-3


def test_glmer_nb_profile_intervals_hold_the_shape_as_lme4():
    """confint(method='profile') of a glmer_nb fit: lme4 profiles it with the shape held
    at its estimate; ours refused ('lme4 does not profile them either')."""
    fx = json.loads((FIXTURES / "sweepl_nb_profile.json").read_text(encoding="utf-8"))
    df = pd.read_csv(FIXTURES / "sweepl_nb_profile.csv")
    df["g"] = pd.Categorical(df["g"])
    m = _quiet(mm.glmer_nb, fx["formula"], df)
    assert m.objective <= fx["objective"] + 1e-4
    assert m.family.theta == pytest.approx(fx["nb_theta"], rel=1e-3)
    ci = _quiet(m.confint, method="profile")
    lo, up = np.asarray(fx["lower"]), np.asarray(fx["upper"])
    assert len(ci) == len(lo)
    width = up - lo
    assert np.max(np.abs(ci["lower"].to_numpy() - lo) / width) < PROFILE_WIDTH_RTOL
    assert np.max(np.abs(ci["upper"].to_numpy() - up) / width) < PROFILE_WIDTH_RTOL


@pytest.mark.parametrize("new", [". ~ . +", ". ~ . - ", ". ~ . + x:"])
def test_update_formula_ending_in_an_operator_is_an_error(data, new):
    """R cannot parse '. ~ . +'; the dangling operator was dropped and the old model
    refitted as if nothing had been asked."""
    m = _quiet(mm.lmer, "yn ~ x + (1 | g)", data)
    with pytest.raises(mm.FormulaError, match="a term is missing after it"):
        m.update(new)

"""GLMM response forms, offsets and the errors and warnings for bad input (issue 3)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.families import NonIntegerCountWarning

#: Two spellings of the same model must give the same fit to rounding.
SAME_FIT_RTOL = 1e-7

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def contraception():
    return mm.datasets.load("Contraception")


def _same(a, b):
    assert a.objective == pytest.approx(b.objective, rel=SAME_FIT_RTOL)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-5, atol=1e-7)


def test_binomial_response_forms_agree(contraception):
    f = "~ age + urban + (1 | district)"
    d = contraception.copy()
    d["use_bool"] = d["use"] == "Y"
    d["use01"] = d["use_bool"].astype(float)
    by_factor = mm.glmer("use " + f, d, family="binomial")
    _same(by_factor, mm.glmer("use_bool " + f, d, family="binomial"))
    _same(by_factor, mm.glmer("use01 " + f, d, family="binomial"))
    # R's rule: the first level of a factor is failure; reversing the levels flips the signs
    d["use_rev"] = d["use"].cat.reorder_categories(["Y", "N"])
    rev = mm.glmer("use_rev " + f, d, family="binomial")
    assert rev.objective == pytest.approx(by_factor.objective, rel=SAME_FIT_RTOL)
    np.testing.assert_allclose(rev.beta, -by_factor.beta, rtol=1e-5, atol=1e-7)


def test_cbind_equals_proportions_with_weights(cbpp):
    a = mm.glmer(CBPP, cbpp, family="binomial")
    d = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    _same(a, mm.glmer("prop ~ period + (1 | herd)", d, family="binomial", weights="size"))
    _same(a, mm.glmer("prop ~ period + (1 | herd)", d, family="binomial",
                      weights=cbpp["size"].to_numpy()))


def test_offset_argument_equals_formula_offset(cbpp):
    a = mm.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp,
                 family="poisson")
    b = mm.glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson",
                 offset=np.log(cbpp["size"].to_numpy()))
    _same(a, b)
    # the offset is part of the linear predictor of both fits
    np.testing.assert_allclose(a.predict(), b.predict(), rtol=1e-6)


def test_observation_level_random_effects_are_allowed():
    d = mm.datasets.load("grouseticks")
    m = mm.glmer("TICKS ~ YEAR + (1 | INDEX)", d, family="poisson")
    assert m.ngroups["INDEX"] == m.nobs
    assert m.varcorr.terms[0].sd[0] > 0.5     # the lognormal-Poisson overdispersion


# -- errors ------------------------------------------------------------------------------------
def test_binomial_response_outside_unit_interval(cbpp):
    with pytest.raises(mm.DataError, match=r"proportion in \[0, 1\].*outside \[0, 1\]"):
        mm.glmer("incidence ~ period + (1 | herd)", cbpp, family="binomial")


def test_negative_failure_count(cbpp):
    with pytest.raises(mm.DataError, match=r"negative values.*number of failures, not of "
                                           r"trials"):
        mm.glmer("cbind(incidence, incidence - size) ~ period + (1 | herd)", cbpp,
                 family="binomial")


def test_cbind_needs_two_columns_and_the_binomial(cbpp):
    with pytest.raises(mm.FormulaError, match="exactly two columns"):
        mm.glmer("cbind(incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    with pytest.raises(mm.FormulaError, match="for the binomial family"):
        mm.glmer(CBPP, cbpp, family="poisson")


@pytest.mark.parametrize(("family", "values", "match"), [
    ("poisson", [-1.0, 2.0], "negative counts in the Poisson response"),
    ("Gamma", [0.0, 2.0], "Gamma response .* must be positive"),
    ("inverse_gaussian", [-0.5, 2.0], "inverse.gaussian response .* must be positive"),
])
def test_response_outside_the_support(family, values, match):
    d = pd.DataFrame({"y": np.tile(values, 10) + np.repeat([0.0, 1.0], 10),
                      "g": np.repeat(["a", "b", "c", "d"], 5)})
    with pytest.raises(mm.DataError, match=match):
        mm.glmer("y ~ 1 + (1 | g)", d, family=family)


def test_negative_counts_for_negative_binomial():
    d = pd.DataFrame({"y": [-1, 2, 3, 0, 1, 4] * 3, "g": list("aabbcc") * 3})
    with pytest.raises(mm.DataError, match="negative counts in the negative binomial"):
        mm.glmer_nb("y ~ 1 + (1 | g)", d)


def test_non_integer_counts_warn():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"y": rng.poisson(3, 60) + 0.5, "g": np.repeat(list("abcdef"), 10)})
    with pytest.warns(NonIntegerCountWarning, match="non-integer values in the Poisson"):
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        mm.glmer("y ~ 1 + (1 | g)", d, family="poisson")


def test_non_integer_binomial_successes_warn(cbpp):
    d = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"], n=cbpp["size"] + 0.5)
    with pytest.warns(NonIntegerCountWarning, match="numbers of successes"):
        mm.glmer("prop ~ period + (1 | herd)", d, family="binomial", weights="n")


def test_boolean_or_factor_response_needs_the_binomial(contraception):
    with pytest.raises(mm.DataError, match=r"not numeric.*family='binomial'"):
        mm.glmer("use ~ age + (1 | district)", contraception, family="poisson")


def test_unknown_family_and_unsupported_link(cbpp):
    with pytest.raises(mm.FormulaError, match="unknown family 'bernoulli'"):
        mm.glmer(CBPP, cbpp, family="bernoulli")
    with pytest.raises(mm.FormulaError, match="binomial family does not support the "
                                              "'identity' link"):
        mm.glmer(CBPP, cbpp, family="binomial", link="identity")


def test_nagq_above_one_needs_one_scalar_term(cbpp):
    with pytest.raises(mm.FormulaError, match=r"single scalar random-effects term.*nAGQ=1"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | period)",
                 cbpp, family="binomial", nAGQ=5)
    d = cbpp.assign(x=np.arange(len(cbpp)) / 10.0)
    with pytest.raises(mm.FormulaError, match="single scalar"):
        mm.glmer("cbind(incidence, size - incidence) ~ x + (1 + x | herd)", d,
                 family="binomial", nAGQ=3)
    with pytest.raises(mm.FormulaError, match="at most 25"):
        mm.glmer(CBPP, cbpp, family="binomial", nAGQ=26)
    with pytest.raises(mm.FormulaError, match=">= 0"):
        mm.glmer(CBPP, cbpp, family="binomial", nAGQ=-1)
    with pytest.raises(mm.FormulaError, match="integer"):
        mm.glmer(CBPP, cbpp, family="binomial", nAGQ=1.5)


def test_grouping_factor_needs_two_levels(cbpp):
    d = cbpp.assign(one="a")
    with pytest.raises(mm.DataError, match="only 1 level"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | one)", d,
                 family="binomial")


def test_factor_response_with_one_level(cbpp):
    d = cbpp.assign(r=pd.Categorical(["x"] * len(cbpp)))
    with pytest.raises(mm.DataError, match="only 1 level"):
        mm.glmer("r ~ period + (1 | herd)", d, family="binomial")


def test_warnings_are_kept_on_the_result(cbpp):
    d = cbpp.copy()
    d.loc[3, "incidence"] = np.nan
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        m = mm.glmer(CBPP, d, family="binomial")
    assert m.nobs == len(cbpp) - 1
    assert any("dropped" in msg.lower() or "missing" in msg.lower() for msg in m.messages)


def test_cbind_arithmetic_forms(cbpp):
    """``a - b`` and ``n - a`` with a number are read without formulaic; other expressions
    go through formulaic: all give the same response."""
    d = cbpp.assign(fail=cbpp["size"] - cbpp["incidence"], twenty=20)
    a = mm.glmer(CBPP, cbpp, family="binomial")
    _same(a, mm.glmer("cbind(incidence, fail) ~ period + (1 | herd)", d, family="binomial"))
    _same(a, mm.glmer("cbind(incidence, (size - incidence) * 1) ~ period + (1 | herd)", d,
                      family="binomial"))
    b = mm.glmer("cbind(incidence, 20 - incidence) ~ period + (1 | herd)", d,
                 family="binomial")
    _same(b, mm.glmer("cbind(incidence, twenty - incidence) ~ period + (1 | herd)", d,
                      family="binomial"))

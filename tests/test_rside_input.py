"""Bad input to the residual structures: each a clear error naming what and where."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from rside_fixtures import data


@pytest.fixture
def spatial():
    return data("spatial").copy()


def test_coordinates_missing_from_the_data(spatial):
    with pytest.raises(mm.DataError, match=r"'nort' used in the covariate of cor_exp.*"
                                           r"did you mean 'north'"):
        mm.gls("y ~ elev", spatial, correlation=mm.cor_exp(form="~ east + nort | site.id"))


def test_coordinates_not_numeric(spatial):
    spatial["east"] = spatial.east.astype(str) + "m"
    with pytest.raises(mm.DataError, match=r"covariate of cor_exp.*'east' is not numeric"):
        mm.gls("y ~ elev", spatial, correlation=mm.cor_exp(form="~ east + north | site.id"))


def test_missing_coordinates_drop_rows_with_a_warning(spatial):
    spatial.loc[5, "east"] = np.nan
    with pytest.warns(mm.DroppedRowsWarning, match="'east': 1"):
        m = mm.gls("y ~ elev", spatial, correlation=mm.cor_exp(form="~ east + north | site.id"))
    assert m.nobs == len(spatial) - 1


def test_correlation_form_naming_an_absent_column(spatial):
    with pytest.raises(mm.DataError, match=r"'site' used in the grouping of cor_exp"):
        mm.gls("y ~ elev", spatial, correlation=mm.cor_exp(form="~ east + north | site"))


@pytest.mark.parametrize("cls", [mm.cor_ar1, mm.cor_car1])
def test_duplicated_times_within_a_group(spatial, cls):
    spatial["t"] = spatial.groupby("site.id").cumcount()
    spatial.loc[spatial.index[3], "t"] = 0
    with pytest.raises(mm.DataError, match=r"the value 0 more than once within group 'G01'"):
        mm.gls("y ~ elev", spatial, correlation=cls(form="~ t | site.id"))


def test_ar1_needs_whole_number_times(spatial):
    with pytest.raises(mm.DataError, match=r"must hold whole numbers.*Use cor_car1"):
        mm.gls("y ~ elev", spatial, correlation=mm.cor_ar1(form="~ east | site.id"))


def test_zero_distance_within_a_group(spatial):
    spatial.loc[3, ["east", "north"]] = spatial.loc[4, ["east", "north"]].to_numpy()
    with pytest.raises(mm.DataError, match=r"rows 3 and 4 of the same group have the same "
                                           r"coordinates"):
        mm.gls("y ~ elev", spatial, correlation=mm.cor_exp(form="~ east + north | site.id"))


def test_correlation_groups_must_nest_in_the_random_effects(spatial):
    spatial["half"] = np.where(spatial.groupby("site.id").cumcount() < 5, "a", "b")
    with pytest.raises(mm.FormulaError, match=r"not nested in the levels of the "
                                              r"random-effects grouping 'site.id'"):
        mm.lmer("y ~ elev + (1 | site.id)", spatial,
                correlation=mm.cor_exp(form="~ east + north | half"))


def test_lmer_uses_the_innermost_grouping_when_the_form_has_none(spatial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mm.lmer("y ~ elev + (1 | site.id)", spatial, correlation=mm.cor_exp(
            form="~ east + north"))
        b = mm.lmer("y ~ elev + (1 | site.id)", spatial, correlation=mm.cor_exp(
            form="~ east + north | site.id"))
    assert a.objective == pytest.approx(b.objective, abs=1e-8)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"correlation": "ar1"}, TypeError, "correlation= must be a correlation structure"),
    ({"variance": "power"}, TypeError, "variance= must be a variance function"),
    ({"correlation": mm.cor_exp(form="east + north")}, mm.FormulaError,
     "must be a one-sided formula"),
    ({"correlation": mm.cor_exp(form="~ east | site.id | x")}, mm.FormulaError,
     "more than one"),
    ({"correlation": mm.cor_exp(form="~ east | site.id", metric="cosine")}, ValueError,
     "metric must be one of"),
    ({"correlation": mm.cor_ar1(0.5, form="~ 1 | site.id"), "variance": mm.var_ident()},
     mm.FormulaError, "var_ident needs strata"),
    ({"correlation": mm.cor_arma(form="~ 1 | site.id")}, ValueError,
     "at least one of p and q"),
    ({"correlation": mm.cor_ar1(1.5, form="~ 1 | site.id")}, ValueError,
     r"phi must lie in \(-1, 1\)"),
    ({"variance": mm.var_power(form="~ zero")}, mm.DataError, "the covariate is 0"),
])
def test_bad_structure_arguments(spatial, kwargs, exc, match):
    spatial["zero"] = 0.0
    with pytest.raises(exc, match=match):
        mm.gls("y ~ elev", spatial, **kwargs)


def test_gls_refuses_random_effects_and_lmer_bad_sigma(spatial):
    with pytest.raises(mm.FormulaError, match="has random-effects terms"):
        mm.gls("y ~ elev + (1 | site.id)", spatial)
    with pytest.raises(ValueError, match="sigma= must be a positive number"):
        mm.lmer("y ~ elev + (1 | site.id)", spatial, sigma="1")


def test_unavailable_inference_says_what_to_use(spatial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("y ~ elev + (1 | site.id)", spatial,
                    correlation=mm.cor_exp(form="~ east + north | site.id"))
    with pytest.raises(NotImplementedError, match=r"use m.intervals\(\)"):
        m.confint(method="profile")
    with pytest.raises(NotImplementedError, match="Satterthwaite"):
        m.coef_table(ddf="satterthwaite")
    table = m.coef_table()
    assert "df" in table.columns


def test_general_correlation_with_more_parameters_than_rows():
    # form='~ 1' without a group makes the whole data one series: 180 positions, 16110
    # correlations (before the check its derivative arrays took all memory)
    d = mm.datasets.load("sleepstudy")
    with pytest.raises(mm.DataError, match=r"180 positions has 16110 parameters .* give the "
                                           r"grouping factor"):
        mm.gls("Reaction ~ Days", d, correlation=mm.cor_symm(form="~ 1"))
    three = d.assign(g=np.arange(180) // 60, t=np.arange(180) % 60 + 1)
    with pytest.raises(mm.DataError, match=r"60 positions has 1770 parameters but the data "
                                           r"have only 180 rows; use a structured"):
        mm.gls("Reaction ~ Days", three, correlation=mm.cor_symm(form="~ t | g"))
    # a series per subject is fine: 10 positions, 45 correlations from 180 rows
    sub = d.assign(t=d["Days"] + 1)
    m = mm.gls("Reaction ~ Days", sub, correlation=mm.cor_symm(form="~ t | Subject"))
    assert len(m.cor_params) == 45

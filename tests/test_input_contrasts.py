"""Contrasts, ordered factors, R's coefficient names, '.' and the response on the right,
against lme4 (tests/fixtures/input/contrasts.json, made by tools/r/input_fixtures.R).

Tolerances: REML criterion 1e-6 relative (lme4 1.1-31's optimum; ours is the same optimum
to ~1e-8), fixed effects and standard errors 1e-4 relative (issue 2's fit tolerances).
Coefficient names and their order must equal lme4's exactly.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from formulaic.transforms.contrasts import PolyContrasts, SumContrasts, TreatmentContrasts

import mixedmodels as mm
from reference_models import parse_python_field, reference

FIXTURE = Path(__file__).parent / "fixtures" / "input" / "contrasts.json"
OBJECTIVE_RTOL = 1e-6
BETA_RTOL = 1e-4
SE_RTOL = 1e-4
BETA_ATOL = 1e-8
#: R prints contr.poly with 15 significant digits
POLY_ATOL = 1e-13


@cache
def fixture() -> dict:
    with FIXTURE.open() as fh:
        return json.load(fh)


def fixture_frame(columns=None) -> pd.DataFrame:
    fx = fixture()
    df = pd.DataFrame(fx["data"])
    df["o"] = pd.Categorical(df["o"], categories=fx["ordered_levels"]["o"], ordered=True)
    return df if columns is None else df[list(columns)]


def fit(model: dict, **kw) -> mm.LinearMixedModelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return mm.lmer(model["formula"], fixture_frame(model.get("columns")),
                       contrasts=model.get("contrasts"), **kw)


@pytest.mark.parametrize("mid", sorted(fixture()["models"]))
def test_matches_lme4(mid):
    model = fixture()["models"][mid]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = fit(model)
    assert list(m.design.fixed.r_names) == model["beta_names"]
    assert m.objective == pytest.approx(model["objective"], rel=OBJECTIVE_RTOL)
    # '.' puts the grouping factor g among the fixed effects too (as in lme4): its random
    # intercept is confounded with them, the criterion is flat in theta and the intercept,
    # the g coefficients and their standard errors are not identified -- compare the rest
    keep = [j for j, n in enumerate(model["beta_names"])
            if not (mid.startswith("dot") and (n == "(Intercept)" or n.startswith("gg")))]
    np.testing.assert_allclose(m.fixef.to_numpy()[keep], np.asarray(model["beta"])[keep],
                               rtol=BETA_RTOL, atol=BETA_ATOL)
    np.testing.assert_allclose(m.se.to_numpy()[keep], np.asarray(model["se"])[keep],
                               rtol=SE_RTOL)
    ours = [str(w.message) for w in caught if issubclass(w.category, mm.FormulaWarning)]
    if any("response appeared on the right-hand side" in w for w in model["warnings"]):
        assert any("appeared on the right-hand side" in w for w in ours)
    else:
        assert not ours


def test_contr_poly_is_r_and_orthonormal_polynomials():
    """formulaic's polynomial contrasts equal R's contr.poly(k), k = 2..8, and a hand
    computation: Gram-Schmidt on 1, t, t^2, ... of the level index t, unit length, each
    column's sign making its highest-degree coefficient positive."""
    for k, r_matrix in zip(range(2, 9), fixture()["contr_poly"], strict=True):
        levels = list(range(k))
        ours = PolyContrasts().get_coding_matrix(levels, reduced_rank=True).to_numpy()
        np.testing.assert_allclose(ours, np.asarray(r_matrix), atol=POLY_ATOL)
        t = np.arange(1.0, k + 1)
        q, r = np.linalg.qr(np.vander(t, k, increasing=True))
        hand = q * np.sign(np.diag(r))  # Gram-Schmidt signs: positive leading coefficients
        np.testing.assert_allclose(ours, hand[:, 1:], atol=1e-12)
        np.testing.assert_allclose(ours.T @ ours, np.eye(k - 1), atol=1e-12)


def test_contrasts_spellings_agree():
    """'sum', 'contr.sum', the class, an instance and the coding matrix are one model."""
    model = fixture()["models"]["sum_arg"]
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    fits = [fit(dict(model, contrasts={"f": spec}))
            for spec in ("sum", "contr.sum", "Sum", SumContrasts, SumContrasts(), matrix)]
    for m in fits[1:]:
        np.testing.assert_allclose(m.fixef.to_numpy(), fits[0].fixef.to_numpy(), rtol=1e-10)
        assert m.objective == pytest.approx(fits[0].objective, rel=1e-12)
    assert list(fits[0].design.fixed.r_names) == model["beta_names"]


def test_in_formula_and_argument_contrasts_agree():
    """C(f, Sum), C(f, contr.sum) and contrasts={'f': 'sum'} give one fit; the names say
    which spelling was used."""
    df = fixture_frame()
    a = mm.lmer("y ~ x + C(f, Sum) + (1 | g)", df)
    b = mm.lmer("y ~ x + C(f, contr.sum) + (1 | g)", df)
    c = mm.lmer("y ~ x + f + (1 | g)", df, contrasts={"f": "sum"})
    for m in (b, c):
        np.testing.assert_allclose(m.fixef.to_numpy(), a.fixef.to_numpy(), rtol=1e-10)
    assert list(c.fixef.index) == ["Intercept", "x", "f[S.a]", "f[S.b]"]


def test_treatment_base_and_prediction_keep_contrasts():
    df = fixture_frame()
    m = mm.lmer("y ~ x + f + (1 | g)", df, contrasts={"f": TreatmentContrasts(base="b")})
    assert m.design.fixed.r_names == ("(Intercept)", "x", "fa", "fc")
    f2 = mm.lmer("y ~ x + C(f, contr.treatment(base='b')) + (1 | g)", df)
    np.testing.assert_allclose(m.fixef.to_numpy(), f2.fixef.to_numpy(), rtol=1e-10)
    # new data are coded with the fit's contrasts (sum and poly), so predict == fitted
    for formula, kw in [("y ~ x * f + (1 | g)", {"contrasts": {"f": "helmert"}}),
                        ("y ~ x * o + (1 | g)", {})]:
        m = mm.lmer(formula, df, **kw)
        np.testing.assert_allclose(m.predict(df), m.fitted(), rtol=1e-12)
        np.testing.assert_allclose(m.predict(df.iloc[::-1]), m.fitted().iloc[::-1],
                                   rtol=1e-12)


def test_contrasts_argument_errors():
    df = fixture_frame()
    with pytest.raises(mm.DataError, match=r"contrasts\['f'\] = 'summ' is not a known"):
        mm.lmer("y ~ f + (1 | g)", df, contrasts={"f": "summ"})
    with pytest.raises(mm.DataError, match=r"column 'x' is numeric.*C\(x\)"):
        mm.lmer("y ~ x + (1 | g)", df, contrasts={"x": "sum"})
    with pytest.raises(mm.DataError, match="contrasts must be a dict"):
        mm.lmer("y ~ f + (1 | g)", df, contrasts="sum")
    with pytest.warns(mm.FormulaWarning, match="contrasts names 'ff'"):
        mm.lmer("y ~ f + (1 | g)", df, contrasts={"ff": "sum"})


def test_contrasts_on_glmer_and_lm():
    df = fixture_frame()
    df["k"] = (df["y"] > df["y"].median()).astype(int)
    g = mm.glmer("k ~ x + f + (1 | g)", df, family="binomial", contrasts={"f": "sum"})
    assert g.design.fixed.r_names == ("(Intercept)", "x", "f1", "f2")
    lm = mm.lm("y ~ x + f", df, contrasts={"f": "helmert"})
    assert lm.design.fixed.r_names == ("(Intercept)", "x", "f1", "f2")


def test_r_names_of_reference_models():
    """R's names, in R's order, for every formula of visible.json (its beta keys)."""
    from mixedmodels.design import materialize
    from mixedmodels.design.lhs import make_response, response_variables
    from mixedmodels.families import make_family

    checked = 0
    for key, ref in reference().items():
        formula, opts = parse_python_field(ref["python"])
        if "ar1(" in formula:
            continue  # glmmTMB's ar1() is not available yet
        spec = mm.parse_formula(formula)
        family = opts.get("family", "gaussian").split()[0]
        kw = {}
        if family in ("binomial", "poisson"):
            fam = make_family(family, None)
            kw = {"response": make_response(fam),
                  "response_vars": response_variables(spec.response)}
        design = materialize(spec, mm.datasets.load(ref["data"]), **kw)
        assert list(design.fixed.r_names) == list(ref["beta"]), key
        checked += 1
    assert checked >= 20

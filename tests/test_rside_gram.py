"""The cross-products ``M' V^{-1} M`` and ``log|V|`` of :mod:`mixedmodels.rside.gram`.

Every plan (per-row outer products for banded ``V^{-1}``, per-pattern products for shared
factors, ARMA's groups padded into one batch, compound symmetry's closed form, with scaled
rows too) against the
whitening of the rows (:class:`~mixedmodels.rside.gram.WhitenedGram`, the Cholesky factors
of every group) at random parameters, on a panel with unequal groups (prefix patterns),
irregular times and shuffled rows; and the ``gls`` criterion unchanged by a response
shifted by 1e5 (the basis keeps the cross-products well conditioned); the closed-form
whitening of a fixed ``M`` under a Markov correlation
(:class:`~mixedmodels.rside.gram.MarkovWhitening`, the LMM's path) against the structure's
own whitening.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.rside.gram import (
    BandedGram,
    CompSymmGram,
    MarkovWhitening,
    PatternGram,
    WhitenedGram,
    gram_plan,
    whitening_plan,
)
from mixedmodels.rside.group_gram import GroupGram
from mixedmodels.rside.objective import GLSObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns
from mixedmodels.rside.scaled_cs_gram import ScaledCompSymmGram

#: Relative agreement of the cross-products (sums of a few hundred terms in another order).
GRAM_TOL = 1e-12
#: Relative agreement of two pullbacks of the same gradient (products of inverse factors
#: in another order: a few more roundings than the cross-products).
VJP_TOL = 1e-10
#: Criterion of y and of y + 1e5: the basis residualizes the response, so only rounding
#: of order 1e-10 of the deviance remains.
SHIFT_TOL = 1e-8


def _panel(seed=7, shuffle=False):
    rng = np.random.default_rng(seed)
    g, m = 12, 6
    d = pd.DataFrame({"sub": np.repeat([f"s{i}" for i in range(g)], m),
                      "t": np.tile(np.arange(1, m + 1), g).astype(float),
                      "x": rng.normal(size=g * m), "z": rng.uniform(0.5, 3.0, size=g * m),
                      "w": rng.uniform(0.5, 2.0, size=g * m)})
    # dropouts: shorter groups whose times are a prefix of the full pattern, and gaps
    d = d.drop(index=[5, 11, 10, 23, 40]).reset_index(drop=True)
    d["tt"] = d["t"] + np.where(d["sub"] == "s3", 0.25, 0.0)          # a second pattern
    # whole times shifted by the group's number: every group its own pattern (no sharing)
    d["tg"] = d["t"] + d["sub"].str[1:].astype(int)
    d["y"] = 2.0 + d.x + rng.normal(size=len(d))
    if shuffle:
        d = d.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return d


def _objective(d, cor, var=None, weights=None, y="y"):
    spec = ResidualSpec.make(cor, var)
    design = materialize(parse_formula(f"{y} ~ x"), d, require_random=False,
                         weights=weights, extra_columns=residual_columns(spec))
    return GLSObjective(design.X, design.y, bind_residual(spec, design))


CASES = [
    (mm.cor_ar1(form="~ t | sub"), None, None, BandedGram),
    (mm.cor_car1(form="~ tt | sub"), None, None, BandedGram),
    (mm.cor_ar1(form="~ t | sub"), mm.var_power(form="~ z"), None, BandedGram),
    (mm.cor_car1(form="~ tt | sub"), None, "w", BandedGram),
    (None, mm.var_exp(form="~ z"), None, BandedGram),
    (None, None, "w", BandedGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), None, None, CompSymmGram),
    (mm.cor_exp(form="~ tt | sub"), None, None, PatternGram),
    (mm.cor_spher(form="~ tt | sub", nugget=True), None, None, PatternGram),
    (mm.cor_arma(form="~ t | sub", p=1, q=1), None, None, PatternGram),
    (mm.cor_symm(form="~ t | sub"), None, None, PatternGram),
    (mm.cor_arma(form="~ tg | sub", p=1, q=1), None, None, GroupGram),
    (mm.cor_arma(form="~ t | sub", p=2), mm.var_power(form="~ z"), None, GroupGram),
    (mm.cor_arma(form="~ tg | sub", q=1), None, "w", GroupGram),
    (mm.cor_exp(form="~ tt | sub"), mm.var_power(form="~ z"), None, WhitenedGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), None, "w", ScaledCompSymmGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), mm.var_power(form="~ z"), None, ScaledCompSymmGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), mm.var_const_power(form="~ z"), "w",
     ScaledCompSymmGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), mm.var_ident(form="~ 1 | sub"), None,
     ScaledCompSymmGram),
    (mm.cor_comp_symm(form="~ 1 | sub"), mm.var_exp(form="~ t"), None, ScaledCompSymmGram),
]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("cor, var, weights, plan", CASES,
                         ids=lambda v: getattr(v, "label", None) or getattr(v, "__name__", None)
                         or str(v))
def test_each_plan_matches_whitening(cor, var, weights, plan, shuffle):
    obj = _objective(_panel(shuffle=shuffle), cor, var, weights)
    assert type(obj._gram) is plan
    ref = WhitenedGram(obj.residual, obj._M)
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = obj.x0 + rng.normal(scale=0.4, size=obj.x0.size)
        (A, ld), (A0, ld0) = obj._gram.value(x), ref.value(x)
        scale = np.max(np.abs(A0))
        assert np.max(np.abs(A - A0)) <= GRAM_TOL * scale
        assert ld == pytest.approx(ld0, rel=GRAM_TOL, abs=GRAM_TOL)


def test_plan_refuses_a_non_definite_correlation():
    obj = _objective(_panel(), mm.cor_ar1(form="~ t | sub"))
    assert gram_plan(obj.residual, obj._M).value(np.array([80.0])) is None


@pytest.mark.parametrize("cor", [mm.cor_ar1(form="~ t | sub"),
                                 mm.cor_exp(form="~ tt | sub"),
                                 mm.cor_comp_symm(form="~ 1 | sub")],
                         ids=lambda c: c.label)
def test_shifted_response_keeps_the_criterion(cor):
    d = _panel()
    d["y_big"] = d["y"] + 1e5
    a, b = _objective(d, cor), _objective(d, cor, y="y_big")
    x = a.x0 + 0.3
    assert b(x) == pytest.approx(a(x), abs=SHIFT_TOL)
    assert b.solve(x).beta[0] - a.solve(x).beta[0] == pytest.approx(1e5, rel=1e-12)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("cor, var, weights", [
    (mm.cor_ar1(form="~ t | sub"), None, None),
    (mm.cor_car1(form="~ tt | sub"), mm.var_power(form="~ z"), None),
    (mm.cor_ar1(form="~ t | sub"), mm.var_exp(form="~ z"), "w"),
], ids=["ar1", "car1_power", "ar1_exp_weights"])
def test_markov_whitening_plan_matches_the_structures_whitening(cor, var, weights, shuffle):
    obj = _objective(_panel(shuffle=shuffle), cor, var, weights)
    plan = whitening_plan(obj.residual, obj._M)
    assert isinstance(plan, MarkovWhitening)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = obj.x0 + rng.normal(scale=0.4, size=obj.x0.size)
        (W, ld), (W0, ld0) = plan(x), obj.residual.whiten(x, obj._M)
        assert np.max(np.abs(W - W0)) <= GRAM_TOL * np.max(np.abs(W0))
        assert ld == pytest.approx(ld0, rel=GRAM_TOL, abs=GRAM_TOL)


@pytest.mark.parametrize("cor, var, weights", [
    (mm.cor_arma(form="~ tg | sub", p=1, q=1), None, None),
    (mm.cor_arma(form="~ t | sub", p=2), mm.var_power(form="~ z"), None),
    (mm.cor_arma(form="~ tg | sub", q=1), mm.var_ident(form="~ 1 | sub"), "w"),
], ids=["arma11_gaps", "ar2_power", "ma1_ident_weights"])
def test_group_gram_gradient_matches_the_whitening_pullback(cor, var, weights):
    # the padded batch's closed-form pullback against the structure's per-size whitening
    # pullback (WhitenedGram: one factor per group, batched by size)
    obj = _objective(_panel(), cor, var, weights)
    assert type(obj._gram) is GroupGram
    ref = WhitenedGram(obj.residual, obj._M)
    rng = np.random.default_rng(3)
    G = rng.normal(size=(obj._M.shape[1],) * 2)
    G = G + G.T
    for _ in range(3):
        x = obj.x0 + rng.normal(scale=0.4, size=obj.x0.size)
        g, g0 = obj._gram.vjp(x)[2](G), ref.vjp(x)[2](G)
        assert np.max(np.abs(g - g0)) <= VJP_TOL * max(1.0, np.max(np.abs(g0)))


#: Central differences of the gls criterion (~1e3) with step 1e-5: truncation ~1e-10
#: of the curvature, rounding ~1e-13 / 1e-5 = 1e-8 relative to the criterion's terms.
FD_TOL = 1e-5


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("var, weights", [
    (mm.var_power(form="~ z"), None),
    (mm.var_const_power(form="~ z"), "w"),
    (mm.var_ident(form="~ 1 | sub"), None),
    (None, "w"),
], ids=["power", "const_power_weights", "ident", "weights_only"])
def test_scaled_comp_symm_gradient(var, weights, shuffle):
    # the closed-form pullback against the whitening pullback, and the criterion's
    # gradient against central differences (unequal groups, rows in any order)
    obj = _objective(_panel(shuffle=shuffle), mm.cor_comp_symm(form="~ 1 | sub"), var,
                     weights)
    assert type(obj._gram) is ScaledCompSymmGram and obj.fast_gradient
    ref = WhitenedGram(obj.residual, obj._M)
    rng = np.random.default_rng(5)
    G = rng.normal(size=(obj._M.shape[1],) * 2)
    G = G + G.T
    h = 1e-5
    for _ in range(3):
        x = obj.x0 + rng.normal(scale=0.4, size=obj.x0.size)
        # the closed-form cross-product (value goes by whitening, vjp does not)
        A, ld, pullback = obj._gram.vjp(x)
        A0, ld0 = ref.value(x)
        assert np.max(np.abs(A - A0)) <= GRAM_TOL * np.max(np.abs(A0))
        assert ld == pytest.approx(ld0, rel=GRAM_TOL, abs=GRAM_TOL)
        g, g0 = pullback(G), ref.vjp(x)[2](G)
        assert np.max(np.abs(g - g0)) <= VJP_TOL * max(1.0, np.max(np.abs(g0)))
        _, grad = obj.value_and_gradient(x)
        fd = np.array([(obj(x + h * e) - obj(x - h * e)) / (2 * h)
                       for e in np.eye(x.size)])
        assert np.max(np.abs(grad - fd)) <= FD_TOL * max(1.0, np.max(np.abs(fd)))


@pytest.mark.parametrize("cor", [None, mm.cor_ar1(form="~ t | sub")],
                         ids=["no_correlation", "ar1"])
def test_objective_with_an_updated_fitted_covariate_matches_a_fresh_one(cor):
    # the fitted(.) iterations reuse the first objective's basis and outer products
    d = _panel()
    spec = ResidualSpec.make(cor, mm.var_power())
    design = materialize(parse_formula("y ~ x"), d, require_random=False,
                         extra_columns=residual_columns(spec))
    bound = bind_residual(spec, design)
    first = GLSObjective(design.X, design.y, bound.with_fitted(np.ones(design.nobs)))
    rng = np.random.default_rng(2)
    later = bound.with_fitted(rng.uniform(1.0, 4.0, design.nobs))
    reused, fresh = first.with_residual(later), GLSObjective(design.X, design.y, later)
    assert type(reused._gram) is BandedGram
    for _ in range(3):
        x = fresh.x0 + rng.normal(scale=0.4, size=fresh.x0.size)
        (f, g), (f0, g0) = reused.value_and_gradient(x), fresh.value_and_gradient(x)
        assert f == pytest.approx(f0, rel=GRAM_TOL)
        assert np.max(np.abs(g - g0)) <= VJP_TOL * max(1.0, np.max(np.abs(g0)))

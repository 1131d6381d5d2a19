"""Refitting by recipe (update, refit, ML refits), R's update formulas, and the front doors'
keyword handling (reml=, verbose=, optimizer names, yes/no arguments)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import FormulaError, update_formula

OBJ_TOL = 1e-8


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def m(sleep):
    return mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


# -- update_formula -------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, expected", [
    ("Reaction ~ Days + (Days | Subject)", ". ~ . - Days", "Reaction ~ (Days | Subject)"),
    ("Reaction ~ Days + (Days | Subject)", ". ~ . - (Days | Subject) + (1 | Subject)",
     "Reaction ~ Days + (1 | Subject)"),
    ("Reaction ~ Days + (Days|Subject)", ". ~ . - (Days | Subject)", "Reaction ~ Days"),
    ("y ~ x + (1 | g)", ". ~ . + z", "y ~ x + z + (1 | g)"),
    ("y ~ x + (1 | g)", "~ . + z", "y ~ x + z + (1 | g)"),
    ("y ~ x + (1 | g)", "log(.) ~ .", "log(y) ~ x + (1 | g)"),
    ("a + b ~ x + (1 | g)", "log(.) ~ .", "log((a + b)) ~ x + (1 | g)"),
    ("cbind(s, n - s) ~ x + (1 | g)", ". ~ 1 + (1 | g)", "cbind(s, n - s) ~ (1 | g)"),
    ("y ~ a * b + (1 | g)", ". ~ . - a:b", "y ~ a + b + (1 | g)"),
    ("y ~ a * b + (1 | g)", ". ~ . - b:a", "y ~ a + b + (1 | g)"),
    ("y ~ (a + b + c)^2 + (1 | g)", ". ~ . - a:c", "y ~ a + b + c + a:b + b:c + (1 | g)"),
    ("y ~ x + (1 | g)", ". ~ . - 1", "y ~ 0 + x + (1 | g)"),
    ("y ~ 0 + x + (1 | g)", ". ~ . + 1", "y ~ x + (1 | g)"),
    ("y ~ x + (1 | g)", ". ~ . + x", "y ~ x + (1 | g)"),
    ("y ~ my.var + (1 | g)", ". ~ . - my.var + x.2", "y ~ x.2 + (1 | g)"),
    ("y ~ x + diag(x | g)", ". ~ . - diag(x | g) + (1 | g)", "y ~ x + (1 | g)"),
    ("y ~ x + (1 | g)", "z ~ w + (1 | h)", "z ~ w + (1 | h)"),
])
def test_update_formula(old, new, expected):
    assert update_formula(old, new) == expected


def test_update_formula_errors():
    with pytest.raises(FormulaError, match=r"'w'.*its terms are x"):
        update_formula("y ~ x + (1 | g)", ". ~ . - w")
    with pytest.raises(FormulaError, match="removes"):
        update_formula("y ~ x + (1 | g)", ". ~ . - (1 | h)")
    with pytest.raises(FormulaError, match="right of"):
        update_formula("y ~ x", ". ~ ")


# -- update ---------------------------------------------------------------------------------
def test_update_refits_exactly(sleep, m):
    same = m.update()
    assert same.objective == m.objective and np.array_equal(same.theta, m.theta)
    ml = m.update(REML=False)
    direct = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
    assert ml.objective == pytest.approx(direct.objective, abs=OBJ_TOL)
    assert not ml.reml and ml.recipe.kwargs["REML"] is False
    drop = m.update(". ~ . - (Days | Subject) + (1 | Subject)")
    ref = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert drop.design.spec.formula == "Reaction ~ Days + (1 | Subject)"
    assert drop.objective == pytest.approx(ref.objective, abs=OBJ_TOL)
    sub = m.update(data=sleep[sleep.Days < 8])
    assert sub.nobs == 144
    logged = m.update("log(.) ~ .")
    assert logged.design.y == pytest.approx(np.log(sleep.Reaction.to_numpy()))
    with pytest.raises(TypeError, match=r"no argument.*REMLL.*arguments are"):
        m.update(REMLL=False)


def test_update_keeps_every_setting(sleep):
    settings = {"xtol_abs": 1e-6, "ftol_abs": 1e-6}
    fit = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, optimizer="nelder_mead",
                  optimizer_settings=settings, weights=np.ones(180) * 2.0)
    again = fit.update(". ~ . + I(Days**2)")
    assert again.opt.optimizer == "nelder_mead" and again.opt.settings["xtol_abs"] == 1e-6
    assert again.design.weights is not None
    # refit (bootstrap, simulate-refit) keeps the optimizer and its tolerances too
    y = fit.simulate(1, seed=1)["sim_1"].to_numpy()
    r = fit.refit(y)
    assert r.opt.optimizer == "nelder_mead" and r.opt.settings["ftol_abs"] == 1e-6
    assert r.recipe.kwargs["optimizer"] == "nelder_mead"


def test_glmm_update_and_refit_keep_settings():
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 optimizer="nelder_mead", nAGQ=5)
    g0 = g.update(". ~ . - period")
    assert g0.nAGQ == 5 and g0.opt.optimizer == "nelder_mead"
    assert g0.design.p == 1
    r = g.refit(g.simulate(1, seed=2)["sim_1"].to_numpy())
    # before the recipe, refit_glmm dropped the optimizer (BOBYQA was used instead)
    assert r.opt.optimizer == "nelder_mead" and r.nAGQ == 5
    lap = g.update(nAGQ=1)
    direct = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                      optimizer="nelder_mead")
    assert lap.objective == pytest.approx(direct.objective, abs=1e-6)


def test_lm_glm_update():
    sleep = mm.datasets.load("sleepstudy")
    m0 = mm.lm("Reaction ~ Days", sleep)
    assert m0.update(". ~ . - Days").loglik == pytest.approx(
        mm.lm("Reaction ~ 1", sleep).loglik)
    cbpp = mm.datasets.load("cbpp")
    g0 = mm.glm("cbind(incidence, size - incidence) ~ period", cbpp)
    assert g0.update(". ~ 1").loglik == pytest.approx(
        mm.glm("cbind(incidence, size - incidence) ~ 1", cbpp).loglik)


def test_ml_refit_of_a_gradient_fit():
    """A fit whose optimizer was chosen by "auto" (the gradient path) refits by ML with the
    same choice (the reconstructed optimizer name used to be refused)."""
    rng = np.random.default_rng(2)
    n, g = 2000, 120
    d = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, g, n)})
    d["y"] = d.x + rng.normal(size=g)[d.g] + rng.normal(size=n)
    fit = mm.lmer("y ~ x + (1 | g)", d)
    assert fit.opt.optimizer.startswith("gradient")
    with pytest.warns(mm.inference.RefitNote):
        res = mm.anova(fit, mm.lm("y ~ x", d))
    ml = mm.lmer("y ~ x + (1 | g)", d, REML=False)
    assert res.models[1].objective == pytest.approx(ml.objective, abs=1e-6)


def test_fit_lmm_results_carry_a_design_recipe(m):
    direct = mm.fit_lmm(m.design, REML=False)
    assert direct.recipe.fitter is None
    assert direct.refit(m.design.y).objective == pytest.approx(direct.objective, abs=1e-8)
    with pytest.raises(TypeError, match="Design"):
        direct.update(". ~ . - Days")


# -- front doors ----------------------------------------------------------------------------
def test_reml_alias_and_flags(sleep, m):
    f = "Reaction ~ Days + (Days | Subject)"
    assert mm.lmer(f, sleep, reml=False).objective == pytest.approx(
        mm.lmer(f, sleep, REML=False).objective)
    assert mm.lmer(f, sleep, reml=True).reml
    with pytest.raises(TypeError, match="contradict"):
        mm.lmer(f, sleep, REML=False, reml=True)
    with pytest.raises(TypeError, match="REML must be True or False, got 'False'"):
        mm.lmer(f, sleep, REML="False")
    with pytest.raises(TypeError, match="check_conv"):
        mm.lmer(f, sleep, check_conv="yes")


def test_unknown_optimizer_lists_every_accepted_value(sleep):
    with pytest.raises(ValueError) as err:
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, optimizer="bobyka")
    for name in ("'auto'", "'gradient'", "'bobyqa'", "'nelder_mead'", "'cobyqa'",
                 "'lbfgsb'"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match=r"'auto'.*'gradient'.*'bobyqa'"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mm.datasets.load("cbpp"), optimizer="bobyka")
    # glmer's "auto": the exact gradient of the Laplace deviance and of the quadrature
    # deviance without a dispersion (quasi-Newton), BOBYQA where there is none (quadrature
    # of a dispersion family)
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mm.datasets.load("cbpp"), optimizer="auto")
    assert g.opt.optimizer.startswith("gradient:")
    q = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mm.datasets.load("cbpp"), optimizer="auto", nAGQ=3)
    assert q.opt.optimizer.startswith("gradient:")
    rng = np.random.default_rng(5)
    levels = np.repeat(np.arange(12), 10)
    gamma = pd.DataFrame({"y": rng.gamma(2.0, np.exp(0.3 * rng.normal(size=12))[levels] / 2),
                          "g": levels.astype(str)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a small Gamma fit's convergence notes
        qg = mm.glmer("y ~ 1 + (1 | g)", gamma, family="Gamma", link="log", nAGQ=3,
                      optimizer="auto")
    assert qg.opt.optimizer == "nlopt:LN_BOBYQA"
    with pytest.raises(ValueError, match="optimizer='gradient' needs"):
        mm.glmer("y ~ 1 + (1 | g)", gamma, family="Gamma", link="log", nAGQ=3,
                 optimizer="gradient")


def test_auto_optimizer_does_what_the_docstring_says(sleep):
    # small models: the dense factorization with its exact gradient -> projected BFGS
    small = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert small.objective_function.method == "dense"
    assert small.opt.optimizer == "gradient:projected BFGS"
    assert "too large for" in mm.lmer.__doc__ and "projected BFGS" in mm.lmer.__doc__
    # beyond the dense size, scalar and vector-valued terms alike -> the gradient method
    rng = np.random.default_rng(4)
    n, g = 3000, 150
    d = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, g, n)})
    d["y"] = (d.x + rng.normal(size=g)[d.g] + 0.5 * rng.normal(size=g)[d.g] * d.x
              + rng.normal(size=n))
    vec = mm.lmer("y ~ x + (x | g)", d)
    assert vec.objective_function.method == "blocked"
    assert vec.opt.optimizer.startswith("gradient")
    assert vec.objective == pytest.approx(
        mm.lmer("y ~ x + (x | g)", d, optimizer="bobyqa").objective, abs=1e-6)
    big = mm.lmer("y ~ x + (1 | g)", d)
    assert big.objective_function.has_gradient and big.opt.optimizer.startswith("gradient")


def test_verbose_prints_optimizer_trace(sleep, capsys):
    mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, verbose=1)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("mixedmodels.optim: lmer")]
    assert len(lines) >= 5 and "f = " in lines[0]
    assert "mixedmodels.fit: lmer REML" in err
    mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert capsys.readouterr().err == ""                 # quiet by default, handler removed
    cbpp = mm.datasets.load("cbpp")
    mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, verbose=2)
    err = capsys.readouterr().err
    assert "mixedmodels.pirls: Laplace" in err and "PIRLS iterations" in err
    assert "mixedmodels.optim: nAGQ=0" in err
    with pytest.raises(TypeError, match="verbose"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, verbose="loud")


def test_logging_without_verbose(sleep, caplog):
    with caplog.at_level(logging.DEBUG, logger="mixedmodels"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    optim = [r for r in caplog.records if r.name == "mixedmodels.optim"]
    assert optim and all(r.levelno == logging.DEBUG for r in optim)
    assert any(r.name == "mixedmodels.fit" for r in caplog.records)


def test_tracing_costs_nothing_when_off(sleep):
    from mixedmodels.fitting.trace import traced

    def f(x):
        return 1.0

    assert traced(f, "x") is f     # no wrapper unless the logger is enabled


def test_no_warning_leaks_into_user_filters(sleep):
    """collect_warnings no longer installs an 'always' filter (it used to, process-wide)."""
    before = list(warnings.filters)
    mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert warnings.filters == before

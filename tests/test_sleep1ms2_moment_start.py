"""Small (dense) models start their projected BFGS at the moment estimate
(fitting/lmm._small_model_start): the dense cross-products give the blocked objective's
moments, the fit reaches the optimum lme4's start reaches, in fewer evaluations, and a
moment estimate no better than lme4's start is not used."""

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.fitting import lmm as fitting_lmm
from mixedmodels.fitting.moment_start import moment_theta
from mixedmodels.objective import LMMObjective

#: Dense and blocked cross-products are the same sums in another order.
MOMENT_RTOL = 1e-10
#: Same optimum from both starts: the criterion (deviance units; both searches stop on
#: the gradient, ~1e-12 apart measured) and theta (measured <= 3e-7).
OBJ_TOL = 1e-9
THETA_TOL = 1e-5

SLEEP = "Reaction ~ Days + (Days | Subject)"


def _unbalanced_sleep() -> pd.DataFrame:
    """sleepstudy with a fifth of its rows dropped and a second covariate: no longer
    balanced, so the moments are not the ML optimum."""
    df = mm.datasets.load("sleepstudy")
    rng = np.random.default_rng(7)
    df = df.iloc[np.sort(rng.choice(len(df), size=144, replace=False))].reset_index(drop=True)
    df["x"] = rng.standard_normal(len(df))
    return df


CASES = [
    ("sleepstudy", SLEEP, True, None),
    ("sleepstudy", SLEEP, False, None),
    ("sleepstudy", SLEEP, True, "weights"),
    ("unbalanced", "Reaction ~ Days + x + (Days | Subject)", True, None),
    ("unbalanced", "Reaction ~ Days + x + (Days | Subject)", False, None),
    ("Orthodont", "distance ~ age + (age | Subject)", True, None),
    ("Orthodont", "distance ~ age * Sex + (age | Subject)", False, None),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True, None),
]


def _data(name):
    return _unbalanced_sleep() if name == "unbalanced" else mm.datasets.load(name)


def _weights(df, kind):
    # (with np.linspace(0.5, 2.0) the moments cannot separate sigma: both decline)
    return None if kind is None else 1.0 + 0.3 * np.sin(np.arange(len(df), dtype=float))


@pytest.mark.parametrize(("name", "formula", "reml", "w"), CASES)
def test_dense_moments_equal_the_blocked_ones(name, formula, reml, w):
    df = _data(name)
    design = mm.materialize(mm.parse_formula(formula), df, weights=_weights(df, w))
    dense = LMMObjective(design, reml=reml)
    assert dense.method == "dense"
    got = moment_theta(dense)
    want = moment_theta(LMMObjective(design, reml=reml, method="blocked"))
    assert got is not None
    np.testing.assert_allclose(got, want, rtol=MOMENT_RTOL)


@pytest.mark.parametrize(("name", "formula", "reml", "w"), CASES)
def test_moment_start_reaches_lme4_starts_optimum(name, formula, reml, w):
    df = _data(name)
    weights = _weights(df, w)
    auto = mm.lmer(formula, df, REML=reml, weights=weights)
    # an explicit start is taken as given: lme4's start, the search as before
    design = auto.design
    plain = mm.lmer(formula, df, REML=reml, weights=weights, start=design.theta0())
    np.testing.assert_array_equal(plain.opt.x0, design.theta0())
    assert abs(auto.objective - plain.objective) <= OBJ_TOL
    np.testing.assert_allclose(auto.theta, plain.theta, atol=THETA_TOL)
    assert auto.opt.converged and auto.convergence.converged
    # the record keeps lme4's start as x0 (the moment start is how the search began)
    np.testing.assert_array_equal(auto.opt.x0, design.theta0())
    assert auto.opt.n_evals <= plain.opt.n_evals


def test_sleepstudy_takes_fewer_evaluations():
    # lme4's start took 15 (REML) and 14 (ML) evaluations; the moment start 9 and 2
    # (balanced data: the moments are sleepstudy's ML optimum)
    df = mm.datasets.load("sleepstudy")
    assert mm.lmer(SLEEP, df).opt.n_evals <= 10
    assert mm.lmer(SLEEP, df, REML=False).opt.n_evals <= 3


def test_worse_moment_start_is_not_used(monkeypatch):
    """A moment estimate whose criterion is not below lme4's start's is dropped: the
    search is lme4's (same iterates: the same optimum bit for bit), one evaluation more
    counted (the estimate's)."""
    df = mm.datasets.load("sleepstudy")
    plain = mm.lmer(SLEEP, df, start=[1.0, 0.0, 1.0])
    monkeypatch.setattr(fitting_lmm, "moment_theta", lambda obj, **kw: np.array([5.0, 3.0, 4.0]))
    bad = mm.lmer(SLEEP, df)
    assert bad.opt.fval == plain.opt.fval
    np.testing.assert_array_equal(bad.theta, plain.theta)
    assert bad.opt.n_evals == plain.opt.n_evals + 1


def test_one_parameter_scalar_and_same_factor_models_keep_lme4s_start(monkeypatch):
    calls = []
    monkeypatch.setattr(fitting_lmm, "moment_theta", lambda obj, **kw: calls.append(obj))
    mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    assert calls == []
    # terms on one grouping factor: the estimate does not apply (it declines there)
    mm.lmer("Reaction ~ Days + (Days || Subject)", mm.datasets.load("sleepstudy"))
    # scalar terms only: cheap diagonal evaluations, lme4's start
    mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    assert calls == []
    mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))
    assert len(calls) == 1


def test_answer_exact_answers_the_first_exact_call_only():
    seen = []

    def fg(x):
        seen.append(x.copy())
        return float(x.sum()), x * 2.0

    x = np.array([0.5, 0.25])
    wrapped = fitting_lmm._answer_exact(fg, x, (99.0, np.array([1.0, 2.0])))
    assert wrapped(np.array([0.5, 0.2500000001]))[0] == 0.75000000010   # not x: evaluated
    f, g = wrapped(x.copy())
    assert f == 99.0 and g.tolist() == [1.0, 2.0]
    assert wrapped(x.copy())[0] == 0.75                               # answered once only
    assert len(seen) == 2

"""Fits in threads keep their own messages; every result type pickles and predicts the same
after a round trip."""

from __future__ import annotations

import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

#: Fits per thread-pool run: enough that fits overlap (25 of 60 contradicted before).
N_FITS = 48


def _data(seed: int, n: int = 3000, groups: int = 150):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    clean = pd.DataFrame({"y": 1 + 2 * x + rng.normal(size=groups)[g] + rng.normal(size=n),
                          "x": x, "g": g})
    singular = clean.assign(y=1 + 2 * x + rng.normal(size=n))    # no group variance
    holes = clean.copy()
    holes.loc[::97, "x"] = np.nan                                  # dropped rows
    return clean, singular, holes


def test_messages_belong_to_their_fit_in_threads():
    clean, singular, holes = _data(1)
    counts = pd.DataFrame({"k": np.random.default_rng(2).poisson(2.0, 3000), "x": clean.x,
                           "g": clean.g})
    counts.loc[::50, "g"] = np.nan

    def fit(i):
        kind = i % 4
        if kind == 3:
            m = mm.glmer("k ~ x + (1 | g)", counts, family="poisson")
        else:
            m = mm.lmer("y ~ x + (1 | g)", (clean, singular, holes)[kind])
        return kind, m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ThreadPoolExecutor(4) as pool:
            fits = list(pool.map(fit, range(N_FITS)))
    for kind, m in fits:
        singular_msg = any("singular" in s for s in m.messages)
        dropped_msg = any("dropped" in s.lower() or "missing" in s.lower()
                          for s in m.messages)
        assert singular_msg == m.is_singular(), (kind, m.messages)
        assert dropped_msg == (kind in (2, 3)), (kind, m.messages)
    # and the same fit alone gives the same messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = {k: mm.lmer("y ~ x + (1 | g)", d).messages
                 for k, d in enumerate((clean, singular, holes))}
    for kind, m in fits:
        if kind < 3:
            assert m.messages == alone[kind]


def test_warnings_still_reach_the_user():
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    assert m.is_singular() and m.messages


def test_bootstrap_replicates_in_threads_count_their_own_warnings():
    clean, singular, _ = _data(4, n=600, groups=30)
    with pytest.warns(mm.SingularFitWarning):
        ms = mm.lmer("y ~ x + (1 | g)", singular)
    mc = mm.lmer("y ~ x + (1 | g)", clean)

    def boot(m):
        return m.bootstrap(nsim=12, seed=1, progress=False)

    with ThreadPoolExecutor(2) as pool:
        bs, bc = pool.map(boot, [ms, mc])
    assert bs.warnings.get("SingularFitWarning", 0) > 0
    assert bc.warnings.get("SingularFitWarning", 0) == 0
    assert bc.warnings == boot(mc).warnings


# -- pickling -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fits():
    sleep = mm.datasets.load("sleepstudy")
    cbpp = mm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "lmer": mm.lmer("Reaction ~ Days + (Days | Subject)", sleep),
            "lmer_ml": mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False),
            "glmer": mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                              cbpp),
            "glmer_agq": mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                  cbpp, nAGQ=5),
            "glmer_nb": mm.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
                                    mm.datasets.load("grouseticks")),
            "lm": mm.lm("Reaction ~ Days", sleep),
            "glm": mm.glm("cbind(incidence, size - incidence) ~ period", cbpp),
        }


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


def test_every_fit_pickles_and_predicts_identically(fits):
    sleep = mm.datasets.load("sleepstudy")
    new = {"lmer": sleep.head(7), "lmer_ml": sleep.tail(5), "lm": sleep.head(3)}
    for name, m in fits.items():
        # cached, derived state must not stop pickling (summary, Satterthwaite state ...)
        str(m.summary()) if hasattr(m, "summary") else None
        back = _roundtrip(m)
        assert type(back) is type(m)
        if hasattr(m, "fitted"):
            np.testing.assert_array_equal(back.fitted(), m.fitted(), err_msg=name)
        else:                                          # glm: the means
            np.testing.assert_array_equal(back.mu, m.mu, err_msg=name)
        if hasattr(m, "predict"):
            np.testing.assert_array_equal(back.predict(), m.predict(), err_msg=name)
            if name in new:
                np.testing.assert_array_equal(back.predict(new[name]),
                                              m.predict(new[name]), err_msg=name)
        assert back.loglik == m.loglik
        if hasattr(m, "ranef"):
            for g, frame in m.ranef(cond_var=True).items():
                pd.testing.assert_frame_equal(back.ranef(cond_var=True)[g], frame)
            assert str(back.summary()) == str(m.summary())
            # the rebuilt objective gives the same numbers, and refits by the recipe
            assert back.objective_function is not m.objective_function
        assert back.recipe.fitter_name == m.recipe.fitter_name


def test_pickled_fits_refit_and_run_inference(fits):
    m = _roundtrip(fits["lmer"])
    orig = fits["lmer"]
    np.testing.assert_allclose(m.coef_table()["df"], orig.coef_table()["df"], rtol=1e-10)
    assert m.update(REML=False).objective == pytest.approx(
        orig.update(REML=False).objective, abs=1e-10)
    g = _roundtrip(fits["glmer"])
    y = fits["glmer"].simulate(1, seed=3)["sim_1"].to_numpy()
    assert g.refit(y).objective == pytest.approx(fits["glmer"].refit(y).objective, abs=1e-8)


def test_test_results_pickle(fits):
    sleep = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep, REML=False)
        m1 = fits["lmer_ml"]
        objs = {
            "anova": mm.anova(m2, m1, fits["lm"]),
            "anova_glmm": mm.anova(fits["glmer"], fits["glm"]),
            "pb_test": mm.pb_test(m2, m1, nsim=10, seed=1),
            "rlrt": mm.rlrt(m2.update(REML=True), m1.update(REML=True), nsim=500, seed=1),
            "bootstrap": m1.bootstrap(nsim=8, seed=1),
            "profile": m1.profile(which=["sigma"]),
            "profile_glmm": fits["glmer"].profile(which=["sd_(Intercept)|herd"]),
        }
    for name, obj in objs.items():
        back = _roundtrip(obj)
        assert str(back) == str(obj), name
    pr = _roundtrip(objs["profile"])
    pd.testing.assert_frame_equal(pr.confint(0.9), objs["profile"].confint(0.9))
    a = _roundtrip(objs["anova"])
    pd.testing.assert_frame_equal(a.table, objs["anova"].table)
    assert a.models[0].fitted().equals(objs["anova"].models[0].fitted())

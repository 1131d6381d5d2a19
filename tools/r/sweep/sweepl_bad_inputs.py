"""Bad inputs for the lme4 class (mm.lmer, mm.glmer, mm.glmer_nb and their methods): each
must give a clear error naming what and where (our error class, or a ValueError/TypeError
raised by the package), never an exception from deep inside numpy/pandas/formulaic/scipy.

    python tools/r/sweep/sweepl_bad_inputs.py

One line per case: OK (raised from mixedmodels, message shown), DEEP (the innermost frame of
the traceback is outside the package), NO ERROR (the call went through; the warnings, if
any, are shown).
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm

rng = np.random.default_rng(7)
n = 120
g = np.repeat(np.arange(12), 10)
D = pd.DataFrame({"g": pd.Categorical([f"g{i:02d}" for i in g]), "x": rng.normal(size=n),
                  "h": pd.Categorical(np.tile(["a", "b"], n // 2)),
                  "yn": rng.normal(size=n), "yp": rng.poisson(3, n).astype(float)})
D["size"] = rng.integers(3, 9, n)
D["k"] = rng.binomial(D["size"], 0.4)
D["prop"] = D["k"] / D["size"]
D["yb"] = rng.integers(0, 2, n)
D["yg"] = rng.gamma(2.0, 1.0, n)


def with_(**cols):
    return D.assign(**cols)


def setat(col, i, v):
    a = D[col].to_numpy().astype(float).copy()
    a[i] = v
    return a


M = mm.lmer("yn ~ x + (1 | g)", D)
GM = mm.glmer("cbind(k, size - k) ~ x + (1 | g)", D, family="binomial")

CASES = {
    # -- response
    "lmer string response": lambda: mm.lmer("s ~ x + (1 | g)", with_(s=D["g"].astype(str))),
    "lmer categorical response": lambda: mm.lmer("h ~ x + (1 | g)", D),
    "lmer bool response": lambda: mm.lmer("b ~ x + (1 | g)", with_(b=D["x"] > 0)),
    "lmer object numeric strings": lambda: mm.lmer(
        "s ~ x + (1 | g)", with_(s=D["yn"].astype(str).astype(object))),
    "lmer complex response": lambda: mm.lmer("c ~ x + (1 | g)", with_(c=D["yn"] + 1j)),
    "lmer datetime response": lambda: mm.lmer(
        "t ~ x + (1 | g)", with_(t=pd.date_range("2020-01-01", periods=n))),
    "glmer string response": lambda: mm.glmer("s ~ x + (1 | g)",
                                              with_(s=D["g"].astype(str)), family="binomial"),
    "glmer factor response 2 levels": lambda: mm.glmer("h ~ x + (1 | g)", D, family="binomial"),
    "glmer_nb string response": lambda: mm.glmer_nb("s ~ x + (1 | g)",
                                                    with_(s=D["g"].astype(str))),
    # -- binomial range / integrality
    "binomial y in (0,1) no weights": lambda: mm.glmer("prop ~ x + (1 | g)", D,
                                                       family="binomial"),
    "binomial y > 1": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="binomial"),
    "binomial y negative": lambda: mm.glmer("y ~ x + (1 | g)", with_(y=setat("yb", 0, -1)),
                                            family="binomial"),
    "binomial prop > 1 with weights": lambda: mm.glmer(
        "p ~ x + (1 | g)", with_(p=setat("prop", 0, 1.5)), family="binomial", weights="size"),
    "binomial non-integer successes": lambda: mm.glmer(
        "p ~ x + (1 | g)", with_(p=setat("prop", 0, 0.123)), family="binomial",
        weights="size"),
    "cbind non-integer successes": lambda: mm.glmer(
        "cbind(kk, size - kk) ~ x + (1 | g)", with_(kk=setat("k", 0, 1.5)),
        family="binomial"),
    "cbind negative failures": lambda: mm.glmer("cbind(k, k - size) ~ x + (1 | g)", D,
                                                family="binomial"),
    "cbind string column": lambda: mm.glmer("cbind(s, size - k) ~ x + (1 | g)",
                                            with_(s=D["g"].astype(str)), family="binomial"),
    "cbind all-zero trials": lambda: mm.glmer("cbind(z, z) ~ x + (1 | g)", with_(z=0),
                                              family="binomial"),
    "binomial factor 3 levels": lambda: mm.glmer(
        "f3 ~ x + (1 | g)", with_(f3=pd.Categorical(np.tile(["a", "b", "c"], n // 3))),
        family="binomial"),
    # -- counts / positive families
    "poisson negative counts": lambda: mm.glmer("y ~ x + (1 | g)", with_(y=setat("yp", 3, -2)),
                                                family="poisson"),
    "poisson non-integer counts": lambda: mm.glmer("y ~ x + (1 | g)",
                                                   with_(y=setat("yp", 3, 2.5)),
                                                   family="poisson"),
    "glmer_nb negative counts": lambda: mm.glmer_nb("y ~ x + (1 | g)",
                                                    with_(y=setat("yp", 3, -2))),
    "glmer_nb all zero": lambda: mm.glmer_nb("y ~ x + (1 | g)", with_(y=0.0)),
    "Gamma zero response": lambda: mm.glmer("y ~ x + (1 | g)", with_(y=setat("yg", 1, 0.0)),
                                            family="Gamma", link="log"),
    "inverse.gaussian negative": lambda: mm.glmer("y ~ x + (1 | g)",
                                                  with_(y=setat("yg", 1, -1.0)),
                                                  family="inverse.gaussian", link="log"),
    "poisson with inf count": lambda: mm.glmer("y ~ x + (1 | g)",
                                               with_(y=setat("yp", 3, np.inf)),
                                               family="poisson"),
    # -- grouping
    "grouping all NA": lambda: mm.lmer("yn ~ x + (1 | gg)",
                                       with_(gg=pd.Series([np.nan] * n, dtype=object))),
    "grouping all NA categorical": lambda: mm.lmer(
        "yn ~ x + (1 | gg)", with_(gg=pd.Categorical([None] * n, categories=["a", "b"]))),
    "grouping all NA float": lambda: mm.lmer("yn ~ x + (1 | gg)", with_(gg=np.nan)),
    "glmer grouping all NA": lambda: mm.glmer("yp ~ x + (1 | gg)", with_(gg=np.nan),
                                              family="poisson"),
    "grouping float values": lambda: mm.lmer("yn ~ x + (1 | gf)",
                                             with_(gf=rng.normal(size=n))),
    "levels = observations lmer": lambda: mm.lmer("yn ~ x + (1 | id)", with_(id=np.arange(n))),
    "levels > observations slope": lambda: mm.lmer(
        "yn ~ x + (x | gq)", with_(gq=np.arange(n) // 2)),
    "glmer levels = observations": lambda: mm.glmer(
        "cbind(k, size - k) ~ x + (1 | id)", with_(id=np.arange(n)), family="binomial"),
    "grouping one level glmer": lambda: mm.glmer("yp ~ x + (1 | one)", with_(one="a"),
                                                 family="poisson"),
    "nested absent inner": lambda: mm.lmer("yn ~ x + (1 | g/nothere)", D),
    "interaction absent": lambda: mm.lmer("yn ~ x + (1 | g:nothere)", D),
    # -- absent columns / empty
    "lmer absent fixed column": lambda: mm.lmer("yn ~ nothere + (1 | g)", D),
    "glmer absent fixed column": lambda: mm.glmer("yp ~ nothere + (1 | g)", D,
                                                  family="poisson"),
    "glmer_nb absent grouping": lambda: mm.glmer_nb("yp ~ x + (1 | nothere)", D),
    "glmer absent in cbind": lambda: mm.glmer("cbind(k, nothere - k) ~ x + (1 | g)", D,
                                              family="binomial"),
    "glmer absent weights column": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                    weights="nothere"),
    "glmer absent offset column": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                   offset="nothere"),
    "glmer offset() absent": lambda: mm.glmer("yp ~ x + offset(log(nothere)) + (1 | g)", D,
                                              family="poisson"),
    "empty after NA removal lmer": lambda: mm.lmer(
        "y ~ x + (1 | g)", with_(y=np.where(D["x"] > 0, np.nan, 1.0),
                                 x=np.where(D["x"] > 0, 1.0, np.nan))),
    "empty after NA removal glmer": lambda: mm.glmer("y ~ x + (1 | g)", with_(y=np.nan),
                                                     family="poisson"),
    "empty after NA glmer_nb": lambda: mm.glmer_nb("y ~ x + (1 | g)", with_(y=np.nan)),
    "empty DataFrame": lambda: mm.lmer("yn ~ x + (1 | g)", D.iloc[:0]),
    "empty DataFrame glmer": lambda: mm.glmer("yp ~ x + (1 | g)", D.iloc[:0],
                                              family="poisson"),
    "offset() log of negative": lambda: mm.glmer(
        "yp ~ x + offset(log(e)) + (1 | g)", with_(e=-np.ones(n)), family="poisson"),
    # -- arguments
    "weights wrong length glmer": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                   weights=np.ones(5)),
    "offset wrong length glmer": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                  offset=np.ones(5)),
    "negative weights glmer": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                               weights=-np.ones(n)),
    "string weights column": lambda: mm.glmer("yp ~ x + (1 | g)", with_(w=D["g"].astype(str)),
                                              family="poisson", weights="w"),
    "nAGQ negative": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson", nAGQ=-1),
    "nAGQ float": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson", nAGQ=2.5),
    "nAGQ string": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson", nAGQ="7"),
    "nAGQ>1 two terms": lambda: mm.glmer("yp ~ x + (1 | g) + (1 | h)", D, family="poisson",
                                         nAGQ=5),
    "nAGQ>1 vector term": lambda: mm.glmer("yp ~ x + (x | g)", D, family="poisson", nAGQ=5),
    "glmer gaussian family": lambda: mm.glmer("yn ~ x + (1 | g)", D, family="gaussian"),
    "glmer_nb bad link": lambda: mm.glmer_nb("yp ~ x + (1 | g)", D, link="logit"),
    "glmer family typo": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="posson"),
    "glmer family R-style call": lambda: mm.glmer("yp ~ x + (1 | g)", D,
                                                  family="poisson(link='log')"),
    "REML not bool": lambda: mm.lmer("yn ~ x + (1 | g)", D, REML="yes"),
    "data not DataFrame": lambda: mm.lmer("yn ~ x + (1 | g)", D.to_dict("list")),
    "data numpy array": lambda: mm.lmer("yn ~ x + (1 | g)", D.to_numpy()),
    "formula not string": lambda: mm.glmer(None, D, family="poisson"),
    "start wrong length": lambda: mm.lmer("yn ~ x + (1 | g)", D, start=[1.0, 2.0]),
    "glmer start wrong theta": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                start={"theta": [1.0, 2.0]}),
    "glmer start unknown key": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                start={"nope": [1.0]}),
    "glmer start beta wrong length": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                      start={"beta": [1.0, 2.0, 3.0]}),
    "glmer start not numbers": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                start={"theta": ["a"]}),
    "glmer start beta and fixef": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                                   start={"beta": [1.0, 0.0],
                                                          "fixef": [1.0, 0.0]}),
    "glmer_nb start unknown key": lambda: mm.glmer_nb("yp ~ x + (1 | g)", D,
                                                      start={"theta_nb": 2.0}),
    "glmer_nb start negative shape": lambda: mm.glmer_nb("yp ~ x + (1 | g)", D,
                                                         start={"nb_theta": -1.0}),
    "lmer start unknown key": lambda: mm.lmer("yn ~ x + (1 | g)", D, start={"fixef": [1.0]}),
    "glmer complex predictor": lambda: mm.glmer("yp ~ c + (1 | g)", with_(c=D["x"] + 1j),
                                                family="poisson"),
    "glmer all zero weights": lambda: mm.glmer("yp ~ x + (1 | g)", D, family="poisson",
                                               weights=np.zeros(n)),
    # -- methods
    "predict absent column": lambda: M.predict(D.drop(columns="x")),
    "predict new level no allow": lambda: M.predict(
        D.iloc[:3].assign(g=["zz", "g01", "g02"])),
    "predict grouping absent": lambda: M.predict(D.iloc[:3].drop(columns="g")),
    "predict bad re_form": lambda: M.predict(D.iloc[:3], re_form="~(1 | nothere)"),
    "predict bad type": lambda: GM.predict(D.iloc[:3], type="prob"),
    "predict string x": lambda: M.predict(D.iloc[:3].assign(x=["a", "b", "c"])),
    "predict NaN x": lambda: M.predict(D.iloc[:3].assign(x=[np.nan, 1.0, 2.0])),
    "predict empty newdata": lambda: M.predict(D.iloc[:0]),
    "glmer predict offset missing": lambda: mm.glmer(
        "yp ~ x + offset(log(e)) + (1 | g)", with_(e=np.ones(n) * 2),
        family="poisson").predict(D.iloc[:3]),
    "anova different data": lambda: mm.anova(M, mm.lmer("yn ~ 1 + (1 | g)", D.iloc[:100])),
    "anova different response": lambda: mm.anova(M, mm.lmer("yp ~ x + (1 | g)", D)),
    "anova lmer vs glmer": lambda: mm.anova(M, GM),
    "anova one non-model": lambda: mm.anova(M, "model"),
    "confint bad method": lambda: M.confint(method="bootstrapp"),
    "confint bad level": lambda: M.confint(method="wald", level=1.5),
    "confint bad parm": lambda: M.confint(parm=["nothere"], method="wald"),
    "coef_table bad ddf": lambda: M.coef_table(ddf="satterwaite"),
    "kr on ML fit": lambda: mm.lmer("yn ~ x + (1 | g)", D, REML=False).coef_table(
        ddf="kenward-roger"),
    "simulate nsim 0": lambda: M.simulate(nsim=0),
    "simulate nsim negative": lambda: M.simulate(nsim=-2),
    "simulate nsim float": lambda: M.simulate(nsim=2.5),
    "simulate bad seed": lambda: M.simulate(nsim=2, seed="abc"),
    "simulate bad re_form": lambda: M.simulate(nsim=2, re_form="~(1 | nothere)"),
    "bootstrap nsim 0": lambda: M.bootstrap(nsim=0),
    "bootstrap bad func": lambda: M.bootstrap(func=lambda m: "x", nsim=2),
    "update absent column": lambda: M.update(". ~ . + nothere"),
    "update dangling operator": lambda: M.update(". ~ . +"),
}


def main():
    for name, f in CASES.items():
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                f()
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)
            inner = tb[-1].filename
            deep = "mixedmodels" not in inner
            tag = "DEEP" if deep else "OK  "
            print(f"{tag} {name:32s} {type(e).__name__}: {str(e)[:230]}"
                  + (f"  [at {inner.split('site-packages/')[-1]}:{tb[-1].lineno}]"
                     if deep else ""))
        else:
            ws = sorted({f"{type(x.message).__name__}: {str(x.message)[:90]}" for x in w})
            print(f"NO ERROR {name}" + (f"  warnings {ws}" if ws else ""))


if __name__ == "__main__":
    main()

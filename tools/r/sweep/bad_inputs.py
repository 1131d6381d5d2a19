"""Bad inputs of issues 7 and 8: each must give a clear error (our error class or a
ValueError/TypeError raised by the package, naming what and where), never an exception
from deep inside numpy/pandas/formulaic/scipy.

    python tools/r/sweep/bad_inputs.py

Prints one line per case: OK (raised from mixedmodels, message shown) or DEEP (the
innermost frame of the traceback is outside the package) or NO ERROR.
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm

rng = np.random.default_rng(1)
n = 120
g = np.repeat(np.arange(12), 10)
D = pd.DataFrame({"g": pd.Categorical([f"g{i:02d}" for i in g]), "x": rng.normal(size=n),
                  "t": np.tile(np.arange(10), 12), "y": rng.poisson(3, n).astype(float)})
D["yb"] = rng.uniform(0.05, 0.95, n)
D["yg"] = rng.gamma(2.0, 1.0, n)
D["yn"] = rng.normal(size=n)
D["k"] = rng.integers(0, 2, n)
D["sp"] = pd.Categorical([f"s{i}" for i in rng.integers(0, 5, n)])


def with_(col, fn):
    d = D.copy()
    d[col] = fn(d[col].to_numpy().copy())
    return d


def setat(i, v):
    def f(a):
        a = a.astype(float)
        a[i] = v
        return a
    return f


K_bad = pd.DataFrame(np.array([[1, 2, 0, 0, 0], [2, 1, 0, 0, 0], [0, 0, 1, 0, 0],
                               [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], float),
                     index=[f"s{i}" for i in range(5)], columns=[f"s{i}" for i in range(5)])
K_asym = K_bad.copy()
K_asym.iloc[0, 1] = 0.5
K_asym.iloc[1, 0] = 0.1
K_names = pd.DataFrame(np.eye(5), index=list("abcde"), columns=list("abcde"))
dup_t = D.copy()
dup_t.loc[1, "t"] = 0

CASES = {
    "negative counts": lambda: mm.glmmtmb("y ~ x + (1|g)", with_("y", setat(3, -1)),
                                          family="poisson"),
    "non-integer counts nb2": lambda: mm.glmmtmb("y ~ x + (1|g)", with_("y", setat(3, 1.5)),
                                                 family="nbinom2"),
    "beta outside (0,1)": lambda: mm.glmmtmb("yb ~ x + (1|g)", with_("yb", setat(2, 1.0)),
                                             family="beta"),
    "beta exact 0 no zi": lambda: mm.glmmtmb("yb ~ x + (1|g)", with_("yb", setat(2, 0.0)),
                                             family="beta"),
    "Gamma zeros": lambda: mm.glmmtmb("yg ~ x + (1|g)", with_("yg", setat(5, 0.0)),
                                      family="Gamma", link="log"),
    "Gamma negative": lambda: mm.glmmtmb("yg ~ x + (1|g)", with_("yg", setat(5, -1.0)),
                                         family="Gamma", link="log"),
    "truncated zeros no zi": lambda: mm.glmmtmb("y ~ x + (1|g)", with_("y", setat(0, 0.0)),
                                                family="truncated_poisson"),
    "disp for poisson": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                           dispformula="~x"),
    "disp for binomial": lambda: mm.glmmtmb("k ~ x + (1|g)", D, family="binomial",
                                            dispformula="~x"),
    "zi for gaussian": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, family="gaussian",
                                          ziformula="~1"),
    "unknown family": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poison"),
    "bad link": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson", link="logit"),
    "zi absent column": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                           ziformula="~nothere"),
    "disp absent column": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, dispformula="~nothere"),
    "weights negative": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                           weights=-np.ones(n)),
    "weights wrong length": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                               weights=np.ones(5)),
    "offset wrong length": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                              offset=np.ones(5)),
    "offset absent column": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                               offset="nothere"),
    "response all NaN": lambda: mm.glmmtmb("y ~ x + (1|g)", with_("y", lambda a: a * np.nan),
                                           family="poisson"),
    "binomial y>1 no weights": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="binomial"),
    "cbind failures negative": lambda: mm.glmmtmb(
        "cbind(k, k - 2) ~ x + (1|g)", D, family="binomial"),
    "betabinomial proportions no weights": lambda: mm.glmmtmb(
        "yb ~ x + (1|g)", D, family="betabinomial"),
    "REML non-gaussian": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson", REML=True),
    "non-PSD known matrix": lambda: mm.glmmtmb(
        "yn ~ x + propto(0 + sp | g, K)", D, covariance_matrices={"K": K_bad}),
    "asymmetric known matrix": lambda: mm.glmmtmb(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_asym}),
    "known matrix names mismatch": lambda: mm.glmmtmb(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_names}),
    "known matrix missing": lambda: mm.glmmtmb("yn ~ x + equalto(1 | sp, K)", D),
    "duplicated AR(1) times gls": lambda: mm.gls(
        "yn ~ x", dup_t, correlation=mm.cor_ar1(form="~ t | g")),
    "duplicated AR(1) times lmer": lambda: mm.lmer(
        "yn ~ x + (1|g)", dup_t, correlation=mm.cor_ar1(form="~ t | g")),
    "AR(1) non-integer times": lambda: mm.gls(
        "yn ~ x", with_("t", lambda a: a + 0.5 * (a % 2)),
        correlation=mm.cor_ar1(form="~ t | g")),
    "sigma= with poisson glmer": lambda: mm.glmer("y ~ x + (1|g)", D, family="poisson",
                                                  sigma=1.0),
    "sigma= negative lmer": lambda: mm.lmer("yn ~ x + (1|g)", D, sigma=-1.0),
    "cor form absent column": lambda: mm.gls("yn ~ x", D,
                                             correlation=mm.cor_ar1(form="~ tt | g")),
    "cor form absent group": lambda: mm.gls("yn ~ x", D,
                                            correlation=mm.cor_ar1(form="~ t | gg")),
    "cor_exp absent coordinate": lambda: mm.gls("yn ~ x", D,
                                                correlation=mm.cor_exp(form="~ x + zz")),
    "var_ident absent column": lambda: mm.gls("yn ~ x", D,
                                              variance=mm.var_ident(form="~ 1 | nothere")),
    "var_power absent covariate": lambda: mm.gls("yn ~ x", D,
                                                 variance=mm.var_power(form="~ nothere")),
    "spatial non-numeric coordinate": lambda: mm.glmmtmb(
        "yn ~ x + exp(0 + pos(x, sp) | g)", D),
    "spatial absent coordinate": lambda: mm.glmmtmb("yn ~ x + exp(0 + pos(x, zz) | g)", D),
    "ar1 on numeric not factor": lambda: mm.glmmtmb("yn ~ x + ar1(0 + t | g)", D),
    "rr d too large": lambda: mm.glmmtmb("yn ~ x + rr(0 + sp | g, d = 9)", D),
    "unknown structure": lambda: mm.glmmtmb("yn ~ x + foo(1 | g)", D),
    "pql unknown family": lambda: mm.glmm_pql("y ~ x + (1|g)", D, family="poison"),
    "pql gaussian counts absent col": lambda: mm.glmm_pql("y ~ zz + (1|g)", D,
                                                          family="poisson"),
    "weights with NaN": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                           weights=np.r_[np.nan, np.ones(n - 1)]),
    "offset with inf": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                          offset=np.r_[np.inf, np.zeros(n - 1)]),
    "string response poisson": lambda: mm.glmmtmb(
        "s ~ x + (1|g)", D.assign(s=D["g"].astype(str)), family="poisson"),
    "factor response gaussian": lambda: mm.glmmtmb("sp ~ x + (1|g)", D),
    "all-zero counts": lambda: mm.glmmtmb("z0 ~ x + (1|g)", D.assign(z0=0.0),
                                          family="poisson"),
    "one-level grouping": lambda: mm.glmmtmb("yn ~ x + (1|one)", D.assign(one="a")),
    "grouping with NaN": lambda: mm.glmmtmb(
        "yn ~ x + (1|gg)", D.assign(gg=D["g"].astype(object).where(D.index > 3))),
    "slope on absent column": lambda: mm.glmmtmb("yn ~ x + (nothere|g)", D),
    "zi RE absent group": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                             ziformula="~1 + (1|nothere)"),
    "disp with RE": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, dispformula="~x + (1|g)"),
    "two-sided ziformula": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                              ziformula="y ~ 1"),
    "bad start block": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                          start={"beta.cond": [1.0, 2.0, 3.0]}),
    "unknown start block": lambda: mm.glmmtmb("y ~ x + (1|g)", D, family="poisson",
                                              start={"nope": [1.0]}),
    "tweedie negative": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, family="tweedie"),
    "t with zero response fine": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, family="t",
                                                    dispformula="~nothere"),
    "compois non-integer": lambda: mm.glmmtmb("yb ~ x + (1|g)", D, family="compois"),
    "ziGamma negative": lambda: mm.glmmtmb("yn ~ x + (1|g)", D, family="ziGamma",
                                           ziformula="~1"),
    "betabinomial cbind > trials": lambda: mm.glmmtmb(
        "cbind(y, k) ~ x + (1|g)", D.assign(k=-1), family="betabinomial"),
    "gls sigma with variance": lambda: mm.gls("yn ~ x", D, sigma=0.0),
    "cor_arma p q zero": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_arma(form="~ t | g")),
    "var_ident unknown level value": lambda: mm.gls(
        "yn ~ x", D, variance=mm.var_ident(value={"zz": 2.0}, form="~ 1 | sp")),
    "cor_ar1 value out of range": lambda: mm.gls(
        "yn ~ x", D, correlation=mm.cor_ar1(value=1.5, form="~ t | g")),
    "lmer correlation group mismatch": lambda: mm.lmer(
        "yn ~ x + (1|g)", D, correlation=mm.cor_ar1(form="~ t | sp")),
    "pql sigma": lambda: mm.glmm_pql("y ~ x + (1|g)", D, family="poisson",
                                     correlation=mm.cor_ar1(form="~ tt | g")),
}


def run(cases: dict) -> None:
    """Call every case and print OK / DEEP / NO ERROR (used by the later lanes' lists)."""
    for name, f in cases.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f()
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)
            inner = tb[-1].filename
            deep = "mixedmodels" not in inner
            tag = "DEEP" if deep else "OK  "
            print(f"{tag} {name:34s} {type(e).__name__}: {str(e)[:230]}"
                  + (f"  [at {inner.split('site-packages/')[-1]}:{tb[-1].lineno}]"
                     if deep else ""))
        else:
            print(f"NO ERROR {name}")


def main():
    run(CASES)


if __name__ == "__main__":
    main()

"""Bad inputs of the R-side area (batch "sweepr"): correlation / variance forms naming
absent or unusable columns, duplicated or non-numeric times and coordinates, ``sigma=``
where it has no meaning or no valid value, known matrices that are not positive
semi-definite or do not match the levels. Each must give a clear error naming what and
where (raised inside the package), never a deep numpy / pandas / scipy traceback.

    python tools/r/sweep/sweepr_bad_inputs.py

Same report as tools/r/sweep/bad_inputs.py (whose data and loop it reuses): OK (raised
from mixedmodels, message shown), DEEP (innermost frame outside the package), NO ERROR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bad_inputs as bi  # the sibling script: its data D and its report loop

D = bi.D
n = len(D)
rng = np.random.default_rng(7)
D = D.assign(cx=rng.uniform(0, 10, n), cy=rng.uniform(0, 10, n),
             tday=np.tile(np.linspace(1.0, 900.0, 10), 12) + rng.uniform(0, 1, n),
             w=rng.uniform(0.5, 2.0, n), occ=np.tile([1, 2, 3, 4, 5] * 2, 12))
D["occ"] = D.groupby("g", observed=True).cumcount() % 5 + 1     # duplicates within g
D["occu"] = D.groupby("g", observed=True).cumcount() + 1        # unique within g
D["t_str"] = D["t"].astype(str)
D["cx_str"] = np.where(D.index % 7 == 0, "near", D["cx"].round(3).astype(str))
D["cx_cat"] = pd.Categorical(np.round(D["cx"]).astype(int).astype(str))
dup_day = D.copy()
dup_day.loc[1, "tday"] = dup_day.loc[0, "tday"]
dup_xy = D.copy()
dup_xy.loc[1, ["cx", "cy"]] = dup_xy.loc[0, ["cx", "cy"]].to_numpy()
inf_xy = D.copy()
inf_xy.loc[3, "cx"] = np.inf
na_g = D.assign(g2=D["g"].astype(object).where(D.index != 5))
levels = [f"s{i}" for i in range(5)]
K_npsd = pd.DataFrame(np.array([[1, 2, 0, 0, 0], [2, 1, 0, 0, 0], [0, 0, 1, 0, 0],
                                [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], float),
                      index=levels, columns=levels)
K_names = pd.DataFrame(np.eye(5), index=list("abcde"), columns=list("abcde"))
K_short = pd.DataFrame(np.eye(4), index=levels[:4], columns=levels[:4])
K_nan = pd.DataFrame(np.eye(5), index=levels, columns=levels)
K_nan.iloc[2, 2] = np.nan
K_rect = np.ones((5, 4))
meta = pd.DataFrame({"study": [f"S{i}" for i in range(10)], "yi": rng.normal(size=10),
                     "vi": rng.uniform(0.05, 0.5, 10)})
meta["w"] = 1 / meta["vi"]

CASES = {
    # forms naming absent columns
    "lmer cor absent time": lambda: mm.lmer("yn ~ x + (1|g)", D,
                                            correlation=mm.cor_ar1(form="~ nothere | g")),
    "lmer cor absent group": lambda: mm.lmer("yn ~ x + (1|g)", D,
                                             correlation=mm.cor_car1(form="~ tday | zz")),
    "lmer spatial absent coordinate": lambda: mm.lmer(
        "yn ~ x + (1|g)", D, correlation=mm.cor_exp(form="~ cx + nothere | g")),
    "pql cor absent time": lambda: mm.glmm_pql("y ~ x + (1|g)", D, family="poisson",
                                               correlation=mm.cor_ar1(form="~ tt | g")),
    "var_exp absent strata": lambda: mm.gls("yn ~ x", D,
                                            variance=mm.var_exp(form="~ x | nothere")),
    "var_comb part absent": lambda: mm.gls("yn ~ x", D, variance=mm.var_comb(
        mm.var_ident(form="~ 1 | sp"), mm.var_power(form="~ nothere"))),
    "var_fixed absent": lambda: mm.lmer("yn ~ x + (1|g)", D,
                                        variance=mm.var_fixed("~ nothere")),
    # duplicated times / occasions / coordinates
    "duplicated CAR(1) times gls": lambda: mm.gls("yn ~ x", dup_day,
                                                  correlation=mm.cor_car1(form="~ tday | g")),
    "duplicated ARMA times lmer": lambda: mm.lmer(
        "yn ~ x + (1|g)", bi.dup_t, correlation=mm.cor_arma(form="~ t | g", p=1, q=1)),
    "duplicated AR(1) times pql": lambda: mm.glmm_pql(
        "y ~ x + (1|g)", bi.dup_t, family="poisson", correlation=mm.cor_ar1(form="~ t | g")),
    "duplicated corSymm occasions": lambda: mm.gls("yn ~ x", D,
                                                   correlation=mm.cor_symm(form="~ occ | g")),
    "non-integer corSymm occasions": lambda: mm.gls(
        "yn ~ x", D, correlation=mm.cor_symm(form="~ tday | g")),
    "duplicated coordinates exp": lambda: mm.gls(
        "yn ~ x", dup_xy, correlation=mm.cor_exp(form="~ cx + cy | g")),
    "duplicated coordinates gaus lmer": lambda: mm.lmer(
        "yn ~ x + (1|g)", dup_xy, correlation=mm.cor_gaus(form="~ cx + cy | g")),
    # non-numeric or non-finite times / coordinates / covariates
    "AR(1) time as text": lambda: mm.gls("yn ~ x", D,
                                         correlation=mm.cor_ar1(form="~ t_str | g")),
    "spatial coordinate text": lambda: mm.gls("yn ~ x", D,
                                              correlation=mm.cor_exp(form="~ cx_str + cy | g")),
    "spatial coordinate categorical": lambda: mm.lmer(
        "yn ~ x + (1|g)", D, correlation=mm.cor_exp(form="~ cx_cat + cy | g")),
    "spatial coordinate infinite": lambda: mm.gls(
        "yn ~ x", inf_xy, correlation=mm.cor_exp(form="~ cx + cy | g")),
    "var_power covariate categorical": lambda: mm.gls(
        "yn ~ x", D, variance=mm.var_power(form="~ sp")),
    "var_exp covariate text": lambda: mm.gls("yn ~ x", D,
                                             variance=mm.var_exp(form="~ t_str")),
    "unknown metric": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_exp(
        form="~ cx + cy | g", metric="chebyshev")),
    "cor grouping with NaN": lambda: mm.gls("yn ~ x", na_g,
                                            correlation=mm.cor_ar1(form="~ t | g2")),
    # values
    "nugget value out of range": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_exp(
        value=(2.0, 1.5), form="~ cx + cy | g", nugget=True)),
    "range value negative": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_exp(
        value=(-1.0,), form="~ cx + cy | g")),
    "cor_symm value wrong length": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_symm(
        value=(0.1, 0.2), form="~ occu | g")),
    "var_power value wrong length": lambda: mm.gls("yn ~ x", D, variance=mm.var_power(
        value=(0.1, 0.2), form="~ w")),
    "cor_arma negative order": lambda: mm.gls("yn ~ x", D, correlation=mm.cor_arma(
        form="~ t | g", p=-1, q=1)),
    "fixed AR(1) phi at 1": lambda: mm.lmer("yn ~ x + (1|g)", D, correlation=mm.cor_ar1(
        value=1.0, form="~ t | g", fixed=True)),
    # sigma=
    "sigma= with binomial glmer": lambda: mm.glmer("k ~ x + (1|g)", D, family="binomial",
                                                   sigma=1.0),
    "sigma= zero lmer": lambda: mm.lmer("yn ~ x + (1|g)", D, sigma=0.0),
    "sigma= NaN lmer": lambda: mm.lmer("yn ~ x + (1|g)", D, sigma=float("nan")),
    "sigma= inf gls": lambda: mm.gls("yn ~ x", D, sigma=float("inf")),
    "sigma= text gls": lambda: mm.gls("yn ~ x", D, sigma="1"),
    "sigma= array lmer": lambda: mm.lmer("yn ~ x + (1|g)", D, sigma=np.ones(2)),
    "meta negative weights": lambda: mm.lmer("yi ~ 1 + (1|study)", meta.assign(w=-meta["w"]),
                                             weights="w", sigma=1.0),
    "meta zero weights": lambda: mm.lmer("yi ~ 1 + (1|study)", meta.assign(w=0.0),
                                         weights="w", sigma=1.0),
    "meta weights absent": lambda: mm.lmer("yi ~ 1 + (1|study)", meta, weights="wv",
                                           sigma=1.0),
    # known matrices (lmer)
    "lmer known matrix not PSD": lambda: mm.lmer(
        "yn ~ x + propto(0 + sp | g, K)", D, covariance_matrices={"K": K_npsd}),
    "lmer known matrix names mismatch": lambda: mm.lmer(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_names}),
    "lmer known matrix missing level": lambda: mm.lmer(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_short}),
    "lmer known matrix NaN": lambda: mm.lmer(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_nan}),
    "lmer known matrix not square": lambda: mm.lmer(
        "yn ~ x + equalto(1 | sp, K)", D, covariance_matrices={"K": K_rect}),
    "lmer known matrix not given": lambda: mm.lmer("yn ~ x + propto(0 + sp | g, K)", D),
}


def main():
    bi.CASES = CASES
    bi.main()


if __name__ == "__main__":
    main()

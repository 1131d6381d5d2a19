"""glmmTMB 1.1.5's objective reproduced from its own estimates, for fits without random
effects (where the objective is the exact -2 log-likelihood, no Laplace step).

Reference numbers: fixtures ``sal_zinb2_nore`` and ``cbpp_binom_nore`` of
``tools/r/glmmtmb_fixtures.R`` (glmmTMB 1.1.5, R 4.2.2; branch h/fixtures), copied here
with the estimates they were computed at (printed to 15 digits, so the objective is
reproducible to ~1e-9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixedmodels.datasets import load
from mixedmodels.families import ModelDensity, ZeroInflated, make_response_family

OBJ_TOL = 1e-9


def test_salamanders_zero_inflated_nbinom2():
    d = load("Salamanders")
    spp = pd.Categorical(d["spp"], ["GP", "PR", "DM", "EC-A", "EC-L", "DES-L", "DF"])
    x = np.column_stack([np.ones(len(d))]
                        + [(spp == lv).astype(float) for lv in spp.categories[1:]]
                        + [(d["mined"] == "no").astype(float), d["cover"].to_numpy()])
    beta = np.array([-1.47519615345478, -1.25290820291972, 0.403295437658153,
                     -0.667167129263913, 0.594667778026315, 0.8039308597648,
                     0.320707178943602, 2.17423589422173, -0.144569311763179])
    md = ModelDensity(ZeroInflated(make_response_family("nbinom2")))
    n = len(d)
    etas = {"mu": x @ beta, "zi": np.full(n, -3.11791879658021),
            "phi": np.full(n, -0.0705262427860262)}
    y = d["count"].to_numpy(dtype=float)
    md.check_response(y, "count")
    objective = -2.0 * md.log_density_value(y, etas).sum()
    assert abs(objective - 1671.93012175265) < OBJ_TOL
    # sigma() = phi for nbinom2
    assert abs(md.family.sigma(np.exp(-0.0705262427860262)) - 0.931903283466439) < 1e-12


def test_cbpp_binomial_cbind():
    d = load("cbpp")
    period = d["period"].astype(str).to_numpy()
    x = np.column_stack([np.ones(len(d))] + [(period == p).astype(float) for p in "234"])
    beta = np.array([-1.26902366338001, -1.17076278420799, -1.30140479543125,
                     -1.78227905486717])
    md = ModelDensity(make_response_family("binomial"))
    y, size = d["incidence"].to_numpy(float), d["size"].to_numpy(float)
    objective = -2.0 * md.log_density_value(y, {"mu": x @ beta}, size=size).sum()
    assert abs(objective - 198.058398978733) < OBJ_TOL

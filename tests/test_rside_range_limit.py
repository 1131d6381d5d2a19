"""A smooth spatial range whose optimum is its limit 0 (no within-group correlation):
the fit reaches the criterion of the model without the correlation, which the limit
nests (an independent fit), instead of stopping where the nearest pair's correlation
``exp(-d / range)`` still costs deviance (fitting/rside.py ``_range_limit``).

Oats (nlme): ``lme(yield ~ nitro, random = ~ 1 | Block/Variety, correlation =
corExp(form = ~ nitro | Block/Variety))``; nlme 3.1's logLik -296.52087669 (its range
0.0111, where every correlation is below 1e-7) equals its fit without the correlation,
-296.520876658 (tools/r/sweep/speed8_nlme.R's data).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from rside_fixtures import DIR

#: The fit at the limit against the fit without correlation (the same criterion, found
#: by two searches).
LIMIT_LOGLIK_ATOL = 1e-6
#: nlme's logLik (above): ours may be higher, not lower by more than this.
NLME_LOGLIK = -296.52087669
NLME_ATOL = 1e-6


@pytest.fixture(scope="module")
def oats() -> pd.DataFrame:
    d = pd.read_csv(DIR / "oats.csv")
    return d.assign(Block=d["Block"].astype("category"),
                    Variety=d["Variety"].astype("category"))


@pytest.mark.parametrize("cor", ["exp", "gaus", "ratio"])
def test_range_at_its_limit_reaches_the_uncorrelated_fit(oats, cor):
    plain = mm.lmer("yield ~ nitro + (1 | Block/Variety)", oats)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.ConvergenceWarning)
        fit = mm.lmer("yield ~ nitro + (1 | Block/Variety)", oats,
                      correlation=getattr(mm, f"cor_{cor}")(form="~ nitro | Block/Variety"))
    assert fit.loglik >= plain.loglik - LIMIT_LOGLIK_ATOL
    np.testing.assert_allclose(fit.fixef, plain.fixef, rtol=1e-5)


def test_oats_matches_nlme(oats):
    fit = mm.lmer("yield ~ nitro + (1 | Block/Variety)", oats,
                  correlation=mm.cor_exp(form="~ nitro | Block/Variety"))
    assert fit.loglik >= NLME_LOGLIK - NLME_ATOL
    assert fit.cor_params["range"] < 0.05     # at the limit (nlme: 0.011)


@pytest.mark.parametrize("cor", ["exp", "gaus", "ratio"])
def test_held_range_passes_the_first_check(oats, cor):
    """The range held at its limit is left out of the convergence check (the criterion is
    flat in it): the first search's check passes, so no second search runs -- the fit is
    BOBYQA's, and its report has the range active with a zero gradient."""
    fit = mm.lmer("yield ~ nitro + (1 | Block/Variety)", oats,
                  correlation=getattr(mm, f"cor_{cor}")(form="~ nitro | Block/Variety"))
    assert fit.opt.optimizer.startswith("nlopt")
    assert fit.convergence is not None and fit.convergence.converged
    k = fit.theta.size
    assert fit.convergence.active[k] and fit.convergence.gradient[k] == 0.0
    assert fit.convergence.gradient.size == k + 1

"""Profile-likelihood intervals of glmmtmb fits against glmmTMB 1.1.5's
``confint(method = "profile")`` (tools/r/glmmtmb_profile_fixtures.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "glmmtmb_profile" /
                       "profiles.json").read_text())
#: glmmTMB interpolates its profile on a grid (spline): ends agree to this, relative to
#: the interval's width.
END_RTOL = 2e-3
MODELS = {
    "gammasim": ("y ~ x + (1 | g)", "gammasim", {"family": "Gamma", "link": "log"}),
    "owls_nb1": ("SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest)",
                 "Owls", {"family": "nbinom1"}),
}


@pytest.mark.parametrize("key", sorted(MODELS))
def test_profile_intervals_equal_glmmtmbs(key):
    formula, data, kw = MODELS[key]
    ref = FIXTURES[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(formula, mm.datasets.load(data), **kw)
    assert m.objective == pytest.approx(ref["objective"], abs=1e-4)
    ci = m.confint(method="profile").to_numpy()
    n_beta = m.design.p
    lo, hi = np.array(ref["lower"]), np.array(ref["upper"])
    # glmmTMB profiles log(sd) for a scalar term; ours is on the sd scale
    lo[n_beta:], hi[n_beta:] = np.exp(lo[n_beta:]), np.exp(hi[n_beta:])
    rows = [*range(n_beta), ci.shape[0] - 1]             # betas, then the term's sd
    width = hi - lo
    np.testing.assert_allclose(ci[rows, 0], lo, atol=END_RTOL * width.max())
    np.testing.assert_allclose(ci[rows, 1], hi, atol=END_RTOL * width.max())
    # a profile interval of a fixed effect is close to the Wald one on these models
    wald = m.confint().to_numpy()
    np.testing.assert_allclose(ci[:n_beta, :2], wald[:n_beta, :2], rtol=0.1)


def test_profile_rejects_unknown_parameters():
    m = mm.glmmtmb("y ~ x + (1 | g)", mm.datasets.load("gammasim"), family="Gamma",
                   link="log")
    with pytest.raises(ValueError, match="cannot profile"):
        m.confint(method="profile", parm=["nothere"])
    with pytest.raises(ValueError, match="method"):
        m.confint(method="bootstrap")

"""``gls`` in closed form when the residual model has no free parameter
(:mod:`mixedmodels.rside.closed_form`).

Against the criterion's own path (:class:`~mixedmodels.rside.objective.GLSObjective`: the
fixed-effects basis, the residualized response, the cross-products and their Cholesky
factor) on the same rows, and against a weighted least squares written out here with
numpy's ``lstsq``; a response shifted by 1e7 keeps its log-likelihood and coefficients
(the refinement step); the criterion built on first use serves ``intervals``,
``deviance`` and ``anova``.
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.objective import GLSObjective
from rside_fixtures import data

#: Relative agreement of two exact algorithms for the same least squares (QR of the
#: whitened data against basis + cross-products: different roundings of ~200 rows).
PATH_RTOL = 1e-10
#: The log-likelihood of ``weight + 1e7`` against that of ``weight`` (the weights are
#: integers, so the shifted response is exact). Measured (var_fixed / no residual model):
#: the closed form 1.0e-11 / 2.8e-11, the basis-and-cross-products path 4.0e-11 / 7.2e-11,
#: the closed form without its refinement step 9.9e-10 / 2.3e-10.
SHIFT_LOGLIK_TOL = 2e-10
#: Relative agreement of the shifted intercept with the unshifted one plus 1e7 (the
#: intercept's rounding, 1e-9 absolute, over 1e7).
SHIFT_BETA_RTOL = 1e-12
#: ... and of the other coefficients (the fit's rounding of the shifted rows: 3e-10 here).
SHIFT_SLOPE_ATOL = 1e-8
#: ... and of the standard errors (sigma's rounding: 6e-14 here).
SHIFT_SE_RTOL = 1e-11


@pytest.fixture(scope="module")
def bw() -> pd.DataFrame:
    return data("bodyweight").assign(Diet=lambda d: d["Diet"].astype("category"))


def _models(d):
    """(name, keyword arguments) of residual models with nothing to estimate."""
    return [
        ("var_fixed", {"variance": mm.var_fixed("~ Time")}),
        ("var_fixed_ml", {"variance": mm.var_fixed("~ Time"), "method": "ML"}),
        ("plain", {}),
        ("weights", {"weights": np.sqrt(d["Time"].to_numpy())}),
        ("sigma", {"variance": mm.var_fixed("~ Time"), "sigma": 3.0}),
        ("held_car1", {"correlation": mm.cor_car1(0.9, form="~ Time | Rat", fixed=True)}),
        ("held_cs_var_fixed", {"correlation": mm.cor_comp_symm(0.3, form="~ 1 | Rat",
                                                               fixed=True),
                               "variance": mm.var_fixed("~ Time"), "method": "ML"}),
        ("held_power", {"variance": mm.var_power(0.3, form="~ Time", fixed=True)}),
    ]


@pytest.mark.parametrize("case", range(8))
def test_closed_form_matches_the_criterion(bw, case):
    name, kw = _models(bw)[case]
    m = mm.gls("weight ~ Time * Diet", bw, **kw)
    assert m.criterion is None, name               # the closed form was used
    assert m.opt.optimizer == "none (no parameters)" and m.convergence is None
    # the criterion's path on the same rows, built afresh
    obj = GLSObjective(m.design.X, m.design.y - m.design.offset, m.residual, reml=m.reml)
    sol = obj.solve(m.phi)
    assert m.objective == pytest.approx(sol.objective, rel=PATH_RTOL)
    np.testing.assert_allclose(m.beta, sol.beta, rtol=PATH_RTOL)
    assert m.sigma == pytest.approx(sol.sigma, rel=PATH_RTOL)
    assert m.solution.logdet_X == pytest.approx(sol.logdet_X, rel=PATH_RTOL)
    assert m.solution.logdet_V == pytest.approx(sol.logdet_V, rel=PATH_RTOL, abs=1e-10)
    Ri, Rs = m.solution.RX_inv, sol.RX_inv
    np.testing.assert_allclose(Ri @ Ri.T, Rs @ Rs.T, rtol=PATH_RTOL, atol=1e-18)
    assert np.all(np.diagonal(Ri) > 0)
    # and the criterion built on first use is that one
    assert m.objective_function(m.phi) == pytest.approx(m.objective, rel=PATH_RTOL)


def test_var_fixed_is_weighted_least_squares(bw):
    """Against weighted least squares written out: rows scaled by ``1 / sqrt(Time)``,
    ``lstsq``, and the REML log-likelihood of the whitened model."""
    m = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"))
    X, y = m.design.X, m.design.y
    s = 1.0 / np.sqrt(bw["Time"].to_numpy(dtype=float))
    beta, rss, _, _ = np.linalg.lstsq(X * s[:, None], y * s, rcond=None)
    n, p = X.shape
    _, logdet_x = np.linalg.slogdet((X * s[:, None]).T @ (X * s[:, None]))
    logdet_v = float(np.sum(np.log(bw["Time"].to_numpy(dtype=float))))
    dev = logdet_x + logdet_v + (n - p) * (1.0 + math.log(2 * math.pi * rss[0] / (n - p)))
    np.testing.assert_allclose(m.beta, beta, rtol=PATH_RTOL)
    assert m.loglik == pytest.approx(-0.5 * dev, rel=PATH_RTOL)
    assert m.sigma == pytest.approx(math.sqrt(rss[0] / (n - p)), rel=PATH_RTOL)


@pytest.mark.parametrize("kw", [{"variance": mm.var_fixed("~ Time")}, {}],
                         ids=["var_fixed", "plain"])
def test_shifted_response_loses_no_digits(bw, kw):
    a = mm.gls("weight ~ Time * Diet", bw, **kw)
    b = mm.gls("weight ~ Time * Diet", bw.assign(weight=bw["weight"] + 1e7), **kw)
    assert b.criterion is None
    assert b.loglik == pytest.approx(a.loglik, abs=SHIFT_LOGLIK_TOL)
    assert b.beta[0] == pytest.approx(a.beta[0] + 1e7, rel=SHIFT_BETA_RTOL)
    # the slopes: the rounding of the shifted intercept (1e-9) spread over the columns
    np.testing.assert_allclose(b.beta[1:], a.beta[1:], rtol=0, atol=SHIFT_SLOPE_ATOL)
    np.testing.assert_allclose(b.se, a.se, rtol=SHIFT_SE_RTOL)


def test_the_criterion_built_on_first_use_serves_inference(bw):
    m = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"))
    # the same model through the criterion's path: start= given keeps the optimizer's
    ref = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"),
                 start=np.zeros(0))
    assert m.criterion is None and isinstance(ref.criterion, GLSObjective)
    assert m.loglik == pytest.approx(ref.loglik, rel=PATH_RTOL)
    assert m.deviance == pytest.approx(ref.deviance, rel=PATH_RTOL)
    a, b = m.intervals(), ref.intervals()
    np.testing.assert_allclose(a["fixed"].to_numpy(), b["fixed"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(a["sigma"].to_numpy(), b["sigma"].to_numpy(), rtol=1e-6)
    assert isinstance(m.objective_function, GLSObjective)
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.loglik == m.loglik
    assert m2.objective_function(m2.phi) == pytest.approx(m.objective, rel=PATH_RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bigger = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_power(form="~ Time"),
                        method="ML")
        small = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"),
                       method="ML")
        table = mm.anova(small, bigger)
    assert small.criterion is None
    assert table["logLik"].to_numpy() == pytest.approx([small.loglik, bigger.loglik])
    assert table["Chisq"].to_numpy()[-1] == pytest.approx(
        2.0 * (bigger.loglik - small.loglik), rel=1e-12)


def test_refit_and_update_keep_the_closed_form(bw):
    m = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"))
    r = m.update(method="ML")
    assert not r.reml and r.criterion is None
    ref = mm.gls("weight ~ Time * Diet", bw, variance=mm.var_fixed("~ Time"), method="ML")
    assert r.loglik == pytest.approx(ref.loglik, rel=PATH_RTOL)

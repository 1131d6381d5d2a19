"""gls Fisher scoring for varConstPower (fitting/gls_scoring.py) and the objective pieces it
uses (rside/objective.py): the memoized value and gradient equal a fresh objective's and do
not alias, the expected information equals its centred dense form, and a scoring fit (the
looser decrement stop plus the convergence check's Newton step) reaches BOBYQA's optimum."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.fitting.gls_scoring import fisher_scoring_search

#: Two evaluations of the same deterministic criterion: equal to the last bit.
SAME = 0.0
#: Sums of 300 products of order one in another order: rounding only.
INFO_TOL = 1e-12
#: Log-likelihood of a scoring fit against BOBYQA's with lme4's tolerance (1e-8, then the
#: same check): both are optimizers' ends on a smooth criterion of a few hundred units.
LOGLIK_TOL = 1e-7


def _data(seed: int, n: int = 300, c: float = 5.0, delta: float = 1.5, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(1.0, 10.0, n) * scale
    y = 1.0 + 0.5 * x + (c + x ** delta) * rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "s": np.where(rng.random(n) < 0.5, "a", "b")})


def _fit(d, form="~ x", method="REML", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.gls("y ~ x", d, variance=mm.var_const_power(form=form), method=method,
                      **kw)


def _fresh(obj):
    """The same criterion, a new objective without the memo (``with_residual`` keeps the
    basis and row data)."""
    return obj.with_residual(obj.residual)


def test_memoized_value_and_gradient_equal_a_fresh_evaluation_and_do_not_alias():
    obj = _fit(_data(1)).objective_function
    phi = np.array([1.2, 1.4])
    _, g1 = obj.value_and_gradient(phi)
    g1[:] = 99.0                                  # a caller writing into its gradient
    f2, g2 = obj.value_and_gradient(phi)          # memo hit
    f3, g3 = _fresh(obj).value_and_gradient(phi)
    assert f2 == f3
    np.testing.assert_array_equal(g2, g3)
    assert not np.shares_memory(g1, g2)
    # another point in between: the memo follows the last point
    obj.value_and_gradient(phi + 0.1)
    f4, g4 = obj.value_and_gradient(phi)
    assert f4 == f3
    np.testing.assert_array_equal(g4, g3)


@pytest.mark.parametrize("form", ["~ x", "~ x | s"])
def test_scoring_information_is_the_centred_jacobian_product(form):
    obj = _fit(_data(2), form=form).objective_function
    phi = np.linspace(0.3, 1.1, obj.x0.size)
    J = obj.residual.variance.log_sd_jacobian(phi)
    Jc = J - J.mean(axis=0)
    np.testing.assert_allclose(obj.scoring_information(phi), 4.0 * Jc.T @ Jc,
                               rtol=INFO_TOL, atol=INFO_TOL * np.abs(Jc).max() ** 2 * J.shape[0])
    # asked twice (the applicability is kept per objective): the same numbers
    np.testing.assert_array_equal(obj.scoring_information(phi),
                                  obj.scoring_information(phi))


def test_scoring_information_is_none_with_a_correlation():
    d = _data(3)
    d["t"] = np.arange(len(d)) % 10
    d["g"] = np.arange(len(d)) // 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.gls("y ~ x", d, variance=mm.var_const_power(form="~ x"),
                   correlation=mm.cor_ar1(form="~ t | g"))
    obj = m.objective_function
    assert obj.scoring_information(np.concatenate([[0.1], obj.x0[1:]])) is None


@pytest.mark.parametrize("seed,method,form,c,delta,scale", [
    (0, "REML", "~ x", 5.0, 1.5, 1.0), (10, "ML", "~ x", 5.0, 1.5, 1.0),
    (3, "REML", "~ x", 1.0, 2.0, 1.0), (4, "ML", "~ x | s", 20.0, 1.2, 3.0),
    (5, "REML", "~ x | s", 0.5, 1.0, 0.1),
])
def test_scoring_fit_reaches_the_bobyqa_optimum(seed, method, form, c, delta, scale):
    d = _data(seed, c=c, delta=delta, scale=scale)
    auto = _fit(d, form=form, method=method)
    ref = _fit(d, form=form, method=method, optimizer="bobyqa",
               optimizer_settings={"ftol_abs": 1e-8, "xtol_abs": 1e-8})
    assert auto.loglik >= ref.loglik - LOGLIK_TOL * abs(ref.loglik)


def test_scoring_search_stops_on_the_decrement_and_the_check_polishes():
    """The search alone ends within the decrement stop of the optimum; the fit (search,
    then the check's Newton step) ends at least as high as a search run to 1e-12."""
    import mixedmodels.fitting.gls_scoring as gs
    m = _fit(_data(0))
    obj = m.objective_function
    loose, _ = fisher_scoring_search(obj, obj.x0, obj.lower, "gls")
    old = gs.SCORING_DECREMENT_TOL
    try:
        gs.SCORING_DECREMENT_TOL = 1e-12
        tight, _ = fisher_scoring_search(obj, obj.x0, obj.lower, "gls")
    finally:
        gs.SCORING_DECREMENT_TOL = old
    assert tight.n_evals > loose.n_evals
    assert 0.0 <= loose.fval - tight.fval <= 10 * gs.SCORING_DECREMENT_TOL
    assert -2.0 * m.loglik <= tight.fval + 1e-9

"""varConstPower's one-stratum log-sd Jacobian (rside/variance.py): the fast path writes the
same numbers as the per-row (stratified) computation, bit for bit, and matches central
differences of ``log_sd``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.rside.correlation import UNCONSTRAINED_MAX

#: Central differences of log(c + |v|^delta) in (log c, delta): step 1e-6 on values of
#: order 1 leave ~1e-10 of rounding and truncation.
FD_TOL = 1e-7


def _bound(v, form="~ v"):
    d = pd.DataFrame({"v": v, "g": np.where(np.arange(v.size) % 2 == 0, "a", "b")})
    spec = mm.var_const_power(form=form)
    return spec.bind(d, np.arange(v.size))


def _per_row(b, u):
    """The stratified expression (gathers per row), as for k > 1."""
    c = np.exp(np.clip(u[:b.k], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))[b.codes]
    pw = b._abs ** u[b.k:][b.codes]
    g = c + pw
    with np.errstate(divide="ignore"):
        log_abs = np.where(b._abs > 0.0, np.log(b._abs), 0.0)
    return np.hstack([b._strata_columns(c / g, b.codes, b.k),
                      b._strata_columns(pw * log_abs / g, b.codes, b.k)])


@pytest.mark.parametrize("u", [(np.log(0.1), 0.0), (2.3, 2.18), (-40.0, 0.5), (0.3, -1.7),
                               (1.0, 2.0), (35.0, 1.0)])
def test_one_stratum_jacobian_is_the_per_row_one_bit_for_bit(u):
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.uniform(0.1, 30.0, 40), [0.0, -2.5, 1.0]])
    b = _bound(v)
    u = np.array(u)
    assert b.k == 1
    with np.errstate(divide="ignore", invalid="ignore"):   # |0|^delta for delta < 0
        np.testing.assert_array_equal(b.log_sd_jacobian(u), _per_row(b, u))


def test_one_stratum_jacobian_after_a_fitted_update_uses_the_new_covariate():
    rng = np.random.default_rng(2)
    b = _bound(rng.uniform(1.0, 5.0, 30), form="~ fitted(.)")
    new = rng.uniform(0.5, 50.0, 30)
    b2 = b.with_fitted(new)
    u = np.array([0.4, 1.3])
    np.testing.assert_array_equal(b2.log_sd_jacobian(u), _per_row(b2, u))
    assert not np.array_equal(b2.log_sd_jacobian(u), b.log_sd_jacobian(u))


@pytest.mark.parametrize("form", ["~ v", "~ v | g"])
def test_jacobian_matches_central_differences_of_log_sd(form):
    rng = np.random.default_rng(3)
    b = _bound(rng.uniform(0.2, 8.0, 25), form=form)
    u = rng.normal(0.0, 0.7, b.n_par)
    J = b.log_sd_jacobian(u)
    h = 1e-6
    for j in range(u.size):
        e = np.zeros(u.size)
        e[j] = h
        fd = (b.log_sd(u + e) - b.log_sd(u - e)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=0, atol=FD_TOL)

"""Conway-Maxwell-Poisson's ``log lambda`` for strongly over-dispersed rows (``nu`` down to
0.002, the geometric limit), where an unbracketed start at ``log mu`` put the series' mode at
``mu^(1/nu)``.

Tolerances
----------
* ``MEAN_RTOL``: the mean at the solved ``log lambda`` against the target (the solve stops at
  ``|log E - log mu| < 1e-13``; summing the moments adds rounding).
* ``MAX_WINDOW``: the widest series window any Halley iteration sums. Every row here has a
  mean below 150 and ``nu >= 0.002``; its terms are within 40 of the largest over at most a
  few thousand counts. Before the bracket the windows reached the 200,000-term cap.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from mixedmodels.families import compois as cp

MEAN_RTOL = 1e-11
MAX_WINDOW = 20000


def _direct_mean(ell, nu, kmax=60000):
    """E[Y] by summing the terms on a long fixed grid (independent of the windows)."""
    k = np.arange(kmax, dtype=float)
    x = k * ell - nu * special.gammaln(k + 1)
    return float(np.exp(special.logsumexp(x, b=k) - special.logsumexp(x)))


def test_over_dispersed_rows_solve_in_small_windows(monkeypatch):
    rng = np.random.default_rng(12)
    mu = np.exp(rng.uniform(np.log(0.01), np.log(150.0), 200))
    nu = np.exp(rng.uniform(np.log(0.002), np.log(5.0), 200))
    widths = []
    window = cp._window

    def recording(ell, nu_, scale):
        lo, hi = window(ell, nu_, scale)
        widths.append(float(np.max(hi - lo + 1)))
        return lo, hi

    monkeypatch.setattr(cp, "_window", recording)
    ell = cp.compois_loglambda(mu, nu)
    assert max(widths) <= MAX_WINDOW
    mean, _ = cp._mean_var(ell, nu)
    np.testing.assert_allclose(mean, mu, rtol=MEAN_RTOL)
    # the bracket of the solver's docstring holds at the root
    under = nu < 1
    assert np.all(ell[under] <= np.log(mu[under]) + 1e-12)
    assert np.all(ell[under] >= np.log(mu[under] / (1 + mu[under])) - 1e-12)
    assert np.all(ell[~under] >= np.log(mu[~under]) - 1e-12)


def test_geometric_limit_against_direct_sums():
    mu = np.array([0.05, 0.8, 2.5, 12.0, 40.0])
    nu = np.array([0.002, 0.003, 0.01, 0.05, 0.2])
    ell = cp.compois_loglambda(mu, nu)
    direct = np.array([_direct_mean(e, n) for e, n in zip(ell, nu, strict=True)])
    np.testing.assert_allclose(direct, mu, rtol=MEAN_RTOL)
    # nu -> 0: the geometric's lambda = mu / (1 + mu), to first order in nu
    np.testing.assert_allclose(ell[0], np.log(mu[0] / (1 + mu[0])), atol=0.01)

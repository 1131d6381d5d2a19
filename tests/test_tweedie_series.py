"""Tweedie's series near the Gamma limit: the coarse-grid sum of wide windows, the
rounding-safe ``log W - lambda``, and a fit whose power runs to 2.

Tolerances
----------
* ``COARSE_RTOL[k]``: the coarse grid against the whole-number sum, order ``k`` of the
  ``(log z, b)`` derivatives, relative to ``1 + |value|``. The aliasing error of the coarse
  rule is ~exp(-300) (module docstring of ``families/tweedie.py``); what is left is rounding
  in both sums -- centred third moments of windows thousands of terms wide lose ~1e-9
  (measured: 6e-16, 1e-13, 2.5e-11, 3.5e-9; both sums were within 2.5e-9 of a 40-digit
  sum on the worst rows).
* ``MIXTURE_RTOL``: log-densities against the Poisson mixture of gammas (independent of
  the series).
* ``GAMMA_LIMIT_RTOL``: at ``p = 2 - 1e-7`` the density is the Gamma one up to ~1e-7.
* ``SMOOTH_TOL``: a central difference of the value in ``eta_mu`` against the exact first
  derivative, at ``p = 2 - 1e-7`` where ``log W`` and ``lambda`` are ~1e7: the summed
  ``log W - lambda`` would carry ~1e-9 of rounding that moves with the mean (1e-4 in a
  difference quotient of step 1e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special, stats

import mixedmodels as mm
from mixedmodels.families import ModelDensity, make_response_family
from mixedmodels.families import tweedie as tw

COARSE_RTOL = (1e-13, 1e-11, 1e-9, 1e-7)
MIXTURE_RTOL = 1e-9
GAMMA_LIMIT_RTOL = 1e-5
SMOOTH_TOL = 1e-6
FD_STEP = 1e-5


def _series_inputs(y, phi, p):
    p1, p2 = p - 1.0, 2.0 - p
    b = p2 / p1
    logz = b * np.log(y) - np.log(phi) / p1 - b * np.log(p1) - np.log(p2)
    jmax = np.maximum(1.0, np.exp(p2 * np.log(y) - np.log(phi) - np.log(p2)))
    return logz, b, jmax, p1


def _mixture(y, mu, phi, p, nmax):
    """Poisson(lambda) mixture of Gamma(n shape, scale) densities, summed directly."""
    lam = mu ** (2 - p) / (phi * (2 - p))
    shape, scale = (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1)
    n = np.arange(1, nmax)
    return np.array([special.logsumexp(stats.poisson.logpmf(n, li)
                                       + stats.gamma.logpdf(yi, n * si, scale=ci))
                     for yi, li, si, ci in np.broadcast(y, lam, shape, scale)])


def _close(got, ref, tol):
    err = np.abs(np.asarray(got) - ref) / (1 + np.abs(ref))
    assert np.all(err <= tol), f"max rel. error {np.max(err):.3g} > {tol:g}"


def test_coarse_grid_equals_whole_number_sum(monkeypatch):
    rng = np.random.default_rng(31)
    n = 300
    p = rng.uniform(1.05, 1.995, n)
    phi = np.exp(rng.uniform(-6, 1, n))
    y = np.exp(rng.uniform(-3, 4, n))
    logz, b, jmax, p1 = _series_inputs(y, phi, p)
    # rows whose whole-number window fits under TWEEDIE_NTERM (the reference is exact)
    keep = np.sqrt(2 * jmax * (tw.TWEEDIE_DROP * p1 + tw.TWEEDIE_PAD)) * 2 < 15000
    logz, b, jmax, p1 = logz[keep], b[keep], jmax[keep], p1[keep]
    step = tw._window(jmax, p1, 1.0)[2]
    assert np.sum(step > 1) >= 50 and np.sum(step == 1) >= 50   # both rules exercised
    coarse = tw.tweedie_logw(logz, b, jmax, p1, 3)
    monkeypatch.setattr(tw, "TWEEDIE_COARSE_SD", np.inf)
    whole = tw.tweedie_logw(logz, b, jmax, p1, 3)
    for k in range(4):
        _close(coarse[k], whole[k], COARSE_RTOL[k])


def test_wide_windows_match_the_gamma_mixture():
    # modes of a few hundred to ~2,000 terms, spreads 15-45: all summed coarsely
    y = np.array([3.0, 12.0, 0.7, 40.0, 5.0])
    mu = np.array([2.5, 15.0, 1.0, 35.0, 6.0])
    phi = np.array([0.004, 0.01, 0.002, 0.02, 0.0015])
    p = np.array([1.6, 1.8, 1.9, 1.75, 1.5])
    _, _, jmax, p1 = _series_inputs(y, phi, p)
    assert np.all(tw._window(jmax, p1, 1.0)[2] > 1)
    md = ModelDensity(make_response_family("tweedie"))
    etas = {c: md.links[c].link(v) for c, v in (("mu", mu), ("phi", phi), ("power", p))}
    _close(md.log_density_value(y, etas), _mixture(y, mu, phi, p, 6000), MIXTURE_RTOL)


def test_near_the_gamma_limit_value_and_smoothness():
    y = np.array([0.3, 2.0, 7.5, 15.0])
    mu = np.array([0.5, 1.8, 6.0, 20.0])
    phi = np.array([0.4, 1.2, 0.8, 2.0])
    p = np.full(4, 2.0 - 1e-7)
    md = ModelDensity(make_response_family("tweedie"))
    etas = {c: md.links[c].link(v) for c, v in (("mu", mu), ("phi", phi), ("power", p))}
    gamma = stats.gamma.logpdf(y, 1 / phi, scale=phi * mu)
    _close(md.log_density_value(y, etas), gamma, GAMMA_LIMIT_RTOL)
    jet = md.evaluate(y, etas, order=1)
    up = dict(etas, mu=etas["mu"] + FD_STEP)
    dn = dict(etas, mu=etas["mu"] - FD_STEP)
    fd = (md.log_density_value(y, up) - md.log_density_value(y, dn)) / (2 * FD_STEP)
    _close(fd, jet.d1[:, 0], SMOOTH_TOL)


@pytest.fixture(scope="module")
def gammasim200():
    return mm.datasets.load("gammasim").iloc[:200]


def test_tweedie_fit_runs_to_the_gamma_limit(gammasim200):
    """Gamma data: the Tweedie power goes to 2 and the likelihood to the Gamma fit's (the
    fit took 31 s before wide windows were summed coarsely, now well under a second)."""
    with warnings.catch_warnings():
        # the power's Hessian vanishes at the boundary (glmmTMB warns too)
        warnings.filterwarnings("ignore", "the Hessian of the objective is not positive")
        tweedie = mm.glmmtmb("y ~ x + (1 | g)", gammasim200, family="tweedie")
    gamma = mm.glmmtmb("y ~ x + (1 | g)", gammasim200, family="Gamma", link="log")
    assert tweedie.family_params["power"] > 1.9999
    assert abs(tweedie.loglik - gamma.loglik) < 1e-4
    np.testing.assert_allclose(np.asarray(tweedie.fixef), np.asarray(gamma.fixef),
                               rtol=1e-4)

"""Link extensions for the density families: third derivatives and accurate jets."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.families import jet as jt
from mixedmodels.families.links import LINKS, BoundedLogit, make_link

H = 1e-5
ETA = np.array([-3.0, -0.7, 0.2, 1.3, 2.5])
ALL = [*sorted(LINKS), "bounded"]


def _link(name):
    return BoundedLogit(1.0, 2.0) if name == "bounded" else make_link(name)


@pytest.mark.parametrize("name", ALL)
def test_inverse_derivatives_match_existing_api_and_differences(name):
    lk = _link(name)
    eta = np.abs(ETA) + 0.5 if lk.restricted_eta else ETA
    d = lk.inverse_derivatives(eta)
    np.testing.assert_allclose(d[0], lk.linkinv(eta), rtol=1e-14)
    np.testing.assert_allclose(d[1], lk.mu_eta(eta), rtol=1e-14)
    np.testing.assert_allclose(d[2], lk.mu_eta2(eta), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(lk.mu_eta3(eta), d[3])
    up, dn = lk.inverse_derivatives(eta + H), lk.inverse_derivatives(eta - H)
    for k in range(3):
        fd = (up[k] - dn[k]) / (2 * H)
        np.testing.assert_allclose(fd, d[k + 1], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ALL)
def test_log_and_complement_jets_agree_with_generic_forms(name):
    lk = _link(name)
    eta = np.abs(ETA) * 0.3 + 0.2 if name in ("1/mu^2", "inverse", "sqrt") else ETA * 0.3
    if name == "identity":
        eta = eta + 2.0
    x = jt.Jet.variable(eta, 0, 1, 3)
    mu = lk.inverse_jet(x)
    pairs = [(lk.log_inverse_jet(x), jt.log(mu))]
    if lk.bounded or name == "bounded":
        pairs += [(lk.complement_jet(x), 1.0 - mu)]
    if lk.bounded:
        pairs += [(lk.log1m_inverse_jet(x), jt.log1p(-mu))]
    if name == "bounded":
        pairs += [(lk.above_jet(x, 1.0), mu - 1.0), (lk.below_jet(x, 2.0), 2.0 - mu)]
    for got, ref in pairs:
        for a, b in zip([got.v, *got.derivatives()], [ref.v, *ref.derivatives()],
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_accurate_forms_far_in_the_tails():
    x = jt.Jet.variable(np.array([40.0, -40.0]), 0, 1, 2)
    logit = make_link("logit")
    np.testing.assert_allclose(logit.log1m_inverse_jet(x).v[0], -40.0 - np.exp(-40.0),
                               rtol=1e-15)
    np.testing.assert_allclose(logit.complement_jet(x).v[0], np.exp(-40.0) / (1 + np.exp(-40)),
                               rtol=1e-14)
    probit = make_link("probit")
    assert np.isfinite(probit.log1m_inverse_jet(x).v[0])       # log(1 - Phi(40)) ~ -804
    np.testing.assert_allclose(make_link("cloglog").log1m_inverse_jet(x).v, -np.exp([40, -40]))
    assert make_link("log").log_inverse_jet(x) is x

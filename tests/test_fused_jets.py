"""The closed-form zero-inflated Poisson, Poisson and binomial jets (families/fused.py)
against the generic dense jets and against finite differences of the value."""

import numpy as np
import pytest

from mixedmodels.families.counts import Poisson
from mixedmodels.families.density import ModelDensity
from mixedmodels.families.wrappers import ZeroInflated

#: Agreement with the generic jets (same formulas up to rounding).
GENERIC_RTOL = 1e-11
#: Central differences of the next-lower order (step FD_STEP).
FD_STEP = 1e-5
FD_RTOL = 1e-6


def _data(n=300, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.poisson(3.0, n) * (rng.uniform(size=n) < 0.6)).astype(float)
    a = rng.normal(0.0, 1.5, n)
    z = rng.normal(0.0, 2.5, n)
    # extremes: mu -> 0 and large, pi -> 0 and 1, at zeros and non-zeros
    a[:6] = [-30.0, 12.0, 5.0, -5.0, 0.0, 3.0]
    z[:6] = [30.0, -30.0, -40.0, 40.0, 0.0, 8.0]
    y[:3] = 0.0
    w = rng.uniform(0.0, 2.0, n)
    w[7] = 0.0
    return y, a, z, w


def _rel(x, ref):
    return float(np.max(np.abs(x - ref) / (1.0 + np.abs(ref))))


def test_zip_uses_the_fused_kernel_only_for_its_links():
    assert ModelDensity(ZeroInflated(Poisson()))._fused is not None
    assert ModelDensity(ZeroInflated(Poisson(link="sqrt")))._fused is None
    assert ModelDensity(ZeroInflated(Poisson()), links={"zi": "probit"})._fused is None


@pytest.mark.parametrize("wrt", [None, ("mu",), ("zi",), ("zi", "mu")])
@pytest.mark.parametrize("focus", [None, "first"])
@pytest.mark.parametrize("weighted", [False, True])
def test_zip_fused_matches_generic_jets(wrt, focus, weighted):
    y, a, z, w = _data()
    md = ModelDensity(ZeroInflated(Poisson()))
    names = ("mu", "zi") if wrt is None else wrt
    foc = None if focus is None else names[:1]
    for order in range(4):
        kw = dict(weights=w if weighted else None, order=order, wrt=wrt, focus=foc)
        fused = md.evaluate(y, {"mu": a, "zi": z}, **kw)
        ref = md.evaluate(y, {"mu": a, "zi": z}, engine="dense", **kw)
        assert (fused.m, fused.order) == (ref.m, ref.order)
        assert _rel(fused.v, ref.v) < GENERIC_RTOL
        for got, want in zip(fused.derivatives(), ref.derivatives(), strict=True):
            assert got.shape == want.shape
            assert _rel(got, want) < GENERIC_RTOL


def test_zip_fused_derivatives_are_differences_of_the_lower_order():
    y, a, z, _ = _data(n=80, seed=5)
    a, z = a[6:], z[6:]              # away from the saturated extremes
    y = y[6:]
    md = ModelDensity(ZeroInflated(Poisson()))
    jet = md.evaluate(y, {"mu": a, "zi": z}, order=3)
    lower = [jet.v, jet.d1, jet.d2]
    for j, shift in enumerate(({"mu": FD_STEP, "zi": 0.0}, {"mu": 0.0, "zi": FD_STEP})):
        hi = md.evaluate(y, {"mu": a + shift["mu"], "zi": z + shift["zi"]}, order=2)
        lo = md.evaluate(y, {"mu": a - shift["mu"], "zi": z - shift["zi"]}, order=2)
        his, los = [hi.v, hi.d1, hi.d2], [lo.v, lo.d1, lo.d2]
        exact = [jet.d1[:, j], jet.d2[:, :, j], jet.d3[:, :, :, j]]
        for k in range(3):
            fd = (his[k] - los[k]) / (2 * FD_STEP)
            assert lower[k].shape[0] == fd.shape[0]
            assert _rel(fd, exact[k]) < FD_RTOL


def _single_data(n=300, seed=11):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.5, n)
    # extremes of the linear predictor (mu -> 0, large; probabilities near 0 and 1)
    a[:6] = [-30.0, 12.0, 30.0, -5.0, 0.0, 40.0]
    size = rng.integers(1, 12, n).astype(float)
    y_bin = rng.binomial(size.astype(int), 1.0 / (1.0 + np.exp(-np.clip(a, -30, 30))))
    y_bin = y_bin.astype(float)
    y_bin[:2] = [size[0], 0.0]              # all successes at a tiny probability, and none
    y_pois = rng.poisson(np.exp(np.clip(a, -30, 3))).astype(float)
    w = rng.uniform(0.0, 2.0, n)
    w[7] = 0.0
    return a, size, y_bin, y_pois, w


def test_poisson_and_binomial_use_fused_kernels_only_for_their_canonical_links():
    from mixedmodels.families.counts import Binomial

    assert ModelDensity(Poisson())._fused is not None
    assert ModelDensity(Binomial())._fused is not None
    assert ModelDensity(Poisson(link="sqrt"))._fused is None
    assert ModelDensity(Binomial(link="probit"))._fused is None


@pytest.mark.parametrize("family", ["poisson", "binomial"])
@pytest.mark.parametrize("wrt", [None, ("mu",)])
@pytest.mark.parametrize("weighted", [False, True])
def test_single_channel_fused_matches_generic_jets(family, wrt, weighted):
    from mixedmodels.families.counts import Binomial

    a, size, y_bin, y_pois, w = _single_data()
    md = ModelDensity(Poisson() if family == "poisson" else Binomial())
    y, m = (y_pois, None) if family == "poisson" else (y_bin, size)
    for order in range(4):
        for foc in (None, ("mu",)):
            kw = dict(weights=w if weighted else None, size=m, order=order, wrt=wrt,
                      focus=foc)
            fused = md.evaluate(y, {"mu": a}, **kw)
            ref = md.evaluate(y, {"mu": a}, engine="dense", **kw)
            assert (fused.m, fused.order) == (ref.m, ref.order)
            assert _rel(fused.v, ref.v) < GENERIC_RTOL
            for got, want in zip(fused.derivatives(), ref.derivatives(), strict=True):
                assert got.shape == want.shape
                assert _rel(got, want) < GENERIC_RTOL


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_single_channel_fused_derivatives_are_differences(family):
    from mixedmodels.families.counts import Binomial

    a, size, y_bin, y_pois, _ = _single_data(n=80, seed=5)
    a, size, y_bin, y_pois = a[6:], size[6:], y_bin[6:], y_pois[6:]
    md = ModelDensity(Poisson() if family == "poisson" else Binomial())
    y, m = (y_pois, None) if family == "poisson" else (y_bin, size)
    jet = md.evaluate(y, {"mu": a}, size=m, order=3)
    hi = md.evaluate(y, {"mu": a + FD_STEP}, size=m, order=2)
    lo = md.evaluate(y, {"mu": a - FD_STEP}, size=m, order=2)
    for k, (h, lw, exact) in enumerate(zip([hi.v, hi.d1, hi.d2], [lo.v, lo.d1, lo.d2],
                                           [jet.d1[:, 0], jet.d2[:, :, 0],
                                            jet.d3[:, :, :, 0]], strict=True)):
        fd = (h - lw) / (2 * FD_STEP)
        assert _rel(fd, exact) < FD_RTOL, k


def test_binomial_fused_kernel_needs_the_trials():
    from mixedmodels.families.counts import Binomial

    with pytest.raises(ValueError, match="size"):
        ModelDensity(Binomial()).evaluate(np.ones(3), {"mu": np.zeros(3)})

"""The closed-form Gaussian jet (families/fused.py) against the generic dense jets and
finite differences, and glmmTMB's ``dispformula = ~0`` Gaussian fits taking the closing
Hessian by central differences at once (fitting/laplace_fit.py)."""

import numpy as np
import pytest

from mixedmodels.families.continuous import Gaussian
from mixedmodels.families.density import ModelDensity

#: Agreement with the generic jets (the same formulas; the generic log variance is
#: log(exp(b)), one rounding more).
GENERIC_RTOL = 1e-12
#: Central differences of the next-lower order (step FD_STEP).
FD_STEP = 1e-5
FD_RTOL = 1e-6


def _data(n=200, seed=5):
    rng = np.random.default_rng(seed)
    y = rng.normal(3.0, 2.0, n)
    a = y + rng.normal(0.0, 1.5, n)
    b = rng.normal(0.0, 2.0, n)
    b[:3] = [-18.0, 9.0, 0.0]          # sigma^2 down to ~1.5e-8 (dispformula ~0) and up
    w = rng.uniform(0.0, 2.0, n)
    w[5] = 0.0
    return y, a, b, w


def _rel(x, ref):
    return float(np.max(np.abs(x - ref) / (1.0 + np.abs(ref))))


def test_gaussian_uses_the_fused_kernel_only_for_identity_and_log_links():
    assert ModelDensity(Gaussian())._fused is not None
    assert ModelDensity(Gaussian(dispersion="sd"))._fused is not None
    assert ModelDensity(Gaussian(link="log"))._fused is None
    assert ModelDensity(Gaussian(), links={"phi": "identity"})._fused is None


@pytest.mark.parametrize("dispersion", ["variance", "sd"])
@pytest.mark.parametrize("wrt", [None, ("mu",), ("phi",), ("phi", "mu")])
@pytest.mark.parametrize("focus", [None, "first"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_fused_matches_generic_jets(dispersion, wrt, focus, weighted):
    y, a, b, w = _data()
    md = ModelDensity(Gaussian(dispersion=dispersion))
    names = ("mu", "phi") if wrt is None else wrt
    foc = None if focus is None else names[:1]
    for order in range(4):
        kw = dict(weights=w if weighted else None, order=order, wrt=wrt, focus=foc)
        fused = md.evaluate(y, {"mu": a, "phi": b}, **kw)
        ref = md.evaluate(y, {"mu": a, "phi": b}, engine="dense", **kw)
        assert (fused.m, fused.order) == (ref.m, ref.order)
        assert _rel(fused.v, ref.v) < GENERIC_RTOL
        for got, want in zip(fused.derivatives(), ref.derivatives(), strict=True):
            assert got.shape == want.shape
            assert _rel(got, want) < GENERIC_RTOL


@pytest.mark.parametrize("dispersion", ["variance", "sd"])
def test_gaussian_fused_derivatives_are_differences_of_the_lower_order(dispersion):
    y, a, b, _ = _data()
    b = b[3:] * 0.3                    # moderate curvature: differences are accurate
    y, a = y[3:], a[3:]
    md = ModelDensity(Gaussian(dispersion=dispersion))
    jet = md.evaluate(y, {"mu": a, "phi": b}, order=3)
    for j, shift in enumerate(({"mu": FD_STEP, "phi": 0.0}, {"mu": 0.0, "phi": FD_STEP})):
        hi = md.evaluate(y, {"mu": a + shift["mu"], "phi": b + shift["phi"]}, order=2)
        lo = md.evaluate(y, {"mu": a - shift["mu"], "phi": b - shift["phi"]}, order=2)
        d1 = (hi.v - lo.v) / (2 * FD_STEP)
        d2 = (hi.d1 - lo.d1) / (2 * FD_STEP)
        d3 = (hi.d2 - lo.d2) / (2 * FD_STEP)
        assert _rel(d1, jet.d1[:, j]) < FD_RTOL
        assert _rel(d2, jet.d2[:, :, j]) < FD_RTOL
        assert _rel(d3, jet.d3[:, :, :, j]) < FD_RTOL

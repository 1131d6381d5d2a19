"""The cor_lin search (fitting/kink_search.py) against a grid + Nelder-Mead oracle."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import mixedmodels as mm
from mixedmodels.fitting.kink_search import BEYOND, SCAN_QUANTILES, scan_ranges

#: Nugget logits of the oracle's grid at every kink.
ORACLE_NUGGET = np.linspace(-6.0, 3.0, 19)
#: Slack of the comparison (deviance units): far below the gaps between basins or
#: between neighbouring kink minima (1e-3 .. 10). Seed 7's nugget runs to its limit 0,
#: where the criterion flattens: the search stops at a logit of -12.6 (its deviance
#: tolerance 1e-6), 2.9e-6 above the oracle's -32.
ORACLE_TOL = 1e-5


def _field(seed: int, n: int, scale: float) -> pd.DataFrame:
    """Sites scattered in a square of side ``scale``, a response with an exponential
    spatial field and white noise."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0, scale, n), rng.uniform(0, scale, n)
    dist = np.hypot(cx[:, None] - cx, cy[:, None] - cy)
    z = rng.multivariate_normal(np.zeros(n), np.exp(-dist / (0.25 * scale)) + 0.3 * np.eye(n))
    x = rng.normal(size=n)
    return pd.DataFrame({"y": 2 + 0.5 * x + z, "x": x, "cx": cx, "cy": cy})


def _oracle(obj) -> float:
    """Best criterion over the grid (every kink -- the pieces between are narrow, their
    minima at kinks -- a range below the first and one beyond the largest distance, x
    :data:`ORACLE_NUGGET`), then Nelder-Mead from the five best grid points."""
    kinks = obj.residual.correlation.kinks()
    ranges = np.r_[kinks, kinks[-1] + BEYOND, kinks[0] - 1.0]
    grid = np.array([[obj(np.array([u, v])) for v in ORACLE_NUGGET] for u in ranges])
    best = np.inf
    for flat in np.argsort(grid, axis=None)[:5]:
        a, b = np.unravel_index(flat, grid.shape)
        x0 = np.array([ranges[a], ORACLE_NUGGET[b]])
        simplex = x0 + np.array([[0.0, 0.0], [1e-3, 0.0], [0.0, 0.05]])
        res = minimize(obj, x0, method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-12, "maxfev": 2000,
                                "initial_simplex": simplex})
        best = min(best, res.fun, grid[a, b])
    return best


@pytest.mark.parametrize(("seed", "n", "scale"), [(7, 26, 1.0), (8, 30, 250.0)])
def test_cor_lin_fit_matches_the_oracle(seed, n, scale):
    d = _field(seed, n, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.gls("y ~ x", d, correlation=mm.cor_lin(form="~ cx + cy", nugget=True))
    obj = m.objective_function
    assert obj(m.opt.x) <= _oracle(obj) + ORACLE_TOL


def test_cor_lin_fit_is_scale_free():
    d = _field(9, 30, 1.0)
    big = d.assign(cx=d.cx * 1000.0, cy=d.cy * 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [mm.gls("y ~ x", df, correlation=mm.cor_lin(form="~ cx + cy", nugget=True))
                for df in (d, big)]
    assert fits[0].loglik == pytest.approx(fits[1].loglik, abs=1e-6)


def test_scan_ranges():
    kinks = np.log(np.arange(1.0, 101.0))
    pts = scan_ranges(kinks, -np.inf)
    assert pts.size == len(SCAN_QUANTILES) + 1
    assert pts[-1] == pytest.approx(kinks[-1] + BEYOND)
    assert np.all(np.isin(pts[:-1], kinks))
    assert np.all(scan_ranges(kinks, 2.0) > 2.0)


def _piecewise(kinks, heights):
    """``f(u, w) = (w - u)^2 + g(u)``, ``g`` linear between ``kinks`` (values
    ``heights``): smooth in ``w``, kinked in ``u``."""
    def f(x):
        return float((x[1] - x[0]) ** 2 + np.interp(x[0], kinks, heights))
    return f


def test_settle_on_kink_ends_on_a_kink_minimum():
    from mixedmodels.fitting.kink_search import settle_on_kink
    from mixedmodels.optim import OptSummary

    kinks = np.linspace(0.0, 1.0, 41)
    heights = (kinks - 0.62) ** 2 + 0.002 * np.cos(37.0 * kinks)
    f = _piecewise(kinks, heights)
    # a loose search's end: inside a piece, w near its optimum for that range
    x0 = np.array([0.5 + 0.3 * (kinks[1] - kinks[0]), 0.51])
    opt = OptSummary("test", x0, np.full(2, -np.inf), np.full(2, np.inf), x0, f(x0), 1, {},
                     "", 0.0)

    def fallback(o):
        raise AssertionError("no fallback expected: the kinks descend to a kink minimum")

    out = settle_on_kink(f, opt, np.full(2, -np.inf), 0, kinks, {}, fallback)
    j = int(np.argmin(np.abs(kinks - out.x[0])))
    assert out.x[0] == kinks[j]
    assert heights[j] <= min(heights[j - 1], heights[j + 1])
    assert out.x[1] == pytest.approx(out.x[0], abs=1e-3)
    assert out.fval < opt.fval


def test_no_finite_scan_point():
    from mixedmodels.fitting.kink_search import kinked_range_search

    kinks = np.linspace(0.0, 1.0, 11)
    out = kinked_range_search(lambda x: np.inf, np.zeros(2), np.full(2, -np.inf), 0, kinks,
                              {}, lambda o: o, nugget_index=1)
    assert out is None

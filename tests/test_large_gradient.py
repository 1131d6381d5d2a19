"""The blocked factorization's analytic gradient on crossed designs large enough for a real
dense rest block and product pattern (hundreds of levels), against central differences.

The small designs of ``test_linalg`` exercise the algebra; these check the same formulas
where the rest block has hundreds of columns and the first term thousands of levels
(crossed scalar terms, a vector-valued rest term, nesting, prior weights, a variance at its
bound), REML and ML.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

#: Relative tolerance of the analytic gradient against central differences (step
#: FD_STEP): the differences carry truncation error ~h^2 f''' and rounding ~1e-16 |f| / h.
GRAD_RTOL = 1e-5
#: Absolute floor for gradient entries near zero (objective units per unit of theta).
GRAD_ATOL = 1e-4
#: Step of the central differences in theta.
FD_STEP = 1e-5
#: The value returned with the gradient is the objective's own evaluation.
VALUE_RTOL = 1e-13


def _crossed(seed: int, n: int = 6000, levels=(900, 150, 12)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = {f"g{i + 1}": rng.integers(0, k, n) for i, k in enumerate(levels)}
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(size=n)
    for i, g in enumerate(codes.values()):
        y = y + rng.normal(scale=0.8 / (i + 1), size=levels[i])[g]
    slope = rng.normal(scale=0.4, size=levels[2])
    y = y + slope[codes["g3"]] * x
    df = pd.DataFrame({"y": y, "x": x, "w": rng.uniform(0.5, 2.0, n), **codes})
    # g4 nested in g2 (five sub-levels each)
    df["g4"] = df["g2"] * 5 + rng.integers(0, 5, n)
    return df


def _central_differences(obj, theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    out = np.empty(theta.size)
    for i, e in enumerate(np.eye(theta.size)):
        if theta[i] - FD_STEP < lower[i]:  # on the bound: one-sided into the region
            out[i] = (obj(theta + FD_STEP * e) - obj(theta)) / FD_STEP
        else:
            out[i] = (obj(theta + FD_STEP * e) - obj(theta - FD_STEP * e)) / (2 * FD_STEP)
    return out


CASES = [
    ("y ~ x + (1 | g1) + (1 | g2)", None),
    ("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)", "w"),
    ("y ~ x + (1 | g1) + (1 | g2) + (x | g3)", None),
    ("y ~ x + (1 | g1) + (1 | g2) + (x | g3)", "w"),
    ("y ~ x + (1 | g1) + (1 | g2) + (1 | g4)", None),
]


@pytest.mark.parametrize("formula,weights", CASES)
@pytest.mark.parametrize("reml", [True, False])
def test_large_crossed_gradient_matches_differences(formula, weights, reml):
    design = mm.materialize(mm.parse_formula(formula), _crossed(7), weights=weights)
    obj = mm.LMMObjective(design, reml=reml)
    assert obj.method == "blocked" and obj.has_gradient
    assert obj._core._product is not None  # the pattern path, not the fallback
    assert obj._core.A.A22.shape[0] >= 150  # a real dense rest block
    lower = design.theta_lower()
    theta = np.linspace(0.3, 0.9, design.n_theta) * np.where(lower == 0, 1.0, -1.0)
    f, g = obj.value_and_gradient(theta)
    assert f == pytest.approx(obj(theta), rel=VALUE_RTOL)
    np.testing.assert_allclose(
        g, _central_differences(obj, theta, lower), rtol=GRAD_RTOL, atol=GRAD_ATOL
    )


@pytest.mark.parametrize("reml", [True, False])
def test_large_gradient_with_a_variance_on_its_bound(reml):
    # theta_2 = 0: that term's rows of V and u vanish; its derivative is 0 (the objective is
    # even in a scalar theta) and the others are unaffected
    design = mm.materialize(
        mm.parse_formula("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)"), _crossed(8), weights="w"
    )
    obj = mm.LMMObjective(design, reml=reml)
    theta = np.array([0.6, 0.0, 0.4])
    _, g = obj.value_and_gradient(theta)
    assert g[1] == 0.0
    fd = _central_differences(obj, theta, design.theta_lower())
    np.testing.assert_allclose(g[[0, 2]], fd[[0, 2]], rtol=GRAD_RTOL, atol=GRAD_ATOL)
    # one-sided difference into the region at the bound: O(h) since the slope there is 0
    assert abs(fd[1]) < 1e3 * FD_STEP * max(1.0, abs(fd[0]))


def test_large_gradient_fit_matches_bobyqa():
    # the gradient path (blocked, scalar terms) reaches BOBYQA's optimum
    design = mm.materialize(
        mm.parse_formula("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)"),
        _crossed(9, n=3000, levels=(500, 120, 10)),
    )
    grad_fit = mm.fit_lmm(design, optimizer="gradient")
    ref_fit = mm.fit_lmm(design, optimizer="bobyqa")
    assert grad_fit.objective <= ref_fit.objective + 1e-6
    np.testing.assert_allclose(grad_fit.theta, ref_fit.theta, rtol=1e-3, atol=1e-4)

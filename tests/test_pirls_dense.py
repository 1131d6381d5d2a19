"""The dense PIRLS system of small models against the blocked one it replaces.

Both solve the same penalized least-squares steps; the modes, joint fixed effects, log
determinants and first-block factors must agree to rounding, and the blocked system is
itself checked against a dense oracle in test_glmer_pirls.py. The designs vary what the
dense path must handle: scalar and vector-valued terms, crossed factors, weights, an
offset, non-canonical links (Newton weights), nAGQ = 0's joint solve with beta.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.pirls import PIRLS
from mixedmodels.objective.pirls_dense import DENSE_PIRLS_MAX_SIZE, use_dense

#: Agreement of the two systems (both converge to PIRLS_TOL = 1e-10 in the modes).
MODE_ATOL = 1e-8
LOGDET_RTOL = 1e-9


def _frame(seed: int, n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 9, n)
    h = rng.integers(0, 5, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.7, 9)[g] + rng.normal(0, 0.4, 5)[h]
    size = rng.integers(3, 12, n)
    k = rng.binomial(size, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"k": k, "fail": size - k, "count": rng.poisson(np.exp(eta)),
                         "pos": rng.gamma(3.0, np.exp(eta) / 3.0), "x": x,
                         "w": rng.uniform(0.5, 2.0, n), "off": rng.normal(0, 0.1, n),
                         "g": [f"g{i}" for i in g], "h": [f"h {i}" for i in h]})


CASES = [
    ("cbind(k, fail) ~ x + (1 | g)", "binomial", {}),
    ("cbind(k, fail) ~ x + (1 | g) + (1 | h)", "binomial", {}),
    ("cbind(k, fail) ~ x + (x | g)", ("binomial", "probit"), {}),
    ("count ~ x + (1 | g) + (0 + x | h)", "poisson", {"offset": "off"}),
    ("count ~ x + (x || g)", "poisson", {"weights": "w"}),
    ("pos ~ x + (1 | g)", ("Gamma", "log"), {}),
]


def _family(spec):
    return make_family(*spec) if isinstance(spec, tuple) else make_family(spec)


@pytest.mark.parametrize("formula,fam,kw", CASES)
def test_dense_steps_match_blocked(formula, fam, kw):
    data = _frame(len(formula))
    family = _family(fam)
    design = glmm_design(formula, data, family, **kw)
    dense = PIRLS(design, family)
    assert dense.dense is not None          # small enough for the dense system
    blocked = PIRLS(design, family)
    blocked.dense = None
    theta = 0.6 + 0.1 * np.arange(design.n_theta)
    for joint in (True, False):
        beta = None if joint else np.linspace(0.2, -0.1, design.p)
        a = dense.fit(theta, beta)
        b = blocked.fit(theta, beta)
        np.testing.assert_allclose(a.u, b.u, atol=MODE_ATOL, rtol=0)
        np.testing.assert_allclose(a.beta, b.beta, atol=MODE_ATOL, rtol=0)
        np.testing.assert_allclose(a.logdet, b.logdet, rtol=LOGDET_RTOL)
        if "||" not in formula:     # (merged terms: the blocked L11 is the merged block)
            np.testing.assert_allclose(a.L11, b.L11, rtol=1e-9, atol=1e-12)
        assert abs(a.pdev - b.pdev) <= 1e-9 * abs(b.pdev)
    # the sensitivity of the modes (warm starts) solves with the dense factor too
    moved = theta * 1.1
    beta = np.linspace(0.2, -0.1, design.p)
    np.testing.assert_allclose(dense.fit(moved, beta).u, blocked.fit(moved, beta).u,
                               atol=MODE_ATOL, rtol=0)


def test_use_dense_bounds():
    assert use_dense(56, 15, 4)                   # cbpp
    assert not use_dense(403, 181, 3)             # grouseticks: the blocked system wins
    assert not use_dense(10, DENSE_PIRLS_MAX_SIZE, 1)
    assert not use_dense(10 ** 6, 10, 2)          # G' W G grows with the rows


def test_blocked_mode_chosen_on_pattern_values():
    """A vector-valued first term with a wide crossed rest block takes the blocked
    fallback, decided at the first step, whose cross-products came as values on the
    pattern (no scipy matrix): they are converted, and the steps equal those of a system
    that was blocked from the start."""
    rng = np.random.default_rng(5)
    n = 400
    g, h, x = rng.integers(0, 60, n), rng.integers(0, 80, n), rng.normal(size=n)
    eta = 0.2 + 0.4 * x + rng.normal(0, 0.5, 60)[g] + rng.normal(0, 0.4, 80)[h]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x,
                         "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h]})
    family = make_family("poisson")
    design = glmm_design("y ~ x + (x | g) + (1 | h)", data, family)
    chosen = PIRLS(design, family)
    preset = PIRLS(design, family)
    preset.psystem.mode = "blocked"
    theta = np.array([0.5, 0.1, 0.3, 0.4])
    a, b = chosen.fit(theta, None), preset.fit(theta, None)
    assert chosen.dense is None and chosen.psystem.mode == "blocked"
    np.testing.assert_allclose(a.u, b.u, atol=1e-12, rtol=0)
    np.testing.assert_allclose(a.logdet, b.logdet, rtol=1e-12)


#: Agreement of the gradient's dense path with the Laplace kernels' (rounding only: the
#: same formulas with the same factorizations, evaluated in another order).
GRADIENT_RTOL = 1e-9


@pytest.mark.parametrize("formula,fam,kw", CASES)
def test_dense_gradient_matches_kernels(formula, fam, kw):
    from mixedmodels._threads import blas_threads
    from mixedmodels.objective.glmm import GLMMObjective
    from mixedmodels.objective.glmm_gradient import LaplaceGradient, Stage0Gradient

    data = _frame(len(formula) + 1)
    family = _family(fam)
    design = glmm_design(formula, data, family, **kw)
    obj = GLMMObjective(design, family, 1)
    theta = 0.5 + 0.1 * np.arange(design.n_theta)
    with blas_threads():
        beta = obj.pirls.fit(theta, None).beta + 0.05
        for cls, x in ((LaplaceGradient, obj.join(theta, beta)), (Stage0Gradient, theta)):
            dense = cls(obj)
            assert dense._dense is not None
            kernels = cls(obj)
            kernels._dense = None
            f_d, g_d = dense(x)
            f_k, g_k = kernels(x)
            assert np.isfinite(f_d) and f_d == pytest.approx(f_k, rel=1e-12)
            scale = max(1.0, float(np.max(np.abs(g_k))))
            assert float(np.max(np.abs(g_d - g_k))) <= GRADIENT_RTOL * scale, cls.__name__


@pytest.mark.parametrize("formula,fam,kw", CASES)
def test_joint_predicted_start_reaches_the_same_modes(formula, fam, kw):
    """nAGQ = 0's joint solves start from the modes predicted by their sensitivity in
    theta: the same modes and beta as without the prediction, in no more iterations
    (fewer over a sequence of nearby thetas, as an optimizer's)."""
    data = _frame(len(formula) + 2)
    family = _family(fam)
    design = glmm_design(formula, data, family, **kw)
    predicted, plain = PIRLS(design, family), PIRLS(design, family)
    plain.predict = False
    base = 0.6 + 0.1 * np.arange(design.n_theta)
    its = []
    for scale in (1.0, 0.9, 0.85, 0.84, 0.8395):
        a = predicted.fit(base * scale, None)
        b = plain.fit(base * scale, None)
        np.testing.assert_allclose(a.u, b.u, atol=MODE_ATOL, rtol=0)
        np.testing.assert_allclose(a.beta, b.beta, atol=MODE_ATOL, rtol=0)
        its.append((a.n_iter, b.n_iter))
    assert sum(a for a, _ in its) <= sum(b for _, b in its)
    if all(t.p == 1 for t in design.terms):     # every column predicted
        assert sum(a for a, _ in its) < sum(b for _, b in its)


@pytest.mark.parametrize("formula,fam,kw", [c for c in CASES if "||" not in c[0]])
def test_blocked_joint_sensitivity_matches_dense(formula, fam, kw):
    """The joint (nAGQ = 0) sensitivity of the modes in theta through the blocked factor
    (PIRLS._joint_solve_blocked) is the dense factor's, and it predicts the modes at a
    nearby theta to first order (central differences of the joint solves)."""
    family = _family(fam)
    design = glmm_design(formula, _frame(len(formula) + 4), family, **kw)
    dense, blocked = PIRLS(design, family), PIRLS(design, family)
    blocked.dense = None
    theta = np.linspace(0.6, 0.8, design.n_theta)
    dense.fit(theta, None)
    blocked.fit(theta, None)
    J_d, J_b = dense.joint_reference()[3], blocked.joint_reference()[3]
    np.testing.assert_allclose(J_b, J_d, atol=1e-7 * max(1.0, np.abs(J_d).max()), rtol=0)
    # columns of scalar, directly mapped terms are predicted: check them by differences
    h = 1e-5
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        if t.p != 1:
            continue
        e = np.zeros(theta.size)
        e[sl] = h
        plain = PIRLS(design, family)
        plain.predict = False
        up, dn = plain.fit(theta + e, None), plain.fit(theta - e, None)
        fd = np.r_[up.u - dn.u, plain.basis.from_user(up.beta - dn.beta)] / (2.0 * h)
        np.testing.assert_allclose(J_b[:, sl.start], fd, atol=1e-4 * max(1.0, np.abs(fd).max()),
                                   rtol=0)

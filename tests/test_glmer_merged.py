"""glmer's PIRLS with terms on one grouping factor factored as one block.

``(x || g)``, ``(1 | g) + (0 + x | g) + (0 + z | g)``, ``diag(...) + (1 | g)`` and a
vector term with a scalar one on the same factor are merged (``PIRLS.merge``); the
unmerged system (``merge_terms=False``: each term its own block, the later ones in the
dense rest block) is the independent computation they must reproduce -- deviance, nAGQ=0
criterion, modes, conditional variances, the exact gradient (itself checked against central
finite differences here) and the fitted estimates.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.families import NegativeBinomial, make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.objective.glmm_gradient import LaplaceGradient, Stage0Gradient

#: The two factorizations differ only in the order of floating-point operations.
DEVIANCE_RTOL = 1e-10
MODE_ATOL = 1e-9
GRADIENT_ATOL = 1e-7
#: Central finite differences of the deviance (step 1e-4): truncation ~1e-8 of the
#: curvature, rounding ~1e-6; a wrong term in the gradient shows as 1e-2 or more.
FD_STEP = 1e-4
FD_RTOL = 2e-5
#: Two fits of the same objective reach the optimum within the optimizer's tolerance.
FIT_ATOL = 1e-5
FIT_DEV_ATOL = 1e-6


def _data(seed: int = 4, n: int = 700, levels: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, n)
    h = rng.integers(0, 9, n)
    x, z = rng.standard_normal(n), rng.standard_normal(n)
    eta = (0.2 + 0.4 * x + 0.6 * rng.standard_normal(levels)[g]
           + 0.4 * rng.standard_normal(levels)[g] * x + 0.3 * rng.standard_normal(9)[h])
    return pd.DataFrame({
        "cnt": rng.poisson(np.exp(eta)),
        "succ": rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))),
        "x": x, "z": z, "grp.a": [f"lev {k}" for k in g], "h": h,
    })


CASES = [
    ("cnt ~ x + (x || grp.a)", "poisson"),
    ("succ ~ x + (x || grp.a)", "binomial"),
    ("cnt ~ x + (1 | h) + (1 | grp.a) + (0 + x | grp.a) + (0 + z | grp.a)", "poisson"),
    ("succ ~ z + diag(0 + x + z | grp.a) + (1 | grp.a) + (1 | h)", "binomial"),
    ("cnt ~ z + (x | grp.a) + (0 + z | grp.a)", NegativeBinomial(3.0)),
    # only the first factor's terms merge; h's stay scalar rest terms
    ("cnt ~ x + (x || h) + (x || grp.a)", "poisson"),
]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads():
        yield


@pytest.fixture(scope="module")
def data():
    return _data()


def _pair(formula, fam, data):
    family = make_family(fam) if isinstance(fam, str) else fam
    design = glmm_design(formula, data, family)
    merged = GLMMObjective(design, family, 1)
    plain = GLMMObjective(design, family, 1, merge_terms=False)
    assert merged.pirls.merge is not None and merged.pirls.merge.merges
    assert plain.pirls.merge is None
    first = design.terms[0].grouping.name
    assert [len(g) for g in merged.pirls.merge.groups] == \
        [sum(t.grouping.name == first for t in design.terms)] + [1] * sum(
            t.grouping.name != first for t in design.terms)
    return design, merged, plain


def _points(design, obj, count=2, seed=9):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        theta = np.maximum(design.theta0() + rng.uniform(-0.3, 0.4, design.n_theta),
                           design.theta_lower() + 0.05)
        yield obj.layout.pack({"theta.cond": theta,
                               "beta.cond": rng.normal(0.0, 0.2, design.p)})


@pytest.mark.parametrize(("formula", "fam"), CASES)
def test_merged_pirls_equals_unmerged(formula, fam, data):
    design, merged, plain = _pair(formula, fam, data)
    nt = design.n_theta
    for x in _points(design, merged):
        fa, fb = merged(x), plain(x)
        assert abs(fa - fb) <= DEVIANCE_RTOL * abs(fb)
        assert abs(merged.stage0(x[:nt]) - plain.stage0(x[:nt])) <= DEVIANCE_RTOL * abs(fb)
        sa, sb = merged.solve(x), plain.solve(x)
        np.testing.assert_allclose(sa.u, sb.u, atol=MODE_ATOL)     # terms' order
        for ba, bb in zip(sa.b, sb.b, strict=True):
            np.testing.assert_allclose(ba, bb, atol=MODE_ATOL)
        va = merged.pirls.system.cond_var_u(sa.factor)
        vb = plain.pirls.system.cond_var_u(sb.factor)
        assert [v.shape for v in va] == [v.shape for v in vb] == \
            [(t.nlevels, t.p, t.p) for t in design.terms]
        for a, b in zip(va, vb, strict=True):
            np.testing.assert_allclose(a, b, atol=MODE_ATOL)
        np.testing.assert_allclose(merged.pirls.rx_inverse(sa.theta, sa.eta, sa.mu),
                                   plain.pirls.rx_inverse(sb.theta, sb.eta, sb.mu),
                                   rtol=1e-9, atol=1e-12)
        ga, gb = LaplaceGradient(merged)(x)[1], LaplaceGradient(plain)(x)[1]
        np.testing.assert_allclose(ga, gb, atol=GRADIENT_ATOL * max(1.0, np.abs(gb).max()))
        g0a, g0b = Stage0Gradient(merged)(x[:nt])[1], Stage0Gradient(plain)(x[:nt])[1]
        np.testing.assert_allclose(g0a, g0b, atol=GRADIENT_ATOL * max(1.0, np.abs(g0b).max()))


@pytest.mark.parametrize(("formula", "fam"), CASES[:2])
def test_merged_gradient_matches_finite_differences(formula, fam, data):
    design, merged, _ = _pair(formula, fam, data)
    x = next(_points(design, merged, count=1, seed=2))
    _, grad = LaplaceGradient(merged)(x)
    fd = np.empty(x.size)
    for j in range(x.size):
        h = FD_STEP * max(1.0, abs(x[j]))
        e = np.zeros(x.size)
        e[j] = h
        fd[j] = (merged(x + e) - merged(x - e)) / (2.0 * h)
    np.testing.assert_allclose(grad, fd, atol=FD_RTOL * max(1.0, np.abs(fd).max()))


def _fit(fun, merge: bool, monkeypatch, *args, **kwargs):
    if not merge:
        init = GLMMObjective.__init__
        monkeypatch.setattr(GLMMObjective, "__init__",
                            functools.partialmethod(_unmerged_init, init))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fun(*args, **kwargs)
    monkeypatch.undo()
    return out


def _unmerged_init(self, init, *args, **kwargs):
    kwargs["merge_terms"] = False
    init(self, *args, **kwargs)


@pytest.mark.parametrize(("fun", "formula", "kw"), [
    (mm.glmer, "succ ~ x + (x || grp.a)", {"family": "binomial"}),
    (mm.glmer_nb, "cnt ~ x + (1 | grp.a) + (0 + x | grp.a)", {}),
])
def test_merged_fit_equals_unmerged(fun, formula, kw, data, monkeypatch):
    a = _fit(fun, True, monkeypatch, formula, data, **kw)
    b = _fit(fun, False, monkeypatch, formula, data, **kw)
    assert abs(a.objective - b.objective) <= FIT_DEV_ATOL * abs(b.objective)
    np.testing.assert_allclose(a.theta, b.theta, atol=FIT_ATOL)
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), atol=FIT_ATOL)
    ra, rb = a.ranef(), b.ranef()
    assert list(ra) == list(rb)
    for key in rb:
        assert list(ra[key].columns) == list(rb[key].columns)
        assert list(ra[key].index) == list(rb[key].index)
        np.testing.assert_allclose(ra[key].to_numpy(), rb[key].to_numpy(), atol=10 * FIT_ATOL)
    va, vb = a.ranef_cond_var(), b.ranef_cond_var()
    for key in vb:
        np.testing.assert_allclose(va[key], vb[key], atol=10 * FIT_ATOL)

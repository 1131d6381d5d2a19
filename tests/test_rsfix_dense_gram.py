"""The closed-form dense cross-products of :mod:`mixedmodels.rside.dense_gram` against an
oracle: each group's correlation matrix factored by Cholesky in extended precision
(``np.longdouble``), the dense rows whitened by it and multiplied.

Compound symmetry on unequal groups (rho near its lower bound ``-1 / (m - 1)``, 0, near
1), with prior weights; AR(1) on gapped times (several lag classes, phi near -1 and 1),
CAR(1) on real times; random intercepts, slopes and a term whose levels hold several
correlation groups. Then the objective with the closed form against the objective that
whitens the rows, and the fits' agreement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.linalg.dense import dense_cross_product
from mixedmodels.objective.lmm import LMMObjective
from mixedmodels.rside.dense_gram import (
    DenseCompSymmGram,
    DenseMarkovGram,
    dense_gram_plan,
    dense_rows,
)
from mixedmodels.rside.objective import RSideLMMObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns

#: Agreement with the extended-precision oracle, relative to the largest entry of ``A``
#: (and to ``|log|V||``): the closed forms add a few positive terms, nothing cancels.
ORACLE_TOL = 1e-12
#: Criterion with the closed form against the criterion from the whitened rows (the row
#: whitening of compound symmetry loses digits as rho -> 1: hence only moderate rho here).
CRITERION_TOL = 1e-12


def _panel(seed=3, gaps=True):
    rng = np.random.default_rng(seed)
    g, m = 10, 6
    d = pd.DataFrame({"sub": np.repeat([f"s{i:02d}" for i in range(g)], m),
                      "t": np.tile(np.arange(1, m + 1), g).astype(float),
                      "x": rng.normal(size=g * m), "w": rng.uniform(0.5, 2.0, g * m)})
    d["clinic"] = d["sub"].map(lambda s: f"c{int(s[1:]) % 3}")
    d["tr"] = d["t"] + rng.uniform(-0.3, 0.3, g * m)
    if gaps:        # unequal groups, holes in the times
        d = d.drop(index=[2, 9, 10, 20, 33, 41, 47, 50, 51, 52]).reset_index(drop=True)
    d = d.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    d["y"] = 1.0 + d.x + rng.normal(size=len(d))
    return d


def _setup(d, formula, cor, weights=None):
    spec = ResidualSpec.make(cor, None)
    design = materialize(parse_formula(formula), d, weights=weights,
                         extra_columns=residual_columns(spec))
    bound = bind_residual(spec, design)
    lmm = LMMObjective(design, reml=True, method="dense")
    obj = RSideLMMObjective(design, bound, reml=True)
    return design, bound, lmm, obj


def _chol_ld(V):
    """Lower Cholesky factor in long double (the oracle's precision)."""
    m = V.shape[0]
    L = np.zeros_like(V)
    for j in range(m):
        s = V[j, j] - np.sum(L[j, :j] ** 2)
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, m):
            L[i, j] = (V[i, j] - np.sum(L[i, :j] * L[j, :j])) / L[j, j]
    return L


def _oracle(D, groups, corr, sd):
    """``(D' V^{-1} D, log|V|)`` with ``V = diag(sd) C diag(sd)``, ``C`` block diagonal
    by ``groups`` with ``corr(rows)`` per group, in long double."""
    D = D.astype(np.longdouble)
    k = D.shape[1]
    A = np.zeros((k, k), dtype=np.longdouble)
    logdet = np.longdouble(0.0)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        s = sd[rows].astype(np.longdouble)
        V = corr(rows) * s[:, None] * s[None, :]
        L = _chol_ld(V)
        W = np.zeros((rows.size, k), dtype=np.longdouble)
        for i in range(rows.size):          # forward substitution
            W[i] = (D[rows[i]] - L[i, :i] @ W[:i]) / L[i, i]
        A += W.T @ W
        logdet += 2.0 * np.sum(np.log(np.diagonal(L)))
    return A, logdet


def _check_against_oracle(plan, u, D, groups, corr, sd):
    """Within :data:`ORACLE_TOL` of the oracle, or -- where the correlation matrix is so
    ill-conditioned that its parameter's own rounding moves ``A`` by more (compound
    symmetry 1e-6 above its lower bound: 4.6e-12) -- no farther than the row whitening
    :meth:`~mixedmodels.rside.residual.BoundResidual.whiten` that it replaces."""
    A, logdet = plan(u)
    A_ref, ld_ref = _oracle(D, groups, corr, sd)
    A_ref, ld_ref = A_ref.astype(float), float(ld_ref)
    scale, ld_scale = float(np.max(np.abs(A_ref))), max(1.0, abs(ld_ref))
    Mw, ld_rows = plan.residual.whiten(np.asarray(u, dtype=float), D)
    rows_err = np.max(np.abs(Mw.T @ Mw - A_ref)) / scale
    assert np.max(np.abs(A - A_ref)) / scale <= max(ORACLE_TOL, 1.5 * rows_err)
    assert abs(logdet - ld_ref) / ld_scale <= max(ORACLE_TOL,
                                                  1.5 * abs(ld_rows - ld_ref) / ld_scale)


def test_dense_rows_are_the_dense_systems_layout():
    d = _panel()
    for formula in ("y ~ x + (1 | sub)", "y ~ x + (x | sub)", "y ~ x + (1 | clinic)"):
        design, _bound, lmm, obj = _setup(d, formula, mm.cor_comp_symm(form="~ 1 | sub"))
        D = dense_rows(design, obj._M, obj._zslices)
        k = sum(t.p for t in design.terms)
        ref = dense_cross_product(lmm.system.blocks, obj._M[:, k:], None,
                                  [obj._M[:, :k]])
        assert np.allclose(D.T @ D, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())


@pytest.mark.parametrize("formula", ["y ~ x + (1 | sub)", "y ~ x + (x | sub)",
                                     "y ~ x + (1 | clinic)"])
@pytest.mark.parametrize("weights", [None, "w"])
def test_comp_symm_gram_equals_the_oracle(formula, weights):
    d = _panel()
    design, bound, _lmm, obj = _setup(d, formula, mm.cor_comp_symm(form="~ 1 | sub"),
                                     weights=weights)
    plan = obj._dense_gram
    assert isinstance(plan, DenseCompSymmGram)
    assert plan._one is None                        # unequal groups: several sizes
    cor = bound.correlation
    D = dense_rows(design, obj._M, obj._zslices)
    groups = cor.blocks.codes
    w = np.ones(design.nobs) if weights is None else d[weights].to_numpy()
    sd = 1.0 / np.sqrt(w)
    low = cor._inf
    for rho in (low + 1e-6 * (1.0 - low), low / 2, 0.0, 0.5, 0.99, 1.0 - 1e-6):
        u = cor.unconstrained(np.array([rho]))
        rho_used = cor.rho(u)

        def corr(rows, r=rho_used):
            C = np.full((rows.size, rows.size), np.longdouble(r))
            np.fill_diagonal(C, 1.0)
            return C

        _check_against_oracle(plan, u, D, groups, corr, sd)


def test_comp_symm_gram_equal_groups():
    d = _panel(gaps=False)
    design, bound, _lmm, obj = _setup(d, "y ~ x + (1 | clinic)",
                                     mm.cor_comp_symm(form="~ 1 | clinic/sub"))
    plan = obj._dense_gram
    assert plan._one is not None
    cor = bound.correlation
    D = dense_rows(design, obj._M, obj._zslices)
    for rho in (cor._inf + 1e-7, -0.1, 0.3, 0.999999):
        u = cor.unconstrained(np.array([rho]))
        r = cor.rho(u)

        def corr(rows, r=r):
            C = np.full((rows.size, rows.size), np.longdouble(r))
            np.fill_diagonal(C, 1.0)
            return C

        _check_against_oracle(plan, u, D, cor.blocks.codes, corr, np.ones(design.nobs))


@pytest.mark.parametrize("cor_fun, time", [(mm.cor_ar1, "t"), (mm.cor_car1, "tr")])
@pytest.mark.parametrize("gaps", [True, False])
@pytest.mark.parametrize("weights", [None, "w"])
def test_markov_gram_equals_the_oracle(cor_fun, time, gaps, weights):
    d = _panel(gaps=gaps)
    design, bound, _lmm, obj = _setup(d, "y ~ x + (x | sub)", cor_fun(form=f"~ {time} | sub"),
                                     weights=weights)
    plan = obj._dense_gram
    if time == "tr":        # a distinct lag on nearly every row: rows whitened instead
        assert plan is None
        return
    assert isinstance(plan, DenseMarkovGram)
    assert (len(plan._classes) > 1) == gaps
    cor = bound.correlation
    D = dense_rows(design, obj._M, obj._zslices)
    t = d[time].to_numpy()
    w = np.ones(design.nobs) if weights is None else d[weights].to_numpy()
    for phi in (-0.999, -0.5, 0.0, 0.3, 0.95, 0.999):
        u = cor.unconstrained(np.array([phi]))
        phi_used, _ = cor.markov_phi(u)

        def corr(rows, p=phi_used):
            lag = np.abs(t[rows][:, None] - t[rows][None, :]).astype(np.longdouble)
            return np.longdouble(p) ** lag

        _check_against_oracle(plan, u, D, cor.blocks.codes, corr, 1.0 / np.sqrt(w))


def test_markov_gram_on_few_real_lags():
    # CAR(1) on times with a few distinct spacings: lag classes of real lags
    d = _panel(gaps=True)
    d["tr"] = d["t"] * 0.5
    design, bound, _lmm, obj = _setup(d, "y ~ x + (1 | sub)", mm.cor_car1(form="~ tr | sub"))
    plan = obj._dense_gram
    assert isinstance(plan, DenseMarkovGram) and len(plan._classes) > 1
    cor = bound.correlation
    D = dense_rows(design, obj._M, obj._zslices)
    t = d["tr"].to_numpy()
    for phi in (0.01, 0.6, 0.999):
        u = cor.unconstrained(np.array([phi]))
        p, _ = cor.markov_phi(u)

        def corr(rows, p=p):
            return np.longdouble(p) ** np.abs(t[rows][:, None] - t[rows][None, :]) \
                .astype(np.longdouble)

        _check_against_oracle(plan, u, D, cor.blocks.codes, corr, np.ones(design.nobs))


def test_no_closed_form_with_a_variance_function():
    d = _panel()
    spec = ResidualSpec.make(mm.cor_comp_symm(form="~ 1 | sub"), mm.var_power(form="~ t"))
    design = materialize(parse_formula("y ~ x + (1 | sub)"), d,
                         extra_columns=residual_columns(spec))
    bound = bind_residual(spec, design)
    assert dense_gram_plan(design, bound, np.zeros((design.nobs, 4)),
                           [slice(0, 1)]) is None
    assert RSideLMMObjective(design, bound)._dense_gram is None


@pytest.mark.parametrize("formula, cor", [
    ("y ~ x + (1 | sub)", mm.cor_comp_symm(form="~ 1 | sub")),
    ("y ~ x + (x | clinic)", mm.cor_comp_symm(form="~ 1 | clinic/sub")),
    ("y ~ x + (x | sub)", mm.cor_ar1(form="~ t | sub")),
    ("y ~ x + (1 | clinic)", mm.cor_ar1(form="~ 1 | sub")),
    # fixed correlations: no parameter of their own, the value from the spec
    ("y ~ x + (1 | clinic)", mm.cor_ar1(form="~ t | sub", value=0.4, fixed=True)),
    ("y ~ x + (1 | clinic)", mm.cor_comp_symm(form="~ 1 | sub", value=0.3, fixed=True)),
])
def test_objective_equals_the_row_whitening(formula, cor):
    d = _panel()
    design, bound, _lmm, fast = _setup(d, formula, cor)
    assert fast._dense_gram is not None
    slow = RSideLMMObjective(design, bound, reml=True)
    slow._dense_gram = None
    slow._whiten = lambda phi: bound.whiten(phi, slow._M)
    rng = np.random.default_rng(8)
    for _ in range(20):
        x = fast.x0 + rng.normal(scale=0.4, size=fast.x0.size)
        x[:design.n_theta] = np.abs(x[:design.n_theta])
        a, b = fast(x), slow(x)
        assert a == pytest.approx(b, rel=CRITERION_TOL) or (a == b == np.inf)
    # the solution at a point (beta, sigma from the installed cross-products)
    x = fast.x0 + 0.1
    sa, sb = fast.solve(x), slow.solve(x)
    assert np.allclose(sa.beta, sb.beta, rtol=1e-10)
    assert sa.sigma == pytest.approx(sb.sigma, rel=1e-11)


def test_fits_agree_with_nlme_fixtures():
    """bw_lme_cs_nested and ovary_lme_ar1 (closed forms) still match nlme's logLik."""
    import rside_fixtures as rf

    models = {f["name"]: f for f in rf.models("lme")}
    for name in ("bw_lme_cs_nested", "ovary_lme_ar1"):
        fx = models[name]
        d = rf.data(fx["data"]).copy()
        for col in {"bodyweight": ["Rat", "Diet"], "ovary": ["Mare"]}[fx["data"]]:
            d[col] = d[col].astype("category")
        m = eval(fx["py_call"], {"mm": mm, "d": d})
        assert m.objective_function._dense_gram is not None
        assert m.loglik == pytest.approx(fx["logLik"], abs=1e-7)

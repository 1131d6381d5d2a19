"""glmer on Dask input equals the in-memory fit (backends/dask/glmm.py, pirls.py).

Oracle: the in-memory ``glmer`` on the same rows (itself checked against lme4 elsewhere),
and the in-memory objective evaluated at the same parameters. Tolerances from the issue:
objective 1e-8 relative, estimates 1e-7 (the Dask PIRLS takes the in-memory iteration's
path, predicted starts included, so the optimizers see the same values to rounding).
Most cases run on Dask's synchronous scheduler; two on a ``distributed.LocalCluster`` with
2 worker processes (passes there cost ~0.3 s each on this loaded machine, so the full
Laplace fit on the cluster is marked slow).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import DataError, DroppedRowsWarning, FormulaError

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

OBJ_RTOL = 1e-8
EST_TOL = 1e-7
#: Same-point evaluations of the Laplace deviance, Dask vs in memory (rounding of sums
#: over partitions, and PIRLS started from other modes, both far below this).
EVAL_RTOL = 1e-11


def _close(a, b, tol=EST_TOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)), initial=0.0)
    assert err <= tol, err


def assert_same_glmm(m, m_mem, tol=EST_TOL):
    assert abs(m.objective / m_mem.objective - 1.0) <= OBJ_RTOL
    assert list(m.fixef.index) == list(m_mem.fixef.index)
    _close(m.beta, m_mem.beta, tol)
    _close(m.theta, m_mem.theta, tol)
    _close(m.vcov.to_numpy(), m_mem.vcov.to_numpy(), 100 * tol)   # finite differences
    assert m.nobs == m_mem.nobs and m.ngroups == m_mem.ngroups
    for g, re in m_mem.ranef(cond_var=True).items():
        got = m.ranef(cond_var=True)[g]
        assert list(got.index) == list(re.index)
        _close(got.to_numpy(), re.to_numpy(), 10 * tol)


def sim(n=900, n_a=25, n_b=8, seed=3):
    """Counts, binomial trials, 0/1 and text responses on a crossed design; NaNs spread."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n_a, n), rng.integers(0, n_b, n)
    x = rng.normal(size=n) + 50.0                       # shifted: the basis matters
    eta = -0.5 + 0.4 * (x - 50) + rng.normal(0, 0.7, n_a)[a] + rng.normal(0, 0.4, n_b)[b]
    size = rng.integers(1, 6, n)
    p = 1 / (1 + np.exp(-eta))
    df = pd.DataFrame({"x": x, "a": [f"g{v:02d}" for v in a], "b": b,
                       "cnt": rng.poisson(np.exp(eta)), "s": rng.binomial(size, p),
                       "size": size, "yb": rng.binomial(1, p).astype(float),
                       "o": rng.normal(0, 0.1, n)})
    df["prop"] = df["s"] / df["size"]
    df["resp"] = np.where(df["yb"] > 0, "yes", "no")
    df.loc[rng.choice(n, 15, replace=False), "x"] = np.nan
    return df


def _fits(formula, df, npartitions=3, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        m_mem = mm.glmer(formula, df, **kw)
        m = mm.glmer(formula, dd.from_pandas(df, npartitions=npartitions), **kw)
    return m, m_mem


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_local_cluster_short_fit(cluster_client):
    """Two worker processes (the CI case): the whole nAGQ = 0 pipeline with the optimizer
    held to a few evaluations from the same start, so that the cluster's passes (~0.3 s
    each on a loaded machine) stay few; the result equals the in-memory one's."""
    df = mm.datasets.load("cbpp")
    kw = {"family": "binomial", "nAGQ": 0, "start": {"theta": [0.5]},
          "optimizer_settings": {"maxeval": 3}}
    m, m_mem = _fits(CBPP, df, npartitions=4, **kw)
    assert type(m).__name__ == "DaskGLMMResult"
    assert_same_glmm(m, m_mem)
    _close(m.fitted().compute().sort_index().to_numpy(), m_mem.fitted().to_numpy())


@pytest.mark.slow
def test_local_cluster_cbpp_laplace(cluster_client):
    """Two worker processes, cbind response, Laplace; lazy fitted / residuals / predict
    equal the in-memory values (~300 passes: about 2 minutes on the loaded machine)."""
    df = mm.datasets.load("cbpp")
    m, m_mem = _fits(CBPP, df, npartitions=4, family="binomial")
    assert type(m).__name__ == "DaskGLMMResult"
    assert_same_glmm(m, m_mem)
    fitted = m.fitted()
    assert hasattr(fitted, "compute")
    _close(fitted.compute().sort_index().to_numpy(), m_mem.fitted().to_numpy())
    for kind in ("deviance", "pearson", "response", "working"):
        _close(m.residuals(kind).compute().sort_index().to_numpy(),
               m_mem.residuals(kind).to_numpy(), 1e-6)
    new = df.head(7)
    _close(m.predict(dd.from_pandas(new, npartitions=2), type="response").compute()
           .to_numpy(), m_mem.predict(new, type="response").to_numpy())
    assert m.overdispersion().chisq == pytest.approx(m_mem.overdispersion().chisq,
                                                     rel=1e-6)


@pytest.mark.parametrize("formula, family, kw", [
    ("prop ~ x + (1 | a)", "binomial", {"weights": "size", "nAGQ": 0}),
    ("cbind(s, size - s) ~ x + (1 | a)", "binomial", {"nAGQ": 0}),
    pytest.param("resp ~ x + (1 | a)", "binomial", {}, marks=pytest.mark.slow),
    pytest.param("yb ~ x + (1 | a)", mm.families.Binomial(link="probit"), {},
                 marks=pytest.mark.slow),
])
def test_binomial_forms_equal_in_memory(sync, formula, family, kw):
    """Proportions with trials as weights, cbind, a text factor response (its first level
    failure in every partition), a non-canonical link (Newton PIRLS steps, Fisher-weight
    Laplace determinant)."""
    m, m_mem = _fits(formula, sim(), family=family, **kw)
    assert_same_glmm(m, m_mem)


@pytest.mark.slow
def test_crossed_poisson_offset(sync):
    """Two crossed factors with an offset (Laplace): every evaluation agrees to
    rounding, and so do the fits."""
    df = sim()
    formula = "cnt ~ x + offset(o) + (1 | a) + (1 | b)"
    m, m_mem = _fits(formula, df, family="poisson")
    assert_same_glmm(m, m_mem)
    x = m_mem.objective_function.join(m_mem.theta, m_mem.beta)
    x2 = x + 0.01
    for point in (x, x2):
        a = m.objective_function(point)
        b = m_mem.objective_function(point)
        assert abs(a / b - 1) <= EVAL_RTOL


def test_level_in_one_partition_and_nan_counts(sync):
    """Rows sorted by group (every level of 'a' in one partition); NaN rows spread over
    partitions are reported with the in-memory counts."""
    df = sim().sort_values("a").reset_index(drop=True)
    formula = "cbind(s, size - s) ~ x + (1 | a)"
    with pytest.warns(DroppedRowsWarning) as mem_w:
        m_mem = mm.glmer(formula, df, family="binomial", nAGQ=0)
    with pytest.warns(DroppedRowsWarning) as dask_w:
        m = mm.glmer(formula, dd.from_pandas(df, npartitions=5, sort=False),
                     family="binomial", nAGQ=0)
    assert [str(w.message) for w in dask_w] == [str(w.message) for w in mem_w]
    assert_same_glmm(m, m_mem)


def test_partition_dtypes_differ(sync):
    df = sim()
    parts = [df.iloc[:400], df.iloc[400:600].astype({"b": str}), df.iloc[600:]]
    ddf = dd.from_map(lambda i: parts[i], [0, 1, 2], meta=df.iloc[:0])
    with pytest.raises(DataError, match=r"'b'.*different dtypes.*text in partition 1"):
        mm.glmer("cnt ~ x + (1 | b)", ddf, family="poisson")


def test_bad_response_from_a_partition(sync):
    df = sim()
    df.loc[df.index[-3], "cnt"] = -2
    with pytest.raises(DataError, match="negative counts"):
        mm.glmer("cnt ~ x + (1 | a)", dd.from_pandas(df, npartitions=3), family="poisson")
    df = sim()
    df["cnt"] = 0
    with pytest.raises(DataError, match="is constant"):
        mm.glmer("cnt ~ x + (1 | a)", dd.from_pandas(df, npartitions=3), family="poisson")


@pytest.mark.parametrize("formula, family, nagq", [
    (CBPP, "binomial", 9),
    pytest.param("cnt ~ x + (1 | a)", "poisson", 5, marks=pytest.mark.slow),
    pytest.param("y ~ x + (1 | a)", mm.families.Gamma(link="log"), 7,
                 marks=pytest.mark.slow),                 # phi a parameter of x
])
def test_adaptive_quadrature_equals_in_memory(sync, formula, family, nagq):
    """nAGQ > 1 on one scalar term: one pass of per-level sums at the nodes per
    evaluation; BOBYQA on both (one path: agreement to ~1e-10 measured)."""
    df = mm.datasets.load("cbpp") if formula == CBPP else sim()
    if formula.startswith("y "):
        rng = np.random.default_rng(2)
        df = df.assign(y=rng.gamma(2.0, np.exp(0.5 + 0.1 * (df["x"].fillna(50) - 50))))
    m, m_mem = _fits(formula, df, family=family, nAGQ=nagq, optimizer="bobyqa")
    assert m.nAGQ == m_mem.nAGQ == nagq
    assert_same_glmm(m, m_mem)


def test_adaptive_quadrature_needs_one_scalar_term(sync):
    """As in memory: nAGQ > 1 with two terms is refused with the rule."""
    with pytest.raises(FormulaError, match="single scalar random-effects term"):
        mm.glmer("cnt ~ x + (1 | a) + (1 | b)", dd.from_pandas(sim(), npartitions=2),
                 family="poisson", nAGQ=3)


def test_glmmtmb_refused(sync):
    ddf = dd.from_pandas(sim(), npartitions=2)
    with pytest.raises(NotImplementedError, match=r"glmmtmb does not fit Dask.*mm.glmer"):
        mm.glmmtmb("cnt ~ x + (1 | a)", ddf, family="poisson")


def test_negative_binomial_fixed_shape(sync):
    """glmer with a fixed-shape negative binomial family (no dispersion parameter)."""
    fam = mm.families.NegativeBinomial(theta=2.0)
    m, m_mem = _fits("cnt ~ x + (1 | a)", sim(), family=fam, nAGQ=0)
    assert_same_glmm(m, m_mem)


def test_nothing_of_length_n_on_the_client(sync):
    m = mm.glmer("cnt ~ x + (1 | a)", dd.from_pandas(sim(), npartitions=3),
                 family="poisson", nAGQ=0)
    assert type(m.solution.eta).__name__ == "RowState"
    with pytest.raises(DataError, match="stay on the cluster"):
        _ = m.design.y
    assert m.timings["passes"] > 0
    assert "Scaled residuals" in str(m.summary())


def sim_positive(n=500, n_a=20, seed=11):
    """Gamma and inverse Gaussian responses (log link) with integer prior weights."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    x = rng.normal(size=n)
    mu = np.exp(1.0 + 0.3 * x + rng.normal(0, 0.5, n_a)[a])
    return pd.DataFrame({"y": rng.gamma(2.0, mu / 2.0), "yi": rng.wald(mu, 20.0),
                         "x": x, "a": [f"h{v}" for v in a],
                         "w": rng.integers(1, 4, n).astype(float)})


@pytest.mark.parametrize("family, kw", [
    (mm.families.Gamma(link="log"), {"weights": "w"}),
    pytest.param(mm.families.Gamma(), {}, marks=pytest.mark.slow),
    pytest.param(mm.families.Gamma(link="log"), {"nAGQ": 0}, marks=pytest.mark.slow),
])
def test_gamma_equals_in_memory(sync, family, kw):
    """The profiled dispersion from the prior weights' counts (one pass): the Dask fit
    follows the in-memory one's path with the same (derivative-free) optimizer and equals
    it, sigma included (the default optimizer's gradient path on both sides agrees to
    ~2e-11 too, inverse link included: checked by hand, as each such fit is ~100 passes)."""
    m, m_mem = _fits("y ~ x + (1 | a)", sim_positive(), family=family, optimizer="bobyqa",
                     **kw)
    assert_same_glmm(m, m_mem)
    assert m.sigma == pytest.approx(m_mem.sigma, rel=EST_TOL)


@pytest.mark.slow
def test_inverse_gaussian_same_point_and_fit(sync):
    """Inverse Gaussian (``s_i(phi) = log phi + c_i``): same-point deviances agree to
    rounding; the fits' objectives to 1e-8. (BOBYQA's paths part at the ~1e-13 rounding
    of this family's deviance on a flat optimum, so the estimates are compared to the
    optimizer's own precision, 1e-5, not to 1e-7.)"""
    df = sim_positive()
    fam = mm.families.InverseGaussian(link="log")
    m, m_mem = _fits("yi ~ x + (1 | a)", df, family=fam, optimizer="bobyqa", nAGQ=1)
    x = m_mem.objective_function.join(m_mem.theta, m_mem.beta)
    for point in (x, x + 0.01):
        assert abs(m.objective_function(point) / m_mem.objective_function(point) - 1) \
            <= EVAL_RTOL
    assert abs(m.objective / m_mem.objective - 1.0) <= OBJ_RTOL
    _close(m.theta, m_mem.theta, 1e-5)
    _close(m.beta, m_mem.beta, 1e-5)
    assert m.sigma == pytest.approx(m_mem.sigma, rel=1e-5)


def test_dispersion_with_too_many_distinct_weights_refused(sync, monkeypatch):
    from mixedmodels.backends.dask import glmm_pass, pirls

    monkeypatch.setattr(glmm_pass, "MAX_DISTINCT_VALUES", 2)
    monkeypatch.setattr(pirls, "MAX_DISTINCT_VALUES", 2)
    ddf = dd.from_pandas(sim_positive(), npartitions=2)
    with pytest.raises(NotImplementedError, match="more than 2 distinct prior weights"):
        mm.glmer("y ~ x + (1 | a)", ddf, family=mm.families.Gamma(link="log"),
                 weights="w", nAGQ=0)


def sim_nb(n=300, n_a=15, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    x = rng.normal(size=n)
    mu = np.exp(0.5 + 0.3 * x + rng.normal(0, 0.5, n_a)[a])
    return pd.DataFrame({"y": rng.negative_binomial(2.0, 2.0 / (2.0 + mu)), "x": x,
                         "a": a})


@pytest.mark.parametrize("nagq", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_glmer_nb_equals_in_memory(sync, nagq):
    """glmer_nb on Dask: the starting shape from the Poisson fit's means (its score
    summed over partitions), then the shape optimized with theta and beta; with the same
    (derivative-free) optimizer the fit equals the in-memory one, shape included."""
    df = sim_nb()
    kw = {"nAGQ": nagq, "optimizer": "bobyqa"}
    m_mem = mm.glmer_nb("y ~ x + (1 | a)", df, **kw)
    m = mm.glmer_nb("y ~ x + (1 | a)", dd.from_pandas(df, npartitions=3), **kw)
    assert type(m).__name__ == "DaskGLMMResult" and m.shape_estimated
    assert_same_glmm(m, m_mem)
    assert m.family.theta == pytest.approx(m_mem.family.theta, rel=EST_TOL)


def _shared_factor_counts(n=600, n_g=30, seed=8):
    """Counts and 0/1 responses with a random intercept and slope per level of a numeric
    factor 'my grp' and a second factor 'b' (so PIRLS merges the terms on 'my grp')."""
    rng = np.random.default_rng(seed)
    g, b = rng.integers(0, n_g, n), rng.integers(0, 6, n)
    x, z = rng.normal(size=n), rng.uniform(-1, 1, n)
    eta = (-0.2 + 0.4 * x + rng.normal(0, 0.6, n_g)[g] + rng.normal(0, 0.4, n_g)[g] * x
           + rng.normal(0, 0.5, n_g)[g] * z + rng.normal(0, 0.4, 6)[b])
    return pd.DataFrame({"x.val": x, "z": z, "my grp": 5 * g + 1,
                         "b": [f"b{v}" for v in b],
                         "cnt": rng.poisson(np.exp(eta)),
                         "yb": rng.binomial(1, 1 / (1 + np.exp(-eta)))})


def _assert_same_blocks(m, m_mem):
    got, want = m.objective_function.pirls.merge, m_mem.objective_function.pirls.merge
    assert want is not None and got is not None and got.groups == want.groups


def test_local_cluster_terms_on_one_factor_merge(cluster_client):
    """Two worker processes: (x || g) forms one block of PIRLS's system on the workers'
    cross-products, as in memory, and the Laplace deviance and its exact gradient (three
    per-level passes) at a point equal the in-memory ones (one PIRLS solve from lme4's
    start: ~12 passes; full fits of merged layouts are compared on the synchronous
    scheduler below)."""
    from mixedmodels.backends.dask.glmm import DaskGLMMObjective
    from mixedmodels.backends.dask.glmm_gradient import DaskLaplaceGradient
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.design.lhs import make_response
    from mixedmodels.objective.glmm import GLMMObjective
    from mixedmodels.objective.glmm_gradient import LaplaceGradient

    df = _shared_factor_counts()
    formula = "yb ~ `x.val` + (`x.val` || `my grp`)"
    fam = mm.families.Binomial()
    prepared = prepare(formula, dd.from_pandas(df, npartitions=3), weights=None,
                       offset=None, contrasts=None, response=make_response(fam))
    obj = DaskGLMMObjective(prepared.frame, prepared, fam, 1)
    obj_mem = GLMMObjective(mm.glmer(formula, df, family=fam, nAGQ=0).design, fam, 1)
    assert obj.pirls.merge is not None and obj_mem.pirls.merge is not None
    assert obj.pirls.merge.groups == obj_mem.pirls.merge.groups
    x = np.array([0.6, 0.4, -0.2, 0.4])
    got, want = DaskLaplaceGradient(obj)(x), LaplaceGradient(obj_mem)(x)
    assert abs(got[0] / want[0] - 1.0) <= EVAL_RTOL
    _close(got[1], want[1], 1e-8)


@pytest.mark.parametrize("formula, nagq", [
    ("cnt ~ `x.val` + (1 | `my grp`) + (0 + `x.val` | `my grp`) + (1 | b)", 1),
    ("cnt ~ `x.val` + (1 | b) + (`x.val` | `my grp`) + (0 + z | `my grp`)", 0),
    ("cnt ~ `x.val` + (1 | `my grp`:b) + (0 + `x.val` | `my grp`:b) + (1 | b)", 0),
])
def test_terms_on_one_factor_merge_as_in_memory(sync, formula, nagq):
    """Uncorrelated, correlated and interaction-factor layouts with a crossed factor: the
    Dask PIRLS factors the blocks the in-memory one does (terms on the first term's
    factor merged) and the fits agree (BOBYQA on both: one path)."""
    m, m_mem = _fits(formula, _shared_factor_counts(), family="poisson", nAGQ=nagq,
                     optimizer="bobyqa")
    _assert_same_blocks(m, m_mem)
    assert_same_glmm(m, m_mem)


# maxeval 5: the fits only provide the objectives; their convergence is not the point
@pytest.mark.filterwarnings("ignore:model may not have converged",
                            "ignore:the deviance has negative curvature",
                            "ignore:the finite-difference Hessian")
@pytest.mark.parametrize("formula, family", [
    ("yb ~ `x.val` + (1 | `my grp`)", "binomial"),
    ("cnt ~ `x.val` + (`x.val` || `my grp`)", "poisson"),
    ("cnt ~ `x.val` + (`x.val` | `my grp`)", "poisson"),
    ("yb ~ `x.val` + (1 | `my grp`)", mm.families.Binomial(link="probit")),   # W_L Fisher's
])
def test_laplace_gradient_equals_in_memory(sync, formula, family):
    """The Dask Laplace gradient (three per-level passes) at a point off the optimum
    equals the in-memory exact gradient (oracle: LaplaceGradient on the rows; both to
    PIRLS's tolerance), for scalar, merged and correlated terms and a non-canonical
    link."""
    from mixedmodels.backends.dask.glmm_gradient import DaskLaplaceGradient
    from mixedmodels.objective.glmm_gradient import LaplaceGradient

    df = _shared_factor_counts()
    m, m_mem = _fits(formula, df, family=family, optimizer="bobyqa",
                     optimizer_settings={"maxeval": 5})
    x = np.concatenate([m_mem.theta * 1.2 + 0.05, m_mem.beta + 0.1])
    f_mem, g_mem = LaplaceGradient(m_mem.objective_function)(x)
    f, g = DaskLaplaceGradient(m.objective_function)(x)
    assert abs(f / f_mem - 1.0) <= EVAL_RTOL
    _close(g, g_mem, 1e-8)
    assert np.max(np.abs(g_mem)) > 1.0          # a point where the gradient is not ~0


def test_gradient_path_on_one_block_and_unsupported_layout(sync):
    """optimizer='auto': the exact gradient where every term is in one block (fewer
    evaluations and passes than BOBYQA, the in-memory optimum); a vector-valued term
    outside the first block has no Dask gradient (crossed scalar terms have: see
    tests/test_dask_gradient.py), so optimizer='gradient' is refused there."""
    df = _shared_factor_counts()
    m, m_mem = _fits("yb ~ `x.val` + (1 | `my grp`)", df, family="binomial")
    assert m.opt.optimizer.startswith("gradient") and m_mem.opt.optimizer.startswith("gradient")
    assert abs(m.objective / m_mem.objective - 1.0) <= OBJ_RTOL
    _close(m.theta, m_mem.theta)
    _close(m.beta, m_mem.beta)
    with pytest.raises(ValueError, match="optimizer='gradient' needs"):
        mm.glmer("yb ~ `x.val` + (1 | `my grp`) + (`x.val` | b)",
                 dd.from_pandas(df, npartitions=2), family="binomial", optimizer="gradient")


def test_local_cluster_crossed_gradients(cluster_client):
    """Two worker processes: the nAGQ = 0 gradient of a crossed model (the selected
    inverse of M on the pairs of levels, the joint solve with X; three passes after
    PIRLS's) equals the in-memory one at a point (both PIRLS solves from lme4's start, so
    at the same modes to rounding; the Laplace gradient of crossed models is checked on
    the synchronous scheduler and the full default-optimizer fits on the cluster are
    slow-tier tests, in tests/test_dask_gradient.py)."""
    from mixedmodels.backends.dask.glmm import DaskGLMMObjective
    from mixedmodels.backends.dask.glmm_gradient import DaskStage0Gradient
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.design.lhs import make_response
    from mixedmodels.fitting.glmm import glmm_design
    from mixedmodels.objective.glmm import GLMMObjective
    from mixedmodels.objective.glmm_gradient import Stage0Gradient

    df = _shared_factor_counts()
    formula = "cnt ~ `x.val` + (1 | `my grp`) + (1 | b)"
    fam = mm.families.Poisson()
    prepared = prepare(formula, dd.from_pandas(df, npartitions=3), weights=None,
                       offset=None, contrasts=None, response=make_response(fam))
    obj = DaskGLMMObjective(prepared.frame, prepared, fam, 1)
    obj_mem = GLMMObjective(glmm_design(formula, df, fam), fam, 1)
    theta = np.array([0.7, 0.3])
    got, want = DaskStage0Gradient(obj)(theta), Stage0Gradient(obj_mem)(theta)
    assert abs(got[0] / want[0] - 1.0) <= EVAL_RTOL
    _close(got[1], want[1], 1e-10)

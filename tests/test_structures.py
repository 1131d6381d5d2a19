"""G-side covariance structures: the contract of every class (against numerical derivatives
and round trips), the registry and the formula syntax, the data hooks (positions, known
matrices), bad input, and the objectives with structured terms against dense oracles (the
marginal Gaussian likelihood written out with n x n matrices)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mixedmodels as mm
from mixedmodels import covariance as cv
from mixedmodels.covariance.spatial import bessel_k_order_derivative
from mixedmodels.formula import COVARIANCE_KEYWORDS, parse_formula
from structures_fixtures import dense_Z

#: Central-difference step and the agreement asked of the exact Jacobians.
FD_STEP = 1e-6
JAC_ATOL = 1e-7
#: Round trips and dense oracles (relative).
ROUND_TRIP_TOL = 1e-10
ORACLE_RTOL = 1e-8

RNG = np.random.default_rng(20260101)
COORDS = RNG.uniform(0, 3, size=(5, 2))
TIMES = np.sort(RNG.uniform(0, 4, size=5))[:, None]
_A = RNG.normal(size=(5, 5))
KNOWN = _A @ _A.T + np.eye(5)


def _structures():
    return [cv.Unstructured(3), cv.Diagonal(3), cv.Diagonal(3, hom=True),
            cv.CompoundSymmetry(4), cv.CompoundSymmetry(4, hom=True), cv.AR1(4),
            cv.AR1(4, hom=False), cv.Toeplitz(4), cv.Toeplitz(4, hom=True),
            cv.OrnsteinUhlenbeck(5, TIMES), cv.Exponential(5, COORDS),
            cv.Gaussian(5, COORDS), cv.Matern(5, COORDS), cv.ReducedRank(4, 2),
            cv.ReducedRank(3, 1), cv.Proportional(5, KNOWN), cv.Fixed(5, KNOWN)]


STRUCTS = {f"{s.keyword}-{k}": s for k, s in enumerate(_structures())}


def _point(s):
    return s.start(0.8) + np.random.default_rng(s.n_theta).normal(scale=0.2,
                                                                    size=s.n_theta)


@pytest.mark.parametrize("name", STRUCTS)
def test_relative_jacobian_gives_the_jacobian_from_lambda(name):
    """``dLambda_j = Lambda M_j`` wherever a structure gives ``M`` in closed form; for the
    scaled correlations also with a standard deviation at zero (``Lambda`` singular), where
    ``M`` stays finite and the identity exact."""
    s = STRUCTS[name]
    th = _point(s)
    points = [th]
    if isinstance(s, cv.ScaledCorrelation) and not s.hom:
        at_zero = th.copy()
        at_zero[1] = -40.0                          # sd_2 = 4e-18
        points.append(at_zero)
    for t in points:
        M = s.relative_jacobian(t)
        if M is None:
            assert not isinstance(s, (cv.ScaledCorrelation, cv.Proportional))
            continue
        assert np.all(np.isfinite(M))
        np.testing.assert_allclose(s.lambda_(t) @ M, s.lambda_jacobian(t), rtol=0,
                                   atol=ROUND_TRIP_TOL)


@pytest.mark.parametrize("name", STRUCTS)
def test_lambda_jacobian_matches_central_differences(name):
    s = STRUCTS[name]
    th = _point(s)
    J = s.lambda_jacobian(th)
    assert J.shape == (s.n_theta, s.p, s.p)
    for j in range(s.n_theta):
        e = np.zeros(s.n_theta)
        e[j] = FD_STEP
        num = (s.lambda_(th + e) - s.lambda_(th - e)) / (2 * FD_STEP)
        np.testing.assert_allclose(J[j], num, atol=JAC_ATOL * max(1.0, np.abs(num).max()))


@pytest.mark.parametrize("name", STRUCTS)
def test_parameter_views_round_trip(name):
    s = STRUCTS[name]
    th = _point(s)
    cov = s.covariance(th)
    lam = s.lambda_(th)
    np.testing.assert_allclose(cov, lam @ lam.T, rtol=ROUND_TRIP_TOL, atol=1e-14)
    assert np.linalg.eigvalsh(cov).min() > -1e-12
    for back in (s.theta_from_parameters(s.parameters(th)),
                 s.from_glmmtmb(s.to_glmmtmb(th)), s.canonical(th)):
        np.testing.assert_allclose(s.covariance(back), cov, rtol=1e-9, atol=1e-12)
    assert len(s.parameter_names()) == s.parameters(th).size
    lo, hi = s.parameter_bounds()
    nat = s.parameters(th)
    assert np.all(nat >= lo) and np.all(nat <= hi)
    sd, _ = s.sd_cor(th)
    np.testing.assert_allclose(sd, np.sqrt(np.diag(cov)), rtol=1e-12)


@pytest.mark.parametrize("name", STRUCTS)
def test_start_has_the_requested_standard_deviation(name):
    s = STRUCTS[name]
    if s.keyword in ("rr", "equalto", "propto", "us"):
        return              # their starts follow glmmTMB (loadings 1) or the known matrix
    sd, _ = s.sd_cor(s.start(0.37))
    np.testing.assert_allclose(sd, 0.37)


def test_direct_maps_fill_lambda():
    for s in STRUCTS.values():
        mp = s.direct_map()
        if mp is None:
            continue
        th = _point(s)
        full = np.concatenate([th, [0.0]])
        np.testing.assert_array_equal(full[np.where(mp >= 0, mp, s.n_theta)].reshape(s.p, s.p),
                                      s.lambda_(th))


def test_structures_in_closed_form():
    t = np.array([0.3])
    phi = 0.3 / np.sqrt(1.09)
    ar = cv.AR1(4)
    lag = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    np.testing.assert_allclose(ar.covariance(np.r_[np.log(2.0), t]), 4.0 * phi ** lag)
    cs = cv.CompoundSymmetry(3, hom=True)
    rho = 1 / (1 + np.exp(-0.3)) * 1.5 - 0.5
    np.testing.assert_allclose(cs.covariance(np.r_[0.0, t]),
                               (1 - rho) * np.eye(3) + rho * np.ones((3, 3)))
    ex = cv.Exponential(5, COORDS)
    d = np.sqrt(((COORDS[:, None] - COORDS[None]) ** 2).sum(-1))
    np.testing.assert_allclose(ex.covariance(np.array([0.0, np.log(1.7)])), np.exp(-d / 1.7))
    # a Matern of smoothness 1/2 is the exponential correlation
    mat = cv.Matern(5, COORDS)
    np.testing.assert_allclose(mat.covariance(np.array([0.0, np.log(1.7), np.log(0.5)])),
                               np.exp(-d / 1.7), rtol=1e-10)
    rr = cv.ReducedRank(4, 2)
    L = rr.lambda_(np.arange(1.0, rr.n_theta + 1))
    assert np.all(L[:, 2:] == 0) and L[0, 1] == 0
    np.testing.assert_allclose(cv.Proportional(5, KNOWN).covariance(np.array([np.log(3.0)])),
                               3.0 * KNOWN)


def test_bessel_order_derivative():
    x = np.array([1e-3, 0.05, 0.7, 2.0, 9.0])
    for nu in (0.2, 1.0, 3.5):
        h = 1e-5
        num = (special.kv(nu + h, x) - special.kv(nu - h, x)) / (2 * h)
        np.testing.assert_allclose(bessel_k_order_derivative(nu, x), num, rtol=1e-7)
    # arguments far apart (each group of them integrated up to its own cut) and a large
    # smoothness, where one cut for all the arguments overflowed
    x = np.array([0.02, 0.5, 4.0, 30.0, 120.0])
    for nu in (0.5, 40.0):
        h = 1e-6 * nu          # (central differences truncate at ~h^2)
        num = (special.kv(nu + h, x) - special.kv(nu - h, x)) / (2 * h)
        np.testing.assert_allclose(bessel_k_order_derivative(nu, x), num, rtol=1e-6)


def test_singularity():
    ar = cv.AR1(3)
    assert not ar.is_singular(np.array([0.0, 0.5]))
    assert ar.is_singular(np.array([0.0, 1e5]))          # phi -> 1
    d = cv.Diagonal(2)
    assert d.is_singular(np.array([1.0, 0.0])) and not d.is_singular(np.array([1.0, 0.5]))


# -- registry and formulas -----------------------------------------------------------------
def test_parser_reads_the_registry():
    assert COVARIANCE_KEYWORDS is cv.KEYWORDS
    for kw, entry in cv.REGISTRY.items():
        extra = ", K" if entry.needs == "matrix" else ""
        expr = "0 + pos(x)" if entry.needs == "coordinates" else "0 + f"
        t = parse_formula(f"y ~ {kw}({expr} | g{extra})").random[0]
        assert t.structure == kw


def test_lme4_hom_spellings_map_onto_the_same_classes():
    def build(formula):
        spec = parse_formula(formula).random[0]
        return cv.make_structure(spec.structure, 4, spec.options)

    assert isinstance(build("y ~ ar1(0 + f | g, hom = FALSE)"), cv.AR1)
    assert build("y ~ ar1(0 + f | g, hom = FALSE)").keyword == "hetar1"
    assert build("y ~ ar1(0 + f | g)").keyword == "ar1"
    assert build("y ~ diag(0 + f | g, hom = TRUE)").keyword == "homdiag"
    assert build("y ~ cs(0 + f | g, hom=True)").keyword == "homcs"
    assert build("y ~ rr(0 + f | g, d = 3)").d == 3
    assert build("y ~ rr(0 + f | g, 1)").d == 1


@pytest.mark.parametrize(("formula", "match"), [
    ("y ~ ar1(x | g, d = 2)", "no argument 'd'"),
    ("y ~ cs(x | g, hom = maybe)", "TRUE or FALSE"),
    ("y ~ rr(x | g, d = 0)", "positive"),
    ("y ~ propto(0 + sp | g)", "needs the name of its known matrix"),
    ("y ~ ar1(x || g)", "cannot be combined"),
])
def test_bad_structure_calls(formula, match):
    with pytest.raises(mm.FormulaError, match=match):
        parse_formula(formula)


# -- data ------------------------------------------------------------------------------------
def _long(n_sub=8, n_t=4, seed=1):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"subject": np.repeat([f"s{k}" for k in range(n_sub)], n_t),
                      "time": np.tile(np.arange(n_t), n_sub)})
    d["tt"] = np.tile([0.0, 0.7, 1.5, 3.0][:n_t], n_sub)
    d["x"] = rng.normal(size=len(d))
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    d["yc"] = rng.poisson(np.exp(0.3 + 0.2 * d.x))
    return d


def _spatial(n=12, seed=2):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x": rng.uniform(0, 5, n), "y": rng.uniform(0, 5, n)})
    d["x1"] = rng.normal(size=n)
    d["z"] = 1 + d.x1 + rng.normal(size=n)
    d["obs"] = [f"o{k}" for k in range(n)]
    return d


def test_positions_become_indicator_columns_with_coordinates():
    d = _spatial()
    m_design = mm.materialize(parse_formula("z ~ x1 + exp(0 + pos(x, y) | obs)"), d)
    t = m_design.terms[0]
    assert t.nlevels == 1 and t.p == len(d)          # one process over the positions
    np.testing.assert_array_equal(t.Z.sum(axis=1), 1.0)
    coords = t.structure.coordinates
    np.testing.assert_allclose(coords[t.Z.argmax(axis=1)], d[["x", "y"]].to_numpy())
    # subjects visiting several times are replicates of one process over the times
    dl = _long()
    t2 = mm.materialize(parse_formula("y ~ ou(0 + pos(tt) | subject)"), dl).terms[0]
    assert t2.nlevels == 8 and t2.p == 4
    np.testing.assert_allclose(t2.structure.coordinates[:, 0], [0.0, 0.7, 1.5, 3.0])


@pytest.mark.parametrize(("change", "formula", "error", "match"), [
    ({}, "z ~ exp(0 + pos(x, w) | obs)", mm.DataError, "not found in data: 'w'"),
    ({"x": ["a"] * 12}, "z ~ exp(0 + pos(x, y) | obs)", mm.DataError, "not numeric"),
    ({}, "z ~ exp(1 + pos(x, y) | obs)", mm.FormulaError, "whole term"),
    ({}, "z ~ ar1(0 + pos(x) | obs)", mm.FormulaError, "pos\\(\\) in"),
    ({}, "z ~ ou(0 + pos(x, y) | obs)", mm.FormulaError, "one-dimensional"),
    ({}, "z ~ exp(0 + x1 | obs)", mm.FormulaError, "needs the positions"),
])
def test_bad_coordinates(change, formula, error, match):
    d = _spatial()
    for k, v in change.items():
        d[k] = v
    with pytest.raises(error, match=match):
        mm.glmmtmb(formula, d)


def test_duplicated_times_within_a_group():
    # one row per subject and time, one time typed twice: a data error naming where
    d = _long()
    d.loc[5, "time"] = d.loc[4, "time"]
    with pytest.raises(mm.DataError, match=r"time 'C\(time\)\[0\]' appears 2 times in group 's1'"):
        mm.glmmtmb("y ~ ar1(0 + factor(time) | subject)", d)
    with pytest.raises(mm.DataError, match="appears 2 times in group"):
        mm.lmer("y ~ ar1(0 + factor(time) | subject)", d)
    # every pair on two rows (replicates): the rows of a pair share its effect, as glmmTMB
    # (objective against glmmTMB's in test_everystruct_matrix.py)
    rep = pd.concat([_long(seed=1), _long(seed=2)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)   # a variance may sit at zero
        m = mm.glmmtmb("y ~ ar1(0 + factor(time) | subject)", rep)
    assert np.isfinite(m.objective)
    with pytest.raises(mm.FormulaError, match="one column per time"):
        mm.glmmtmb("y ~ ar1(time | subject)", _long())


def _phylo(n_sp=6, per=4, seed=3):
    rng = np.random.default_rng(seed)
    sp = [f"sp{k}" for k in range(n_sp)]
    d = pd.DataFrame({"sp": np.repeat(sp, per), "dummy": "a"})
    d["x"] = rng.normal(size=len(d))
    K = 0.5 * np.eye(n_sp) + 0.5
    K[:3, :3] += 0.3
    b = np.linalg.cholesky(K) @ rng.normal(size=n_sp)
    d["y"] = d.x + b[np.repeat(np.arange(n_sp), per)] + rng.normal(scale=0.5, size=len(d))
    d["yc"] = rng.poisson(np.exp(0.2 + b[np.repeat(np.arange(n_sp), per)]))
    return d, pd.DataFrame(K, index=sp, columns=sp)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda K: K.iloc[:, ::-1].T.iloc[::-1].T.assign(**{"sp0": K["sp0"] + 1.0}),
     "not symmetric"),
    (lambda K: K - 2.0 * np.eye(len(K)), "not positive semi-definite"),
    (lambda K: K.rename(index=lambda s: s.upper(), columns=lambda s: s.upper()),
     "do not match"),
    (lambda K: K.iloc[:4, :4], "levels without a row"),
])
def test_bad_known_matrices(edit, match):
    d, K = _phylo()
    with pytest.raises(mm.DataError, match=match):
        mm.glmmtmb("y ~ x + propto(1 | sp, K)", d, covariance_matrices={"K": edit(K)})


def test_known_matrix_missing_or_absolute_in_lmer():
    d, K = _phylo()
    with pytest.raises(mm.DataError, match="no known matrix named 'K'"):
        mm.glmmtmb("y ~ x + propto(1 | sp, K)", d)
    with pytest.raises(mm.FormulaError, match="absolute scale"):
        mm.lmer("y ~ x + equalto(1 | sp, K)", d, covariance_matrices={"K": K})


def test_known_matrix_spans_levels_and_matches_glmmtmb_form():
    """``propto(1 | sp, K)`` (K over the levels: one block across them) is glmmTMB's
    ``propto(0 + sp | dummy, K)``; a numpy K without names is taken in level order."""
    d, K = _phylo()
    kw = {"covariance_matrices": {"K": K}}
    a = mm.glmmtmb("y ~ x + propto(1 | sp, K)", d, **kw)
    b = mm.glmmtmb("y ~ x + propto(0 + sp | dummy, K)", d, **kw)
    c = mm.glmmtmb("y ~ x + propto(1 | sp, K)", d, covariance_matrices={"K": K.to_numpy()})
    t = a.design.terms[0]
    assert t.nlevels == 1 and t.p == 6
    assert a.objective == pytest.approx(b.objective, abs=1e-8)
    assert c.objective == pytest.approx(a.objective, abs=1e-8)
    # shuffled names are matched by name
    perm = K.index[[3, 1, 0, 5, 2, 4]]
    e = mm.glmmtmb("y ~ x + propto(1 | sp, K)", d,
                   covariance_matrices={"K": K.loc[perm, perm]})
    assert e.objective == pytest.approx(a.objective, abs=1e-8)


# -- objectives against dense oracles --------------------------------------------------------
def _marginal_m2ll(y, X, beta, V):
    r = y - X @ beta
    _, logdet = np.linalg.slogdet(V)
    return float(len(y) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(V, r))


def _dense_V(design, theta, sigma2):
    n = design.nobs
    V = sigma2 * np.eye(n)
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        Z = dense_Z(t, n)
        G = np.kron(np.eye(t.nlevels), t.structure.covariance(theta[sl]))
        V += Z @ G @ Z.T
    return V


@pytest.mark.parametrize("formula", [
    "y ~ x + ar1(0 + factor(time) | subject)",
    "y ~ x + (1 | subject) + cs(0 + factor(time) | subject)",
    "y ~ x + toep(0 + factor(time) | subject, )".replace(", )", ")"),
    "y ~ x + ou(0 + pos(tt) | subject)",
    "y ~ x + rr(0 + factor(time) | subject, d = 1)",
    "y ~ x + diag(1 + x | subject, hom = TRUE)",
])
def test_glmmtmb_gaussian_objective_is_the_marginal_likelihood(formula):
    d = _long()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(formula, d)
    x = m.x + np.random.default_rng(4).normal(scale=0.05, size=m.x.size)
    design = m.design
    theta = m.layout.get(x, "theta.cond")
    sigma2 = float(np.exp(m.layout.get(x, "beta.disp")[0]))
    V = _dense_V(design, theta, sigma2)
    ref = _marginal_m2ll(design.y, design.X, m.layout.get(x, "beta.cond"), V)
    assert m.objective_function(x) == pytest.approx(ref, rel=ORACLE_RTOL)


@pytest.mark.parametrize("formula", [
    "y ~ x + ar1(0 + factor(time) | subject, hom = FALSE)",
    "y ~ x + cs(0 + factor(time) | subject, hom = TRUE)",
    "z ~ x1 + exp(0 + pos(x, y) | obs)",
    "z ~ x1 + gau(0 + pos(x, y) | obs)",
])
def test_lmer_profiled_deviance_is_the_marginal_likelihood(formula):
    d = _spatial() if formula.startswith("z") else _long()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(formula, d, REML=False)
    design = m.design
    # at the start, not the optimum: with one observation per position the spatial fits
    # may send the residual variance to zero (relative sds ~1e7), where both sides are
    # rounding noise
    theta0 = m.objective_function.theta0
    theta = theta0 + np.random.default_rng(5).normal(scale=0.05, size=theta0.size)
    # ML deviance profiled over beta and sigma, with V = sigma^2 (Z Lambda Lambda' Z' + I)
    V1 = _dense_V(design, theta, 1.0)
    X, y, n = design.X, design.y, design.nobs
    Vi = np.linalg.inv(V1)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    s2 = float(r @ Vi @ r) / n
    ref = _marginal_m2ll(y, X, beta, s2 * V1)
    assert m.objective_function(theta) == pytest.approx(ref, rel=ORACLE_RTOL)


def test_glmer_laplace_with_a_structured_term_matches_glmmtmb():
    d = _long(12, 4)
    f = "yc ~ x + ar1(0 + factor(time) | subject)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mm.glmer(f, d, family="poisson")
        b = mm.glmmtmb(f, d, family="poisson")
    assert a.objective == pytest.approx(b.objective, abs=1e-5)
    np.testing.assert_allclose(a.beta, b.fixef.to_numpy(), rtol=1e-4, atol=1e-6)


# -- results work for every structure ---------------------------------------------------------
def test_results_of_a_structured_lmm():
    d = _long(10, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("y ~ x + (1 | subject) + ar1(0 + factor(time) | subject)", d, REML=False)
        m0 = mm.lmer("y ~ x + (1 | subject)", d, REML=False)
    text = str(m.varcorr)
    assert "phi=" in text and "(ar1)" in text
    pars = m.cov_params()
    assert ("subject.1", "ar1", "phi") in pars.index or ("subject", "ar1", "phi") in pars.index
    assert "ar1" in str(m.summary())
    np.testing.assert_allclose(m.predict(d), m.fitted(), rtol=1e-10)
    # simulated responses have the fitted marginal covariance within a subject
    sim = np.asarray(m.simulate(nsim=4000, seed=1))
    resid = (sim - (m.design.X @ m.beta)[:, None]).reshape(10, 4, -1)
    emp = np.einsum("sti,sui->tu", resid, resid) / (10 * resid.shape[2])
    ar1 = next(t for t in m.design.terms if t.structure.keyword == "ar1")
    sl = m.design.theta_slices()[m.design.terms.index(ar1)]
    icpt = next(t for t in m.design.terms if t.structure.keyword == "us")
    sl0 = m.design.theta_slices()[m.design.terms.index(icpt)]
    model = m.sigma ** 2 * (ar1.structure.covariance(m.theta[sl])
                            + icpt.structure.covariance(m.theta[sl0])[0, 0] + np.eye(4))
    np.testing.assert_allclose(emp, model, atol=0.08 * np.abs(model).max())
    table = mm.anova(m0, m)
    assert table["npar"].iloc[1] - table["npar"].iloc[0] == 2          # sd and phi
    ci = m.confint(method="wald")
    assert len(ci) >= 2


def test_structured_fit_refits_and_pickles():
    import pickle

    d, K = _phylo()
    m = mm.glmmtmb("y ~ x + propto(1 | sp, K)", d, covariance_matrices={"K": K})
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.objective == pytest.approx(m.objective)
    u = m.update(formula="y ~ 1 + propto(1 | sp, K)")
    assert u.objective > m.objective - 1e-6


def test_rr_rank_above_the_columns_is_capped_with_a_warning():
    with pytest.warns(mm.FormulaWarning, match=r"rank d=6 exceeds the term's 4 columns"):
        rr = cv.ReducedRank(4, 6)
    assert rr.d == 4 and rr.n_theta == cv.Unstructured(4).n_theta
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cv.ReducedRank(4, 4).d == 4
    with pytest.raises(mm.FormulaError, match="at least 1"):
        cv.ReducedRank(4, 0)

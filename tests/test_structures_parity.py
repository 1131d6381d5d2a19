"""Every G-side covariance structure against glmmTMB (tests/fixtures/structures, made by
tools/r/structures_fixtures.R with glmmTMB 1.1.5, and 1.1.14 for the structures 1.1.5
lacks), in glmmtmb and -- where the fixture's model is an LMM or a binomial/Poisson GLMM --
in lmer and glmer.

Checks, per fixture and front door:

1. glmmtmb: our objective at glmmTMB's own estimates equals glmmTMB's objective
   (``LIKELIHOOD_RTOL``): the same likelihood, structure by structure (glmmTMB's theta
   converted by each structure's ``from_glmmtmb``).
2. Our optimum is within ``OBJECTIVE_ATOL`` of glmmTMB's, or lower.
3. Fixed effects within ``COEF_RTOL`` of ``max(|estimate|, SE)`` -- or, in glmmtmb, where
   glmmTMB stopped short (its "false convergence"), one Newton step from glmmTMB's point
   with our Hessian lands there --, the covariance matrices of every term within
   ``COV_RTOL`` of the largest entry, unless our optimum is lower by more than
   ``SAME_OPTIMUM``: glmmTMB then stopped short and its estimates are not the optimum's
   to this precision.
4. Standard errors within ``SE_RTOL`` of glmmTMB's (glmmtmb, glmer). lmer's standard
   errors are lme4's, conditional on the covariance parameters, ``sigma^2 (X' V^{-1}
   X)^{-1}``; glmmTMB's REML ones add the covariance parameters' uncertainty (its joint
   precision) and its ML ones are the inverse Hessian of all parameters. So lmer's are
   checked against the dense conditional covariance at glmmTMB's estimates (glmmTMB's
   covariance matrices and sigma), an R-made value computed independently of our solver.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from glmmtmb_fixtures import newton_corrected
from structures_fixtures import dense_Z, fit_fixture, ids, load, load_data

#: Our objective at glmmTMB's estimates vs glmmTMB's objective (relative).
LIKELIHOOD_RTOL = 1e-7
#: Our optimum may be at most this much above glmmTMB's (deviance units).
OBJECTIVE_ATOL = 1e-4
#: Below glmmTMB's by more than this: a better optimum than glmmTMB's.
SAME_OPTIMUM = 1e-4
#: Estimates relative to max(|estimate|, SE); standard errors; covariance entries
#: relative to the largest entry of the term's matrix.
COEF_RTOL = 1e-4
SE_RTOL = 1e-3
COV_RTOL = 1e-3
#: Fixtures too slow for the default tier (a 70 x 70 spatial block, fitted several times).
SLOW = {"mat_gauss_ml", "mat_pois", "gau_pois"}


def _param(fid, door):
    marks = [pytest.mark.slow] if fid in SLOW else []
    return pytest.param(fid, door, marks=marks, id=f"{fid}-{door}")


def _doors(fx) -> list[str]:
    doors = fx["doors"]
    return [doors] if isinstance(doors, str) else list(doors)


CASES = [_param(fid, door) for fid in ids() for door in _doors(load(fid))]


def _terms_in_formula_order(design):
    """Our terms in the formula's order (glmmTMB's theta order)."""
    order = {id(rt): k for k, rt in enumerate(design.spec.random)}
    return sorted(design.terms, key=lambda t: order[id(t.term)])


def _reference_x(m, fx) -> np.ndarray:
    """glmmTMB's estimates as our full parameter vector (glmmtmb)."""
    cond = m.design.components["cond"]
    blocks = {}
    if "beta.cond" in m.layout:
        blocks["beta.cond"] = np.array([fx["beta"][n] for n in cond.fixed.r_names])
    if fx.get("beta_disp") and "beta.disp" in m.layout and not m.layout.block("beta.disp").fixed:
        bd = np.array(list(fx["beta_disp"].values()), dtype=float)
        if fx["set"] == "newer" and fx["family"] == "gaussian":
            bd = 2.0 * bd                      # 1.1.9+: log sigma; ours: log sigma^2
        blocks["beta.disp"] = bd
    theta_ref, pos, per = np.asarray(fx["theta"], dtype=float), 0, {}
    for t in _terms_in_formula_order(m.design):
        k = t.structure.n_theta if t.structure.keyword != "us" else t.p * (t.p + 1) // 2
        per[id(t)] = t.structure.from_glmmtmb(theta_ref[pos:pos + k])
        pos += k
    if cond.terms:
        blocks["theta.cond"] = np.concatenate([per[id(t)] for t in cond.terms])
    return m.layout.pack(blocks, base=m.x)


def _covariances(m, door) -> list:
    """Our varcorr terms in the formula's order."""
    by_term = dict(zip((id(t) for t in m.design.terms), m.varcorr.terms, strict=True))
    return [by_term[id(t)] for t in _terms_in_formula_order(m.design)]


def _se(m) -> np.ndarray:
    return np.asarray(m.se, dtype=float)


def _beta_far(est, ref_beta, scale) -> bool:
    return bool(np.any(np.abs(est - ref_beta) > COEF_RTOL * scale + 1e-12))


def _conditional_se(m, fx) -> np.ndarray:
    """sqrt diag of ``(X' V^{-1} X)^{-1}``, ``V = sum_t Z_t G_t Z_t' + sigma^2 I`` with
    glmmTMB's covariance matrices (per level, or over all levels for a known matrix
    spanning them) and residual sd."""
    design = m.design
    n = design.nobs
    V = fx["sigma"] ** 2 * np.eye(n)
    for t, vc in zip(_terms_in_formula_order(design), fx["varcorr"], strict=True):
        cov = np.asarray(vc["cov"], dtype=float)
        G = np.kron(np.eye(t.nlevels), cov) if cov.shape == (t.p, t.p) else cov
        Z = dense_Z(t, n)
        V += Z @ G @ Z.T
    X = design.X
    return np.sqrt(np.diag(np.linalg.inv(X.T @ np.linalg.solve(V, X))))


@pytest.mark.parametrize(("fid", "door"), CASES)
def test_structure_against_glmmtmb(fid, door):
    fx = load(fid)
    m = fit_fixture(fx, door)
    ref = fx["objective"]
    x_ref = None
    if door == "glmmtmb":
        x_ref = _reference_x(m, fx)
        assert m.objective_function(x_ref) == pytest.approx(ref, rel=LIKELIHOOD_RTOL)
    assert m.objective <= ref + OBJECTIVE_ATOL, (m.objective, ref)
    if m.objective < ref - SAME_OPTIMUM:
        return                     # glmmTMB stopped short of the optimum
    names = list(m.design.fixed.r_names)
    est = np.asarray(m.fixef if door == "glmmtmb" else m.beta, dtype=float)
    ref_beta = np.array([fx["beta"][n] for n in names])
    ref_se = np.array([fx["se"][n] for n in names]) if fx.get("se") else None
    scale = np.maximum(np.abs(ref_beta), ref_se if ref_se is not None else 0.0)
    if _beta_far(est, ref_beta, scale) and x_ref is not None and not fx["converged"]:
        # glmmTMB's point is not the optimum to this precision: one Newton step from it
        # must land on ours
        corrected = m.layout.get(newton_corrected(m, x_ref), "beta.cond")
        assert not _beta_far(est, corrected, scale), (est, ref_beta, corrected)
    else:
        np.testing.assert_array_less(np.abs(est - ref_beta), COEF_RTOL * scale + 1e-12)
    if ref_se is not None and fx["pdHess"]:
        expected = _conditional_se(m, fx) if door == "lmer" else ref_se
        np.testing.assert_allclose(_se(m), expected, rtol=SE_RTOL)
    # a variance near zero is flat in the likelihood: the slack is relative to the
    # model's largest variance
    scale = max(float(np.max(np.abs(np.asarray(vc["cov"], dtype=float))))
                for vc in fx["varcorr"])
    labels = set(m.cov_params().index.get_level_values("group"))
    groups_r = {vc["group"] for vc in fx["varcorr"]}
    for vterm, vc in zip(_covariances(m, door), fx["varcorr"], strict=True):
        if vterm.factor in groups_r:
            # glmmTMB's labels (a repeated factor numbered in formula order) name the same
            # terms in varcorr and cov_params (where our formula groups by glmmTMB's
            # factor: its spatial and known-matrix terms group by a dummy one)
            assert vterm.group == vc["group"] and vterm.group in labels, \
                (vterm.group, vc["group"])
        ours = vterm.cov
        cov = np.asarray(vc["cov"], dtype=float)
        assert ours.shape == cov.shape, (vc["group"], ours.shape, cov.shape)
        tol = COV_RTOL * max(scale, 1e-6)
        assert np.max(np.abs(ours - cov)) <= tol, (vc["group"], np.max(np.abs(ours - cov)))


def test_ar1sim_visible_reference():
    """visible.json's ar1sim_ar1: glmmTMB's ar1 with dispformula ~0 (the R-side AR(1)
    written as a G-side term): objective, coefficients and the AR(1) parameter."""
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "reference" / "visible.json").read_text())
    ref = ref["ar1sim_ar1"]
    d = mm.datasets.load("ar1sim")
    m = mm.glmmtmb("y ~ time + (1 | subject) + ar1(0 + factor(time) | subject)", d,
                   dispformula="~0")
    assert abs(m.objective - ref["objective"]) < 1e-4 or m.objective < ref["objective"]
    for name, value in ref["beta"].items():
        assert m.fixef[name.strip("()") if name == "(Intercept)" else name] == \
            pytest.approx(value, rel=1e-4)
    for name, value in ref["se"].items():
        assert m.se[name.strip("()") if name == "(Intercept)" else name] == \
            pytest.approx(value, rel=1e-3)
    pars = m.cov_params()
    label = ref["varcorr"][1]["group"]         # glmmTMB's: subject.1, the second term
    phi_ref = ref["varcorr"][1]["corr"][0][1]
    assert pars.loc[(label, "ar1", "phi"), "estimate"] == pytest.approx(phi_ref, rel=1e-3)
    sd_ref = ref["varcorr"][1]["sd"][0]
    assert pars.loc[(label, "ar1", "sd"), "estimate"] == pytest.approx(sd_ref, rel=1e-3)


#: glmmTMB's ``dispformula = ~0`` keeps a residual variance of 1.5e-8: its deviance is
#: above the exact R-side model's by about ``sigma^2 tr(V^{-1})`` (~1e-6 here).
DISP0_NUGGET_ATOL = 1e-5
#: Correlation and standard deviation of the two spellings (relative).
DISP0_PARAM_RTOL = 1e-4


@pytest.mark.parametrize("intercept", [True, False], ids=["lmer", "gls"])
def test_disp0_agrees_with_the_rside_model(intercept):
    """``ar1(0 + factor(time) | subject)`` with ``dispformula = ~0`` is nlme's AR(1)
    residual correlation (lmer's ``correlation=`` with a random intercept, gls
    without): the same deviance, fixed effects, phi and sd; and glmmTMB's standard errors
    conditional on the covariance parameters (``2 H_beta^{-1}``, from our Hessian of all
    parameters) are lmer's/gls's ``sigma^2 (X' V^{-1} X)^{-1}``."""
    fx = load("ar1_disp0")
    data = load_data(fx)
    re = "(1 | subject) + " if intercept else ""
    g = mm.glmmtmb(f"y ~ x + {re}ar1(0 + factor(time) | subject)", data, dispformula="~0")
    cor = mm.cor_ar1(form="~ time | subject")
    if intercept:
        r = mm.lmer("y ~ x + (1 | subject)", data, REML=False, correlation=cor)
    else:
        r = mm.gls("y ~ x", data, correlation=cor, method="ML")
    assert abs(g.objective - r.objective) < DISP0_NUGGET_ATOL
    beta_g, beta_r = np.asarray(g.fixef, float), np.asarray(r.fixef, float)
    se_r = np.asarray(r.se, float)
    np.testing.assert_array_less(np.abs(beta_g - beta_r), COEF_RTOL * np.abs(beta_r))
    label = "subject.1" if intercept else "subject"   # glmmTMB's: formula order
    pars = g.cov_params()
    assert pars.loc[(label, "ar1", "phi"), "estimate"] == pytest.approx(
        r.cor_params["phi"], rel=DISP0_PARAM_RTOL)
    assert pars.loc[(label, "ar1", "sd"), "estimate"] == pytest.approx(
        r.sigma, rel=DISP0_PARAM_RTOL)
    k = beta_g.size
    if not intercept:
        # nlme's gls scales its ML standard errors by sqrt(n / (n - p)), as REML's sigma
        n = g.design.nobs
        se_r = se_r * np.sqrt((n - k) / n)
    conditional = np.sqrt(np.diag(2.0 * np.linalg.inv(g.fit.hessian[:k, :k])))
    np.testing.assert_allclose(conditional, se_r, rtol=SE_RTOL)


PROFILES = json.loads((Path(__file__).parent / "fixtures" / "structures_profile" /
                       "profiles.json").read_text())
#: glmmTMB interpolates its profile with a spline through a few points: on ar1_pois its
#: lower end of phi (0.24550) sits 0.0299 deviance units beyond the cut, ours (0.24684) on
#: it; ends agree to this fraction of the interval's width.
PROFILE_END_RTOL = 5e-3
#: Our ends: the profiled deviance there, recomputed by an independent minimization
#: (Nelder-Mead over the other parameters), equals the cut to this (deviance units).
PROFILE_CUT_ATOL = 2e-3


@pytest.mark.parametrize("fid", [pytest.param(f, marks=[pytest.mark.slow] if f != "ar1_pois"
                                               else []) for f in sorted(PROFILES)])
def test_structure_profile_intervals(fid):
    """confint(method="profile") of covariance-structure parameters on the natural scale:
    glmmTMB's profile of its theta (tools/r/structures_profile_fixtures.R) mapped through
    each structure's parameters; and the profiled deviance at our ends."""
    from scipy import optimize, stats

    ref = PROFILES[fid]
    m = fit_fixture(load(fid), "glmmtmb")
    assert m.objective == pytest.approx(ref["objective"], abs=OBJECTIVE_ATOL)
    obj = m.objective_function
    (ts,) = obj.structure.terms
    s, sl = ts.term.structure, obj.theta_index(ts)
    labels = [f"{s.keyword}:{n}|{ts.term.group}" for n in s.parameter_names()]
    ci = m.confint(method="profile", parm=labels)
    theta_hat = m.x[sl]
    cut = stats.norm.ppf(0.975) ** 2
    for j, label in enumerate(labels):
        lo, hi, est = ci.loc[label].to_numpy()
        assert est == pytest.approx(s.parameters(theta_hat)[j], rel=1e-12)
        if ref["lower"][j] != "NA":           # glmmTMB's own profile failed (NaN)
            ends = []
            for v in (ref["lower"][j], ref["upper"][j]):
                th = s.to_glmmtmb(theta_hat)
                th[j] = v
                ends.append(s.parameters(s.from_glmmtmb(th))[j])
            ends = sorted(ends)
            tol = PROFILE_END_RTOL * (ends[1] - ends[0])
            assert abs(lo - ends[0]) < tol and abs(hi - ends[1]) < tol, (label, lo, hi, ends)
        # independent check of our ends on theta's scale: the natural map is monotone
        k = sl.start + j
        others = [i for i in m.layout.free_index if i != k]
        for end in (lo, hi):
            vals = s.parameters(theta_hat)
            vals[j] = end
            x = m.x.copy()
            x[k] = s.theta_from_parameters(vals)[j]

            def f(z, x=x, others=others):
                xx = x.copy()
                xx[others] = z
                return obj(xx)

            r = optimize.minimize(f, m.x[others], method="Nelder-Mead",
                                  options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
            rise = r.fun - m.objective
            if end == 0.0 and label.split(":")[1].startswith("sd"):
                # the interval ends at the boundary (a zero sd) before the deviance has
                # risen by the cut: the rise there may only be below it
                assert rise < cut + PROFILE_CUT_ATOL, (label, end, r.fun)
            else:
                assert abs(rise - cut) < PROFILE_CUT_ATOL, (label, end, r.fun)

"""Every G-side covariance structure against glmmTMB (tests/fixtures/structures, made by
tools/r/structures_fixtures.R with glmmTMB 1.1.5, and 1.1.14 for the structures 1.1.5
lacks), in glmmtmb and -- where the fixture's model is an LMM or a binomial/Poisson GLMM --
in lmer and glmer.

Checks, per fixture and front door:

1. glmmtmb: our objective at glmmTMB's own estimates equals glmmTMB's objective
   (``LIKELIHOOD_RTOL``): the same likelihood, structure by structure (glmmTMB's theta
   converted by each structure's ``from_glmmtmb``).
2. Our optimum is within ``OBJECTIVE_ATOL`` of glmmTMB's, or lower.
3. Fixed effects within ``COEF_RTOL`` of ``max(|estimate|, SE)``, standard errors within
   ``SE_RTOL`` (glmmtmb; glmer; lmer for REML fits, where glmmTMB's standard errors are
   lmer's, conditional on the covariance parameters), the covariance matrices of every
   term within ``COV_RTOL`` of the largest entry -- unless our optimum is lower by more
   than ``SAME_OPTIMUM``: glmmTMB then stopped short and its estimates are not the
   optimum's to this precision.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from structures_fixtures import ids, known_matrices, load, load_data

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


def _fit(fx, door):
    data = load_data(fx)
    kw = {"covariance_matrices": known_matrices()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if door == "glmmtmb":
            return mm.glmmtmb(fx["formula"], data, family=fx["family"], REML=fx["REML"],
                              dispformula=fx["dispformula"], **kw)
        if door == "lmer":
            return mm.lmer(fx["formula"], data, REML=fx["REML"], **kw)
        return mm.glmer(fx["formula"], data, family=fx["family"], **kw)


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


def _covariances(m, door) -> list[np.ndarray]:
    """Covariance matrices of our terms in the formula's order."""
    by_term = dict(zip((id(t) for t in m.design.terms), m.varcorr.terms, strict=True))
    return [by_term[id(t)].cov for t in _terms_in_formula_order(m.design)]


def _se(m) -> np.ndarray:
    return np.asarray(m.se, dtype=float)


@pytest.mark.parametrize(("fid", "door"), CASES)
def test_structure_against_glmmtmb(fid, door):
    fx = load(fid)
    m = _fit(fx, door)
    ref = fx["objective"]
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
    np.testing.assert_array_less(np.abs(est - ref_beta), COEF_RTOL * scale + 1e-12)
    if ref_se is not None and fx["pdHess"] and (door != "lmer" or fx["REML"]):
        np.testing.assert_allclose(_se(m), ref_se, rtol=SE_RTOL)
    # a variance near zero is flat in the likelihood: the slack is relative to the
    # model's largest variance
    scale = max(float(np.max(np.abs(np.asarray(vc["cov"], dtype=float))))
                for vc in fx["varcorr"])
    for ours, vc in zip(_covariances(m, door), fx["varcorr"], strict=True):
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
    ar1 = next(t for t in m.design.terms if t.structure.keyword == "ar1")
    pars = m.cov_params()
    phi_ref = ref["varcorr"][1]["corr"][0][1]
    assert pars.loc[(ar1.group, "ar1", "phi"), "estimate"] == pytest.approx(phi_ref,
                                                                           rel=1e-3)
    sd_ref = ref["varcorr"][1]["sd"][0]
    assert pars.loc[(ar1.group, "ar1", "sd"), "estimate"] == pytest.approx(sd_ref, rel=1e-3)

"""PIRLS, the Laplace approximation, nAGQ = 0 and adaptive quadrature against dense oracles.

The oracle below is written from the model's definition only: a dense Z, log densities from
scipy.stats, derivatives of -log p(y_i | eta_i) by central differences, Newton's method on the
penalized deviance, the log-determinant from numpy's slogdet, and per-group integrals by
scipy.integrate.quad. It shares no code with mixedmodels' families or PIRLS.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

import mixedmodels as mm
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.objective.pirls import PIRLSError

#: Agreement of the Laplace / quadrature deviance with the oracle (the oracle's numerical
#: derivatives limit it, not mixedmodels).
ORACLE_RTOL = 1e-7
#: Agreement of the conditional modes.
MODE_ATOL = 1e-6
FD_H1, FD_H2 = 1e-5, 1e-4


# -- the oracle -------------------------------------------------------------------------------
def _logp(family, link, y, eta, w, phi, nb_k=None):
    """log p(y_i | eta_i) from scipy.stats (prior weights as mixedmodels documents)."""
    inv = {"logit": lambda e: 1 / (1 + np.exp(-e)), "probit": stats.norm.cdf,
           "cloglog": lambda e: 1 - np.exp(-np.exp(e)), "log": np.exp,
           "identity": lambda e: e, "sqrt": lambda e: e * e, "inverse": lambda e: 1 / e}[link]
    mu = inv(eta)
    if family == "binomial":
        return stats.binom.logpmf(np.round(w * y), w, mu)
    if family == "poisson":
        return w * stats.poisson.logpmf(y, mu)
    if family == "nb":
        return w * stats.nbinom.logpmf(y, nb_k, nb_k / (nb_k + mu))
    if family == "Gamma":
        a = w / phi
        return stats.gamma.logpdf(y, a, scale=mu / a)
    if family == "inverse_gaussian":
        lam = w / phi
        return stats.invgauss.logpdf(y, mu / lam, scale=lam)
    if family == "gaussian":
        return stats.norm.logpdf(y, mu, np.sqrt(phi / w))
    raise AssertionError(family)


class Oracle:
    """Dense Laplace / AGQ of a design, b = sqrt(phi) Lambda u, u ~ N(0, I)."""

    def __init__(self, design, family, link, prior, nb_k=None, fisher=None):
        self.d, self.family, self.link, self.w, self.nb_k = design, family, link, prior, nb_k
        self.fisher = fisher     # callable(eta) -> Fisher weights (non-canonical links)
        n, q = design.nobs, design.q
        Z = np.zeros((n, q))
        off = 0
        for t in design.terms:
            for j in range(t.p):
                Z[np.arange(n), off + t.grouping.codes * t.p + j] = t.Z[:, j]
            off += t.q
        self.Z = Z

    def lam(self, theta):
        blocks, pos = [], 0
        for t in self.d.terms:
            k = t.structure.n_theta
            blocks.append(np.kron(np.eye(t.nlevels), t.structure.lambda_(theta[pos:pos + k])))
            pos += k
        out = np.zeros((self.d.q, self.d.q))
        i = 0
        for b in blocks:
            out[i:i + b.shape[0], i:i + b.shape[0]] = b
            i += b.shape[0]
        return out

    def m2lp(self, eta, phi):
        return -2 * _logp(self.family, self.link, self.d.y, eta, self.w, phi, self.nb_k)

    def derivs(self, eta, phi):
        f = lambda e: self.m2lp(e, phi) / 2  # noqa: E731
        d1 = (f(eta + FD_H1) - f(eta - FD_H1)) / (2 * FD_H1)
        d2 = (f(eta + FD_H2) - 2 * f(eta) + f(eta - FD_H2)) / FD_H2**2
        return d1, d2

    def mode(self, theta, beta, phi=1.0, joint=False):
        """The exact mode of f(u[, beta]) = sum -2 log p + |u|^2 by scipy's trust-region
        Newton method (gradient and Hessian from the per-observation derivatives; it copes
        with the indefinite Hessians of non-log-concave densities away from the mode)."""
        X, off = self.d.X, self.d.offset
        A = self.Z @ self.lam(theta) * np.sqrt(phi)
        M = np.hstack([A, X]) if joint else A
        q = A.shape[1]
        base = off if joint else off + X @ beta
        pen = np.r_[np.ones(q), np.zeros(M.shape[1] - q)]

        def fun(v):
            return 0.5 * np.sum(self.m2lp(base + M @ v, phi)) + 0.5 * np.sum(pen * v * v)

        def jac(v):
            return M.T @ self.derivs(base + M @ v, phi)[0] + pen * v

        def hess(v):
            d2 = self.derivs(base + M @ v, phi)[1]
            return M.T @ (d2[:, None] * M) + np.diag(pen)

        v0 = np.zeros(M.shape[1])
        if joint:
            v0[q:] = beta
        res = optimize.minimize(fun, v0, jac=jac, hess=hess, method="trust-exact",
                                options={"gtol": 1e-10, "maxiter": 500})
        return res.x, base + M @ res.x

    def laplace(self, theta, beta, phi=1.0, hessian="observed", joint=False):
        v, eta = self.mode(theta, beta, phi, joint)
        q = self.d.q
        u = v[:q]
        A = self.Z @ self.lam(theta) * np.sqrt(phi)
        d2 = self.derivs(eta, phi)[1] if hessian == "observed" else self.fisher(eta) / phi
        H = A.T @ (d2[:, None] * A) + np.eye(q)
        return float(np.sum(self.m2lp(eta, phi)) + u @ u + np.linalg.slogdet(H)[1]), u

    def agq_exact(self, theta, beta, phi=1.0):
        """-2 log of the exact marginal likelihood, one quad() per level (scalar term)."""
        t = self.d.terms[0]
        sd = float(t.structure.lambda_(theta)[0, 0]) * np.sqrt(phi)
        eta0 = self.d.X @ beta + self.d.offset
        total = 0.0
        for j in range(t.nlevels):
            rows = t.grouping.codes == j
            z = t.Z[rows, 0]

            def logint(b, rows=rows, z=z):
                eta = eta0.copy()
                eta[rows] += z * b
                return -0.5 * np.sum(self.m2lp(eta, phi)[rows]) + stats.norm.logpdf(b, 0, sd)

            bmax = optimize.minimize_scalar(lambda b: -logint(b)).x
            top = logint(bmax)
            val, _ = integrate.quad(lambda b, top=top: np.exp(logint(b) - top),
                                    bmax - 12 * sd, bmax + 12 * sd, epsabs=0, epsrel=1e-11,
                                    limit=200)
            total += -2 * (np.log(val) + top)
        return total


# -- cases ------------------------------------------------------------------------------------
def _cbpp():
    return mm.datasets.load("cbpp")


def _verbagg_subset():
    d = mm.datasets.load("VerbAgg")
    keep = d["id"].cat.codes < 16          # 16 subjects x 24 items, crossed
    return d.loc[keep].reset_index(drop=True)


def _first_levels(name, factor, k):
    d = mm.datasets.load(name)
    return d.loc[d[factor].cat.codes < k].reset_index(drop=True)


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CASES = {
    "cbpp_logit": (_cbpp, CBPP, ("binomial", "logit"), "binomial", [0.64, -1.4, -0.99, -1.13,
                                                                     -1.58]),
    "cbpp_probit": (_cbpp, CBPP, ("binomial", "probit"), "binomial",
                    [0.35, -0.82, -0.52, -0.6, -0.8]),
    "cbpp_cloglog": (_cbpp, CBPP, ("binomial", "cloglog"), "binomial",
                     [0.6, -1.5, -0.9, -1.0, -1.4]),
    "cbpp_poisson_offset": (_cbpp, "incidence ~ period + offset(log(size)) + (1 | herd)",
                            ("poisson", "log"), "poisson", [0.6, -1.5, -1.0, -1.2, -1.7]),
    "verbagg_crossed": (_verbagg_subset, "r2 ~ Anger + Gender + btype + (1|id) + (1|item)",
                        ("binomial", "logit"), "binomial",
                        [1.2, 0.5, 0.2, 0.05, 0.3, -1.0, -2.0]),
    "contraception_slope": (lambda: _first_levels("Contraception", "district", 15),
                            "use ~ age + urban + (1 + urban | district)",
                            ("binomial", "logit"), "binomial",
                            [0.6, -0.4, 0.5, -0.7, 0.0, 0.7]),
    "grouse_nb": (lambda: _first_levels("grouseticks", "LOCATION", 25),
                  "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", ("nb", "log"), "nb",
                  [0.9, 0.6, 1.1, -1.1, -0.024]),
}


def _setup(key):
    load, formula, (fam_name, link), kind, x = CASES[key]
    data = load()
    fam = mm.families.NegativeBinomial(2.0) if fam_name == "nb" else make_family(fam_name, link)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = glmm_design(formula, data, fam)
    obj = GLMMObjective(design, fam, 1)
    prior = obj.pirls.prior

    def fisher(eta):
        mu = fam.link.linkinv(eta)
        return prior * fam.link.mu_eta(eta) ** 2 / fam.variance(mu)

    oracle = Oracle(design, kind, link, prior, nb_k=2.0 if fam_name == "nb" else None,
                    fisher=fisher)
    return obj, oracle, np.asarray(x, dtype=float), design


@pytest.mark.parametrize("key", sorted(CASES))
def test_laplace_and_modes_match_dense_oracle(key):
    obj, oracle, x, design = _setup(key)
    k = design.n_theta
    for shift in (0.0, 0.05):
        xs = x + shift
        # lme4's Laplace uses the Fisher weights for these families
        expected, u_or = oracle.laplace(xs[:k], xs[k:], hessian="fisher")
        assert obj(xs) == pytest.approx(expected, rel=ORACLE_RTOL)
        sol = obj.solve(xs)
        np.testing.assert_allclose(sol.u, u_or, atol=MODE_ATOL)


@pytest.mark.parametrize("key", ["cbpp_logit", "cbpp_probit", "verbagg_crossed"])
def test_nagq0_criterion_matches_joint_oracle(key):
    obj, oracle, x, design = _setup(key)
    k = design.n_theta
    expected, _ = oracle.laplace(x[:k], x[k:], hessian="fisher", joint=True)
    assert obj.stage0(x[:k]) == pytest.approx(expected, rel=ORACLE_RTOL)
    sol = obj.solve0(x[:k])
    v, _ = oracle.mode(x[:k], x[k:], joint=True)
    np.testing.assert_allclose(sol.beta, v[design.q:], atol=MODE_ATOL)


@pytest.mark.parametrize("key", ["cbpp_logit", "cbpp_probit", "cbpp_poisson_offset"])
def test_adaptive_quadrature_converges_to_the_exact_integral(key):
    _, oracle, x, design = _setup(key)
    fam = make_family(CASES[key][2][0], CASES[key][2][1])
    exact = oracle.agq_exact(x[:1], x[1:])
    laplace = GLMMObjective(design, fam, 1)(x)
    assert GLMMObjective(design, fam, 25)(x) == pytest.approx(exact, rel=1e-8)
    # more nodes, closer to the integral; one node is exactly the Laplace approximation
    errs = [abs(GLMMObjective(design, fam, n)(x) - exact) for n in (2, 5, 11)]
    assert errs[0] > errs[1] > errs[2]
    assert GLMMObjective(design, fam, 1)(x) == laplace


#: Half-width (in log phi) of the bracket the oracle's profiled minimum is located in.
PHI_BRACKET = 2e-3


@pytest.mark.parametrize(("family", "x"), [
    ("Gamma", [0.84, 0.5, 1.12]), ("inverse_gaussian", [0.8, 0.45, 1.1]),
    ("gaussian", [0.15, 0.5, 1.1])])
def test_dispersion_is_profiled_exactly(family, x):
    """Dispersion families: the objective at (theta, beta) equals the oracle's Laplace
    deviance minimized over phi, with glmmTMB's observed-information Hessian (log link:
    not canonical for any of them)."""
    data = mm.datasets.load("gammasim")
    data = data.loc[data["g"].cat.codes < 20].reset_index(drop=True)
    fam = make_family(family, "log")
    design = glmm_design("y ~ x + (1 | g)", data, fam)
    obj = GLMMObjective(design, fam, 1)
    oracle = Oracle(design, family, "log", obj.pirls.prior)
    x = np.asarray(x)
    def deviance(t):
        return oracle.laplace(x[:1], x[1:], np.exp(t))[0]

    best = optimize.minimize_scalar(deviance, bounds=(-4, 2), method="bounded",
                                    options={"xatol": 1e-9})
    assert obj(x) == pytest.approx(best.fun, rel=ORACLE_RTOL)
    # The oracle's deviance carries rounding noise of ~1e-12 relative, which on its flat
    # minimum moves the pointwise minimizer by up to ~1e-5 in log(phi) (gaussian: 1.1e-5);
    # the vertex of a least-squares parabola over a wider bracket averages the noise out.
    t = best.x + np.linspace(-PHI_BRACKET, PHI_BRACKET, 21)
    c2, c1, _ = np.polyfit(t - best.x, [deviance(ti) for ti in t], 2)
    assert obj.solve(x).phi == pytest.approx(np.exp(best.x - c1 / (2 * c2)), rel=1e-5)


def test_gamma_quadrature_with_dispersion_parameter():
    data = mm.datasets.load("gammasim")
    data = data.loc[data["g"].cat.codes < 10].reset_index(drop=True)
    fam = make_family("Gamma", "log")
    design = glmm_design("y ~ x + (1 | g)", data, fam)
    oracle = Oracle(design, "Gamma", "log", np.ones(design.nobs))
    obj = GLMMObjective(design, fam, 15)
    phi = 0.33
    x = np.array([0.84, 0.5, 1.12, np.log(phi)])
    assert obj(x) == pytest.approx(oracle.agq_exact(x[:1], x[1:3], phi), rel=1e-8)


def test_prediction_of_the_modes_changes_only_the_iteration_count():
    obj, _, x, design = _setup("verbagg_crossed")
    k = design.n_theta
    pr = obj.pirls
    pr.fit(x[:k], x[k:])
    x2 = x + 1e-3
    pr.predict = False
    r_plain = pr.fit(x2[:k], x2[k:], u0=obj.pirls.u_start)
    pr.predict = True
    pr.fit(x[:k], x[k:])
    r_pred = pr.fit(x2[:k], x2[k:])
    np.testing.assert_allclose(r_pred.u, r_plain.u, atol=1e-9)
    assert r_pred.logdet == pytest.approx(r_plain.logdet, rel=1e-11)
    assert r_pred.n_iter < r_plain.n_iter


def test_step_halving_failure_says_what_to_try():
    """The GLMM FAQ's case: a log link for a binomial response whose fitted probabilities
    want to exceed 1."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 10)
    x = rng.uniform(0, 1, 200)
    p = np.clip(0.5 + 0.5 * x + 0.2 * rng.standard_normal(20)[g], 0.01, 0.999)
    d = pd.DataFrame({"y": rng.binomial(1, p), "x": x, "g": g.astype(str)})
    with pytest.raises(PIRLSError, match=r"step-halvings failed.*'logit' link, which "
                                         r"constrains the mean"):
        mm.glmer("y ~ x + (1 | g)", d, family="binomial", link="log")


def test_log_link_binomial_inside_the_range_fits():
    # cbpp's incidences are far from 1: the log link works and PIRLS keeps mu < 1
    m = mm.glmer(CBPP, _cbpp(), family="binomial", link="log")
    assert np.max(m.fitted()) < 1
    assert np.isfinite(m.objective)


@pytest.mark.parametrize("formula", [
    "use ~ age + urban + (1 + urban | district) + (1 | livch)",
    "use ~ age + (1 | district) + (1 | district:urban) + (1 | livch)",
    "use ~ age + (1 | woman) + (1 | district)",
])
def test_factorization_paths_agree(formula, monkeypatch):
    """The dense and pattern forms of L21 (objective.pirls_system) and linalg's
    BlockedSystem give the same deviances."""
    import mixedmodels.objective.pirls_system as ps

    data = mm.datasets.load("Contraception")
    fam = make_family("binomial")
    design = glmm_design(formula, data, fam)
    x = np.r_[design.theta0() * 0.7, -0.5, np.zeros(design.p - 1)]
    values = []
    for choice in (True, False, "blocked"):
        monkeypatch.setattr(ps, "dense_is_cheaper", lambda *a, c=choice: c is True)
        obj = GLMMObjective(design, fam, 1)
        if choice == "blocked":
            obj.pirls.psystem.mode = "blocked"
        values.append((obj(x), obj.stage0(design.theta0() * 0.7)))
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=1e-11)

r"""``glm``: generalized linear models without random effects (R's ``glm``), fitted by
iteratively reweighted least squares.

It is the null model of likelihood-ratio tests of the random effects of a GLMM
(``mm.anova(gm, g0)``) and of parametric-bootstrap comparisons, so it offers ``loglik``,
``df``, ``nobs``, ``design``, ``family``, ``simulate`` and ``refit``.

IRLS (R's ``glm.fit``): with working response ``z = eta - offset + (y - mu) / mu'(eta)`` and
weights ``w = w_prior mu'(eta)^2 / V(mu)``, ``beta`` solves the weighted least-squares problem
of ``z`` on ``X``, until the deviance changes by less than ``GLM_EPS (|dev| + 0.1)``; a step
that leaves the family's parameter space is halved.

The log-likelihood is ``-(sum of deviance residuals / phi + sum of saturated terms) / 2``, the
same definition as the GLMM deviance, so GLM and GLMM likelihoods are comparable. For
families with a dispersion parameter ``phi`` is its maximum-likelihood value given the means
(for the Gaussian ``RSS / n``, as R; for the Gamma R's ``logLik`` uses the approximation
``deviance / n`` instead) and counts as a parameter; ``vcov`` uses the Pearson estimate of
``phi``, as ``summary.glm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import ConvergenceWarning, DataError, FormulaError
from .._messages import user_stacklevel
from ..results.fit_stats import FitStatsMixin
from ..results.recipe import FitRecipe, RecipeMixin

__all__ = ["GeneralizedLinearModelResult", "fit_glm", "glm"]

#: R's ``glm.control(epsilon = 1e-8, maxit = 25)``.
GLM_EPS = 1e-8
GLM_MAXIT = 25
#: Step halvings tried before giving up on a step (R: until the deviance is finite).
MAX_HALVINGS = 30


@dataclass(frozen=True, eq=False)
class GeneralizedLinearModelResult(FitStatsMixin, RecipeMixin):
    """A fitted GLM (what :func:`glm` returns).

    Attributes
    ----------
    design : Design
    family : Family
    beta : ndarray (p,)
    eta, mu : ndarray (n,)
        Linear predictor (offset included) and means.
    RX_inv : ndarray (p, p)
        ``(X' W X)^{-1} = RX_inv RX_inv'`` at convergence (IRLS weights).
    iterations : int
    converged : bool
    recipe : FitRecipe or None
        ``glm`` and its arguments (for :meth:`update`).
    """

    design: object
    family: object
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    RX_inv: np.ndarray
    iterations: int
    converged: bool
    recipe: FitRecipe | None = field(default=None, repr=False)

    reml = False

    @property
    def theta(self) -> np.ndarray:
        """No random effects: an empty theta (lets generic inference code treat fits alike)."""
        return np.zeros(0)

    @property
    def prior(self) -> np.ndarray:
        """Prior weights per row (binomial: the numbers of trials; 1 without weights)."""
        from ..objective.pirls import prior_weights

        return prior_weights(self.design)

    @cached_property
    def deviance_residual_sum(self) -> float:
        """R's ``deviance(glm)``: the sum of (prior-weighted) deviance residuals."""
        return float(np.sum(self.family.dev_resids(self.design.y, self.mu, self.prior)))

    @cached_property
    def phi(self) -> float:
        """Maximum-likelihood dispersion (1 for families without one)."""
        if not self.family.has_dispersion:
            return 1.0
        return float(self.family.profile_dispersion(self.design.y, self.prior,
                                                    self.deviance_residual_sum))

    @property
    def df(self) -> int:
        """Number of parameters: the coefficients, plus the dispersion when the family has
        one (as R's ``logLik(glm)``)."""
        return self.design.p + int(self.family.has_dispersion)

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom ``n - p``, as R's ``df.residual(glm)``."""
        return self.nobs - self.design.p

    @cached_property
    def loglik(self) -> float:
        """Log-likelihood at the estimates, ``-(sum of deviance residuals / phi + saturated
        terms) / 2`` (comparable with a GLMM's ``loglik``)."""
        return -0.5 * self.family.minus2_loglik(self.design.y, self.mu, self.prior, self.phi)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the column of lme4's ``anova``); R's ``deviance(glm)`` is
        :attr:`deviance_residual_sum`."""
        return -2.0 * self.loglik

    @property
    def objective(self) -> float:
        """The deviance ``-2 log L`` (compared with a GLMM's ``objective`` by ``anova``)."""
        return self.deviance

    @property
    def sigma(self) -> float:
        """``sqrt(phi)``: the residual standard deviation for the Gaussian family, 1 for
        families without a dispersion parameter."""
        return float(np.sqrt(self.phi))

    def _vcov_matrix(self) -> np.ndarray:
        scale = 1.0
        if self.family.has_dispersion:
            pearson = (self.design.y - self.mu) ** 2 * self.prior / self.family.variance(self.mu)
            scale = float(np.sum(pearson) / (self.nobs - self.design.p))
        return scale * self.RX_inv @ self.RX_inv.T

    def coef_table(self) -> pd.DataFrame:
        """Wald tests of the coefficients, as R's ``summary.glm``.

        Returns
        -------
        pandas.DataFrame
            ``Estimate``, ``Std. Error``, ``z value``, ``Pr(>|z|)`` (normal reference); for
            families with a dispersion parameter ``t value`` and ``Pr(>|t|)`` on ``n - p``
            degrees of freedom instead.
        """
        est, se = self.fixef, self.se
        stat = est / se
        if self.family.has_dispersion:
            p = 2.0 * stats.t.sf(np.abs(stat), self.nobs - self.design.p)
            return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": stat,
                                 "Pr(>|t|)": p})
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": stat,
                             "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(stat))})

    def simulate(self, nsim: int = 1, seed=None, re_form=None) -> pd.DataFrame:
        """Responses drawn from the fitted family at the fitted means.

        Parameters
        ----------
        nsim : int
            Number of simulated responses.
        seed : int or numpy.random.SeedSequence, optional
            Seed of the per-replicate random streams (replicate ``i`` does not depend on
            ``nsim``); None draws fresh entropy.
        re_form : None
            Accepted for the mixed-model signature; a GLM has no random effects.

        Returns
        -------
        pandas.DataFrame
            Columns ``sim_1 ... sim_nsim`` (binomial: proportions of the trials).
        """
        from .simulate import simulate_family, simulate_frame

        del re_form
        return simulate_frame(self, nsim, seed, lambda rng: simulate_family(
            self.family, self.mu, self.design, self.phi, rng))

    def refit(self, y) -> GeneralizedLinearModelResult:
        """The same model (rows, model matrix, family, weights) fitted to a new response.

        Parameters
        ----------
        y : array-like (n,)
            New response on the scale :meth:`simulate` returns.

        Returns
        -------
        GeneralizedLinearModelResult
        """
        return self._require_recipe().fit_design(
            self.design.with_response(np.asarray(y, dtype=float)))

    def __repr__(self) -> str:
        return (f"<GeneralizedLinearModelResult {self.design.spec.formula!r} "
                f"({self.family.label()}), nobs={self.nobs}, logLik={self.loglik:.4f}>")

    def _repr_html_(self) -> str:
        import html

        from .format import frame_cells

        return (f"<p>{html.escape(repr(self))}</p>"
                + frame_cells(self.coef_table(), digits=4, title="Coefficients").to_html())


def _wls(X, z, w):
    sw = np.sqrt(w)
    Q, R = np.linalg.qr(X * sw[:, None])
    beta = np.linalg.solve(R, Q.T @ (z * sw))
    return beta, R


def fit_glm(design, family) -> GeneralizedLinearModelResult:
    """IRLS fit of a materialized design (see the module docstring)."""
    import warnings

    from ..objective.pirls import prior_weights

    X, y, off = design.X, design.y, design.offset
    prior = prior_weights(design)
    link = family.link
    mu = family.mustart(y, prior)
    eta = link.link(mu)
    dev = np.inf
    devfun = family.deviance_function(y, prior)
    converged, iterations = False, 0
    beta = np.zeros(design.p)
    while iterations < GLM_MAXIT:
        iterations += 1
        me = link.mu_eta(eta)
        z = eta - off + (y - mu) / me
        w = prior * me * me / family.variance(mu)
        new_beta, _ = _wls(X, z, w)
        step = new_beta - beta if np.isfinite(dev) else None
        for _ in range(MAX_HALVINGS):
            cand = new_beta if step is None else beta + step
            eta_c = X @ cand + off
            mu_c = link.linkinv(eta_c)
            dev_c = devfun(mu_c) if family.valid_mu(mu_c) else np.inf
            if np.isfinite(dev_c):
                break
            if step is None:
                raise DataError("the GLM's first IRLS step left the family's range; "
                                "check the response and the link")
            step = step / 2.0
        old = dev
        beta, eta, mu, dev = cand, eta_c, mu_c, dev_c
        if np.isfinite(old) and abs(dev - old) / (abs(dev) + 0.1) < GLM_EPS:
            converged = True
            break
    if not converged:
        warnings.warn(f"glm did not converge in {GLM_MAXIT} IRLS iterations",
                      ConvergenceWarning, stacklevel=user_stacklevel())
    me = link.mu_eta(eta)
    _, R = _wls(X, np.zeros_like(y), prior * me * me / family.variance(mu))
    return GeneralizedLinearModelResult(
        design, family, beta, eta, mu, np.linalg.inv(R), iterations, converged,
        recipe=FitRecipe.make(None, design.spec.formula, None, {}, fit_glm,
                              {"family": family}))


def glm(formula: str, data: pd.DataFrame, family="binomial", *, link: str | None = None,
        weights=None, offset=None, contrasts: dict | None = None) -> GeneralizedLinearModelResult:
    """Fit a generalized linear model without random effects (R's ``glm``).

    Parameters
    ----------
    formula : str
        ``"response ~ terms"``; the response forms of :func:`~mixedmodels.glmer`
        (``cbind(successes, failures)``, 0/1, booleans, two-level factors, proportions with
        ``weights=``). Random-effects terms are refused.
    data : pandas.DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"gaussian"``, ... as for ``glmer``.
    link : str, optional
        Overrides the family's default link.
    weights, offset : str or array-like, optional
        Prior weights (binomial proportions: the numbers of trials) and offset, as for
        ``glmer``.
    contrasts : dict, optional
        Contrasts of categorical predictors by column, as in :func:`mixedmodels.lmer`.

    Returns
    -------
    GeneralizedLinearModelResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> g0 = mm.glm("cbind(incidence, size - incidence) ~ period", mm.datasets.load("cbpp"))
    >>> round(g0.loglik, 3)
    -99.029
    """
    from ..design import materialize
    from ..design.lhs import make_response, response_variables
    from ..families import make_family
    from ..formula import parse_formula
    from ..objective.pirls import prior_weights

    fam = make_family(family, link)
    spec = parse_formula(formula)
    if spec.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms; fit it with mm.glmer(), or drop "
            "the (... | group) terms for a generalized linear model")
    design = materialize(spec, data, weights=weights, offset=offset,
                         response=make_response(fam),
                         response_vars=response_variables(spec.response), require_random=False,
                         contrasts=contrasts)
    fam.check_response(design.y, prior_weights(design), repr(spec.response))
    if design.p >= design.nobs:
        raise DataError(f"{design.p} coefficients for {design.nobs} observations: too few "
                        "observations")
    recipe = FitRecipe.make(glm, formula, data, {"family": family, "link": link,
                                                 "weights": weights, "offset": offset},
                            fit_glm, {"family": fam})
    return fit_glm(design, fam).with_recipe(recipe)

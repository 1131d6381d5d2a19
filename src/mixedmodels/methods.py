"""Inference methods of a fitted model (likelihood-ratio tests, intervals, df methods).

The facade above results/ and inference/ (the layering rule: results/ imports neither
inference/ nor fitting/): the result classes inherit this mixin, whose methods import
:mod:`mixedmodels.inference` when called, so the inference code can grow without touching
the results.
Every method delegates to :mod:`mixedmodels.inference`; the expensive pieces (the deviance
Hessian of Satterthwaite's method, the Kenward-Roger matrices) are computed once per fit.
"""

from __future__ import annotations

from functools import cached_property

import pandas as pd

__all__ = ["InferenceMixin", "containment_df_columns", "profile_laplace_confint",
           "residual_model_intervals"]


def profile_laplace_confint(m, level, parm):
    """Profile intervals of a fit of glmmTMB's class (the facade's door to
    :func:`mixedmodels.inference.profile_laplace.profile_confint`).

    Parameters
    ----------
    m : GlmmTMBResult
    level : float
    parm : sequence of str or None

    Returns
    -------
    DataFrame
    """
    from .inference.profile_laplace import profile_confint

    return profile_confint(m, level, parm)


def residual_model_intervals(m, level: float):
    """nlme's ``intervals()`` of a fit with a residual structure (the facade's door to
    :func:`mixedmodels.inference.rside_intervals.intervals`).

    Parameters
    ----------
    m : GLSResult or RSideLMMResult
    level : float

    Returns
    -------
    dict of str -> DataFrame
    """
    from .inference.rside_intervals import intervals

    return intervals(m, level)


def containment_df_columns(design):
    """nlme's containment denominator df of each fixed effect (the facade's door to
    :func:`mixedmodels.inference.containment.containment_df`).

    Parameters
    ----------
    design : Design

    Returns
    -------
    ndarray
    """
    from .inference.containment import containment_df

    return containment_df(design).columns


class InferenceMixin:
    """Tests, intervals, simulation and refitting for a fitted mixed model."""

    # -- cached machinery ---------------------------------------------------------------
    @cached_property
    def _satterthwaite(self):
        from .inference.satterthwaite import satterthwaite_state

        return satterthwaite_state(self)

    @cached_property
    def _kenward_roger(self):
        if getattr(self, "family", None) is not None:
            from .inference.kenward_roger_glmm import glmm_kenward_roger_state

            return glmm_kenward_roger_state(self)
        from .inference.kenward_roger import kenward_roger_state

        return kenward_roger_state(self)

    @cached_property
    def _containment(self):
        from .inference.containment import containment_df

        return containment_df(self.design)

    # -- tests of fixed effects -----------------------------------------------------------
    def coef_table(self, ddf="auto") -> pd.DataFrame:
        """Fixed-effects table with t tests: Estimate, Std. Error, df, t value, Pr(>|t|).

        Parameters
        ----------
        ddf : {"auto", "satterthwaite", "kenward-roger", "containment", None}
            Denominator degrees of freedom: Satterthwaite's (lmerTest's default),
            Kenward-Roger's (which also adjusts the standard errors; REML fits only), the
            inner-outer containment rule of ``nlme::lme`` (nested grouping factors), or
            None for lme4's table without df and p-values. ``"auto"``: Satterthwaite for
            linear mixed models; z tests (Pr(>|z|)) for GLMMs, as glmer's summary.

        Returns
        -------
        pandas.DataFrame
            One row per fixed effect; ``Estimate``, ``Std. Error``, ``df``, ``t value``,
            ``Pr(>|t|)`` (lmerTest's columns; without ``df`` and the p-value for
            ``ddf=None``; ``z value``, ``Pr(>|z|)`` for GLMMs).
        """
        from .inference.fixed_tests import coef_table

        return coef_table(self, ddf)

    def anova_table(self, type=None, ddf="auto", test="auto") -> pd.DataFrame:
        """Tests of the fixed-effect terms: F tests (lmerTest's ``anova``) or Wald
        chi-square tests (``car::Anova``).

        Parameters
        ----------
        type : {None, 3, 2, 1}
            Type III (SAS's), type II (marginality respected) or type I (sequential, F
            tests only) hypotheses. None: 3 for F tests (lmerTest's default), 2 for Wald
            tests (car's default).
        ddf : {"auto", "satterthwaite", "kenward-roger", "containment"}
            Denominator df of the F tests. ``"auto"`` is Satterthwaite's for linear mixed
            models; GLMMs have Kenward-Roger's on their working model
            (:mod:`mixedmodels.inference.kenward_roger_glmm`).
        test : {"auto", "F", "wald"}
            ``"auto"``: F tests for linear mixed models and for GLMMs given
            ``ddf="kenward-roger"``, else Wald chi-square tests (car's default for
            GLMMs). ``"wald"`` (or car's ``"Chisq"``) for either class.

        Returns
        -------
        pandas.DataFrame
            One row per term. F tests: lmerTest's columns ``Sum Sq``, ``Mean Sq``,
            ``NumDF``, ``DenDF``, ``F value``, ``Pr(>F)``. Wald tests: car's ``Chisq``,
            ``Df``, ``Pr(>Chisq)`` (type III with an ``(Intercept)`` row).
        """
        from .inference.fixed_tests import anova_table
        from .inference.wald_anova import normalize_test, wald_anova

        test = normalize_test(test)
        glmm = getattr(self, "family", None) is not None
        if test == "auto":
            test = "F" if not glmm or str(ddf).lower() != "auto" else "wald"
        if test == "wald":
            return wald_anova(self, type=2 if type is None else type)
        if glmm and str(ddf).lower() == "auto":
            ddf = "kenward-roger"          # the one df method GLMMs have
        return anova_table(self, 3 if type is None else type, ddf)

    # -- intervals and profiles ---------------------------------------------------------
    def confint(self, parm=None, level: float = 0.95, method: str = "profile",
                nsim: int = 500, seed=None, n_jobs: int = 1, progress=None) -> pd.DataFrame:
        """Confidence intervals: DataFrame with columns ``lower`` and ``upper``.

        Parameters
        ----------
        parm : str or list of str, optional
            Parameters (default: all). Names as lme4's ``oldNames = FALSE``:
            ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ``sigma``, then
            the fixed effects as in :attr:`fixef`.
        level : float
            Coverage probability.
        method : {"profile", "wald", "boot"}
            Profile likelihood (lme4's default), Wald (fixed effects only, normal
            quantiles) or parametric-bootstrap percentile intervals.
        nsim, seed, n_jobs
            Bootstrap replicates, seed and worker processes (``method="boot"``).
        progress : bool or None
            Progress bar of the profile or bootstrap (None: for long runs someone
            watches; tqdm when installed).

        Returns
        -------
        pandas.DataFrame
            ``lower`` and ``upper`` per parameter (and ``note`` where an interval is
            truncated).

        Notes
        -----
        Profile intervals that reach a bound of the parameter space (a standard deviation
        at 0, a correlation at +-1) are truncated there, and a ``note`` column says so.
        """
        from .inference.confint import confint

        return confint(self, parm, level, method, nsim, seed, n_jobs, progress=progress)

    def profile(self, which=None, alphamax: float = 0.01, progress=None):
        """Likelihood profiles of the parameters (lme4's ``profile``).

        For each parameter on a grid, ``zeta = sign(p - p_hat) sqrt(D(p) - D(p_hat))`` with
        ``D`` the deviance minimized over every other parameter. REML fits are profiled on
        the ML deviance after an ML refit, as in lme4; GLMMs (families without a dispersion
        parameter) on their Laplace / quadrature deviance, every other parameter, fixed
        effects included, optimized at each point.

        Parameters
        ----------
        which : str or list of str, optional
            Parameters to profile (names as in :meth:`confint`); default: all.
        alphamax : float
            The grid extends until ``|zeta|`` reaches ``sqrt(chi2_{1 - alphamax}(k))``, ``k``
            the number of parameters (lme4's cutoff), or a bound of the parameter space.
        progress : bool or None
            Progress bar over the parameters (None: for long runs someone watches; tqdm
            when installed).

        Returns
        -------
        LikelihoodProfile
            ``.curves`` (zeta against each parameter), ``.confint(level)``,
            ``.as_frame()``, ``.plot()``.
        """
        from .inference.profile import profile_model

        return profile_model(self, which=which, alphamax=alphamax, progress=progress)

    def varcorr_se(self) -> pd.DataFrame:
        """Delta-method standard errors of the standard deviations, correlations and
        sigma (GLMM FAQ), from the Hessian of the ML deviance on that scale.

        Warns that such symmetric standard errors describe the skewed uncertainty of
        variance components poorly; prefer ``confint(method="profile")``.

        Returns
        -------
        pandas.DataFrame
            ``estimate`` and ``se`` per variance parameter (names as in :meth:`confint`),
            at the ML estimates.
        """
        from .inference.varcorr_se import varcorr_se

        return varcorr_se(self)

    # -- simulation, refitting, bootstrap ------------------------------------------------
    def sample(self, draws: int = 1000, chains: int = 4, seed=None, warmup: int = 1000, *,
               ranef: bool = False, target_accept: float = 0.8, max_depth: int = 10,
               warn: bool = True, backend: str = "nutpie"):
        """MCMC draws from the posterior of ``(theta, beta, sigma)`` (NUTS).

        The random effects are integrated out: exactly for LMMs, by the Laplace
        approximation for GLMMs (binomial, poisson). The priors are the fit's (blmer /
        bglmer; blme's prior deviance read as a density in ``theta, beta, sigma``), flat
        where there is none. Variances are sampled as ``theta`` on the whole real line, so
        chains pass through a zero variance instead of sticking at it.

        Parameters
        ----------
        draws, chains, warmup : int
            Kept draws per chain, chains, warmup iterations per chain.
        seed : int or numpy.random.Generator, optional
        ranef : bool
            Also draw the random effects given each draw (LMMs).
        target_accept, max_depth : float, int
            NUTS tuning (Stan's ``adapt_delta`` and ``max_treedepth``).
        warn : bool
            Warn about divergences and R-hat above 1.01.
        backend : {"nutpie", "builtin"}
            nutpie's NUTS (default; ``pip install 'mixedmodels[bayes]'``) or the
            package's own numpy NUTS (no extra; usually slower).

        Returns
        -------
        PosteriorSamples
            ``.draws`` (DataFrame: ``chain``, ``draw``, one column per parameter named as
            :meth:`confint`'s rows), ``.summary()`` (mean, sd, 2.5% and 97.5% quantiles,
            R-hat, bulk and tail ESS), ``.confint()``, ``.boundary_mass()``,
            ``.to_arviz()``.
        """
        from .bayes.sample import sample

        return sample(self, draws, chains, seed, warmup, ranef=ranef,
                      target_accept=target_accept, max_depth=max_depth, warn=warn,
                      backend=backend)

    def simulate(self, nsim: int = 1, seed=None, re_form="~0") -> pd.DataFrame:
        """Responses simulated from the fitted model, one column per replicate.

        Parameters
        ----------
        nsim : int
            Number of simulated responses.
        seed : int, optional
            Replicate ``i`` draws from stream ``i`` of ``SeedSequence(seed)``: the same
            replicate whatever ``nsim``, and the same as replicate ``i`` of
            :meth:`bootstrap` with that seed.
        re_form : str or None
            Random effects to condition on. ``"~0"`` (default, lme4's ``re.form = NA``):
            none, every random effect is drawn anew; None: all, only the residuals are
            new (lme4's ``re.form = NULL``); or a formula listing terms to keep.

        For GLMMs the response is drawn from the family at the simulated means (binomial:
        proportions of the trial counts; Poisson; negative binomial; Gamma; Gaussian).

        Returns
        -------
        pandas.DataFrame
            Columns ``sim_1 ... sim_nsim``, rows as the fitting data.
        """
        from .inference.simulate import simulate_frame, simulator

        return simulate_frame(self, nsim, seed, simulator(self, re_form))

    def refit(self, y, check_conv: bool = True):
        """The same model fitted to a new response (same rows, design, REML setting and
        optimizer settings; starts from this fit's theta, as lme4's ``refit``).

        Parameters
        ----------
        y : array-like (n,)
            New response, one value per row the model used (binomial: proportions).
        check_conv : bool
            Run the convergence check of the new fit (False: faster, for bootstraps).

        Returns
        -------
        LinearMixedModelResult or GeneralizedLinearMixedModelResult
            Of the same kind as this fit.
        """
        from .inference.simulate import refitter

        return refitter(self, light=not check_conv)(y)

    def bootstrap(self, func=None, nsim: int = 1000, seed=None, n_jobs: int = 1,
                  re_form="~0", progress=None):
        """Parametric bootstrap of ``func(fit)`` (lme4's ``bootMer``).

        Parameters
        ----------
        func : callable, optional
            Statistic of a fitted model: a number, an array or a pandas Series. Default:
            all parameters (sd/cor, sigma, fixed effects) on lme4's profile scale.
        nsim : int
            Replicates.
        seed : int, optional
            Makes the run reproducible, whatever ``n_jobs``.
        n_jobs : int
            Worker processes (forked; -1 for every core).
        re_form : str or None
            Random effects kept at their fitted values in the simulation (default none:
            lme4's ``use.u = FALSE``).
        progress : bool or None
            Progress bar: tqdm's (a widget in notebooks) when installed, else one
            throttled stderr line; None shows it for long runs someone watches.

        Returns
        -------
        BootstrapResult
            ``.replicates`` (DataFrame), ``.t0``, ``.confint()``, ``.summary()``; failed
            replicates are counted in ``.failures`` and left out.
        """
        from .inference.bootstrap import bootstrap

        return bootstrap(self, func, nsim, seed, n_jobs, re_form, progress)

r"""Simulation-based scaled residuals of a fitted mixed model and their tests (DHARMa's
method: Hartig, DHARMa 0.5).

:func:`simulate_residuals` simulates ``n_sim`` responses from the fitted model, computes for
every observation where the observed response falls in its simulated distribution (the
scaled residual, :mod:`.quantile_residuals`) and returns a :class:`SimulatedResiduals` whose
methods test the residuals as DHARMa does. Under a correctly specified model the scaled
residuals are uniform on (0, 1) whatever the family: 0.5 is the median of the predictive
distribution, 0 and 1 mean "outside all simulations".

**Which simulations.** ``simulate_re="conditional"`` (the default, as DHARMa >= 0.5.0)
keeps the random effects at their conditional modes and draws new responses only;
``"unconditional"`` draws new random effects too (lme4's and glmmTMB's ``simulate``
default, ``re.form = NA``; DHARMa before 0.5.0). Conditional simulations give the
dispersion and zero-inflation tests more power; unconditional residuals of observations in
the same group are correlated through the group's random effect.

**Refits** (``refit=True``, DHARMa's ``refit = TRUE``): the model is refitted to every
simulated response; the residual compares the observed response residual ``y - \hat\mu``
with the refits' residuals ``y^* - \hat\mu^*`` (DHARMa's traditional ecdf) and the
dispersion test compares Pearson chi-squares. Expensive: ``n_sim`` fits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from .._messages import user_stacklevel
from .fitted_distribution import fitted_distribution
from .quantile_residuals import ecdf_residuals, pit_residuals
from .residual_tests import (
    ResidualTest,
    binomial_outliers,
    check_alternative,
    durbin_watson,
    ks_uniformity,
    levene,
    morans_i,
    simulation_p_value,
)

__all__ = ["SIMULATE_RE", "SimulatedResiduals", "simulate_residuals"]

#: ``simulate_re`` values.
SIMULATE_RE = ("conditional", "unconditional")
#: DHARMa's default seed (its simulations are reproducible unless asked otherwise).
DEFAULT_SEED = 123
#: DHARMa's outlier test is bootstrapped for integer responses up to this many observations.
BOOTSTRAP_OUTLIERS_MAX_N = 500
#: Bootstrap replicates of the outlier test (DHARMa's ``nBoot``).
OUTLIER_BOOTSTRAP = 100


@dataclass(frozen=True, eq=False)
class SimulatedResiduals:
    """Scaled residuals of a fit and the simulations behind them (see the module docstring).

    Attributes
    ----------
    scaled : ndarray (n,)
        Scaled residuals in [0, 1] (:attr:`residuals` as a Series).
    simulated : ndarray (n, n_sim)
        Simulated responses (count scale: successes for binomial responses).
    observed : ndarray (n,)
        The response on the same scale.
    fitted : ndarray (n,)
        Fitted means (random effects at their modes) on the same scale.
    index : pandas.Index
        Row labels of the fitting data.
    integer : bool
        The response is integer-valued (counts, successes).
    simulate_re : str
    refit : bool
    seed : int or None
    refit_residuals : ndarray (n, n_sim) or None
        With refits: each refit's response residuals.
    refit_pearson : ndarray (n_sim,) or None
        With refits: each refit's sum of squared Pearson residuals.
    pearson_chisq : float or None
        With refits: the fit's sum of squared Pearson residuals.
    method : str
        ``"PIT"`` or ``"traditional"`` (refits).
    model : object
        The fit (None after :meth:`recalculate`: aggregated residuals have no model rows).
    """

    scaled: np.ndarray
    simulated: np.ndarray
    observed: np.ndarray
    fitted: np.ndarray
    index: pd.Index
    integer: bool
    simulate_re: str
    refit: bool
    seed: int | None
    refit_residuals: np.ndarray | None = None
    refit_pearson: np.ndarray | None = None
    pearson_chisq: float | None = None
    method: str = "PIT"
    model: object = None

    # -- the residuals -------------------------------------------------------------------
    @property
    def residuals(self) -> pd.Series:
        """The scaled residuals, indexed like the fitting rows (or the groups of
        :meth:`recalculate`)."""
        return pd.Series(self.scaled, index=self.index, name="scaled_residuals")

    @property
    def n_sim(self) -> int:
        """Simulations per observation."""
        return int(self.simulated.shape[1])

    @property
    def nobs(self) -> int:
        """Number of residuals."""
        return int(self.scaled.shape[0])

    def _rng(self, stream: int) -> np.random.Generator:
        seq = np.random.SeedSequence(self.seed, spawn_key=(stream,)) if self.seed is not None \
            else np.random.SeedSequence()
        return np.random.default_rng(seq)

    # -- tests -----------------------------------------------------------------------------
    def test_uniformity(self, alternative: str = "two.sided") -> ResidualTest:
        """Kolmogorov-Smirnov test of the residuals against U(0, 1) (DHARMa's
        ``testUniformity``).

        Parameters
        ----------
        alternative : {"two.sided", "greater", "less"}

        Returns
        -------
        ResidualTest
        """
        return ks_uniformity(self.scaled, alternative)

    def test_generic(self, summary, alternative: str = "two.sided",
                     name: str = "generic") -> ResidualTest:
        """A statistic of the response compared with its simulated distribution (DHARMa's
        ``testGeneric``).

        Parameters
        ----------
        summary : callable
            ``array (n,) -> float``, applied to the observed and to every simulated
            response.
        alternative : {"two.sided", "greater", "less"}
        name : str
            Name of the test in the result.

        Returns
        -------
        ResidualTest
            ``statistic``: observed / mean simulated (``ratioObsSim``); ``details``:
            ``observed`` and ``simulated`` values.
        """
        check_alternative(alternative)
        obs = float(summary(self.observed))
        sims = np.array([summary(self.simulated[:, j]) for j in range(self.n_sim)],
                        dtype=float)
        p = simulation_p_value(sims, obs, alternative)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.divide(obs, np.mean(sims)))   # inf / nan: no simulated mass
        return ResidualTest(name, ratio, p, alternative,
                            f"Simulation test of the {name} statistic: observed vs "
                            f"{self.n_sim} simulations from the fitted model",
                            {"observed": obs, "simulated": sims})

    def test_dispersion(self, alternative: str = "two.sided") -> ResidualTest:
        """DHARMa's default dispersion test (``testDispersion``).

        Without refits: the variance of the observed response about the fitted means,
        ``var(y - mu)``, over the variance of all simulated values, against the same
        ratio for every simulated response; ``statistic`` is the observed ratio over the
        mean simulated one (> 1: overdispersion). With refits: the Pearson chi-square of
        the fit against those of the refits.

        Parameters
        ----------
        alternative : {"two.sided", "greater", "less"}
            ``"greater"`` tests for overdispersion only.

        Returns
        -------
        ResidualTest
        """
        check_alternative(alternative)
        if self.refit:
            obs = float(self.pearson_chisq)
            sims = np.asarray(self.refit_pearson, dtype=float)
            sims = sims[np.isfinite(sims)]
            method = "Dispersion test: Pearson chi-square of the fit vs its refits"
        else:
            expected_var = float(np.var(self.simulated, ddof=1))
            obs = float(np.var(self.observed - self.fitted, ddof=1)) / expected_var
            sims = np.var(self.simulated - self.fitted[:, None], axis=0, ddof=1) / expected_var
            method = ("Dispersion test: sd of the residuals, fitted vs simulated (DHARMa's "
                      "nonparametric test)")
        p = simulation_p_value(sims, obs, alternative)
        return ResidualTest("dispersion", obs / float(np.mean(sims)), p, alternative, method,
                            {"observed": obs, "simulated": sims})

    def test_zero_inflation(self, alternative: str = "two.sided") -> ResidualTest:
        """The number of zeros in the response against its simulated distribution (DHARMa's
        ``testZeroInflation``; the FAQ's "simulated proportion of zeros").

        Parameters
        ----------
        alternative : {"two.sided", "greater", "less"}
            ``"greater"``: more zeros than the model predicts.

        Returns
        -------
        ResidualTest
            ``statistic``: observed zeros / mean simulated zeros.
        """
        return replace(self.test_generic(lambda v: float(np.sum(v == 0)), alternative,
                                         "zero-inflation"),
                       method="Zero-inflation test: observed zeros vs simulated zeros")

    def test_outliers(self, alternative: str = "two.sided", margin: str = "both",
                      type: str = "default", n_boot: int = OUTLIER_BOOTSTRAP) -> ResidualTest:
        """DHARMa's outlier test (``testOutliers``): residuals at 0 or 1 (outside every
        simulation).

        Parameters
        ----------
        alternative : {"two.sided", "greater", "less"}
        margin : {"both", "upper", "lower"}
        type : {"default", "binomial", "bootstrap"}
            ``binomial``: the count of residuals outside ``[1/(s+1), 1 - 1/(s+1)]``
            against Binomial(n, 2/(s+1)); ``bootstrap``: the frequency of residuals at 0 or
            1 against its distribution when each simulation in turn plays the data
            (exact for integer responses). ``default``: bootstrap for integer responses
            with at most 500 observations, binomial otherwise (DHARMa's rule).
        n_boot : int
            Bootstrap replicates (at most ``n_sim``).

        Returns
        -------
        ResidualTest
        """
        check_alternative(alternative)
        if type == "default":
            boot = self.integer and self.nobs <= BOOTSTRAP_OUTLIERS_MAX_N
            type = "bootstrap" if boot else "binomial"
        if type == "binomial":
            return binomial_outliers(self.scaled, self.n_sim, alternative, margin)
        if type != "bootstrap":
            raise ValueError(f"type must be 'default', 'binomial' or 'bootstrap', got {type!r}")
        return self._bootstrap_outliers(alternative, margin, min(int(n_boot), self.n_sim))

    def _bootstrap_outliers(self, alternative: str, margin: str, n_boot: int) -> ResidualTest:
        def frequency(r):
            lo, hi = float(np.mean(r == 0)), float(np.mean(r == 1))
            return {"both": lo + hi, "upper": hi, "lower": lo}[margin]

        if margin not in ("both", "upper", "lower"):
            raise ValueError(f"margin must be 'both', 'upper' or 'lower', got {margin!r}")
        observed = frequency(self.scaled)
        sims = self.refit_residuals if self.refit else self.simulated
        rng = self._rng(3)
        s = self.n_sim
        boot = np.empty(n_boot)
        for i in range(n_boot):                 # bootstrap replicates, each vectorized
            others = np.delete(np.arange(s), i)
            pick = rng.choice(others, size=s, replace=True)
            if self.method == "PIT":
                r = pit_residuals(sims[:, pick], sims[:, i], rng)
            else:
                r = ecdf_residuals(sims[:, pick], sims[:, i], self.integer, rng)
            boot[i] = frequency(r)
        p = simulation_p_value(boot, observed, alternative)
        return ResidualTest("outliers", observed * self.nobs, p, alternative,
                            "Outlier test: bootstrapped frequency of residuals at 0 or 1",
                            {"frequency": observed, "expected_frequency": float(boot.mean()),
                             "bootstrap": boot, "margin": margin})

    def test_quantiles(self, predictor=None, quantiles=(0.25, 0.5, 0.75)) -> ResidualTest:
        """Do the residuals' quantiles depend on a predictor (default: the fitted values)?
        (:mod:`.quantile_tests`; DHARMa's ``testQuantiles``.)

        Parameters
        ----------
        predictor : str or array_like, optional
            A column of the model frame or one value per residual.
        quantiles : sequence of float

        Returns
        -------
        ResidualTest
        """
        from .quantile_tests import quantile_test

        pred = self.fitted if predictor is None else self._column(predictor, "predictor")
        return quantile_test(self.scaled, pred, quantiles)

    def test_categorical(self, group) -> ResidualTest:
        """Residuals by the levels of a categorical variable (DHARMa's
        ``testCategorical``): uniformity within each level (KS tests, Holm-adjusted) and
        equal spread across levels (Levene's test).

        Parameters
        ----------
        group : str or array_like
            A column of the model frame or one label per residual.

        Returns
        -------
        ResidualTest
            ``statistic`` and ``p_value`` of Levene's test; ``details["groups"]``: a
            DataFrame with per-level ``n``, KS ``statistic``, ``p_value`` and
            ``p_adjusted``; ``details["uniformity_p"]``: the smallest adjusted p-value.
        """
        g = pd.Series(np.asarray(self._column(group, "group"), dtype=object).astype(str))
        levels = list(dict.fromkeys(g))
        rows = []
        for lev in levels:
            t = ks_uniformity(self.scaled[(g == lev).to_numpy()])
            rows.append((lev, int((g == lev).sum()), t.statistic, t.p_value))
        table = pd.DataFrame(rows, columns=["level", "n", "statistic", "p_value"]) \
            .set_index("level")
        table["p_adjusted"] = _holm(table["p_value"].to_numpy())
        if len(levels) < 2:
            raise ValueError("test_categorical needs a grouping with at least 2 levels")
        lev_test = levene(self.scaled, g.to_numpy())
        details = dict(lev_test.details)
        details.update(groups=table, uniformity_p=float(table["p_adjusted"].min()))
        return replace(lev_test, name="categorical", details=details,
                       method="Residuals by group: Levene's test (center = median); "
                              "within-group KS tests in details")

    def test_temporal_autocorrelation(self, time, alternative: str = "two.sided"
                                      ) -> ResidualTest:
        """Durbin-Watson test of the residuals in time order (DHARMa's
        ``testTemporalAutocorrelation``).

        Parameters
        ----------
        time : str or array_like
            A column of the model frame or one time per residual; times must be unique
            (aggregate repeated times with :meth:`recalculate` first).
        alternative : {"two.sided", "greater", "less"}

        Returns
        -------
        ResidualTest
        """
        t = np.asarray(self._column(time, "time"))
        if pd.Series(t).duplicated().any():
            raise ValueError(
                "testing temporal autocorrelation needs unique time values; with several "
                "observations per time, aggregate the residuals per time step "
                "(recalculate(group=time)) or test each series separately")
        order = np.argsort(t, kind="stable")
        return durbin_watson(self.scaled[order], alternative)

    def test_spatial_autocorrelation(self, x=None, y=None, distances=None,
                                     alternative: str = "two.sided") -> ResidualTest:
        """Moran's I of the residuals with inverse-distance weights (DHARMa's
        ``testSpatialAutocorrelation``).

        Parameters
        ----------
        x, y : str or array_like, optional
            Coordinates: columns of the model frame or one value per residual; locations
            must be unique (aggregate with :meth:`recalculate` first).
        distances : ndarray (n, n), optional
            A distance matrix instead of coordinates.
        alternative : {"two.sided", "greater", "less"}

        Returns
        -------
        ResidualTest
        """
        if distances is None:
            if x is None or y is None:
                raise ValueError("give the coordinates x and y, or a distance matrix")
            xy = np.column_stack([np.asarray(self._column(x, "x"), dtype=float),
                                  np.asarray(self._column(y, "y"), dtype=float)])
            D = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
        else:
            D = np.asarray(distances, dtype=float)
        off = ~np.eye(D.shape[0], dtype=bool)
        if np.any(D[off] == 0):
            raise ValueError(
                "testing spatial autocorrelation needs unique locations; with several "
                "observations per location, aggregate the residuals per location "
                "(recalculate(group=...)) or test each time step separately")
        with np.errstate(divide="ignore"):
            W = np.where(off, 1.0 / D, 0.0)
        return morans_i(self.scaled, W, alternative)

    # -- aggregation and display -------------------------------------------------------
    def recalculate(self, group) -> SimulatedResiduals:
        """Residuals of group sums (DHARMa's ``recalculateResiduals``): observed,
        simulated and fitted values are summed per group and the scaled residuals
        computed again -- one residual per group (a time step, a location, a subject).

        Parameters
        ----------
        group : str or array_like
            A column of the model frame or one label per residual.

        Returns
        -------
        SimulatedResiduals
            Indexed by the groups (in order of appearance).
        """
        if self.refit:
            raise NotImplementedError("recalculate() of refitted residuals is not available")
        labels = pd.Series(np.asarray(self._column(group, "group")))
        codes, uniques = pd.factorize(labels)
        k = len(uniques)

        def sums(v):
            v = np.asarray(v, dtype=float)
            if v.ndim == 1:
                return np.bincount(codes, v, minlength=k)
            return np.stack([np.bincount(codes, v[:, j], minlength=k)
                             for j in range(v.shape[1])], axis=1)

        obs, sims, fit = sums(self.observed), sums(self.simulated), sums(self.fitted)
        scaled = pit_residuals(sims, obs, self._rng(4))
        return replace(self, scaled=scaled, simulated=sims, observed=obs, fitted=fit,
                       index=pd.Index(uniques, name="group"), model=None)

    @cached_property
    def _frame(self):
        return None if self.model is None else self.model.design.frame

    def _column(self, value, what: str):
        """A column of the model frame (or of the data the model was fitted to) by name,
        or values (one per residual)."""
        if isinstance(value, str):
            frame = self._frame
            if frame is not None and value in frame.columns:
                return frame[value].to_numpy()
            data = getattr(getattr(self.model, "recipe", None), "data", None)
            if isinstance(data, pd.DataFrame) and value in data.columns \
                    and self.index.isin(data.index).all():
                return data.loc[self.index, value].to_numpy()
            have = [] if frame is None else list(frame.columns)
            raise KeyError(f"{what} {value!r} is not a column of the model frame "
                           f"({', '.join(map(str, have))}) or of the fitted data; pass one "
                           "value per residual")
        if isinstance(value, pd.Series) and self.index.isin(value.index).all() \
                and not value.index.has_duplicates:
            return value.reindex(self.index).to_numpy()
        arr = np.asarray(value)
        if arr.shape[0] != self.nobs:
            raise ValueError(f"{what} has {arr.shape[0]} values but there are {self.nobs} "
                             "residuals (one value per row used in the fit)")
        return arr

    def summary(self) -> pd.DataFrame:
        """The three tests of DHARMa's ``testResiduals``: uniformity, dispersion,
        outliers.

        Returns
        -------
        pandas.DataFrame
            ``statistic`` and ``p_value`` per test.
        """
        tests = [self.test_uniformity(), self.test_dispersion(), self.test_outliers()]
        return pd.DataFrame({"statistic": [t.statistic for t in tests],
                             "p_value": [t.p_value for t in tests],
                             "method": [t.method for t in tests]},
                            index=[t.name for t in tests])

    def calibrate(self, n_boot: int = 99, tests=None, seed: int | None = None,
                  n_jobs: int = 1, progress=None):
        """The tests' p-values calibrated by the parametric bootstrap: refits to ``n_boot``
        data sets simulated from the model, residuals and tests of each
        (:func:`mixedmodels.diagnostics.calibration.calibrate_tests`). Uniform under a
        correct model, unlike the plain p-values (conservative, or for the two-sided
        dispersion test anti-conservative).

        Parameters
        ----------
        n_boot : int
            Bootstrap data sets (refits).
        tests : sequence of str or dict, optional
            ``"uniformity"``, ``"dispersion"``, ``"zero_inflation"``, ``"outliers"``,
            ``"quantiles"`` (default: all), or a dict of them to their keyword arguments.
        seed : int, optional
        n_jobs, progress
            Worker processes and progress bar of the refits.

        Returns
        -------
        CalibratedTests
            ``.table`` with ``statistic``, ``p_value``, ``p_calibrated`` per test.
        """
        from .calibration import calibrate_tests

        return calibrate_tests(self, n_boot=n_boot, tests=tests, seed=seed, n_jobs=n_jobs,
                               progress=progress)

    def plot(self, quantiles=(0.25, 0.5, 0.75)):
        """DHARMa's residual plot: a uniform QQ plot with the KS, dispersion and outlier
        tests, and the residuals against the rank-transformed predictions with quantile
        regression curves (red where the quantile test is significant).

        Needs matplotlib (``pip install mixedmodels[plot]``).

        Parameters
        ----------
        quantiles : sequence of float

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plotting import simulated_residuals_panel

        return simulated_residuals_panel(self, quantiles=quantiles)

    def __repr__(self) -> str:
        return (f"<SimulatedResiduals: {self.nobs} residuals, {self.n_sim} simulations "
                f"({self.simulate_re}{', refits' if self.refit else ''})>")


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (R's ``p.adjust`` default)."""
    n = p.size
    order = np.argsort(p)
    adj = np.maximum.accumulate((n - np.arange(n)) * p[order])
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def _simulate(m, n_sim: int, seed_seq: np.random.SeedSequence, simulate_re: str,
              scale: np.ndarray | None) -> np.ndarray:
    """``n_sim`` responses from ``m`` on the count scale: (n, n_sim)."""
    from ..inference.simulate import simulate_frame, simulator
    from ..results.glmmtmb import GlmmTMBResult

    re_form = None if simulate_re == "conditional" else "~0"
    if isinstance(m, GlmmTMBResult):
        sims = m.simulate(n_sim, seed=np.random.default_rng(seed_seq),
                          re_form=re_form).to_numpy()
    else:
        sims = simulate_frame(m, n_sim, seed_seq, simulator(m, re_form)).to_numpy()
    if scale is not None:
        sims = np.rint(sims * scale[:, None])
    return sims


def _response_scale(m) -> np.ndarray | None:
    """Multiplier of the simulated responses to the count scale (binomial trials)."""
    from ..results.glmmtmb import GlmmTMBResult

    if isinstance(m, GlmmTMBResult):
        return m._size()
    fam = getattr(m, "family", None)
    if fam is not None and fam.name == "binomial":
        return np.rint(m._prior()).astype(float)
    return None


def _residuals(fit, type: str) -> np.ndarray:
    return np.asarray(fit.residuals(type=type), dtype=float)


def _refit_all(m, sims, scale, n_jobs, progress):
    """Refit ``m`` to every simulated response: (response residuals (n, s), Pearson
    chi-squares (s,))."""
    from ..inference.replicates import run_replicates
    from ..inference.simulate import refitter

    refit = refitter(m, light=True)
    n, s = sims.shape
    ys = sims / scale[:, None] if scale is not None else sims

    def task(i):
        fit = refit(ys[:, i])
        rp = _residuals(fit, "pearson")
        return np.r_[_residuals(fit, "response"), float(np.sum(rp * rp))]

    run = run_replicates(task, s, n_jobs, progress, label="refits")
    res = np.full((n, s), np.nan)
    chisq = np.full(s, np.nan)
    for i, v in enumerate(run.values):
        if v is not None:
            res[:, i], chisq[i] = v[:n], v[n]
    if run.failures:
        import warnings

        from .._errors import ConvergenceWarning

        warnings.warn(f"{len(run.failures)} of {s} refits failed and are left out "
                      f"(first: {run.failures[0][1]})", ConvergenceWarning,
                      stacklevel=user_stacklevel())
    return res, chisq


def simulate_residuals(m, n_sim: int = 250, seed: int | None = DEFAULT_SEED,
                       refit: bool = False, simulate_re: str = "conditional",
                       integer: bool | None = None, n_jobs: int = 1,
                       progress=None) -> SimulatedResiduals:
    """Scaled residuals from simulations of a fitted model (DHARMa's
    ``simulateResiduals``; see :mod:`mixedmodels.diagnostics.simulated_residuals`).

    Parameters
    ----------
    m : LinearMixedModelResult, GeneralizedLinearMixedModelResult or GlmmTMBResult
    n_sim : int
        Simulated responses (DHARMa's ``n``; >= 2; 250 by default, 1000 for final checks).
    seed : int or None
        Seed of the simulations and of the randomization of ties (DHARMa's default 123);
        None for fresh randomness.
    refit : bool
        Refit the model to each simulation (module docstring).
    simulate_re : {"conditional", "unconditional"}
        Keep the random effects at their modes (DHARMa >= 0.5.0's default) or draw new
        ones (lme4's ``simulate`` default).
    integer : bool, optional
        Whether the response is integer-valued (default: from the family); decides the
        outlier test's default type and the noise of refit residuals.
    n_jobs, progress
        Worker processes and progress bar of the refits.

    Returns
    -------
    SimulatedResiduals
        ``.residuals``, ``.test_uniformity()``, ``.test_dispersion()``,
        ``.test_zero_inflation()``, ``.test_outliers()``, ``.test_quantiles()``,
        ``.test_categorical(group)``, ``.test_temporal_autocorrelation(time)``,
        ``.test_spatial_autocorrelation(x, y)``, ``.plot()``.
    """
    if isinstance(n_sim, bool) or not isinstance(n_sim, int | np.integer) or n_sim < 2:
        raise ValueError(f"n_sim must be an integer >= 2 (simulations per observation), "
                         f"got {n_sim!r}")
    if simulate_re not in SIMULATE_RE:
        raise ValueError(f"simulate_re must be 'conditional' or 'unconditional', got "
                         f"{simulate_re!r}")
    if getattr(m, "design", None) is None or not hasattr(m, "residuals"):
        raise TypeError(f"simulate_residuals needs a fitted lmer, glmer or glmmtmb model, got "
                        f"{type(m).__name__}")
    dist = fitted_distribution(m)
    integer = dist.discrete if integer is None else bool(integer)
    root = np.random.SeedSequence(seed) if seed is not None else np.random.SeedSequence()
    sim_seq, pit_seq = root.spawn(2)
    scale = _response_scale(m)
    sims = _simulate(m, int(n_sim), sim_seq, simulate_re, scale)
    index = m.design.frame.index
    common = dict(simulated=sims, observed=dist.observed, fitted=dist.fitted, index=index,
                  integer=integer, simulate_re=simulate_re, seed=seed, model=m)
    if not refit:
        scaled = pit_residuals(sims, dist.observed, np.random.default_rng(pit_seq))
        return SimulatedResiduals(scaled, refit=False, **common)
    res, chisq = _refit_all(m, sims, scale, n_jobs, progress)
    ok = np.all(np.isfinite(res), axis=0)
    observed_res = _residuals(m, "response")
    scaled = ecdf_residuals(res[:, ok], observed_res, integer, np.random.default_rng(pit_seq))
    rp = _residuals(m, "pearson")
    return SimulatedResiduals(scaled, refit=True, refit_residuals=res[:, ok],
                              refit_pearson=chisq, pearson_chisq=float(np.sum(rp * rp)),
                              method="traditional", **common)

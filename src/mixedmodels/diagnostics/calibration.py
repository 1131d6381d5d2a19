r"""Parametric-bootstrap calibration of the simulated-residual tests.

DHARMa's tests compare the data with simulations from a model *fitted to those data*: the
observed responses sit closer to their fitted values than fresh simulations do, so under a
correct model the uniformity, outlier and quantile tests are conservative and the
two-sided dispersion test flags apparent underdispersion (rates measured in
tests/test_residual_calibration.py). Their p-values are not uniform.

:func:`calibrate_tests` repairs that by the parametric bootstrap of the p-values
themselves (a double bootstrap; Davison & Hinkley 1997, sec. 3.9): ``B`` data sets are
simulated from the fitted model (new random effects: the whole data-generating process),
the model is refitted to each, the residuals are simulated from the refit exactly as for
the data (same ``n_sim``, ``simulate_re``) and every test is applied. The calibrated p-value
is the rank of the observed p-value among the bootstrap ones,

.. math:: p_{cal} = \frac{1 + \#\{b: p^*_b < p\} + K}{B + 1},

with ``K`` uniform on ``0 .. #{b: p^*_b = p}`` (ties -- simulation p-values are discrete --
broken at random, so that ``p_cal`` is uniform on ``{1, .., B + 1} / (B + 1)`` when the
``B + 1`` p-values are exchangeable). Reject at level ``alpha`` when ``p_cal <= alpha``
(choose ``(B + 1) alpha`` whole: ``B = 99`` or ``199`` for 5%). Under a correct model the
bootstrap data mimic the observed data up to the estimation error of the parameters, so the
calibrated tests hold their level (within Monte-Carlo error in the study), at the cost of
``B`` refits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CALIBRATED_TESTS", "CalibratedTests", "calibrate_tests"]

#: Tests :func:`calibrate_tests` runs by default (each with its default arguments).
CALIBRATED_TESTS = ("uniformity", "dispersion", "zero_inflation", "outliers", "quantiles")


@dataclass(frozen=True)
class CalibratedTests:
    """Bootstrap-calibrated p-values of the residual tests (:func:`calibrate_tests`).

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by test: ``statistic``, ``p_value`` (DHARMa's), ``p_calibrated``.
    bootstrap : pandas.DataFrame
        The tests' p-values for each bootstrap data set (rows), failed refits left out.
    n_boot : int
        Successful bootstrap data sets.
    """

    table: pd.DataFrame
    bootstrap: pd.DataFrame
    n_boot: int

    def __str__(self) -> str:
        return (f"Residual tests calibrated by {self.n_boot} parametric-bootstrap refits:\n"
                f"{self.table.to_string()}")


def _requests(tests) -> dict[str, dict]:
    if tests is None:
        return {name: {} for name in CALIBRATED_TESTS}
    if isinstance(tests, str):
        tests = [tests]
    out = dict(tests) if isinstance(tests, dict) else {t: {} for t in tests}
    unknown = [t for t in out if t not in CALIBRATED_TESTS]
    if unknown or not out:
        raise ValueError(f"tests must name some of {', '.join(CALIBRATED_TESTS)}; got "
                         f"{unknown or 'none'}")
    for name, kw in out.items():
        if not isinstance(kw, dict):
            raise TypeError(f"the arguments of test {name!r} must be a dict, got "
                            f"{type(kw).__name__}")
    return out


def _run(res, requests: dict[str, dict]):
    """``(statistics, p-values)`` of the requested tests of ``res``."""
    out = [getattr(res, f"test_{name}")(**kw) for name, kw in requests.items()]
    return np.array([t.statistic for t in out]), np.array([t.p_value for t in out])


def calibrated_rank(p: float, boot: np.ndarray, rng: np.random.Generator) -> float:
    """``p_cal`` of the module docstring (NaN bootstrap values left out).

    Parameters
    ----------
    p : float
        Observed p-value.
    boot : ndarray
        Bootstrap p-values.
    rng : numpy.random.Generator
        Breaks ties.

    Returns
    -------
    float
    """
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(p) or boot.size == 0:
        return float("nan")
    below = int(np.sum(boot < p))
    ties = int(np.sum(boot == p))
    return (1.0 + below + int(rng.integers(0, ties + 1))) / (boot.size + 1.0)


def calibrate_tests(res, n_boot: int = 99, tests=None, seed: int | None = None,
                    n_jobs: int = 1, progress=None) -> CalibratedTests:
    """Calibrate the tests of simulated residuals by the parametric bootstrap (module
    docstring).

    Parameters
    ----------
    res : SimulatedResiduals
        From :func:`mixedmodels.simulate_residuals` without refits, with its model.
    n_boot : int
        Bootstrap data sets (each one refit and ``res.n_sim`` simulations).
    tests : sequence of str or dict, optional
        Tests to calibrate (default :data:`CALIBRATED_TESTS`); a dict maps a test to its
        keyword arguments (``{"dispersion": {"alternative": "greater"}}``).
    seed : int, optional
        Seed of the bootstrap (default: derived from the residuals' seed).
    n_jobs, progress
        Worker processes and progress bar of the refits.

    Returns
    -------
    CalibratedTests
    """
    from ..inference.replicates import run_replicates
    from ..inference.simulate import refitter
    from .simulated_residuals import _response_scale, _simulate, simulate_residuals

    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive whole number of bootstrap data sets, "
                         f"got {n_boot!r}")
    m = res.model
    if m is None:
        raise ValueError("these residuals have no model (recalculate() aggregates them): "
                         "calibrate the residuals of the fit, then aggregate")
    if res.refit:
        raise ValueError("calibrate_tests bootstraps residuals without refits (refit=False); "
                         "refit residuals would need n_sim refits per bootstrap data set")
    requests = _requests(tests)
    stat, p_obs = _run(res, requests)
    root = np.random.SeedSequence(seed if seed is not None else
                                  (res.seed if res.seed is not None else None))
    data_seq, res_seq, tie_seq = root.spawn(3)
    scale = _response_scale(m)
    ys = _simulate(m, int(n_boot), data_seq, "unconditional", scale)
    if scale is not None:
        ys = ys / scale[:, None]
    refit = refitter(m, light=True)
    seeds = res_seq.generate_state(int(n_boot))

    def task(i):
        fit = refit(ys[:, i])
        r = simulate_residuals(fit, n_sim=res.n_sim, seed=int(seeds[i]),
                               simulate_re=res.simulate_re, integer=res.integer)
        return _run(r, requests)[1]

    run = run_replicates(task, int(n_boot), n_jobs, progress, label="calibration")
    boot = np.array([v for v in run.values if v is not None], dtype=float)
    if boot.size == 0:
        raise RuntimeError(f"every bootstrap refit failed (first: {run.failures[0][1]})")
    boot = boot.reshape(-1, len(requests))
    rng = np.random.default_rng(tie_seq)
    p_cal = [calibrated_rank(p_obs[j], boot[:, j], rng) for j in range(len(requests))]
    names = list(requests)
    table = pd.DataFrame({"statistic": stat, "p_value": p_obs, "p_calibrated": p_cal},
                         index=pd.Index(names, name="test"))
    return CalibratedTests(table, pd.DataFrame(boot, columns=names), int(boot.shape[0]))

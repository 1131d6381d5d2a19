r"""Seeded simulated data for the benchmark table (numpy only).

``crossed`` draws a fully crossed random-intercept design

.. math::

    y_i = \beta_0 + \beta_1 x_i + \sum_{j} \sigma_j u_{j, g_j(i)} + \sigma \varepsilon_i,
    \qquad u_{j,k}, \varepsilon_i, x_i \sim N(0, 1) \text{ independent},

with one grouping factor ``g1, g2, ...`` per entry of ``levels``. Each factor's levels are
spread evenly over the rows (``arange(n) % k``, then shuffled), so every level is observed
and the factors are crossed, not nested: the design lme4's ``(1 | g1) + (1 | g2)`` fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GENERATORS", "SimulatedData", "crossed", "generate"]

#: True parameters of :func:`crossed` unless overridden.
DEFAULT_BETA = (0.5, 1.0)
DEFAULT_GROUP_SD = (0.8, 0.4, 0.2)
DEFAULT_SIGMA = 1.0
#: Response distributions :func:`crossed` draws.
RESPONSES = ("gaussian", "binomial", "poisson")


@dataclass(frozen=True)
class SimulatedData:
    """Columns of a simulated data set and the parameters that generated it.

    Attributes
    ----------
    columns : dict of str to ndarray
        ``y`` and ``x`` (float64), ``g1, g2, ...`` (integer level codes ``0..k-1``).
    levels : dict of str to int
        Number of levels of each grouping factor.
    truth : dict
        ``beta``, ``group_sd`` (one per factor) and ``sigma``.
    """

    columns: dict[str, np.ndarray]
    levels: dict[str, int]
    truth: dict = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.columns["y"].size)


def _balanced_codes(rng: np.random.Generator, n_obs: int, k: int) -> np.ndarray:
    """Level codes with every level used ``n // k`` or ``n // k + 1`` times, shuffled."""
    dtype = np.int32 if k < np.iinfo(np.int32).max else np.int64
    return rng.permutation(np.arange(n_obs, dtype=np.int64) % k).astype(dtype)


def crossed(
    n_obs: int,
    levels: Sequence[int],
    seed: int,
    *,
    beta: Sequence[float] = DEFAULT_BETA,
    group_sd: Sequence[float] | None = None,
    sigma: float = DEFAULT_SIGMA,
    slope_sd: Sequence[float] | None = None,
    response: str = "gaussian",
    covariates: int = 0,
) -> SimulatedData:
    """Crossed random-intercept design (see the module docstring), optionally with random
    slopes of ``x``.

    Parameters
    ----------
    n_obs : int
        Number of rows.
    levels : sequence of int
        Levels of each grouping factor (``g1`` gets the first); each must be in
        ``[2, n_obs // 2]`` so every level has at least two observations.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same data.
    beta : (float, float)
        Intercept and slope of ``x``.
    group_sd : sequence of float, optional
        Standard deviation of each factor's intercepts (default: 0.8, 0.4, 0.2, ...).
    sigma : float
        Residual standard deviation.
    slope_sd : sequence of float, optional
        Standard deviation of each factor's random slopes of ``x`` (0: none; default none).
        A factor with slopes supports ``(x | g)`` terms.
    response : {"gaussian", "binomial", "poisson"}
        ``y`` as drawn (gaussian), or drawn from the GLMM with the linear predictor
        ``eta = y - sigma eps`` (the same draws without the residual): Bernoulli with
        ``logit^{-1}(eta)``, or Poisson with mean ``exp(eta / 2)`` (halved to keep counts
        moderate).
    covariates : int
        Extra standard-normal columns ``z1, z2, ...`` (no effect on ``y``; for terms such
        as ``(0 + z1 | g1)``), drawn after everything else so the other columns do not
        change.
    """
    levels = [int(k) for k in levels]
    if not levels:
        raise ValueError("crossed() needs at least one grouping factor in `levels`")
    bad = [k for k in levels if not 2 <= k <= n_obs // 2]
    if bad:
        raise ValueError(f"levels {bad} out of range: each factor needs 2 to n_obs // 2 = "
                         f"{n_obs // 2} levels so that every level has two observations")
    if group_sd is None:
        group_sd = [DEFAULT_GROUP_SD[min(j, len(DEFAULT_GROUP_SD) - 1)]
                    for j in range(len(levels))]
    if len(group_sd) != len(levels):
        raise ValueError(f"group_sd has {len(group_sd)} entries for {len(levels)} factors")
    slope_sd = [0.0] * len(levels) if slope_sd is None else [float(v) for v in slope_sd]
    if len(slope_sd) != len(levels):
        raise ValueError(f"slope_sd has {len(slope_sd)} entries for {len(levels)} factors")
    if response not in RESPONSES:
        raise ValueError(f"response must be one of {RESPONSES}, not {response!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_obs)
    eps = sigma * rng.standard_normal(n_obs)
    y = beta[0] + beta[1] * x + eps
    columns: dict[str, np.ndarray] = {}
    for j, (k, sd, ssd) in enumerate(zip(levels, group_sd, slope_sd, strict=True), start=1):
        codes = _balanced_codes(rng, n_obs, k)
        y += sd * rng.standard_normal(k)[codes]
        if ssd:
            y += ssd * rng.standard_normal(k)[codes] * x
        columns[f"g{j}"] = codes
    if response == "binomial":
        y = rng.binomial(1, 1.0 / (1.0 + np.exp(-(y - eps)))).astype(float)
    elif response == "poisson":
        y = rng.poisson(np.exp(0.5 * (y - eps))).astype(float)
    extra = {f"z{j}": rng.standard_normal(n_obs) for j in range(1, covariates + 1)}
    columns = {"y": y, "x": x, **extra, **columns}
    truth = {"beta": list(beta), "group_sd": list(group_sd), "sigma": sigma,
             "slope_sd": slope_sd}
    return SimulatedData(columns, {f"g{j}": k for j, k in enumerate(levels, start=1)}, truth)


#: Generators by the name a ``[datasets.NAME]`` table row gives in ``generator``.
GENERATORS = {"crossed": crossed}


def generate(spec: dict) -> SimulatedData:
    """Run the generator a ``[datasets.NAME]`` row of ``models.toml`` describes."""
    params = dict(spec)
    name = params.pop("generator", None)
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[name](**params)

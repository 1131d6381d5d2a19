r"""Predictions with standard errors and intervals, as the frames ``predict`` returns.

A prediction is computed on a *working scale* where its estimate is approximately normal
(the link scale of a GLMM; the response scale of an LMM) with variance ``v``; the value
reported is ``T(working)`` for a monotone ``T`` (the inverse link for ``type="response"``,
the identity otherwise). Then

* ``se_fit`` is the delta-method standard error on the reported scale,
  ``|T'(f)| \sqrt v`` (lme4's and glmmTMB's ``se.fit``);
* a confidence interval is ``T(f \mp z \sqrt v)``: the GLMM FAQ's rule that the interval
  ends, not the standard error, go through the inverse link (so the interval stays inside
  the response's range and is asymmetric where the link is curved);
* a prediction interval (Gaussian responses only) adds the residual variance:
  ``f \mp z \sqrt{v + \sigma^2}`` (the FAQ's ``SE2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["INTERVALS", "PredictionParts", "check_request", "prediction_frame"]

#: ``interval=`` values of ``predict``.
INTERVALS = (None, "confidence", "prediction")
#: ``method=`` values of ``predict`` (how standard errors and intervals are computed).
METHODS = ("wald", "boot")
#: Relative step of the central differences that give ``T'`` when ``T`` has no derivative.
DERIVATIVE_STEP = 1e-6


@dataclass(frozen=True)
class PredictionParts:
    """What a fit's prediction code hands to :func:`prediction_frame`.

    Attributes
    ----------
    working : ndarray (n,)
        Predictions on the working scale (NaN where a predictor is missing).
    variance : ndarray (n,) or None
        Their variances (None when only the values were asked for).
    transform : callable or None
        Monotone map of the working scale to the reported one (None: the identity).
    derivative : callable or None
        ``T'`` (None: central differences of ``transform``).
    residual_variance : ndarray (n,) or float or None
        The response's variance about its mean (Gaussian responses), for prediction
        intervals; None where they are not available.
    family_label : str
        Named in the error when a prediction interval is not available.
    """

    working: np.ndarray
    variance: np.ndarray | None = None
    transform: object = None
    derivative: object = None
    residual_variance: object = None
    family_label: str = "this"

    def reported(self) -> np.ndarray:
        """The predictions on the reported scale."""
        return self.working if self.transform is None else self.transform(self.working)

    def slope(self) -> np.ndarray:
        """``|T'|`` at the working predictions."""
        f = self.working
        if self.transform is None:
            return np.ones_like(f)
        if self.derivative is not None:
            return np.abs(self.derivative(f))
        h = DERIVATIVE_STEP * np.maximum(1.0, np.abs(f))
        return np.abs(self.transform(f + h) - self.transform(f - h)) / (2.0 * h)


def check_request(se_fit, interval, level, method) -> None:
    """Refuse unknown ``interval`` / ``method`` values and a ``level`` outside (0, 1)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', got "
                         f"{interval!r}")
    if method not in METHODS:
        raise ValueError(f"method must be 'wald' or 'boot', got {method!r}")
    if not isinstance(se_fit, bool | np.bool_):
        raise TypeError(f"se_fit must be True or False, got {se_fit!r}")
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be a probability in (0, 1), e.g. 0.95, got {level!r}")


def prediction_frame(parts: PredictionParts, index: pd.Index, *, se_fit: bool,
                     interval: str | None, level: float) -> pd.Series | pd.DataFrame:
    """The Series of predictions, or the DataFrame with ``fit`` and ``se_fit`` and/or
    ``lower`` and ``upper`` (module docstring).

    Parameters
    ----------
    parts : PredictionParts
    index : pandas.Index
        Rows of the output.
    se_fit : bool
    interval : {None, "confidence", "prediction"}
    level : float

    Returns
    -------
    pandas.Series or pandas.DataFrame
    """
    fit = parts.reported()
    if not se_fit and interval is None:
        return pd.Series(fit, index=index, name="prediction")
    out = {"fit": fit}
    sd = np.sqrt(np.maximum(parts.variance, 0.0))
    if se_fit:
        out["se_fit"] = parts.slope() * sd
    if interval is not None:
        z = stats.norm.ppf(0.5 + level / 2.0)
        f = parts.working
        if interval == "prediction":
            if parts.residual_variance is None:
                raise NotImplementedError(
                    f"prediction intervals need a Gaussian response (mean +- z sd of a new "
                    f"observation); for the {parts.family_label} family simulate new "
                    "responses instead (m.simulate(...) at the fitted means, or "
                    "predict(..., method='boot'))")
            sd = np.sqrt(np.maximum(parts.variance + parts.residual_variance, 0.0))
        lo, hi = f - z * sd, f + z * sd
        if parts.transform is not None:
            lo, hi = parts.transform(lo), parts.transform(hi)
        out["lower"], out["upper"] = np.minimum(lo, hi), np.maximum(lo, hi)
    return pd.DataFrame(out, index=index)

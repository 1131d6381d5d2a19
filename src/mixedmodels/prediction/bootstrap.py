r"""Parametric-bootstrap standard errors and intervals of predictions.

Each replicate simulates a response from the fit (new random effects and residuals), refits
the model and predicts ``newdata`` again (conditional predictions use the refit's own
conditional modes of the same levels). ``se_fit`` is the standard deviation of the
replicates, a confidence interval their percentile interval -- which, unlike the Wald
recipe, carries the uncertainty of the covariance parameters (the FAQ's caveat). A
prediction interval of a Gaussian response adds a residual draw ``\sigma^* e`` to each
replicate (``\sigma^*`` the replicate's residual sd), from a stream seeded by ``seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["bootstrap_prediction"]

#: Stream of the residual draws of bootstrap prediction intervals (apart from the
#: replicates' own streams).
NOISE_STREAM = 2**31 - 1


def bootstrap_prediction(m, newdata, re_form, type, se_fit, interval, level,
                         allow_new_levels, offset, nsim, seed, n_jobs, progress,
                         gaussian_sd=None):
    """``predict(..., method="boot")`` (module docstring).

    ``gaussian_sd(fit)``: the residual sd of a fit, for prediction intervals (None: the
    response is not Gaussian, and prediction intervals are refused).
    """
    from ..inference.bootstrap import bootstrap

    def values(fit):
        return fit.predict(newdata, re_form=re_form, type=type,
                           allow_new_levels=allow_new_levels, offset=offset).to_numpy()

    point = values(m)
    n = point.shape[0]
    want_noise = interval == "prediction"
    if want_noise and gaussian_sd is None:
        raise NotImplementedError("bootstrap prediction intervals need a Gaussian response; "
                                  "simulate new responses from the fit instead")

    def stat(fit):
        v = values(fit)
        return np.r_[v, gaussian_sd(fit)] if want_noise else v

    res = bootstrap(m, stat, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    reps = res.replicates.to_numpy()
    if reps.shape[0] < 2:
        raise RuntimeError(f"only {reps.shape[0]} of {nsim} bootstrap replicates succeeded: "
                           f"{res.failures[:3]}")
    draws = reps[:, :n]
    out = {"fit": point}
    if se_fit:
        out["se_fit"] = draws.std(axis=0, ddof=1)
    if interval is not None:
        if want_noise:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(NOISE_STREAM,)))
            draws = draws + reps[:, n:n + 1] * rng.standard_normal(draws.shape)
        a = (1.0 - level) / 2.0
        out["lower"] = np.quantile(draws, a, axis=0)
        out["upper"] = np.quantile(draws, 1.0 - a, axis=0)
    index = m.design.frame.index if newdata is None else pd.DataFrame(newdata).index
    return pd.DataFrame(out, index=index)

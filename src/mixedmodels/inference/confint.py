r"""Confidence intervals for the parameters of a fit: Wald, profile likelihood, bootstrap.

* ``"wald"``: ``estimate +- z_{1-a/2} SE`` for the fixed effects (lme4's
  ``confint(method = "Wald")``, normal quantiles; variance parameters have no Wald
  interval there and are left out here).
* ``"profile"``: from the likelihood profile (:mod:`~mixedmodels.inference.profile`), all
  parameters: sds, correlations, sigma, fixed effects.
* ``"boot"``: percentile intervals of a parametric bootstrap of all parameters (lme4's
  ``confint(method = "boot")``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CONFINT_METHODS", "confint", "wald_confint"]

CONFINT_METHODS = ("wald", "profile", "boot")


def wald_confint(m, level: float = 0.95) -> pd.DataFrame:
    """Wald intervals of the fixed effects with normal quantiles."""
    z = stats.norm.ppf(0.5 + level / 2.0)
    est, se = m.fixef, m.se
    return pd.DataFrame({"lower": est - z * se, "upper": est + z * se})


def _select(frame: pd.DataFrame, parm) -> pd.DataFrame:
    if parm is None:
        return frame
    parm = [parm] if isinstance(parm, str) else list(parm)
    missing = [p for p in parm if p not in frame.index]
    if missing:
        raise KeyError(f"no parameter named {missing}; parameters are {list(frame.index)}")
    return frame.loc[parm]


def confint(m, parm=None, level: float = 0.95, method: str = "profile", nsim: int = 500,
            seed=None, n_jobs: int = 1, boot_type: str = "perc",
            progress=None) -> pd.DataFrame:
    """Intervals for the parameters of ``m`` (see the module docstring)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    method = str(method).lower()
    if method == "wald":
        return _select(wald_confint(m, level), parm)
    if method == "profile":
        from .profile import profile_model

        z = stats.norm.ppf(0.5 + level / 2.0)
        # profile just beyond the critical value: the end points are then bracketed
        which = None if parm is None else ([parm] if isinstance(parm, str) else list(parm))
        pr = profile_model(m, which=which, cutoff=float(np.sqrt(z * z + 1.0)),
                           progress=progress)
        return _select(pr.confint(level), parm)
    if method == "boot":
        from .bootstrap import bootstrap

        res = bootstrap(m, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        out = res.confint(level, type=boot_type)
        if res.n_failed:
            out.attrs["failed_replicates"] = res.n_failed
        return _select(out, parm)
    raise ValueError(f"method must be one of {CONFINT_METHODS}, got {method!r}")

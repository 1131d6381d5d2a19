"""How each engine of the table is fitted, and where a row's data comes from.

Adding an engine is one function here: take the row and the data frame, return the fitted
result. The runner reads ``result.objective`` and the :class:`mixedmodels.OptSummary`
(:func:`opt_summary`) from what it returns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .simulate import generate
from .table import BenchmarkCase, BenchmarkTable

__all__ = ["ENGINES", "load_data", "opt_summary", "simulated_frame"]


def _fit_lmer(case: BenchmarkCase, data: pd.DataFrame):
    import mixedmodels as mm

    return mm.lmer(case.formula, data, **case.options)


def _fit_glmer(case: BenchmarkCase, data: pd.DataFrame):
    import mixedmodels as mm

    return mm.glmer(case.formula, data, case.family, **case.options)


def _fit_glmer_nb(case: BenchmarkCase, data: pd.DataFrame):
    import mixedmodels as mm

    return mm.glmer_nb(case.formula, data, **case.options)


def _fit_glmmtmb(case: BenchmarkCase, data: pd.DataFrame):
    import mixedmodels as mm

    return mm.glmmtmb(case.formula, data, case.family or "gaussian", **case.options)


#: Engines the runner can fit; rows with any other engine are reported as skipped.
ENGINES: dict[str, Callable] = {"lmer": _fit_lmer, "glmer": _fit_glmer,
                                "glmer_nb": _fit_glmer_nb, "glmmtmb": _fit_glmmtmb}


def opt_summary(result):
    """The :class:`mixedmodels.OptSummary` of a fit (glmmtmb keeps it on ``result.fit``)."""
    opt = getattr(result, "opt", None)
    return opt if opt is not None else result.fit.opt


def simulated_frame(spec: dict) -> pd.DataFrame:
    """A simulated data set as a DataFrame, grouping factors as categoricals.

    The level codes go straight into :meth:`pandas.Categorical.from_codes`, so building the
    frame costs no factorization of a million strings.
    """
    sim = generate(spec)
    cols = {}
    for name, values in sim.columns.items():
        if name in sim.levels:
            cols[name] = pd.Categorical.from_codes(values, categories=np.arange(
                sim.levels[name]))
        else:
            cols[name] = values
    return pd.DataFrame(cols)


def load_data(table: BenchmarkTable, name: str) -> pd.DataFrame:
    """The data set a row names: simulated (``[datasets.NAME]``) or bundled."""
    if name in table.simulated:
        return simulated_frame(table.simulated[name])
    import mixedmodels as mm

    return mm.datasets.load(name)

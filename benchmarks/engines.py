"""How each engine of the table is fitted, and where a row's data comes from.

Adding an engine (a colleague will add ``glmer``) is one function here: take the row and the
data frame, return the fitted result. The runner reads ``result.objective`` and
``result.opt`` (an :class:`mixedmodels.OptSummary`) from what it returns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .simulate import generate
from .table import BenchmarkCase, BenchmarkTable

__all__ = ["ENGINES", "load_data", "simulated_frame"]


def _fit_lmer(case: BenchmarkCase, data: pd.DataFrame):
    import mixedmodels as mm

    return mm.lmer(case.formula, data, **case.options)


#: Engines the runner can fit; rows with any other engine are reported as skipped.
ENGINES: dict[str, Callable] = {"lmer": _fit_lmer}


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

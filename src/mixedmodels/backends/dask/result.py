"""The result of an LMM fitted on Dask input: the in-memory result, rows left out.

Estimates, ``varcorr``, ``vcov``, ``ranef`` (with conditional variances), information
criteria and the summary come from the reduced system exactly as in memory. What needs
the rows is lazy: ``fitted()``, ``residuals()`` and ``predict()`` return Dask series
computed partition by partition (``X beta + Z b``, the other seam), and the summary's
residual quantiles are Dask's approximate quantiles of those series. Matrices of length n
(``get_matrix("X")``, ``design.y``) raise a :class:`~mixedmodels.DataError` saying where
the rows are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ...objective import LMMObjective
from ...results import LinearMixedModelResult
from ...results.lmm import check_lmm_residual_type, lmm_residuals
from ...results.predict import linear_predictor, select_term_columns
from .plan import PartitionPlan

__all__ = ["DaskLinearMixedModelResult", "DaskRanefMixin", "partition_eta"]

#: Quantiles of the scaled residuals that the summary prints.
_SUMMARY_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def partition_eta(a, beta, b, keep: dict) -> np.ndarray:
    """``X beta + offset + Z b`` of a partition's arrays with the random-effects columns
    ``keep`` (term index -> boolean mask of its columns)."""
    eta = a.X @ beta + a.offset
    for k, mask in keep.items():
        eta += np.einsum("ij,ij->i", a.Z[k][:, mask], b[k][a.codes[k]][:, mask])
    return eta


class DaskRanefMixin:
    """``ranef`` indexed by the factor's own values (the scan's level sets)."""

    def _level_index(self, k: int, term) -> pd.Index:
        """Term ``k``'s levels as the user's values when the factor is one numeric column
        (found by the scan; the design holds no rows to read them from), else labels --
        set per term before terms on one factor are joined, so the join aligns the
        levels by value as in memory."""
        index = self.design.level_indexes[k]
        return index if len(index) == term.nlevels else super()._level_index(k, term)


def _partition_values(part, plan: PartitionPlan, beta, b, keep, what: str, scale: float):
    """Fitted values (``what="fitted"``) or residuals of type ``what`` of one
    partition's fitted rows."""
    a = plan.arrays(part)
    eta = partition_eta(a, beta, b, keep)
    if what == "fitted":
        return pd.Series(eta, index=a.index, name="fitted")
    r = lmm_residuals(what, a.y, eta, a.weights)
    return pd.Series(r / scale, index=a.index, name="residuals")


def _predict_partition(part, design, beta, b, re_form, allow_new_levels, offset):
    eta = linear_predictor(design, beta, b, part, re_form, allow_new_levels, offset)
    return pd.Series(eta, index=part.index, name="prediction")


@dataclass(frozen=True, eq=False, repr=False)
class DaskLinearMixedModelResult(DaskRanefMixin, LinearMixedModelResult):
    """A linear mixed model fitted on a Dask DataFrame (module docstring).

    Attributes
    ----------
    data : dask.dataframe.DataFrame
        The data fitted (lazy; read again by ``fitted``, ``residuals``, ``predict``).
    plan : PartitionPlan
        How each partition is materialized.
    reduced : ReducedLMM
        The summed cross-products (what the objective is rebuilt from).
    timings : dict
        Seconds spent in the distributed passes (``scan_and_qr_s``,
        ``cross_products_s``) and in the optimization on the client (``optimize_s``).
    """

    data: object = field(default=None, repr=False)
    plan: PartitionPlan | None = field(default=None, repr=False)
    reduced: object = field(default=None, repr=False)
    timings: dict = field(default_factory=dict, repr=False)

    def _rebuild_objective(self, method: str | None) -> LMMObjective:
        return self.reduced.objective(self.reml)

    @cached_property
    def deviance(self) -> float:
        """-2 log-likelihood (for REML fits at the REML estimates, as lme4's
        ``deviance(m, REML = FALSE)``), from the reduced system."""
        if not self.reml:
            return self.objective
        return self.reduced.objective(False)(self.theta)

    def _lazy(self, what: str, keep: dict, scale: float = 1.0):
        meta = pd.Series(dtype=float, name="fitted" if what == "fitted" else "residuals")
        return self.data.map_partitions(_partition_values, self.plan, self.beta,
                                        self.random_effects, keep, what, scale, meta=meta)

    def fitted(self):
        """Fitted values ``X beta + Z b + offset`` of the rows used, lazily.

        Returns
        -------
        dask.dataframe.Series
            Indexed like the rows used (rows dropped for missing values are absent).
        """
        return self._lazy("fitted", select_term_columns(self.design, None))

    def residuals(self, type: str = "response", scaled: bool = False):
        """Residuals ``y - fitted`` of the rows used, lazily.

        Parameters
        ----------
        type : {"response", "pearson", "deviance", "working"}
            As for the in-memory :meth:`LinearMixedModelResult.residuals`:
            ``response`` = ``working`` = ``y - fitted``, ``pearson`` = ``deviance`` =
            ``sqrt(w) (y - fitted)``, computed on each partition.
        scaled : bool
            Divide by sigma.

        Returns
        -------
        dask.dataframe.Series
        """
        check_lmm_residual_type(type)
        return self._lazy(type, select_term_columns(self.design, None),
                          self.sigma if scaled else 1.0)

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = False,
                offset=None):
        """Predictions ``X beta + Z b + offset`` with the random effects of ``re_form``.

        Parameters
        ----------
        newdata : pandas or Dask DataFrame, optional
            Default: the rows fitted (lazily). A pandas frame gives a pandas Series, a
            Dask frame a lazy Dask series.
        re_form, allow_new_levels, offset
            As for the in-memory :meth:`LinearMixedModelResult.predict`.

        Returns
        -------
        pandas.Series or dask.dataframe.Series
        """
        if newdata is None:
            if offset is not None:
                raise ValueError("offset= applies to newdata only")
            return self._lazy("fitted", select_term_columns(self.design, re_form)).rename(
                "prediction")
        if hasattr(newdata, "map_partitions"):
            return newdata.map_partitions(
                _predict_partition, self.design, self.beta, self.random_effects, re_form,
                allow_new_levels, offset, meta=pd.Series(dtype=float, name="prediction"))
        return super().predict(newdata, re_form, allow_new_levels, offset)

    def summary_residuals(self) -> np.ndarray:
        """Approximate quantiles (Dask's) of the scaled Pearson residuals: the five
        numbers the summary prints, never all n residuals."""
        r = self.residuals("pearson", scaled=True)
        return np.asarray(r.quantile(list(_SUMMARY_QUANTILES)).compute(), dtype=float)


"""The result of a GLMM fitted on Dask input: the in-memory result, rows left out.

Estimates, ``vcov`` (from the Hessian of the deviance, as in memory), ``varcorr``,
``ranef`` with conditional variances, the information criteria and the summary come from
the reduced systems. What needs the rows is lazy: ``fitted()``, ``residuals()`` and
``predict()`` return Dask series computed partition by partition; the summary's residual
quantiles are Dask's approximate quantiles; the overdispersion test sums the squared
Pearson residuals on the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...results.glmm import GeneralizedLinearMixedModelResult, check_residual_type, glmm_residuals
from ...results.predict import linear_predictor, select_term_columns
from .plan import PartitionPlan
from .result import _SUMMARY_QUANTILES, DaskRanefMixin, partition_eta

__all__ = ["DaskGLMMResult"]


def _glmm_values(part, plan: PartitionPlan, family, beta, b, keep, what: str,
                 scale: float):
    """``what`` ("link", "mean" or a residual type) of one partition's fitted rows."""
    a = plan.arrays(part)
    eta = partition_eta(a, beta, b, keep)
    if what == "link":
        return pd.Series(eta, index=a.index, name="prediction")
    mu = family.link.linkinv(eta)
    if what == "mean":
        return pd.Series(mu, index=a.index, name="fitted")
    prior = np.ones(len(a.y)) if a.prior is None else a.prior
    r = glmm_residuals(what, a.y, mu, eta, family, prior)
    return pd.Series(r / scale, index=a.index, name="residuals")


def _predict_partition(part, design, family, beta, b, re_form, allow_new_levels, offset,
                       type: str):
    eta = linear_predictor(design, beta, b, part, re_form, allow_new_levels, offset)
    out = eta if type == "link" else family.link.linkinv(eta)
    return pd.Series(out, index=part.index, name="prediction")


@dataclass(frozen=True, eq=False, repr=False)
class DaskGLMMResult(DaskRanefMixin, GeneralizedLinearMixedModelResult):
    """A GLMM fitted on a Dask DataFrame (module docstring).

    Attributes
    ----------
    data : dask.dataframe.DataFrame
        The data fitted (read again by ``fitted``, ``residuals``, ``predict``).
    plan : PartitionPlan
        How each partition is materialized.
    timings : dict
        Seconds of the scan and QR passes (``scan_and_qr_s``) and of the fit
        (``fit_s``), and the number of distributed passes of the fit (``passes``).
    """

    data: object = field(default=None, repr=False)
    plan: PartitionPlan | None = field(default=None, repr=False)
    timings: dict = field(default_factory=dict, repr=False)

    def _rebuild_objective(self, method: str | None):
        del method
        return self.objective_function

    def _lazy(self, what: str, keep: dict, scale: float = 1.0):
        name = {"link": "prediction", "mean": "fitted"}.get(what, "residuals")
        sol = self.solution
        return self.data.map_partitions(_glmm_values, self.plan, self.family, sol.beta,
                                        list(sol.b), keep, what, scale,
                                        meta=pd.Series(dtype=float, name=name))

    def fitted(self):
        """Fitted means ``g^{-1}(X beta + Z b + offset)`` of the rows used, lazily.

        Returns
        -------
        dask.dataframe.Series
        """
        return self._lazy("mean", select_term_columns(self.design, None))

    def residuals(self, type: str = "deviance", scaled: bool = False):
        """Residuals of the rows used, lazily (types as
        :meth:`GeneralizedLinearMixedModelResult.residuals`).

        Returns
        -------
        dask.dataframe.Series
        """
        check_residual_type(type)
        return self._lazy(type, select_term_columns(self.design, None),
                          self.sigma if scaled else 1.0)

    def predict(self, newdata=None, type: str = "link", re_form=None,
                allow_new_levels: bool = False, offset=None, **kwargs):
        """Predictions on the link or response scale with the random effects of
        ``re_form``.

        Parameters
        ----------
        newdata : pandas or Dask DataFrame, optional
            Default: the rows fitted (lazily). A Dask frame gives a lazy Dask series; a
            pandas frame goes to the in-memory
            :meth:`GeneralizedLinearMixedModelResult.predict` (standard errors and
            intervals included).
        type : {"link", "response"}
        re_form, allow_new_levels, offset
            As in memory.
        **kwargs
            ``se_fit``, ``interval``... : pandas ``newdata`` only.

        Returns
        -------
        pandas.Series, pandas.DataFrame or dask.dataframe.Series
        """
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', got {type!r}")
        lazy = newdata is None or hasattr(newdata, "map_partitions")
        if lazy and any(v not in (None, False) for v in kwargs.values()):
            raise NotImplementedError(
                f"{', '.join(k for k, v in kwargs.items() if v not in (None, False))} "
                "need the prediction rows in memory: pass a pandas newdata (e.g. a sample "
                "of ddf.compute())")
        if newdata is None:
            if offset is not None:
                raise ValueError("offset= applies to newdata only")
            what = "mean" if type == "response" else "link"
            return self._lazy(what, select_term_columns(self.design, re_form)).rename(
                "prediction")
        sol = self.solution
        if hasattr(newdata, "map_partitions"):
            return newdata.map_partitions(
                _predict_partition, self.design, self.family, sol.beta, list(sol.b),
                re_form, allow_new_levels, offset, type,
                meta=pd.Series(dtype=float, name="prediction"))
        return super().predict(newdata, type, re_form, allow_new_levels, offset, **kwargs)

    def summary_residuals(self) -> np.ndarray:
        """Dask's approximate quantiles of the scaled Pearson residuals (the five numbers
        the summary prints).

        Returns
        -------
        ndarray (5,)
        """
        r = self.residuals("pearson", scaled=True)
        return np.asarray(r.quantile(list(_SUMMARY_QUANTILES)).compute(), dtype=float)

    def overdispersion(self):
        """The Pearson chi-square test, the sum of squares computed on the workers (see
        :meth:`GeneralizedLinearMixedModelResult.overdispersion`)."""
        from ...diagnostics.overdispersion import overdispersion_from_chisq

        r = self.residuals("pearson")
        return overdispersion_from_chisq(self, float((r * r).sum().compute()))

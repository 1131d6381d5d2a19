"""``lmer`` on Dask input: three distributed passes, then the in-memory optimizer.

After :func:`~.prepare.prepare` (scan and tall-skinny QR), pass 3 sums the cross-products
``[Z X~ y~]' W [Z X~ y~]`` over the partitions in the layout the in-memory objective would
use (dense for small models, blocked, or sparse for large rest blocks), and
:meth:`LMMObjective.from_cross_products` turns them into the same objective an in-memory
fit evaluates; :func:`~mixedmodels.fitting.lmm.optimize_lmm` is lmer's optimization. The
client holds the reduced system only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..._errors import DataError
from ..._threads import blas_threads, dense_block_size
from ...design import check_lmm_sizes, constant_response_message
from ...design.response import numeric_response
from ...objective import LMMObjective
from ...objective.lmm import block_plan
from .prepare import Prepared, prepare
from .reduce import combine_cross, cross_partition
from .reduce_tree import map_reduce
from .result import DaskLinearMixedModelResult
from .source import as_dask_frame, scheduler_context

__all__ = ["ReducedLMM", "fit_lmer_dask", "refit_needs_rows"]


def refit_needs_rows(design, **changes):
    """The design fitter of a Dask fit's recipe: refits on a changed design (profiles,
    bootstrap, simulation) need the rows, which stay on the cluster.

    Parameters
    ----------
    design : ReducedDesign
    **changes
        The refit's arguments.

    Raises
    ------
    NotImplementedError
        Always, with what works instead.
    """
    raise NotImplementedError(
        "this needs refits on the rows of the data, which a Dask fit leaves on the cluster "
        "(profile intervals, bootstrap, simulation-based tests); use Wald intervals "
        "(confint(method='wald')), or refit with m.update(...) / mm.lmer on the Dask data")


@dataclass(frozen=True)
class ReducedLMM:
    """Everything an LMM objective needs, summed over the partitions (kept by the result
    so that it can rebuild the objective -- for the ML deviance of a REML fit, or after
    unpickling -- without going back to the cluster)."""

    cross: object
    prepared: Prepared
    method: str
    #: the in-memory objective's merge of the terms on one grouping factor (``cross`` is
    #: in its blocks' order), or None
    merge: object = None

    def objective(self, reml: bool) -> LMMObjective:
        p = self.prepared
        return LMMObjective.from_cross_products(
            p.plan.design, self.cross, p.basis, p.coef0, p.qr.sum_log_w, reml=reml,
            method=self.method, merge=self.merge)


def _check_sizes(prepared: Prepared) -> None:
    d = prepared.plan.design
    check_lmm_sizes(d.terms, d.nobs, d.p)
    qr = prepared.qr
    if not np.all(np.isfinite(qr.R)):
        raise DataError("the values of the response or of a fixed effect are too large: "
                        "their squares overflow double precision; rescale them")
    if qr.y_min == qr.y_max:
        raise DataError(constant_response_message(d.spec.response, qr.y_min,
                                                  bool(d.spec.offsets or d.offset_column)))


def reduce_lmm(frame, prepared: Prepared, method: str) -> ReducedLMM:
    """Pass 3: the summed cross-products for ``method`` (``"auto"`` or a method name),
    in the blocks of :func:`~mixedmodels.objective.lmm.block_plan` -- the layout, merge
    of terms on one grouping factor included, of the in-memory objective."""
    method, merge = block_plan(prepared.plan.design, method)
    groups = () if merge is None else merge.groups
    cross = map_reduce(frame, cross_partition, combine_cross, prepared.plan,
                       prepared.basis.R_inv, prepared.coef0, method, groups)
    return ReducedLMM(cross, prepared, method, merge)


def fit_lmer_dask(formula: str, data, *, REML: bool, weights, offset, optimizer: str,
                  optimizer_settings, start, check_conv: bool, contrasts,
                  scheduler=None) -> DaskLinearMixedModelResult:
    """:func:`~mixedmodels.lmer` on a Dask DataFrame or parquet path (module docstring).

    Returns
    -------
    DaskLinearMixedModelResult
        The fit; ``fitted``, ``residuals`` and ``predict`` on Dask data are lazy.
    """
    from ...fitting.lmm import optimize_lmm

    frame = as_dask_frame(data)
    t0 = time.perf_counter()
    with scheduler_context(scheduler):
        prepared = prepare(formula, frame, weights=weights, offset=offset,
                           contrasts=contrasts, response=numeric_response)
        _check_sizes(prepared)
        design = prepared.plan.design
        # the analytic gradient lives in the blocked factorization (optimize_lmm refuses
        # structures without lambda_jacobian)
        method = "blocked" if optimizer == "gradient" else "auto"
        t1 = time.perf_counter()
        frame = prepared.frame
        reduced = reduce_lmm(frame, prepared, method)
    t2 = time.perf_counter()
    obj = reduced.objective(REML)
    # one BLAS thread unless the dense block is large, as in memory (mixedmodels._threads)
    with blas_threads(dense_block_size(design.terms)):
        sol, opt, conv = optimize_lmm(obj, optimizer, optimizer_settings, start, check_conv)
    timings = {"scan_and_qr_s": t1 - t0, "cross_products_s": t2 - t1,
               "optimize_s": time.perf_counter() - t2}
    result = DaskLinearMixedModelResult(design, bool(REML), sol, opt, conv, obj)
    return replace(result, data=frame, plan=prepared.plan, reduced=reduced, timings=timings)

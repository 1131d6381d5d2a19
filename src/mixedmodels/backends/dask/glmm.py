"""``glmer`` on Dask input: lme4's two-stage fit, each PIRLS step one distributed pass.

After :func:`~.prepare.prepare` (scan, and the tall-skinny QR of the prior-weighted ``X``
that gives the fixed-effects basis), :class:`DaskGLMMObjective` is glmer's
:class:`~mixedmodels.objective.glmm.GLMMObjective` with :class:`~.pirls.DaskPIRLS` inside:
the nAGQ = 0 criterion, the Laplace deviance, the solutions and ``R_X`` come from the same
formulas on the summed cross-products. The optimization is glmer's own
(:func:`~mixedmodels.fitting.glmm._fit_glmm`: the same stages, whitening, optimizer
settings and finite-difference Hessian), so the result equals the in-memory fit to the
PIRLS and optimizer tolerances. The client holds the reduced systems only.

Families with a dispersion parameter (Gamma, inverse Gaussian, Gaussian with a link) have
it profiled on the client: ``s_i(phi) - s_i(1)`` depends on the prior weight ``w_i`` alone,
so one pass for the distinct weights and their counts gives the profiled ``phi``
(:meth:`~mixedmodels.families.Family.profile_dispersion` with ``counts``) and
``sum_i s_i(phi)`` at every evaluation without touching the rows again (more than
:data:`~.glmm_pass.MAX_DISTINCT_VALUES` distinct weights are refused).

``glmer_nb`` (``estimate_shape``) starts the shape from lme4's estimate on the nAGQ = 0
Poisson fit (its score summed over partitions, one pass per root-search step) and then
optimizes it with theta and beta as in memory; the saturated sum at each shape comes from
the responses' histogram (one pass), not from a pass per shape.

Adaptive quadrature (nAGQ > 1, one scalar term) adds one pass per evaluation: the
per-level sums of ``-2 log p`` at every node (:func:`~.glmm_pass.agq_partition`). The
exact gradients (:mod:`.glmm_gradient`: three passes each) drive the nAGQ = 0 and the
Laplace stages as in memory, crossed factors included, and :mod:`.agq_gradient`'s (two
passes) the quadrature stage (families without a dispersion, as in memory). Known
covariance matrices are the data's and are refused, with what to do instead.
"""

from __future__ import annotations

import functools
import time
from dataclasses import fields

import numpy as np

from ..._errors import DataError, FormulaError
from ..._threads import blas_threads, dense_block_size
from ...design.lhs import make_response, response_variables
from ...diagnostics.separation import separated_from_information
from ...formula import parse_formula
from ...objective.agq import agq_from_sums
from ...objective.glmm import GLMMObjective, GLMMSolution, check_nagq, glmm_layout
from .glmm_pass import RowWeights, agq_partition, combine_arrays, combine_state, state_partition
from .glmm_result import DaskGLMMResult
from .prepare import Prepared, prepare
from .source import as_dask_frame, scheduler_context

__all__ = ["DaskGLMMObjective", "fit_glmer_dask"]


def _check_response(family, what: str, y: np.ndarray, prior: np.ndarray) -> None:
    """The family's response check on one partition (run by pass 2)."""
    family.check_response(y, prior, what)


class DaskGLMMObjective(GLMMObjective):
    """glmer's deviance functions on Dask input (module docstring).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
    prepared : Prepared
    family : Family
    nAGQ : int
        0, 1 or up to 25 nodes for one scalar term (:func:`check_nagq`).
    """

    def __init__(self, frame, prepared: Prepared, family, nAGQ: int = 1,
                 estimate_shape: bool = False):
        from .pirls import DaskPIRLS

        design = prepared.plan.design
        self.design = design
        self.family = family
        self.nAGQ = check_nagq(design, nAGQ)
        self.hessian = None
        self.pirls = DaskPIRLS(frame, prepared, family)
        self.n_theta, self.p = design.n_theta, design.p
        self.theta_lower = design.theta_lower()
        self.layout = glmm_layout(design, family, self.nAGQ, bool(estimate_shape))
        self.lower = self.layout.lower
        self.n_evals = 0
        self.stage0_tol = None
        self._sat_cache = {}
        self._prepared = prepared
        if family.link.name != family.canonical_link:
            # the Laplace weights differ from PIRLS's Newton weights: the state passes form
            # their cross-products too, so the Laplace determinant costs no pass of its own
            self.pirls.laplace_kind = family.laplace_hessian

    def laplace_gradient_factory(self):
        """The exact Laplace (or quadrature) gradient on Dask input.

        Returns
        -------
        type or None
            :class:`~.glmm_gradient.DaskLaplaceGradient` where the model has one
            (:func:`~.glmm_gradient.dask_gradient_supported`), for quadrature
            :class:`~.agq_gradient.DaskAGQGradient`
            (:func:`~.agq_gradient.dask_agq_gradient_supported`), else None (BOBYQA).
        """
        from .agq_gradient import DaskAGQGradient, dask_agq_gradient_supported
        from .glmm_gradient import DaskLaplaceGradient, dask_gradient_supported

        if self.nAGQ > 1:
            return DaskAGQGradient if dask_agq_gradient_supported(self) else None
        return DaskLaplaceGradient if dask_gradient_supported(self) else None

    def stage0_gradient_factory(self):
        """The exact gradient of the nAGQ = 0 criterion on Dask input (the in-memory
        stage's, from the same reductions as the Laplace one).

        Returns
        -------
        type or None
            :class:`~.glmm_gradient.DaskStage0Gradient`, or None (BOBYQA; see
            :func:`~.glmm_gradient.dask_gradient_supported`).
        """
        from .glmm_gradient import DaskStage0Gradient, dask_gradient_supported

        return DaskStage0Gradient if dask_gradient_supported(self, stage0=True) else None

    # -- what the in-memory objective reads from the rows --------------------------------
    def _saturated(self, fam, phi: float) -> float:
        """``sum_i s_i(phi) = sum_i s_i(1) + sum_k n_k [s(w_k, phi) - s(w_k, 1)]`` over
        the distinct prior weights ``w_k`` (``n_k`` rows each): for the families with a
        dispersion ``s_i(phi) - s_i(1)`` depends on ``w_i`` alone (Gaussian and inverse
        Gaussian: ``log phi``; Gamma: through the shape ``w_i / phi``), so the sum at any
        ``phi`` costs no pass once ``sum_i s_i(1)`` and the weights' counts are known."""
        base = self.pirls.saturated_sum()
        if not fam.has_dispersion or phi == 1.0:
            return base
        w, counts = self.pirls.weight_counts()
        one = np.ones(w.size)          # the difference does not depend on y
        return base + float(counts @ (fam.saturated(one, w, phi) - fam.saturated(one, w, 1.0)))

    def _value(self, pr, fam, phi, nagq: int):
        """The Laplace deviance (see :meth:`GLMMObjective._value`), the dispersion
        profiled from the weights' counts (:meth:`_saturated`); for nAGQ > 1 (one
        scalar term) adaptive quadrature from one pass of per-level sums at the nodes
        (:func:`~.glmm_pass.agq_partition`)."""
        logdet, L11, _ = self._laplace_logdet(pr, fam)
        total = pr.dev + pr.sqr_u
        if fam.has_dispersion and phi is None:
            w, counts = self.pirls.weight_counts()
            phi = fam.profile_dispersion(np.ones(w.size), w, total, counts=counts)
        phi = 1.0 if phi is None else phi
        if nagq <= 1:
            return float(total / phi + self._saturated(fam, phi) + logdet), phi, logdet
        lam = float(self.design.terms[0].structure.lambda_(pr.theta)[0, 0])
        L_diag = L11[:, 0, 0]
        pirls = self.pirls
        sums = pirls._reduce(agq_partition, combine_arrays, pirls.basis.R_inv, pr.eta,
                             int(nagq), lam, np.sqrt(phi) / L_diag, float(phi))
        return agq_from_sums(nagq, sums, u=pr.u, L_diag=L_diag, phi=phi), phi, logdet

    def _laplace_logdet(self, pr, fam):
        kind = fam.laplace_hessian if self.hessian is None else self.hessian
        if fam.link.name == fam.canonical_link or (kind == "observed") == pr.observed:
            return pr.logdet, pr.L11, None
        w = RowWeights(pr.eta, kind)
        logdet, L11 = self.pirls.logdet_at(pr.theta, w)
        return logdet, L11, w

    def _solution(self, pr, fam, phi, nagq: int) -> GLMMSolution:
        value, phi, logdet = self._value(pr, fam, phi, nagq)
        kind = fam.laplace_hessian if self.hessian is None else self.hessian
        f = self.pirls.factor_at(pr.theta, RowWeights(pr.eta, kind))
        b = list(pr.eta.b)
        return GLMMSolution(pr.theta, pr.beta, phi, fam, value, pr.u, b, pr.eta, pr.mu,
                            logdet, f, pr)

    # -- the hooks of glmer's fit (fitting/glmm.py) -------------------------------------
    def level_information(self, sol0: GLMMSolution) -> list:
        """Per term, ``sum_i w_i |z_i|^2`` of each level at the Fisher weights of ``sol0``."""
        return self.pirls.weights_cross(RowWeights(sol0.eta, "fisher"), "X").levels

    def separated_columns(self, sol0: GLMMSolution) -> np.ndarray:
        """:func:`~mixedmodels.diagnostics.separation.separated_columns` from the summed
        information ``X~' W X~`` and the column norms of ``X`` (from pass 2's ``R``)."""
        part = self.pirls.weights_cross(RowWeights(sol0.eta, "fisher"), "X")
        p = self.p
        qr = self._prepared.qr
        R_x = qr.R_unweighted if qr.R_unweighted is not None else qr.R[:, :p]
        norms = np.linalg.norm(R_x[:, :p], axis=0)
        return separated_from_information(self.pirls.basis, part.cross.AXX[:p, :p],
                                          part.top, norms)

    def eta_range(self, sol: GLMMSolution) -> np.ndarray:
        """``[min eta, max eta]`` at the solution (what the link-edge check reads)."""
        pr = self.pirls
        out = pr._reduce(state_partition, combine_state, pr.basis.R_inv, sol.eta, None, None,
                         False, None)
        return np.array([out.eta_min, out.eta_max])


def _check_supported(family, nAGQ, covariance_matrices) -> None:
    del family, nAGQ        # (nAGQ > 1: check_nagq's rule, one scalar term, as in memory)
    if covariance_matrices is not None:
        raise NotImplementedError(
            "covariance_matrices= is not supported on Dask input (known matrices of "
            "propto/equalto terms are the data's); fit on a pandas DataFrame")


def _check_design(prepared: Prepared, family) -> None:
    """glmer's design checks (:func:`~mixedmodels.fitting.glmm.glmm_design`) on the
    reduced design."""
    from ...fitting.glmm import check_response_varies

    d = prepared.plan.design
    qr = prepared.qr
    check_response_varies(np.array([qr.resp_min, qr.resp_max]) if qr.resp_min <= qr.resp_max
                          else np.zeros(0), family, d.spec.response)
    for t in d.terms:
        if t.nlevels < 2:
            raise DataError(
                f"grouping factor {t.group!r} has only {t.nlevels} level; a random effect "
                "needs at least 2 groups (drop the term or use a fixed effect)")
        if t.nlevels > d.nobs:
            raise DataError(
                f"grouping factor {t.group!r} has {t.nlevels} levels for {d.nobs} "
                "observations; a grouping factor cannot have more levels than observations")
    if d.p >= d.nobs:
        raise DataError(f"{d.p} fixed effects for {d.nobs} observations: too few "
                        "observations")


def _nb_start(prepared: Prepared, link: str, optimizer: str, optimizer_settings
              ) -> tuple[float, int]:
    """glmer_nb's starting shape (lme4's) and the passes it took: the ML shape given the
    means of the nAGQ = 0 Poisson fit, its score summed over partitions (one pass per
    root-search step)."""
    from ...families import Poisson
    from ...families.family import nb_theta_from_score
    from ...fitting.glmm import _stage0

    pois = DaskGLMMObjective(prepared.frame, prepared, Poisson(link), 0)
    _, th, _ = _stage0(pois, prepared.plan.design.theta0(), optimizer, optimizer_settings)
    state = pois.solve0(th).eta
    k0 = nb_theta_from_score(lambda k: pois.pirls.nb_score(state, k))
    return k0, pois.pirls.n_passes


def fit_glmer_dask(formula: str, data, family, *, nAGQ: int, weights, offset, start,
                   optimizer: str, optimizer_settings, calc_derivs: bool, check_conv: bool,
                   contrasts, covariance_matrices=None, scheduler=None,
                   estimate_shape: bool = False) -> DaskGLMMResult:
    """:func:`~mixedmodels.glmer` on a Dask DataFrame or parquet path (module docstring);
    with ``estimate_shape`` (``family`` a negative binomial) :func:`~mixedmodels.glmer_nb`:
    the shape starts from lme4's estimate on the Poisson fit (``start["nb_theta"]``
    overrides it) and is then a parameter of glmer's Laplace optimization, as in memory.

    Returns
    -------
    DaskGLMMResult
        The fit; ``fitted``, ``residuals`` and ``predict`` on Dask data are lazy.
    """
    from ...fitting.glmm import _fit_glmm

    _check_supported(family, nAGQ, covariance_matrices)
    frame = as_dask_frame(data)
    spec = parse_formula(formula)
    if not spec.random:
        raise FormulaError(f"formula {spec.formula!r} has no random-effects term such as "
                           "(1 | group)")
    t0 = time.perf_counter()
    with scheduler_context(scheduler):
        check = functools.partial(_check_response, family, repr(spec.response))
        prepared = prepare(formula, frame, weights=weights, offset=offset,
                           contrasts=contrasts, response=make_response(family),
                           response_vars=response_variables(spec.response), check=check)
        _check_design(prepared, family)
        design = prepared.plan.design
        check_nagq(design, nAGQ)
        t1 = time.perf_counter()
        passes = 0
        with blas_threads(dense_block_size(design.terms)):
            if estimate_shape:
                start = dict(start or {})
                k0 = start.pop("nb_theta", None)
                if k0 is None:
                    k0, passes = _nb_start(prepared, family.link.name, optimizer,
                                           optimizer_settings)
                family = family.with_theta(float(k0))
            obj = DaskGLMMObjective(prepared.frame, prepared, family, nAGQ,
                                    estimate_shape=estimate_shape)
            result = _fit_glmm(design, family, nAGQ, estimate_shape, start, optimizer,
                               optimizer_settings, calc_derivs, check_conv, obj=obj)
    timings = {"scan_and_qr_s": t1 - t0, "fit_s": time.perf_counter() - t1,
               "passes": obj.pirls.n_passes + passes}
    values = {f.name: getattr(result, f.name) for f in fields(result) if f.init}
    return DaskGLMMResult(**values, data=prepared.frame, plan=prepared.plan,
                          timings=timings)

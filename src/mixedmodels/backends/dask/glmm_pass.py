r"""The row-level seam of a GLMM on Dask input: one pass over the partitions per PIRLS step.

PIRLS (:mod:`mixedmodels.objective.pirls`) touches the n rows only to form

* the linear predictor ``eta = X beta + offset + Z b`` of a state ``(beta, b)``, its mean
  ``mu``, the deviance ``sum_i d_i(y_i, mu_i)`` and whether ``mu`` is in the family's range;
* the weighted cross-products ``[Z X~ z]' W [Z X~ z]`` with the step's working weights
  ``W`` and working response ``z`` at that state (the least-squares system of the next step);
* the largest change of ``eta`` from the previous state (its convergence test).

:func:`state_partition` computes all of these for one partition at once (``b`` enters as
the per-level random effects ``b_k = Lambda_k u_k``, so ``Z b`` is one gather per term),
and :func:`combine_state` sums them. A PIRLS step is then one distributed reduction: the
pass that evaluates the deviance of a trial step also forms the cross-products of the next
one at the trial point (speculatively: they are used when the step is accepted, as nearly
every step is). :func:`weights_partition` forms cross-products for given weights at a
state (the Laplace factor of a solution, ``R_X``, the per-level information the optimizer
is scaled with), :func:`start_partition` the pieces of lme4's starting values, and
:func:`saturated_partition` the saturated log-likelihood sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ...families.family import nb_theta_score
from ...linalg import CrossProductPattern, TermBlock, add_cross_products, merge_blocks
from ...objective.pirls import PIRLS, binomial_coefficient_shift
from .plan import PartitionArrays, PartitionPlan

__all__ = ["PartitionRows", "PassPart", "RowState", "RowWeights", "StartPart", "combine_start",
           "combine_state", "combine_sums", "combine_weights", "m2ll_function",
           "materialize_partition",
           "saturated_partition",
           "start_partition", "state_partition", "weights_partition"]


@dataclass(frozen=True)
class RowState:
    """A point of PIRLS as the workers see it: ``eta = X beta + offset + Z b``.

    Stands in for the length-n ``eta`` and ``mu`` of an in-memory
    :class:`~mixedmodels.objective.pirls.PIRLSResult` (they exist only on the workers).

    Attributes
    ----------
    beta : ndarray (p,)
        Fixed effects in the user's basis.
    b : tuple of ndarray (levels, p_k)
        Random effects per term (``Lambda_k u_k``).
    """

    beta: np.ndarray
    b: tuple
    #: the offset is part of ``eta`` (False: ``X beta + Z b`` alone, a change of eta)
    offset: bool = True


@dataclass(frozen=True)
class RowWeights:
    """Weights at a state, by kind: ``"fisher"`` (PIRLS's Fisher working weights), or the
    Laplace Hessian's ``"expected"`` / ``"observed"`` information."""

    state: RowState
    kind: str


@dataclass
class PassPart:
    """What :func:`state_partition` returns for some rows (summed by
    :func:`combine_state`).

    Attributes
    ----------
    n : int
    valid : bool
        ``eta`` and ``mu`` are in the link's and family's range.
    dev : float
        Sum of prior-weighted unit deviances (inf when not valid).
    max_deta : float
        Largest ``|eta - eta_ref|``.
    eta_min, eta_max : float
    cross : CrossProducts or None
        Step cross-products at the state.
    laplace : CrossProducts or None
        ``Z' W Z`` (and ``Z' W 1``) with the Laplace weights at the state.
    slack : float
        ``sum_i |eta_i| |w_i r_i|`` (the deviance's rounding noise, PIRLS's
        ``ETA_ROUNDING_FACTOR``).
    top : float
        Largest working weight per unit of prior weight (the ridge scale).
    observed : bool
        Every partition used the observed-information weights (Newton steps).
    mixed : bool
        Some partitions used the observed weights and some Fisher's (their observed
        weights were not all positive): the client repeats the pass with Fisher's.
    """

    n: int = 0
    valid: bool = True
    dev: float = 0.0
    max_deta: float = 0.0
    eta_min: float = np.inf
    eta_max: float = -np.inf
    cross: object = None
    laplace: object = None
    slack: float = 0.0
    top: float = 0.0
    observed: bool = True
    mixed: bool = False
    any_observed: bool = False


def _blocks(plan: PartitionPlan, a: PartitionArrays) -> list[TermBlock]:
    """The partition's blocks of the cross-products: one per term, or the plan's merge
    of the terms on one grouping factor (the client's PIRLS system's blocks)."""
    return merge_blocks(plan.block_groups, [
        TermBlock(c, np.ascontiguousarray(Z), t.nlevels)
        for c, Z, t in zip(a.codes, a.Z, plan.design.terms, strict=True)])


@dataclass
class PartitionRows:
    """A partition materialized once per fit and kept on its worker (``dask.persist``):
    its arrays, ``X~ = X R^{-1}`` and the index pattern of its cross-products, which every
    PIRLS pass would otherwise rebuild from the raw columns."""

    a: PartitionArrays
    Xt: np.ndarray
    pattern: CrossProductPattern | None


def materialize_partition(part, index: int, plan: PartitionPlan,
                          R_inv: np.ndarray) -> PartitionRows:
    """:class:`PartitionRows` of one partition."""
    a = plan.arrays(part)
    pattern = CrossProductPattern(_blocks(plan, a)) if len(a.y) else None
    return PartitionRows(a, a.X @ R_inv, pattern)


def _rows(part, plan: PartitionPlan, R_inv: np.ndarray) -> PartitionRows:
    return part if isinstance(part, PartitionRows) else \
        materialize_partition(part, 0, plan, R_inv)


def _random_part(a: PartitionArrays, b) -> np.ndarray:
    out = np.zeros(len(a.y))
    for Z, codes, bk in zip(a.Z, a.codes, b, strict=True):
        out += np.einsum("ij,ij->i", Z, bk[codes]) if Z.shape[1] > 1 \
            else Z[:, 0] * bk[codes, 0]
    return out


def _prior(a: PartitionArrays) -> np.ndarray:
    p = a.prior
    return np.ones(len(a.y)) if p is None else p


def _workspace(a: PartitionArrays, family, prior: np.ndarray) -> SimpleNamespace:
    """The attributes :meth:`PIRLS._step_weights` reads, for this partition's rows: the
    in-memory rule (Newton or Fisher weights, working residual) applied unchanged."""
    return SimpleNamespace(_family=family, prior=prior, y=a.y,
                           _canonical=family.link.name == family.canonical_link)


def _mean(family, eta: np.ndarray):
    """``(mu, mu_eta)``, or None outside the link's / family's range (PIRLS's ``_state``)."""
    link = family.link
    if link.restricted_eta and not link.valid_eta(eta):
        return None
    mu, me = link.inverse_and_slope(eta)
    if not (family.name == "binomial" and link.bounded) and not family.valid_mu(mu):
        return None
    return mu, me


def _xy(Xt: np.ndarray, column: np.ndarray | None, with_x: bool) -> np.ndarray:
    cols = [Xt] if with_x else []
    if column is not None:
        cols.append(column[:, None])
    return np.hstack(cols) if len(cols) > 1 else cols[0]


def state_partition(part, index: int, plan: PartitionPlan, family, R_inv: np.ndarray,
                    state: RowState, ref: RowState | None, mode: str | None, fisher: bool,
                    laplace: str | None) -> PassPart:
    """One partition's share of a PIRLS pass (module docstring).

    Parameters
    ----------
    state, ref : RowState
        The point evaluated and the one ``max_deta`` is measured from (None: no change).
    mode : {None, "joint", "u"}
        Cross-products for the next step: of ``[X~, eta - offset + r]`` (beta and u
        jointly, nAGQ = 0), of ``[Z b + r]`` (u at fixed beta), or none.
    fisher : bool
        Fisher scoring weights even where Newton's would apply.
    laplace : {None, "expected", "observed"}
        Also the Laplace cross-products of that kind.
    """
    rows = _rows(part, plan, R_inv)
    a = rows.a
    out = PassPart(n=len(a.y))
    if not len(a.y):
        return out
    prior = _prior(a)
    zb = _random_part(a, state.b)
    fixed = a.X @ state.beta + a.offset if state.offset else a.X @ state.beta
    eta = fixed + zb
    if not state.offset:            # a change of eta, not a point: its size only
        out.max_deta = float(np.max(np.abs(eta)))
        return out
    out.eta_min, out.eta_max = float(eta.min()), float(eta.max())
    if ref is not None:
        eta_ref = a.X @ ref.beta + a.offset + _random_part(a, ref.b)
        out.max_deta = float(np.max(np.abs(eta - eta_ref)))
    means = _mean(family, eta)
    dev = np.inf if means is None else family.deviance_function(a.y, prior)(means[0])
    if not np.isfinite(dev):
        out.valid, out.dev = False, np.inf
        return out
    out.dev = float(dev)
    mu, me = means
    if mode is not None:
        w, wres, observed = PIRLS._step_weights(_workspace(a, family, prior), eta, mu, me,
                                                fisher)
        out.observed = out.any_observed = observed
        # with X~ also for u at fixed beta: Z' W X~ gives the modes' sensitivity to beta
        column = (eta - a.offset + wres) if mode == "joint" else zb + wres
        XY = _xy(rows.Xt, column, True)
        out.cross = rows.pattern.compute(XY, w)
        out.slack = float(np.abs(eta) @ np.abs(w * wres))
        pos = prior > 0
        out.top = float(np.max(w[pos] / prior[pos])) if pos.any() else 0.0
    if laplace is not None:
        wl = family.laplace_weights(a.y, eta, mu, prior, laplace)
        out.laplace = rows.pattern.compute(np.ones((len(a.y), 1)), wl)
    return out


def _plus(x, y):
    if x is None:
        return y
    if y is None:
        return x
    return add_cross_products(x, y)


def combine_state(parts: list) -> PassPart:
    """Sum of :func:`state_partition` results (``combine_state([x])`` is ``x``)."""
    if len(parts) == 1:
        return parts[0]
    out = PassPart()
    for p in parts:
        if not p.n:
            continue
        out.n += p.n
        out.valid = out.valid and p.valid
        out.dev += p.dev
        out.max_deta = max(out.max_deta, p.max_deta)
        out.eta_min, out.eta_max = min(out.eta_min, p.eta_min), max(out.eta_max, p.eta_max)
        out.cross = _plus(out.cross, p.cross)
        out.laplace = _plus(out.laplace, p.laplace)
        out.slack += p.slack
        out.top = max(out.top, p.top)
        out.observed = out.observed and p.observed
        out.any_observed = out.any_observed or p.any_observed
        out.mixed = out.mixed or p.mixed
    out.mixed = out.mixed or (out.any_observed and not out.observed)
    if not out.valid:
        out.dev, out.cross, out.laplace = np.inf, None, None
    return out


def _weights_of(family, a: PartitionArrays, prior, eta, kind: str) -> np.ndarray:
    mu, me = family.link.inverse_and_slope(eta)
    if kind == "fisher":
        return prior * me * me / family.variance(mu)
    return family.laplace_weights(a.y, eta, mu, prior, kind)


@dataclass
class WeightsPart:
    """Cross-products at given weights (:func:`weights_partition`), the ridge scale and,
    per term, the information ``sum_i w_i |z_i|^2`` of every level."""

    cross: object = None
    top: float = 0.0
    levels: list = field(default_factory=list)


def weights_partition(part, index: int, plan: PartitionPlan, family, R_inv: np.ndarray,
                      weights: RowWeights, columns: str) -> WeightsPart:
    """Cross-products of ``[X~]`` (``columns="X"``) or of a column of ones
    (``columns="ones"``) with the weights ``weights``; also the per-level information."""
    rows = _rows(part, plan, R_inv)
    a = rows.a
    terms = plan.design.terms
    out = WeightsPart(levels=[np.zeros(t.nlevels) for t in terms])
    if not len(a.y):
        return out
    prior = _prior(a)
    s = weights.state
    eta = a.X @ s.beta + a.offset + _random_part(a, s.b)
    w = _weights_of(family, a, prior, eta, weights.kind)
    XY = rows.Xt if columns == "X" else np.ones((len(a.y), 1))
    out.cross = rows.pattern.compute(XY, w)
    pos = prior > 0
    out.top = float(np.max(w[pos] / prior[pos])) if pos.any() else 0.0
    out.levels = [np.bincount(c, w * np.sum(Z * Z, axis=1), minlength=t.nlevels)
                  for c, Z, t in zip(a.codes, a.Z, terms, strict=True)]
    return out


def combine_weights(parts: list) -> WeightsPart:
    """Sum of :func:`weights_partition` results."""
    if len(parts) == 1:
        return parts[0]
    out = WeightsPart(levels=[np.zeros_like(v) for v in parts[0].levels])
    for p in parts:
        out.cross = _plus(out.cross, p.cross)
        out.top = max(out.top, p.top)
        out.levels = [x + y for x, y in zip(out.levels, p.levels, strict=True)]
    return out


@dataclass
class StartPart:
    """The pieces of lme4's starting values (:meth:`PIRLS._initial_beta`) for some rows:
    the weighted least-squares system of the working response at ``mustart`` (``u = 0``),
    the weighted sums that give the constant fit, and which columns of ``X`` are all
    ones."""

    XtWX: np.ndarray | None = None
    XtWz: np.ndarray | None = None
    sum_w: float = 0.0
    sum_w_eta: float = 0.0
    sum_prior: float = 0.0
    sum_prior_y: float = 0.0
    sum_prior_off: float = 0.0
    finite: bool = True
    ones: np.ndarray | None = None


def start_partition(part, index: int, plan: PartitionPlan, family,
                    R_inv: np.ndarray) -> StartPart:
    """One partition's :class:`StartPart`."""
    rows = _rows(part, plan, R_inv)
    a = rows.a
    p = plan.design.p
    out = StartPart(np.zeros((p, p)), np.zeros(p), ones=np.ones(p, dtype=bool))
    if not len(a.y):
        return out
    prior = _prior(a)
    mu0 = family.mustart(a.y, prior)
    eta0 = family.link.link(mu0)
    out.finite = bool(np.all(np.isfinite(eta0)))
    if not out.finite:
        return out
    me = family.link.mu_eta(eta0)
    w = family.fisher_weights(eta0, mu0, prior)
    z = eta0 - a.offset + (a.y - mu0) / me
    Xt = rows.Xt
    out.XtWX = Xt.T @ (w[:, None] * Xt)
    out.XtWz = Xt.T @ (w * z)
    out.sum_w, out.sum_w_eta = float(w.sum()), float(w @ (eta0 - a.offset))
    out.sum_prior, out.sum_prior_y = float(prior.sum()), float(prior @ a.y)
    out.sum_prior_off = float(prior @ a.offset)
    out.ones = np.all(a.X == 1.0, axis=0)
    return out


def combine_start(parts: list) -> StartPart:
    """Sum of :func:`start_partition` results."""
    if len(parts) == 1:
        return parts[0]
    out = StartPart(np.zeros_like(parts[0].XtWX), np.zeros_like(parts[0].XtWz),
                    ones=np.ones_like(parts[0].ones))
    for q in parts:
        out.XtWX = out.XtWX + q.XtWX
        out.XtWz = out.XtWz + q.XtWz
        for name in ("sum_w", "sum_w_eta", "sum_prior", "sum_prior_y", "sum_prior_off"):
            setattr(out, name, getattr(out, name) + getattr(q, name))
        out.finite = out.finite and q.finite
        out.ones = out.ones & q.ones
    return out


def saturated_partition(part, index: int, plan: PartitionPlan, family,
                        R_inv: np.ndarray) -> np.ndarray:
    """``[sum_i s_i, max_i sum_j |Z_ij| per term, max_i sum_j |X_ij|]``: the saturated
    log-likelihood sum (families without a dispersion: ``phi = 1``) and the row-sum bounds
    of ``Z`` and ``X`` that PIRLS checks its moves with (how far a change of ``u`` or
    ``beta`` can move any linear predictor)."""
    a = _rows(part, plan, R_inv).a
    zmax = [float(np.max(np.sum(np.abs(Z), axis=1), initial=0.0)) for Z in a.Z]
    xmax = float(np.max(np.sum(np.abs(a.X), axis=1), initial=0.0)) if a.X.size else 0.0
    if not len(a.y):
        return np.array([0.0, *zmax, xmax])
    return np.array([float(np.sum(_saturated_terms(family, a, 1.0))), *zmax, xmax])


def _saturated_terms(family, a: PartitionArrays, phi: float) -> np.ndarray:
    """The family's saturated terms ``s_i(phi)`` of the rows, with lme4's binomial
    coefficients for a cbind response with prior weights
    (:func:`~mixedmodels.objective.pirls.binomial_weights_shift`, as in memory)."""
    sat = family.saturated(a.y, _prior(a), phi)
    shift = binomial_coefficient_shift(a.y, a.weights, a.trials)
    return sat if shift is None else sat + shift


def combine_sums(parts: list) -> np.ndarray:
    """The sum of the first entries and the maxima of the others."""
    out = np.array(parts[0], dtype=float)
    for p in parts[1:]:
        out[0] += p[0]
        out[1:] = np.maximum(out[1:], p[1:])
    return out


#: Distinct values that a histogram pass (:func:`value_counts_partition`) returns at most;
#: beyond them the client cannot reduce per-row sums to sums over distinct values.
MAX_DISTINCT_VALUES = 100_000


def value_counts_partition(part, index: int, plan: PartitionPlan, family,
                           R_inv: np.ndarray, what: str) -> tuple | None:
    """A histogram of some rows, None beyond :data:`MAX_DISTINCT_VALUES` values.

    ``what="prior"``: the distinct prior weights and how many rows have each (a
    dispersion family's ``s_i(phi) - s_i(1)`` depends on ``w_i`` only, so these give its
    profiled ``phi`` and ``sum_i s_i(phi)`` exactly); ``"response"``: the distinct
    responses and the sum of the prior weights of their rows (the saturated terms of
    counts are ``w_i`` times a function of ``y_i``, so these give glmer_nb's
    ``sum_i s_i`` at every shape).
    """
    del family
    a = _rows(part, plan, R_inv).a
    prior = _prior(a)
    values, inverse = np.unique(prior if what == "prior" else a.y, return_inverse=True)
    if values.size > MAX_DISTINCT_VALUES:
        return None
    return values, np.bincount(inverse, weights=None if what == "prior" else prior,
                               minlength=values.size).astype(float)


def combine_value_counts(parts: list) -> tuple | None:
    """The merged histograms of :func:`value_counts_partition` (None if any is)."""
    if any(p is None for p in parts):
        return None
    values, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    if values.size > MAX_DISTINCT_VALUES:
        return None
    counts = np.concatenate([p[1] for p in parts])
    return values, np.bincount(inverse, weights=counts, minlength=values.size)


def nb_score_partition(part, index: int, plan: PartitionPlan, family, R_inv: np.ndarray,
                       state: RowState, k: float) -> float:
    """Some rows' :func:`~mixedmodels.families.family.nb_theta_score` at the means of
    ``state`` (glmer_nb's starting shape on the Poisson fit's means)."""
    a = _rows(part, plan, R_inv).a
    if not len(a.y):
        return 0.0
    eta = a.X @ state.beta + a.offset + _random_part(a, state.b)
    return nb_theta_score(a.y, family.link.linkinv(eta), _prior(a), k)


def combine_total(parts: list) -> float:
    """The sum of scalars."""
    return float(sum(parts))


def agq_partition(part, index: int, plan: PartitionPlan, family, R_inv: np.ndarray,
                  state: RowState, nodes: int, lam: float, scale: np.ndarray,
                  phi: float) -> np.ndarray:
    """One partition's per-level sums of ``-2 log p`` at the modes and at every
    quadrature node (:func:`~mixedmodels.objective.agq.agq_level_sums`; one scalar term)."""
    from ...objective.agq import agq_level_sums

    rows = _rows(part, plan, R_inv)
    a = rows.a
    term = plan.design.terms[0]
    if not len(a.y):
        return np.zeros((int(nodes) + 1, term.nlevels))
    eta = a.X @ state.beta + a.offset + _random_part(a, state.b)
    m2ll_of_mu = m2ll_function(family, a, phi)
    linkinv = family.link.linkinv

    def m2ll(e):
        return m2ll_of_mu(linkinv(e))

    return agq_level_sums(nodes, eta=eta, codes=a.codes[0], zcol=a.Z[0][:, 0], lam=lam,
                          scale=scale, m2ll=m2ll, nlevels=term.nlevels)


def m2ll_function(family, a: PartitionArrays, phi: float):
    """``mu -> -2 log p(y_i | mu_i)`` on one partition's rows at dispersion ``phi`` (the
    Dask quadrature's: the unit deviance over ``phi`` plus the saturated term, ``inf``
    outside the family's range)."""
    prior = _prior(a)
    sat = _saturated_terms(family, a, phi)           # does not depend on eta

    def m2ll(mu):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            out = family.dev_resids(a.y, mu, prior) / phi + sat
        return np.where(np.isfinite(out), out, np.inf)

    return m2ll


def combine_arrays(parts: list) -> np.ndarray:
    """Sum of arrays of one shape."""
    return parts[0] if len(parts) == 1 else np.sum(parts, axis=0)

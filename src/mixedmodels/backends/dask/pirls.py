"""PIRLS with the rows on the workers: the in-memory iteration, one reduction per step.

:class:`DaskPIRLS` runs :meth:`PIRLS.fit <mixedmodels.objective.pirls.PIRLS.fit>` itself
(the same least-squares systems, factorization, step-halving rule with its rounding
slack, Newton steps with the Fisher-scoring fallback, convergence test and stagnation
stop: the iteration is written once) and overrides only the hooks that read the rows,
with the passes of :mod:`.glmm_pass`. Each iteration is one pass: the pass that
evaluates the trial step also returns the cross-products of the next step at the trial
point. ``eta`` and ``mu`` of its results are :class:`~.glmm_pass.RowState` handles; the
factor, the modes and the sums are exactly what the in-memory PIRLS has.

The predicted start of the next solve (the modes' first-order sensitivity to theta and
beta) is computed from the summed cross-products, so the outer evaluations start where
the in-memory ones do. One pass is saved per solve: when the bound of
:meth:`DaskPIRLS._step_below_tol` shows that a step moves no ``u`` and no linear
predictor by ``tol``, the in-memory PIRLS stops at that step whatever its trial says, and
the Dask PIRLS stops before making the trial pass (the returned point differs from the
in-memory one by less than ``tol``; the factor and ``log|L|^2`` are the same).

One in-memory refinement is left out, as it would cost passes of its own: the
convergence test that ignores observations at the edge of the family's range under
complete separation (the iteration then runs until the deviance stagnates, which it also
stops at).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...families import NegativeBinomial
from ...linalg import BlockLayout, TermBlock
from ...objective.pirls import ETA_ROUNDING_FACTOR as _ETA_ROUNDING
from ...objective.pirls import (
    PDEV_ROUNDING,
    PIRLS,
    PIRLS_MAX_HALVINGS,
    PIRLS_MAXIT,
    PIRLS_TOL,
    SLACK_MAX,
    XX_RIDGE,
    PIRLSError,
    StepSystem,
    first_factor_merge,
    link_keeps_range,
    pirls_systems,
)
from .glmm_pass import (
    MAX_DISTINCT_VALUES,
    RowState,
    RowWeights,
    combine_start,
    combine_state,
    combine_sums,
    combine_total,
    combine_value_counts,
    combine_weights,
    materialize_partition,
    nb_score_partition,
    saturated_partition,
    start_partition,
    state_partition,
    value_counts_partition,
    weights_partition,
)
from .reduce_tree import map_reduce
from .source import require_dask

__all__ = ["DaskPIRLS"]

_EPS = float(np.finfo(float).eps)


class _ChangeOfEta:
    """``Z Lambda du`` on the workers, for ``np.max(np.abs(...))`` only (one pass)."""

    def __init__(self, pirls, state: RowState):
        self.pirls, self.state = pirls, state

    def __abs__(self):
        return self

    def max(self, *args, **kwargs) -> float:
        del args, kwargs
        return self.pirls._pass(self.state, None, None, False).max_deta

    def __array_function__(self, func, types, args, kwargs):
        if func is np.max:
            return self.max()
        return NotImplemented

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.absolute and method == "__call__":
            return self
        return NotImplemented


@dataclass
class _PassPoint:
    """A point of PIRLS's iteration on the workers: its state and the pass at it (with
    the cross-products of the next step, formed with Fisher scoring's weights or not).
    Mutable: when Fisher scoring takes over, the point's pass is redone with its weights
    (:meth:`DaskPIRLS._step_system`) and replaces the first."""

    state: RowState
    part: object
    fisher: bool
    mode: str

    @property
    def valid(self) -> bool:
        return self.part.valid

    @property
    def dev(self) -> float:
        return self.part.dev


class DaskPIRLS(PIRLS):
    """PIRLS on a Dask frame (module docstring).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The model's columns.
    prepared : Prepared
        Plan and fixed-effects basis (:func:`~.prepare.prepare`, prior weights with the
        binomial trials).
    family : Family
    tol, maxit, max_halvings
        As for the in-memory PIRLS.

    Attributes
    ----------
    n_passes : int
        Distributed passes made so far.
    """

    def __init__(self, frame, prepared, family, *, tol: float = PIRLS_TOL,
                 maxit: int = PIRLS_MAXIT, max_halvings: int = PIRLS_MAX_HALVINGS):
        design = prepared.plan.design
        self.frame, self.plan, self.design = frame, prepared.plan, design
        self.tol, self.maxit, self.max_halvings = float(tol), int(maxit), int(max_halvings)
        self.basis = prepared.basis
        self.n, self.p, self.q = design.nobs, design.p, design.q
        blocks = [TermBlock(np.zeros(0, np.int64), np.zeros((0, t.p)), t.nlevels)
                  for t in design.terms]
        # the in-memory PIRLS's blocks (terms on the first term's grouping factor merged);
        # the partitions form their cross-products in the same blocks (plan.block_groups)
        self.merge = first_factor_merge(design, blocks)
        self.pattern = BlockLayout(blocks if self.merge is None else self.merge.blocks)
        self.system, self.psystem = pirls_systems(self.pattern, design, self.merge)
        if self.merge is not None:
            self.plan = dataclasses.replace(self.plan, block_groups=self.merge.groups)
            self._to_merged = np.argsort(self.merge.u_index)
        self.slices = design.theta_slices()
        self._blocks, off = [], 0
        for t in design.terms:
            self._blocks.append((off, t.q, t.nlevels, t.p))
            off += t.q
        self.n_iter_total = 0
        self.n_passes = 0
        self.u_start = np.zeros(self.q)
        self.beta_start: np.ndarray | None = None
        # the system at fixed beta carries X~ too (for the modes' sensitivity to beta):
        # beta = 0 picks the response column
        self._no_beta = np.zeros(self.p)
        self.predict = True
        self._ref = None
        self.beta_prior_root = None
        #: Laplace weights kind the state passes also form cross-products for (set by the
        #: objective when they differ from PIRLS's last weights), and the last of them
        self.laplace_kind: str | None = None
        self.last_laplace: tuple | None = None
        self._saturated_sum: float | None = None
        self._value_counts: dict = {}
        self._bounds: np.ndarray | None = None
        self._weights_memo: tuple | None = None
        self._rows: list | None = None
        self._consts: tuple | None = None
        self.family = family

    def _settled(self, lams, du, dbeta, joint: bool, tol: float) -> bool:
        """Never: the in-memory bound reads ``X`` (``self.Xt``), which lives on the
        workers here; a distributed solve keeps its last trial evaluation."""
        del lams, du, dbeta, joint, tol
        return False

    @property
    def family(self):
        return self._family

    @family.setter
    def family(self, fam) -> None:
        if fam is getattr(self, "_family", None):
            return
        self._family = fam
        self._canonical = fam.link.name == fam.canonical_link
        self.link_keeps_range = link_keeps_range(fam)
        self._saturated_sum = None

    @property
    def prior(self):
        raise AttributeError("the prior weights of a Dask fit stay on the cluster")

    # -- passes -----------------------------------------------------------------------
    def _persisted(self):
        """The partitions materialized once (:class:`~.glmm_pass.PartitionRows`) and kept
        where they were computed: on the workers under dask.distributed."""
        if self._rows is None:
            dask, _ = require_dask()
            from dask import delayed

            parts = [delayed(materialize_partition)(part, i, self.plan, self.basis.R_inv)
                     for i, part in enumerate(self.frame.to_delayed())]
            self._rows = list(dask.persist(*parts))
        return self._rows

    def _constants(self, family):
        """The plan, the family and ``R^{-1}`` sent to the cluster once (persisted), not
        serialized into the graph of every pass."""
        dask, _ = require_dask()
        from dask import delayed

        if self._consts is None:
            (plan,) = dask.persist(delayed(self.plan))
            self._consts = (None, plan, None)
        if self._consts[0] is not family:       # glmer_nb: a new shape, the same plan
            (fam,) = dask.persist(delayed(family))
            self._consts = (family, self._consts[1], fam)
        return self._consts[1:]

    def _reduce(self, chunk, combine, *args):
        self.n_passes += 1
        return map_reduce(self._persisted(), chunk, combine,
                          *self._constants(self._family), *args)

    def state(self, beta_user: np.ndarray, lams, u: np.ndarray,
              offset: bool = True) -> RowState:
        """The handle of ``eta = X beta + offset + Z Lambda u``."""
        b = []
        for (off, q, nlev, p), lam in zip(self._blocks, lams, strict=True):
            b.append(u[off:off + q].reshape(nlev, p) @ lam.T)
        return RowState(np.asarray(beta_user, dtype=float), tuple(b), offset)

    def _pass(self, s: RowState, ref: RowState | None, mode: str | None, fisher: bool):
        laplace = self.laplace_kind if mode is not None else None
        out = self._reduce(state_partition, combine_state, self.basis.R_inv, s, ref, mode,
                           fisher, laplace)
        if out.valid and out.mixed:
            # partitions disagreed on Newton vs Fisher weights: Fisher's everywhere, as
            # the in-memory rule decides on all rows at once
            out = self._reduce(state_partition, combine_state, self.basis.R_inv, s, ref,
                               mode, True, laplace)
            out.observed = False
        if laplace is not None and out.valid:
            self.last_laplace = (s, laplace, out.laplace)
        return out

    def _sums(self) -> np.ndarray:
        """:func:`~.glmm_pass.saturated_partition` over all rows (one pass per family)."""
        if self._saturated_sum is None:
            self._saturated_sum = self._reduce(saturated_partition, combine_sums,
                                               self.basis.R_inv)
        return self._saturated_sum

    def value_counts(self, what: str) -> tuple[np.ndarray, np.ndarray] | None:
        """:func:`~.glmm_pass.value_counts_partition` over all rows (one pass, kept;
        None beyond :data:`~.glmm_pass.MAX_DISTINCT_VALUES` values)."""
        if what not in self._value_counts:
            self._value_counts[what] = self._reduce(
                value_counts_partition, combine_value_counts, self.basis.R_inv, what)
        return self._value_counts[what]

    def weight_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct prior weights and how many rows have each (a dispersion family's
        profile; refused beyond :data:`~.glmm_pass.MAX_DISTINCT_VALUES`)."""
        out = self.value_counts("prior")
        if out is None:
            raise NotImplementedError(
                f"the {self._family.name} family on Dask input with more than "
                f"{MAX_DISTINCT_VALUES:,} distinct prior weights: its profiled "
                "dispersion would need a pass over the rows per trial value; round "
                "or group the weights, or fit in memory (ddf.compute())")
        return out

    def nb_score(self, state: RowState, k: float) -> float:
        """The negative binomial shape's score at the means of ``state`` (one pass)."""
        return self._reduce(nb_score_partition, combine_total, self.basis.R_inv, state,
                            float(k))

    def saturated_sum(self) -> float:
        """``sum_i s_i`` of the saturated model; for a negative binomial (whose shape
        glmer_nb changes at every evaluation) from the responses' histogram, no pass
        per shape."""
        if isinstance(self._family, NegativeBinomial):
            counts = self.value_counts("response")
            if counts is not None:
                y, w = counts
                return float(np.sum(self._family.saturated(y, w, 1.0)))
        return float(self._sums()[0])

    def _row_bounds(self) -> np.ndarray:
        """The row-sum bounds of ``Z`` per term and of ``X`` (they do not depend on the
        family: kept across families)."""
        if self._bounds is None:
            self._bounds = self._sums()[1:]
        return self._bounds

    @property
    def _zmax(self) -> list:
        """Per term, p times the largest ``|Z|`` row sum (PIRLS's bound on how far a
        change of u moves eta)."""
        zmax = self._row_bounds()[:len(self._blocks)]
        return [p * float(z) for (_, _, _, p), z in zip(self._blocks, zmax, strict=True)]

    def _step_below_tol(self, lams, du: np.ndarray, dbeta: np.ndarray, joint: bool,
                        tol: float) -> bool:
        """Whether the step ``(du, dbeta)`` certainly changes every ``u`` and every linear
        predictor by less than ``tol``, judged on the bound
        ``sum_k |Lambda_k|_max |Z_k|_max max|du| + |X|_max max|R^{-1} dbeta|`` (no pass).

        The in-memory PIRLS stops at such a step whatever its trial pass says: accepted,
        its change is below ``tol``; refused by step-halving, ``max|du| < tol`` ends the
        iteration as rounding noise at the mode. The Dask PIRLS stops before that pass
        (one pass fewer per solve) and returns the point the step starts from, within
        ``tol`` of the in-memory one's; the factor, ``log|L|^2`` and the next start are
        those of this same iteration in both.
        """
        if np.max(np.abs(du), initial=0.0) >= tol:
            return False
        bound = 0.0
        for lam, zmax in zip(lams, self._zmax, strict=True):
            bound += (np.abs(lam).max() if lam.size else 0.0) * zmax
        bound *= np.max(np.abs(du), initial=0.0)
        if joint and dbeta.size:
            bound += float(self._row_bounds()[-1]) * \
                np.max(np.abs(self.basis.to_user(dbeta)))
        return bound < tol

    def _random_part(self, lams, u) -> _ChangeOfEta:
        """``Z Lambda u`` as the workers see it; :meth:`PIRLS._small_move` takes only its
        largest absolute value."""
        return _ChangeOfEta(self, self.state(np.zeros(self.p), lams, u, offset=False))

    # -- the modes' sensitivity (the predicted start of the next solve) ---------------------
    def _zwz(self, A, v: np.ndarray) -> np.ndarray:
        """``Z' W Z v`` from the blocks of the cross-products ``A`` (``v`` and the result
        in the terms' order; ``A`` in the blocks', merged or not)."""
        pat = self.pattern
        q1 = pat.q1
        if self.merge is not None:
            v = v[self._to_merged]
        out = np.einsum("lab,lb->la", A.A11, v[:q1].reshape(pat.l1, pat.p1)).ravel()
        if A.A21 is not None:
            vr = v[q1:]
            out = np.concatenate([out + A.A21.T @ vr, A.A21 @ v[:q1] + A.A22 @ vr])
        return out if self.merge is None else out[self.merge.u_index]

    def _z_columns(self, A, k: int) -> np.ndarray:
        """``Z' W XY[:, k]`` (q,) or, for a slice ``k``, (q, len) from ``A``, in the
        terms' order."""
        c1 = A.A1X[:, :, k]
        c1 = c1.reshape(self.pattern.q1, -1) if c1.ndim == 3 else c1.ravel()
        out = c1 if A.ArX is None else np.concatenate([c1, A.ArX[:, k]])
        return out if self.merge is None else out[self.merge.u_index]

    def _sensitivity_from(self, theta, lams, u, A_step, A_final, f) -> np.ndarray:
        """:meth:`PIRLS._sensitivity` from cross-products: ``Z' W X~`` and ``Z' W Z`` of
        the last step's weights (``A_step``) and ``Z' g`` at the modes from ``A_final``
        (``w r = -g``, so ``Z' g = Z' W Z b - Z' W (Z b + r)``)."""
        p = self.p
        Jb = self.lambda_t(lams, self._z_columns(A_step, slice(0, p)) @ self.basis.R)
        b = self.b_from_u(lams, u)
        Zg = self._zwz(A_final, b) - self._z_columns(A_final, p)
        Ru = np.zeros((self.q, sum(t.structure.n_theta for t in self.design.terms)))
        off = 0
        for t, sl in zip(self.design.terms, self.slices, strict=True):
            if t.p == 1 and t.structure.direct and t.structure.n_theta == 1:
                v = np.zeros(self.q)
                v[off:off + t.q] = u[off:off + t.q]
                Ru[:, sl.start] = self.lambda_t(lams, self._zwz(A_step, v))
                Ru[off:off + t.q, sl.start] += Zg[off:off + t.q]
            off += t.q
        return -self.psystem.solve_M(f, np.hstack([Ru, Jb]))

    def weights_cross(self, weights: RowWeights, columns: str):
        """:class:`~.glmm_pass.WeightsPart` at ``weights`` (one pass; the last one is kept:
        the fit asks for the Fisher weights of its stage-1 solution several times)."""
        key = (weights.state, weights.kind, columns)
        last = self._weights_memo
        if last is not None and last[0][0] is key[0] and last[0][1:] == key[1:]:
            return last[1]
        out = self._reduce(weights_partition, combine_weights, self.basis.R_inv, weights,
                           columns)
        self._weights_memo = (key, out)
        return out

    # -- what the in-memory methods computed from the rows ---------------------------------
    def fisher_weights_at(self, eta, mu) -> RowWeights:
        del mu
        return RowWeights(eta, "fisher")

    def factor_at(self, theta, weights: RowWeights):
        part = self.weights_cross(weights, "X")
        A = part.cross
        self.system.set_cross_products(A)
        f = self.system.factorize(theta)
        if f is None and self.p:
            self.system.set_cross_products(self._ridge(A, part.top))
            f = self.system.factorize(theta)
        if f is None:
            raise PIRLSError("the penalized least-squares system is not positive definite "
                             f"at theta={np.round(theta, 6).tolist()}")
        return f

    def logdet_at(self, theta, weights: RowWeights):
        last = self.last_laplace
        if last is not None and last[0] is weights.state and last[1] == weights.kind:
            A = last[2]
        else:
            A = self.weights_cross(weights, "ones").cross
        zf = self.psystem.factor(theta, A)
        if zf is None:
            raise PIRLSError(
                "the Hessian of the penalized deviance is not positive definite at the "
                f"conditional modes (theta={np.round(theta, 6).tolist()}); the Laplace "
                "approximation does not exist there")
        return self.psystem.logdet(zf), zf.L11

    def rx_inverse(self, theta, eta, mu):
        f = self.factor_at(theta, self.fisher_weights_at(eta, mu))
        Lxx = np.tril(f.LXX)[:self.p, :self.p]
        return self.basis.rx_inv_to_user(np.linalg.inv(Lxx.T))

    def rx_factor(self, theta, eta, mu):
        f = self.factor_at(theta, self.fisher_weights_at(eta, mu))
        return np.tril(f.LXX)[:self.p, :self.p].T @ self.basis.R

    def _ridge(self, A, top: float):
        """``A`` (a copy) with PIRLS's ridge on the fixed-effects block (``XX_RIDGE``)."""
        return self._with_xx_ridge(A, XX_RIDGE * top, copy=True)

    @staticmethod
    def _slack_of(pdev: float, stat: float) -> float:
        noise = _ETA_ROUNDING * _EPS * stat
        return PDEV_ROUNDING * abs(pdev) + min(noise, SLACK_MAX * abs(pdev))

    # -- starting values ---------------------------------------------------------------
    def _initial_beta(self) -> np.ndarray:
        """lme4's start (see :meth:`PIRLS._initial_beta`) from one pass of sums, then the
        deviance of each candidate (one pass each)."""
        fam = self._family
        st = self._reduce(start_partition, combine_start, self.basis.R_inv)
        if not st.finite:
            raise PIRLSError(
                f"cannot find valid starting values: the {fam.link.name} link of the "
                f"starting means of the {fam.name} family is not finite; check the response "
                "or choose another link")
        beta = np.linalg.solve(st.XtWX, st.XtWz) if self.p else np.zeros(0)
        ones = np.flatnonzero(st.ones)
        base = np.zeros(self.p)
        if ones.size:
            base[ones[0]] = st.sum_w_eta / st.sum_w
        base = self.basis.from_user(base)
        lams0 = [np.zeros((p, p)) for (_, _, _, p) in self._blocks]
        u0 = np.zeros(self.q)
        step = 1.0
        for _ in range(self.max_halvings + 1):
            trial = base + step * (beta - base)
            out = self._pass(self.state(self.basis.to_user(trial), lams0, u0), None, None,
                             False)
            if out.valid:
                return self._better_start_dask(trial, ones, out.dev, st, lams0, u0)
            step *= 0.5
        raise PIRLSError(self._invalid_message(self.basis.to_user(beta)))

    def _better_start_dask(self, trial, ones, dev_trial, st, lams0, u0) -> np.ndarray:
        if not ones.size or not self.link_keeps_range:
            return trial
        fam = self._family
        with np.errstate(divide="ignore", invalid="ignore"):
            level = fam.link.link(np.atleast_1d(st.sum_prior_y / st.sum_prior))[0]
        if not np.isfinite(level):
            return trial
        const = np.zeros(self.p)
        const[ones[0]] = level - st.sum_prior_off / st.sum_prior
        const = self.basis.from_user(const)
        out = self._pass(self.state(self.basis.to_user(const), lams0, u0), None, None, False)
        dev_const = out.dev if out.valid and np.isfinite(out.dev) else np.inf
        return const if dev_const < dev_trial else trial

    # -- the hooks of PIRLS.fit's iteration: one distributed pass per point -------------
    def _evaluate(self, lams, beta, u, joint: bool, ref: _PassPoint | None = None,
                  fisher: bool = False) -> _PassPoint:
        """The point's pass: its deviance and the cross-products of the next step at it
        with ``fisher``'s weights (speculatively: used when the step is accepted), and
        the largest change of ``eta`` from ``ref``."""
        mode = "joint" if joint else "u"
        s = self.state(self.basis.to_user(beta) if joint else beta, lams, u)
        part = self._pass(s, None if ref is None else ref.state, mode, fisher)
        return _PassPoint(s, part, fisher, mode)

    def _step_system(self, cur: _PassPoint, joint: bool, fisher: bool) -> StepSystem:
        """The cross-products the pass at ``cur`` formed, or a new pass when Fisher
        scoring took over (or gave way) since."""
        del joint
        if cur.part.cross is None or cur.fisher != fisher:
            cur.part = self._pass(cur.state, None, cur.mode, fisher)
            cur.fisher = fisher
        return StepSystem(cur.part.cross, cur.part.observed, cur.part)

    def _ridge_step(self, step: StepSystem):
        return self._ridge(step.A, step.rows.top)

    def _step_slack(self, pdev: float, step: StepSystem) -> float:
        return self._slack_of(pdev, step.rows.slack)

    def _step_change(self, trial: _PassPoint, cur: _PassPoint, du, joint: bool, it: int,
                     tol: float) -> float:
        """The trial pass's largest change of ``eta`` and the step's of ``u`` (the
        in-memory test off the family's edge would cost passes: module docstring)."""
        del cur, joint, it, tol
        return max(trial.part.max_deta, np.max(np.abs(du), initial=0.0))

    def _sensitivity_at(self, theta, beta, lams, u, cur: _PassPoint, step: StepSystem, f):
        del beta
        return self._sensitivity_from(theta, lams, u, step.A, cur.part.cross, f)

    @staticmethod
    def _rows_of(cur: _PassPoint):
        """The :class:`~.glmm_pass.RowState` of the modes stands in for ``eta`` and
        ``mu``."""
        return cur.state, cur.state

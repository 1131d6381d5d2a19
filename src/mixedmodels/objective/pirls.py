r"""Penalized iteratively reweighted least squares (PIRLS) for the conditional modes.

For covariance parameters ``theta`` (relative factor ``Lambda``) and fixed effects ``beta``
the conditional mode of the spherical random effects ``u`` minimizes the penalized deviance

.. math:: PD(u) = \sum_i d_i\bigl(y_i, \mu_i(u)\bigr) + \|u\|^2,
          \qquad \eta = X\beta + Z\Lambda u + \text{offset},\ \mu = g^{-1}(\eta).

Each PIRLS step is a penalized weighted least-squares solve with the Fisher working weights
``W = diag(w mu_eta^2 / V(mu))`` and the working response ``z = eta + (y - mu) / mu_eta``,

.. math:: (\Lambda' Z' W Z \Lambda + I)\, u_{new} = \Lambda' Z' W (z - X\beta - \text{offset}),

done with the blocked Cholesky factor of :mod:`mixedmodels.linalg` (the cross-products are
recomputed for the new weights, the index patterns are built once). With ``beta`` free
(nAGQ = 0, lme4's fast mode) the same system with the ``X`` columns gives ``beta`` and ``u``
jointly. A step that raises the penalized deviance, or leaves the family's parameter space
(a probability above 1 under a log link, a negative mean under an identity link), is halved
until it does not. Newton steps (the observed information, for non-canonical links) can be
useless far from the mode: with a log link and very skewed Gamma responses (shape 0.1) the
observed weight ``y / mu`` is nearly zero for the many tiny ``y`` and the step overshoots by
orders of magnitude that halving cannot undo; such a step is replaced by a Fisher-scoring
step, whose weights are bounded away from zero, until PIRLS is close to the mode
(:data:`NEWTON_RESUME_CHANGE`). When halving cannot reduce the deviance even then, PIRLS
stops with a :class:`PIRLSError` that says what to try.

The fixed-effects columns enter every least-squares system in the well-conditioned basis
``X~ = X R^{-1}`` of :class:`~mixedmodels.linalg.FixedBasis` (``R`` from the QR decomposition
of the prior-weighted ``X``): a predictor around 1e5 would otherwise make ``X' W X`` nearly
singular and the joint (nAGQ = 0) solve for ``beta`` lose most of its digits. The joint
iteration runs on the coefficients of ``X~``; ``beta`` and ``R_X^{-1}`` are returned for the
user's ``X``.

Convergence is judged on the size of the step in ``u`` and ``eta``: both are on unit scales
(``u`` is standard normal a priori, ``eta`` is the link scale), and Newton's quadratic
convergence makes a tight tolerance cheap. The factor returned is the one of the last step,
computed within ``PIRLS_TOL`` of the mode, so ``log|L|^2`` is accurate to that order -- what
finite-difference Hessians of the Laplace deviance need.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import special

from .._errors import MixedModelsError
from ..design import Design
from ..diagnostics.link_edge import range_keeping_link
from ..families import Family
from ..linalg import (
    BlockedFactor,
    BlockedSystem,
    CrossProductPattern,
    FixedBasis,
    MergedSystem,
    TermBlock,
    TermMerge,
)
from ..linalg.lapack import solve_lower, solve_lower_t
from .pirls_dense import DensePIRLSFactor, DensePIRLSSystem, use_dense
from .pirls_system import MergedPIRLSSystem, PIRLSFactor, PIRLSSystem

__all__ = [
    "PIRLS",
    "PIRLS_MAXIT",
    "PIRLS_MAX_HALVINGS",
    "PIRLS_TOL",
    "PIRLSError",
    "PIRLSResult",
    "RowPoint",
    "StepSystem",
    "first_factor_merge",
    "pirls_systems",
    "prior_weights",
]

#: Largest change of any ``u`` or ``eta`` in the last step at convergence.
PIRLS_TOL = 1e-10
#: Iteration limit (lme4's ``maxit``).
PIRLS_MAXIT = 100
#: Step halvings tried before giving up (lme4's ``maxstephalfit``).
PIRLS_MAX_HALVINGS = 20
#: PIRLS iterations expected from a good predicted start (see ``PIRLS._sensitivity``).
PREDICTED_ITERATIONS = 2
#: From this iteration on, a step whose bound on every change of ``u`` and ``eta`` is
#: below the tolerance ends the solve before its trial evaluation (``PIRLS._settled``).
#: Not in the first: a solve from predicted modes (the standard errors' differences where
#: PIRLS solves) then still takes that step, keeping its modes within ~tol^2.
SETTLED_AFTER = 2
#: A predicted start (first-order in theta and beta) that moves some linear predictor by
#: more than this is outside the linear regime and is not used: near theta = 0 the modes
#: ``u = b / theta`` are huge and their sensitivity predicts absurd jumps (eta ~ 600, with
#: overflowing weights, seen on Poisson counts around 1e9 with a zero variance).
PREDICT_MAX_DETA = 1.0
#: Relative rounding slack allowed when comparing penalized deviances.
PDEV_ROUNDING = 1e-12
#: The deviance also inherits the rounding of ``eta`` itself (``eps |eta|``), times its
#: slope ``|d dev / d eta|``: for counts around 1e9 (``eta`` ~ 21, slopes ~ 1e4 per row)
#: that noise is ~1e-10 relative, above ``PDEV_ROUNDING``, and step-halving would chase
#: it. Steps are accepted within this multiple of ``eps sum |eta| |d dev / d eta|``
#: (2 for the deviance's factor 2, 2 for the rounding of ``mu`` as well as ``eta``).
ETA_ROUNDING_FACTOR = 4.0
#: ... but never more than this fraction of the penalized deviance: near the edge of a
#: link's range (a probability within eps of 1 under a log link) the slopes explode and the
#: "noise" would let steps that raise the deviance through, so PIRLS crept along the edge
#: instead of reporting that the mean wants out of the range.
SLACK_MAX = 1e-9
#: Stagnation: after this many consecutive steps that change the penalized deviance by no
#: more than its rounding noise, are smaller than ``STAGNATION_CHANGE`` and do not beat the
#: smallest change seen so far, PIRLS has reached the precision the linear algebra allows
#: and stops. With huge weights (counts around 1e9) the joint solve for beta and u is
#: ill-conditioned (condition ~ weight x group size) along the intercept-versus-mean-of-u
#: direction, which only the penalty determines; its steps then wander at ~1e-4 while the
#: deviance cannot tell them apart. A converging iteration (Newton's, or Fisher scoring's
#: linear one) makes every step smaller than the last, so this never cuts it short.
STAGNATION_STEPS = 3
STAGNATION_CHANGE = 1e-3
#: Fisher weights below this fraction of the largest belong to fitted means at the edge of
#: the family's range (probabilities 0 or 1 under complete separation, counts fitted as 0):
#: their linear predictors run off without changing the deviance, so PIRLS judges
#: convergence on the other observations (lme4 stops on the deviance instead).
SEPARATED_WEIGHT = 1e-8
#: ... checked only from this iteration on (separation takes tens of steps; PIRLS's Newton
#: steps converge in a handful, which then pay nothing for the check)
SEPARATION_CHECK_AFTER = 6
#: Ridge on the fixed-effects block of PIRLS's systems, relative to the largest working weight
#: per unit of prior weight (``X~' diag(prior) X~ = I`` in the internal basis, so the block's
#: eigenvalues are at most that weight), used only when the factorization without it fails:
#: under complete separation the information along the separated coefficient vanishes as
#: it runs off, until the Cholesky factorization of the fixed-effects block breaks down; the
#: ridge then keeps it positive definite and stops that coefficient there.
XX_RIDGE = 1e-10
#: Linear predictors probed to decide whether a link keeps the family's mean in range.
RANGE_PROBES = np.concatenate([-np.logspace(-3, 2.5, 12), [0.0], np.logspace(-3, 2.5, 12)])
#: After a Newton (observed-information) step fails, Fisher scoring takes over until a step
#: changes ``u`` and ``eta`` by less than this; Newton then resumes for the fast finish.
NEWTON_RESUME_CHANGE = 1e-2


_EPS = float(np.finfo(float).eps)


class PIRLSError(MixedModelsError):
    """PIRLS could not find the conditional modes (step-halving failed or a weight/mean
    left the family's parameter space)."""


def link_keeps_range(family: Family) -> bool:
    """Whether every linear predictor maps to a valid mean of ``family`` (logit for the
    binomial, log for counts and Gamma), judged on :data:`RANGE_PROBES`; False for links with
    a feasible edge (a log link for probabilities, identity or inverse for positive
    means)."""
    link = family.link
    # (every probe at once: the checks are elementwise, all must pass; a probe outside
    # the link's range may overflow without changing the answer)
    if not link.valid_eta(RANGE_PROBES):
        return False
    if link.bounded:
        return True
    with np.errstate(all="ignore"):
        return bool(family.valid_mu(link.linkinv(RANGE_PROBES)))


def prior_weights(design: Design) -> np.ndarray:
    """Prior weights of a GLMM: ``weights=`` times binomial trial counts (ones if none)."""
    w = np.ones(design.nobs) if design.weights is None else np.asarray(design.weights, float)
    trials = design.extra.get("trials")
    if trials is not None:
        w = w * trials
    return w


def binomial_weights_shift(design: Design) -> np.ndarray | None:
    r"""Per-observation shift of ``-2 log p`` that makes a ``cbind(successes, failures)``
    response with prior weights ``p_i`` carry lme4's and glmmTMB's binomial coefficients.

    The family sees only the total weights ``w_i = p_i n_i`` (:func:`prior_weights`), and
    its ``-2 log p`` is that of ``p_i k_i`` successes in ``p_i n_i`` trials; lme4 (glm's
    ``binomial()$aic``) and glmmTMB weight the log-density instead, ``p_i log
    dbinom(k_i; n_i, mu_i)``. The two kernels are the same (``p_i k_i log mu + p_i (n_i -
    k_i) log(1 - mu)``), the binomial coefficients are not:

    .. math::

        \delta_i = -2 \left[ p_i \log \binom{n_i}{k_i} - \log \binom{p_i n_i}{p_i k_i}
        \right].

    A constant: the fit does not move, its log-likelihood (and AIC, deviance) does. None
    without prior weights or for a one-column response (proportions with ``weights=``,
    0/1 data: there lme4's trials are the weights, as ours); and where every ``n_i`` is 1,
    glm's rule ``m = if (any(n > 1)) n else wt`` takes the weights as trials, as we do.
    """
    if design.extra.get("response_kind") != "cbind":
        return None
    return binomial_coefficient_shift(design.y, design.weights, design.extra.get("trials"))


def binomial_coefficient_shift(y: np.ndarray, weights: np.ndarray | None,
                               trials: np.ndarray | None) -> np.ndarray | None:
    """:func:`binomial_weights_shift` from the rows' proportions ``y``, prior weights and
    the numbers of trials of a two-column response (None for either: no shift); the Dask
    partitions call it with their own rows."""
    if weights is None or trials is None:
        return None
    p = np.asarray(weights, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.all(p == 1.0) or not np.any(n > 1.0):
        return None
    k = np.asarray(y, dtype=float) * n
    w = p * n

    def lchoose(a, b):
        return special.gammaln(a + 1.0) - special.gammaln(b + 1.0) \
            - special.gammaln(a - b + 1.0)

    return np.where(p > 0, -2.0 * (p * lchoose(n, k) - lchoose(w, p * k)), 0.0)


def first_factor_merge(design, blocks, merge_terms: bool = True) -> TermMerge | None:
    """The merge of PIRLS's terms: those on the first term's grouping factor
    (:class:`~mixedmodels.linalg.TermMerge`), or None when none shares it.

    Only the terms on the first term's grouping factor merge: they then join the
    block-diagonal first block instead of the dense rest block. Merging rest terms with
    each other would not shrink the dense block, and would trade :class:`PIRLSSystem`'s
    fast paths for scalar rest terms for the general blocked one (measured 1.5x slower per
    evaluation on (1 | h) + (x || g) with 300 levels of h and 40 of g). Reads the terms'
    names and ``blocks`` (codes of length 0 for a sizes-only design: terms with one name
    have one set of codes in every chunk of rows, so the plan is the in-memory one).

    Parameters
    ----------
    design : Design or a sizes-only design
    blocks : sequence of TermBlock
    merge_terms : bool
        False: no merge (for comparisons).
    """
    terms = design.terms
    first = terms[0].grouping.name if terms else None
    keys = [t.grouping.name if t.grouping.name == first else ("own term", k)
            for k, t in enumerate(terms)]
    merge = TermMerge.of(blocks, [t.structure for t in terms], keys)
    return merge if merge.merges and merge_terms else None


def pirls_systems(pattern, design, merge: TermMerge | None):
    """``(system, psystem)``: the blocked factorization of ``pattern`` (the blocks of
    ``merge`` when there is one) and PIRLS's system on it, both speaking the terms'
    order (:class:`~mixedmodels.linalg.MergedSystem`,
    :class:`~.pirls_system.MergedPIRLSSystem`)."""
    if merge is None:
        system = BlockedSystem(pattern, [t.structure for t in design.terms],
                               new_weights=True)
        return system, PIRLSSystem(pattern, system)
    inner = BlockedSystem(pattern, merge.structures, new_weights=True)
    return (MergedSystem(inner, merge, [t.p for t in design.terms]),
            MergedPIRLSSystem(PIRLSSystem(pattern, inner), merge))


# (plain slotted dataclasses, not frozen: a frozen one's __init__ sets every field through
# object.__setattr__, ~1 us per point, and PIRLS makes two points and one step system per
# iteration; neither object is changed after it is made)
@dataclass(slots=True)
class RowPoint:
    """A point of the PIRLS iteration with its rows in memory (:meth:`PIRLS._evaluate`):
    the fixed part of the linear predictor, ``eta``, the mean and its slope (None
    outside the family's range) and the deviance (inf there)."""

    fixed: np.ndarray
    eta: np.ndarray
    mu: np.ndarray | None
    me: np.ndarray | None
    dev: float

    @property
    def valid(self) -> bool:
        """The mean is in the family's range."""
        return self.mu is not None


@dataclass(slots=True)
class StepSystem:
    """The least-squares system of one PIRLS step (:meth:`PIRLS._step_system`).

    Attributes
    ----------
    A : CrossProducts or None
        The weighted cross-products, in the blocks of ``PIRLS.pattern``; None where the
        dense system of small models (``PIRLS.dense``) factors the rows themselves.
    observed : bool
        The weights are the observed information (a Newton step).
    rows : object
        What the backend's hooks need of the step besides (in memory: ``eta`` of its
        start, the weights, the working residual and the step's columns ``XY``).
    indefinite : bool
        Newton's weights include negative ones (:attr:`PIRLS.indefinite_newton`): the
        system may not be positive definite.
    """

    A: object
    observed: bool
    rows: object
    indefinite: bool = False


@dataclass(frozen=True)
class PIRLSResult:
    """Conditional modes at given parameters.

    Attributes
    ----------
    theta, beta : ndarray
        Parameters (``beta`` estimated jointly when PIRLS ran in nAGQ = 0 mode).
    u : ndarray (q,)
        Conditional modes (``b = Lambda u``).
    eta, mu : ndarray (n,)
        Linear predictor and mean at the modes.
    dev : float
        Sum of prior-weighted unit deviances.
    sqr_u : float
        ``||u||^2``.
    logdet : float
        ``log|L|^2`` with the Fisher weights of the last step.
    L11 : ndarray (l1, p1, p1)
        The first block's diagonal blocks of that factor: the first term's, or those of the
        terms merged with it (``PIRLS.merge``; the dense system of small models gives the
        first term's alone); adaptive quadrature (one scalar term) uses them.
    factor : PIRLSFactor or BlockedFactor
        The factor of the last step.
    n_iter : int
        PIRLS iterations used.
    observed : bool
        The last factor's weights are the observed information (Newton steps), not the
        Fisher weights.
    """

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    dev: float
    sqr_u: float
    logdet: float
    L11: np.ndarray
    factor: object
    n_iter: int
    observed: bool = False

    @property
    def pdev(self) -> float:
        """Penalized deviance ``dev + ||u||^2``."""
        return self.dev + self.sqr_u


class PIRLS:
    """PIRLS workspace for one design and family (mutable: it remembers the last modes to
    start the next solve from them).

    Parameters
    ----------
    design : Design
    family : Family
    tol, maxit, max_halvings
        See the module constants.
    merge_terms : bool
        Factor terms on the same grouping factor as one block (default; see
        :class:`~mixedmodels.linalg.TermMerge`). The modes, deviance and log determinant
        are the same either way; False keeps one block per term (for comparisons).
    """

    def __init__(self, design: Design, family: Family, *, tol: float = PIRLS_TOL,
                 maxit: int = PIRLS_MAXIT, max_halvings: int = PIRLS_MAX_HALVINGS,
                 merge_terms: bool = True):
        self.design = design
        self.tol, self.maxit, self.max_halvings = float(tol), int(maxit), int(max_halvings)
        self.y = design.y
        self.X = design.X
        self.offset = design.offset
        #: a non-zero offset (adding zeros twice per step is skipped; same values)
        self._has_offset = bool(np.any(self.offset))
        self.prior = prior_weights(design)
        #: well-conditioned basis of the fixed effects for the least-squares solves
        self.basis = FixedBasis.of(design.X, self.prior)
        self.Xt = self.basis.X
        self.n, self.p, self.q = design.nobs, design.p, design.q
        blocks = [TermBlock(t.grouping.codes, t.Z, t.nlevels) for t in design.terms]
        #: the :class:`~mixedmodels.linalg.TermMerge` of the terms sharing the first
        #: term's grouping factor (``(x || g)``), factored as one block instead of putting
        #: the later ones in the dense rest block; None when each term is its own block.
        #: Theta, ``u`` and conditional variances stay in the terms' order either way; the
        #: cross-products (:attr:`pattern`) and the factors are in the merged blocks' order.
        self.merge = first_factor_merge(design, blocks, merge_terms)
        self.pattern = CrossProductPattern(blocks if self.merge is None
                                           else self.merge.blocks)
        self.system, self.psystem = pirls_systems(self.pattern, design, self.merge)
        self.slices = design.theta_slices()
        self._Zs: sp.csr_matrix | None = None      # Z and Z' as CSR, made when first used
        self._ZsT: sp.csr_matrix | None = None
        #: the dense system of small models (:mod:`.pirls_dense`), else None: PIRLS's
        #: steps then factor ``[Z Lambda, X, r]' W [Z Lambda, X, r]`` at once instead of
        #: forming the blocked cross-products (the conditional modes are the same)
        self.dense = DensePIRLSSystem(design, self._dense_z(design), self.psystem) \
            if design.terms and use_dense(design.nobs, design.q, design.p) else None
        self._blocks, off = [], 0
        for t in design.terms:          # (offset in u, q, levels, p) per term
            self._blocks.append((off, t.q, t.nlevels, t.p))
            off += t.q
        self._scalar_terms = all(t.p == 1 for t in design.terms)
        #: per term, p times the largest |Z| row sum (bounds how far u moves eta)
        self._zmax = [t.p * float(np.max(np.sum(np.abs(t.Z), axis=1), initial=0.0))
                      for t in design.terms]
        self._codes = [t.grouping.codes for t in design.terms]
        self._zcols = [None if np.all(t.Z[:, 0] == 1.0) else t.Z[:, 0].copy()
                       for t in design.terms]
        self.n_iter_total = 0
        self.u_start = np.zeros(self.q)
        self.beta_start: np.ndarray | None = None   # joint mode: coefficients of X~
        self._no_beta = np.zeros(0)
        self._ref = None     # (theta, beta, u, du/d[theta, beta]) of the last Laplace solve
        self._ref_joint = None   # (theta, u, beta, d[u; beta]/d theta) of the last joint one
        self._ref_joint_pending = None   # ... its arguments until first asked for
        self.predict = True
        self._XY = None      # [X, working response] buffer of the joint solves
        self._edge_seen = False  # a joint solve has met separated observations
        #: ``G`` of a normal prior on beta (precision ``G G'``) that the joint (nAGQ = 0)
        #: solve adds to the penalized deviance as ``||G' beta||^2`` (bglmer's fixed-effect
        #: prior; None: none). Under complete separation it keeps beta finite.
        self.beta_prior_root: np.ndarray | None = None
        self.family = family

    #: the dense system of small models (set in ``__init__``)
    dense: DensePIRLSSystem | None = None
    _Zs: sp.csr_matrix | None = None
    _ZsT: sp.csr_matrix | None = None
    #: Newton steps with observed weights of both signs where the penalized Hessian is
    #: still positive definite (:meth:`_step_weights`); the Dask passes, which apply the
    #: rule per partition, keep Fisher scoring there
    indefinite_newton: bool = True

    @property
    def step_system(self):
        """The system each PIRLS step is solved with: the dense one when there is one."""
        return self.psystem if self.dense is None else self.dense

    @property
    def family(self) -> Family:
        return self._family

    @family.setter
    def family(self, fam: Family) -> None:
        if fam is getattr(self, "_family", None):
            return          # its deviance function (with its constant terms) is current
        self._family = fam
        self._deviance = fam.deviance_function(self.y, self.prior)
        self._canonical = fam.link.name == fam.canonical_link
        self.link_keeps_range = link_keeps_range(fam)

    @property
    def Zs(self) -> sp.csr_matrix:
        """``Z`` (n x q) as CSR in the layout of ``u`` (:meth:`_sparse_z`), made on first
        use: the dense system of small models has its own dense ``Z`` and, with scalar
        terms, never needs this one (scipy's constructors cost ~15 us each)."""
        if self._Zs is None:
            self._Zs = self._sparse_z(self.design)
        return self._Zs

    @property
    def ZsT(self) -> sp.csr_matrix:
        """``Z'`` (q x n) as CSR, made on first use (see :attr:`Zs`)."""
        if self._ZsT is None:
            self._ZsT = self.Zs.T.tocsr()
        return self._ZsT

    def _zt(self, v: np.ndarray) -> np.ndarray:
        """``Z' v`` for ``v`` (n,) or (n, m): by the dense system's ``Z`` when there is
        one (a small dense product costs less than scipy's sparse one's call), else by
        the CSR ``Z'``."""
        if self.dense is not None:
            return self.dense.Z.T @ v
        return self.ZsT @ v

    @staticmethod
    def _dense_z(design: Design) -> np.ndarray:
        """``Z`` (n x q) as a dense array, the values of :meth:`_sparse_z` (each row's
        columns are distinct), for the dense system of small models."""
        n = design.nobs
        Z = np.zeros((n, design.q))
        off = 0
        rows = np.arange(n)
        for t in design.terms:
            p = t.p
            Zt = t.Z.reshape(n, p)
            for j in range(p):
                Z[rows, off + t.grouping.codes * p + j] = Zt[:, j]
            off += t.q
        return Z

    @staticmethod
    def _sparse_z(design: Design) -> sp.csr_matrix:
        """``Z`` (n x q) in the layout of ``u`` (term by term, level by level), built as
        CSR directly: every row holds ``sum_k p_k`` entries, term by term, whose columns
        increase (each term's block lies right of the previous one's), so no sort or
        conversion from coordinates is needed."""
        cols, vals, off = [], [], 0
        n = design.nobs
        for t in design.terms:
            p = t.p
            cols.append(off + t.grouping.codes[:, None] * p + np.arange(p)[None])
            vals.append(t.Z.reshape(n, p))
            off += t.q
        width = sum(t.p for t in design.terms)
        indptr = np.arange(n + 1, dtype=np.intp) * width
        if not cols:
            return sp.csr_matrix((n, design.q))
        return sp.csr_matrix((np.hstack(vals).ravel(), np.hstack(cols).ravel().astype(np.intp),
                              indptr), shape=(n, design.q))

    # -- pieces -------------------------------------------------------------------------
    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [t.structure.lambda_(theta[sl])
                for t, sl in zip(self.design.terms, self.slices, strict=True)]

    def b_from_u(self, lams: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """``Lambda u`` as one vector in ``u``'s layout."""
        out = []
        for (off, q, nlev, p), lam in zip(self._blocks, lams, strict=True):
            uk = u[off:off + q]
            if p == 1:
                out.append(lam[0, 0] * uk)
            else:
                out.append((uk.reshape(nlev, p) @ lam.T).ravel())
        return np.concatenate(out) if len(out) > 1 else out[0]

    def _random_part(self, lams, u) -> np.ndarray:
        """``Z Lambda u``: per scalar term one gather (cheaper than a sparse product for
        the one or two terms of most models), else the sparse ``Z``."""
        if not self._scalar_terms:
            return self.Zs @ self.b_from_u(lams, u)
        out = None
        for (off, q, _, _), lam, codes, z in zip(self._blocks, lams, self._codes, self._zcols,
                                                 strict=True):
            part = (lam[0, 0] * u[off:off + q])[codes]
            if z is not None:
                part *= z
            out = part if out is None else out + part
        return out

    def _state(self, fixed: np.ndarray, lams, u):
        """eta, (mu, mu_eta) and the deviance at ``u`` given the fixed part of eta;
        ``mu`` is None (deviance inf) outside the family's parameter space."""
        eta = fixed + self._random_part(lams, u)
        fam = self._family
        link = fam.link
        if link.restricted_eta and not link.valid_eta(eta):
            return eta, None, None, np.inf
        mu, me = link.inverse_and_slope(eta)
        if not (fam.name == "binomial" and link.bounded) and not fam.valid_mu(mu):
            return eta, None, None, np.inf
        dev = self._deviance(mu)
        return eta, mu, me, dev if math.isfinite(dev) else np.inf

    def lambda_t(self, lams: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        """``Lambda' v`` for ``v`` (q,) or (q, m) in ``u``'s layout."""
        v2 = v.reshape(v.shape[0], -1)
        out = []
        # the cached (offset, q, levels, p) of each term: a term's q and levels are
        # properties that ask the levels' index for its length (~3 us a term and call)
        for (off, q, nlev, p), lam in zip(self._blocks, lams, strict=True):
            blk = v2[off:off + q]
            if p == 1:
                out.append(lam[0, 0] * blk)
            else:
                m = blk.shape[1]
                r = np.einsum("ji,ljm->lim", lam, blk.reshape(nlev, p, m))
                out.append(r.reshape(q, m))
        res = out[0] if len(out) == 1 else np.vstack(out)
        return res.reshape(v.shape)

    def _theta_rhs(self, lams, u, w, g) -> np.ndarray:
        """Derivatives in theta of the PIRLS stationarity conditions at fixed u, (q,
        n_theta), for scalar terms whose ``Lambda`` is theta itself (``dLambda/dtheta =
        E_k``); columns of other terms are left at zero (their modes are simply not
        predicted)."""
        k = sum(t.structure.n_theta for t in self.design.terms)
        Ru = np.zeros((self.q, k))
        Zg = self._zt(g)
        for col, off, q, zu in self._scalar_term_modes(u):
            Ru[:, col] = self.lambda_t(lams, self._zt(w * zu))
            Ru[off:off + q, col] += Zg[off:off + q]
        return Ru

    def _scalar_term_modes(self, u):
        """``(theta column, offset, levels, Z E_k u)`` of each scalar, directly mapped term
        ``k``: the term's own column times its modes, a gather (no sparse product with a
        vector that is zero outside the term). Other terms' columns are not predicted."""
        for t, sl, (off, q, _, _), codes, z in zip(self.design.terms, self.slices,
                                                   self._blocks, self._codes, self._zcols,
                                                   strict=True):
            if t.p == 1 and t.structure.direct and t.structure.n_theta == 1:
                zu = u[off:off + q][codes]
                yield sl.start, off, q, (zu if z is None else zu * z)

    def _sensitivity(self, theta, beta, lams, u, eta, mu, me, w, f) -> np.ndarray:
        """``d u / d [theta, beta]`` at the modes, to predict the modes at nearby
        parameters (a warm start only: PIRLS then needs one iteration less).

        With ``M = Lambda' Z' W Z Lambda + I`` (Fisher weights, exact for canonical links)
        and ``g = d(dev/2)/d eta``: ``du/dbeta = -M^{-1} Lambda' Z' W X`` and, for a scalar
        term k (``dLambda/dtheta_k = E_k``), ``du/dtheta_k = -M^{-1} (E_k Z' g +
        Lambda' Z' W Z E_k u)``. Columns of vector-valued terms are left at zero.
        """
        Jb = self.lambda_t(lams, self._zt(w[:, None] * self.X))
        g = -self.prior * (self.y - mu) * me / self._family.variance(mu)
        Ru = self._theta_rhs(lams, u, w, g)
        return -self.step_system.solve_M(f, np.hstack([Ru, Jb]))

    def _joint_sensitivity(self, theta, lams, u, beta, cur, step: StepSystem, f,
                           family: Family | None = None):
        r"""``(theta, u, beta, d[u; beta]/d theta)`` at the joint (nAGQ = 0) modes, to
        predict the joint modes at the next theta (a warm start only: one PIRLS iteration
        less), or None where it is not available.

        The joint modes solve ``u + Lambda' Z' g = 0`` and ``X~' g = 0``; differentiating
        in a scalar term's ``theta_k`` (``dLambda/dtheta_k = E_k``) gives
        ``H_J d[u; beta]/dtheta_k = -[Lambda' Z' W Z E_k u + E_k Z' g; X~' W Z E_k u]``
        with the joint system ``H_J = [[Lambda' Z' W Z Lambda + I, Lambda' Z' W X~],
        [X~' W Z Lambda, X~' W X~]]``, whose Cholesky factor is the leading block of the
        last step's factor: the dense system's of small models, or the blocked one's
        (:meth:`_joint_solve_blocked`; vector-valued terms' columns are left at zero, as
        :meth:`_sensitivity` does). Not with a prior on beta (its term is not in that
        factor), nor for the general blocked factor of vector-valued rest terms or merged
        terms."""
        dense = isinstance(f, DensePIRLSFactor)
        blocked = isinstance(f, PIRLSFactor) and type(self.psystem) is PIRLSSystem and \
            f.LXX is not None
        if not (dense or blocked) or not self.p or \
                self.beta_prior_root is not None or not isinstance(cur, RowPoint) or \
                cur.mu is None:
            return None
        w = step.rows[1]
        fam = self._family if family is None else family     # the solve's family
        g = -self.prior * (self.y - cur.mu) * cur.me / fam.variance(cur.mu)
        Ru = self._theta_rhs(lams, u, w, g)
        Rb = np.zeros((self.p, Ru.shape[1]))
        for col, _, _, zu in self._scalar_term_modes(u):
            Rb[:, col] = self.Xt.T @ (w * zu)
        if blocked:
            return theta, u, beta, -self._joint_solve_blocked(f, Ru, Rb)
        m = self.q + self.p
        L = f.L[:m, :m]
        J = -solve_lower_t(L, solve_lower(L, np.vstack([Ru, Rb])))
        return theta, u, beta, J

    def _joint_solve_blocked(self, f: PIRLSFactor, Ru: np.ndarray, Rb: np.ndarray
                             ) -> np.ndarray:
        r"""``H_J^{-1} [Ru; Rb]`` with the blocked factor of a joint step: ``L = [[L_Z, 0],
        [B', L_XX]]`` with ``B = [L1X; LrX]`` (its ``X~`` columns: ``L_Z^{-1} Lambda' Z'
        W X~``) and ``L_XX`` the leading block of ``LXX``; forward ``y_1 = L_Z^{-1} Ru``,
        ``y_2 = L_XX^{-1} (Rb - B' y_1)``, then back ``x_2 = L_XX^{-T} y_2``,
        ``x_1 = L_Z^{-T} (y_1 - B x_2)``."""
        ps, p = self.psystem, self.p
        B = f.L1X[:, :, :p].reshape(ps.q1, p)
        if f.LrX is not None:
            B = np.vstack([B, f.LrX[:, :p]])
        Lxx = f.LXX[:p, :p]
        y1 = ps.forward(f, Ru)
        x2 = solve_lower_t(Lxx, solve_lower(Lxx, Rb - B.T @ y1))
        return np.vstack([ps.backward(f, y1 - B @ x2), x2])

    def joint_reference(self):
        """``(theta, u, beta, d[u; beta]/d theta)`` of the last joint solve (None where
        there is none or it has no sensitivity), the sensitivity computed when first
        asked for: the last solve of a search (and the stage-0 solves of a Laplace fit,
        whose next solves hold beta fixed) never needs it, and on small models it costs
        as much as the iteration it saves."""
        pending = getattr(self, "_ref_joint_pending", None)
        if pending is not None:
            self._ref_joint_pending = None
            self._ref_joint = self._joint_sensitivity(*pending)
        return getattr(self, "_ref_joint", None)

    def _predict_joint(self, theta, lams) -> tuple[np.ndarray, np.ndarray] | None:
        """``(u, beta)`` (internal basis) predicted at ``theta`` from the last joint
        solve's sensitivity when the move of the linear predictor stays small
        (:data:`PREDICT_MAX_DETA`), else None."""
        ref = self.joint_reference()
        if ref is None or ref[0].shape != theta.shape:
            return None
        th0, u0, b0, J = ref
        d = J @ (theta - th0)
        du, db = d[:self.q], d[self.q:]
        if not self._small_move(lams, du) or \
                float(np.abs(self.Xt @ db).max(initial=0.0)) > PREDICT_MAX_DETA:
            return None
        return u0 + du, b0 + db

    def _predict_u(self, theta, beta) -> np.ndarray | None:
        ref = self._ref
        if ref is None or ref[0].shape != theta.shape:
            return None
        th0, b0, u0, J = ref
        return u0 + J @ np.concatenate([theta - th0, beta - b0])

    def _step_weights(self, eta, mu, me, fisher: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Weights and working residual of one PIRLS step: ``(W, -g / W, observed)``.

        With ``g = d(dev/2)/d eta`` any positive ``W`` gives a step whose fixed point is the
        mode; the Fisher weights make it Fisher scoring (lme4's PIRLS, ``-g/W =
        (y - mu)/mu_eta``), the observed information makes it Newton's method. For
        non-canonical links Fisher scoring converges only linearly (6-13 steps per solve on
        the reference models), Newton quadratically, so the observed weights are used when
        they are all positive (always, for the log-concave densities: NB and Gamma with log
        link, probit, cloglog), Fisher's otherwise (mixing the two converged worse than
        either on the cauchit model). ``fisher=True`` forces Fisher scoring (after a failed
        Newton step).
        """
        fam = self._family
        if self._canonical:
            w = self.prior * me * me / fam.variance(mu)
            return w, (self.y - mu) / me, False
        v = fam.variance(mu)
        g = -self.prior * (self.y - mu) * me / v
        w_obs = None if fisher else fam.observed_weights(self.y, eta, mu, self.prior)
        if w_obs is not None:
            low = np.min(w_obs)
            if low > 0:
                return w_obs, -g / w_obs, True
            if getattr(self, "indefinite_newton", False) and self.link_keeps_range and \
                    np.min(np.abs(w_obs)) > 0:
                # some observed weights are negative (an inverse Gaussian response below
                # half its mean): the Hessian of the penalized deviance can still be
                # positive definite, and Newton's step then converges quadratically where
                # Fisher scoring crawls (inverse Gaussian, log link: 11 steps a solve);
                # the step's factorization tells, and Fisher scoring takes over when it
                # fails (fit)
                return w_obs, -g / w_obs, True
        w = self.prior * me * me / v
        return w, -g / w, False

    def _weights(self, mu, me) -> np.ndarray:
        return self.prior * me * me / self._family.variance(mu)

    def factor_at(self, theta: np.ndarray, weights: np.ndarray) -> BlockedFactor:
        """Blocked factor of ``Lambda' Z' W Z Lambda + I`` for given weights (log
        determinant and conditional variances; the X block holds ``R_X``)."""
        A = self.pattern.compute(self.Xt, weights)
        # (one theta per set of weights: no product pattern for it, set_cross_products)
        self.system.set_cross_products(A, once=True)
        f = self.system.factorize(theta)
        if f is None and self.p:
            self.system.set_cross_products(self._ridged(A, weights), once=True)
            f = self.system.factorize(theta)
        if f is None:
            raise PIRLSError(
                "the penalized least-squares system is not positive definite at "
                f"theta={np.round(theta, 6).tolist()}"
            )
        return f

    def logdet_at(self, theta: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """``(log|L|^2, L11)`` for given weights (observed-information Laplace)."""
        A = self.pattern.compute(np.ones((self.n, 1)), weights,
                                 csr_a21=self.psystem.needs_csr)
        zf = self.psystem.factor(theta, A)
        if zf is None:
            raise PIRLSError(
                "the Hessian of the penalized deviance is not positive definite at the "
                f"conditional modes (theta={np.round(theta, 6).tolist()}); the Laplace "
                "approximation does not exist there"
            )
        return self.psystem.logdet(zf), zf.L11

    def rx_inverse(self, theta: np.ndarray, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """``R_X^{-1}`` of the penalized least-squares system with the Fisher weights at
        ``eta``: ``phi R_X^{-1} R_X^{-T}`` is the covariance of beta conditional on theta
        (lme4's ``vcov`` without the Hessian)."""
        w = self._weights(mu, self._family.link.mu_eta(eta))
        # X alone (no response column): the factor's last block is then R_X' itself
        return self.rx_inverse_of(self.factor_at(theta, w))

    def rx_inverse_of(self, f: BlockedFactor) -> np.ndarray:
        """``R_X^{-1}`` (the user's ``X``) from a factor of :meth:`factor_at` made with
        the Fisher weights."""
        Lxx = np.tril(f.LXX)[:self.p, :self.p]
        return self.basis.rx_inv_to_user(np.linalg.inv(Lxx.T))

    def rx_factor(self, theta: np.ndarray, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """``R_X`` itself (upper triangular, the user's ``X``): ``R~_X R`` from the factor in
        the internal basis, without inverting anything."""
        w = self._weights(mu, self._family.link.mu_eta(eta))
        f = self.factor_at(theta, w)
        return np.tril(f.LXX)[:self.p, :self.p].T @ self.basis.R

    def fisher_weights_at(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """PIRLS's Fisher working weights (prior weights included) at ``eta``."""
        return self._weights(mu, self._family.link.mu_eta(eta))

    # -- the iteration ------------------------------------------------------------------
    def _starting_point(self, theta, lams, beta, u0, beta0) -> tuple[np.ndarray, np.ndarray]:
        """``(u, beta)`` where :meth:`fit` starts: ``u0`` or the previous modes; in joint
        mode (``beta=None``) ``beta0`` in the internal basis, else the previous ``beta``,
        else the GLM start with ``u = 0``; with ``beta`` given, the modes predicted from
        their sensitivity when that move is small."""
        u = (self.u_start if u0 is None else np.asarray(u0, float)).copy()
        if beta is None:
            if beta0 is not None:
                b = self.basis.from_user(np.asarray(beta0, dtype=float))
            else:
                b = self.beta_start
            if b is None:
                b = self._initial_beta()
                u = np.zeros(self.q)
            elif u0 is None and beta0 is None and self.predict:
                guess = self._predict_joint(theta, lams)
                if guess is not None:
                    u, b = guess
            return u, np.asarray(b, dtype=float).copy()
        beta = np.asarray(beta, dtype=float)
        if u0 is None and self.predict:
            guess = self._predict_u(theta, beta)
            if guess is not None and self._small_move(lams, guess - u):
                u = guess
        return u, beta

    def fit(self, theta, beta=None, *, u0=None, beta0=None, tol: float | None = None
            ) -> PIRLSResult:
        """Conditional modes at ``theta`` and ``beta`` (or, with ``beta=None``, the joint
        penalized estimates of ``beta`` and ``u``: lme4's nAGQ = 0).

        ``u0``/``beta0`` start the iteration (default: the previous solution); ``tol``
        overrides the convergence tolerance for this call. In joint mode ``beta`` is
        iterated as the coefficients of the internal basis ``X~`` (module docstring).

        The iteration is written once, for any place the rows live: what reads them is
        the hooks :meth:`_evaluate` (a point's linear predictor, mean and deviance),
        :meth:`_step_system` (the weighted cross-products of the next step at a point),
        :meth:`_step_change`, :meth:`_step_slack`, :meth:`_ridge_step`,
        :meth:`_sensitivity_at` and :meth:`_rows_of`; the Dask backend overrides them
        with distributed passes (:class:`~mixedmodels.backends.dask.pirls.DaskPIRLS`).
        """
        tol = self.tol if tol is None else float(tol)
        theta = np.asarray(theta, dtype=float)
        joint = beta is None
        lams = self.lambdas(theta)
        u, beta = self._starting_point(theta, lams, beta, u0, beta0)
        cur = self._evaluate(lams, beta, u, joint)
        if not cur.valid:
            # the previous modes are not valid here: restart from u = 0
            u = np.zeros(self.q)
            cur = self._evaluate(lams, beta, u, joint)
            if not cur.valid:
                raise PIRLSError(self._invalid_message(self._user_beta(beta, joint)))
        pdev = cur.dev + float(u @ u) + self._beta_penalty(beta, joint)
        f = None
        it = 0
        fisher = False      # Newton failed: Fisher scoring until close to the mode
        flat = 0            # consecutive steps within the deviance's noise (stagnation)
        best = np.inf       # smallest change so far
        change = np.inf
        while it < self.maxit:
            it += 1
            step_sys = self._step_system(cur, joint, fisher)
            observed = step_sys.observed
            slack = None    # the deviance's rounding noise, computed when first needed
            f = self._factor_step(theta, lams, step_sys, joint)
            if f is None and observed and not fisher and self.link_keeps_range:
                # Newton's system with indefinite observed weights is not positive
                # definite here: a Fisher-scoring step instead (Newton resumes near the
                # mode, as after a failed Newton step)
                fisher = True
                continue
            if f is None:
                # after a failed Newton step the Newton failure is the news
                raise PIRLSError(self._halving_message(theta) if fisher
                                 else self._not_pd_message(theta))
            beta_new = self._joint_beta(f.LXX) if joint else beta
            u_new = self.step_system.solve_u(f, beta_new if joint else self._no_beta)
            du = u_new - u
            dbeta = beta_new - beta
            if self._step_below_tol(lams, du, dbeta, joint, tol) or \
                    (it >= SETTLED_AFTER and self._settled(lams, du, dbeta, joint, tol)):
                break
            step = 1.0
            for _ in range(self.max_halvings + 1):
                u_try = u + step * du
                beta_try = beta + step * dbeta if joint else beta
                trial = self._evaluate(lams, beta_try, u_try, joint, ref=cur, fisher=fisher)
                pdev_try = trial.dev + float(u_try @ u_try) + \
                    self._beta_penalty(beta_try, joint)
                strict = pdev + PDEV_ROUNDING * abs(pdev)
                if trial.valid and pdev_try > strict and slack is None:
                    slack = self._step_slack(pdev, step_sys)
                if trial.valid and pdev_try <= max(strict, pdev + (slack or 0.0)):
                    break
                step *= 0.5
            else:
                if np.max(np.abs(du), initial=0.0) < tol:
                    break  # rounding noise at the mode, not a failure
                if observed and self.link_keeps_range:
                    # retry this step by Fisher scoring (where the link can leave the
                    # family's range, a failed step means the mean wants out of it: that
                    # is reported at once, as lme4 does)
                    fisher = True
                    continue
                raise PIRLSError(self._halving_message(theta))
            change = self._step_change(trial, cur, u_try - u, joint, it, tol)
            if fisher and change < NEWTON_RESUME_CHANGE:
                fisher = False
            if change < best:
                best, flat = change, 0
            elif change < STAGNATION_CHANGE and abs(pdev_try - pdev) <= (
                    slack if slack is not None else self._step_slack(pdev, step_sys)):
                flat += 1
            else:
                flat = 0
            u, beta, cur, pdev = u_try, beta_try, trial, pdev_try
            if change < tol or flat >= STAGNATION_STEPS:
                break
        else:
            # (while-else: the iteration limit was reached without convergence)
            self.n_iter_total += it
            raise PIRLSError(
                f"PIRLS did not converge in {self.maxit} iterations at "
                f"theta={np.round(theta, 6).tolist()} (last change {change:.2g}); the "
                "conditional modes are poorly determined -- check the link function, or "
                f"simplify the random effects.{self._link_hint()}"
            )
        self.n_iter_total += it
        # the determinant and first block of the last step's factor (every path out of
        # the loop above leaves ``f`` at the last factor computed)
        logdet, L11 = self.step_system.logdet(f), f.L11
        self.u_start = u
        if joint:
            self.beta_start = beta
            self._ref = None
            self._ref_joint = None
            self._ref_joint_pending = (theta, lams, u, beta, cur, step_sys, f,
                                       self._family) if self.predict else None
            beta = self.basis.to_user(beta)
        elif self.predict:
            # the sensitivity is refreshed only when the prediction has gone stale (more
            # than PREDICTED_ITERATIONS steps needed): an older one still predicts the
            # modes at the next point to second order from this one
            J = self._ref[3] if self._ref is not None and it <= PREDICTED_ITERATIONS \
                else self._sensitivity_at(theta, beta, lams, u, cur, step_sys, f)
            self._ref = (theta, beta, u, J)
        eta, mu = self._rows_of(cur)
        return PIRLSResult(theta, beta, u, eta, mu, cur.dev, float(u @ u), logdet, L11, f, it,
                           observed)

    # -- the hooks of the iteration: where the rows are read (in memory here) -----------
    def _evaluate(self, lams, beta: np.ndarray, u: np.ndarray, joint: bool,
                  ref: RowPoint | None = None, fisher: bool = False) -> RowPoint:
        """The point ``(beta, u)``: its linear predictor, mean and deviance. ``beta`` is
        in the internal basis in joint mode; at fixed beta the fixed part of ``eta`` is
        the reference point's (``ref``, the step's start). ``fisher`` (the weights of
        the next step's system) matters only where that system is formed with the
        point's evaluation (the Dask passes)."""
        del fisher
        if ref is not None and not joint:
            fixed = ref.fixed
        else:
            fixed = (self.Xt if joint else self.X) @ beta
            if self._has_offset:
                fixed += self.offset
        eta, mu, me, dev = self._state(fixed, lams, u)
        return RowPoint(fixed, eta, mu, me, dev)

    def _step_system(self, cur: RowPoint, joint: bool, fisher: bool) -> StepSystem:
        """The least-squares system of the step from ``cur``: the cross-products of
        ``[X~, eta - offset + r]`` (joint) or of ``[Z b + r]`` with the step's weights
        (:meth:`_step_weights`)."""
        w, wres, observed = self._step_weights(cur.eta, cur.mu, cur.me, fisher)
        if joint:
            p = self.p
            if self._XY is None:
                self._XY = np.empty((self.n, p + 1))
                self._XY[:, :p] = self.Xt
            XY = self._XY
            np.add(cur.eta - self.offset if self._has_offset else cur.eta, wres,
                   out=XY[:, p])
        else:
            XY = (cur.eta - cur.fixed + wres)[:, None]
        # the dense system of small models factors the rows themselves (no cross-products)
        A = None if self.dense is not None else \
            self.pattern.compute(XY, w, csr_a21=self.psystem.needs_csr)
        indefinite = observed and bool(w.min() <= 0.0)
        return StepSystem(A, observed, (cur.eta, w, wres, XY), indefinite)

    def _ridge_step(self, step: StepSystem):
        """The step's cross-products with :data:`XX_RIDGE` on the fixed-effects block."""
        return self._ridged(step.A, step.rows[1])

    def _step_slack(self, pdev: float, step: StepSystem) -> float:
        """Rounding noise of the penalized deviance at the step's start
        (:meth:`_slack`)."""
        eta, w, wres = step.rows[:3]
        return self._slack(pdev, eta, w, wres)

    def _step_change(self, trial: RowPoint, cur: RowPoint, du: np.ndarray, joint: bool,
                     it: int, tol: float) -> float:
        """The largest change of ``eta`` and ``u`` in the step from ``cur`` to ``trial``
        (over the observations off the family's edge once separation is suspected,
        :meth:`_change_off_edge`)."""
        # (array methods: np.max's dispatch costs more than these small reductions)
        change = max(np.abs(trial.eta - cur.eta).max(initial=0.0),
                     np.abs(du).max(initial=0.0))
        if change >= tol and joint and (it >= SEPARATION_CHECK_AFTER or self._edge_seen):
            change = self._change_off_edge(trial.eta, cur.eta, du, trial.mu, trial.me, tol)
        return change

    def _step_below_tol(self, lams, du: np.ndarray, dbeta: np.ndarray, joint: bool,
                        tol: float) -> bool:
        """Whether to stop before trying the step (False here: in memory a trial costs
        one evaluation, and its change decides; the Dask PIRLS saves that pass when a
        bound settles it)."""
        del lams, du, dbeta, joint, tol
        return False

    def _settled(self, lams, du: np.ndarray, dbeta: np.ndarray, joint: bool,
                 tol: float) -> bool:
        r"""Whether the step ``(du, dbeta)`` certainly changes every ``u`` and every
        linear predictor by less than ``tol``: ``max|du| < tol`` and the bound
        ``sum_k |Lambda_k|_max |Z_k|_max max|du| + max|X~ dbeta|`` below ``tol``.

        :meth:`fit` then stops at the step's start instead of evaluating the step's trial
        point (whose change would be below ``tol``: the iteration would stop there).
        Newton's iteration converges quadratically, so a step this small after a first
        one (:data:`SETTLED_AFTER`) leaves the start ``O(tol)`` at most from the mode,
        typically ~``|du|`` (~1e-12 after a change of 1e-6); the penalized deviance is
        stationary there (its error ``O(|du|^2)``), and the returned factor, ``log|L|^2``,
        rows and modes are now all of the same point (before, the factor was that of the
        step's start and the modes its end). One row evaluation (the linear predictor,
        the inverse link and the deviance) fewer per solve of two or more iterations.
        """
        step = float(np.abs(du).max(initial=0.0))
        if step >= tol:
            return False
        bound = 0.0
        for lam, zmax in zip(lams, self._zmax, strict=True):
            bound += (abs(lam[0, 0]) if lam.size == 1 else np.abs(lam).max()) * zmax
        bound *= step
        if joint and dbeta.size and bound < tol:
            bound += float(np.abs(self.Xt @ dbeta).max())
        return bound < tol

    def _sensitivity_at(self, theta, beta, lams, u, cur: RowPoint, step: StepSystem, f):
        """The modes' sensitivity at the solution ``cur`` with the last step's weights
        (:meth:`_sensitivity`)."""
        return self._sensitivity(theta, beta, lams, u, cur.eta, cur.mu, cur.me,
                                 step.rows[1], f)

    def reference_of(self, pr: PIRLSResult):
        """``(theta, beta, u, du/d[theta, beta])`` of a fixed-beta (Laplace) solution
        ``pr``, its sensitivity (:meth:`_sensitivity`) computed afresh at the modes with the
        weights of PIRLS's next step there and the solution's own factor: the reference
        from which :meth:`fit` predicts the modes at nearby parameters when it is put in
        ``_ref`` (the finite differences of the standard errors' Hessian, whose points
        all lie within a small step of the optimum). The one PIRLS keeps itself may be
        several solves old (refreshed only when stale, :data:`PREDICTED_ITERATIONS`):
        its prediction is then first-order accurate only up to that age."""
        theta = np.asarray(pr.theta, dtype=float)
        beta = np.asarray(pr.beta, dtype=float)
        lams = self.lambdas(theta)
        me = self._family.link.mu_eta(pr.eta)
        w = self._step_weights(pr.eta, pr.mu, me)[0]
        J = self._sensitivity(theta, beta, lams, pr.u, pr.eta, pr.mu, me, w, pr.factor)
        return theta, beta, pr.u.copy(), J

    def sensitivity_is_exact(self, pr: PIRLSResult) -> bool:
        """Whether :meth:`reference_of` ``(pr)``'s sensitivity is the modes' exact
        derivative: its weights are the Hessian of ``PD / 2`` in ``u`` (a canonical link,
        where Fisher's weights are the observed ones, or Newton's observed weights, all
        positive there), not Fisher's weights of a non-canonical link (a first-order
        approximation only: Poisson with identity link, where some observed weights are
        zero)."""
        if self._canonical:
            return True
        me = self._family.link.mu_eta(pr.eta)
        return bool(self._step_weights(pr.eta, pr.mu, me)[2])

    @functools.cached_property
    def predicts_every_theta(self) -> bool:
        """Whether the modes' sensitivity (:meth:`_sensitivity`) has every theta column:
        every term scalar with ``Lambda = theta`` (:meth:`_scalar_term_modes`); a
        vector-valued term's columns are left at zero, so its modes are not predicted.
        (The design's terms decide it: found once, where each predicted difference of the
        standard errors asked again, ~4 us a time.)"""
        return sum(1 for _ in self._scalar_term_modes(np.zeros(self.q))) == \
            len(self.design.terms)

    def predicted_rows(self, theta: np.ndarray, beta: np.ndarray, ref
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(u, eta, mu)`` at the modes predicted at ``(theta, beta)`` from the reference
        ``ref`` (:meth:`reference_of`), without a PIRLS step (the standard errors'
        gradient differences, :meth:`~.glmm_gradient.LaplaceGradient.gradient_at_predicted`);
        None when the predicted move of ``Z Lambda u`` is not small
        (:data:`PREDICT_MAX_DETA`, as :meth:`fit`'s own use of a prediction) or the
        rows are outside the family's range there. PIRLS's state is not changed."""
        theta = np.asarray(theta, dtype=float)
        beta = np.asarray(beta, dtype=float)
        th0, b0, u0, J = ref
        if th0.shape != theta.shape or b0.shape != beta.shape or \
                not self.predicts_every_theta:
            return None
        lams = self.lambdas(theta)
        du = J @ np.concatenate([theta - th0, beta - b0])
        if not self._small_move(lams, du):
            return None
        u = u0 + du
        cur = self._evaluate(lams, beta, u, False)
        if not cur.valid or not math.isfinite(cur.dev):
            return None
        return u, cur.eta, cur.mu

    @staticmethod
    def _rows_of(cur: RowPoint):
        """``(eta, mu)`` of the result."""
        return cur.eta, cur.mu

    @staticmethod
    def _slack(pdev: float, eta, w, wres) -> float:
        """Rounding noise of the penalized deviance (see ETA_ROUNDING_FACTOR); the slope
        ``|d(dev/2)/d eta|`` is ``|w * wres|``."""
        noise = ETA_ROUNDING_FACTOR * _EPS * float(np.abs(eta) @ np.abs(w * wres))
        return PDEV_ROUNDING * abs(pdev) + min(noise, SLACK_MAX * abs(pdev))

    def _factor_step(self, theta, lams, step: StepSystem, joint: bool):
        """The factor of one step (the dense system's from the step's rows, else the
        blocked one's from its cross-products; in joint mode retried with the
        :data:`XX_RIDGE` ridge when the fixed-effects block fails), or None.

        Newton's weights of both signs (:attr:`indefinite_newton`) can make the system
        indefinite; the blocked factorization of a scalar first term then takes square
        roots of negative pivots instead of raising, so such a factor counts only when
        its log-determinant is finite."""
        if not step.indefinite:
            return self._factor_step_system(theta, lams, step, joint)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = self._factor_step_system(theta, lams, step, joint)
            if f is not None and not np.isfinite(self.step_system.logdet(f)):
                return None
        return f

    def _factor_step_system(self, theta, lams, step: StepSystem, joint: bool):
        """:meth:`_factor_step` for a system known to be positive definite or not."""
        if self.dense is not None:
            w, XY = step.rows[1], step.rows[3]
            if not joint and self.dense.one_scalar is not None:
                # one scalar term at fixed beta: M is diagonal (no matrices)
                return self.dense.factor_scalar_step(lams, XY[:, 0], w)
            f = self.dense.factor_step(lams, XY, w)
            if f is None and joint and self.p:
                f = self.dense.factor_step(lams, XY, w, ridge=self._ridge_amount(w))
            return f
        f = self.psystem.factor(theta, step.A, need_xx=joint)
        if f is None and joint and self.p:
            f = self.psystem.factor(theta, self._ridge_step(step), need_xx=joint)
        return f

    def _ridge_amount(self, w: np.ndarray) -> float:
        """``XX_RIDGE`` times the largest weight per unit of prior weight."""
        pos = self.prior > 0
        return XX_RIDGE * (float(np.max(w[pos] / self.prior[pos])) if pos.any() else 0.0)

    def _ridged(self, A, w: np.ndarray):
        """``A`` with :meth:`_ridge_amount` added to the diagonal of its fixed-effects
        block (see :data:`XX_RIDGE`)."""
        return self._with_xx_ridge(A, self._ridge_amount(w))

    def _with_xx_ridge(self, A, amount: float, copy: bool = False):
        """``A`` (in place, or a copy with ``copy``) with ``amount`` added to the diagonal
        of its fixed-effects block."""
        if self.p:
            if copy:
                A = dataclasses.replace(A, AXX=A.AXX.copy())
            idx = np.arange(self.p)
            A.AXX[idx, idx] += amount
        return A

    def _small_move(self, lams, du: np.ndarray) -> bool:
        """Whether ``Z Lambda du`` stays within ``PREDICT_MAX_DETA`` everywhere: first by the
        bound ``sum_k |Lambda_k|_max |Z_k|_max max|du|`` (no pass over the data), exactly
        only when the bound does not settle it."""
        if not du.size:
            return True
        bound = 0.0
        for lam, zmax in zip(lams, self._zmax, strict=True):
            bound += (abs(lam[0, 0]) if lam.size == 1 else np.abs(lam).max()) * zmax
        if bound * np.abs(du).max() <= PREDICT_MAX_DETA:
            return True
        return float(np.max(np.abs(self._random_part(lams, du)), initial=0.0)) <= \
            PREDICT_MAX_DETA

    def _change_off_edge(self, eta_new, eta, du, mu, me, tol: float) -> float:
        """The step's change over the observations whose fitted means are not at the edge of
        the family's range (weights above ``SEPARATED_WEIGHT`` of the largest), or the full
        change when such observations moved by ``tol`` or more.

        Under complete separation a coefficient runs to infinity: each step moves the linear
        predictor of its observations by about one unit while their weights, and their
        contribution to the deviance, shrink geometrically. Those steps change nothing
        else, so they do not hold up convergence; the coefficient stays where the
        deviance stopped changing (lme4 behaves alike) and the fit reports it.
        """
        w = self._weights(mu, me)
        edge = w <= SEPARATED_WEIGHT * np.max(w)
        d_eta = np.abs(eta_new - eta)
        full = max(np.max(d_eta, initial=0.0), np.max(np.abs(du), initial=0.0))
        if not edge.any() or edge.all():
            return full
        self._edge_seen = True     # later solves start near the edge: check at once
        return max(np.max(d_eta[~edge], initial=0.0), np.max(np.abs(du), initial=0.0))

    def _user_beta(self, beta: np.ndarray, internal: bool) -> np.ndarray:
        return self.basis.to_user(beta) if internal else beta

    def _prior_root_internal(self) -> np.ndarray:
        """The prior root for the coefficients of ``X~``: ``||G' beta||^2`` with
        ``beta = R^{-1} c`` is ``||(R^{-T} G)' c||^2``."""
        return self.basis.R_inv.T @ self.beta_prior_root

    def _joint_beta(self, Lxx: np.ndarray) -> np.ndarray:
        """Coefficients (of ``X~``) of the joint step from the factor's ``[X y]`` block
        ``[[R, 0], [c', s]]`` (its lower triangle; what lies above it is not read):
        ``R' b = c`` by one triangular solve, or with a prior root ``G`` the
        least-squares solution of ``[R'; G~'] b ~ [c; 0]`` (a QR factorization, no normal
        equations)."""
        p = self.p
        if self.beta_prior_root is None:
            return solve_lower_t(Lxx[:p, :p], Lxx[p, :p])
        Lxx = np.tril(Lxx)
        R, c = Lxx[:p, :p], Lxx[p, :p]
        G = self._prior_root_internal()
        b, *_ = np.linalg.lstsq(np.vstack([R.T, G.T]), np.r_[c, np.zeros(G.shape[1])],
                                rcond=None)
        return b

    def _beta_penalty(self, beta: np.ndarray, joint: bool) -> float:
        """``||G' beta||^2`` of the prior for internal coefficients ``beta`` (joint solves)."""
        if not joint or self.beta_prior_root is None:
            return 0.0
        return float(np.sum((beta @ self._prior_root_internal()) ** 2))

    def _initial_beta(self) -> np.ndarray:
        """lme4's start: one weighted least-squares step from ``mustart`` with ``u = 0``
        (coefficients of the internal basis ``X~``).

        When that step leaves the family's range (a log link for the binomial can put a
        probability above 1), it is halved towards the constant fit (the mean of the starting
        linear predictor, always valid) until it is inside, as PIRLS's step-halving would.
        """
        fam = self._family
        mu0 = fam.mustart(self.y, self.prior)
        eta0 = fam.link.link(mu0)
        if not np.all(np.isfinite(eta0)):
            raise PIRLSError(
                f"cannot find valid starting values: the {fam.link.name} link of the "
                f"starting means of the {fam.name} family is not finite; check the response "
                "or choose another link"
            )
        me = fam.link.mu_eta(eta0)
        w = fam.fisher_weights(eta0, mu0, self.prior)
        z = eta0 - self.offset + (self.y - mu0) / me
        sw = np.sqrt(w)
        beta, *_ = np.linalg.lstsq(self.Xt * sw[:, None], z * sw, rcond=None)
        ones = np.flatnonzero(np.all(self.X == 1.0, axis=0))
        base = np.zeros(self.p)
        if ones.size:
            # (weighted means as dot products: np.average costs ~20 us a call)
            base[ones[0]] = float(w @ (eta0 - self.offset)) / float(w.sum())
        base = self.basis.from_user(base)
        step = 1.0
        for _ in range(self.max_halvings + 1):
            trial = base + step * (beta - base)
            eta = self.Xt @ trial + self.offset
            if fam.link.valid_eta(eta):
                mu = fam.link.linkinv(eta)
                if fam.valid_mu(mu):
                    return self._better_start(trial, ones, mu)
            step *= 0.5
        raise PIRLSError(self._invalid_message(self.basis.to_user(beta)))

    def _better_start(self, trial: np.ndarray, ones: np.ndarray,
                      mu_trial: np.ndarray) -> np.ndarray:
        """lme4's start or the constant mean ``g(mean y)``, whichever has the lower deviance
        (at ``u = 0``).

        lme4's step regresses ``g(y)`` on ``X``; with a log link and very skewed responses
        (Gamma shape 0.1: ``y`` down to 1e-36) ``log y`` is dominated by the tiny values and
        the start lies tens of units below every mean, where no PIRLS step can recover.
        The constant fit is always a sensible point; for well-behaved data lme4's start
        has the lower deviance and is kept. ``mu_trial``: the (valid) means at ``trial``.
        """
        if not ones.size or not self.link_keeps_range:
            # under a link that can leave the family's range, lme4's start is kept: where it
            # fails, its failure (and the advice to change the link) is the right message
            return trial
        fam = self._family
        total = float(self.prior.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            level = fam.link.link(np.atleast_1d(float(self.prior @ self.y) / total))[0]
        if not np.isfinite(level):
            return trial
        const = np.zeros(self.p)
        const[ones[0]] = level - float(self.prior @ self.offset) / total
        const = self.basis.from_user(const)
        devs = []
        for cand, mu in ((trial, mu_trial), (const, None)):
            if mu is None:
                eta = self.Xt @ cand + self.offset
                mu = fam.link.linkinv(eta) if fam.link.valid_eta(eta) else None
                if mu is not None and not fam.valid_mu(mu):
                    mu = None
            with np.errstate(all="ignore"):
                dev = self._deviance(mu) if mu is not None else np.inf
            devs.append(dev if np.isfinite(dev) else np.inf)
        return const if devs[1] < devs[0] else trial

    def _not_pd_message(self, theta) -> str:
        return ("the penalized least-squares system of PIRLS is not positive definite at "
                f"theta={np.round(theta, 6).tolist()}.{self._link_hint()}")

    def _link_hint(self) -> str:
        fam = self.family
        if self.link_keeps_range:
            return ""
        better = range_keeping_link(fam)
        fix = f"; try the {better!r} link, which constrains the mean." if better else "."
        example = "probabilities above 1" if fam.link.bounded is False and \
            fam.name == "binomial" else "means at or below 0"
        return (f" The {fam.link.name!r} link does not keep the mean of the {fam.name} "
                f"family in range ({example} are possible){fix}")

    def _invalid_message(self, beta) -> str:
        fam = self.family
        return (
            f"the linear predictor at beta={np.round(beta, 6).tolist()} gives means outside "
            f"the {fam.name} family's range under the {fam.link.name} link; use a link that "
            f"keeps the mean in range (the default {fam.default_link!r}) or other starting "
            "values"
        )

    def _halving_message(self, theta) -> str:
        hint = self._link_hint()
        return (
            "PIRLS step-halvings failed to reduce the deviance: the conditional modes cannot "
            f"be found at theta={np.round(theta, 6).tolist()}.{hint} Rescaling predictors "
            "or simplifying the model can also help."
        )

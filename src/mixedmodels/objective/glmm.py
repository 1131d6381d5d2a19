r"""Laplace and adaptive-quadrature deviance of a generalized linear mixed model.

With ``b = Lambda(theta) u``, ``u ~ N(0, phi I)`` and conditional modes ``u*`` from
:mod:`~mixedmodels.objective.pirls`, the Laplace approximation of minus twice the
log-likelihood is

.. math::

    -2 \log L(\theta, \beta, \phi) \approx \sum_i -2 \log p(y_i \mid \mu_i(u^*), \phi)
        + \|u^*\|^2 / \phi + \log |L|^2,
    \qquad L L' = \Lambda' Z' W Z \Lambda + I,

with ``phi = 1`` for the binomial, Poisson and negative binomial families. ``W`` holds the
Fisher weights for those families (as lme4) and the observed-information weights for
families with a dispersion parameter (as glmmTMB's exact Laplace); the two coincide for
canonical links. Because ``Lambda`` is relative to ``sqrt(phi)`` (lme4's parameterization),
``u*`` and ``L`` do not depend on ``phi``, and for the Laplace approximation ``phi`` is
profiled out exactly (:meth:`~mixedmodels.families.Family.profile_dispersion`).

:class:`GLMMObjective` evaluates

* the nAGQ = 0 criterion of ``theta`` (``beta`` and ``u`` estimated jointly by PIRLS), used
  alone by ``nAGQ=0`` and as the start of the other fits;
* the Laplace (nAGQ = 1) or adaptive Gauss-Hermite (nAGQ > 1) deviance of the parameter
  vector ``x = [theta, beta, extra]``, where ``extra`` is ``log phi`` for dispersion families
  under quadrature and ``log`` of the negative binomial shape when it is estimated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._errors import FormulaError
from ..design import Design
from ..families import Family, NegativeBinomial
from ..linalg import BlockedFactor
from ..parameters import ParameterBlock, ParameterLayout
from .agq import MAX_NAGQ, agq_deviance
from .pirls import PIRLS, PIRLSError, PIRLSResult, binomial_weights_shift

__all__ = ["GLMMObjective", "GLMMSolution", "check_nagq", "glmm_layout"]

#: Saturated log-likelihood sums kept (one per family/dispersion value seen).
SATURATED_CACHE_SIZE = 64


def check_nagq(design: Design, nAGQ: int) -> int:
    """Validate ``nAGQ`` for ``design``: 0, 1, or up to :data:`MAX_NAGQ` for a single scalar
    random-effects term."""
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, int | np.integer):
        raise FormulaError(f"nAGQ must be an integer, got {nAGQ!r}")
    nAGQ = int(nAGQ)
    if nAGQ < 0:
        raise FormulaError(f"nAGQ must be >= 0, got {nAGQ}")
    if nAGQ > 1:
        if len(design.terms) != 1 or design.terms[0].p != 1:
            terms = ", ".join(t.term.source or str(t.term) for t in design.terms)
            raise FormulaError(
                f"nAGQ > 1 (adaptive Gauss-Hermite quadrature) needs a single scalar "
                f"random-effects term such as (1 | group); this model has {terms}. Use "
                "nAGQ=1 (Laplace approximation) for it"
            )
        if nAGQ > MAX_NAGQ:
            raise FormulaError(f"nAGQ must be at most {MAX_NAGQ}, got {nAGQ}")
    return nAGQ


def glmm_layout(design: Design, family: Family, nAGQ: int, estimate_shape: bool
                ) -> ParameterLayout:
    """The parameter layout of a glmer fit: ``theta.cond`` (lme4's order and bounds),
    ``beta.cond``, and the family parameters that are optimized rather than profiled.

    Parameters
    ----------
    design : Design
    family : Family
    nAGQ : int
    estimate_shape : bool
        A negative binomial shape block.

    Returns
    -------
    ParameterLayout
    """
    from ..objective.laplace.parameters import theta_labels

    terms = design.terms
    blocks = [ParameterBlock("theta.cond", "theta", "cond", tuple(theta_labels("cond", terms)),
                             design.theta0(), lower=design.theta_lower()),
              ParameterBlock("beta.cond", "beta", "cond",
                             tuple(f"cond~{n}" for n in design.fixed.names),
                             np.zeros(design.p))]
    if family.has_dispersion and nAGQ > 1:
        blocks.append(ParameterBlock("family.phi", "family", None, ("log(phi)",), [0.0],
                                     transform="log"))
    if estimate_shape:
        blocks.append(ParameterBlock("family.nb_shape", "family", None, ("log(nb_shape)",),
                                     [np.log(family.theta)], transform="log"))
    return ParameterLayout(blocks)


@dataclass(frozen=True)
class GLMMSolution:
    """Everything determined by the parameters at the conditional modes.

    Attributes
    ----------
    theta, beta : ndarray
    phi : float
        Dispersion (1 for families without one).
    family : Family
        The family at the solution (carries the negative binomial shape).
    objective : float
        ``-2 log L`` (Laplace or quadrature).
    u : ndarray
        Conditional modes of PIRLS's ``u`` (``b = Lambda u``; a priori ``N(0, phi I)``, so
        lme4's spherical random effects are ``u / sqrt(phi)``).
    b : list of ndarray (levels, p)
        Conditional modes of the random effects per term.
    eta, mu : ndarray
    logdet : float
        ``log|L|^2`` of the Laplace approximation.
    factor : BlockedFactor
        Factor with the Laplace weights (conditional variances): the constructor's
        ``_factor``, or, where that is a function of no arguments, its value, made when
        first asked for (the fit's final solution needs it only for conditional variances
        or a fallback covariance; one blocked factorization, ~1.5% of a cbpp fit).
    pirls : PIRLSResult
    """

    theta: np.ndarray
    beta: np.ndarray
    phi: float
    family: Family
    objective: float
    u: np.ndarray
    b: list
    eta: np.ndarray
    mu: np.ndarray
    logdet: float
    _factor: BlockedFactor | Callable[[], BlockedFactor]
    pirls: PIRLSResult

    @functools.cached_property
    def factor(self) -> BlockedFactor:
        """The blocked Cholesky factor of the penalized system at the modes, made on first
        use: most fits never read it after PIRLS, so its construction is deferred."""
        f = self._factor
        return f() if callable(f) else f

    def __getstate__(self) -> dict:
        # a pending factor is made first: its maker holds PIRLS's workspace, which a
        # pickled result leaves behind
        state = dict(self.__dict__)
        state["_factor"] = self.factor
        state.pop("factor", None)
        return state


class GLMMObjective:
    """Deviance functions of a GLMM (see the module docstring).

    Parameters
    ----------
    design : Design
    family : Family
    nAGQ : int
        0 (fast mode), 1 (Laplace) or up to 25 (quadrature, single scalar term).
    estimate_shape : bool
        Negative binomial only: estimate the shape (a ``family.nb_shape`` block).
    hessian : {"expected", "observed"}, optional
        Override the family's choice of Laplace weights.
    merge_terms : bool
        Factor PIRLS's system with terms on one grouping factor as one block (default;
        :class:`~.pirls.PIRLS`); the deviance is the same either way.

    Attributes
    ----------
    layout : ParameterLayout
        The parameter vector ``x``: blocks ``theta.cond``, ``beta.cond``, then
        ``family.phi`` (log dispersion: families with one under quadrature, where it cannot
        be profiled) and ``family.nb_shape`` (log negative binomial shape, when
        estimated). Code asks the layout for blocks by name.

    Notes
    -----
    Evaluations start PIRLS from the previous modes (a private workspace); results do not
    depend on that beyond the PIRLS tolerance. ``n_evals`` counts evaluations.
    """

    def __init__(self, design: Design, family: Family, nAGQ: int = 1, *,
                 estimate_shape: bool = False, hessian: str | None = None,
                 merge_terms: bool = True):
        self.design = design
        self.family = family
        self.nAGQ = check_nagq(design, nAGQ)
        if estimate_shape and not isinstance(family, NegativeBinomial):
            raise ValueError("estimate_shape is only for the negative binomial family")
        self.hessian = hessian
        self.pirls = PIRLS(design, family, merge_terms=merge_terms)
        self.n_theta, self.p = design.n_theta, design.p
        self.theta_lower = design.theta_lower()
        self.layout = glmm_layout(design, family, self.nAGQ, bool(estimate_shape))
        self.lower = self.layout.lower
        self.n_evals = 0
        self.stage0_tol: float | None = None     # None: PIRLS's own tolerance
        self._sat_cache: dict = {}
        self._sat_terms: tuple | None = None     # (family, -2 log p) of quadrature
        #: lme4's binomial coefficients for cbind with prior weights (per observation)
        self._weights_shift = binomial_weights_shift(design)

    # -- parameter vector ---------------------------------------------------------------
    def laplace_gradient_factory(self):
        """The class of the exact gradient of this objective's Laplace (or quadrature)
        deviance.

        Returns
        -------
        type or None
            :class:`~.glmm_gradient.LaplaceGradient` (nAGQ = 1) or
            :class:`~.agq_gradient.AGQGradient` (nAGQ > 1), called with the objective;
            None where the objective has no exact gradient
            (:func:`~.glmm_gradient.gradient_supported`,
            :func:`~.agq_gradient.agq_gradient_supported`).
        """
        from .agq_gradient import AGQGradient, agq_gradient_supported
        from .glmm_gradient import LaplaceGradient, gradient_supported

        if self.nAGQ > 1:
            return AGQGradient if agq_gradient_supported(self) else None
        return LaplaceGradient if gradient_supported(self) else None

    def stage0_gradient_factory(self):
        """The class of the exact gradient of this objective's nAGQ = 0 criterion.

        Returns
        -------
        type or None
            :class:`~.glmm_gradient.Stage0Gradient` (called with the objective), or None
            where the criterion has no exact gradient
            (:func:`~.glmm_gradient.stage0_supported`).
        """
        from .glmm_gradient import Stage0Gradient, stage0_supported

        return Stage0Gradient if stage0_supported(self) else None

    @property
    def phi_block(self) -> bool:
        """The dispersion is a parameter of ``x`` (quadrature) rather than profiled."""
        return "family.phi" in self.layout

    @property
    def estimate_shape(self) -> bool:
        """The negative binomial shape is a parameter of ``x``."""
        return "family.nb_shape" in self.layout

    def split(self, x) -> tuple[np.ndarray, np.ndarray, float | None, Family]:
        """The parameter vector's blocks.

        Parameters
        ----------
        x : array-like
            A vector of :attr:`layout`.

        Returns
        -------
        theta, beta, phi, family
            ``phi`` None when profiled; ``family`` carries the shape of ``x`` when it is
            estimated.
        """
        x = np.asarray(x, dtype=float)
        L = self.layout
        phi = float(np.exp(L.get(x, "family.phi")[0])) if self.phi_block else None
        fam = self.family
        if self.estimate_shape:
            fam = fam.with_theta(float(np.exp(L.get(x, "family.nb_shape")[0])))
        return L.get(x, "theta.cond"), L.get(x, "beta.cond"), phi, fam

    def join(self, theta, beta, phi: float | None = None, nb_theta: float | None = None
             ) -> np.ndarray:
        """The parameter vector of blocks (inverse of :meth:`split`).

        Parameters
        ----------
        theta, beta : array-like
        phi : float, optional
            Dispersion (used when it is a parameter; default 1).
        nb_theta : float, optional
            Negative binomial shape (used when estimated; default the family's).

        Returns
        -------
        ndarray
        """
        blocks = {"theta.cond": theta, "beta.cond": beta}
        if self.phi_block:
            blocks["family.phi"] = [np.log(phi if phi is not None else 1.0)]
        if self.estimate_shape:
            nb = nb_theta if nb_theta is not None else self.family.theta
            blocks["family.nb_shape"] = [np.log(nb)]
        return self.layout.pack({k: v for k, v in blocks.items() if k in self.layout})

    def _use_family(self, fam: Family) -> None:
        self.family_now = fam
        self.pirls.family = fam

    # -- deviances -----------------------------------------------------------------------
    def _laplace_logdet(self, pr: PIRLSResult, fam: Family) -> tuple[float, np.ndarray,
                                                                      np.ndarray | None]:
        """``(log|L|^2, L11, weights)`` of the Laplace approximation at the modes ``pr``;
        weights None when they are PIRLS's Fisher weights."""
        kind = fam.laplace_hessian if self.hessian is None else self.hessian
        if fam.link.name == fam.canonical_link or (kind == "observed") == pr.observed:
            return pr.logdet, pr.L11, None     # PIRLS's last factor has these weights
        w = fam.laplace_weights(self.design.y, pr.eta, pr.mu, self.pirls.prior, kind)
        logdet, L11 = self.pirls.logdet_at(pr.theta, w)
        return logdet, L11, w

    def _saturated(self, fam: Family, phi: float) -> float:
        """``sum_i s_i(phi)``, cached: it depends on the data only through y and w."""
        key = (fam, phi if fam.has_dispersion else 1.0)
        if key not in self._sat_cache:
            if len(self._sat_cache) > SATURATED_CACHE_SIZE:
                self._sat_cache.clear()
            sat = fam.saturated(self.design.y, self.pirls.prior, phi)
            if self._weights_shift is not None:
                sat = sat + self._weights_shift
            self._sat_cache[key] = float(np.sum(sat))
        return self._sat_cache[key]

    def _m2ll_function(self, fam: Family, phi: float):
        """``eta -> -2 log p(y_i | eta_i)`` per observation for adaptive quadrature (which
        evaluates it at every node of every level): for a family without a dispersion the
        family's :meth:`~mixedmodels.families.Family.m2ll_function`, kept for the last
        family (its constant terms formed once: for the binomial the three ``gammaln``
        passes of ``s_i`` were a third of the per-observation work); with a dispersion
        ``phi`` moves at every evaluation and ``d_i / phi + s_i(phi)`` is formed afresh."""
        y, prior = self.design.y, self.pirls.prior
        if fam.has_dispersion:
            sat = fam.saturated(y, prior, phi)
            if self._weights_shift is not None:
                sat = sat + self._weights_shift

            def per_obs(mu):
                out = fam.dev_resids(y, mu, prior)
                if phi != 1.0:
                    out /= phi
                out += sat
                return out
        else:
            per_obs = self._m2ll_of_mu(fam)
        linkinv = fam.link.linkinv

        def m2ll(eta):
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                out = per_obs(linkinv(eta))
                # one reduction decides (a sum is finite only when every term is); the
                # elementwise repair runs only when some node left the family's range
                if not np.isfinite(out.sum()):
                    out = np.where(np.isfinite(out), out, np.inf)
            return out

        return m2ll

    def _m2ll_of_mu(self, fam: Family):
        """``mu -> -2 log p(y_i | mu_i)`` of a family without a dispersion (its
        :meth:`~mixedmodels.families.Family.m2ll_function`, kept for the last family)."""
        if self._sat_terms is None or self._sat_terms[0] is not fam:
            m2ll = fam.m2ll_function(self.design.y, self.pirls.prior)
            shift = self._weights_shift
            if shift is not None:
                base = m2ll

                def m2ll(mu):
                    return base(mu) + shift
            self._sat_terms = (fam, m2ll)
        return self._sat_terms[1]

    def _value(self, pr: PIRLSResult, fam: Family, phi: float | None, nagq: int
               ) -> tuple[float, float, float]:
        """(deviance, phi, log|L|^2) at the modes ``pr``."""
        y, prior = self.design.y, self.pirls.prior
        logdet, L11, _ = self._laplace_logdet(pr, fam)
        if fam.has_dispersion and phi is None:
            phi = fam.profile_dispersion(y, prior, pr.dev + pr.sqr_u)
        phi = 1.0 if phi is None else phi
        if nagq <= 1:
            value = (pr.dev + pr.sqr_u) / phi + self._saturated(fam, phi) + logdet
            return float(value), phi, logdet
        term = self.design.terms[0]
        lam = float(term.structure.lambda_(pr.theta)[0, 0])

        m2ll = self._m2ll_function(fam, phi)
        value = agq_deviance(nagq, eta=pr.eta, u=pr.u, codes=term.grouping.codes,
                             zcol=term.Z[:, 0], lam=lam, L_diag=L11[:, 0, 0], m2ll=m2ll,
                             phi=phi)
        return value, phi, logdet

    def __call__(self, x) -> float:
        """Laplace / quadrature deviance of ``x = [theta, beta, extra]`` (inf where the
        conditional modes cannot be found)."""
        self.n_evals += 1
        theta, beta, phi, fam = self.split(x)
        self._use_family(fam)
        try:
            pr = self.pirls.fit(theta, beta)
            value, _, _ = self._value(pr, fam, phi, max(self.nAGQ, 1))
        except (PIRLSError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        return value if np.isfinite(value) else np.inf

    def stage0(self, theta, family: Family | None = None) -> float:
        """The nAGQ = 0 criterion: the Laplace deviance at the joint PIRLS estimates of
        beta and u (PIRLS to ``stage0_tol``, looser when this stage only provides starting
        values).

        Parameters
        ----------
        theta : array-like
        family : Family, optional
            The family to use (a negative binomial with another shape).

        Returns
        -------
        float
            The deviance, inf where the modes cannot be found.
        """
        self.n_evals += 1
        fam = self.family if family is None else family
        self._use_family(fam)
        try:
            pr = self.pirls.fit(np.asarray(theta, float), None, tol=self.stage0_tol)
            value, _, _ = self._value(pr, fam, None, 1)
        except (PIRLSError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        return value if np.isfinite(value) else np.inf

    # -- solutions -------------------------------------------------------------------------
    def _solution(self, pr: PIRLSResult, fam: Family, phi, nagq: int) -> GLMMSolution:
        value, phi, logdet = self._value(pr, fam, phi, nagq)
        kind = fam.laplace_hessian if self.hessian is None else self.hessian
        w = fam.laplace_weights(self.design.y, pr.eta, pr.mu, self.pirls.prior, kind)
        # (made when first asked for: the same factorization of the same weights; theta
        # copied, as the caller's vector may be changed in place before then)
        f = functools.partial(self.pirls.factor_at, np.array(pr.theta, dtype=float), w)
        lams = self.pirls.lambdas(pr.theta)
        b, off = [], 0
        for t, lam in zip(self.design.terms, lams, strict=True):
            uk = pr.u[off:off + t.q].reshape(t.nlevels, t.p)
            b.append(uk @ lam.T)
            off += t.q
        return GLMMSolution(pr.theta, pr.beta, phi, fam, value, pr.u, b, pr.eta, pr.mu,
                            logdet, f, pr)

    def solve(self, x) -> GLMMSolution:
        """Conditional modes and the deviance at ``x``.

        Parameters
        ----------
        x : array-like
            A vector of :attr:`layout`.

        Returns
        -------
        GLMMSolution

        Raises
        ------
        PIRLSError
            When the conditional modes cannot be found.
        """
        theta, beta, phi, fam = self.split(x)
        self._use_family(fam)
        pr = self.pirls.fit(theta, beta)
        return self._solution(pr, fam, phi, max(self.nAGQ, 1))

    def solution(self, x, pr: PIRLSResult) -> GLMMSolution:
        """:meth:`solve`'s solution from a PIRLS result already computed at ``x`` with
        PIRLS's own tolerance (the search's last evaluation), leaving PIRLS's workspace
        where that solve left it.

        Parameters
        ----------
        x : array-like
        pr : PIRLSResult

        Returns
        -------
        GLMMSolution
        """
        _, _, phi, fam = self.split(x)
        self._use_family(fam)
        return self._solution(pr, fam, phi, max(self.nAGQ, 1))

    def solve0(self, theta, family: Family | None = None) -> GLMMSolution:
        """Joint PIRLS estimates of beta and u (nAGQ = 0) at ``theta``.

        Parameters
        ----------
        theta : array-like
        family : Family, optional

        Returns
        -------
        GLMMSolution
        """
        fam = self.family if family is None else family
        self._use_family(fam)
        pr = self.pirls.fit(np.asarray(theta, float), None)
        return self._solution(pr, fam, None, 1)

    def solution0(self, pr: PIRLSResult, family: Family) -> GLMMSolution:
        """:meth:`solve0`'s solution from a joint PIRLS result already computed at its
        theta with ``family`` and PIRLS's own tolerance (the stage-1 search's last
        evaluation), leaving PIRLS's workspace where that solve left it.

        Parameters
        ----------
        pr : PIRLSResult
        family : Family

        Returns
        -------
        GLMMSolution
        """
        self._use_family(family)
        return self._solution(pr, family, None, 1)

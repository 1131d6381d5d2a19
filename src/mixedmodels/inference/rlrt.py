r"""Exact restricted likelihood-ratio test of a zero variance component (RLRsim's
``exactRLRT``; Crainiceanu & Ruppert 2004).

For ``y = X beta + Z b + e``, ``b ~ N(0, lambda sigma^2 I)``, testing ``lambda = 0``, the
restricted LRT statistic has, under the null, the exact finite-sample representation

.. math::

    RLRT \overset{d}{=} \sup_{\lambda \ge 0} \Big[(n - p) \log\Big(1 + \frac{N(\lambda)}
        {D(\lambda)}\Big) - \sum_{s=1}^{K} \log(1 + \lambda \mu_s)\Big], \\
    N(\lambda) = \sum_s \frac{\lambda \mu_s}{1 + \lambda \mu_s} w_s, \qquad
    D(\lambda) = \sum_s \frac{w_s}{1 + \lambda \mu_s} + w_0,

with ``w_s ~ chi2(1)`` and ``w_0 ~ chi2(n - p - K)`` independent, and ``mu_s`` the
eigenvalues of ``Z' (I - P_X) Z`` (normalized by the largest). It is simulated exactly as
RLRsim does: ``lambda`` on a grid of 0 and 199 log-spaced values from ``e^-10`` to
``e^8``, climbing the grid while the statistic does not decrease.

With other random effects in the model, RLRsim's approach (followed here) uses the same
distribution for the test of the one variance in ``m_full`` that ``m_reduced`` drops --
exact when the tested effect is the only one, a good approximation otherwise
(Scheipl, Greven & Kuechenhoff 2008). The statistic is
``2 (l_REML(full) - l_REML(reduced))``, with REML fits (ML fits are refitted).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .._errors import MixedModelsError
from .._messages import user_stacklevel
from ..display.tables import Report, ReportDisplay, Table
from .anova import RefitNote
from .lm import LinearModelResult, fit_lm
from .nesting import check_comparable, fixed_effects_differ
from .simulate import refit_reml

__all__ = ["RLRTResult", "gram_eigenvalues", "lr_null_sample", "residual_eigenvalues", "rlrt",
           "rlrt_null_sample"]

#: RLRsim's lambda grid: 0 and ``GRID_LENGTH - 1`` log-spaced values in
#: ``[exp(LOG_GRID_LO), exp(LOG_GRID_HI)]``.
LOG_GRID_LO = -10.0
LOG_GRID_HI = 8.0
GRID_LENGTH = 200
#: Replicates simulated at a time (bounds memory: chunk x (K + grid)).
SIM_CHUNK = 2000


@dataclass(frozen=True, repr=False)
class RLRTResult(ReportDisplay):
    """Outcome of :func:`rlrt`.

    Attributes
    ----------
    statistic : float
        Observed RLRT (0 when the full model does not improve on the reduced one).
    p_value : float
        Share of simulated null values above the statistic.
    term : str
        The random-effects term tested.
    null_sample : ndarray
    """

    statistic: float
    p_value: float
    term: str
    null_sample: np.ndarray

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        from .format import format_pvalue

        table = Table(("term", "RLRT", "p-value", "null draws"),
                      ((self.term, f"{self.statistic:.4f}", format_pvalue(self.p_value),
                        str(self.null_sample.size)),), "lrrr", "Exact restricted LRT")
        return Report((f"simulated finite sample distribution of RLRT (p-value based on "
                       f"{self.null_sample.size} simulated values)", table))


def _label(t) -> str:
    return t.term.source or str(t.term)


def _term_key(t) -> tuple:
    return (t.group, tuple(t.names))


def _tested_term(full, reduced):
    reduced_keys = {_term_key(t) for t in reduced.design.terms}
    extra = [t for t in full.design.terms if _term_key(t) not in reduced_keys]
    if len(extra) != 1 or len(full.design.terms) != len(reduced.design.terms) + 1:
        found = ", ".join(_label(t) for t in extra) or "none"
        raise MixedModelsError(
            "rlrt tests one variance component: m_full must have exactly one more "
            "random-effects term than m_reduced and otherwise the same terms; terms of "
            f"m_full not in m_reduced: {found}")
    t = extra[0]
    if t.p != 1:
        raise MixedModelsError(
            f"the tested term {_label(t)} has {t.p} random effects "
            "(and correlations): rlrt tests a single variance; write the effects as "
            "separate terms, e.g. (1 | g) + (0 + x | g)")
    return t


def _scaled_z(design, t) -> tuple[np.ndarray, np.ndarray]:
    """The tested term's single column of ``Z`` and the columns of ``X``, rows scaled by
    ``sqrt(w)`` for prior weights (RLRsim has none)."""
    sw = np.ones(design.nobs) if design.weights is None else np.sqrt(design.weights)
    return t.Z[:, 0] * sw, design.X * sw[:, None]


def residual_eigenvalues(design, t) -> np.ndarray:
    """Eigenvalues of ``Z' (I - P_X) Z`` for the scalar term ``t``, largest first, with
    ``K = min(n, q)`` entries (zeros included, as RLRsim), not normalized.

    ``Z'Z`` is diagonal for a scalar term and ``Z'Q`` (``Q`` an orthonormal basis of X)
    is a sum per level, so the q x q matrix is formed without the n x q ``Z``.
    """
    n, q = design.nobs, t.nlevels
    z, X = _scaled_z(design, t)
    Q, _ = np.linalg.qr(X)
    codes = t.grouping.codes
    ZtZ = np.bincount(codes, z * z, minlength=q)
    ZtQ = np.stack([np.bincount(codes, z * Q[:, j], minlength=q) for j in range(Q.shape[1])],
                   axis=1)
    M = np.diag(ZtZ) - ZtQ @ ZtQ.T
    return np.maximum(np.linalg.eigvalsh(M)[::-1], 0.0)[:min(n, q)]


def gram_eigenvalues(design, t) -> np.ndarray:
    """Eigenvalues of ``Z'Z`` for the scalar term ``t`` (its diagonal), largest first,
    ``min(n, q)`` entries."""
    z, _ = _scaled_z(design, t)
    ZtZ = np.bincount(t.grouping.codes, z * z, minlength=t.nlevels)
    return np.sort(ZtZ)[::-1][:min(design.nobs, t.nlevels)]


def _eigenvalues(design, t) -> np.ndarray:
    """``mu`` of the RLRT: :func:`residual_eigenvalues` normalized by the largest."""
    mu = residual_eigenvalues(design, t)
    return mu / mu[0]


def lr_null_sample(mu: np.ndarray, n: int, p: int, nsim: int, rng: np.random.Generator,
                   xi: np.ndarray | None = None, q: int = 0) -> np.ndarray:
    r"""Simulate the null distribution of the RLRT (``xi`` None) or of the LRT.

    The RLRT's representation is in the module docstring. For the LRT of maximum-likelihood
    fits (Crainiceanu & Ruppert 2004; RLRsim's ``LRTSim``), with ``xi_s`` the eigenvalues
    of ``Z'Z`` and ``q`` fixed effects also removed under the null,

    .. math::

        LRT \overset{d}{=} \sup_{\lambda \ge 0} \Big[n \log\Big(1 + \frac{N(\lambda)}
            {D(\lambda)}\Big) - \sum_{s=1}^{K} \log(1 + \lambda \xi_s)\Big]
            + n \log\Big(1 + \frac{u_q}{\sum_s w_s + w_0}\Big),

    ``u_q ~ chi2(q)`` independent of the rest (absent for ``q = 0``). The supremum is taken
    on RLRsim's grid, climbing from ``lambda = 0`` while the statistic does not decrease.

    Parameters
    ----------
    mu : ndarray (K,)
        Normalized eigenvalues of ``Z' (I - P_X) Z``.
    n, p : int
        Observations and fixed effects of the larger model.
    nsim : int
    rng : numpy.random.Generator
    xi : ndarray (K,), optional
        Normalized eigenvalues of ``Z'Z``: the LRT (None: the RLRT).
    q : int
        Fixed effects the null model drops (LRT only).

    Returns
    -------
    ndarray (nsim,)
    """
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive whole number of draws from the null "
                         f"distribution, got {nsim!r}")
    K = mu.size
    reml = xi is None
    xi = mu if reml else xi
    lam = np.exp(np.linspace(LOG_GRID_LO, LOG_GRID_HI, GRID_LENGTH - 1))
    lm = lam[:, None] * mu[None, :]                        # (grid, K)
    fN = lm / (1.0 + lm)
    fD = 1.0 / (1.0 + lm)
    sumlog = np.sum(np.log1p(lam[:, None] * xi[None, :]), axis=1)   # (grid,)
    n0 = n - p if reml else n
    df0 = max(0, n - p - K)
    out = np.empty(nsim)
    for start in range(0, nsim, SIM_CHUNK):
        m = min(SIM_CHUNK, nsim - start)
        w = rng.chisquare(1.0, size=(m, K))
        w0 = rng.chisquare(df0, size=m) if df0 > 0 else np.zeros(m)
        N = w @ fN.T
        D = w @ fD.T + w0[:, None]
        lr = n0 * np.log1p(N / D) - sumlog[None, :]        # (m, grid)
        # climb the grid from lambda = 0 (value 0) while the statistic does not decrease
        prev = np.concatenate([np.zeros((m, 1)), lr[:, :-1]], axis=1)
        climbing = np.cumprod(lr >= prev, axis=1).astype(bool)
        best = np.max(np.where(climbing, lr, 0.0), axis=1, initial=0.0)
        if not reml and q > 0:
            best = best + n * np.log1p(rng.chisquare(q, size=m) / (w.sum(axis=1) + w0))
        out[start:start + m] = best
    return out


def rlrt_null_sample(mu: np.ndarray, n: int, p: int, nsim: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Simulate the null distribution of the RLRT (see the module docstring)."""
    return lr_null_sample(mu, n, p, nsim, rng)


def _require_linear(m, label: str) -> None:
    """The RLRT's null distribution is that of a Gaussian linear model: refuse GLMs and
    GLMMs before anything is refitted, saying what tests their variance components."""
    family = getattr(m, "family", None)
    if family is None:
        return
    kind = type(m).__name__
    raise MixedModelsError(
        f"rlrt is the exact restricted likelihood-ratio test of linear mixed models "
        f"(RLRsim's exactRLRT); {label} is a {family.name} model ({kind}), which has no "
        "restricted likelihood. For a variance component of a GLMM use the parametric "
        "bootstrap mm.pb_test(m_full, m_reduced), or the likelihood-ratio test "
        "mm.anova(m_reduced, m_full), whose chi-square p-value is conservative for a "
        "variance on its boundary (halve it when one variance is tested)")


def _reml_fit(m):
    return m if isinstance(m, LinearModelResult) else refit_reml(m)


def _restricted_loglik(m) -> float:
    return m.restricted_loglik if isinstance(m, LinearModelResult) else m.loglik


def _linear_null(m):
    """RLRsim's ``exactRLRT(m)`` with ``m`` alone: its null is the linear model with the
    same fixed effects (the design without its one random-effects term)."""
    terms = getattr(getattr(m, "design", None), "terms", None)
    if terms is None or len(terms) != 1:
        found = "none" if not terms else ", ".join(_label(t) for t in terms)
        raise MixedModelsError(
            "rlrt(m) without m_reduced tests the only random-effects term of m against "
            f"the linear model (RLRsim's exactRLRT(m)); m has {found}. Give the model "
            "without the tested term as m_reduced")
    return fit_lm(dataclasses.replace(m.design, terms=()))


def rlrt(m_full, m_reduced=None, nsim: int = 10000, seed=None) -> RLRTResult:
    """Exact RLRT that the variance of the one term ``m_full`` adds is zero (RLRsim).

    Parameters
    ----------
    m_full, m_reduced : LinearMixedModelResult (m_reduced may be a LinearModelResult)
        The same fixed effects; ``m_full`` has one more scalar random-effects term.
        ML fits are refitted by REML (with a note). With ``m_reduced`` a linear model
        (:func:`~mixedmodels.lm`) the test is RLRsim's test of a model with one random
        effect, whose null distribution is exact; ``m_reduced=None`` is that linear model
        for an ``m_full`` with a single random-effects term (RLRsim's ``exactRLRT(m)``).
    nsim : int
        Draws from the null distribution.
    seed : int, optional

    Returns
    -------
    RLRTResult
        ``statistic``, ``p_value``, ``term``.
    """
    _require_linear(m_full, "m_full")
    if m_reduced is None:
        m_reduced = _linear_null(m_full)
    _require_linear(m_reduced, "m_reduced")
    check_comparable([m_full, m_reduced], ["m_full", "m_reduced"])
    if fixed_effects_differ(m_full, m_reduced):
        raise MixedModelsError(
            "m_full and m_reduced have different fixed effects: restricted likelihoods "
            "are only comparable with the same fixed effects. To test fixed effects and a "
            "variance together, fit by ML and use mm.exact_lrt(m_full, m_null) (RLRsim's "
            "exactLRT; m_null a linear model, mm.lm) or mm.pb_test")
    mixed = [m for m in (m_full, m_reduced) if not isinstance(m, LinearModelResult)]
    if not all(getattr(m, "reml", False) for m in mixed):
        warnings.warn(
            "refitting model(s) with REML: the RLRT compares restricted likelihoods. For "
            "the likelihood-ratio test of ML fits as they are, use mm.exact_lrt(m_full, "
            "m_null) (RLRsim's exactLRT, exact for one random effect against a linear "
            "model) or mm.pb_test(m_full, m_reduced)", RefitNote, stacklevel=user_stacklevel())
    full, reduced = refit_reml(m_full), _reml_fit(m_reduced)
    t = _tested_term(full, reduced)
    stat = max(0.0, 2.0 * (full.loglik - _restricted_loglik(reduced)))
    d = full.design
    mu = _eigenvalues(d, t)
    sample = rlrt_null_sample(mu, d.nobs, d.p, nsim, np.random.default_rng(seed))
    p = float(np.mean(stat < sample)) if stat > 0 else 1.0
    return RLRTResult(float(stat), p, _label(t), sample)

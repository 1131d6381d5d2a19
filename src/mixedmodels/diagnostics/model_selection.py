r"""Comparing models that need not be nested: information-criterion tables and Vuong's test.

**AIC table** (:func:`aic_table`, bbmle's ``AICctab``): per model ``logLik``, the number of
parameters ``k``, ``AIC = -2 logLik + 2k``, ``AICc = AIC + 2k(k + 1)/(n - k - 1)``,
``BIC = -2 logLik + k log n``; differences to the best model and Akaike weights
``w_m = exp(-\Delta_m / 2) / \sum_j exp(-\Delta_j / 2)``.

**Vuong's test** (:func:`vuong`; Vuong 1989, pscl's ``vuong`` for GLMs). With independent
units ``g`` contributing ``\ell_{1g}``, ``\ell_{2g}`` to the two log-likelihoods and
``m_g = \ell_{1g} - \ell_{2g}``, ``z = \sqrt{N}\, \bar m / s_m`` is standard normal when the
models are equally close to the truth; ``z > 0`` favours model 1. Corrected versions
subtract ``(k_1 - k_2)`` (AIC) or ``(k_1 - k_2) \log(N)/2`` (BIC) from ``\sum m_g``.

*What is a unit of a GLMM?* Observations in the same group share a random effect, so their
marginal log-likelihood contributions are not independent and do not even exist
separately. The groups are independent: when every random-effects term of both models has
the same grouping factor, the marginal (Laplace) log-likelihood is a sum over its levels,

.. math:: \ell_g = \sum_{i \in g} l_i(\hat\eta_i) - \tfrac12 \|\hat u_g\|^2
          - \tfrac12 \log\det H_g,

(for an LMM the exact Gaussian log-density of the group's responses; for glmer the same
terms with lme4's Laplace weights in ``H_g`` and the dispersion ``phi`` scaling the
deviance and ``u``), and the test uses
these ``N`` = number of groups contributions. Per-observation log-densities at the
conditional modes -- the naive choice -- are not used: they are conditional on estimates
fitted to the same data, and ignore the random effects' penalty. Models without random
effects use observations as units (pscl's test). Crossed or nested grouping factors give
no independent units and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._messages import user_stacklevel
from .fitted_distribution import fitted_distribution

__all__ = ["VuongTest", "aic_table", "loglik_contributions", "vuong"]


def _name(m, i: int) -> str:
    spec = getattr(getattr(m, "design", None), "spec", None)
    return f"model {i + 1}" if spec is None else spec.formula


def aic_table(*models, names=None, criterion: str = "AICc") -> pd.DataFrame:
    """Information criteria of several fits, sorted, with Akaike weights (module
    docstring).

    Parameters
    ----------
    *models : fitted models
        Fitted to the same observations (maximum likelihood for models that differ in
        their fixed effects).
    names : sequence of str, optional
        Row labels (default: the formulas; ``model i`` when two formulas are the same).
    criterion : {"AICc", "AIC", "BIC"}
        The criterion of the differences, the weights and the order.

    Returns
    -------
    pandas.DataFrame
        ``logLik``, ``df``, ``AIC``, ``AICc``, ``BIC``, ``d<criterion>`` and ``weight`` per
        model, best first.
    """
    if not models:
        raise ValueError("aic_table needs at least one fitted model")
    if criterion not in ("AICc", "AIC", "BIC"):
        raise ValueError(f"criterion must be 'AICc', 'AIC' or 'BIC', got {criterion!r}")
    for i, m in enumerate(models):
        if not all(hasattr(m, a) for a in ("loglik", "nobs", "df")):
            raise TypeError(f"aic_table takes fitted models (with loglik, nobs and df); "
                            f"argument {i + 1} is a {type(m).__name__}")
    nobs = {int(m.nobs) for m in models}
    if len(nobs) > 1:
        raise ValueError(f"the models were fitted to different numbers of observations "
                         f"({sorted(nobs)}): information criteria are not comparable")
    n = nobs.pop()
    if names is None:
        names = [_name(m, i) for i, m in enumerate(models)]
        if len(set(names)) != len(names):           # the same formula, other families
            names = [f"model {i + 1}" for i in range(len(models))]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError("names must give one distinct label per model")
    if len({bool(getattr(m, "reml", False)) for m in models}) > 1:
        import warnings

        from .._errors import MixedModelsWarning

        warnings.warn("comparing REML and ML fits: their likelihoods are not comparable; "
                      "refit with REML=False", MixedModelsWarning, stacklevel=user_stacklevel())
    ll = np.array([float(m.loglik) for m in models])
    k = np.array([int(m.df) for m in models], dtype=float)
    aic = -2.0 * ll + 2.0 * k
    with np.errstate(divide="ignore"):
        aicc = np.where(n - k - 1 > 0, aic + 2.0 * k * (k + 1) / (n - k - 1), np.inf)
    bic = -2.0 * ll + k * np.log(n)
    out = pd.DataFrame({"logLik": ll, "df": k.astype(int), "AIC": aic, "AICc": aicc,
                        "BIC": bic}, index=pd.Index(list(names), name="model"))
    crit = out[criterion].to_numpy()
    delta = crit - crit.min()
    w = np.exp(-0.5 * delta)
    out[f"d{criterion}"] = delta
    out["weight"] = w / w.sum()
    return out.sort_values(criterion, kind="stable")


def _single_grouping(m):
    """The one grouping factor's codes of every random-effects term, or None."""
    from ..results.glmmtmb import GlmmTMBResult

    if isinstance(m, GlmmTMBResult):
        terms = [t for lp in m.design.components.values() for t in lp.terms]
    else:
        terms = list(m.design.terms)
    if not terms:
        return None, None
    first = terms[0].grouping
    for t in terms[1:]:
        if not np.array_equal(t.grouping.codes, first.codes):
            raise NotImplementedError(
                "Vuong's test needs independent units: with crossed or nested grouping "
                f"factors ({', '.join(sorted({t.group for t in terms}))}) the likelihood "
                "does not split into independent contributions")
    return first, terms[0].group


def _glmmtmb_contributions(m) -> tuple[np.ndarray, np.ndarray | None]:
    obj = m.objective_function
    sol, _, _ = obj.solve(m.x, order=2, full=True)
    l_i = np.asarray(sol.loglik_terms, dtype=float)
    grouping, _ = _single_grouping(m)
    if grouping is None:
        return l_i, None
    H = obj.hessian
    codes = grouping.codes
    L = H.levels
    per_level = np.bincount(codes, l_i, minlength=L)
    u2 = np.sum(sol.u[H.index] ** 2, axis=1)
    logdet = np.linalg.slogdet(H.H)[1] if H.P > 1 else np.log(H.H[:, 0, 0])
    return per_level - 0.5 * u2 - 0.5 * logdet, codes


def _lmm_contributions(m) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact Gaussian log-density of each group's responses (one grouping factor)."""
    d = m.design
    if getattr(m, "reml", False):
        raise ValueError("Vuong's test needs maximum-likelihood fits: refit with REML=False")
    grouping, _ = _single_grouping(m)
    w = np.ones(d.nobs) if d.weights is None else np.asarray(d.weights, dtype=float)
    r = d.y - d.X @ m.beta - d.offset
    s2 = m.sigma ** 2
    if grouping is None:
        return stats.norm.logpdf(r, scale=np.sqrt(s2 / w)), None
    codes, L = grouping.codes, grouping.nlevels
    M, v = _group_blocks(d, m.theta, codes, L, w, rhs=w * r)
    rr = np.bincount(codes, w * r * r, minlength=L)
    ni = np.bincount(codes, minlength=L)
    logw = np.bincount(codes, np.log(w), minlength=L)
    quad = rr - np.einsum("lp,lp->l", v, np.linalg.solve(M, v[:, :, None])[:, :, 0])
    logdet = np.linalg.slogdet(M)[1] - logw + ni * np.log(s2)
    return -0.5 * (ni * np.log(2 * np.pi) + logdet + quad / s2), codes


#: Relative agreement required between the summed contributions and the fit's
#: log-likelihood (a safety net: a mismatch means the decomposition does not apply).
CONTRIBUTION_RTOL = 1e-6


def _group_blocks(design, theta, codes, L, ZL_weights, rhs=None):
    """Per level ``M_g = I + sum_{i in g} w_i (Z Lambda)_i' (Z Lambda)_i`` and, with
    ``rhs``, ``v_g = sum_{i in g} rhs_i (Z Lambda)_i``."""
    ZL = np.hstack([t.Z @ t.structure.lambda_(theta[sl])
                    for t, sl in zip(design.terms, design.theta_slices(), strict=True)])
    P = ZL.shape[1]
    M = np.zeros((L, P, P))
    np.add.at(M, codes, ZL_weights[:, None, None] * ZL[:, :, None] * ZL[:, None, :])
    M[:, np.arange(P), np.arange(P)] += 1.0
    if rhs is None:
        return M, None
    v = np.zeros((L, P))
    np.add.at(v, codes, rhs[:, None] * ZL)
    return M, v


def _glmer_contributions(m) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Laplace log-likelihood of each group of a glmer fit (one grouping factor):
    ``-(sum_{i in g} (d_i / phi + s_i) + |u_g|^2 / phi + log det M_g) / 2`` with ``M_g``
    the group's block of ``Lambda' Z' W Z Lambda + I`` at the modes (W: the Laplace
    weights lme4 uses), which sum to lme4's Laplace deviance."""
    if int(getattr(m, "nAGQ", 1)) > 1:
        raise NotImplementedError(
            "log-likelihood contributions of glmer fits use the Laplace approximation; "
            "refit with nAGQ=1 for Vuong's test")
    obj = m.objective_function
    sol = m.solution
    fam, phi = sol.family, float(sol.phi)
    y, prior = obj.design.y, obj.pirls.prior
    dev_i = fam.dev_resids(y, sol.mu, prior) / phi + fam.saturated(y, prior, phi)
    grouping, _ = _single_grouping(m)
    if grouping is None:
        return -0.5 * dev_i, None
    codes, L = grouping.codes, grouping.nlevels
    kind = fam.laplace_hessian if obj.hessian is None else obj.hessian
    w = fam.laplace_weights(y, sol.eta, sol.mu, prior, kind)
    M, _ = _group_blocks(m.design, sol.theta, codes, L, w)
    # u per level: each term's modes are stored level by level (p values per level)
    u_sq = np.zeros(L)
    offset = 0
    for t in m.design.terms:
        block = np.asarray(sol.u[offset:offset + t.q]).reshape(L, t.p)
        u_sq += np.sum(block * block, axis=1)
        offset += t.q
    out = -0.5 * (np.bincount(codes, dev_i, minlength=L) + u_sq / phi
                  + np.linalg.slogdet(M)[1])
    return out, codes


def loglik_contributions(m) -> pd.Series:
    """Independent log-likelihood contributions of a fit (module docstring): one per
    observation without random effects, one per level of the grouping factor otherwise;
    they sum to the fit's log-likelihood.

    Parameters
    ----------
    m : LinearMixedModelResult, GeneralizedLinearMixedModelResult or GlmmTMBResult
        Maximum-likelihood fits (glmer: Laplace, ``nAGQ=1``).

    Returns
    -------
    pandas.Series
        Indexed by observation or by level (``name``: the unit).
    """
    from ..results.glmmtmb import GlmmTMBResult

    if getattr(m, "reml", False):
        raise ValueError("Vuong's test needs maximum-likelihood fits: refit with REML=False")
    if isinstance(m, GlmmTMBResult):
        values, codes = _glmmtmb_contributions(m)
    elif getattr(m, "family", None) is None and hasattr(m, "sigma") and hasattr(m, "design"):
        values, codes = _lmm_contributions(m)
    elif hasattr(m, "solution") and hasattr(m, "objective_function"):
        values, codes = _glmer_contributions(m)
    else:
        raise TypeError(
            "log-likelihood contributions (Vuong's test) are available for fitted lmer (ML), "
            f"glmer and glmmtmb models, got {type(m).__name__}")
    total = float(np.sum(values))
    if not np.isclose(total, float(m.loglik), rtol=CONTRIBUTION_RTOL, atol=0.0):
        raise NotImplementedError(
            f"the log-likelihood of this {type(m).__name__} fit does not split into "
            f"independent contributions (they sum to {total:.6g}, the fit's is "
            f"{float(m.loglik):.6g})")
    if codes is None:
        return pd.Series(values, index=m.design.frame.index, name="observation")
    grouping, group = _single_grouping(m)
    return pd.Series(values, index=pd.Index(grouping.levels, name=group), name=group)


@dataclass(frozen=True)
class VuongTest:
    """Vuong's non-nested test (:func:`vuong`).

    Attributes
    ----------
    statistic : float
        The raw ``z`` (> 0 favours model 1).
    p_value : float
        One-sided, in the direction of ``statistic`` (pscl's).
    table : pandas.DataFrame
        ``z``, ``p_value`` and the favoured model for the raw, AIC- and BIC-corrected
        statistics.
    n_units : int
    unit : str
        ``"observation"`` or the grouping factor.
    """

    statistic: float
    p_value: float
    table: pd.DataFrame
    n_units: int
    unit: str

    def __str__(self) -> str:
        return (f"Vuong's non-nested test over {self.n_units} units ({self.unit}):\n"
                f"{self.table.to_string()}")


def vuong(m1, m2) -> VuongTest:
    """Vuong's test of two non-nested fits of the same response (module docstring).

    Parameters
    ----------
    m1, m2 : LinearMixedModelResult, GeneralizedLinearMixedModelResult or GlmmTMBResult
        Maximum-likelihood fits to the same rows, with the same grouping factor (or none).

    Returns
    -------
    VuongTest
    """
    c1, c2 = loglik_contributions(m1), loglik_contributions(m2)
    if c1.name != c2.name or len(c1) != len(c2) or m1.nobs != m2.nobs:
        raise ValueError(
            f"the models must have the same independent units: model 1 has {len(c1)} "
            f"({c1.name}), model 2 {len(c2)} ({c2.name}) -- fit both to the same data, with "
            "the same grouping factor or none")
    if not np.allclose(fitted_distribution(m1).observed, fitted_distribution(m2).observed,
                       rtol=0.0, atol=0.0, equal_nan=True):
        raise ValueError("the models were fitted to different responses (or transformations "
                         "of it): their log-likelihoods are not comparable")
    d = (c1.to_numpy() - c2.to_numpy())
    ok = np.isfinite(d)
    d = d[ok]
    n = d.size
    k1, k2 = int(m1.df), int(m2.df)
    rows = {}
    for label, adj in (("Raw", 0.0), ("AIC-corrected", (k1 - k2) / n),
                       ("BIC-corrected", (k1 - k2) * np.log(n) / (2 * n))):
        num = d - adj
        z = float(num.sum() / (num.std(ddof=1) * np.sqrt(n)))
        p = float(stats.norm.sf(z) if z > 0 else stats.norm.cdf(z))
        rows[label] = (z, p, "model 1" if z > 0 else "model 2")
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["z", "p_value", "favours"])
    return VuongTest(rows["Raw"][0], rows["Raw"][1], table, n, str(c1.name))

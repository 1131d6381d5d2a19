r"""t tests of coefficients and F tests of terms with a choice of denominator df.

``ddf`` selects the reference distribution:

* ``None``: no df (lme4's summary: estimate, standard error, t value only);
* ``"satterthwaite"``: Satterthwaite's df (lmerTest's default);
* ``"kenward-roger"``: Kenward-Roger's df *and* adjusted standard errors (REML fits);
* ``"containment"``: the inner-outer rule of ``nlme::lme`` (nested grouping factors).

For a contrast ``L`` the t statistic is ``L beta / sqrt(L V L')`` and the F statistic of a
q-row ``L`` is ``(L beta)' (L V L')^{-1} (L beta) / q``; the ANOVA table reports
``Mean Sq = F sigma^2`` and ``Sum Sq = q Mean Sq`` as lmerTest does (for Kenward-Roger the
F value is additionally multiplied by the KR scaling factor, as pbkrtest's ``Ftest``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import MixedModelsError

__all__ = ["DDF_METHODS", "anova_table", "coef_table", "normalize_ddf"]

DDF_METHODS = ("satterthwaite", "kenward-roger", "containment")
_ALIASES = {"satterthwaite": "satterthwaite", "kenward-roger": "kenward-roger",
            "kenward_roger": "kenward-roger", "kr": "kenward-roger", "containment": "containment",
            "inner-outer": "containment", "lme": "containment"}


def _is_glmm(m) -> bool:
    return getattr(m, "family", None) is not None


def normalize_ddf(ddf, m=None) -> str | None:
    """Canonical name of a df method; ``"auto"`` is Satterthwaite for LMMs and None (z
    tests) for GLMMs."""
    if isinstance(ddf, str) and ddf.lower() == "auto":
        return None if m is not None and _is_glmm(m) else "satterthwaite"
    if ddf is None:
        return None
    key = _ALIASES.get(str(ddf).lower().replace(" ", "-"))
    if key is None:
        raise ValueError(f"ddf must be None or one of {DDF_METHODS}, got {ddf!r}")
    return key


def _require_lmm(m, what: str, ddf: str | None = None) -> None:
    """LMMs only, except Kenward-Roger's method, which GLMMs fitted by glmer have on their
    working model (``inference/kenward_roger_glmm.py``)."""
    if not _is_glmm(m) or ddf == "kenward-roger":
        return
    raise MixedModelsError(
        f"{what} apply to linear mixed models; GLMM coefficients are tested with z "
        "statistics (ddf=None), Kenward-Roger F tests on the working model "
        "(ddf='kenward-roger'), Wald chi-square tests (anova_table(test='wald')) or by "
        "likelihood-ratio tests (drop1, mm.anova)")


def coef_table(m, ddf="auto") -> pd.DataFrame:
    """Estimate, Std. Error, (df,) t value, (Pr(>|t|)) for every fixed effect; for GLMMs
    with ``ddf=None``: z value and Pr(>|z|)."""
    ddf = normalize_ddf(ddf, m)
    est = m.fixef
    p = est.shape[0]
    se = m.se.to_numpy()
    if ddf is None:
        if _is_glmm(m):
            z = est / se
            return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": z,
                                 "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z))})
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se})
    _require_lmm(m, "denominator degrees of freedom", ddf)
    if ddf == "satterthwaite":
        st = m._satterthwaite
        df = np.array([st.contrast_df(row)[1] for row in np.eye(p)])
    elif ddf == "kenward-roger":
        st = m._kenward_roger
        res = [st.contrast_df(row) for row in np.eye(p)]
        se = np.sqrt([r[0] for r in res])
        df = np.array([r[1] for r in res])
    else:
        df = m._containment.columns
    t = est.to_numpy() / se
    out = pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                        "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(t), df)}, index=est.index)
    out.attrs["ddf"] = ddf      # the canonical method name, for summaries' titles
    return out


def _f_row(m, L: np.ndarray, ddf: str, term: str) -> tuple:
    """(Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)) for the hypothesis ``L beta = 0``."""
    s2 = m.sigma ** 2
    beta = m.beta
    if ddf == "satterthwaite":
        F, q, den = m._satterthwaite.f_test(L)
        scaled = F
    elif ddf == "kenward-roger":
        scaled, q, den, _ = m._kenward_roger.f_test(L)
        Lb = L @ beta
        F = float(Lb @ np.linalg.solve(L @ m._kenward_roger.PhiA @ L.T, Lb)) / q
    else:
        V = m.vcov.to_numpy()
        Lb = L @ beta
        q = int(np.linalg.matrix_rank(L))
        F = float(Lb @ np.linalg.solve(L @ V @ L.T, Lb)) / q
        scaled = F
        den = m._containment.terms[term]
    ms = F * s2
    return ms * q, ms, q, den, scaled, float(stats.f.sf(scaled, q, den))


def anova_table(m, type=3, ddf="auto") -> pd.DataFrame:
    """F tests of the fixed-effect terms (lmerTest's ``anova(m, type, ddf)``).

    Returns
    -------
    DataFrame
        Index: terms; columns ``Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)``.
    """
    from .contrasts import term_contrasts

    ddf = normalize_ddf(ddf, m)
    if ddf is None:
        raise ValueError("anova_table needs a df method: 'satterthwaite', 'kenward-roger' "
                         "or 'containment'")
    _require_lmm(m, "F tests with denominator degrees of freedom", ddf)
    rows = {}
    for term, L in term_contrasts(m.design, type).items():
        rows[term] = _f_row(m, np.atleast_2d(L), ddf, term) if L.size else (np.nan,) * 6
    return pd.DataFrame.from_dict(
        rows, orient="index",
        columns=["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"])

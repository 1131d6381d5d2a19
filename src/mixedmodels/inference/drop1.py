r"""Single-term deletions: lme4's ``drop1(m, test = "Chisq")``.

Each fixed-effect term that marginality allows to drop -- a term no other term contains
(R's ``drop.scope``: ``x`` cannot go while ``x:f`` stays) -- is removed and the model refitted
through the fit's recipe (``m.update(". ~ . - term")``, so the refit parses the formula
again: a factor's coding follows the new formula, as in R). Per row

.. math:: \text{npar} = df_{\text{full}} - df_{\text{reduced}}, \qquad
          \text{AIC} = -2\ell + k\,df, \qquad
          \text{LRT} = 2\,(\ell_{\text{full}} - \ell_{\text{reduced}}),

with ``Pr(Chi)`` the chi-square(npar) tail of the LRT. Likelihoods are maximum-likelihood
ones: REML fits are refitted by ML first (lme4's ``extractAIC`` calls ``refitML``; for
glmmTMB's REML fits this package does the same, where glmmTMB would compare REML criteria
of different fixed effects, which are not comparable).

For ``glmer_nb`` fits each reduced model estimates its own negative binomial shape, so the
statistic is a likelihood ratio of two maxima. lme4's ``drop1`` refits them with the full
model's shape held fixed (its ``update`` of a ``glmer.nb`` fit is a ``glmer`` with that
family), which gives a larger statistic.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import DataError, MixedModelsError
from .._messages import user_stacklevel
from ..formula.parse import _power_inside_calls
from ..formula.update import rhs_terms
from ..results.summary import DDF_TITLES
from .anova import RefitNote
from .fixed_tests import normalize_ddf
from .simulate import refit_ml
from .terms import FixedTerm, fixed_terms

__all__ = ["DROP1_COLUMNS", "drop1", "droppable_terms"]

#: Columns of the table, lme4's names (``Pr(Chi)`` only with ``test="Chisq"``).
DROP1_COLUMNS = ("npar", "AIC", "LRT", "Pr(Chi)")
_TESTS = {"none": "none", "chisq": "Chisq", "lrt": "Chisq", "chi2": "Chisq", "f": "F"}


def cond_design(m):
    """The design whose fixed effects are the model's terms (the conditional component of a
    multi-component fit)."""
    return m.component("cond").design if _multi_component(m) else m.design


def droppable_terms(terms: list[FixedTerm]) -> list[FixedTerm]:
    """Terms that no other term contains (R's ``drop.scope``): each can be dropped alone
    without leaving an interaction without its margins."""
    return [t for t in terms
            if not any(u is not t and t.variables <= u.variables for u in terms)]


def _ml_changes(m) -> dict:
    """Front-door arguments that make a refit a maximum-likelihood one."""
    return {"REML": False} if getattr(m, "reml", False) else {}


def _multi_component(m) -> bool:
    return callable(getattr(m, "component", None))


def _ml_base(m):
    if not getattr(m, "reml", False):
        return m
    # lme4's refitML (the same design, from the REML theta); glmmTMB's class refits by
    # its front door (its design fitter takes no theta start)
    return m.update(REML=False) if _multi_component(m) else refit_ml(m)


#: A term factor written as it is in a formula: a name (``x``, ``my.var``) or a call.
_FORMULA_ATOM = re.compile(r"^([A-Za-z_.][A-Za-z0-9_.]*|[A-Za-z_.][A-Za-z0-9_.]*\(.*\))$")


def _formula_text(label: str) -> str:
    """A term label as formula text for ``update``: a factor that is neither a name nor a
    call (a column such as ``x 1``) goes in backticks, as the formula wrote it."""
    parts = label.split(":") if "(" not in label else [label]
    return ":".join(p if _FORMULA_ATOM.match(p) else f"`{p}`" for p in parts)


def _term_key(label: str) -> str:
    """A term compared whatever its spacing, backticks, ``^`` or ``**`` inside calls and
    the order of an interaction's factors."""
    text = _power_inside_calls(label.replace(" ", "").replace("`", ""))
    return ":".join(sorted(text.split(":")))


def _scope(m, terms: list[FixedTerm], scope) -> list[str]:
    allowed = [t.label for t in droppable_terms(terms)]
    if scope is None:
        return allowed
    if not isinstance(scope, str) and not (isinstance(scope, list | tuple | pd.Index)
                                           and all(isinstance(x, str) for x in scope)):
        raise TypeError(f"drop1 scope must be a term label, a list of labels or a formula "
                        f"such as '~ x + f', got {scope!r}")
    if isinstance(scope, str):
        # a one-sided formula, as R's scope ("~ a + b:c"), or a single term label
        scope = rhs_terms(scope) if "~" in scope or "+" in scope else [scope]
    else:
        scope = list(scope)
    if not scope:
        raise MixedModelsError("drop1 scope names no term: give term labels or a formula "
                               "such as '~ x + f'")
    labels = {_term_key(t.label): t.label for t in terms}
    out = []
    for s in scope:
        label = labels.get(_term_key(s))
        if label is None:
            raise MixedModelsError(
                f"drop1 scope names {s!r}, which is not a fixed-effect term of the model; "
                f"its terms are {', '.join(t.label for t in terms) or 'none'}")
        out.append(label)
    return out


def _f_tests(m, labels: list[str], ddf) -> pd.DataFrame:
    """lmerTest's ``drop1``: the F test of each droppable term, no refits.

    For a term that no other term contains, the type II hypothesis (the term after every
    term not containing it) is the hypothesis "the term's coefficients are zero given all
    other terms", so the rows are those of the type II table.
    """
    if _multi_component(m):
        raise MixedModelsError(
            "drop1(test='F') is for lmer and glmer fits (lmerTest's F tests; glmer: "
            "Kenward-Roger on the working model); glmmtmb fits have likelihood-ratio "
            "tests, drop1(test='Chisq'), and Wald tests, anova_table()")
    glmm = getattr(m, "family", None) is not None
    method = normalize_ddf(("kenward-roger" if glmm else "satterthwaite")
                           if ddf is None else ddf, m)
    if method is None:
        raise ValueError("drop1(test='F') needs a df method: ddf='satterthwaite', "
                         "'kenward-roger' or 'containment'")
    out = m.anova_table(type=2, ddf=method, test="F").loc[labels].copy()
    out.index.name = "term"
    out.attrs["heading"] = (f"Single term deletions using {DDF_TITLES[method]}:",
                            f"Model: {m.design.spec.formula}")
    return out


def drop1(m, scope=None, test: str = "none", k: float = 2.0, ddf=None) -> pd.DataFrame:
    """Refit without each droppable fixed-effect term (lme4's ``drop1``).

    Parameters
    ----------
    m : fitted model
        An ``lmer``, ``glmer``, ``glmer_nb`` or ``glmmtmb`` fit made by a front door (it
        carries the recipe the refits use).
    scope : str or list of str, optional
        Terms to drop, one at a time: labels, or a one-sided formula as R's ``scope``
        (``"~ x + f:g"``; ``*`` expands). Default: every term not contained in another.
    test : {"none", "Chisq", "F"}
        ``"Chisq"`` adds the likelihood-ratio statistic and its chi-square p-value.
        ``"F"`` is lmerTest's ``drop1`` instead: no refits, an F test of each term (the
        term's rows of the type II table, :meth:`anova_table`) with ``ddf``'s
        denominator df.
    k : float
        Penalty per parameter in the AIC column (2: Akaike's; ``log(n)`` gives BIC).
    ddf : {None, "satterthwaite", "kenward-roger", "containment"}
        Denominator df of ``test="F"`` (None: Satterthwaite's for linear mixed models,
        as lmerTest; Kenward-Roger's on the working model for GLMMs).

    Returns
    -------
    pandas.DataFrame
        Index ``<none>`` and the dropped terms; columns ``npar`` (parameters removed),
        ``AIC`` and, with ``test="Chisq"``, ``LRT`` and ``Pr(Chi)``. With ``test="F"``
        one row per term and lmerTest's columns ``Sum Sq``, ``Mean Sq``, ``NumDF``,
        ``DenDF``, ``F value``, ``Pr(>F)``.

    Raises
    ------
    DataError
        A refit uses a different number of rows (the dropped term's variables had missing
        values): drop those rows from the data first, as lme4 asks.
    """
    key = _TESTS.get(str(test).lower())
    if key is None:
        raise ValueError(f"test must be 'none', 'Chisq' or 'F', got {test!r}")
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating) \
            or not np.isfinite(k):
        raise ValueError(f"k (the AIC penalty per parameter) must be a finite number, got "
                         f"{k!r}")
    if ddf is not None and key != "F":
        raise ValueError(f"ddf={ddf!r} applies to test='F' only (the likelihood-ratio "
                         "tests of drop1 have no denominator df)")
    terms = fixed_terms(cond_design(m))
    labels = _scope(m, terms, scope)
    if key == "F":
        return _f_tests(m, labels, ddf)
    changes = _ml_changes(m)
    if changes:
        warnings.warn("refitting model(s) with ML (instead of REML)", RefitNote,
                      stacklevel=user_stacklevel())
    base = _ml_base(m)
    fits = [("<none>", base)]
    for label in labels:
        fit = m.update(f". ~ . - {_formula_text(label)}", **changes)
        if fit.nobs != base.nobs:
            raise DataError(
                f"dropping {label!r} changes the rows the model uses ({base.nobs} -> "
                f"{fit.nobs}): its variables have missing values. Fit the model to the "
                "complete cases of every variable first (as lme4: 'number of rows in use "
                "has changed: remove missing values?')")
        fits.append((label, fit))
    return _table(fits, key == "Chisq", k, m)


def _table(fits, chisq: bool, k: float, m) -> pd.DataFrame:
    df = np.array([f.df for _, f in fits], dtype=float)
    dev = np.array([-2.0 * f.loglik for _, f in fits])
    npar = df[0] - df
    npar[0] = np.nan
    out = pd.DataFrame({"npar": npar, "AIC": dev + k * df},
                       index=pd.Index([lab for lab, _ in fits], name="term"))
    if chisq:
        lrt = dev - dev[0]
        lrt[0] = np.nan
        p = np.full(len(fits), np.nan)
        ok = npar[1:] > 0
        p[1:][ok] = stats.chi2.sf(lrt[1:][ok], npar[1:][ok])
        out["LRT"] = lrt
        out["Pr(Chi)"] = p
    out.attrs["heading"] = ("Single term deletions", f"Model: {m.design.spec.formula}")
    return out

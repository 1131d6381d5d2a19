r"""Wald chi-square tests of fixed-effect terms: ``car::Anova(m, type = "II" | "III")``.

For a hypothesis matrix ``L`` (q rows) the statistic is

.. math:: \chi^2 = (L\hat\beta)' (L V L')^{-1} (L\hat\beta), \qquad \text{Df} = q,

referred to a chi-square(q) distribution, ``V`` the covariance of the fixed effects
(``vcov``; for ``glmmtmb`` fits that of the chosen component).

* **Type III** (car's ``Anova.III.mer``): ``L`` holds the rows of the identity for the
  term's coefficients -- each term tested with every other term in the model, the
  intercept included (a row ``(Intercept)``). What that hypothesis means depends on the
  contrasts: with treatment contrasts the main effect of ``f`` in ``f * g`` is the effect of
  ``f`` at ``g``'s reference level. Type III tests of terms marginal to an interaction are
  the usual ones only with sum-to-zero codings (``contrasts={"f": "sum"}``; Helmert and
  polynomial codings also sum to zero); a warning says so otherwise.
* **Type II** (car's ``Anova.II.mer``, marginality respected): a term is tested after every
  term that does not contain it and ignoring those that do. With ``R`` the rows of the
  identity for the coefficients of the terms that contain the term (its *relatives*: their
  variables include all of its own), and ``R+`` those rows together with the term's own,
  the hypothesis is the part of ``R+`` orthogonal to ``R`` in the inner product ``V``:
  ``L' = Z Q_2`` with ``Z = R+'`` and ``Q_2`` the columns of the complete QR factor of
  ``Z' V R'`` beyond its rank (car's ``ConjComp``, due to G. Monette). A term without
  relatives is tested on its own coefficients. The statistic does not depend on the basis
  chosen for that space.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import stats

from .._errors import MixedModelsError, MixedModelsWarning
from .._messages import user_stacklevel
from .terms import FixedTerm, fixed_terms, has_intercept

__all__ = ["WALD_COLUMNS", "ContrastsWarning", "normalize_test", "wald_anova", "wald_table"]

#: Columns of the table, car's names.
WALD_COLUMNS = ("Chisq", "Df", "Pr(>Chisq)")
#: Relative tolerance for the rank of ``Z' V R'`` (R's ``qr`` default).
QR_RANK_TOL = 1e-7
#: A coding's column sums below this (relative to its largest entry) count as zero.
SUM_TO_ZERO_TOL = 1e-10


_TESTS = {"auto": "auto", "f": "F", "wald": "wald", "chisq": "wald", "chi2": "wald",
          "wald-chisq": "wald"}


class ContrastsWarning(MixedModelsWarning):
    """Type III tests asked for with contrasts under which they test odd hypotheses."""


def normalize_test(test) -> str:
    """``"auto"``, ``"F"`` or ``"wald"`` (``"Chisq"`` is car's name for the Wald test)."""
    key = _TESTS.get(str(test).lower())
    if key is None:
        raise ValueError(f"test must be 'auto', 'F' or 'wald' ('Chisq'), got {test!r}")
    return key


def _parts(m, component: str):
    """Design, coefficients and their covariance of the tested component."""
    if callable(getattr(m, "component", None)):         # glmmTMB's class
        if component not in m.components:
            raise MixedModelsError(
                f"the model has no {component!r} component; its components are "
                f"{', '.join(m.components)}")
        view = m.component(component)
        return view.design, np.asarray(view.beta, float), np.asarray(view.vcov, float)
    if component != "cond":
        raise MixedModelsError(
            f"component={component!r}: only glmmtmb fits have components besides 'cond'")
    return m.design, np.asarray(m.beta, float), m.vcov.to_numpy()


def _complement(Z: np.ndarray, R: np.ndarray, V: np.ndarray) -> np.ndarray:
    """car's ``ConjComp(R', Z, V)``: columns spanning the part of ``span(Z)`` that is
    V-orthogonal to ``span(R')``."""
    M = Z.T @ V @ R.T
    Q, T, _ = scipy.linalg.qr(M, pivoting=True)
    d = np.abs(np.diag(T))
    rank = int(np.sum(d > QR_RANK_TOL * d[0])) if d.size and d[0] > 0 else 0
    return Z @ Q[:, rank:]


def _relatives(term: FixedTerm, terms: list[FixedTerm]) -> list[FixedTerm]:
    """car's ``relatives``: the other terms whose variables include all of ``term``'s."""
    return [t for t in terms if t is not term and term.variables <= t.variables]


def _type2_matrix(term: FixedTerm, terms: list[FixedTerm], V: np.ndarray) -> np.ndarray:
    p = V.shape[0]
    eye = np.eye(p)
    rel_cols = [c for t in _relatives(term, terms) for c in t.columns]
    both = eye[rel_cols + list(term.columns)]
    if not rel_cols:
        return both
    L = _complement(both.T, eye[rel_cols], V).T
    return L[np.any(L != 0.0, axis=1)]


def _chisq_row(L: np.ndarray, beta: np.ndarray, V: np.ndarray) -> tuple:
    if L.shape[0] == 0:
        return (np.nan, 0, np.nan)
    Lb = L @ beta
    chisq = float(Lb @ np.linalg.solve(L @ V @ L.T, Lb))
    q = L.shape[0]
    return (chisq, q, float(stats.chi2.sf(chisq, q)))


def _check_nontrivial(design, terms, component: str) -> None:
    if not terms:
        raise MixedModelsError(
            f"the {component!r} component has no fixed-effect terms besides the intercept: "
            "there is nothing to test (glmmTMB: 'trivial fixed effect')")


def _not_sum_to_zero(design, terms: list[FixedTerm]) -> list[str]:
    """Categorical variables of lower-order terms whose coding does not sum to zero."""
    spec = design.fixed.model_spec
    if spec is None:
        return []
    contained = {v for t in terms if any(t.variables < u.variables for u in terms)
                 for v in t.variables - t.numeric}
    out = []
    for factor, state in spec.factor_contrasts.items():
        name = str(factor)
        if name not in contained:
            continue
        coding = np.asarray(state.contrasts.get_coding_matrix(state.levels), dtype=float)
        scale = max(float(np.max(np.abs(coding))), 1.0) if coding.size else 1.0
        if coding.size and np.max(np.abs(coding.sum(axis=0))) > SUM_TO_ZERO_TOL * scale:
            out.append(name)
    return sorted(out)


def wald_anova(m, type=2, component: str = "cond") -> pd.DataFrame:
    """Wald chi-square tests of each fixed-effect term (``car::Anova``; module docstring).

    Parameters
    ----------
    m : fitted model
        ``lmer``, ``glmer`` or ``glmmtmb`` fit.
    type : {2, 3, "II", "III"}
        Type II (marginality respected, car's default) or type III hypotheses.
    component : {"cond", "zi", "disp"}
        The linear predictor tested (``glmmtmb`` fits; glmmTMB's ``Anova`` argument).

    Returns
    -------
    pandas.DataFrame
        Index: the terms (type III: ``(Intercept)`` first when there is one); columns
        ``Chisq``, ``Df``, ``Pr(>Chisq)``.
    """
    design, beta, V = _parts(m, component)
    return wald_table(design, beta, V, type, component)


def wald_table(design, beta: np.ndarray, V: np.ndarray, type=2,
               component: str = "cond") -> pd.DataFrame:
    """The table of :func:`wald_anova` for the fixed effects ``beta`` (covariance ``V``) of
    ``design``'s terms.

    Parameters
    ----------
    design : Design
        Supplies the terms and the columns each owns.
    beta : ndarray (p,)
    V : ndarray (p, p)
    type : {2, 3, "II", "III"}
    component : str
        Named in messages.

    Returns
    -------
    pandas.DataFrame
    """
    key = {"2": 2, "II": 2, "3": 3, "III": 3}.get(str(type).upper())
    if key is None:
        raise ValueError(f"type must be 2 or 3 (or 'II', 'III'), got {type!r}")
    beta = np.asarray(beta, dtype=float)
    V = np.asarray(V, dtype=float)
    terms = fixed_terms(design)
    _check_nontrivial(design, terms, component)
    eye = np.eye(beta.size)
    rows: dict[str, tuple] = {}
    if key == 3:
        _warn_contrasts(design, terms)
        if has_intercept(design):
            j = list(design.fixed.names).index("Intercept")
            rows["(Intercept)"] = _chisq_row(eye[[j]], beta, V)
        for t in terms:
            rows[t.label] = _chisq_row(eye[list(t.columns)], beta, V)
    else:
        for t in terms:
            rows[t.label] = _chisq_row(_type2_matrix(t, terms, V), beta, V)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(WALD_COLUMNS))
    out["Df"] = out["Df"].astype(int)
    out.index.name = "term"
    title = "II" if key == 2 else "III"
    response = str(design.spec.formula).split("~")[0].strip()
    out.attrs["heading"] = (f"Analysis of Deviance Table (Type {title} Wald chisquare tests)",
                            f"Response: {response}")
    return out


def _warn_contrasts(design, terms: list[FixedTerm]) -> None:
    odd = _not_sum_to_zero(design, terms)
    if not odd:
        return
    verb = "is" if len(odd) == 1 else "are"
    fix = ", ".join(f"{v!r}: 'sum'" for v in odd)
    warnings.warn(
        f"type III tests of terms marginal to an interaction depend on the contrasts: "
        f"{', '.join(odd)} {verb} coded with contrasts that do not sum to zero (treatment "
        "coding), so the main effects are tested at the reference level of the factors "
        f"they interact with. Refit with contrasts={{{fix}}} for the usual type III "
        "hypotheses, or use type=2", ContrastsWarning, stacklevel=user_stacklevel())

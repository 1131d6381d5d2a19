"""Checks that fitted models can be compared by a likelihood-ratio test.

Two models are comparable when they were fitted to the same observations (same number of
rows, same response) with the same family, and nested when the smaller one's fixed-effects
column space lies in the larger one's and, for every grouping factor of the smaller one, its
random-effects columns lie in the span of the larger one's columns for a grouping factor that
splits the data the same way. That is a necessary condition for nesting (covariance
structures are not compared), and it catches the usual mistakes: a covariate swapped for
another, a grouping factor that is not in the larger model, models fitted to different data.
"""

from __future__ import annotations

import numpy as np

from .._errors import MixedModelsError

__all__ = ["NESTING_TOL", "NotNestedError", "check_comparable", "check_nested",
           "family_label", "fixed_effects_differ"]

#: Relative residual norm below which a column counts as lying in a column space.
NESTING_TOL = 1e-8


class NotNestedError(MixedModelsError):
    """The models are not nested, or were fitted to different data."""


#: Families that contain another as a limit, by glmmTMB's names: an LRT of the smaller
#: against the larger is a test of the extra parameter (on its boundary: a dispersion
#: going to infinity or a zero-inflation probability to zero).
FAMILY_NESTS = {
    "poisson": {"nbinom1", "nbinom2", "nbinom12", "genpois", "compois"},
    "nbinom1": {"nbinom12"},
    "nbinom2": {"nbinom12"},
    "binomial": {"betabinomial"},
}
#: Spellings of the same family in the lme4 and glmmTMB classes.
_SAME_FAMILY = {"negative_binomial": "nbinom2"}


def _family_parts(m) -> tuple[str, str]:
    """``(family name, link)`` in glmmTMB's spelling (a zero-inflated family has its
    base's name: a model is nested in its zero-inflated version)."""
    name, _, link = family_label(m).partition("(")
    return _SAME_FAMILY.get(name, name), link.rstrip(")")


def families_nest(a, b) -> bool:
    """Whether fits ``a`` and ``b`` have the same family, or one's is a limit of the
    other's (:data:`FAMILY_NESTS`; any family within its zero-inflated version)."""
    (na, la), (nb, lb) = _family_parts(a), _family_parts(b)
    if la != lb:
        return False
    if na == nb:
        return True
    return nb in FAMILY_NESTS.get(na, ()) or na in FAMILY_NESTS.get(nb, ())


def family_label(m) -> str:
    """``"gaussian(identity)"`` for LMMs and linear models; the family of a GLMM."""
    fam = getattr(m, "family", None)
    if fam is None:
        return "gaussian(identity)"
    name = getattr(fam, "name", str(fam))
    link = getattr(getattr(fam, "link", None), "name", getattr(fam, "link", None))
    return f"{name}({link})" if link else str(name)


def _in_span(A: np.ndarray, B: np.ndarray) -> bool:
    """True when every column of ``A`` lies in the column space of ``B``."""
    if A.shape[1] == 0:
        return True
    if B.shape[1] == 0:
        return bool(np.all(np.abs(A) == 0))
    coef, *_ = np.linalg.lstsq(B, A, rcond=None)
    resid = np.linalg.norm(A - B @ coef, axis=0)
    return bool(np.all(resid <= NESTING_TOL * np.maximum(np.linalg.norm(A, axis=0), 1.0)))


def fixed_effects_differ(small, large) -> bool:
    """True when the fixed-effects column spaces of the two models differ."""
    Xs, Xl = small.design.X, large.design.X
    return not (_in_span(Xs, Xl) and _in_span(Xl, Xs))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two code vectors split the observations into the same groups?"""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _group_grams(codes: np.ndarray, A: np.ndarray, B: np.ndarray, ngroups: int) -> np.ndarray:
    """Per-group cross-products ``sum_{i in g} a_i b_i'``: array (ngroups, a, b)."""
    prod = A[:, :, None] * B[:, None, :]
    flat = prod.reshape(prod.shape[0], -1)
    out = np.stack([np.bincount(codes, flat[:, j], minlength=ngroups)
                    for j in range(flat.shape[1])], axis=1)
    return out.reshape(ngroups, A.shape[1], B.shape[1])


def _blockwise_in_span(codes: np.ndarray, Zs: np.ndarray, Zl: np.ndarray) -> bool:
    """Within every group, do the columns of ``Zs`` lie in the span of ``Zl``'s?

    The random-effects columns of a term are ``Z`` times the group indicators, so their span
    is the direct sum over groups; the residual of the projection is computed from the
    per-group Gram matrices, all groups at once.
    """
    _, codes = np.unique(codes, return_inverse=True)
    ng = int(codes.max()) + 1
    Gll = _group_grams(codes, Zl, Zl, ng)
    Gls = _group_grams(codes, Zl, Zs, ng)
    Gss = np.diagonal(_group_grams(codes, Zs, Zs, ng), axis1=1, axis2=2)
    proj = np.einsum("gac,gab,gbc->gc", Gls, np.linalg.pinv(Gll, hermitian=True), Gls)
    resid = Gss - proj
    return bool(np.all(resid <= NESTING_TOL * np.maximum(Gss, 1.0)))


def check_comparable(models, labels) -> None:
    """Same number of observations, same response and same family, or a clear error."""
    ref, ref_label = models[0], labels[0]
    for m, lab in zip(models[1:], labels[1:], strict=True):
        if m.nobs != ref.nobs:
            raise NotNestedError(
                f"models were not all fitted to the same data: {ref_label} has "
                f"{ref.nobs} observations and {lab} has {m.nobs} (rows with missing values "
                "are dropped per model: fit all models to the same complete-case data)"
            )
        if not np.allclose(m.design.y, ref.design.y, rtol=1e-12, atol=0.0):
            raise NotNestedError(
                f"{ref_label} and {lab} have different responses; likelihood-ratio tests "
                "compare models of the same response on the same rows"
            )
        if not families_nest(m, ref):
            raise NotNestedError(
                f"{ref_label} is {family_label(ref)} and {lab} is {family_label(m)}: models "
                "of different families are not nested"
            )


def check_nested(small, large, small_label: str, large_label: str) -> None:
    """Raise :class:`NotNestedError` unless ``small`` can be nested in ``large``."""
    if not _in_span(small.design.X, large.design.X):
        raise NotNestedError(
            f"{small_label} is not nested in {large_label}: its fixed effects "
            f"({', '.join(small.design.fixed.names)}) are not in the span of "
            f"{large_label}'s ({', '.join(large.design.fixed.names)})"
        )
    large_terms = list(getattr(large.design, "terms", ()))
    for t in getattr(small.design, "terms", ()):
        codes = t.grouping.codes
        span = [u.Z for u in large_terms if _same_partition(codes, u.grouping.codes)]
        ok = bool(span) and _blockwise_in_span(codes, t.Z, np.hstack(span))
        group = t.group
        if not ok:
            raise NotNestedError(
                f"{small_label} is not nested in {large_label}: its random effects for "
                f"{group!r} are not part of {large_label}'s random effects"
            )

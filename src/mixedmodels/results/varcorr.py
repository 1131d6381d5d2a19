"""Variance components: standard deviations and correlations of the random effects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..display.tables import Report, ReportDisplay

__all__ = ["VarCorr", "VarCorrTerm", "formula_positions", "term_group_labels"]


@dataclass(frozen=True)
class VarCorrTerm:
    """Covariance of one random-effects term.

    Attributes
    ----------
    group : str
        lme4's label: the grouping factor, with ``.1``, ``.2`` appended to repeats
        (``Subject``, ``Subject.1`` for ``(Days || Subject)``).
    factor : str
        The grouping factor itself.
    names : tuple of str
        Random-effect names (``Intercept``, ``Days``).
    cov : ndarray (p, p)
        ``sigma^2 Lambda Lambda'``.
    structure : str
        Covariance structure keyword (``us``, ``ar1``, ``exp``, ...).
    parameters : tuple of (str, float)
        The structure's parameters other than standard deviations (``("phi", 0.64)``
        for ``ar1``, ``("range", 2.4)`` for ``exp``): what the table prints instead of
        a correlation matrix for structured terms.
    """

    group: str
    factor: str
    names: tuple[str, ...]
    cov: np.ndarray
    structure: str = "us"
    parameters: tuple[tuple[str, float], ...] = ()

    @property
    def structured(self) -> bool:
        """Printed by its parameters rather than its correlation matrix."""
        return self.structure not in ("us", "diag")

    def __repr__(self) -> str:
        sds = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.sd, strict=True))
        return f"<VarCorrTerm {self.group}: sd {sds}>"

    @property
    def sd(self) -> np.ndarray:
        """Standard deviations, the square roots of ``diag(cov)``."""
        return np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> np.ndarray:
        """Correlation matrix ``cov / (sd sd')`` (0 where a standard deviation is 0)."""
        sd = self.sd
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.cov / np.outer(sd, sd)
        out[~np.isfinite(out)] = 0.0
        np.fill_diagonal(out, 1.0)
        return out


def term_group_labels(factors: list[str], positions: list[int] | None = None) -> list[str]:
    """lme4's and glmmTMB's VarCorr labels: repeats of a grouping factor get ``.1``,
    ``.2``, ... in formula order.

    Parameters
    ----------
    factors : list of str
        Each term's grouping factor, in the terms' (internal) order.
    positions : list of int, optional
        Each term's position in the formula (default: the given order). The internal
        order can differ from the formula's among terms of one factor (a wide structured
        term goes first, :func:`~mixedmodels.design.random.term_order`), and the labels
        must not: glmmTMB names ``(1 | s) + ar1(0 + t | s)`` ``s`` and ``s.1``.
    """
    if positions is None:
        positions = list(range(len(factors)))
    out = [""] * len(factors)
    seen: dict[str, int] = {}
    for i in sorted(range(len(factors)), key=positions.__getitem__):
        f = factors[i]
        k = seen.get(f, 0)
        out[i] = f if k == 0 else f"{f}.{k}"
        seen[f] = k + 1
    return out


def formula_positions(terms, formula_terms) -> list[int]:
    """Position of each built term (``RandomEffectsTerm``, which holds its formula term)
    among the formula's random terms (``RandomTerm``, after lme4's expansions); a term
    not found keeps its own index."""
    where = {id(f): j for j, f in enumerate(formula_terms)}
    return [where.get(id(t.term), i) for i, t in enumerate(terms)]


@dataclass(frozen=True, repr=False)
class VarCorr(ReportDisplay):
    """Estimated variance components (lme4's ``VarCorr``).

    Attributes
    ----------
    terms : tuple of VarCorrTerm
    sigma : float or None
        Residual standard deviation (None for families without one).
    """

    terms: tuple[VarCorrTerm, ...]
    sigma: float | None

    def as_frame(self) -> pd.DataFrame:
        """Long table like R's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, vcov, sdcor``: a row per variance (``var2`` None,
            ``sdcor`` the standard deviation), then a row per covariance (``sdcor`` the
            correlation), per term; last the residual row when the family has one.
        """
        rows = []
        for t in self.terms:
            sd, corr = t.sd, t.corr
            for i, n in enumerate(t.names):
                rows.append((t.group, n, None, t.cov[i, i], sd[i]))
            for j in range(len(t.names)):
                for i in range(j + 1, len(t.names)):
                    rows.append((t.group, t.names[i], t.names[j], t.cov[i, j], corr[i, j]))
        if self.sigma is not None:
            rows.append(("Residual", None, None, self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def to_text(self, digits: int = 4, variance: bool = False) -> str:
        """lme4's printed table: Groups, Name, (Variance,) Std.Dev., Corr.

        Parameters
        ----------
        digits : int
            Significant digits, as lme4's ``print(VarCorr(m), digits=)``.
        variance : bool
            Add the Variance column (lme4's ``comp = c("Variance", "Std.Dev.")``).

        Returns
        -------
        str
        """
        from .format import format_varcorr

        return format_varcorr(self, digits=digits, variance=variance)

    def table(self, digits: int = 4, variance: bool = True):
        """The lme4 table as a :class:`~mixedmodels.display.Table` (text, HTML, Markdown,
        LaTeX).

        Parameters
        ----------
        digits : int
            Significant digits of the standard deviations and variances.
        variance : bool
            Include the Variance column.

        Returns
        -------
        Table
        """
        from .format import varcorr_table

        return varcorr_table(self, digits=digits, variance=variance)

    def report(self) -> Report:
        """The table with variances, for HTML, Markdown and LaTeX.

        Returns
        -------
        Report
        """
        return Report((self.table(),))

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

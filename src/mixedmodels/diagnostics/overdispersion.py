r"""The GLMM FAQ's test of overdispersion (Bolker's ``overdisp_fun``).

The sum of squared Pearson residuals of a model with no overdispersion is approximately
chi-square with the residual degrees of freedom (observations minus parameters). The test
reports that sum, its ratio to the degrees of freedom (about 1 when the model fits; clearly
above 1 signals overdispersion) and the upper-tail p-value. It is a rough guide: the
chi-square approximation is poor for small counts and binary data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["OverdispersionTest", "overdispersion_from_chisq", "overdispersion_test"]


@dataclass(frozen=True)
class OverdispersionTest:
    """Result of :func:`overdispersion_test`.

    Attributes
    ----------
    chisq : float
        Sum of squared Pearson residuals.
    ratio : float
        ``chisq / rdf``.
    rdf : int
        Residual degrees of freedom: observations minus estimated parameters.
    p : float
        ``P(chi2_rdf > chisq)``.
    """

    chisq: float
    ratio: float
    rdf: int
    p: float

    def __str__(self) -> str:
        return (f"Pearson chi-square {self.chisq:.4g} on {self.rdf} df, ratio "
                f"{self.ratio:.4g}, p = {self.p:.4g}")


def overdispersion_test(model) -> OverdispersionTest:
    """Pearson chi-square test of overdispersion for a fitted GLMM."""
    rp = model.residuals("pearson").to_numpy()
    return overdispersion_from_chisq(model, float(np.sum(rp * rp)))


def overdispersion_from_chisq(model, chisq: float) -> OverdispersionTest:
    """The test of :func:`overdispersion_test` from the Pearson chi-square (summed where
    the rows are, by a chunked or distributed backend)."""
    rdf = int(model.df_resid)
    if rdf <= 0:
        raise ValueError(f"no residual degrees of freedom ({model.nobs} observations, "
                         f"{model.df} parameters)")
    return OverdispersionTest(chisq, chisq / rdf, rdf, float(stats.chi2.sf(chisq, rdf)))

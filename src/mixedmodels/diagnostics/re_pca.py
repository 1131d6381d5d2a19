r"""Principal components of the random-effects covariance: lme4's ``rePCA``.

For each grouping factor, the covariance factors ``Lambda_k`` of its terms (relative to the
residual sd for an LMM, absolute for a GLMM without dispersion and for glmmTMB's class)
are put block-diagonally, ``T = diag(Lambda_k)``, and decomposed, ``T = U D V'``. The
relative covariance of the factor's random effects is ``T T' = U D^2 U'``: the singular
values ``d_j`` are the standard deviations (in units of sigma) of its principal
components, ``U`` the directions (``rotation``). The proportion of variance of component
``j`` is ``d_j^2 / sum d^2``.

A component with a (near-)zero standard deviation means the covariance matrix is singular
-- fewer dimensions of random variation than the model allows. That is the diagnosis of
Bates et al. (2015, "Parsimonious mixed models"): drop the terms with no variance, or
correlations, until every component carries variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg

from ..display.tables import Report, ReportDisplay, frame_table

__all__ = ["RePCA", "re_pca"]

@dataclass(frozen=True, repr=False)
class RePCA(ReportDisplay):
    """Principal components of the relative random-effects covariance per grouping factor.

    Attributes
    ----------
    components : dict of str -> DataFrame
        Per grouping factor, a row per component (``PC1``, ``PC2``, ...) with columns
        ``sd`` (standard deviation, relative to sigma for an LMM), ``proportion`` (of the
        variance) and ``cumulative`` (summary(prcomp)'s "Importance of components").
    rotation : dict of str -> DataFrame
        Per grouping factor, the directions: rows the random effects (``term.effect``),
        columns the components.
    """

    components: dict
    rotation: dict

    def __getitem__(self, group: str) -> pd.DataFrame:
        return self.components[group]

    def report(self) -> Report:
        """The printed layout (see ``ReportDisplay``)."""
        blocks: list = []
        for group, frame in self.components.items():
            shown = frame.T.rename(index={"sd": "Standard deviation",
                                          "proportion": "Proportion of Variance",
                                          "cumulative": "Cumulative Proportion"})
            blocks.append(f"Grouping factor {group}:")
            blocks.append(frame_table(shown, float_format="{:.5g}",
                                      title=f"Grouping factor {group}"))
        return Report(tuple(blocks))


def _importance(sdev: np.ndarray) -> pd.DataFrame:
    var = sdev ** 2
    total = float(np.sum(var))
    prop = var / total if total > 0 else np.full(var.shape, np.nan)
    return pd.DataFrame({"sd": sdev, "proportion": prop, "cumulative": np.cumsum(prop)},
                        index=[f"PC{j + 1}" for j in range(sdev.size)])


def re_pca(design, theta: np.ndarray) -> RePCA:
    """rePCA of the covariance factors ``Lambda(theta)`` of ``design``'s terms.

    Parameters
    ----------
    design : Design
    theta : ndarray
        Covariance parameters in the design's term order.

    Returns
    -------
    RePCA
    """
    factors: dict[str, list[np.ndarray]] = {}
    names: dict[str, list[str]] = {}
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        factors.setdefault(t.group, []).append(np.asarray(t.structure.lambda_(theta[sl])))
        names.setdefault(t.group, []).extend(str(n) for n in t.names)
    components, rotation = {}, {}
    for group, blocks in factors.items():
        T = scipy.linalg.block_diag(*blocks)
        U, d, _ = np.linalg.svd(T)
        pcs = [f"PC{j + 1}" for j in range(d.size)]
        components[group] = _importance(d)
        rotation[group] = pd.DataFrame(U, index=names[group], columns=pcs)
    return RePCA(components, rotation)

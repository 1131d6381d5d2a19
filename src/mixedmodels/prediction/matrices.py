"""The model matrices of new data: ``X`` (fixed effects) and sparse ``Z`` (random effects),
with the fit's columns, codings and stateful transforms (:func:`~mixedmodels.results.predict.
new_rows` does the work; rows with a missing predictor are NaN in ``X``, zero in ``Z``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..results.predict import new_rows
from .joint import new_z_matrix

__all__ = ["model_matrix", "random_matrix"]


def model_matrix(design, newdata=None) -> pd.DataFrame:
    """``X`` of ``newdata`` as a DataFrame (see ``m.model_matrix``)."""
    rows = new_rows(design, newdata, re_form="~0")
    X = np.full((rows.n, design.p), np.nan)
    X[rows.complete] = rows.X
    index = design.frame.index if newdata is None else pd.DataFrame(newdata).index
    return pd.DataFrame(X, index=index, columns=list(design.fixed.names))


def random_matrix(design, newdata=None, re_form=None,
                  allow_new_levels: bool = False) -> sp.csr_matrix:
    """Sparse ``Z`` of ``newdata`` (see ``m.random_matrix``)."""
    rows = new_rows(design, newdata, re_form, allow_new_levels)
    Zc = new_z_matrix(design, rows, int(rows.complete.sum()))
    if rows.complete.all():
        return Zc
    pick = sp.csr_matrix((np.ones(Zc.shape[0]), (np.flatnonzero(rows.complete),
                                                  np.arange(Zc.shape[0]))),
                         shape=(rows.n, Zc.shape[0]))
    return (pick @ Zc).tocsr()

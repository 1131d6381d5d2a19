"""``predict`` of lmer and glmer fits with standard errors and intervals.

Variances come from :mod:`.joint` (Wald) or from the parametric bootstrap
(:mod:`.bootstrap`); the frames from :mod:`.output`.
"""

from __future__ import annotations

import numpy as np

from ..results.predict import new_rows
from .output import PredictionParts, check_request, prediction_frame

__all__ = ["PREDICT_TYPES", "predict_lme4", "variance_lme4"]

#: ``type=`` values of lmer/glmer predictions.
PREDICT_TYPES = ("link", "response")


def variance_lme4(m, rows) -> np.ndarray:
    """Variances of ``rows``' linear predictors (:class:`~mixedmodels.results.predict.NewRows`;
    the complete rows): ``x V x'`` at the population level, else the joint covariance of
    :mod:`.joint`."""
    X = rows.X
    if not rows.terms or all(not mask.any() for _, mask, _, _ in rows.terms):
        V = m.vcov.to_numpy()
        return np.einsum("ij,jk,ik->i", X, V, X)
    from .joint import new_z_matrix

    J = m._joint_covariance
    ZL = new_z_matrix(m.design, rows, X.shape[0]) @ _lambda(m)
    return J.variance(ZL, X)


def _lambda(m):
    from ..results.matrices import lambda_matrix

    return lambda_matrix(m.design, m.theta)


def _parts(m, eta, var, type: str) -> PredictionParts:
    family = getattr(m, "family", None)
    gaussian = family is None or (family.name == "gaussian"
                                  and family.link.name == "identity")
    resid = m.sigma ** 2 if gaussian else None
    if family is None or type == "link":
        return PredictionParts(eta, var, residual_variance=resid, family_label=_label(m))
    link = family.link
    return PredictionParts(eta, var, transform=link.linkinv, derivative=link.mu_eta,
                           residual_variance=resid, family_label=_label(m))


def _label(m) -> str:
    family = getattr(m, "family", None)
    return "gaussian" if family is None else family.name


def predict_lme4(m, newdata=None, re_form=None, type: str = "link", *, se_fit=False,
                 interval=None, level=0.95, allow_new_levels=False, offset=None,
                 method="wald", nsim=500, seed=None, n_jobs=1, progress=None):
    """``m.predict`` for lmer / glmer fits (see their docstrings)."""
    if type not in PREDICT_TYPES:
        raise ValueError(f"type must be 'link' or 'response', got {type!r}")
    check_request(se_fit, interval, level, method)
    rows = new_rows(m.design, newdata, re_form, allow_new_levels, offset, m.theta)
    eta = rows.eta(m.beta, m.random_effects)
    index = m._index(newdata)
    if not se_fit and interval is None:
        return prediction_frame(_parts(m, eta, None, type), index, se_fit=False,
                                interval=None, level=level)
    if method == "boot":
        from .bootstrap import bootstrap_prediction

        gaussian = _parts(m, eta, None, type).residual_variance is not None
        return bootstrap_prediction(m, newdata, re_form, type, se_fit, interval, level,
                                    allow_new_levels, offset, nsim, seed, n_jobs, progress,
                                    gaussian_sd=(lambda f: f.sigma) if gaussian else None)
    var = np.full(rows.n, np.nan)
    if rows.complete.any():
        var[rows.complete] = variance_lme4(m, rows)
    return prediction_frame(_parts(m, eta, var, type), index, se_fit=se_fit,
                            interval=interval, level=level)

"""``gls``: generalized least squares with residual correlation and variance functions
(nlme's ``gls``)."""

from __future__ import annotations

import pandas as pd

from .._errors import DataError, FormulaError
from ..design import materialize
from ..formula import parse_formula
from ..results.recipe import FitRecipe
from ..rside.residual import ResidualSpec, residual_columns
from ..rside.results import GLSResult
from .common import (
    check_flag,
    check_optimizer,
    collect_warnings,
    finish_result,
    package_messages,
)
from .lmm import LMM_OPTIMIZERS
from .rside import fit_gls_design

__all__ = ["gls"]


def _method(method: str) -> bool:
    if not isinstance(method, str) or method.upper() not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML' (nlme's), not {method!r}")
    return method.upper() == "REML"


def gls(
    formula: str,
    data: pd.DataFrame,
    *,
    correlation=None,
    variance=None,
    method: str = "REML",
    sigma: float | None = None,
    weights=None,
    offset=None,
    optimizer: str = "auto",
    optimizer_settings: dict | None = None,
    start=None,
    check_conv: bool = True,
    contrasts: dict | None = None,
) -> GLSResult:
    """Fit a linear model with correlated and/or heteroscedastic residuals by
    generalized least squares (nlme's ``gls``).

    ``y = X beta + e``, ``e ~ N(0, sigma^2 V)``, ``V = D C D`` with ``C`` from
    ``correlation`` (block diagonal by its groups) and ``D`` from ``variance``; fitted
    exactly by whitening within groups, by REML (default, as nlme) or ML.

    Parameters
    ----------
    formula : str
        ``"response ~ predictors"`` (no random effects; use :func:`~mixedmodels.lmer`
        for those).
    data : pandas.DataFrame
    correlation : correlation structure, optional
        ``mm.cor_ar1(form="~ time | Subject")``, ``mm.cor_exp(form="~ x + y")`` ...
    variance : variance function or list of them, optional
        ``mm.var_ident(form="~ 1 | Sex")``, ``mm.var_power(form="~ age")`` ... (nlme's
        ``weights=`` argument).
    method : {"REML", "ML"}
    sigma : float, optional
        A known residual standard deviation (nlme's ``glsControl(sigma = )``): not
        estimated; the criterion is the (restricted) deviance at that value.
    weights : str or array-like, optional
        Prior weights: residual variance ``sigma^2 / w`` times the variance function.
    offset : str or array-like, optional
    optimizer, optimizer_settings, start, check_conv
        As for :func:`~mixedmodels.lmer`; ``start`` is the residual parameters on nlme's
        unconstrained scale. ``"auto"``: quasi-Newton with the criterion's exact
        gradient where it costs about a value (no correlation, AR(1), CAR(1), compound
        symmetry, ARMA; not with varConstPower) or from 4 residual
        parameters on, else BOBYQA (BOBYQA again where quasi-Newton does not settle);
        ``"gradient"``: always quasi-Newton (not for ``cor_lin``, whose correlation has
        kinks).
    contrasts : dict, optional
        As for :func:`~mixedmodels.lmer`.

    Returns
    -------
    GLSResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> df = mm.datasets.load("Orthodont")
    >>> m = mm.gls("distance ~ age", df, correlation=mm.cor_comp_symm(form="~ 1 | Subject"))
    >>> round(m.cor_params["rho"], 4)
    0.6857
    """
    REML = _method(method)
    check_optimizer(optimizer, LMM_OPTIMIZERS, "gls")
    check_conv = check_flag("check_conv", check_conv)
    residual = ResidualSpec.make(correlation, variance, sigma)
    options = {"correlation": correlation, "variance": variance, "method": method,
               "sigma": sigma,
               "weights": weights, "offset": offset, "optimizer": optimizer,
               "optimizer_settings": optimizer_settings, "start": start,
               "check_conv": check_conv, "contrasts": contrasts}
    with collect_warnings() as caught:
        spec = parse_formula(formula)
        if spec.random:
            raise FormulaError(f"gls formula {formula!r} has random-effects terms; fit them "
                               "with mm.lmer(..., correlation=..., variance=...)")
        design = materialize(spec, data, weights=weights, offset=offset, contrasts=contrasts,
                             require_random=False, extra_columns=residual_columns(residual))
        if design.p >= design.nobs:
            raise DataError(f"{design.p} coefficients for {design.nobs} observations: too "
                            "few observations")
        result = fit_gls_design(design, residual, REML, optimizer, optimizer_settings,
                                start, check_conv)
    design_options = {"spec": residual, "REML": REML, "optimizer": optimizer,
                      "optimizer_settings": optimizer_settings, "start": start,
                      "check_conv": check_conv}
    recipe = FitRecipe.make(gls, formula, data, options, _refit_design, design_options)
    return finish_result(result, package_messages(caught), recipe)


def _refit_design(design, *, spec, REML, optimizer, optimizer_settings, start, check_conv):
    """The design-level fitter of a :class:`GLSResult`'s recipe."""
    return fit_gls_design(design, spec, REML, optimizer, optimizer_settings, start,
                          check_conv)

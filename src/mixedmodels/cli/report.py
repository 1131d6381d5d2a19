"""``--json``: a fitted model as a JSON-serializable dict, from public result attributes only.

Self-contained on purpose: it reads ``fixef``, ``vcov``, ``varcorr``, ``objective``,
``loglik``, ``aic``, ``bic``, ``sigma``, ``messages``, ``nobs``, ``ngroups`` (and ``reml``,
``family``, ``nAGQ`` where the result has them), so it works for every front door without
the results knowing about the command line. Non-finite numbers become ``null`` (JSON has
no NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["SCHEMA_VERSION", "fit_report"]

#: Bumped when a key of the report changes meaning or disappears.
SCHEMA_VERSION = 1


def _number(x: Any) -> float | int | None:
    """A JSON number (int stays int), or None for NaN / infinity / missing."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def _fixed_effects(model) -> list[dict[str, Any]]:
    fixef = model.fixef
    se = np.sqrt(np.diag(model.vcov.to_numpy()))
    rows = []
    for (name, est), s in zip(fixef.items(), se, strict=True):
        rows.append({"term": str(name), "estimate": _number(est), "std_error": _number(s),
                     "statistic": _number(est / s) if s > 0 else None})
    return rows


def _label(x: Any) -> str | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def _variance_components(model) -> list[dict[str, Any]]:
    frame = model.varcorr.as_frame()
    rows = []
    for rec in frame.itertuples(index=False):
        rows.append({"group": str(rec.grp), "var1": _label(rec.var1), "var2": _label(rec.var2),
                     "vcov": _number(rec.vcov),
                     "sdcor": _number(rec.sdcor)})
    return rows


def _method(model) -> dict[str, Any]:
    density = getattr(model, "density", None)
    if density is not None:                      # glmmTMB's class
        out = {"method": "Laplace" + (" (REML)" if model.reml else ""),
               "family": model.family_name, "link": density.links["mu"].name,
               "objective_name": "REML criterion" if model.reml else "-2 log-likelihood"}
        out["fixed_effects_zi"] = _named_numbers(model.fixef_zi)
        out["fixed_effects_disp"] = _named_numbers(model.fixef_disp)
        out["family_params"] = {k: _number(v) for k, v in model.family_params.items()}
        return out
    if hasattr(model, "reml"):
        return {"method": "REML" if model.reml else "ML", "family": "gaussian",
                "link": "identity", "objective_name": "REML criterion" if model.reml
                else "deviance"}
    nagq = int(model.nAGQ)
    method = {0: "nAGQ=0 (PIRLS)", 1: "Laplace"}.get(nagq, f"adaptive Gauss-Hermite ({nagq})")
    out = {"method": method, "family": model.family.name, "link": model.family.link.name,
           "objective_name": "-2 log-likelihood", "nAGQ": nagq}
    shape = getattr(model.family, "theta", None)
    if shape is not None:
        out["nb_theta"] = _number(shape)
    return out


def _named_numbers(series) -> dict[str, Any]:
    return {str(k): _number(v) for k, v in series.items()}


def fit_report(model, *, formula: str, front_door: str, data: str) -> dict[str, Any]:
    """The fit as a dict of plain Python values (``json.dumps`` takes it as it is).

    Parameters
    ----------
    model : LinearMixedModelResult or GeneralizedLinearMixedModelResult
        A fitted model.
    formula : str
        The formula it was fitted with (results do not keep it).
    front_door : str
        The function that fitted it (``"lmer"``, ``"glmer"``, ...).
    data : str
        What ``--data`` named.

    Returns
    -------
    dict
        Keys ``schema_version, mixedmodels_version, model, formula, data, method, family,
        link, nobs, ngroups, fixed_effects`` (term, estimate, std_error, statistic),
        ``vcov`` (terms, matrix), ``variance_components`` (lme4's
        ``as.data.frame(VarCorr(m))`` rows), ``fit`` (objective, loglik, aic, bic, sigma,
        converged) and ``messages``.
    """
    from .. import __version__

    vcov = model.vcov
    method = _method(model)
    objective_name = method.pop("objective_name")
    return {
        "schema_version": SCHEMA_VERSION,
        "mixedmodels_version": __version__,
        "model": front_door,
        "formula": formula,
        "data": data,
        **method,
        "nobs": int(model.nobs),
        "ngroups": {str(k): int(v) for k, v in model.ngroups.items()},
        "fixed_effects": _fixed_effects(model),
        "vcov": {"terms": [str(c) for c in vcov.columns],
                 "matrix": [[_number(v) for v in row] for row in vcov.to_numpy()]},
        "variance_components": _variance_components(model),
        "fit": {"objective": _number(model.objective), "objective_name": objective_name,
                "loglik": _number(model.loglik), "aic": _number(model.aic),
                "bic": _number(model.bic),
                "sigma": None if model.sigma is None else _number(model.sigma),
                "converged": bool(model.converged)},
        "messages": [str(m) for m in model.messages],
    }

"""A fit as data: broom.mixed's ``tidy`` and ``glance``, and a JSON-ready ``to_dict``.

``tidy`` follows broom.mixed's ``tidy.merMod`` with its column names in snake case
(``std.error`` -> ``std_error``): one row per parameter, columns ``effect, component,
group, [level,] term, estimate, std_error, statistic, [df,] p_value[, conf_low,
conf_high]``.

* ``effect="fixed"``: the fixed effects with their tests (``df`` and ``p_value`` from the
  chosen denominator df for an LMM, as broom.mixed shows lmerTest fits; z tests for GLMMs);
  ``group`` is empty (None).
* ``effect="ran_pars"``: per random-effects term (``group`` is lme4's VarCorr label,
  ``Subject``, ``Subject.1``), the standard deviations ``sd__(Intercept)`` and correlations
  ``cor__(Intercept).Days`` in the lower triangle's column order (``scales="vcov"``:
  ``var__`` and ``cov__``), then ``sd__Observation`` in group ``Residual`` when the family
  has a residual sd.
* ``effect="ran_vals"``: the conditional modes per grouping factor, level and effect, with
  their conditional standard deviations (``std_error``).
* ``effect="ran_coefs"``: per group and level, the fixed effect plus the random effect
  (lme4's ``coef``).

``component`` is ``"cond"`` throughout (glmmTMB's name for the conditional model; other
components will add rows). Terms use R's names by default (``(Intercept)``, ``period2``),
``names="python"`` the package's own (those of :attr:`fixef`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["EFFECTS", "TIDY_COLUMNS", "glance", "tidy", "to_dict"]

EFFECTS = ("fixed", "ran_pars", "ran_vals", "ran_coefs")
#: broom.mixed's column order (present columns only), snake case.
TIDY_COLUMNS = ("effect", "component", "group", "level", "term", "estimate", "std_error",
                "statistic", "df", "p_value", "conf_low", "conf_high")
CONF_METHODS = ("wald", "profile", "boot")
COMPONENT = "cond"
#: broom.mixed's separator between ``sd``/``cor`` and the effect names.
SEP = "__"


def _r_effect(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def fixed_names(m, names: str) -> list[str]:
    """Fixed-effect names: R's (the design's ``r_names`` when it has them) or Python's."""
    py = list(m.design.fixed.names)
    if names == "python":
        return py
    r = getattr(m.design.fixed, "r_names", None)
    return list(r) if r is not None else [_r_effect(n) for n in py]


def _effect_names(term, names: str) -> list[str]:
    if names == "python":
        return list(term.names)
    r = getattr(term, "r_names", None)
    return list(r) if r is not None else [_r_effect(n) for n in term.names]


def _check_names(names: str) -> str:
    if names not in ("r", "python"):
        raise ValueError(f"names must be 'r' or 'python', got {names!r}")
    return names


def _effects(effects) -> list[str]:
    wanted = [effects] if isinstance(effects, str) else list(effects)
    unknown = [e for e in wanted if e not in EFFECTS]
    if unknown or not wanted:
        raise ValueError(f"unknown effect(s) {unknown}; choose among {EFFECTS}")
    return wanted


def _is_glmm(m) -> bool:
    return getattr(m, "family", None) is not None


def _fixed_rows(m, names, ddf, conf, level, method) -> pd.DataFrame:
    table = m.coef_table(ddf=ddf)
    stat = next(c for c in table.columns if c.endswith(" value"))
    pcol = next((c for c in table.columns if c.startswith("Pr(")), None)
    out = pd.DataFrame({
        "effect": "fixed", "component": COMPONENT, "group": None,
        "term": fixed_names(m, names),
        "estimate": table["Estimate"].to_numpy(float),
        "std_error": table["Std. Error"].to_numpy(float),
        "statistic": table[stat].to_numpy(float),
    })
    if "df" in table.columns:
        out["df"] = table["df"].to_numpy(float)
    out["p_value"] = table[pcol].to_numpy(float) if pcol else np.nan
    if conf is not None:
        lo, hi = conf
        out["conf_low"], out["conf_high"] = lo, hi
    return out


def _ran_pars_rows(m, scales: str, names: str) -> pd.DataFrame:
    prefix = {"sdcor": ("sd", "cor"), "vcov": ("var", "cov")}[scales]
    rows = []
    vc = m.varcorr
    for t, vterm in zip(m.design.terms, vc.terms, strict=True):
        eff = _effect_names(t, names)
        cov, sd, corr = vterm.cov, vterm.sd, vterm.corr
        p = len(eff)
        for c in range(p):
            for r in range(c, p):
                if r == c:
                    value = sd[r] if scales == "sdcor" else cov[r, r]
                    rows.append((vterm.group, f"{prefix[0]}{SEP}{eff[r]}", value))
                else:
                    value = corr[r, c] if scales == "sdcor" else cov[r, c]
                    rows.append((vterm.group, f"{prefix[1]}{SEP}{eff[c]}.{eff[r]}", value))
    if vc.sigma is not None:
        value = vc.sigma if scales == "sdcor" else vc.sigma ** 2
        rows.append(("Residual", f"{prefix[0]}{SEP}Observation", value))
    out = pd.DataFrame(rows, columns=["group", "term", "estimate"])
    out.insert(0, "component", COMPONENT)
    out.insert(0, "effect", "ran_pars")
    out["std_error"] = np.nan
    out["statistic"] = np.nan
    out["p_value"] = np.nan
    return out


def _ran_vals_rows(m, names: str, coefs: bool) -> pd.DataFrame:
    frames = []
    ranef = m.coef() if coefs else m.ranef(cond_var=True)
    for group, frame in ranef.items():
        terms = [t for t in m.design.terms if t.group == group]
        py = [n for t in terms for n in t.names]
        rn = [n for t in terms for n in _effect_names(t, names)]
        rename = dict(zip(py, rn, strict=True))
        if coefs:
            rename.update(zip(m.fixef.index, fixed_names(m, names), strict=True))
            effects = list(frame.columns)
        else:
            effects = [c for c in frame.columns if not c.endswith("_condsd")]
        for e in effects:
            part = pd.DataFrame({
                "effect": "ran_coefs" if coefs else "ran_vals", "component": COMPONENT,
                "group": group, "level": pd.Series(frame.index, dtype=object).to_numpy(),
                "term": rename.get(e, e), "estimate": frame[e].to_numpy(float),
                "std_error": np.nan if coefs else frame[f"{e}_condsd"].to_numpy(float)})
            frames.append(part)
    return pd.concat(frames, ignore_index=True)


def _interval(method: str, m, level: float):
    """Intervals of every parameter by ``method`` (lme4's order: variance parameters,
    then fixed effects), or None for Wald (computed per block)."""
    if method == "wald":
        return None
    return m.confint(level=level, method=method)


def tidy(m, effects=("fixed", "ran_pars"), conf_int: bool = False, conf_level: float = 0.95,
         conf_method: str = "wald", ddf: str | None = "satterthwaite", scales: str = "sdcor",
         names: str = "r") -> pd.DataFrame:
    """broom.mixed's ``tidy`` of a mixed-model fit (see the module docstring).

    Parameters
    ----------
    m : fitted mixed model
    effects : str or sequence of str
        Among ``"fixed"``, ``"ran_pars"``, ``"ran_vals"``, ``"ran_coefs"``.
    conf_int : bool
        Add ``conf_low`` and ``conf_high``.
    conf_level : float
    conf_method : {"wald", "profile", "boot"}
        Wald: normal quantiles for the fixed effects and the conditional modes, none for
        variance parameters (lme4's Wald intervals); profile / parametric bootstrap: every
        parameter (:meth:`confint`); conditional modes have Wald intervals only.
    ddf : {"satterthwaite", "kenward-roger", "containment", "lme4"}
        Denominator df of the LMM t tests (broom.mixed's ``ddf.method`` of lmerTest fits);
        ``"lme4"`` gives no df or p-values. GLMMs always get z tests.
    scales : {"sdcor", "vcov"}
        Random-effects parameters as standard deviations and correlations, or variances
        and covariances.
    names : {"r", "python"}
        R's coefficient names (broom.mixed's) or this package's.
    """
    wanted = _effects(effects)
    names = _check_names(names)
    if scales not in ("sdcor", "vcov"):
        raise ValueError(f"scales must be 'sdcor' or 'vcov', got {scales!r}")
    conf_method = str(conf_method).lower()
    if conf_method not in CONF_METHODS:
        raise ValueError(f"conf_method must be one of {CONF_METHODS}, got {conf_method!r}")
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    ddf = None if _is_glmm(m) or ddf in (None, "lme4") else ddf
    z = stats.norm.ppf(0.5 + conf_level / 2.0)
    ci = _interval(conf_method, m, conf_level) if conf_int else None
    n_var = 0 if ci is None else len(ci) - m.design.p
    parts = []
    for effect in wanted:
        if effect == "fixed":
            conf = None
            if conf_int:
                if ci is None:
                    est, se = m.fixef.to_numpy(), m.se.to_numpy()
                    conf = (est - z * se, est + z * se)
                else:
                    fx = ci.iloc[n_var:]
                    conf = (fx["lower"].to_numpy(float), fx["upper"].to_numpy(float))
            parts.append(_fixed_rows(m, names, ddf, conf, conf_level, conf_method))
        elif effect == "ran_pars":
            rows = _ran_pars_rows(m, scales, names)
            if conf_int:
                rows["conf_low"], rows["conf_high"] = np.nan, np.nan
                if ci is not None:
                    lo = ci["lower"].to_numpy(float)[:n_var]
                    hi = ci["upper"].to_numpy(float)[:n_var]
                    if scales == "vcov":      # sd bounds square; covariance bounds do not
                        sd = rows["term"].str.startswith("var")
                        lo, hi = np.where(sd, lo ** 2, np.nan), np.where(sd, hi ** 2, np.nan)
                    rows["conf_low"], rows["conf_high"] = lo, hi
            parts.append(rows)
        else:
            rows = _ran_vals_rows(m, names, coefs=effect == "ran_coefs")
            if conf_int:
                if effect == "ran_coefs":
                    rows["conf_low"], rows["conf_high"] = np.nan, np.nan
                elif conf_method != "wald":
                    raise ValueError("conditional modes have Wald intervals only: use "
                                     "conf_method='wald' with effects='ran_vals'")
                else:
                    rows["conf_low"] = rows["estimate"] - z * rows["std_error"]
                    rows["conf_high"] = rows["estimate"] + z * rows["std_error"]
            parts.append(rows)
    out = pd.concat(parts, ignore_index=True)
    cols = [c for c in TIDY_COLUMNS if c in out.columns]
    out = out[cols]
    for c in ("group", "level"):
        if c in out.columns:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def glance(m) -> pd.DataFrame:
    """One row of fit statistics, as broom.mixed's ``glance``: ``nobs, sigma, logLik,
    AIC, BIC``, then ``REMLcrit`` (REML fits) or ``deviance`` (ML fits: -2 log L for
    LMMs; for GLMMs lme4's ``deviance()``, the sum of squared deviance residuals), and
    ``df_residual``."""
    row = {"nobs": m.nobs, "sigma": float(m.sigma), "logLik": float(m.loglik),
           "AIC": float(m.aic), "BIC": float(m.bic)}
    if getattr(m, "reml", False):
        row["REMLcrit"] = float(m.objective)
    elif _is_glmm(m):
        row["deviance"] = float(np.sum(m.residuals("deviance").to_numpy() ** 2))
    else:
        row["deviance"] = float(m.deviance)
    row["df_residual"] = int(m.df_resid)
    return pd.DataFrame([row])


# -- to_dict -----------------------------------------------------------------------------
def _num(x):
    """A JSON number: Python float/int, None for NaN and infinities."""
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def _nums(a) -> list:
    return [_num(v) for v in np.asarray(a, dtype=float).ravel()]


def _matrix(a) -> list:
    return [_nums(row) for row in np.atleast_2d(np.asarray(a, dtype=float))]


def _plain(v):
    """Recursively JSON-safe (dicts, lists, str, numbers, None)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, str) or v is None:
        return v
    if isinstance(v, bool | np.bool_ | int | np.integer | float | np.floating):
        return _num(v)
    return str(v)


def _label(value):
    """A level label as JSON: numbers stay numbers, anything else a string."""
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
        return _num(value)
    return str(value)


def to_dict(m, names: str = "python", ranef: bool = False) -> dict:
    """Everything a report needs about a fit, as plain JSON-serializable Python objects.

    Keys: ``model`` (fitter, formula, family, link, REML, nAGQ, optimizer settings of the
    recipe), ``nobs``, ``ngroups``, ``fixef`` (name -> estimate), ``se``, ``vcov`` (names and
    matrix), ``varcorr`` (per term: group label, grouping factor, names, sd, corr, cov; and
    the residual sd), ``theta``, ``sigma``, ``fit`` (logLik, AIC, BIC, deviance, objective,
    df, df_resid), ``converged``, ``singular``, ``messages``, ``optimizer`` (name,
    evaluations, return code, seconds), ``version``; with ``ranef=True`` also the conditional
    modes and their sds per grouping factor. NaN and infinities become None.

    ``names``: ``"python"`` (default; the names of :attr:`fixef`) or ``"r"``.
    """
    from .. import __version__

    names = _check_names(names)
    fx = fixed_names(m, names)
    recipe = getattr(m, "recipe", None)
    model = {"fitter": None if recipe is None else recipe.fitter_name,
             "formula": m.design.spec.formula,
             "family": m.family.name if _is_glmm(m) else "gaussian",
             "link": m.family.link.name if _is_glmm(m) else "identity",
             "REML": bool(getattr(m, "reml", False))}
    if _is_glmm(m):
        model["nAGQ"] = int(m.nAGQ)
        theta_nb = getattr(m.family, "theta", None)
        if theta_nb is not None:
            model["nb_theta"] = _num(theta_nb)
    if recipe is not None:
        opts = recipe.kwargs
        model["optimizer"] = opts.get("optimizer")
        model["optimizer_settings"] = _plain(opts.get("optimizer_settings"))
    vc = m.varcorr
    terms = []
    for t, vterm in zip(m.design.terms, vc.terms, strict=True):
        terms.append({"group": vterm.group, "factor": vterm.factor,
                      "names": _effect_names(t, names), "sd": _nums(vterm.sd),
                      "corr": _matrix(vterm.corr), "cov": _matrix(vterm.cov)})
    out = {
        "model": model,
        "nobs": int(m.nobs),
        "ngroups": {str(k): int(v) for k, v in m.ngroups.items()},
        "fixef": dict(zip(fx, _nums(m.fixef), strict=True)),
        "se": dict(zip(fx, _nums(m.se), strict=True)),
        "vcov": {"names": fx, "matrix": _matrix(m.vcov.to_numpy())},
        "varcorr": {"terms": terms, "residual_sd": None if vc.sigma is None
                    else _num(vc.sigma)},
        "theta": _nums(m.theta),
        "sigma": _num(m.sigma),
        "fit": {"logLik": _num(m.loglik), "AIC": _num(m.aic), "BIC": _num(m.bic),
                "deviance": _num(m.deviance), "objective": _num(m.objective),
                "df": int(m.df), "df_resid": int(m.df_resid)},
        "converged": bool(m.converged),
        "singular": bool(m.is_singular()),
        "messages": [str(s) for s in m.messages],
        "optimizer": {"name": m.opt.optimizer, "evaluations": int(m.opt.n_evals),
                      "return_code": str(m.opt.return_code), "seconds": _num(m.opt.seconds)},
        "version": __version__,
    }
    if ranef:
        re = {}
        for group, frame in m.ranef(cond_var=True).items():
            re[str(group)] = {"levels": [_label(v) for v in frame.index],
                              "columns": {str(c): _nums(frame[c]) for c in frame.columns}}
        out["ranef"] = re
    return out

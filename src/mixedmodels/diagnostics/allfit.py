r"""Refit a model with every optimizer: lme4's ``allFit``.

A convergence warning is worth acting on when different optimizers disagree. ``allfit``
refits the model through its recipe (``m.update(optimizer=name)``: the same formula, data
and every other argument) with each optimizer the front door accepts and tabulates, per
optimizer, the objective (deviance or REML criterion), theta, the fixed effects, the time,
the convergence verdict and the warnings. When the fits agree to within a small fraction
of the estimates' standard errors, the warning was a false positive (the GLMM FAQ's
advice, from lme4's ``?convergence``); when they do not, the model or its scaling needs
attention.

A failing optimizer is a row with ``converged = False`` and the error in ``warnings``,
not an abort (lme4 records such fits as failures too).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import MixedModelsError, MixedModelsWarning
from ..display.tables import Report, ReportDisplay, frame_table

__all__ = ["AllFitResult", "allfit", "theta_names"]

#: Errors of a refit that make it a failed row (anything else propagates: a bug).
_FIT_FAILURES = (MixedModelsError, ValueError, RuntimeError, ArithmeticError,
                 np.linalg.LinAlgError)


def theta_names(design) -> list[str]:
    """lme4's names of theta (``getME(m, "theta")``): per term the lower triangle of the
    relative covariance factor by columns, ``group.effect`` on the diagonal and
    ``group.row.column`` below it."""
    out = []
    for t in design.terms:
        names = list(t.names)
        p = len(names)
        if t.structure.n_theta != p * (p + 1) // 2:
            out += [f"{t.group}.{k + 1}" for k in range(t.structure.n_theta)]
            continue
        for j in range(p):
            for i in range(j, p):
                out.append(f"{t.group}.{names[i]}" if i == j
                           else f"{t.group}.{names[i]}.{names[j]}")
    return out


@dataclass(frozen=True, repr=False)
class AllFitResult(ReportDisplay):
    """The refits of :func:`allfit`.

    Attributes
    ----------
    table : pandas.DataFrame
        A row per optimizer: ``objective``, ``theta[<name>]`` (lme4's theta names),
        ``beta[<name>]``, ``sigma`` (where the model estimates a scale), ``nb_theta``
        (``glmer_nb``: the negative binomial's shape), ``time`` (seconds), ``n_evals``,
        ``converged``, ``warnings`` (the fit's messages or the error, joined by ``"; "``).
    spread : pandas.Series
        For each estimate column of ``table`` (objective, theta, beta, sigma, nb_theta),
        the range (max - min) over the optimizers whose fits succeeded.
    fits : dict of str -> fit or None
        The refitted models (None where the optimizer failed).
    """

    table: pd.DataFrame
    spread: pd.Series
    fits: dict

    @property
    def ok(self) -> list[str]:
        """Optimizers whose refit succeeded."""
        return [k for k, f in self.fits.items() if f is not None]

    def best(self) -> str:
        """The optimizer with the lowest objective among the successful refits.

        Returns
        -------
        str
        """
        ok = self.table.loc[self.ok, "objective"]
        if ok.empty:
            raise MixedModelsError("no optimizer produced a fit")
        return str(ok.idxmin())

    def plot(self, params=None, ax=None):
        """Each optimizer's objective and estimates against the best fit's
        (:func:`mixedmodels.plotting.allfit_plot`; needs matplotlib).

        Parameters
        ----------
        params : sequence of str, optional
            Columns of :attr:`table` to draw (default: objective and every estimate).
        ax : matplotlib Axes or array of Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plotting import allfit_plot

        return allfit_plot(self, params=params, ax=ax)

    def report(self) -> Report:
        """The printed layout (see ``ReportDisplay``)."""
        numeric = [c for c in self.table.columns if c not in ("warnings",)]
        shown = self.table[numeric]
        spread = self.spread.to_frame("range")
        blocks: list = [frame_table(shown, title="Refits by optimizer"),
                        frame_table(spread, float_format="{:.3g}",
                                    title="Spread over the successful fits")]
        notes = [f"{k}: {w}" for k, w in self.table["warnings"].items() if w]
        if notes:
            blocks += ["Warnings:", *notes]
        return Report(tuple(blocks))


def _accepted(m) -> tuple[str, ...]:
    if not callable(getattr(m, "_require_recipe", None)):
        raise TypeError(f"allfit needs a fitted model (an mm.lmer, mm.glmer or mm.glmer_nb "
                        f"result), got {type(m).__name__}")
    recipe = m._require_recipe()
    if recipe.fitter is None:
        raise MixedModelsError(
            f"this fit was made by {recipe.fitter_name}() from a Design, not by a formula "
            "front door, so it cannot be refitted with other optimizers; fit it with "
            "mm.lmer()/mm.glmer() first")
    accepted = tuple(recipe.optimizers)
    if not accepted:
        raise MixedModelsError(
            f"{recipe.fitter_name}() takes no optimizer= argument (glmmtmb fits use one "
            "optimizer: BFGS on the exact gradient with a Newton polish), so there is "
            "nothing to compare; allfit compares the optimizers of lmer, glmer and glmer_nb")
    return accepted


def _refit(m, name: str):
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit, error = m.update(optimizer=name), None
        except _FIT_FAILURES as exc:
            fit, error = None, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    notes = [str(w.message) for w in caught if issubclass(w.category, MixedModelsWarning)]
    if fit is not None:
        notes = list(dict.fromkeys([*getattr(fit, "messages", ()), *notes]))
    return fit, error, notes, elapsed


def _family_parameters(fit) -> dict[str, float]:
    """The estimated parameters besides theta and beta, as lme4's ``allFit`` summary
    reports them in ``sdcor``: the residual sd ``sigma`` where the model estimates a scale
    (linear models; GLMM families with a dispersion parameter), the negative binomial's
    shape ``theta`` for ``glmer_nb`` fits."""
    family = getattr(fit, "family", None)
    if family is None:
        return {"sigma": float(fit.sigma)}
    out = {}
    if getattr(family, "has_dispersion", False):
        out["sigma"] = float(fit.sigma)
    if getattr(fit, "shape_estimated", False):
        out["nb_theta"] = float(family.theta)
    return out


def allfit(m, optimizers=None) -> AllFitResult:
    """Refit ``m`` with each optimizer (lme4's ``allFit``; module docstring).

    Parameters
    ----------
    m : fitted model
        An ``lmer``, ``glmer`` or ``glmer_nb`` fit made by a front door.
    optimizers : str or sequence of str, optional
        Optimizer names (default: every one the front door accepts, ``"auto"`` left out:
        it is one of the others).

    Returns
    -------
    AllFitResult
        ``.table``, ``.spread``, ``.fits``, ``.best()``.
    """
    accepted = _accepted(m)
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    names = [o for o in accepted if o != "auto"] if optimizers is None else list(optimizers)
    unknown = [o for o in names if o not in accepted]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {', '.join(map(repr, unknown))}; "
                         f"{m.recipe.fitter_name}() accepts {', '.join(map(repr, accepted))}")
    if not names:
        raise ValueError("optimizers is empty: name at least one")
    tnames = [f"theta[{n}]" for n in theta_names(m.design)]
    bnames = [f"beta[{n}]" for n in m.fixef.index]
    fnames = list(_family_parameters(m))
    rows, fits = {}, {}
    for name in names:
        fit, error, notes, elapsed = _refit(m, name)
        fits[name] = fit
        row = dict.fromkeys(["objective", *tnames, *bnames, *fnames], np.nan)
        if fit is not None:
            row["objective"] = float(fit.objective)
            row.update(zip(tnames, np.asarray(fit.theta, float), strict=True))
            row.update(zip(bnames, np.asarray(fit.beta, float), strict=True))
            row.update({k: v for k, v in _family_parameters(fit).items() if k in fnames})
        opt = getattr(fit, "opt", None)
        row.update({"time": elapsed,
                    "n_evals": np.nan if opt is None else float(opt.n_evals),
                    "converged": bool(fit is not None and fit.converged),
                    "warnings": "; ".join([error] if error else notes)})
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "optimizer"
    numeric = table.loc[[k for k, f in fits.items() if f is not None],
                        ["objective", *tnames, *bnames, *fnames]]
    spread = (numeric.max() - numeric.min()).rename("range")
    return AllFitResult(table, spread, fits)

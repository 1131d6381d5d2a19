"""glmmTMB-style summary: one Wald table per component, variance components per component."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .glmm_summary import format_z_table
from .summary import format_fit_header, format_groups_line

__all__ = ["GlmmTMBSummary"]

#: Component titles, glmmTMB's wording.
_TITLES = {"cond": "Conditional model", "zi": "Zero-inflation model",
           "disp": "Dispersion model"}
_SIGNIF = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


@dataclass(frozen=True)
class GlmmTMBSummary:
    """Summary of a :class:`~mixedmodels.results.glmmtmb.GlmmTMBResult`.

    Attributes
    ----------
    coefficients : dict of str -> DataFrame
        Wald table (Estimate, Std. Error, z value, Pr(>|z|)) per component.
    varcorr : dict of str -> VarCorr
        Variance components per component with random effects.
    fit_stats : dict
        AIC, BIC, logLik, deviance, df.resid.
    """

    family: str
    link: str
    formulas: dict
    reml: bool
    fit_stats: dict
    coefficients: dict
    varcorr: dict
    nobs: int
    ngroups: dict
    dispersion: str
    messages: tuple

    @classmethod
    def from_result(cls, m) -> GlmmTMBSummary:
        comps = m.design.spec.components
        formulas = {"cond": m.design.spec.formula}
        for name in ("zi", "disp"):
            if name in comps:
                formulas[name] = comps[name].formula
        coefs = {name: m.coef_table(name) for name in m.components
                 if len(m.coef_table(name)) and not (name == "disp" and (
                     _is_fixed(m) or m.sigma is not None))}
        vcs = {name: m.varcorr_of(name) for name in m.components
               if m.design.components[name].terms}
        stats = {"AIC": m.aic, "BIC": m.bic, "logLik": m.loglik,
                 ("REMLcrit" if m.reml else "deviance"): m.objective,
                 "df.resid": m.df_resid}
        return cls(m.family_name, m.density.links["mu"].name, formulas, m.reml, stats,
                   coefs, vcs, m.nobs, m.ngroups, _dispersion_line(m), m.messages)

    def __str__(self) -> str:
        lines = [f" Family: {self.family}  ( {self.link} )",
                 f"Formula:          {self.formulas['cond']}"]
        if "zi" in self.formulas:
            lines.append(f"Zero inflation:   {self.formulas['zi']}")
        if "disp" in self.formulas and self.formulas["disp"].replace(" ", "") != "~1":
            lines.append(f"Dispersion:       {self.formulas['disp']}")
        lines += ["", format_fit_header(self.fit_stats), ""]
        if self.varcorr:
            lines.append("Random effects:")
            for name, vc in self.varcorr.items():
                lines += ["", f"{_TITLES[name]}:",
                          vc.to_text(digits=4, variance=True)]
            lines.append(format_groups_line(self.nobs, self.ngroups))
            lines.append("")
        if self.dispersion:
            lines += [self.dispersion, ""]
        for name, table in self.coefficients.items():
            lines += [f"{_TITLES[name]}:", format_z_table(table), "---", _SIGNIF, ""]
        for msg in self.messages:
            lines.append(msg)
        return "\n".join(lines).rstrip() + "\n"

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The coefficient tables by component."""
        return dict(self.coefficients)


def _is_fixed(m) -> bool:
    return "beta.disp" in m.layout and bool(m.layout.block("beta.disp").fixed.all())


def _dispersion_line(m) -> str:
    """glmmTMB's 'Dispersion parameter for ... family (): ...' / residual variance line."""
    if "phi" not in m.density.channels:
        return ""
    sigma = m.sigma
    if sigma is None:
        return ""
    if m.family_name == "gaussian":
        return f"Dispersion estimate for gaussian family (sigma^2): {sigma ** 2:.3g}"
    return f"Dispersion parameter for {m.family_name} family (): {sigma:.3g}"

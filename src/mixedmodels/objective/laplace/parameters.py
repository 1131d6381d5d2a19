"""The parameter layout of a model of glmmTMB's class.

Blocks, in order: ``beta.<component>`` for every component with fixed effects (``cond``,
``zi``, ``disp``), ``theta.<component>`` for every component with random effects, then
``family.<channel>`` for the family's own parameters (a Tweedie power, a Student-t df).
Labels follow glmmTMB's ``vcov(full = TRUE)``: ``cond~x``, ``zi~x``, ``disp~x``, and for
the covariance parameters ``theta_<term>|<group>.<k>`` (``zi~theta_...`` in the
zero-inflation model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...parameters import ParameterBlock, ParameterLayout

__all__ = ["FamilyParameter", "make_layout", "theta_labels"]

#: Component order of the blocks.
COMPONENT_ORDER = ("cond", "zi", "disp")


@dataclass(frozen=True)
class FamilyParameter:
    """A scalar family parameter optimized on an unbounded scale.

    Attributes
    ----------
    channel : str
        Density channel it feeds (``"power"``, ``"df"``).
    start : float
        Start value on the optimizer's scale.
    label : str
        Name in ``vcov_full`` and summaries.
    fixed : bool
        Held at ``start``.
    """

    channel: str
    start: float
    label: str = ""
    fixed: bool = False


#: An unstructured term with more columns than this is labelled by its expression, as
#: structured terms always are (glmmTMB's ``theta_0+pos(x,y)|g.1``), not by its columns
#: joined (one per position or factor level: hundreds of them).
MAX_LABEL_COLUMNS = 4


def theta_labels(component: str, terms) -> list[str]:
    """Labels of the theta entries of a component's terms."""
    prefix = "" if component == "cond" else f"{component}~"
    out = []
    for t in terms:
        by_columns = t.term.structure == "us" and len(t.names) <= MAX_LABEL_COLUMNS
        expr = "+".join(t.names) if by_columns else t.term.expr.replace(" ", "")
        for k in range(t.structure.n_theta):
            out.append(f"{prefix}theta_{expr}|{t.group}.{k + 1}")
    return out


def _theta_start(terms) -> np.ndarray:
    return np.concatenate([t.structure.theta0() for t in terms])


def _theta_lower(terms, bounded: bool) -> np.ndarray:
    if bounded:
        return np.concatenate([t.structure.lower_bounds() for t in terms])
    return np.full(sum(t.structure.n_theta for t in terms), -np.inf)


def make_layout(components: dict, family_params=(), *, beta_start: dict | None = None,
                fixed_beta: dict | None = None, bounded_theta: bool = False,
                reml: bool = False) -> ParameterLayout:
    """Layout for ``components`` (``{name: LinearPredictor}``) and family parameters.

    Parameters
    ----------
    components : dict
    family_params : sequence of FamilyParameter
    beta_start : dict, optional
        ``{component: start values}`` (zeros otherwise).
    fixed_beta : dict, optional
        ``{component: True}`` to hold that component's fixed effects at their start
        (glmmTMB's ``dispformula = ~0``).
    bounded_theta : bool
        Keep lme4's lower bound 0 on Cholesky diagonals; by default theta is unbounded
        (the objective is even in the sign of each column of Lambda).
    reml : bool
        The conditional fixed effects are integrated out: no ``beta.cond`` block.
    """
    beta_start = beta_start or {}
    fixed_beta = fixed_beta or {}
    blocks = []
    names = [c for c in COMPONENT_ORDER if c in components] + \
        [c for c in components if c not in COMPONENT_ORDER]
    for name in names:
        lp = components[name]
        if lp.p and not (reml and name == "cond"):
            start = beta_start.get(name, np.zeros(lp.p))
            blocks.append(ParameterBlock(f"beta.{name}", "beta", name,
                                         tuple(f"{name}~{c}" for c in lp.fixed.names),
                                         start, fixed=bool(fixed_beta.get(name, False))))
    for name in names:
        lp = components[name]
        if lp.terms:
            blocks.append(ParameterBlock(f"theta.{name}", "theta", name,
                                         tuple(theta_labels(name, lp.terms)),
                                         _theta_start(lp.terms),
                                         lower=_theta_lower(lp.terms, bounded_theta)))
    for fp in family_params:
        blocks.append(ParameterBlock(f"family.{fp.channel}", "family", None,
                                     (fp.label or fp.channel,), [fp.start],
                                     fixed=fp.fixed))
    return ParameterLayout(blocks)

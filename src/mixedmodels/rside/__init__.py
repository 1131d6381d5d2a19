"""Residual (R-side) structures of linear models, nlme's way.

``Var(e) = sigma^2 D C D``: a correlation structure ``C`` within groups
(:mod:`.correlation`, :mod:`.spatial`) and a variance function ``D`` (:mod:`.variance`),
fitted exactly by whitening the data within groups (:mod:`.objective`). The classes are
spelled as nlme's constructors (``cor_ar1`` for ``corAR1``, ``var_ident`` for
``varIdent``) and take nlme's ``form``.
"""

from .constructors import (
    cor_ar1,
    cor_arma,
    cor_car1,
    cor_comp_symm,
    cor_exp,
    cor_gaus,
    cor_lin,
    cor_ratio,
    cor_spher,
    cor_symm,
    var_comb,
    var_const_power,
    var_exp,
    var_fixed,
    var_ident,
    var_power,
)
from .residual import BoundResidual, ResidualSpec
from .results import GLSResult, PQLResult, RSideLMMResult

__all__ = [
    "BoundResidual",
    "GLSResult",
    "PQLResult",
    "RSideLMMResult",
    "ResidualSpec",
    "cor_ar1",
    "cor_arma",
    "cor_car1",
    "cor_comp_symm",
    "cor_exp",
    "cor_gaus",
    "cor_lin",
    "cor_ratio",
    "cor_spher",
    "cor_symm",
    "var_comb",
    "var_const_power",
    "var_exp",
    "var_fixed",
    "var_ident",
    "var_power",
]

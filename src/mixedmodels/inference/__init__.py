"""Inference for fitted models: likelihood-ratio tests, denominator degrees of freedom,
profile and bootstrap intervals, parametric-bootstrap and restricted likelihood-ratio tests.

Most of it is reached through methods of a fit (``m.coef_table()``, ``m.anova_table()``,
``m.confint()``, ``m.profile()``, ``m.simulate()``, ``m.refit()``, ``m.bootstrap()``,
``m.varcorr_se()``, ``m.drop1()``, ``m.r2()``, ``m.icc()``) and the functions
:func:`anova`, :func:`lm`, :func:`pb_test`, :func:`rlrt` and :func:`exact_lrt`.
"""

from .anova import AnovaResult, RefitNote, anova, boundary_pvalue
from .bootstrap import BootstrapResult, bootstrap, parameter_vector
from .drop1 import drop1
from .exact_lrt import ExactLRTResult, exact_lrt
from .glm import GeneralizedLinearModelResult, fit_glm, glm
from .lm import LinearModelResult, fit_lm, lm
from .nesting import NotNestedError
from .pbtest import PBTestResult, pb_test
from .profile import LikelihoodProfile, ProfileCurve, profile_lmm, profile_model
from .r2 import ICCResult, R2Result, R2Warning, VarianceDecomposition, icc, r2_nakagawa
from .rlrt import RLRTResult, rlrt
from .varcorr_se import VarCorrSEWarning, varcorr_se
from .wald_anova import ContrastsWarning, wald_anova

__all__ = [
    "AnovaResult",
    "BootstrapResult",
    "ContrastsWarning",
    "ExactLRTResult",
    "GeneralizedLinearModelResult",
    "ICCResult",
    "LikelihoodProfile",
    "LinearModelResult",
    "NotNestedError",
    "PBTestResult",
    "ProfileCurve",
    "R2Result",
    "R2Warning",
    "RLRTResult",
    "RefitNote",
    "VarCorrSEWarning",
    "VarianceDecomposition",
    "anova",
    "bootstrap",
    "boundary_pvalue",
    "drop1",
    "exact_lrt",
    "fit_glm",
    "fit_lm",
    "glm",
    "icc",
    "lm",
    "parameter_vector",
    "pb_test",
    "profile_lmm",
    "profile_model",
    "r2_nakagawa",
    "rlrt",
    "varcorr_se",
    "wald_anova",
]

"""Inference for fitted models: likelihood-ratio tests, denominator degrees of freedom,
profile and bootstrap intervals, parametric-bootstrap and restricted likelihood-ratio tests.

Most of it is reached through methods of a fit (``m.coef_table()``, ``m.anova_table()``,
``m.confint()``, ``m.profile()``, ``m.simulate()``, ``m.refit()``, ``m.bootstrap()``,
``m.varcorr_se()``) and the functions :func:`anova`, :func:`lm`, :func:`pb_test` and
:func:`rlrt`.
"""

from .anova import AnovaResult, RefitNote, anova, boundary_pvalue
from .bootstrap import BootstrapResult, bootstrap, parameter_vector
from .glm import GeneralizedLinearModelResult, fit_glm, glm
from .lm import LinearModelResult, fit_lm, lm
from .nesting import NotNestedError
from .pbtest import PBTestResult, pb_test
from .profile import LikelihoodProfile, ProfileCurve, profile_lmm, profile_model
from .rlrt import RLRTResult, rlrt
from .varcorr_se import VarCorrSEWarning, varcorr_se

__all__ = [
    "AnovaResult",
    "BootstrapResult",
    "GeneralizedLinearModelResult",
    "LikelihoodProfile",
    "LinearModelResult",
    "NotNestedError",
    "PBTestResult",
    "ProfileCurve",
    "RLRTResult",
    "RefitNote",
    "VarCorrSEWarning",
    "anova",
    "bootstrap",
    "boundary_pvalue",
    "fit_glm",
    "fit_lm",
    "glm",
    "lm",
    "parameter_vector",
    "pb_test",
    "profile_lmm",
    "profile_model",
    "rlrt",
    "varcorr_se",
]

"""mixedmodels: linear and generalized linear mixed models with lme4-style formulas.

Quick start::

    import mixedmodels as mm
    df = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
    print(m.summary())

Every step of the pipeline is public: :func:`parse_formula` (formula -> spec),
:func:`materialize` (spec + data -> design), :class:`LMMObjective` (design -> objective),
:func:`minimize` (objective -> optimum) and the result classes.
"""

from . import datasets, families
from ._errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    DroppedRowsWarning,
    FormulaError,
    FormulaWarning,
    MixedModelsError,
    MixedModelsWarning,
    RankDeficiencyWarning,
    SingularFitWarning,
)
from ._options import get_options, options, set_options
from .backends.dask.result import DaskLinearMixedModelResult
from .backends.dask.source import ClusterUnreachableError
from .design import Design, materialize
from .diagnostics import AllFitResult, RePCA, ScalingWarning, allfit
from .diagnostics.link_edge import LinkEdgeWarning
from .diagnostics.separation import SeparationWarning
from .fitting import fit_glmm, fit_lmm, glmer, glmer_nb, glmmtmb, lmer
from .formula import MixedModelSpec, RandomTerm, parse_formula
from .formula.update import update_formula
from .inference import (
    AnovaResult,
    BootstrapResult,
    ContrastsWarning,
    ExactLRTResult,
    GeneralizedLinearModelResult,
    ICCResult,
    LikelihoodProfile,
    LinearModelResult,
    NotNestedError,
    PBTestResult,
    R2Result,
    R2Warning,
    RLRTResult,
    VarianceDecomposition,
    anova,
    exact_lrt,
    glm,
    lm,
    pb_test,
    rlrt,
)
from .objective import GLMMObjective, GLMMSolution, LMMObjective, LMMSolution
from .optim import OptSummary, minimize
from .results import (
    FitRecipe,
    GeneralizedLinearMixedModelResult,
    GLMMSummary,
    GlmmTMBResult,
    LinearMixedModelResult,
    LMMSummary,
    VarCorr,
)

__version__ = "0.1.0"

__all__ = [
    "AllFitResult",  # diagnostics
    "AnovaResult",  # inference
    "BootstrapResult",  # inference
    "ClusterUnreachableError",  # dask backend
    "ContrastsWarning",  # inference
    "ConvergenceWarning",
    "DaskLinearMixedModelResult",  # dask backend
    "DataError",
    "DataWarning",
    "Design",
    "DroppedRowsWarning",
    "ExactLRTResult",  # inference
    "FitRecipe",
    "FormulaError",
    "FormulaWarning",
    "GLMMObjective",  # glmm
    "GLMMSolution",  # glmm
    "GLMMSummary",  # glmm
    "GeneralizedLinearMixedModelResult",  # glmm
    "GeneralizedLinearModelResult",  # inference
    "GlmmTMBResult",  # glmmTMB class
    "ICCResult",  # inference
    "LMMObjective",
    "LMMSolution",
    "LMMSummary",
    "LikelihoodProfile",  # inference
    "LinearMixedModelResult",
    "LinearModelResult",  # inference
    "LinkEdgeWarning",  # glmm diagnostics
    "MixedModelSpec",
    "MixedModelsError",
    "MixedModelsWarning",
    "NotNestedError",  # inference
    "OptSummary",
    "PBTestResult",  # inference
    "R2Result",  # inference
    "R2Warning",  # inference
    "RLRTResult",  # inference
    "RandomTerm",
    "RankDeficiencyWarning",
    "RePCA",  # diagnostics
    "ScalingWarning",  # diagnostics
    "SeparationWarning",  # glmm diagnostics
    "SingularFitWarning",
    "VarCorr",
    "VarianceDecomposition",  # inference
    "__version__",
    "allfit",  # diagnostics
    "anova",  # inference
    "datasets",
    "exact_lrt",  # inference
    "families",  # glmm
    "fit_glmm",  # glmm
    "fit_lmm",
    "get_options",
    "glm",  # inference
    "glmer",  # glmm
    "glmer_nb",  # glmm
    "glmmtmb",  # glmmTMB class
    "lm",  # inference
    "lmer",
    "materialize",
    "minimize",
    "options",
    "parse_formula",
    "pb_test",  # inference
    "rlrt",  # inference
    "set_options",
    "update_formula",
]

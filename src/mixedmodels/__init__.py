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

from . import datasets, families, plotting
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
from .backends.dask.glmm_result import DaskGLMMResult
from .backends.dask.result import DaskLinearMixedModelResult
from .backends.dask.source import ClusterUnreachableError
from .bayes import (
    BglmerResult,
    BlmerResult,
    PosteriorSamples,
    SamplingWarning,
    bglmer,
    blmer,
    priors,
)
from .design import Design, materialize
from .diagnostics import AllFitResult, RePCA, ScalingWarning, allfit
from .diagnostics.calibration import CalibratedTests
from .diagnostics.link_edge import LinkEdgeWarning
from .diagnostics.model_selection import VuongTest, aic_table, loglik_contributions, vuong
from .diagnostics.residual_tests import ResidualTest
from .diagnostics.separation import SeparationWarning
from .diagnostics.simulated_residuals import SimulatedResiduals, simulate_residuals
from .diagnostics.zero_inflation import (
    ExpectedZeros,
    ZeroInflationLRT,
    expected_zeros,
    zero_inflation_lrt,
)
from .fitting import fit_glmm, fit_lmm, glmer, glmer_nb, glmm_pql, glmmtmb, gls, lmer
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
from .rside import (
    GLSResult,
    PQLResult,
    RSideLMMResult,
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

__version__ = "0.1.0"

__all__ = [
    "AllFitResult",  # diagnostics
    "AnovaResult",  # inference
    "BglmerResult",  # bayes
    "BlmerResult",  # bayes
    "BootstrapResult",  # inference
    "CalibratedTests",  # diagnostics
    "ClusterUnreachableError",  # dask backend
    "ContrastsWarning",  # inference
    "ConvergenceWarning",
    "DaskGLMMResult",  # dask backend
    "DaskLinearMixedModelResult",  # dask backend
    "DataError",
    "DataWarning",
    "Design",
    "DroppedRowsWarning",
    "ExactLRTResult",  # inference
    "ExpectedZeros",  # diagnostics
    "FitRecipe",
    "FormulaError",
    "FormulaWarning",
    "GLMMObjective",  # glmm
    "GLMMSolution",  # glmm
    "GLMMSummary",  # glmm
    "GLSResult",  # rside
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
    "PQLResult",  # rside
    "PosteriorSamples",  # bayes
    "R2Result",  # inference
    "R2Warning",  # inference
    "RLRTResult",  # inference
    "RSideLMMResult",  # rside
    "RandomTerm",
    "RankDeficiencyWarning",
    "RePCA",  # diagnostics
    "ResidualTest",  # diagnostics
    "SamplingWarning",  # bayes
    "ScalingWarning",  # diagnostics
    "SeparationWarning",  # glmm diagnostics
    "SimulatedResiduals",  # diagnostics
    "SingularFitWarning",
    "VarCorr",
    "VarianceDecomposition",  # inference
    "VuongTest",  # diagnostics
    "ZeroInflationLRT",  # diagnostics
    "__version__",
    "aic_table",  # diagnostics
    "allfit",  # diagnostics
    "anova",  # inference
    "bglmer",  # bayes
    "blmer",  # bayes
    "cor_ar1",  # rside
    "cor_arma",  # rside
    "cor_car1",  # rside
    "cor_comp_symm",  # rside
    "cor_exp",  # rside
    "cor_gaus",  # rside
    "cor_lin",  # rside
    "cor_ratio",  # rside
    "cor_spher",  # rside
    "cor_symm",  # rside
    "datasets",
    "exact_lrt",  # inference
    "expected_zeros",  # diagnostics
    "families",  # glmm
    "fit_glmm",  # glmm
    "fit_lmm",
    "get_options",
    "glm",  # inference
    "glmer",  # glmm
    "glmer_nb",  # glmm
    "glmm_pql",  # rside
    "glmmtmb",  # glmmTMB class
    "gls",  # rside
    "lm",  # inference
    "lmer",
    "loglik_contributions",  # diagnostics
    "materialize",
    "minimize",
    "options",
    "parse_formula",
    "pb_test",  # inference
    "plotting",
    "priors",  # bayes
    "rlrt",  # inference
    "set_options",
    "simulate_residuals",  # diagnostics
    "update_formula",
    "var_comb",  # rside
    "var_const_power",  # rside
    "var_exp",  # rside
    "var_fixed",  # rside
    "var_ident",  # rside
    "var_power",  # rside
    "vuong",  # diagnostics
    "zero_inflation_lrt",  # diagnostics
]

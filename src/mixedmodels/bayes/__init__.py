"""Priors and posterior sampling: blme's regularized fits (:func:`blmer`, :func:`bglmer`)
and MCMC draws of a fit's parameters (``m.sample()``)."""

from . import priors
from .bglmer import bglmer, fit_bglmm
from .blmer import blmer, fit_blmm
from .model_priors import ModelPriors, PriorWarning, resolve_priors
from .posterior import PosteriorSamples
from .results import BglmerResult, BlmerResult, PriorSummary
from .sample import SamplingWarning, sample

__all__ = [
    "BglmerResult",
    "BlmerResult",
    "ModelPriors",
    "PosteriorSamples",
    "PriorSummary",
    "PriorWarning",
    "SamplingWarning",
    "bglmer",
    "blmer",
    "fit_bglmm",
    "fit_blmm",
    "priors",
    "resolve_priors",
    "sample",
]

"""Front doors that compose the pipeline: lmer (glmer, glmer_nb to come)."""

from .lmm import fit_lmm, lmer

__all__ = ["fit_lmm", "lmer"]

"""Front doors that compose the pipeline: lmer (glmer, glmer_nb to come)."""

from .glmm import fit_glmm, glmer, glmer_nb
from .lmm import fit_lmm, lmer

__all__ = ["fit_glmm", "fit_lmm", "glmer", "glmer_nb", "lmer"]

"""Front doors that compose the pipeline: lmer, glmer, glmer_nb, glmmtmb."""

from .glmm import fit_glmm, glmer, glmer_nb
from .glmmtmb import fit_glmmtmb, glmmtmb
from .lmm import fit_lmm, lmer

__all__ = ["fit_glmm", "fit_glmmtmb", "fit_lmm", "glmer", "glmer_nb", "glmmtmb", "lmer"]

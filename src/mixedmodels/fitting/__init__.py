"""Front doors that compose the pipeline: lmer, glmer, glmer_nb, glmmtmb, gls."""

from .glmm import fit_glmm, glmer, glmer_nb
from .glmmtmb import fit_glmmtmb, glmmtmb
from .gls import gls
from .lmm import fit_lmm, lmer
from .pql import glmm_pql

__all__ = ["fit_glmm", "fit_glmmtmb", "fit_lmm", "glmer", "glmer_nb", "glmm_pql", "glmmtmb", "gls",
           "lmer"]

"""Predictions with uncertainty: standard errors, confidence and prediction intervals.

:mod:`.joint` (lmer, glmer: the joint covariance of the fixed and random effects),
:mod:`.delta` (glmmtmb: TMB's delta method over the parameters and the random effects),
:mod:`.bootstrap` (parametric bootstrap), :mod:`.output` (the frames ``predict`` returns)
and :mod:`.matrices` (the model matrices of new data).
"""

"""Plots of fitted models (matplotlib, imported when a plot is drawn:
``pip install "mixedmodels[plot]"``).

Every function returns a :class:`matplotlib.figure.Figure`. Figures are made with
``matplotlib.figure.Figure`` rather than ``pyplot``: they are not registered with pyplot, so
a notebook shows a returned figure once (not once by pyplot's inline backend and again as
the cell's value) and scripts do not accumulate open figures. Save one with
``fig.savefig("plot.png")``; pass ``ax=`` (where offered) to draw into your own axes.

* :func:`caterpillar` -- conditional modes with their conditional intervals (lme4's
  ``dotplot(ranef(m, condVar = TRUE))``);
* :func:`residual_panel` (also :func:`residuals`) -- residuals against fitted values,
  normal QQ plot, scale-location;
* :func:`simulated_residuals_panel` -- DHARMa's plot of simulated residuals
  (``SimulatedResiduals.plot()``);
* :func:`profile_plot` -- likelihood-profile zeta plots with the interval marks
  (``LikelihoodProfile.plot()``);
* :func:`effect_plot` -- predictions over one predictor with a confidence band;
* :func:`allfit_plot` -- the refits of ``mm.allfit`` against the best one.
"""

from .allfit import allfit_plot
from .effects import effect_grid, effect_plot
from .model_plots import caterpillar, residual_panel, residuals
from .profile import profile_plot
from .simulated import simulated_residuals_panel

__all__ = ["allfit_plot", "caterpillar", "effect_grid", "effect_plot", "profile_plot",
           "residual_panel", "residuals", "simulated_residuals_panel"]

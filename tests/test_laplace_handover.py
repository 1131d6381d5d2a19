"""BFGS's handover to the Newton polish (:data:`~mixedmodels.fitting.laplace_fit.
BFGS_HANDOVER_GTOL`): where the polish cannot finish from the handover point, BFGS resumes
and the fit reaches the optimum it reaches without the handover."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import structures_fixtures as sf

laplace_fit = importlib.import_module("mixedmodels.fitting.laplace_fit")

#: Two searches of the same objective to its optimum agree to about this (deviance units).
OPTIMUM_ATOL = 1e-8


@pytest.mark.parametrize("fid", ["homdiag_pois", "gau_pois"])
def test_handover_far_from_the_optimum_resumes(fid, monkeypatch):
    fx = sf.load(fid)
    data = sf.load_data(fx)
    ref = sf.fit_fixture(fx, "glmmtmb", data)
    # a handover at the start: the polish alone runs out of steps (gau_pois) or finishes
    # (homdiag_pois); either way the optimum is the one BFGS reaches
    monkeypatch.setattr(laplace_fit, "BFGS_HANDOVER_GTOL", 1e3)
    far = sf.fit_fixture(fx, "glmmtmb", data)
    assert far.converged
    assert far.objective == pytest.approx(ref.objective, abs=OPTIMUM_ATOL)
    np.testing.assert_allclose(far.x, ref.x, atol=1e-4)

"""Optimizers, boundary handling and the convergence check."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.diagnostics import check_convergence
from mixedmodels.optim import minimize, minimize_with_gradient

OBJECTIVE_ATOL = 1e-6


@pytest.mark.parametrize("formula,data", [
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),
])
def test_gradient_and_bobyqa_agree(formula, data):
    design = mm.materialize(mm.parse_formula(formula), mm.datasets.load(data))
    obj = mm.LMMObjective(design, method="blocked")
    grad_opt, _, _ = minimize_with_gradient(obj.value_and_gradient, obj.theta0, obj.lower)
    bob = minimize(obj, obj.theta0, obj.lower)
    assert grad_opt.fval == pytest.approx(bob.fval, abs=OBJECTIVE_ATOL)
    np.testing.assert_allclose(grad_opt.x, bob.x, rtol=1e-3)
    assert grad_opt.n_evals < bob.n_evals


@pytest.mark.parametrize("optimizer", ["gradient", "bobyqa"])
def test_singular_fit_lands_on_the_boundary(optimizer):
    data = mm.datasets.load("Dyestuff2")
    design = mm.materialize(mm.parse_formula("Yield ~ 1 + (1 | Batch)"), data)
    with pytest.warns(mm.SingularFitWarning, match="Batch"):
        m = mm.fit_lmm(design, optimizer=optimizer) if optimizer == "bobyqa" else \
            mm.lmer("Yield ~ 1 + (1 | Batch)", data)
    assert m.theta[0] == 0.0
    assert m.is_singular()
    assert any("singular" in msg for msg in m.messages) or optimizer == "bobyqa"


def test_convergence_check_flags_an_early_stop():
    data = mm.datasets.load("sleepstudy")
    design = mm.materialize(mm.parse_formula("Reaction ~ Days + (Days | Subject)"), data)
    with pytest.warns(mm.ConvergenceWarning, match="Newton step"):
        m = mm.fit_lmm(design, optimizer="bobyqa", optimizer_settings={"maxeval": 8})
    assert not m.converged
    assert m.convergence.newton_decrement > 1e-3


def test_convergence_check_accepts_the_optimum():
    data = mm.datasets.load("sleepstudy")
    design = mm.materialize(mm.parse_formula("Reaction ~ Days + (Days | Subject)"), data)
    obj = mm.LMMObjective(design)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = mm.fit_lmm(design)
    rep = check_convergence(obj, m.theta, obj.lower, m.objective)
    assert rep.converged
    assert np.max(np.abs(rep.gradient)) < 1e-2


def test_user_start_and_optimizer_choice():
    data = mm.datasets.load("Penicillin")
    m1 = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data, optimizer="bobyqa")
    m2 = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data, start=[1.5, 3.5])
    assert m1.objective == pytest.approx(m2.objective, abs=OBJECTIVE_ATOL)
    with pytest.raises(ValueError, match="theta"):
        mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data, start=[1.0])
    with pytest.raises(ValueError, match="unknown optimizer"):
        mm.lmer("diameter ~ 1 + (1 | plate)", data, optimizer="newton")


def test_gradient_optimizer_choice():
    dye = mm.datasets.load("Dyestuff")
    m = mm.lmer("Yield ~ 1 + (1 | Batch)", dye, optimizer="gradient")   # small: dense by default
    assert m.objective_function.method == "blocked"
    assert m.objective == pytest.approx(mm.lmer("Yield ~ 1 + (1 | Batch)", dye).objective,
                                        abs=OBJECTIVE_ATOL)
    # vector-valued terms have the general gradient (any Lambda(theta))
    sleep = mm.datasets.load("sleepstudy")
    g = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, optimizer="gradient")
    b = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, optimizer="bobyqa")
    assert g.objective_function.method == "blocked"
    assert g.objective == pytest.approx(b.objective, abs=OBJECTIVE_ATOL)
    np.testing.assert_allclose(g.theta, b.theta, rtol=1e-3)


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_lme4_class_fits_run_with_one_blas_thread(monkeypatch):
    # OpenBLAS's spinning threads make small and medium fits several times slower on a
    # busy machine: lmer and glmer evaluate their objectives with one BLAS thread unless
    # the dense block reaches PARALLEL_MIN_SIZE columns
    from threadpoolctl import threadpool_limits

    import mixedmodels._threads as threads
    from mixedmodels.objective import GLMMObjective, LMMObjective

    seen = []
    # small LMMs evaluate value and gradient together (the dense path's projected BFGS)
    for cls, name in ((LMMObjective, "__call__"), (LMMObjective, "value_and_gradient"),
                      (GLMMObjective, "__call__")):
        original = getattr(cls, name)

        def spy(self, *args, _original=original, **kwargs):
            seen.append(_blas_threads())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, spy)
    sleep = mm.datasets.load("sleepstudy")
    with threadpool_limits(limits=2, user_api="blas"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, check_conv=False)
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mm.datasets.load("cbpp"), family="binomial")
        assert _blas_threads() == 2              # restored after the fits
        # large blocks on a machine with idle cores: threads as they are; on a busy one
        # (load average at the core count) one thread whatever the size
        monkeypatch.setattr(threads, "idle_cores", lambda: 8.0)
        monkeypatch.setattr(threads, "running_others", lambda: 0)
        with threads.blas_threads(threads.PARALLEL_MIN_SIZE):
            assert _blas_threads() == 2
        monkeypatch.setattr(threads, "idle_cores", lambda: 0.0)
        with threads.blas_threads(threads.PARALLEL_MIN_SIZE * 10):
            assert _blas_threads() == 1
    assert seen and set(seen) == {1}
    design = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep).design
    assert threads.dense_block_size(design.terms) == 18


def test_gradient_path_leaves_the_log_phase_for_a_vanishing_term(monkeypatch):
    # three terms on one factor, the third with no variance in the data: the log-theta
    # phase hands over to the bounded polish once that parameter is small and still pushed
    # down, and the fit lands on the bound with the derivative-free optimum's objective
    rng = np.random.default_rng(10)
    n, k = 1_200, 60
    g = rng.integers(0, k, n)
    x, z = rng.standard_normal(n), rng.standard_normal(n)
    y = 1.0 + x + rng.normal(0, 0.8, k)[g] + rng.normal(0, 0.4, k)[g] * x \
        + rng.standard_normal(n)
    data = pd.DataFrame({"y": y, "x": x, "z": z, "g": pd.Categorical(g)})
    formula = "y ~ x + (1 | g) + (0 + x | g) + (0 + z | g)"
    design = mm.materialize(mm.parse_formula(formula), data)
    obj = mm.LMMObjective(design, method="blocked")
    grad_opt, _, _ = minimize_with_gradient(obj.value_and_gradient, obj.theta0, obj.lower)
    bob = minimize(obj, obj.theta0, obj.lower)
    assert grad_opt.fval <= bob.fval + OBJECTIVE_ATOL
    assert grad_opt.x[2] == 0.0 and bob.x[2] == 0.0
    np.testing.assert_allclose(grad_opt.x, bob.x, rtol=1e-3)
    # without the early hand-over (the log phase creeping down to its floor) it costs more
    import mixedmodels.optim.gradient as gradient

    monkeypatch.setattr(gradient, "LOG_PHASE_HANDOVER", gradient.LOG_PHASE_FLOOR)
    slow, _, _ = minimize_with_gradient(obj.value_and_gradient, obj.theta0, obj.lower)
    assert grad_opt.fval <= slow.fval + OBJECTIVE_ATOL
    assert grad_opt.n_evals < slow.n_evals


def test_aliasing_qr_runs_with_one_blas_thread(monkeypatch):
    # design/fixed.py's rank check runs before any fit's thread control: with the
    # library's default threads its small QR spun idle threads and stalled under load
    from threadpoolctl import threadpool_limits

    import mixedmodels.design.fixed as fixed

    seen = []
    original = fixed.lapack.dgeqrf        # (the check calls LAPACK's QR directly)

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(fixed.lapack, "dgeqrf", spy)
    # above SERIAL_QR_SIZE entries under one thread; below it OpenBLAS's level-2 kernels
    # never start a thread, and the check skips the (costlier) switch
    n_big = fixed.SERIAL_QR_SIZE // 3 + 1
    for n, threads in ((n_big, 1), (50, 2)):
        X = np.column_stack([np.ones(n), np.arange(float(n)), np.arange(float(n)) * 2.0])
        with threadpool_limits(limits=2, user_api="blas"):
            keep = fixed.drop_aliased_columns(X)
            assert _blas_threads() == 2              # restored after the check
        assert keep.tolist() == [True, True, False]
        assert seen.pop() == threads

"""Keep the benchmark suite (benchmarks/) from rotting.

The runner is exercised end to end on the two smallest models in ``--quick`` mode, each in
its own subprocess as in a real run; the table, the simulated-data generator and the
speedup arithmetic are checked against visible.json and direct computation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reference_models import models, parse_python_field, reference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engines import load_data  # noqa: E402
from benchmarks.report import OBJECTIVE_TOL, enrich, markdown  # noqa: E402
from benchmarks.simulate import crossed, generate  # noqa: E402
from benchmarks.table import load_table  # noqa: E402

SMOKE_MODELS = ("dyestuff", "sleepstudy_reml")
#: The runner must finish the two tiny models well inside this (seconds).
SMOKE_TIMEOUT_S = 300
#: Sample variance of the simulated response around the fixed part vs. its expectation
#: sigma^2 + sum(group_sd^2): relative error allowed for 40,000 rows and 50+ levels per factor
#: (the sd of the estimate is about sqrt(2/50) * 0.16 / 1.8 ~ 2% of the total).
SIM_VARIANCE_RTOL = 0.1


def test_table_has_every_lmer_reference_model_with_its_formula():
    table = load_table()
    by_ref = {c.reference: c for c in table.cases if c.reference}
    for key in models("lmer"):
        assert key in by_ref, f"benchmarks/models.toml has no row for {key}"
        case = by_ref[key]
        formula, opts = parse_python_field(reference()[key]["python"])
        assert case.formula == formula
        assert case.data == reference()[key]["data"]
        assert case.options.get("REML", True) == (opts.get("REML", "True") != "False")


def test_table_has_the_simulated_crossed_designs_and_quick_skips_large_rows():
    table = load_table()
    big = table.simulated["crossed_1m"]
    assert big["n_obs"] == 1_000_000 and big["levels"] == [20_000, 2_000]
    assert {c.name for c in table.cases if c.data in table.simulated} >= {"crossed_1m"}
    quick = {c.name for c in table.select(quick=True)}
    assert "insteval_crossed" not in quick and "crossed_1m" not in quick
    assert set(SMOKE_MODELS) <= quick
    assert table.select(["insteval_crossed"], quick=True) == []


GLMER_ROW = """
[[model]]
name = "cbpp"
engine = "glmer"
data = "cbpp"
formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
family = "binomial"
options = { nAGQ = 1 }
reference = "cbpp_laplace"
"""


def test_table_format_takes_glmer_rows_and_rejects_bad_ones(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GLMER_ROW)
    (case,) = load_table(path).cases
    assert (case.engine, case.family, case.options) == ("glmer", "binomial", {"nAGQ": 1})
    bad = {
        "needs a `family`": GLMER_ROW.replace('family = "binomial"\n', ""),
        "engine 'nlme'": GLMER_ROW.replace('"glmer"', '"nlme"'),
        "takes no `family`": GLMER_ROW.replace('"glmer"', '"glmer_nb"'),
        "unknown field": GLMER_ROW + 'colour = "red"\n',
        "not an id": GLMER_ROW.replace("cbpp_laplace", "no_such_model"),
    }
    for message, text in bad.items():
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_table(path)


def test_simulated_design_is_seeded_balanced_and_has_the_stated_variances():
    n, levels = 40_000, [400, 50]
    a, b = crossed(n, levels, seed=7), crossed(n, levels, seed=7)
    assert all(np.array_equal(a.columns[k], b.columns[k]) for k in a.columns)
    assert not np.array_equal(a.columns["y"], crossed(n, levels, seed=8).columns["y"])
    for name, k in a.levels.items():
        counts = np.bincount(a.columns[name], minlength=k)
        assert counts.size == k and counts.max() - counts.min() <= 1
    # crossed, not nested: nested factors would give only max(levels) distinct pairs;
    # independent shuffles fill 400 * 50 * (1 - exp(-n / 20000)) ~ 17,300 of the 20,000
    pairs = np.unique(a.columns["g1"] * 50 + a.columns["g2"]).size
    assert pairs > 10 * max(levels)
    beta, sds, sigma = a.truth["beta"], a.truth["group_sd"], a.truth["sigma"]
    resid = a.columns["y"] - beta[0] - beta[1] * a.columns["x"]
    expected = sigma ** 2 + sum(s ** 2 for s in sds)
    assert np.var(resid) == pytest.approx(expected, rel=SIM_VARIANCE_RTOL)
    assert generate({"generator": "crossed", "n_obs": 100, "levels": [5],
                     "seed": 1}).n_obs == 100
    with pytest.raises(ValueError, match="levels"):
        crossed(10, [9], seed=1)


def test_speedup_and_objective_check_against_lme4_times():
    table = load_table()
    case = table.get("sleepstudy_reml")
    ref = reference()["sleepstudy_reml"]
    local = {"models": {"sleepstudy_reml": {"seconds": 0.02, "objective": 0.0}}}
    rec = enrich({"name": case.name, "status": "ok", "fit_s": 0.004,
                  "objective": ref["objective"] + 2 * OBJECTIVE_TOL}, case, local, {})
    assert rec["speedup_vs_recorded"] == pytest.approx(ref["seconds"] / 0.004)
    assert rec["speedup_vs_local"] == pytest.approx(5.0)
    assert rec["objective_ref_source"] == "visible.json"
    assert rec["objective_ok"] is False and rec["warnings"]


def test_quick_runner_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--repeat", "2",
           "--out", str(out)] + [a for m in SMOKE_MODELS for a in ("--only", m)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    rows = {r["name"]: r for r in doc["models"]}
    assert set(rows) == set(SMOKE_MODELS)
    for name, row in rows.items():
        assert row["status"] == "ok", row
        assert row["repeats"] == 2 and len(row["fit_s_all"]) == 2
        assert row["objective_ok"], (name, row.get("objective_diff"))
        assert 0 < row["optimizer_s"] < row["fit_s"] < SMOKE_TIMEOUT_S
        assert row["n_evals"] > 0 and row["n_evals_total"] >= row["n_evals"]
        assert 0 < row["eval_s"] < row["optimizer_s"]
        assert row["child_maxrss_mb"] > 0 and row["traced_peak_mb"] > 0
        assert row["lme4_recorded_s"] == reference()[name]["seconds"]
        assert row["speedup_vs_recorded"] == pytest.approx(row["lme4_recorded_s"]
                                                           / row["fit_s"])
        assert row["versions"]["numpy"] == np.__version__
    md = out.with_suffix(".md").read_text()
    assert md == markdown(doc)
    for name in SMOKE_MODELS:
        assert f"| {name} |" in md


def test_corpus_rows_name_their_r_family_and_tool():
    table = load_table()
    assert len(table.cases) >= 40
    assert {c.engine for c in table.cases} == {"lmer", "glmer", "glmer_nb", "glmmtmb"}
    gamma = table.get("gammasim_gamma")
    assert gamma.r_family_call == 'Gamma(link = "log")' and gamma.reference_tool == "lme4"
    tmb = table.get("tmb_sal_zinb2")
    assert tmb.r_family_call == "nbinom2()" and tmb.reference_tool == "glmmTMB"
    assert table.get("cbpp_laplace").r_family_call == "binomial()"
    # nAGQ 0, 1 and > 1 all present
    assert {c.options.get("nAGQ", 1) for c in table.cases if c.engine == "glmer"} >= {0, 1, 25}


def test_simulated_glmm_responses_keep_the_other_columns():
    base = crossed(2_000, [40, 8], seed=3)
    for response in ("binomial", "poisson"):
        sim = crossed(2_000, [40, 8], seed=3, response=response, covariates=2)
        for k in ("x", "g1", "g2"):
            assert np.array_equal(sim.columns[k], base.columns[k])
        y = sim.columns["y"]
        assert np.all(y == np.round(y)) and y.min() >= 0
        assert set(sim.columns) >= {"z1", "z2"}
    assert set(np.unique(crossed(500, [10], seed=1, response="binomial").columns["y"])) \
        <= {0.0, 1.0}
    with pytest.raises(ValueError, match="response"):
        crossed(100, [5], seed=1, response="gamma")


def test_glmm_engines_fit_and_report_their_optimizer():
    from benchmarks.engines import ENGINES, opt_summary

    table = load_table()
    data = load_data(table, "cbpp")
    for name in ("cbpp_laplace", "tmb_cbpp_binom"):
        case = table.get(name)
        res = ENGINES[case.engine](case, data)
        opt = opt_summary(res)
        assert opt.n_evals > 0 and opt.seconds > 0
        assert res.objective == pytest.approx(reference()["cbpp_laplace"]["objective"],
                                              abs=OBJECTIVE_TOL)


def test_corpus_report_geometric_mean_and_slow_models():
    from benchmarks.corpus import corpus_markdown

    rows = [{"name": "a", "engine": "lmer", "formula": "y ~ 1 + (1 | g)", "status": "ok",
             "n_obs": 10, "fit_s": 0.1, "optimizer_s": 0.02, "n_evals": 10,
             "lme4_local_n_evals": 10, "lme4_local_s": 0.15, "speedup_vs_local": 1.5,
             "fit_s_1thread": 0.1},
            {"name": "b", "engine": "glmer", "formula": "y ~ 1 + (1 | g)", "status": "ok",
             "n_obs": 10, "fit_s": 0.1, "optimizer_s": 0.09, "n_evals": 40,
             "lme4_local_n_evals": 10, "lme4_local_s": 0.6, "speedup_vs_local": 6.0,
             "fit_s_1thread": 0.1}]
    md = corpus_markdown({"meta": {"loadavg_start": 1.0, "loadavg_end": 1.0},
                          "models": rows})
    assert "Geometric mean speedup: 3.00×" in md          # sqrt(1.5 * 6)
    slow = md.split("and why")[1]
    assert "**a**" in slow and "**b**" not in slow and "setup-dominated" in slow

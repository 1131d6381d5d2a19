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
        "engine 'glmmtmb'": GLMER_ROW.replace('"glmer"', '"glmmtmb"'),
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

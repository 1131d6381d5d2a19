"""Display: readable reprs (no arrays, no dataclass dumps), HTML tables, Markdown and LaTeX
without extra packages, progress bars."""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.display import Table, frame_table

#: A readable repr fits on a screen or two, whatever the number of draws behind it.
MAX_REPR_CHARS = 3000


@pytest.fixture(scope="module")
def results():
    sleep = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep)
        m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
        gm = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                      mm.datasets.load("cbpp"))
        out = {
            "lmer": m2, "glmer": gm, "lm": mm.lm("Reaction ~ Days", sleep),
            "glm": mm.glm("cbind(incidence, size - incidence) ~ period",
                          mm.datasets.load("cbpp")),
            "summary": m2.summary(), "summary_ddf": m2.summary(ddf="satterthwaite"),
            "glmm_summary": gm.summary(), "varcorr": m2.varcorr,
            "anova": mm.anova(m2, m1), "pb_test": mm.pb_test(m2, m1, nsim=40, seed=1),
            "rlrt": mm.rlrt(m2, m1, seed=1),           # 10,000 null draws
            "bootstrap": m1.bootstrap(nsim=20, seed=1),
            "profile": m1.profile(which=["sigma"]), "opt": m2.opt,
            "convergence": m2.convergence, "recipe": m2.recipe,
        }
    return out


def test_reprs_are_readable(results):
    for name, obj in results.items():
        text = repr(obj)
        assert "array(" not in text and "np.float64" not in text, name
        assert not re.search(r"\w+\(\w+=", text) or name == "recipe", name  # no field dumps
        assert len(text) < MAX_REPR_CHARS, (name, len(text))
    assert "PBtest" in repr(results["pb_test"])
    assert "10000" in repr(results["rlrt"])
    assert repr(results["summary"]) == str(results["summary"])
    assert repr(results["lmer"]).startswith("<LinearMixedModelResult 'Reaction ~ Days")


def test_html_are_tables(results):
    for name in ("lmer", "glmer", "lm", "glm", "summary", "summary_ddf", "glmm_summary",
                 "varcorr", "anova", "pb_test", "rlrt", "bootstrap", "profile"):
        html = results[name]._repr_html_()
        assert "<table" in html and "<td" in html and "</table>" in html, name
        assert html.count("<table") == html.count("</table>"), name
    s = results["summary"]._repr_html_()
    assert "<caption>Fixed effects</caption>" in s and "<caption>Random effects</caption>" in s
    assert "Fixed effects:" not in s         # the caption replaces the text heading


def test_markdown_latex_need_no_extras(results, monkeypatch):
    # pandas' to_markdown needs tabulate and to_latex jinja2: ours need neither
    monkeypatch.setitem(sys.modules, "tabulate", None)
    monkeypatch.setitem(sys.modules, "jinja2", None)
    for name in ("summary", "summary_ddf", "glmm_summary", "varcorr", "anova", "pb_test",
                 "rlrt", "bootstrap", "profile"):
        md = results[name].to_markdown()
        tex = results[name].to_latex()
        assert "| ---: |" in md or "---: |" in md, name
        assert r"\begin{tabular}" in tex and r"\end{tabular}" in tex, name
    assert "Pr(>\\|t\\|)" in results["summary_ddf"].to_markdown()
    assert results["lmer"].to_markdown() == results["summary"].to_markdown()


def test_table_renderers_escape():
    t = Table(("a|b", "x & y"), (("<i>", "50%_"),), "lr", "T_1")
    assert "&lt;i&gt;" in t.to_html() and "a|b" in t.to_html()
    assert r"a\|b" in t.to_markdown()
    tex = t.to_latex()
    assert r"x \& y" in tex and r"50\%\_" in tex and r"\caption{T\_1}" in tex
    with pytest.raises(ValueError, match="one cell per header"):
        Table(("a", "b"), (("1",),))
    import pandas as pd

    ft = frame_table(pd.DataFrame({"x": [1.5, np.nan], "s": ["u", "v"]}, index=["r1", "r2"]))
    assert ft.rows == (("r1", "1.5", "u"), ("r2", "", "v")) and ft.align == "lrl"


def test_summary_ddf_columns(results):
    s = results["summary_ddf"]
    assert list(s.coefficients.columns) == ["Estimate", "Std. Error", "df", "t value",
                                            "Pr(>|t|)"]
    text = str(s)
    assert "t-tests use Satterthwaite's method" in text and "Signif. codes" in text
    m = results["lmer"]
    kr = m.summary(ddf="kenward-roger")
    np.testing.assert_allclose(kr.coefficients["df"], m.coef_table("kenward-roger")["df"])
    assert "Kenward-Roger" in str(kr)
    assert "Pr(" not in str(m.summary()) and "df" not in m.summary().coefficients
    with pytest.raises(ValueError, match="ddf"):
        m.summary(ddf="exact")
    with pytest.raises(ValueError, match="z"):
        results["glmer"].summary(ddf="satterthwaite")


def test_progress_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    from mixedmodels.inference.replicates import run_replicates

    run_replicates(lambda i: i, 7, progress=True, label="boot")
    err = capsys.readouterr().err
    assert "boot" in err and "7/7" in err


def test_progress_fallback_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    from mixedmodels.inference.replicates import run_replicates

    run_replicates(lambda i: i, 300, progress=True, label="boot")
    err = capsys.readouterr().err
    # throttled: a few updates, not one per replicate (the notebook complaint)
    assert err.count("\r") < 10 and "boot: 300/300 replicates" in err
    run_replicates(lambda i: i, 5, progress=None, label="boot")    # not a terminal
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress"):
        run_replicates(lambda i: i, 5, progress="yes")


def test_profile_progress(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    m = mm.lmer("Reaction ~ Days + (1|Subject)", mm.datasets.load("sleepstudy"), REML=False)
    m.profile(which=["sigma"], progress=True)
    assert "profile: 1/1 parameters" in capsys.readouterr().err

"""The console script: lme4's summary or JSON, every input format, errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import doors as cli_doors
from mixedmodels.cli import main
from mixedmodels.cli.report import fit_report
from reference_models import r_name, reference

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
#: Our optimum against lme4's (tests/test_glmer_parity.py holds the parity itself).
PARITY_TOL = 2e-3
#: The JSON carries the fit's own floats: only the decimal round trip may differ.
ROUND_TRIP_TOL = 1e-12


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, argv, status: int = 2) -> str:
    assert main(argv) == status
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("mixedmodels: error: "), err
    assert "Traceback" not in err and captured.out == ""
    return err


# -- fits -----------------------------------------------------------------------------
def test_fit_bundled(capsys):
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"]) == 0
    out = capsys.readouterr().out
    assert "REML criterion at convergence: 1743.6" in out
    assert "Subject  Intercept" in out


def test_fit_ml_csv(tmp_path, capsys):
    path = tmp_path / "d.csv"
    mm.datasets.load("Dyestuff").to_csv(path, index=False)
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path), "--ml"]) == 0
    out = capsys.readouterr().out
    assert "logLik" in out and "-163.7" in out


def test_glmer_cbind_json_matches_lme4(capsys):
    ref = reference()["cbpp_laplace"]
    rep = _json(capsys, ["fit", CBPP, "--data", "cbpp", "--family", "binomial", "--json"])
    assert rep["model"] == "glmer" and rep["family"] == "binomial" and rep["link"] == "logit"
    assert rep["method"] == "Laplace" and rep["nobs"] == ref["nobs"]
    assert rep["ngroups"] == ref["ngrps"]
    est = {r_name(r["term"]): r["estimate"] for r in rep["fixed_effects"]}
    se = {r_name(r["term"]): r["std_error"] for r in rep["fixed_effects"]}
    for name, value in ref["beta"].items():
        assert est[name] == pytest.approx(value, abs=PARITY_TOL)
        assert se[name] == pytest.approx(ref["se"][name], rel=2e-2)
    assert rep["fit"]["objective"] == pytest.approx(ref["objective"], abs=PARITY_TOL)
    assert rep["fit"]["aic"] == pytest.approx(ref["AIC"], abs=PARITY_TOL)
    (herd,) = rep["variance_components"]
    assert herd["group"] == "herd" and herd["sdcor"] == pytest.approx(ref["theta"], abs=1e-3)
    assert rep["fit"]["sigma"] == 1.0


def test_lmer_json_is_the_fit(capsys):
    df = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", df, REML=False)
    rep = _json(capsys, ["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy",
                         "--ml", "--json"])
    assert rep["method"] == "ML" and rep["fit"]["objective_name"] == "deviance"
    assert [r["term"] for r in rep["fixed_effects"]] == list(m.fixef.index)
    np.testing.assert_allclose([r["estimate"] for r in rep["fixed_effects"]], m.fixef,
                               rtol=ROUND_TRIP_TOL)
    np.testing.assert_allclose([r["std_error"] for r in rep["fixed_effects"]], m.se,
                               rtol=ROUND_TRIP_TOL)
    np.testing.assert_allclose(rep["vcov"]["matrix"], m.vcov.to_numpy(), rtol=ROUND_TRIP_TOL)
    vc = m.varcorr.as_frame()
    np.testing.assert_allclose([r["sdcor"] for r in rep["variance_components"]], vc["sdcor"],
                               rtol=ROUND_TRIP_TOL)
    assert [r["group"] for r in rep["variance_components"]] == list(vc["grp"])
    assert rep["variance_components"][-1] == {"group": "Residual", "var1": None, "var2": None,
                                              "vcov": pytest.approx(m.sigma ** 2),
                                              "sdcor": pytest.approx(m.sigma)}
    for key, value in (("loglik", m.loglik), ("aic", m.aic), ("bic", m.bic),
                       ("sigma", m.sigma)):
        assert rep["fit"][key] == pytest.approx(value, rel=ROUND_TRIP_TOL)
    assert rep["fit"]["objective"] == pytest.approx(reference()["sleepstudy_ml"]["objective"],
                                                    abs=1e-3)


def test_report_nonfinite_is_null():
    from mixedmodels.cli.report import _number

    assert [_number(x) for x in (np.nan, np.inf, -np.inf, None)] == [None] * 4
    assert _number(np.int64(3)) == 3 and isinstance(_number(np.int64(3)), int)
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    rep = fit_report(m, formula="Yield ~ 1 + (1 | Batch)", front_door="lmer", data="x")
    text = json.dumps(rep, allow_nan=False)            # raises on NaN / inf
    assert json.loads(text)["messages"] == list(m.messages) and m.messages


def test_nagq_weights_offset_pass_through(tmp_path, capsys):
    agq = mm.glmer(CBPP, mm.datasets.load("cbpp"), family="binomial", nAGQ=5)
    rep = _json(capsys, ["fit", CBPP, "--data", "cbpp", "--family", "binomial", "--nagq", "5",
                         "--json"])
    assert rep["nAGQ"] == 5
    assert rep["fit"]["objective"] == pytest.approx(agq.objective, rel=ROUND_TRIP_TOL)

    cbpp = mm.datasets.load("cbpp").assign(logsize=lambda d: np.log(d["size"]))
    sleep = mm.datasets.load("sleepstudy").assign(w=lambda d: 1.0 + d["Days"] % 3)
    cases = [(cbpp, "incidence ~ C(period) + (1 | herd)", ["--family", "poisson",
              "--offset", "logsize"], lambda f, d: mm.glmer(f, d, family="poisson",
                                                             offset="logsize")),
             (sleep, "Reaction ~ Days + (1 | Subject)", ["--weights", "w"],
              lambda f, d: mm.lmer(f, d, weights="w"))]
    for frame, formula, options, fit in cases:
        path = tmp_path / "d.csv"
        frame.to_csv(path, index=False)
        expected = fit(formula, pd.read_csv(path))
        rep = _json(capsys, ["fit", formula, "--data", str(path), *options, "--json"])
        assert rep["fit"]["objective"] == pytest.approx(expected.objective,
                                                        rel=ROUND_TRIP_TOL)
        unweighted = _json(capsys, ["fit", formula, "--data", str(path),
                                    *options[:-2], "--json"])
        assert unweighted["fit"]["objective"] != pytest.approx(expected.objective)


def test_negative_binomial_family_selects_glmer_nb():
    door = cli_doors.choose_door(None, {"family": "negative_binomial"})
    assert door.name == "glmer_nb"
    assert cli_doors.fit_keywords(door, {"family": "negative_binomial", "nagq": 1}) == {
        "nAGQ": 1}
    assert cli_doors.choose_door(None, {"link": "probit"}).name == "glmer"
    assert cli_doors.choose_door(None, {"ml": True}).name == "lmer"
    assert cli_doors.fit_keywords(cli_doors.FRONT_DOORS["lmer"], {"ml": True}) == {
        "REML": False}


def test_glmmtmb_door(capsys):
    """--zi / --disp / a glmmTMB-only family select mm.glmmtmb; its options are refused
    elsewhere, naming the door that takes them."""
    import json

    assert main(["fit", "count ~ mined + (1 | site)", "--data", "Salamanders", "--family",
                 "nbinom2", "--zi", "~ mined", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = mm.glmmtmb("count ~ mined + (1 | site)", mm.datasets.load("Salamanders"),
                     family="nbinom2", ziformula="~ mined")
    assert out["model"] == "glmmtmb" and out["family"] == "nbinom2"
    assert out["fit"]["objective"] == pytest.approx(ref.objective, rel=1e-10)
    assert out["fixed_effects_zi"]["Intercept"] == pytest.approx(ref.fixef_zi.iloc[0])
    assert main(["fit", "count ~ mined + (1 | site)", "--data", "Salamanders", "--family",
                 "nbinom1"]) == 0
    assert "Family: nbinom1" in capsys.readouterr().out
    err = _error(capsys, ["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--model",
                          "lmer", "--zi", "~1"])
    assert "--zi does not apply to --model lmer; it is an option of --model glmmtmb" in err
    err = _error(capsys, ["fit", "y ~ 1 + (1 | g)", "--data", "Dyestuff", "--model",
                          "glmmtmb", "--family", "nosuch"])
    assert "unknown family 'nosuch' for --model glmmtmb" in err


# -- input formats ----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "writer", "extra"), [
    ("d.csv", lambda f, p: f.to_csv(p, index=False), []),
    ("d.tsv", lambda f, p: f.to_csv(p, sep="\t", index=False), []),
    ("d.csv.gz", lambda f, p: f.to_csv(p, index=False), []),
    ("d.txt", lambda f, p: f.to_csv(p, sep="|", index=False), []),          # sniffed
    ("d.dat", lambda f, p: f.to_csv(p, sep=" ", index=False), []),          # whitespace
    ("d.csv", lambda f, p: f.to_csv(p, sep=";", index=False), ["--sep", ";"]),
    ("d.data", lambda f, p: f.to_csv(p, sep="\t", index=False), ["--sep", "tab"]),
    ("d.parquet", lambda f, p: f.to_parquet(p), []),
])
def test_input_formats_give_the_same_fit(tmp_path, capsys, name, writer, extra):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    frame = mm.datasets.load("Dyestuff")
    path = tmp_path / name
    writer(frame, path)
    rep = _json(capsys, ["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path), *extra,
                         "--json"])
    assert rep["fit"]["objective"] == pytest.approx(reference()["dyestuff"]["objective"],
                                                    abs=1e-6)
    assert rep["ngroups"] == {"Batch": 6}


def test_latin1_with_encoding(tmp_path, capsys):
    frame = mm.datasets.load("Dyestuff")
    frame["Batch"] = frame["Batch"].astype(str) + "é"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    err = _error(capsys, ["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path)])
    assert "--encoding" in err
    rep = _json(capsys, ["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path),
                         "--encoding", "latin-1", "--json"])
    assert rep["ngroups"] == {"Batch": 6}


def test_parquet_without_pyarrow(tmp_path, capsys, monkeypatch):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 not really")
    for module in ("pyarrow", "fastparquet"):
        monkeypatch.setitem(sys.modules, module, None)     # import now raises ImportError
    err = _error(capsys, ["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path)])
    assert "needs pyarrow: pip install pyarrow" in err


# -- errors: one line on stderr, exit status 2 ----------------------------------------
def _files(tmp_path):
    cbpp = mm.datasets.load("cbpp")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    parquet_as_csv = tmp_path / "table.csv"
    parquet_as_csv.write_bytes(b"PAR1\x15\x04\x15\x80\x01\x15\x80\x01\x4c\x15\x02\x15\x00")
    semicolon = tmp_path / "semi.csv"
    cbpp.to_csv(semicolon, sep=";", index=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return {"binary": binary, "parquet_as_csv": parquet_as_csv, "semicolon": semicolon,
            "empty": empty, "missing": tmp_path / "absent.csv", "dir": tmp_path}


ERROR_CASES = [
    # (argv after "fit", data key or data set, expected fragment)
    (["Reaction ~ Days + (Days | Subject"], "sleepstudy", "unclosed '('"),
    (["Reaction ~ Dayz + (1 | Subject)"], "sleepstudy", "did you mean 'Days'"),
    (["~ Days + (1 | Subject)"], "sleepstudy", "no response"),
    (["y ~ x + (1 | g)"], "missing", "not found"),
    (["y ~ x + (1 | g)"], "dir", "is a directory"),
    (["y ~ x + (1 | g)"], "binary", "is not valid text"),
    (["y ~ x + (1 | g)"], "parquet_as_csv", "a parquet file: give it a .parquet extension"),
    (["y ~ x + (1 | g)"], "empty", "is empty"),
    ([CBPP, "--family", "binomial"], "semicolon", "pass --sep ';'"),
    (["y ~ x + (1 | g)"], "sleepstudyy", "did you mean 'sleepstudy'"),
    ([CBPP, "--family", "binomal"], "cbpp", "unknown family 'binomal' (did you mean 'binomial'"),
    ([CBPP, "--family", "poisson", "--link", "logit"], "cbpp", "does not support the 'logit'"),
    ([CBPP, "--family", "binomial", "--ml"], "cbpp", "--ml does not apply to --model glmer"),
    ([CBPP], "cbpp", "add --family binomial"),
    ([CBPP, "--family", "binomial", "--nagq", "-1"], "cbpp", "invalid non-negative integer"),
    ([CBPP, "--family", "binomial", "--model", "glmer_nb"], "cbpp",
     "--family binomial needs --model glmer"),
    ([CBPP, "--model", "glmmm"], "cbpp", "invalid choice: 'glmmm'"),
    ([CBPP, "--family", "binomial", "--weights", "w"], "cbpp", "weights column 'w' not found"),
    (["Reaction ~ Days"], "sleepstudy", "no random-effects term"),
]


@pytest.mark.parametrize(("argv", "data", "fragment"), ERROR_CASES,
                         ids=[c[2][:30] for c in ERROR_CASES])
def test_errors_are_one_line(tmp_path, capsys, argv, data, fragment):
    files = _files(tmp_path)
    data_arg = str(files[data]) if data in files else data
    err = _error(capsys, ["fit", argv[0], "--data", data_arg, *argv[1:]])
    assert fragment in err


def test_usage_errors_are_one_line(capsys):
    assert "required: --data" in _error(capsys, ["fit", "y ~ x + (1 | g)"])
    assert "required: {fit,datasets}" in _error(capsys, [])
    assert "invalid choice" in _error(capsys, ["fitt"])


def test_unexpected_error(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mm, "lmer", broken)
    argv = ["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"]
    err = _error(capsys, argv, status=1)
    assert "unexpected RuntimeError: boom" in err and "--traceback" in err
    with pytest.raises(RuntimeError, match="boom"):
        main([*argv, "--traceback"])


def test_warnings_are_one_line_each(capsys):
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff2"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines and all(line.startswith("mixedmodels: warning: ") for line in lines)
    assert any("singular" in line for line in lines)
    assert "Random effects:" in captured.out


def test_help_names_real_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--list" not in out and "mixedmodels datasets" in out
    for option in cli_doors.OPTIONS.values():
        assert option.flag in out


# -- listing, version, module entry points ------------------------------------------------
def test_datasets_listing(capsys):
    assert main(["datasets"]) == 0
    assert capsys.readouterr().out.split() == mm.datasets.names()


def test_version_in_process(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mixedmodels {mm.__version__}"


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "mixedmodels", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"mixedmodels {mm.__version__}"
    listing = subprocess.run([sys.executable, "-m", "mixedmodels.cli", "datasets"],
                             capture_output=True, text=True, check=True).stdout
    assert "sleepstudy" in listing.split()

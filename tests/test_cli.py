"""The console script prints lme4's summary and reports bad input without a traceback."""

from __future__ import annotations

import subprocess
import sys

from mixedmodels.cli import main


def test_fit_bundled(capsys):
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"]) == 0
    out = capsys.readouterr().out
    assert "REML criterion at convergence: 1743.6" in out
    assert "Subject  Intercept" in out


def test_fit_ml_csv(tmp_path, capsys):
    import mixedmodels as mm

    path = tmp_path / "d.csv"
    mm.datasets.load("Dyestuff").to_csv(path, index=False)
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path), "--ml"]) == 0
    out = capsys.readouterr().out
    assert "logLik" in out and "-163.7" in out


def test_bad_column(capsys):
    assert main(["fit", "Reaction ~ Dayz + (1 | Subject)", "--data", "sleepstudy"]) == 2
    err = capsys.readouterr().err
    assert "'Dayz'" in err and "did you mean 'Days'" in err


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "mixedmodels.cli", "datasets"],
                         capture_output=True, text=True, check=True).stdout
    assert "sleepstudy" in out.split()

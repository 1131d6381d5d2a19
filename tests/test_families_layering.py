"""families/ are pure densities: they import nothing from design/, objective/ or fitting/
(imports inside functions included).

``families/response.py`` (the lme4-class response parser, which reads the model frame) is
the one known exception; it belongs in design/ and is skipped here until it moves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FAMILIES = Path(__file__).resolve().parents[1] / "src" / "mixedmodels" / "families"
FORBIDDEN = ("design", "objective", "fitting")
KNOWN_EXCEPTIONS = {"response.py"}


def _imported_packages(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level >= 2:                       # from ..x import y
                out.add(mod.split(".")[0])
            elif node.level == 0 and mod.startswith("mixedmodels."):
                out.add(mod.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mixedmodels."):
                    out.add(alias.name.split(".")[1])
    return out


@pytest.mark.parametrize("path", sorted(p for p in FAMILIES.glob("*.py")
                                        if p.name not in KNOWN_EXCEPTIONS),
                         ids=lambda p: p.name)
def test_families_import_no_model_layers(path):
    bad = _imported_packages(path) & set(FORBIDDEN)
    assert not bad, f"{path.name} imports {sorted(bad)}"

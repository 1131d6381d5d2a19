"""The layering rules of DESIGN.md, checked on every module (imports inside functions too).

* results/ imports neither inference/ nor fitting/ (user-facing inference methods live in
  the facade :mod:`mixedmodels.methods`, above both);
* inference/ imports no fitting/ (it refits through the results' FitRecipe);
* families/ import no design/, objective/, fitting/ (pure densities);
* linalg/, covariance/ and parameters/ know no objective/ (nor anything above);
* design/ knows no objective/; formula/ knows no data (no design/ and above);
* backends/ (the Dask data backend) sits beside fitting/: only the front doors and the
  package's namespace import it; it imports no inference/ or cli/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mixedmodels"
ABOVE_MODEL = {"objective", "fitting", "results", "inference", "methods", "term_methods", "cli",
               "backends"}
FORBIDDEN = {
    "results": {"inference", "fitting", "cli", "backends"},
    "inference": {"fitting", "cli", "backends"},
    "backends": {"inference", "cli"},
    "families": {"design"} | ABOVE_MODEL,
    "linalg": {"design"} | ABOVE_MODEL,
    "covariance": {"design"} | ABOVE_MODEL,
    "parameters": {"design"} | ABOVE_MODEL,
    "design": ABOVE_MODEL,
    "formula": {"design"} | ABOVE_MODEL,
    "objective": {"fitting", "results", "inference", "methods", "term_methods", "cli",
                  "backends"},
    # residual structures: specs, their criterion and their results (a results-level
    # package: inference through the methods facade)
    "rside": {"fitting", "inference", "cli", "backends"},
}


def _imports(source: str, rel: tuple[str, ...]) -> set[str]:
    """Top-level subpackages of mixedmodels that the module at ``rel`` (its path parts
    inside the package) imports."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0:
                if mod.startswith("mixedmodels."):
                    out.add(mod.split(".")[1])
                continue
            base = list(rel[:-1])[: len(rel) - node.level]   # the importing package
            target = base + (mod.split(".") if mod else [])
            if target:
                out.add(target[0])
            elif node.names:                                  # from .. import x
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names
                       if a.name.startswith("mixedmodels."))
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.relative_to(PACKAGE).parts[0] in FORBIDDEN)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layering(path):
    layer = path.relative_to(PACKAGE).parts[0]
    rel = path.relative_to(PACKAGE).parts
    bad = _imports(path.read_text(encoding="utf-8"), rel) & FORBIDDEN[layer]
    assert not bad, f"{path.relative_to(PACKAGE)} ({layer}/) imports {sorted(bad)}"


def test_the_checker_sees_violations():
    """Relative and absolute imports of a layer, inside functions too, are seen."""
    rel = ("results", "probe.py")
    assert _imports("def f():\n    from ..fitting import glmer\n", rel) == {"fitting"}
    assert _imports("import mixedmodels.inference.anova\n", rel) == {"inference"}
    assert _imports("from .. import fitting\n", rel) == {"fitting"}
    assert _imports("from .base import X\n", rel) == {"results"}

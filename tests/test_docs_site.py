"""The documentation site's sources: every public member has an API entry, every page is in
the navigation, and the docstring conversion for mkdocstrings does what it says.

Building the site itself (``mkdocs build --strict``) is a step of .ci/run, after the tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import types
from pathlib import Path

import pytest

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)
NAV_ENTRY = re.compile(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w/.-]+\.md)\s*$", re.MULTILINE)
#: Pages the mkdocs hook generates (tools/docs/hooks.py), not files under docs/.
GENERATED = {"index.md"} | {f"benchmarks/{p.name}"
                            for p in (ROOT / "benchmarks" / "results").glob("*.md")}


def _resolve(dotted: str):
    """The object a ``::: dotted.path`` directive documents (the longest importable module,
    then attributes)."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _documented() -> list:
    return [_resolve(d) for page in (DOCS / "api").glob("*.md")
            for d in DIRECTIVE.findall(page.read_text(encoding="utf-8"))]


def test_every_public_member_has_an_api_entry():
    documented = _documented()
    modules = [m for m in documented if isinstance(m, types.ModuleType)]
    missing = []
    for module, names in ((mm, mm.__all__), (mm.families, mm.families.__all__),
                          (mm.datasets, mm.datasets.__all__)):
        if module in modules and module is not mm:
            continue              # a module directive renders its whole __all__
        for name in names:
            obj = getattr(module, name)
            if name.startswith("__") or obj in modules:
                continue
            if not any(obj is d for d in documented):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"no ::: entry in docs/api/*.md for {missing}"


def test_nav_lists_every_page():
    nav = set(NAV_ENTRY.findall((ROOT / "mkdocs.yml").read_text(encoding="utf-8")))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - nav == set(), "pages missing from the mkdocs.yml nav"
    assert nav - pages - GENERATED == set(), "nav entries without a page"


def _griffe_rst():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_rst",
                                                  ROOT / "tools" / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rst_roles_and_math_become_markdown():
    to_markdown = _griffe_rst().to_markdown
    assert to_markdown("See :func:`~mixedmodels.lmer` and :class:`mixedmodels.Design`.") == (
        "See `lmer` and `mixedmodels.Design`.")
    assert to_markdown("The rate :math:`\\lambda`.") == "The rate `\\lambda`."
    text = "Criterion\n\n.. math::\n\n    d = -2 \\log L\n\nwhere L is the likelihood."
    assert to_markdown(text) == ("Criterion\n\n```text\nd = -2 \\log L\n```\n\n"
                                 "where L is the likelihood.")
    assert to_markdown(".. math:: a = b") == "```text\na = b\n```\n"

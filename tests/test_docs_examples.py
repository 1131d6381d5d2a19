"""Run every ```python block of the README and docs/**/*.md, so the docs never drift.

Blocks of one file run in order in one namespace, as a reader would type them. A block
followed directly by an output block (```` ```text title="Output" ````) must print exactly
that text (trailing blanks aside): outputs shown in the docs are the package's own.

A page about an optional extra starts with ``<!-- requires: dask, distributed -->``: its
examples run when those modules are installed and are skipped otherwise (the default test
install leaves the extras out).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r'```python\n(.*?)```(?:[ \t]*\n(?:[ \t]*\n)*```text title="Output"\n(.*?)```)?',
                   re.DOTALL)

REQUIRES = re.compile(r"<!--\s*requires:\s*([\w., ]+?)\s*-->")


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(path):
    text = path.read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    if not blocks:
        pytest.skip(f"{path.name} has no python examples")
    required = REQUIRES.search(text)
    if required:
        for module in required.group(1).split(","):
            pytest.importorskip(module.strip())
    namespace: dict = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (code, expected) in enumerate(blocks):
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                raise AssertionError(f"{path.name} block {i} failed:\n{code}") from exc
            if expected:
                assert _normalized(out.getvalue()) == _normalized(expected), (
                    f"{path.name} block {i} printed something else than its Output block")


def test_output_blocks_are_checked():
    page = '```python\nprint(1 + 1)\n```\n\n```text title="Output"\n2\n```\n'
    ((code, expected),) = BLOCK.findall(page)
    assert code == "print(1 + 1)\n" and expected == "2\n"

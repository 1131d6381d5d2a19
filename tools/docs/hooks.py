"""MkDocs hooks: the README as the home page, the benchmark reports as pages.

The README and ``benchmarks/results/*.md`` live outside ``docs/`` (GitHub shows them where
they are), so the site takes them in at build time instead of keeping copies that drift.
Their repository-relative links are rewritten to the pages' places in the site.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks" / "results"
#: (pattern, replacement) for links of the README: docs/x.md is x.md in the site.
_LINKS = ((re.compile(r"\]\(docs/"), "]("),
          (re.compile(r"\]\(benchmarks/results/"), "](benchmarks/"))


def _readme() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for pattern, replacement in _LINKS:
        text = pattern.sub(replacement, text)
    return text


#: A code span in the rendered HTML (table cells write a backslash-pipe inside code, as
#: GitHub wants; Python-Markdown keeps the backslash there).
_CODE = re.compile(r"<code>(.*?)</code>", re.DOTALL)


def on_page_content(html: str, page, config, files) -> str:
    """Drop the backslash of ``\\|`` inside code spans (a pipe escaped for the table)."""
    return _CODE.sub(lambda m: "<code>" + m.group(1).replace("\\|", "|") + "</code>", html)


def on_files(files: Files, config) -> Files:
    """Add ``index.md`` (the README) and ``benchmarks/*.md`` as generated pages."""
    files.append(File.generated(config, "index.md", content=_readme()))
    for path in sorted(BENCHMARKS.glob("*.md")):
        files.append(File.generated(config, f"benchmarks/{path.name}",
                                    content=path.read_text(encoding="utf-8")))
    return files

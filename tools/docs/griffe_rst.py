"""Griffe extension: the reST bits of our numpydoc docstrings, as Markdown for mkdocstrings.

The docstrings are written for readers of the code and for numpydoc: Sphinx roles
(:func:`~mixedmodels.lmer`) and ``.. math::`` blocks. mkdocstrings renders Markdown, so
roles become code spans and maths becomes a fenced block of its LaTeX source (the site
loads no MathJax: it must build and read offline).
"""

from __future__ import annotations

import re
import textwrap

import griffe

#: :role:`target` and :role:`~dotted.target` (the tilde keeps the last component only).
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|math|ref):`(~?)([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>.*)$")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _math_blocks(text: str) -> str:
    """``.. math:: expr`` (inline or with an indented body) -> a fenced ``text`` block."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match.group("indent"))
        body = [match.group("inline")] if match.group("inline").strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        formula = textwrap.dedent("\n".join(body)).strip("\n")
        pad = " " * indent
        out.extend([f"{pad}```text", *(pad + line for line in formula.splitlines()),
                    f"{pad}```", ""])
    return "\n".join(out)


def to_markdown(text: str) -> str:
    """Convert the reST constructs our docstrings use (roles, math) to Markdown."""
    return _ROLE.sub(_role, _math_blocks(text))


class RstToMarkdown(griffe.Extension):
    """Rewrite each docstring once, when griffe loads the object."""

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)

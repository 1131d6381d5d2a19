"""Tables of formatted cells, rendered as aligned text, HTML, Markdown or LaTeX.

The results format their numbers once, the way R prints them (``r_format``, p-values,
significance stars), into a :class:`Table` of strings; every output format shows those same
strings. A :class:`Report` is a sequence of blocks (text lines and titled tables), which is
what a model summary is.

Why generated HTML and not pandas' ``Styler`` or great_tables: ``Styler`` needs jinja2 and
great_tables a stack of further packages, neither a dependency of this package; the tables
here are small, need R's number formatting rather than pandas', and plain ``<table>``
markup renders in Jupyter, VS Code, nbviewer and GitHub alike -- including static notebook
renderings that drop scripts and styles. Markdown (pipe tables) and LaTeX (``tabular``) are
generated the same way, so ``to_markdown``/``to_latex`` need neither tabulate nor jinja2.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Report", "ReportDisplay", "Table", "frame_table", "latex_escape"]

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


@dataclass(frozen=True)
class Table:
    """Formatted cells with a header and per-column alignment.

    Attributes
    ----------
    header : tuple of str
    rows : tuple of tuple of str
    align : str
        One character per column, ``"l"`` or ``"r"``.
    title : str
        A caption in HTML, Markdown and LaTeX (plain text shows no title: reports print
        their own headings).
    indent : str
        Prefix of every line of the text layout (lme4 indents its random-effects table).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""
    title: str = ""
    indent: str = ""

    def __post_init__(self):
        ncol = len(self.header)
        if any(len(r) != ncol for r in self.rows):
            raise ValueError("every row of a Table needs one cell per header column")
        if not self.align:
            object.__setattr__(self, "align", "l" + "r" * (ncol - 1))

    def to_text(self, indent: str | None = None) -> str:
        indent = self.indent if indent is None else indent
        ncol = len(self.header)
        widths = [max(len(self.header[j]), *(len(r[j]) for r in self.rows))
                  if self.rows else len(self.header[j]) for j in range(ncol)]
        lines = []
        for r in [self.header, *self.rows]:
            cells = [r[j].ljust(widths[j]) if self.align[j] == "l" else r[j].rjust(widths[j])
                     for j in range(ncol)]
            lines.append(indent + " ".join(cells).rstrip())
        return "\n".join(lines)

    def to_html(self) -> str:
        def cell(tag, text, j):
            style = ' style="text-align: right;"' if self.align[j] == "r" else \
                ' style="text-align: left;"'
            return f"<{tag}{style}>{html.escape(text)}</{tag}>"

        parts = ['<table class="mixedmodels-table">']
        if self.title:
            parts.append(f"<caption>{html.escape(self.title)}</caption>")
        parts.append("<thead><tr>" + "".join(cell("th", h, j)
                                             for j, h in enumerate(self.header))
                     + "</tr></thead>")
        parts.append("<tbody>")
        for r in self.rows:
            parts.append("<tr>" + "".join(cell("td", c, j) for j, c in enumerate(r))
                         + "</tr>")
        parts.append("</tbody></table>")
        return "".join(parts)

    def to_markdown(self) -> str:
        sep = [":---" if a == "l" else "---:" for a in self.align]
        lines = ["| " + " | ".join(_md_escape(h) for h in self.header) + " |",
                 "| " + " | ".join(sep) + " |"]
        lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in self.rows]
        text = "\n".join(lines)
        return f"**{_md_escape(self.title)}**\n\n{text}" if self.title else text

    def to_latex(self) -> str:
        lines = [r"\begin{tabular}{" + self.align + "}", r"\hline",
                 " & ".join(latex_escape(h) for h in self.header) + r" \\", r"\hline"]
        lines += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in self.rows]
        lines += [r"\hline", r"\end{tabular}"]
        body = "\n".join(lines)
        if self.title:
            return (r"\begin{table}[ht]" + "\n" + r"\centering" + "\n"
                    + r"\caption{" + latex_escape(self.title) + "}\n" + body + "\n"
                    + r"\end{table}")
        return body

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()


def frame_table(frame: pd.DataFrame, formats: dict | None = None, index: bool = True,
                title: str = "", float_format: str = "{:.6g}") -> Table:
    """A :class:`Table` from a DataFrame: each column through ``formats[column]`` (a
    function of the value) or ``float_format`` for numbers; missing values are blank."""
    formats = formats or {}

    def fmt(col, v) -> str:
        if col in formats:
            return formats[col](v)
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float):
            return float_format.format(v)
        return str(v)

    header = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for label, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [fmt(c, v) for c, v in zip(frame.columns, row, strict=True)]
        rows.append(tuple(([str(label)] if index else []) + cells))
    numeric = ["r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns]
    align = ("l" if index else "") + "".join(numeric)
    return Table(tuple(header), tuple(rows), align, title)


@dataclass(frozen=True)
class Report:
    """Blocks of a printed result: strings (lines of text) and :class:`Table` objects.

    The text layout prints every block as it is. The other formats drop what only the
    aligned text needs: a heading line ending in ``:`` right before a titled table (the
    title says it), ``---`` separators, and the padding of cells.
    """

    blocks: tuple = field(default_factory=tuple)

    def to_text(self) -> str:
        return "\n".join(b.to_text() if isinstance(b, Table) else str(b) for b in self.blocks)

    def _rich_blocks(self) -> list:
        out = []
        for k, b in enumerate(self.blocks):
            if isinstance(b, Table):
                out.append(Table(tuple(h.strip() for h in b.header),
                                 tuple(tuple(c.strip() for c in r) for r in b.rows),
                                 b.align, b.title))
                continue
            text = str(b).rstrip()
            nxt = self.blocks[k + 1] if k + 1 < len(self.blocks) else None
            if not text.strip() or text.strip() == "---":
                continue
            if text.endswith(":") and isinstance(nxt, Table) and nxt.title:
                continue
            out.append(text)
        return out

    def to_html(self) -> str:
        parts = ['<div class="mixedmodels-report">']
        para: list[str] = []

        def flush():
            if para:
                parts.append('<pre style="margin: 0.3em 0;">' + html.escape("\n".join(para))
                             + "</pre>")
                para.clear()

        for b in self._rich_blocks():
            if isinstance(b, Table):
                flush()
                parts.append(b.to_html())
            else:
                para.append(b)
        flush()
        parts.append("</div>")
        return "".join(parts)

    def to_markdown(self) -> str:
        out: list[str] = []
        for b in self._rich_blocks():
            if isinstance(b, Table):
                out += ["", b.to_markdown(), ""]
            else:
                out.append(_md_escape(b) + "  ")
        return "\n".join(out).strip() + "\n"

    def to_latex(self) -> str:
        out = []
        for b in self._rich_blocks():
            out += [b.to_latex(), ""] if isinstance(b, Table) else [latex_escape(b) + r" \\"]
        return "\n".join(out).strip() + "\n"


class ReportDisplay:
    """Mixin: text, HTML, Markdown and LaTeX of a result from its ``report()``.

    ``repr()`` is the text too -- what a user typing the name at a prompt wants to see, the
    same as ``print()`` (never a dump of the dataclass fields and their arrays).
    """

    def report(self) -> Report:  # pragma: no cover - each result defines it
        """The blocks (text lines and tables) every output format renders.

        Returns
        -------
        Report
        """
        raise NotImplementedError

    def __str__(self) -> str:
        return self.report().to_text()

    def __repr__(self) -> str:
        return self.report().to_text()

    def _repr_html_(self) -> str:
        return self.report().to_html()

    def to_markdown(self) -> str:
        """As Markdown: text lines and pipe tables (no extra package needed).

        Returns
        -------
        str
        """
        return self.report().to_markdown()

    def to_latex(self) -> str:
        """As LaTeX: text lines and ``tabular`` environments (no extra package needed).

        Returns
        -------
        str
        """
        return self.report().to_latex()

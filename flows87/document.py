"""The one renderer of flows87's reports: Markdown built block by block, HTML from a template.

The run report (`stages.report`) and the evaluation (`evaluate.render`) build their pages from
sections, written as Markdown and as HTML (the Jinja2 template `templates/report.html`,
autoescaped), so both files of a report always say the same. The quality gate's report, the
sweep's and the benchmark's are Markdown only and use `Markdown` and `table` directly, so every
table cell is escaped the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2


@dataclass
class Section:
    title: str
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    image: str | None = None  # a file next to the report, e.g. a PNG plot


def fmt(v: Any) -> str:
    """A table cell: thousands separators, four significant digits below 1, "–" for none."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt(x)}" for k, x in v.items())
    return str(v)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: a `|` would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", "<br>")


def one_line(text: Any) -> str:
    """Text on one line, as a list item or a heading needs it."""
    return str(text).replace("\n", " ")


def table(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], fmt: Callable[[Any], str] = fmt
) -> str:
    """A Markdown table; `fmt` turns each value into text (strings should come back as they are)."""
    lines = ["| " + " | ".join(cell(str(h)) for h in header) + " |"]
    lines.append("|" + " --- |" * len(header))
    lines += ["| " + " | ".join(cell(fmt(v)) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class Markdown:
    """A Markdown document: headings, paragraphs, lists, images and tables, a blank line after
    each; empty paragraphs and lists are left out."""

    def __init__(self, title: str | None = None) -> None:
        self._blocks: list[str] = []
        if title is not None:
            self.heading(title, level=1)

    def _add(self, block: str) -> Markdown:
        if block:
            self._blocks.append(block)
        return self

    def heading(self, text: str, level: int = 2) -> Markdown:
        return self._add(f"{'#' * level} {one_line(text)}")

    def para(self, *texts: str) -> Markdown:
        """One paragraph per text."""
        for text in texts:
            self._add(text)
        return self

    def bullets(self, items: Iterable[Any]) -> Markdown:
        return self._add("\n".join(f"- {one_line(item)}" for item in items))

    def image(self, src: str, alt: str) -> Markdown:
        return self._add(f"![{one_line(alt)}]({src})")

    def table(
        self,
        header: Sequence[Any],
        rows: Iterable[Sequence[Any]],
        fmt: Callable[[Any], str] = fmt,
    ) -> Markdown:
        return self._add(table(header, rows, fmt))

    def section(self, s: Section) -> Markdown:
        self.heading(s.title).para(s.text)
        if s.image:
            self.image(s.image, s.title)
        if s.header:
            self.table(s.header, s.rows)
        return self

    def text(self) -> str:
        return "".join(f"{block}\n\n" for block in self._blocks).removesuffix("\n")


def to_markdown(title: str, sections: list[Section]) -> str:
    doc = Markdown(title)
    for s in sections:
        doc.section(s)
    return doc.text()


@cache
def _templates() -> jinja2.Environment:
    """The package's templates (flows87/templates), found as package data, so a wheel has them."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flows87", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt
    return env


def to_html(title: str, sections: list[Section]) -> str:
    return _templates().get_template("report.html").render(title=title, sections=sections)

"""Reports as sections (a heading, text, an image, a table) written as Markdown and as HTML.

The run report (`stages.report`) and the evaluation (`evaluate.render`) both build their pages
from sections, so both files of a report always say the same.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


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


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.text:
            out += [s.text, ""]
        if s.image:
            out += [f"![{s.title}]({s.image})", ""]
        if s.header:
            out.append("| " + " | ".join(s.header) + " |")
            out.append("|" + "---|" * len(s.header))
            out += [
                "| "
                + " | ".join(fmt(v).replace("|", "\\|").replace("\n", "<br>") for v in r)
                + " |"
                for r in s.rows
            ]
            out.append("")
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f3f3f3}td{white-space:pre-wrap}
img{max-width:100%;display:block;margin:1em 0}"""


def to_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
    ]
    for s in sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        if s.text:
            out.append(f"<p>{e(s.text)}</p>")
        if s.image:
            out.append(f"<img src='{e(s.image)}' alt='{e(s.title)}'>")
        if s.header:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in s.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(fmt(v))}</td>" for v in r) + "</tr>" for r in s.rows]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)

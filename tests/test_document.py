"""The one report renderer: Markdown tables that hold any text, HTML that escapes it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources import files

from flows87.document import Markdown, Section, table, to_html, to_markdown


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells, split on the pipes that are not escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_a_cell_with_pipes_and_newlines_stays_one_cell_of_one_row() -> None:
    text = table(["a", "b|c"], [["x | y", "line 1\nline 2"], [None, 1234.5]])
    lines = text.splitlines()
    assert len(lines) == 4  # header, separator, two rows
    assert all(len(_cells(line)) == 2 for line in lines)
    assert _cells(lines[2]) == ["x \\| y", "line 1<br>line 2"]
    assert _cells(lines[3]) == ["–", "1,234.50"]  # the default cell format


def test_markdown_blocks_are_separated_and_empty_ones_left_out() -> None:
    doc = Markdown("Title").para("", "first").bullets([]).bullets(["a\nb", "c"]).heading("H", 3)
    assert doc.text() == "# Title\n\nfirst\n\n- a b\n- c\n\n### H\n"


def test_html_escapes_every_text_it_is_given() -> None:
    evil = "<script>alert(1)</script>"
    page = to_html(
        evil,
        [Section(evil, text=evil, header=[evil], rows=[[evil]], image="x.png' onerror='alert(1)")],
    )
    assert "<script>" not in page

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))

    parser = Tags()
    parser.feed(page)
    img = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert img == [{"src": "x.png' onerror='alert(1)", "alt": evil}]  # one attribute each


def test_markdown_and_html_of_the_same_sections_say_the_same() -> None:
    sections = [
        Section("Run", header=["", ""], rows=[["accounts", 2000], ["labelled", True]]),
        Section("Plot", text="A picture.", image="pr_curve.png"),
    ]
    md, page = to_markdown("Report", sections), to_html("Report", sections)
    for heading in ("Report", "Run", "Plot"):
        assert f"# {heading}" in md and f">{heading}</h" in page
    assert "| accounts | 2,000 |" in md and "<td>accounts</td><td>2,000</td>" in page
    assert "![Plot](pr_curve.png)" in md and "<img src='pr_curve.png' alt='Plot'>" in page


def test_the_template_is_package_data() -> None:
    """Found through the package (as in a wheel), not through the repository's layout."""
    assert (files("flows87") / "templates" / "report.html").is_file()

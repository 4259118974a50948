"""The gate's Markdown report: what was checked, what failed, where the rejected rows are.

Written for the data team member who is paged when a run stops: the verdict and the reason
first, then one line per expectation, then the notes of every check that did not pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows87.pipeline.quality.validate import Check

_STATUS = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skipped"}


def render_report(
    suite: str,
    checks: list[Check],
    stats: dict[str, Any],
    parameters: dict[str, str],
    result_path: Path,
    quarantine_path: Path | None,
    stop: list[str],
) -> str:
    """The report's Markdown text; `stop` holds the reasons the run stops (empty: it goes on)."""
    checked = stats["rows_checked"]
    lines = [
        f"# Quality gate `{suite}`: {'STOPPED' if stop else 'passed'}",
        "",
        f"- rows in: {stats['rows_in']} (checked: {checked}; rejected by the reader when "
        f"parsing: {stats['rows_parse_rejected']}); passed: {stats['rows_passed']}",
        f"- quarantined: {stats['rows_quarantined']} ({stats['rows_parse_rejected']} parse "
        f"rejects + {stats['rows_failed_checks']} rows failing checks)",
        f"- rejected share: {stats['failed_fraction']:.2%} "
        f"(allowed: {stats['max_failed_fraction']:.2%})",
        f"- quarantine: `{quarantine_path}`" if quarantine_path else "- quarantine: none",
        f"- GX validation result: `{result_path}`",
    ]
    if stop:
        lines += ["", "## Why the run stopped", "", *(f"- {_cell(r)}" for r in stop)]
    if parameters:
        lines += ["", "## Parameters", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in parameters.items()]
    lines += [
        "",
        "## Expectations",
        "",
        "On fail: quarantine = rows set aside, warn = rows kept and reported, fail = run stops. "
        "% is of the rows checked.",
        "",
        "| # | expectation | on fail | result | unexpected | % | examples / observed |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        count = "" if c.unexpected_count is None else str(c.unexpected_count)
        share = (
            ""
            if c.unexpected_count is None or not checked
            else f"{c.unexpected_count / checked:.2%}"
        )
        shown = ", ".join(map(str, c.examples)) if c.examples else c.detail
        lines.append(
            f"| {c.index} | {_cell(c.description)} | {c.on_fail} | {_STATUS[c.status]} | {count} "
            f"| {share} | {_cell(shown)} |"
        )
    not_passed = [c for c in checks if c.status != "passed"]
    if not_passed:
        lines += ["", "## Checks that did not pass", ""]
        for c in not_passed:
            lines += [
                f"### {c.index}. {c.name}: {_STATUS[c.status]} ({c.on_fail})",
                "",
                c.notes,
                "",
            ]
            if c.detail:
                lines += [f"- {c.detail}"]
            if c.examples:
                lines += [f"- examples: {', '.join(map(str, c.examples))}"]
            lines.append("")
    if stats["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {_cell(w)}" for w in stats["warnings"])]
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")

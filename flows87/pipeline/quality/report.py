"""The gate's Markdown report: what was checked, what failed, where the rejected rows are.

Written for the data team member who is paged when a run stops: the verdict and the reason
first, then one line per expectation, then the notes of every check that did not pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows87.document import Markdown
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
    doc = Markdown(f"Quality gate `{suite}`: {'STOPPED' if stop else 'passed'}")
    doc.bullets(
        [
            f"rows in: {stats['rows_in']} (checked: {checked}; rejected by the reader when "
            f"parsing: {stats['rows_parse_rejected']}); passed: {stats['rows_passed']}",
            f"quarantined: {stats['rows_quarantined']} ({stats['rows_parse_rejected']} parse "
            f"rejects + {stats['rows_failed_checks']} rows failing checks)",
            f"rejected share: {stats['failed_fraction']:.2%} "
            f"(allowed: {stats['max_failed_fraction']:.2%})",
            f"quarantine: `{quarantine_path}`" if quarantine_path else "quarantine: none",
            f"GX validation result: `{result_path}`",
        ]
    )
    if stop:
        doc.heading("Why the run stopped").bullets(stop)
    if parameters:
        doc.heading("Parameters").table(["parameter", "value"], parameters.items(), _plain)
    doc.heading("Expectations").para(
        "On fail: quarantine = rows set aside, warn = rows kept and reported, fail = run stops. "
        "% is of the rows checked."
    )
    doc.table(
        ["#", "expectation", "on fail", "result", "unexpected", "%", "examples / observed"],
        [
            [
                c.index,
                c.description,
                c.on_fail,
                _STATUS[c.status],
                c.unexpected_count,
                None
                if c.unexpected_count is None or not checked
                else f"{c.unexpected_count / checked:.2%}",
                ", ".join(map(str, c.examples)) if c.examples else c.detail,
            ]
            for c in checks
        ],
        _plain,
    )
    not_passed = [c for c in checks if c.status != "passed"]
    if not_passed:
        doc.heading("Checks that did not pass")
        for c in not_passed:
            doc.heading(f"{c.index}. {c.name}: {_STATUS[c.status]} ({c.on_fail})", level=3)
            doc.para(c.notes)
            doc.bullets(
                ([c.detail] if c.detail else [])
                + ([f"examples: {', '.join(map(str, c.examples))}"] if c.examples else [])
            )
    if stats["warnings"]:
        doc.heading("Warnings").bullets(stats["warnings"])
    return doc.text()


def _plain(value: Any) -> str:
    """A cell as it is: counts without thousands separators, nothing for none."""
    return "" if value is None else str(value)

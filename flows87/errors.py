"""Errors a user can act on.

A `Flows87Error` is a problem with the user's input or configuration, not a bug: the CLI prints
its message (file, row, column, reason) without a traceback and exits with its `exit_code`.
"""

from __future__ import annotations

from pathlib import Path


class Flows87Error(Exception):
    """A user-facing error that names where the problem is and why."""

    exit_code = 2

    def __init__(
        self,
        reason: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.field = field
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = ": ".join([", ".join(where), self.reason]) if where else self.reason
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(Flows87Error):
    """The input file cannot be read as the format it claims or was detected as."""


class ConfigError(Flows87Error):
    """A rule, suite or option is malformed."""


class QualityGateError(Flows87Error):
    """A quality gate found more failing rows than its threshold allows; the run stops.

    `report` and `quarantine` are the files an operator opens next (the Airflow task logs the
    report's text, so it is one click away from the failed task)."""

    exit_code = 3

    def __init__(
        self,
        reason: str,
        *,
        suite: str | None = None,
        report: str | Path | None = None,
        quarantine: str | Path | None = None,
        **where: object,
    ) -> None:
        self.suite = suite
        self.report = Path(report) if report is not None else None
        self.quarantine = Path(quarantine) if quarantine is not None else None
        super().__init__(reason, **where)  # type: ignore[arg-type]

"""What every part of the `flows87` command shares: exit codes, consoles, progress, option types."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_AUDIT_BROKEN = 4

err = Console(stderr=True)
out = Console()

EPILOG = (
    "Exit codes: 0 ok, 1 internal error, 2 bad input or usage, "
    "3 a quality gate stopped the run, 130 interrupted."
)


@contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str, float | None], None]]:
    """A progress display on stderr; yields `update(step, fraction_or_None)`."""
    if not enabled:

        def quiet(step: str, fraction: float | None = None) -> None:
            pass

        yield quiet
        return
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(step: str, fraction: float | None = None) -> None:
            bar.update(
                task,
                description=step,
                completed=fraction if fraction is not None else 0,
            )

        yield update


def utc_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Option callback: a date like 2026-01-31 as midnight UTC."""
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31") from None


def format_choice() -> click.Choice:
    """The input formats flows87 reads, as a click choice (`ingest`, `run`, `bench`)."""
    from flows87.pipeline.ingest import FORMATS

    return click.Choice(list(FORMATS))


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"

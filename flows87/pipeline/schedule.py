"""Where a scheduled run reads and writes: its analysis window, run directory and input.

A daily run judges the day that just ended, but trafficking patterns take weeks to show: the
run looks back `lookback_days` from the end of its data interval (the way transaction
monitoring systems score a rolling window every night). Everything a run writes lives under
FLOWS87_HOME (default: $AIRFLOW_HOME/flows87, or ./flows87-home without Airflow):

    FLOWS87_HOME/runs/<interval key>/     the run directory of one data interval
    FLOWS87_HOME/published/               what the publish step made visible (see stages.publish)
    FLOWS87_HOME/demo-data/<end date>/    generated input for the `demo` source
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flows87.errors import ConfigError

DEMO_SOURCE = "demo"
DEMO_ACCOUNTS = 5_000
DEMO_SEED = 7
TEMPLATE_FIELDS = ("ds", "ds_nodash", "start", "end", "window_start")


def home() -> Path:
    """FLOWS87_HOME, read at call time so a worker and the DAG file agree on one setting."""
    if os.environ.get("FLOWS87_HOME"):
        return Path(os.environ["FLOWS87_HOME"]).expanduser().resolve()
    if os.environ.get("AIRFLOW_HOME"):
        return Path(os.environ["AIRFLOW_HOME"]).expanduser().resolve() / "flows87"
    return Path("flows87-home").resolve()


def published_dir() -> Path:
    return home() / "published"


def utc(value: datetime) -> datetime:
    """A plain datetime in UTC (Airflow hands out pendulum DateTimes, whose arithmetic with a
    stdlib timezone drops the zone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value.timestamp(), UTC)


@dataclass(frozen=True)
class Interval:
    """One data interval [start, end) and the window [window_start, end) its run analyses."""

    start: datetime
    end: datetime
    lookback_days: int

    @classmethod
    def of(cls, start: datetime, end: datetime, lookback_days: int) -> Interval:
        start, end = utc(start), utc(end)
        if end <= start:
            raise ConfigError(f"data interval end {end} is not after its start {start}")
        if lookback_days < 1:
            raise ConfigError(f"lookback_days must be at least 1, got {lookback_days}")
        return cls(start, end, lookback_days)

    @property
    def window_start(self) -> datetime:
        return min(self.start, self.end - timedelta(days=self.lookback_days))

    @property
    def key(self) -> str:
        """The run directory's name: the interval, sortable and safe in any file system."""
        return f"{self.start:%Y-%m-%dT%H%M}Z--{self.end:%Y-%m-%dT%H%M}Z"

    def run_dir(self, root: Path | None = None) -> Path:
        return (root or home()) / "runs" / self.key

    def render(self, source: str) -> str:
        """Fill {ds}, {ds_nodash}, {start}, {end}, {window_start} in a source path template."""
        values = {
            "ds": f"{self.start:%Y-%m-%d}",
            "ds_nodash": f"{self.start:%Y%m%d}",
            "start": self.start,
            "end": self.end,
            "window_start": self.window_start,
        }
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(source) if f is not None}
        except ValueError as exc:
            raise ConfigError(f"source template {source!r}: {exc}", field="source") from None
        unknown = sorted({n.split(".")[0].split("[")[0] for n in names} - values.keys())
        if unknown:
            raise ConfigError(
                f"unknown placeholder {{{unknown[0]}}} in source {source!r}",
                field="source",
                hint=f"placeholders: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}",
            )
        try:
            return source.format(**values)
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            raise ConfigError(f"source template {source!r}: {exc}", field="source") from None


def demo_source(interval: Interval, root: Path | None = None) -> Path:
    """Generated, labelled input covering the interval's window (made once, then reused).

    The same window always gives the same data (fixed seed), so re-runs are reproducible.
    """
    from flows87.io import atomic_dir, write_parquet
    from flows87.research.synth import MIN_DAYS, generate

    days = max(MIN_DAYS, (interval.end - interval.window_start).days)
    first = (interval.end - timedelta(days=days)).date()
    folder = (root or home()) / "demo-data" / f"{first:%Y-%m-%d}_{days}d"
    if (folder / "transactions.parquet").exists():
        return folder
    data = generate(DEMO_ACCOUNTS, days, DEMO_SEED, start=first)
    with atomic_dir(folder) as tmp:
        write_parquet(data.accounts, tmp / "accounts.parquet")
        write_parquet(data.transactions, tmp / "transactions.parquet")
    return folder


def resolve_source(source: str, interval: Interval, root: Path | None = None) -> Path:
    """The input of one interval: the demo data, or the rendered path template."""
    if source.strip() == DEMO_SOURCE:
        return demo_source(interval, root)
    if not source.strip():
        raise ConfigError("no input given", field="source", hint=f"a path, or {DEMO_SOURCE!r}")
    return Path(interval.render(source)).expanduser()

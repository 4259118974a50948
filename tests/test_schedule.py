"""Intervals, run directories, source templates and publishing (no Airflow needed)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from flows87.errors import ConfigError, InputError
from flows87.io import atomic_dir, write_json, write_parquet
from flows87.pipeline.schedule import Interval, resolve_source
from flows87.pipeline.stages.publish import current_cases
from flows87.pipeline.stages.publish import publish_interval as publish

DAY = datetime(2026, 3, 14, tzinfo=UTC)


def test_interval_window_and_key() -> None:
    iv = Interval.of(DAY, DAY + timedelta(days=1), 30)
    assert iv.window_start == DAY + timedelta(days=1) - timedelta(days=30)
    assert iv.key == "2026-03-14T0000Z--2026-03-15T0000Z"
    assert iv.run_dir(Path("/h")) == Path("/h/runs/2026-03-14T0000Z--2026-03-15T0000Z")


def test_interval_accepts_pendulum_and_naive_times() -> None:
    """Airflow hands out pendulum DateTimes; arithmetic on them must keep the zone."""
    p = pendulum.datetime(2026, 3, 14, tz="UTC")
    iv = Interval.of(p, p + timedelta(days=1), 7)
    assert iv.window_start.tzinfo is not None
    naive = Interval.of(datetime(2026, 3, 14), datetime(2026, 3, 15), 7)
    assert naive == iv


def test_window_never_shorter_than_the_interval() -> None:
    iv = Interval.of(DAY, DAY + timedelta(days=10), 3)
    assert iv.window_start == DAY


@pytest.mark.parametrize(
    ("start", "end", "lookback"),
    [(DAY, DAY, 30), (DAY, DAY - timedelta(hours=1), 30), (DAY, DAY + timedelta(days=1), 0)],
)
def test_bad_intervals_are_refused(start: datetime, end: datetime, lookback: int) -> None:
    with pytest.raises(ConfigError):
        Interval.of(start, end, lookback)


def test_source_templates() -> None:
    iv = Interval.of(DAY, DAY + timedelta(days=1), 30)
    assert iv.render("/landing/{ds_nodash}/tx.csv") == "/landing/20260314/tx.csv"
    assert iv.render("/x/{ds}/{end:%Y%m%d}") == "/x/2026-03-14/20260315"
    assert iv.render("/plain/path.csv") == "/plain/path.csv"
    with pytest.raises(ConfigError, match="unknown placeholder {date}"):
        iv.render("/landing/{date}/")
    with pytest.raises(ConfigError, match="no input"):
        resolve_source("  ", iv)


@given(st.text(max_size=40))
def test_any_source_text_renders_or_gives_a_config_error(text: str) -> None:
    iv = Interval.of(DAY, DAY + timedelta(days=1), 30)
    with contextlib.suppress(ConfigError):
        assert isinstance(iv.render(text), str)


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "snap"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("crash half-way")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def _run(tmp: Path, name: str, cases: list[tuple[str, float]]) -> Path:
    run = tmp / name
    frame = pl.DataFrame(
        {
            "case_id": [c for c, _ in cases],
            "rank": list(range(1, len(cases) + 1)),
            "risk_score": [r for _, r in cases],
            "accounts": [[c.lower()] for c, _ in cases],
        }
    )
    write_parquet(frame, run / "cases.parquet")
    write_parquet(pl.DataFrame({"signal_id": ["x"]}), run / "signals.parquet")
    write_parquet(pl.DataFrame({"account_id": ["a"]}), run / "accounts_scored.parquet")
    write_json({"status": "succeeded"}, run / "run.json")
    return run


def test_publish_keeps_each_case_once_whatever_the_order(tmp_path: Path) -> None:
    d1, d2 = DAY, DAY + timedelta(days=1)
    r1 = _run(tmp_path, "r1", [("C-a", 0.9), ("C-b", 0.5)])
    r2 = _run(tmp_path, "r2", [("C-a", 0.7), ("C-c", 0.8)])
    pub1, pub2 = tmp_path / "p1", tmp_path / "p2"
    # forwards, with a re-run of the first day; and backwards
    publish(r1, "k1", d1, d1 + timedelta(days=1), pub1)
    publish(r2, "k2", d2, d2 + timedelta(days=1), pub1)
    publish(r1, "k1", d1, d1 + timedelta(days=1), pub1)
    publish(r2, "k2", d2, d2 + timedelta(days=1), pub2)
    publish(r1, "k1", d1, d1 + timedelta(days=1), pub2)
    q1 = pl.read_parquet(pub1 / "cases.parquet")
    assert_frame_equal(q1, pl.read_parquet(pub2 / "cases.parquet"))
    assert q1["case_id"].to_list() == ["C-c", "C-a", "C-b"]
    a = q1.filter(pl.col("case_id") == "C-a").row(0, named=True)
    assert a["risk_score"] == 0.7 and a["intervals_seen"] == 2 and a["interval_key"] == "k2"
    assert a["first_seen"] == d1 and a["last_seen"] == d2 + timedelta(days=1)
    assert pl.read_parquet(pub1 / "cases_history.parquet").height == 4
    assert (pub1 / "intervals" / "k1" / "run.json").exists()


def test_publish_refuses_an_unfinished_run(tmp_path: Path) -> None:
    run = _run(tmp_path, "r", [("C-a", 0.9)])
    (run / "run.json").unlink()
    with pytest.raises(InputError, match="run.json"):
        publish(run, "k", DAY, DAY + timedelta(days=1), tmp_path / "pub")
    assert not (tmp_path / "pub" / "cases.parquet").exists()


def test_current_cases_of_empty_history() -> None:
    empty = pl.DataFrame(schema={"case_id": pl.String, "interval_end": pl.Datetime("us", "UTC")})
    assert current_cases(empty).is_empty()

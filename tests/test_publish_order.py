"""Equal risks come out in the pipeline's rank order: the published queue, and the case app's
search and related cases (its queue: tests/test_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from postgres import make_run
from sqlalchemy import text

from flows87.investigate.store import Store, load_run
from flows87.investigate.store.models import CaseAccount
from flows87.investigate.web.lookup import related_cases, search
from flows87.io import write_json, write_parquet
from flows87.pipeline.stages.publish import publish_interval

DAY = datetime(2026, 3, 14, tzinfo=UTC)


def _run(folder: Path, cases: list[tuple[str, float]]) -> Path:
    """A finished run whose cases are ranked in the order given."""
    write_parquet(
        pl.DataFrame(
            {
                "case_id": [c for c, _ in cases],
                "rank": list(range(1, len(cases) + 1)),
                "risk_score": [r for _, r in cases],
            }
        ),
        folder / "cases.parquet",
    )
    write_parquet(pl.DataFrame({"signal_id": ["x"]}), folder / "signals.parquet")
    write_parquet(pl.DataFrame({"account_id": ["a"]}), folder / "accounts_scored.parquet")
    write_json({"status": "succeeded"}, folder / "run.json")
    return folder


def test_published_queue_breaks_equal_risks_by_rank(tmp_path: Path) -> None:
    # saturated scores: the run ranked C-z before C-m before C-a (evidence, size)
    run = _run(tmp_path / "r1", [("C-z", 1.0), ("C-m", 1.0), ("C-a", 1.0), ("C-b", 0.4)])
    published = tmp_path / "published"
    publish_interval(run, "k1", DAY, DAY + timedelta(days=1), published)
    queue = pl.read_parquet(published / "cases.parquet")
    assert queue["case_id"].to_list() == ["C-z", "C-m", "C-a", "C-b"]
    assert queue["rank"].to_list() == [1, 2, 3, 4]

    # a later interval's cases join the queue; equal risk and rank across intervals: case id
    later = _run(tmp_path / "r2", [("C-y", 1.0), ("C-c", 0.4)])
    publish_interval(later, "k2", DAY + timedelta(days=1), DAY + timedelta(days=2), published)
    queue = pl.read_parquet(published / "cases.parquet")
    assert queue["case_id"].to_list() == ["C-y", "C-z", "C-m", "C-a", "C-c", "C-b"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A SQLite case store holding make_run's three cases, all at risk 1.0, ranked against
    their ids: C-ccc, C-aaa, C-bbb."""
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", "test-audit-key-for-the-order-tests-0123456789")
    s = Store.open(f"sqlite:///{tmp_path / 'cases.db'}")
    s.upgrade()
    with s.session(write=True) as session:
        load_run(session, make_run(tmp_path / "run"), "2026-01-01")
        session.execute(text("UPDATE cases SET risk_score = 1.0"))
        for case_id, rank in (("C-ccc", 1), ("C-aaa", 2), ("C-bbb", 3)):
            session.execute(
                text("UPDATE cases SET rank = :r WHERE case_id = :c"), {"r": rank, "c": case_id}
            )
    yield s
    s.dispose()


def test_case_search_breaks_equal_risks_by_rank(store: Store) -> None:
    with store.session() as session:
        found = search(session, "C-")["cases"]
    assert [c["case_id"] for c in found] == ["C-ccc", "C-aaa", "C-bbb"]


def test_related_cases_break_equal_risks_by_rank(store: Store) -> None:
    """Cases sharing as many accounts with this one, at equal risk, follow the rank."""
    with store.session(write=True) as session:
        # every case names account Z, so each shares exactly one account with the others
        session.add_all(
            CaseAccount(case_id=c, account_id="Z", position=99, role="member")
            for c in ("C-aaa", "C-bbb", "C-ccc")
        )
    with store.session() as session:
        related = related_cases(session, "C-aaa")
    assert [c["case_id"] for c in related] == ["C-ccc", "C-bbb"]

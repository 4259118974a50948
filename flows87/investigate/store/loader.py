"""Load a run directory into the case store, idempotently.

A case (same case_id) seen again gets its evidence, risk, accounts and transactions replaced by
the run's and keeps everything people added (status, assignee, notes, approvals, dispositions,
audit entries). Loading the same run twice changes nothing: each case carries a fingerprint of
its evidence, and only new or changed cases are written, with bulk statements (not one ORM
object per row).

The run's files are read in `runfiles`, shaped as store rows in `rows` and fingerprinted in
`fingerprints`; this module decides what to write and writes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from flows87.investigate.store import audit
from flows87.investigate.store.fingerprints import case_fingerprints, run_fingerprint
from flows87.investigate.store.learnedrows import model_row
from flows87.investigate.store.models import (
    Base,
    Case,
    CaseAccount,
    CaseInterval,
    CaseParty,
    CasePartyLink,
    CaseSignal,
    CaseTransaction,
    CaseTypology,
    LearnedModel,
    Run,
    utcnow,
)
from flows87.investigate.store.rows import (
    OPTIONAL_CASE_COLUMNS,
    TXN_COLUMNS,
    StoreRows,
    prepare_run,
)
from flows87.investigate.store.runfiles import default_interval_key

__all__ = ["TXN_COLUMNS", "LoadResult", "default_interval_key", "load_run", "prepare_run"]

CHUNK = 500  # ids per IN (...) list
INSERT_BATCH = 10_000  # rows per executemany
EvidenceTable = (
    type[CaseTypology]
    | type[CaseSignal]
    | type[CaseAccount]
    | type[CaseTransaction]
    | type[CaseParty]
    | type[CasePartyLink]
)
EVIDENCE_TABLES: dict[str, EvidenceTable] = {
    "typologies": CaseTypology,
    "signals": CaseSignal,
    "accounts": CaseAccount,
    "transactions": CaseTransaction,
    "parties": CaseParty,
    "party_links": CasePartyLink,
}


@dataclass
class LoadResult:
    interval_key: str
    cases: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0
    accounts: int = 0
    transactions: int = 0
    parties: int = 0
    party_links: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    new_case_ids: list[str] = field(default_factory=list)
    updated_case_ids: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("new_case_ids")
        out.pop("updated_case_ids")
        return out


Known = tuple[str, int | None, str | None, str | None]
"""What the store has of a case: fingerprint, rank, first and last interval."""


@dataclass
class Plan:
    """What loading the run into interval `key` does to each of its cases."""

    key: str
    rows: dict[str, dict[str, Any]]  # case_id -> its row of the cases table, fingerprinted
    incoming: list[str]
    existing: dict[str, Known]
    seen_here: dict[str, tuple[float, int | None]]  # already recorded for this interval
    new_ids: list[str]
    later: set[str]  # known cases whose last interval is not after this one
    changed_ids: list[str]  # of those, the ones whose evidence changed


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _insert(session: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    for part in _chunks(rows, INSERT_BATCH):
        session.execute(cast(Table, table.__table__).insert(), part)


def _known(session: Session, incoming: list[str]) -> dict[str, Known]:
    out: dict[str, Known] = {}
    for part in _chunks(incoming):
        for cid, fp, rank, first, last in session.execute(
            select(
                Case.case_id, Case.fingerprint, Case.rank, Case.first_interval, Case.last_interval
            ).where(Case.case_id.in_(part))
        ):
            out[cid] = (fp, rank, first, last)
    return out


def _seen_in(
    session: Session, incoming: list[str], key: str
) -> dict[str, tuple[float, int | None]]:
    out: dict[str, tuple[float, int | None]] = {}
    for part in _chunks(incoming):
        for cid, risk, rank in session.execute(
            select(CaseInterval.case_id, CaseInterval.risk_score, CaseInterval.rank).where(
                CaseInterval.interval_key == key, CaseInterval.case_id.in_(part)
            )
        ):
            out[cid] = (risk, rank)
    return out


def plan(session: Session, cases: pl.DataFrame, key: str) -> Plan:
    """Which of the run's cases (fingerprinted) are new, changed or only seen again."""
    incoming = cases["case_id"].to_list()
    existing = _known(session, incoming)
    seen_here = _seen_in(session, incoming, key)
    rows = {r["case_id"]: r for r in cases.to_dicts()}
    # a case's evidence comes from the latest interval that saw it: an older run loaded late
    # only records that the case was seen then
    later = {c for c in incoming if c in existing and (existing[c][3] or "") <= key}
    changed = [c for c in incoming if c in later and existing[c][0] != rows[c]["fingerprint"]]
    new = [c for c in incoming if c not in existing]
    return Plan(key, rows, incoming, existing, seen_here, new, later, changed)


def _move_ranks(session: Session, p: Plan) -> None:
    """Rank moves and interval bookkeeping of known cases (no audit entry: not evidence)."""
    rank_moves = [
        {"case_id": c, "rank": p.rows[c]["rank"], "last_interval": p.key}
        for c in p.incoming
        if c in p.later
        and c not in p.changed_ids
        and (p.existing[c][1] != p.rows[c]["rank"] or p.existing[c][3] != p.key)
    ]
    if rank_moves:
        session.execute(update(Case), rank_moves)
    firsts = {c: p.existing[c][2] for c in p.incoming if c in p.existing}
    earlier = [
        {"case_id": c, "first_interval": p.key}
        for c, first in firsts.items()
        if first is not None and p.key < first
    ]
    if earlier:
        session.execute(update(Case), earlier)


def _replace_evidence(session: Session, p: Plan, now: datetime) -> dict[str, dict[str, Any]]:
    """Drop the changed cases' evidence rows and update their case rows; returns their state
    before, for the audit log."""
    before: dict[str, dict[str, Any]] = {}
    if not p.changed_ids:
        return before
    for table in EVIDENCE_TABLES.values():
        for part in _chunks(p.changed_ids):
            session.execute(delete(table).where(table.case_id.in_(part)))
    for part in _chunks(p.changed_ids):
        for c in session.scalars(select(Case).where(Case.case_id.in_(part))):
            before[c.case_id] = _state(c)
    stamp = {"evidence_updated_at": now, "updated_at": now, "last_interval": p.key}
    # a run without the optional columns (risk_reason) clears what an earlier run wrote there
    cleared = dict.fromkeys(OPTIONAL_CASE_COLUMNS)
    session.execute(update(Case), [{**cleared, **p.rows[c], **stamp} for c in p.changed_ids])
    return before


def _insert_new(session: Session, p: Plan, now: datetime) -> None:
    first = {
        "first_interval": p.key,
        "last_interval": p.key,
        "first_seen_at": now,
        "evidence_updated_at": now,
        "updated_at": now,
        "status": "new",
    }
    _insert(session, Case, [{**p.rows[c], **first} for c in p.new_ids])


def _write_evidence(session: Session, rows: StoreRows, ids: list[str], result: LoadResult) -> None:
    """The evidence rows of the cases `ids`; counts what was written in `result`."""
    keep = pl.Series(ids, dtype=pl.String).implode()
    for name, frame in rows.evidence():
        part = frame.filter(pl.col("case_id").is_in(keep))
        _insert(session, EVIDENCE_TABLES[name], part.to_dicts())
        if name != "typologies":
            setattr(result, name, part.height)


def _record_intervals(session: Session, p: Plan) -> None:
    """That each case was seen in this interval, with its risk and rank there."""

    def seen(c: str) -> dict[str, Any]:
        risk, rank = p.rows[c]["risk_score"], p.rows[c]["rank"]
        return {"case_id": c, "interval_key": p.key, "risk_score": risk, "rank": rank}

    new_seen = [seen(c) for c in p.incoming if c not in p.seen_here]
    moved_seen = [
        seen(c)
        for c in p.incoming
        if c in p.seen_here and p.seen_here[c] != (p.rows[c]["risk_score"], p.rows[c]["rank"])
    ]
    if new_seen:
        _insert(session, CaseInterval, new_seen)
    if moved_seen:
        session.execute(update(CaseInterval), moved_seen)


def _state(row: dict[str, Any] | Case) -> dict[str, Any]:
    """What the audit log keeps about a case's evidence (the learned scorer's part only when a
    model scored the case)."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    state = {
        "risk_score": get("risk_score"),
        "n_accounts": get("n_accounts"),
        "n_signals": get("n_signals"),
        "n_transactions": get("n_transactions"),
        "typologies": json.loads(get("typologies") or "[]"),
        "total_amount": get("total_amount"),
        "fingerprint": get("fingerprint"),
    }
    if get("learned_score") is not None:
        state.update(
            today_score=get("today_score"),
            learned_score=get("learned_score"),
            model_version=get("model_version"),
        )
    return state


def _record_model(session: Session, meta: dict[str, Any] | None, now: datetime) -> None:
    """What the run's learned model was trained on, once per model version."""
    if meta is None:
        return
    row = model_row(meta, now)
    if session.get(LearnedModel, row["version"]) is None:
        _insert(session, LearnedModel, [row])


def _case_entries(
    p: Plan, before: dict[str, dict[str, Any]], actor: str, now: datetime
) -> list[dict[str, Any]]:
    """Audit entries of the cases created and of those whose evidence changed."""

    def entry(c: str, action: str, was: dict[str, Any]) -> dict[str, Any]:
        after = {**_state(p.rows[c]), "interval": p.key}
        return {
            "actor": actor,
            "action": action,
            "entity_type": "case",
            "entity_id": c,
            "before": was,
            "after": after,
            "ts": now,
        }

    return [entry(c, "case.created", {}) for c in p.new_ids] + [
        entry(c, "case.evidence_updated", before[c]) for c in p.changed_ids
    ]


def _record_run(
    session: Session,
    run_dir: Path,
    run_fp: str,
    result: LoadResult,
    actor: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The store's record of the run (its fingerprint and size), and an audit entry when that
    is new or different; loading the same run again records nothing."""
    key = result.interval_key
    run = session.get(Run, key)
    if run is not None and run.fingerprint == run_fp and run.n_cases == result.cases:
        return []
    entry = {
        "actor": actor,
        "action": "run.loaded",
        "entity_type": "run",
        "entity_id": key,
        "before": {"fingerprint": run.fingerprint, "cases": run.n_cases} if run else {},
        "after": {
            "fingerprint": run_fp,
            "cases": result.cases,
            "new": result.new,
            "updated": result.updated,
            "run_dir": str(run_dir),
        },
        "ts": now,
    }
    if run is None:
        session.add(
            Run(
                interval_key=key,
                run_dir=str(run_dir),
                fingerprint=run_fp,
                n_cases=result.cases,
                loaded_at=now,
            )
        )
    else:
        run.fingerprint, run.n_cases, run.run_dir, run.loaded_at = (
            run_fp,
            result.cases,
            str(run_dir),
            now,
        )
    return [entry]


def load_run(
    session: Session,
    run_dir: str | Path,
    interval_key: str | None = None,
    *,
    actor: str = "system",
) -> LoadResult:
    """Upsert the run's cases with their evidence; see the module docstring. Does not commit
    (use `with store.session() as s: load_run(s, ...)`)."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    key = interval_key or default_interval_key(run_dir)
    rows = prepare_run(run_dir)
    result = LoadResult(interval_key=key, warnings=list(rows.warnings))
    fps = case_fingerprints(rows)
    cases = rows.cases.with_columns(
        pl.col("case_id").replace_strict(fps, default=None).alias("fingerprint")
    )
    p = plan(session, cases, key)
    result.cases = len(p.incoming)
    result.new, result.updated = len(p.new_ids), len(p.changed_ids)
    result.unchanged = result.cases - result.new - result.updated
    result.new_case_ids, result.updated_case_ids = p.new_ids, p.changed_ids

    now = utcnow()
    _move_ranks(session, p)
    before = _replace_evidence(session, p, now)
    if p.new_ids:
        _insert_new(session, p, now)
    if p.new_ids or p.changed_ids:
        _write_evidence(session, rows, p.new_ids + p.changed_ids, result)
    _record_intervals(session, p)
    _record_model(session, rows.model, now)
    entries = _case_entries(p, before, actor, now)
    entries += _record_run(session, run_dir, run_fingerprint(fps), result, actor, now)
    audit.record_many(session, entries)
    session.flush()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result

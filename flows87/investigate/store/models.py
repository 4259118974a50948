"""The case store's tables (SQLAlchemy 2.x declarative models).

The schema is owned by the Alembic migrations in `flows87/investigate/store/migrations/versions/`; these
models describe the same tables for queries (a test checks that the migrations and the models
agree). Times are stored in UTC (`UTCDateTime`), JSON as text.

What comes from a pipeline run (refreshed on every load, never edited by people):
    cases (the evidence columns), case_typologies, case_signals, case_accounts,
    case_transactions, case_parties, case_party_links, case_intervals, runs, learned_models
What people add (kept across loads, never overwritten by a run):
    cases (status, assignee, disposition columns), assignments, notes, approvals,
    dispositions, users, audit_log (append-only, hash-chained)
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("investigator", "supervisor", "admin")
STATUSES = ("new", "in_review", "escalated", "closed")
DISPOSITIONS = ("reported", "false_positive", "no_further_action")
APPROVAL_STATES = ("pending", "approved", "rejected")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone: we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="ck_users_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"User({self.username!r}, {self.role!r}, active={self.active})"


class Run(Base):
    """One loaded run (an interval): loading it again with the same content changes nothing."""

    __tablename__ = "runs"

    interval_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_dir: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    n_cases: Mapped[int] = mapped_column(Integer, nullable=False)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="ck_cases_status"),
        CheckConstraint(
            "disposition IS NULL OR " + _in("disposition", DISPOSITIONS),
            name="ck_cases_disposition",
        ),
        Index("ix_cases_status_risk", "status", "risk_score"),
        Index("ix_cases_risk", "risk_score"),
        Index("ix_cases_assignee", "assignee_id"),
        Index("ix_cases_last_ts", "last_ts"),
    )

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # evidence, from the latest run that saw the case
    rank: Mapped[int | None] = mapped_column(Integer)
    risk_score: Mapped[float] = mapped_column(Float, nullable=False)
    anchor_account: Mapped[str] = mapped_column(String(128), nullable=False)
    central_account: Mapped[str | None] = mapped_column(String(128))
    n_accounts: Mapped[int] = mapped_column(Integer, nullable=False)
    n_signals: Mapped[int] = mapped_column(Integer, nullable=False)
    n_transactions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    typologies: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    families: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    signal_ids: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    primary_typology: Mapped[str | None] = mapped_column(String(64))
    first_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_amount: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    first_interval: Mapped[str | None] = mapped_column(String(128))
    last_interval: Mapped[str | None] = mapped_column(String(128))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    evidence_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # the investigation, kept across loads
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disposition: Mapped[str | None] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # why the case has its risk score, in words (cases.parquet's risk_reason, when present)
    risk_reason: Mapped[str | None] = mapped_column(Text)
    # the learned scorer (0006): risk_score is then the blend of today_score and learned_score
    learned_score: Mapped[float | None] = mapped_column(Float)
    today_score: Mapped[float | None] = mapped_column(Float)
    learned_reasons: Mapped[str | None] = mapped_column(Text)  # JSON list of sentences
    model_version: Mapped[str | None] = mapped_column(String(64))


class CaseTypology(Base):
    __tablename__ = "case_typologies"
    __table_args__ = (Index("ix_case_typologies_typology", "typology", "case_id"),)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    typology: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)


class CaseInterval(Base):
    """Each data interval (run) in which a case was seen."""

    __tablename__ = "case_intervals"

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    interval_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    risk_score: Mapped[float] = mapped_column(Float, nullable=False)
    rank: Mapped[int | None] = mapped_column(Integer)


class CaseSignal(Base):
    __tablename__ = "case_signals"
    __table_args__ = (Index("ix_case_signals_signal", "signal_id"),)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    signal_id: Mapped[str] = mapped_column(String(128), nullable=False)
    account_id: Mapped[str] = mapped_column(String(128), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    family: Mapped[str] = mapped_column(String(32), nullable=False)
    typologies: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    txn_ids: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON object
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")


class CaseAccount(Base):
    __tablename__ = "case_accounts"
    __table_args__ = (Index("ix_case_accounts_account", "account_id"),)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # anchor / central / member
    risk_score: Mapped[float | None] = mapped_column(Float)
    signal_risk: Mapped[float | None] = mapped_column(Float)
    anomaly_score: Mapped[float | None] = mapped_column(Float)
    n_signals: Mapped[int | None] = mapped_column(Integer)
    families: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(32))
    bank_id: Mapped[str | None] = mapped_column(String(64))
    party_id: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(8))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON: address...


class CaseTransaction(Base):
    __tablename__ = "case_transactions"
    __table_args__ = (
        Index("ix_case_transactions_ts", "case_id", "ts"),
        # an account's transfers across cases: the account page, the graph's expand (0004)
        Index("ix_case_transactions_src", "src_account"),
        Index("ix_case_transactions_dst", "dst_account"),
    )

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    txn_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    src_account: Mapped[str | None] = mapped_column(String(128))
    dst_account: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(8))
    amount_base: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str | None] = mapped_column(String(32))
    mcc: Mapped[str | None] = mapped_column(String(8))
    src_country: Mapped[str | None] = mapped_column(String(8))
    dst_country: Mapped[str | None] = mapped_column(String(8))
    location_id: Mapped[str | None] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(String(128))
    memo: Mapped[str | None] = mapped_column(Text)


class CaseParty(Base):
    """A resolved party (entity resolution over the reports) holding one of the case's accounts:
    its accounts at every bank (JSON), the names its records were written as (JSON)."""

    __tablename__ = "case_parties"

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    party_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str | None] = mapped_column(String(16))
    n_records: Mapped[int] = mapped_column(Integer, nullable=False)
    n_links: Mapped[int] = mapped_column(Integer, nullable=False)
    names: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    accounts: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


class CasePartyLink(Base):
    """Matched pairs of records that made a case's party: one row per pair of accounts and
    evidence in words, standing for `n_pairs` record pairs (the strongest is named)."""

    __tablename__ = "case_party_links"

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    party_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_l: Mapped[str] = mapped_column(Text, nullable=False)
    record_r: Mapped[str] = mapped_column(Text, nullable=False)
    name_l: Mapped[str | None] = mapped_column(Text)
    name_r: Mapped[str | None] = mapped_column(Text)
    account_l: Mapped[str | None] = mapped_column(String(128))
    account_r: Mapped[str | None] = mapped_column(String(128))
    bank_l: Mapped[str | None] = mapped_column(String(64))
    bank_r: Mapped[str | None] = mapped_column(String(64))
    probability: Mapped[float | None] = mapped_column(Float)
    match_weight: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[str | None] = mapped_column(Text)
    n_pairs: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class LearnedModel(Base):
    """A learned scorer some loaded run used (RUN/learning/model/model.meta.json): what it was
    trained on, for the case page."""

    __tablename__ = "learned_models"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str | None] = mapped_column(String(16))
    positives: Mapped[int | None] = mapped_column(Integer)
    negatives: Mapped[int | None] = mapped_column(Integer)
    labelled: Mapped[int | None] = mapped_column(Integer)
    cutoff: Mapped[str | None] = mapped_column(String(64))  # ISO time: decisions before it
    meta: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON object
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), nullable=False, index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), nullable=False, index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)


class Approval(Base):
    """A request to close a case as reported (STR filed), decided by a supervisor."""

    __tablename__ = "approvals"
    __table_args__ = (CheckConstraint(_in("state", APPROVAL_STATES), name="ck_approvals_state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), nullable=False, index=True)
    disposition: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)


class Disposition(Base):
    """Every closing decision (a reopened case keeps its earlier ones)."""

    __tablename__ = "dispositions"
    __table_args__ = (
        CheckConstraint(_in("disposition", DISPOSITIONS), name="ck_dispositions_disposition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), nullable=False, index=True)
    disposition: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"))
    risk_score: Mapped[float] = mapped_column(Float, nullable=False)
    accounts: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list, as decided
    signal_ids: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list, as decided


class AuditEntry(Base):
    """Append-only, chained: hash = HMAC-SHA256(key, prev_hash + canonical JSON of the entry)
    when alg is 'hmac-sha256'; entries from before the key (alg 'sha256') used plain SHA-256."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON
    after: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    alg: Mapped[str] = mapped_column(String(16), nullable=False, server_default="sha256")

"""Dispositions as labels for researchers: which cases (and accounts) investigators reported,
dismissed as false positives or closed without action, and which rules produced them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store.models import DISPOSITIONS, Case, CaseSignal, Disposition, User

DISPOSITION_SCHEMA = pl.Schema(
    {
        "case_id": pl.String(),
        "accounts": pl.List(pl.String()),
        "disposition": pl.String(),
        "reason": pl.String(),
        "decided_at": pl.Datetime("us", "UTC"),
        "decided_by": pl.String(),
        "risk_score": pl.Float64(),
        "signal_ids": pl.List(pl.String()),
        "typologies": pl.List(pl.String()),
    }
)


def export_dispositions(session: Session, *, latest_only: bool = True) -> pl.DataFrame:
    """One row per decision (or per case, its latest decision, when `latest_only`): the case,
    its accounts and signals as they were when decided, the disposition and when."""
    rows = []
    stmt = (
        select(Disposition, User.username, Case.typologies, Case.status)
        .join(User, User.id == Disposition.decided_by_id)
        .join(Case, Case.case_id == Disposition.case_id)
        .order_by(Disposition.case_id, Disposition.decided_at, Disposition.id)
    )
    for d, who, typologies, status in session.execute(stmt):
        rows.append(
            {
                "case_id": d.case_id,
                "accounts": json.loads(d.accounts),
                "disposition": d.disposition,
                "reason": d.reason,
                "decided_at": d.decided_at,
                "decided_by": who,
                "risk_score": d.risk_score,
                "signal_ids": json.loads(d.signal_ids),
                "typologies": json.loads(typologies),
                "_open": status != "closed",
            }
        )
    frame = pl.DataFrame(rows, schema={**DISPOSITION_SCHEMA, "_open": pl.Boolean()})
    if latest_only:
        # a reopened case's earlier decision no longer stands
        frame = frame.filter(~pl.col("_open")).unique("case_id", keep="last", maintain_order=True)
    return frame.drop("_open")


def account_labels(session: Session) -> pl.DataFrame:
    """Per account of a decided case: account_id, case_id, disposition, decided_at and
    `reported` (True for reported, False for false_positive, null for no_further_action)."""
    d = export_dispositions(session)
    return (
        d.select("case_id", "accounts", "disposition", "decided_at")
        .explode("accounts")
        .rename({"accounts": "account_id"})
        .with_columns(
            pl.when(pl.col("disposition") == "reported")
            .then(True)
            .when(pl.col("disposition") == "false_positive")
            .then(False)
            .otherwise(None)
            .alias("reported")
        )
        .select("account_id", "case_id", "disposition", "reported", "decided_at")
        .sort("account_id", "case_id")
    )


def signal_outcomes(session: Session) -> pl.DataFrame:
    """Which rules, detectors and graph patterns produced the decided cases: per signal_id,
    the number of decided cases by disposition, and the share reported. Signals as they were
    when the case was decided."""
    d = export_dispositions(session)
    sources = dict(
        session.execute(select(CaseSignal.signal_id, CaseSignal.source).distinct()).all()
    )
    long = (
        d.select("case_id", "disposition", "signal_ids")
        .explode("signal_ids")
        .rename({"signal_ids": "signal_id"})
        .drop_nulls("signal_id")
        .unique()
    )
    cols = [
        pl.col("disposition").eq(name).sum().cast(pl.Int64).alias(name) for name in DISPOSITIONS
    ]
    out = (
        long.group_by("signal_id")
        .agg(pl.len().cast(pl.Int64).alias("cases"), *cols)
        .with_columns(
            pl.col("signal_id").replace_strict(sources, default=None).alias("source"),
            (pl.col("reported") / pl.col("cases")).round(4).alias("reported_share"),
        )
        .select("signal_id", "source", "cases", *DISPOSITIONS, "reported_share")
        .sort(["reported", "cases", "signal_id"], descending=[True, True, False])
    )
    return out


def read_existing(url: str | None, read: Callable[[Session], pl.DataFrame]) -> pl.DataFrame | None:
    """`read(session)` on the case store at `url` (None: the configured one), or None when
    there is no store yet: a SQLite file that does not exist, a database without the schema.
    For readers of decisions (evaluation, the learned scorer) that must not create a store."""
    from flows87.investigate.store.db import Store, resolve_url

    resolved = resolve_url(url)
    if resolved.startswith("sqlite:///"):
        path = resolved.removeprefix("sqlite:///")
        if path and path != ":memory:" and not Path(path).exists():
            return None
    try:
        store = Store.open(resolved)
    except Exception:
        return None
    try:
        with store.session() as session:
            return read(session)
    except Exception:  # a database without the schema yet: nothing decided
        return None
    finally:
        store.dispose()

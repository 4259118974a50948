"""Rows and contexts for the graph pattern tests: transfers and accounts by hand, and what a hit
says (its roles, its evidence, its schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from flows87.pipeline.graph.patterns import HIT_SCHEMA, GraphContext
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.schema import conform, schema

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def t(
    txn_id: str,
    hours: float,
    src: str,
    dst: str,
    amount: float,
    channel: str = "wire",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "ts": T0 + timedelta(hours=hours),
        "src_account": src,
        "dst_account": dst,
        "amount": amount,
        "currency": "USD",
        "amount_base": amount,
        "channel": channel,
        **extra,
    }


def a(
    account_id: str,
    kind: str = "individual",
    party: str | None = None,
    opened_days: float = -400,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "party_id": party or f"P-{account_id}",
        "bank_id": "001",
        "kind": kind,
        "opened_at": T0 + timedelta(days=opened_days),
        "country": "US",
        **extra,
    }


def context(
    txns: list[dict[str, Any]],
    accounts: list[dict[str, Any]] | None = None,
    signals: pl.DataFrame | None = None,
) -> GraphContext:
    if txns:
        tx = conform(pl.DataFrame(txns, infer_schema_length=None), "transactions").collect()
    else:
        tx = pl.DataFrame(schema=schema("transactions", labels=False))
    known = {r["account_id"] for r in accounts or []}
    seen = sorted(set(tx["src_account"]) | set(tx["dst_account"]))
    rows = list(accounts or []) + [a(x) for x in seen if x not in known]
    acc = (
        conform(pl.DataFrame(rows, infer_schema_length=None), "accounts").collect()
        if rows
        else pl.DataFrame(schema=schema("accounts", labels=False))
    )
    return GraphContext(
        tx,
        acc,
        pl.DataFrame(),
        signals if signals is not None else pl.DataFrame(schema=SIGNAL_SCHEMA),
    )


def roles(hits: pl.DataFrame) -> dict[str, str]:
    return dict(zip(hits["account_id"], hits["role"], strict=True))


def evidence(hits: pl.DataFrame) -> dict[str, Any]:
    assert hits["instance"].n_unique() == 1
    return json.loads(hits["evidence"][0])


def check_shape(hits: pl.DataFrame) -> None:
    assert hits.schema == HIT_SCHEMA
    for inst in hits.partition_by("instance"):
        assert inst["evidence"].n_unique() == 1
        assert sorted(json.loads(inst["evidence"][0])["accounts"]) == sorted(inst["account_id"])

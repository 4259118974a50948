from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from flows87 import schema


def test_schema_without_optional_has_only_required_columns() -> None:
    s = schema.schema("transactions", optional=False, labels=False)
    assert list(s.names()) == schema.required_columns("transactions")
    assert s["ts"] == pl.Datetime("us", "UTC")


def test_conform_adds_optional_as_null_casts_and_orders() -> None:
    raw = pl.DataFrame(
        {
            "amount": [1, 2],  # ints become Float64
            "txn_id": ["a", "b"],
            "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
            "src_account": ["x", "y"],
            "dst_account": ["y", "x"],
            "currency": ["USD", "USD"],
            "amount_base": [1.0, 2.0],
            "channel": ["wire", "p2p"],
            "not_canonical": [0, 0],
        }
    )
    out = schema.conform(raw, "transactions").collect()
    assert out.schema == schema.schema("transactions", labels=False)
    assert out["mcc"].null_count() == 2
    assert out["amount"].to_list() == [1.0, 2.0]
    assert "not_canonical" not in out.columns
    assert not schema.has_labels(out)


def test_conform_keeps_labels_when_present() -> None:
    raw = pl.DataFrame(
        {
            "account_id": ["a"],
            "party_id": ["p"],
            "bank_id": ["001"],
            "kind": ["individual"],
            "opened_at": [datetime(2020, 1, 1, tzinfo=UTC)],
            "country": ["US"],
            "is_suspicious": [True],
            "typology": ["fan_in"],
        }
    )
    out = schema.conform(raw, "accounts").collect()
    assert schema.has_labels(out)
    assert out["bank_id"].to_list() == ["001"]
    assert out["scheme_id"].dtype == pl.String


def test_conform_refuses_missing_required() -> None:
    with pytest.raises(KeyError, match="txn_id"):
        schema.conform(pl.DataFrame({"ts": [1]}), "transactions")


def test_describe_documents_every_column() -> None:
    text = schema.describe()
    for table in schema.TABLES:
        for c in schema.columns(table):
            assert f"`{c.name}`" in text

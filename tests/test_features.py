"""Account features on small hand-made frames whose values can be worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from flows87 import schema
from flows87.errors import ConfigError
from flows87.pipeline.features import FEATURES, compute, load_settings, missing_inputs

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def frames(
    rows: list[tuple], accounts: dict[str, str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """rows: (hours after T0, src, dst, amount, channel, mcc, location)."""
    tx = schema.conform(
        pl.DataFrame(
            {
                "txn_id": [f"t{i}" for i in range(len(rows))],
                "ts": [T0 + timedelta(hours=r[0]) for r in rows],
                "src_account": [r[1] for r in rows],
                "dst_account": [r[2] for r in rows],
                "amount": [float(r[3]) for r in rows],
                "currency": ["USD"] * len(rows),
                "amount_base": [float(r[3]) for r in rows],
                "channel": [r[4] for r in rows],
                "mcc": [r[5] for r in rows],
                "location_id": [r[6] for r in rows],
            },
            schema_overrides={"mcc": pl.String, "location_id": pl.String},
        ),
        "transactions",
    ).collect()
    ids = sorted(set(tx["src_account"]) | set(tx["dst_account"]))
    kinds = accounts or {}
    acc = schema.conform(
        pl.DataFrame(
            {
                "account_id": ids,
                "party_id": [f"p-{a}" for a in ids],
                "bank_id": ["001"] * len(ids),
                "kind": [kinds.get(a, "individual") for a in ids],
                "opened_at": [T0 - timedelta(days=100)] * len(ids),
                "country": ["US"] * len(ids),
            }
        ),
        "accounts",
    ).collect()
    return tx, acc


def row(features: pl.DataFrame, account: str, window: str = "7d") -> dict:
    got = features.filter((pl.col("account_id") == account) & (pl.col("window") == window))
    assert got.height == 1, got
    return got.row(0, named=True)


def test_registry_and_output_columns_agree() -> None:
    tx, acc = frames([(1, "a", "b", 10, "p2p", None, None)])
    out = compute(tx, acc, load_settings())
    assert out.columns == [f.name for f in FEATURES]


def test_volume_night_and_pass_through_by_hand() -> None:
    # v receives 100 at 23:00 and 150 at 23:30 from two payers, 200 at 02:00 (card), then
    # sends 400 at 03:00 (1 h after the last inflow) and 90 at 24:00 the next day (22 h after).
    tx, acc = frames(
        [
            (23, "p1", "v", 100, "p2p", None, None),
            (23.5, "p2", "v", 150, "p2p", None, None),
            (26, "p3", "v", 200, "card", None, None),
            (27, "v", "c", 400, "p2p", None, None),
            (48, "v", "h1", 90, "card", "7011", "L1"),
        ]
    )
    r = row(compute(tx, acc, load_settings()), "v")
    assert (r["in_count"], r["out_count"]) == (3, 2)
    assert (r["in_sum"], r["out_sum"]) == (450.0, 490.0)
    assert r["distinct_payers"] == 3 and r["p2p_payers"] == 2
    assert r["night_in_share"] == 1.0  # 23:00, 23:30 and 02:00 are all night
    assert r["pass_through_6h"] == pytest.approx(400 / 450)
    assert r["pass_through_24h"] == 1.0  # (400 + 90) / 450, capped at 1
    assert r["median_dwell_hours"] == pytest.approx((1 + 22) / 2)
    assert r["top_payee_share"] == pytest.approx(400 / 490)
    assert (r["hotel_count"], r["hotel_merchants"], r["hotel_locations"]) == (1, 1, 1)
    assert r["out_in_ratio"] == pytest.approx(490 / 450)


def test_windows_are_tumbling_and_aligned() -> None:
    tx, acc = frames(
        [(1, "a", "b", 10, "p2p", None, None), (24 * 8, "a", "b", 20, "p2p", None, None)]
    )
    out = compute(tx, acc, load_settings()).filter(pl.col("account_id") == "a")
    weekly = out.filter(pl.col("window") == "7d").sort("window_start")
    assert weekly["window_start"].to_list() == [T0, T0 + timedelta(days=7)]
    assert weekly["out_sum"].to_list() == [10.0, 20.0]
    assert out.filter(pl.col("window") == "30d")["out_sum"].to_list() == [30.0]


def test_cash_structuring_and_payroll() -> None:
    tx, acc = frames(
        [
            (10, "CASH:B1", "s", 9500, "cash_deposit", None, "B1"),
            (34, "CASH:B2", "s", 9100, "cash_deposit", None, "B2"),
            (58, "CASH:B1", "s", 12000, "cash_deposit", None, "B1"),
            (10, "boss", "w1", 300, "ach", None, None),
            (10, "boss", "w2", 500, "ach", None, None),
        ],
        accounts={"boss": "business", "CASH:B1": "business", "CASH:B2": "business"},
    )
    out = compute(tx, acc, load_settings())
    s = row(out, "s")
    assert (s["cash_in_count"], s["cash_locations"], s["near_threshold_count"]) == (3, 2, 2)
    assert s["cash_in_share"] == 1.0
    boss = row(out, "boss", "30d")
    assert (boss["payroll_payees"], boss["median_payroll_amount"]) == (2, 400.0)
    w1 = row(out, "w1", "30d")
    assert (w1["wage_in_count"], w1["wage_payers"]) == (1, 1)


def test_missing_optional_columns_give_null_features() -> None:
    tx, acc = frames([(1, "a", "b", 10, "card", None, None)])
    out = compute(tx, acc, load_settings())
    assert out["hotel_count"].null_count() == out.height
    assert "hotel_count" in missing_inputs(out)
    assert "in_count" not in missing_inputs(out)


def test_bad_settings_file_names_the_field(tmp_path) -> None:
    p = tmp_path / "features.yaml"
    p.write_text("windows: [7x]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a duration"):
        load_settings(p)
    p.write_text("night_start_hour: 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="night_start_hour"):
        load_settings(p)


def test_one_off_relationships_by_hand() -> None:
    # m hears once from s1 and s2 (wire, p2p) and pays r1 once (mobile) within the week; f pays m
    # twice (a relationship, not a one-off), r2 is paid once by ACH (batch channel, not counted)
    # and once by card; s3 -> m once in the second week.
    tx, acc = frames(
        [
            (1, "s1", "m", 100, "wire", None, None),
            (2, "s2", "m", 300, "p2p", None, None),
            (3, "f", "m", 50, "p2p", None, None),
            (4, "m", "r1", 350, "mobile_money", None, None),
            (5, "m", "r2", 20, "ach", None, None),
            (6, "m", "r2", 10, "card", None, None),
            (100, "f", "m", 50, "p2p", None, None),
            (24 * 8, "s3", "m", 70, "wire", None, None),
        ]
    )
    out = compute(tx, acc, load_settings())
    week1 = (
        out.filter((pl.col("account_id") == "m") & (pl.col("window") == "7d"))
        .sort("window_start")
        .row(0, named=True)
    )
    assert (week1["one_off_payers"], week1["one_off_payees"]) == (2, 1)
    assert (week1["one_off_in_sum"], week1["one_off_out_sum"]) == (400.0, 350.0)
    assert week1["one_off_through"] == 350.0
    assert week1["one_off_in_share"] == pytest.approx(400 / 500)
    assert week1["one_off_out_share"] == pytest.approx(350 / 380)
    assert week1["one_off_share"] == pytest.approx(750 / 880)
    month = row(out, "m", "30d")
    assert (month["one_off_payers"], month["one_off_payees"]) == (3, 1)
    # the other side sees the same relationship once: s1 paid one account once
    assert row(out, "s1")["one_off_payees"] == 1
    assert row(out, "f", "30d")["one_off_payees"] == 0
    assert row(out, "r1")["one_off_payers"] == 1 and row(out, "r2", "30d")["one_off_payers"] == 0

"""The synthetic generator as a whole: deterministic, canonical (columns, types, valid rows,
volume), refusing bad parameters by name, and labelled consistently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from synth_schemes import DAYS, START

from flows87 import schema
from flows87.errors import ConfigError
from flows87.research.synth import TYPOLOGIES, SynthData, generate


def test_same_seed_gives_identical_frames() -> None:
    a = generate(2_000, 14, seed=3)
    b = generate(2_000, 14, seed=3)
    assert_frame_equal(a.transactions, b.transactions)
    assert_frame_equal(a.accounts, b.accounts)


def test_other_seed_gives_other_frames() -> None:
    a = generate(2_000, 14, seed=3)
    c = generate(2_000, 14, seed=4)
    assert not a.transactions.equals(c.transactions)
    assert not a.accounts.equals(c.accounts)


@pytest.mark.parametrize("table", ["transactions", "accounts"])
def test_columns_and_types_are_canonical(data: SynthData, table: str) -> None:
    frame = getattr(data, table)
    expected = schema.schema(table)
    assert dict(frame.schema) == {k: v for k, v in expected.items() if k in frame.columns}
    assert set(expected) - set(frame.columns) == set()
    for c in schema.columns(table):
        if c.required or c.label:
            assert frame[c.name].null_count() == 0 or c.name in ("typology", "scheme_id"), c.name


def test_transactions_are_valid(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    assert tx["txn_id"].is_unique().all()
    assert acc["account_id"].is_unique().all()
    assert (tx["amount"] > 0).all() and (tx["amount_base"] > 0).all()
    assert (tx["src_account"] != tx["dst_account"]).all()
    ids = acc["account_id"]
    assert tx["src_account"].is_in(ids.implode()).all()
    assert tx["dst_account"].is_in(ids.implode()).all()
    assert tx["channel"].is_in(list(schema.CHANNELS)).all()
    begin = datetime(START.year, START.month, START.day, tzinfo=UTC)
    assert tx["ts"].min() >= begin
    assert tx["ts"].max() < begin + timedelta(days=DAYS)
    cards = tx.filter(pl.col("channel") == "card")
    assert cards["mcc"].str.contains(r"^\d{4}$").all()
    assert tx.filter(pl.col("channel") != "card")["mcc"].null_count() == tx.height - cards.height
    base = tx.filter(pl.col("currency") == "USD")
    assert (base["amount"] == base["amount_base"]).all()
    foreign = tx.filter(pl.col("currency") != "USD")
    assert foreign.height > 0
    assert ((foreign["src_country"] != "US") | (foreign["dst_country"] != "US")).all()
    assert acc["bank_id"].str.contains(r"^\d{4}$").all()


def test_no_account_moves_money_before_it_opened(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    first = (
        pl.concat(
            [
                tx.select(pl.col("src_account").alias("account_id"), "ts"),
                tx.select(pl.col("dst_account").alias("account_id"), "ts"),
            ]
        )
        .group_by("account_id")
        .agg(pl.col("ts").min().alias("first"))
    )
    joined = first.join(acc.select("account_id", "opened_at"), on="account_id")
    assert joined.height == first.height
    assert (joined["opened_at"] <= joined["first"]).all()


def test_volume_is_about_one_transaction_per_account_day(tx: pl.DataFrame) -> None:
    assert 0.7 <= tx.height / (3_000 * DAYS) <= 1.5


def test_progress_is_reported_up_to_done() -> None:
    seen: list[tuple[str, float]] = []
    generate(1_000, 7, seed=1, progress=lambda step, done: seen.append((step, done)))
    fractions = [f for _, f in seen]
    assert len(seen) >= 3
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize(
    "kwargs, column",
    [
        ({"accounts": 10}, "accounts"),
        ({"days": 2}, "days"),
        ({"seed": -1}, "seed"),
        ({"base_currency": "XXX"}, "base_currency"),
        ({"suspicious_share": 0.5}, "suspicious_share"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs: dict, column: str) -> None:
    with pytest.raises(ConfigError) as err:
        generate(**{"accounts": 800, "days": 7, **kwargs})
    assert err.value.column == column


@pytest.mark.parametrize("table", ["transactions", "accounts"])
def test_labels_are_consistent(data: SynthData, table: str) -> None:
    frame = getattr(data, table)
    assert frame["is_suspicious"].null_count() == 0
    assert (frame["is_suspicious"] == frame["typology"].is_not_null()).all()
    assert (frame["is_suspicious"] == frame["scheme_id"].is_not_null()).all()
    susp = frame.filter("is_suspicious")
    assert (susp["scheme_id"].str.starts_with(susp["typology"] + "-")).all()
    per_typology = susp.group_by("typology").agg(pl.col("scheme_id").n_unique())
    assert set(per_typology["typology"]) == set(TYPOLOGIES)
    assert (per_typology["scheme_id"] >= 2).all()


def test_suspicious_share_is_near_the_request() -> None:
    acc = generate(5_000, 14, seed=2, suspicious_share=0.05).accounts
    share = acc["is_suspicious"].mean()
    assert 0.03 <= share <= 0.08
    clean = generate(1_000, 7, seed=2, suspicious_share=0.0)
    assert not clean.accounts["is_suspicious"].any()
    assert not clean.transactions["is_suspicious"].any()


def test_scheme_members_also_live_ordinary_lives(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    members = acc.filter("is_suspicious")["account_id"].implode()
    own = tx.filter(~pl.col("is_suspicious") & pl.col("src_account").is_in(members))
    assert own["src_account"].n_unique() >= 0.5 * len(members[0])

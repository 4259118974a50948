"""The shape generator (flows87.research.synth.shapes): each small shape has the property it claims.

Properties are measured on the frames the way anyone reading the data would (distinct payers,
times of day, src == dst, the path the labelled transfers take), never from the generator's own
bookkeeping; the sizes expected are the ones asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87 import schema
from flows87.errors import ConfigError
from flows87.pipeline.ingest import read
from flows87.research.synth import shapes

SMALL = shapes.Sizes.small()
N = 20_000
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=30)
ROUND = {20.0, 50.0, 100.0, 200.0, 500.0, 1000.0}


@cache
def small(shape: str, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    return shapes.generate(shape, N, seed=seed, sizes=SMALL)


def self_transfers(tx: pl.DataFrame) -> int:
    return tx.filter(pl.col("src_account") == pl.col("dst_account")).height


def first_activity(tx: pl.DataFrame) -> pl.DataFrame:
    ends = pl.concat(
        [
            tx.select(pl.col("src_account").alias("account_id"), "ts"),
            tx.select(pl.col("dst_account").alias("account_id"), "ts"),
        ]
    )
    return ends.group_by("account_id").agg(first=pl.col("ts").min())


# -- every shape --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_every_shape_is_canonical_and_consistent(shape: str) -> None:
    tx, acc = small(shape)
    assert tx.schema == schema.schema("transactions")
    assert acc.schema == schema.schema("accounts")
    assert tx.height >= N and tx["txn_id"].is_unique().all() and acc["account_id"].is_unique().all()
    ids = set(acc["account_id"])
    assert set(tx["src_account"]) <= ids and set(tx["dst_account"]) <= ids
    assert (
        tx.select(schema.required_columns("transactions")).null_count().sum_horizontal().item() == 0
    )
    assert (tx["amount"] > 0).all() and (tx["amount_base"] > 0).all()
    assert tx["ts"].min() >= START and tx["ts"].max() < END
    assert tx["ts"].is_sorted()
    assert set(tx["channel"]) <= set(schema.CHANNELS)
    assert set(acc["kind"]) == {"individual", "business"}


@pytest.mark.parametrize("shape", [s for s in shapes.SHAPES if s != "chain"])
def test_innocent_shapes_are_labelled_innocent(shape: str) -> None:
    tx, acc = small(shape)
    for frame in (tx, acc):
        assert frame["is_suspicious"].to_list() == [False] * frame.height
        assert frame["typology"].null_count() == frame["scheme_id"].null_count() == frame.height


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a = shapes.generate("chain", N, seed=3, sizes=SMALL)
    b = shapes.generate("chain", N, seed=3, sizes=SMALL)
    c = shapes.generate("chain", N, seed=4, sizes=SMALL)
    assert_frame_equal(a[0], b[0])
    assert_frame_equal(a[1], b[1])
    assert not a[0].equals(c[0])


def test_written_folder_reads_as_canonical_without_rejects(tmp_path: Path) -> None:
    tx, acc = small("fifty_currencies")
    shapes.write(tx, acc, tmp_path / "data")
    result = read(tmp_path / "data")
    assert result.format == "canonical" and result.rejects.height == 0
    back = result.transactions.collect()
    assert back.height == tx.height
    assert back["amount_base"].sum() == pytest.approx(tx["amount_base"].sum())
    assert result.accounts.collect().height == acc.height


def test_unknown_shape_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown shape"):
        shapes.generate("spiral", N)
    with pytest.raises(ConfigError, match="currencies"):
        shapes.generate("fifty_currencies", N, sizes=shapes.Sizes(currencies=51))


@pytest.mark.slow
def test_one_million_rows_in_a_few_seconds() -> None:
    import time

    t0 = time.perf_counter()
    tx, _ = shapes.generate("random", 1_000_000)
    assert tx.height == 1_000_000 and time.perf_counter() - t0 < 15


# -- the background (random) -----------------------------------------------------------------


def test_random_background_is_ordinary() -> None:
    tx, acc = small("random")
    assert tx.height == N and self_transfers(tx) == 0
    assert (acc["opened_at"] < START).all()
    assert 0.03 < (acc["kind"] == "business").mean() < 0.15
    hours = tx["ts"].dt.hour()
    assert hours.n_unique() == 24 and 0.5 < ((hours >= 9) & (hours < 18)).mean() < 0.85
    assert (tx["ts"].dt.truncate("1d") != tx["ts"]).mean() > 0.99
    assert tx["ts"].dt.date().n_unique() == 30
    usd = (tx["currency"] == "USD").mean()
    assert 0.9 < usd < 1 and tx["currency"].n_unique() > 3
    assert tx["amount"].n_unique() > N / 2
    assert tx.filter(pl.col("channel") == "card")["mcc"].null_count() == 0


# -- the shapes ------------------------------------------------------------------------------


def test_hub_in_has_a_hub_with_that_many_distinct_payers() -> None:
    tx, _ = small("hub_in")
    payers = tx.group_by("dst_account").agg(pl.col("src_account").n_unique()).sort("src_account")
    assert payers["src_account"][-1] == SMALL.hub
    assert payers["src_account"][-2] < SMALL.hub / 2  # the biggest background merchant
    assert tx.height == N and self_transfers(tx) == 0


def test_hub_out_has_a_hub_with_that_many_distinct_payees() -> None:
    tx, _ = small("hub_out")
    payees = tx.group_by("src_account").agg(pl.col("dst_account").n_unique()).sort("dst_account")
    assert payees["dst_account"][-1] == SMALL.hub
    assert payees["dst_account"][-2] < SMALL.hub / 2
    hub = tx.filter(pl.col("src_account") == payees["src_account"][-1])
    assert hub.height == SMALL.hub  # each payee once
    assert hub["ts"].dt.date().n_unique() <= 3  # on pay days


def test_dense_repeat_is_a_group_paying_each_other_repeatedly() -> None:
    def dense_group(tx: pl.DataFrame) -> tuple[int, int]:
        """Accounts paying >= 5 payees and paid by >= 5 payers at least 3 times each, and the
        transfers among them."""
        repeated = tx.group_by("src_account", "dst_account").len().filter(pl.col("len") >= 3)
        pays = repeated.group_by("src_account").len().filter(pl.col("len") >= 5)
        paid = repeated.group_by("dst_account").len().filter(pl.col("len") >= 5)
        group = set(pays["src_account"]) & set(paid["dst_account"])
        inside = tx.filter(
            pl.col("src_account").is_in(list(group)) & pl.col("dst_account").is_in(list(group))
        )
        return len(group), inside.height

    members, transfers = dense_group(small("dense_repeat")[0])
    assert 0.85 * SMALL.dense_accounts <= members <= SMALL.dense_accounts
    assert transfers >= 0.85 * SMALL.dense_transfers
    members, transfers = dense_group(small("random")[0])
    assert members < SMALL.dense_accounts / 10 and transfers < SMALL.dense_transfers / 20


def test_new_accounts_are_all_opened_inside_the_period_before_they_transact() -> None:
    tx, acc = small("new_accounts")
    assert (acc["opened_at"] >= START).all() and (acc["opened_at"] < END).all()
    late = acc.join(first_activity(tx), on="account_id").filter(
        pl.col("opened_at") > pl.col("first")
    )
    assert late.height == 0


def test_day_resolution_puts_every_timestamp_at_midnight() -> None:
    tx, _ = small("day_resolution")
    assert (tx["ts"].dt.truncate("1d") == tx["ts"]).all()
    assert tx["ts"].n_unique() == 30


def test_round_amounts_are_a_handful_of_round_values() -> None:
    tx, _ = small("round_amounts")
    assert set(tx["amount"]) <= ROUND and tx["amount"].n_unique() == len(ROUND)
    assert tx["amount"].mode().to_list() == [100.0]


def test_self_transfers_count() -> None:
    tx, _ = small("self_transfers")
    assert self_transfers(tx) == SMALL.self_transfers
    assert tx.height == N


def test_one_currency_and_fifty_currencies() -> None:
    one, acc = small("one_currency")
    assert one["currency"].unique().to_list() == ["USD"]
    assert (one["amount"] == one["amount_base"]).all()
    assert set(acc["country"]) == {"US"}
    fifty, acc = small("fifty_currencies")
    assert fifty["currency"].n_unique() == 50 and acc["country"].n_unique() == 50
    assert (fifty["currency"] == "USD").mean() > 0.1  # the most common, not the only one
    # one rate per currency: amount / amount_base agrees within rounding
    rate = (
        fifty.filter(pl.col("amount_base") >= 10)
        .group_by("currency")
        .agg(
            spread=(pl.col("amount") / pl.col("amount_base")).max()
            / (pl.col("amount") / pl.col("amount_base")).min()
        )
    )
    assert rate["spread"].max() < 1.2


def test_chain_is_a_labelled_pass_through_path() -> None:
    tx, acc = small("chain")
    hops = tx.filter(pl.col("is_suspicious")).sort("ts")
    assert hops.height == SMALL.chain_hops
    assert set(hops["typology"]) == {"mule_chain"} and hops["scheme_id"].n_unique() == 1
    # consecutive: each hop starts where the previous one ended, through distinct accounts
    assert hops["src_account"][1:].to_list() == hops["dst_account"][:-1].to_list()
    path = [*hops["src_account"], hops["dst_account"][-1]]
    assert len(set(path)) == SMALL.chain_hops + 1
    # pass-through: passed on soon after, nearly the whole amount, never more
    gaps = hops["ts"].diff().drop_nulls()
    assert (gaps > timedelta(0)).all() and gaps.max() <= timedelta(hours=6)
    ratio = (hops["amount"] / hops["amount"].shift(1)).drop_nulls()
    assert ratio.min() >= 0.98 and ratio.max() <= 1.0
    # the chain's accounts are exactly the labelled accounts, and do nothing else
    labelled = acc.filter(pl.col("is_suspicious"))
    assert set(labelled["account_id"]) == set(path)
    assert set(labelled["typology"]) == {"mule_chain"}
    assert set(labelled["scheme_id"]) == set(hops["scheme_id"])
    others = tx.filter(~pl.col("is_suspicious"))
    assert not set(others["src_account"]) & set(path)
    assert not set(others["dst_account"]) & set(path)
    assert tx.height == N

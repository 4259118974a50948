"""The laundering typologies as the generator shapes them (funnels, structuring, mule chains and
networks, fans, scatter-gather, round trips, shared identifiers, small international transfers),
checked from the data."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from synth_schemes import BEGIN, DAYS, each_scheme, scheme_txns


def test_funnel_account_shape(tx: pl.DataFrame) -> None:
    for part in each_scheme(tx, "funnel_account"):
        deposits = part.filter(pl.col("channel") == "cash_deposit")
        assert deposits["dst_account"].n_unique() == 1
        funnel = deposits["dst_account"][0]
        assert deposits["location_id"].n_unique() >= 3
        assert deposits["location_id"].str.split("-").list.get(1).n_unique() >= 3
        out = part.filter(pl.col("src_account") == funnel)
        assert 0.8 <= out["amount_base"].sum() / deposits["amount_base"].sum() <= 1.0
        # every deposit has left within 48 hours (some later outflow covers it)
        assert out["ts"].max() - deposits["ts"].max() <= timedelta(hours=48)
        assert out["channel"].is_in(["wire", "cash_withdrawal"]).all()


def test_structuring_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for part in each_scheme(tx, "structuring"):
        assert (part["channel"] == "cash_deposit").all()
        assert part["amount_base"].is_between(9_000, 10_000, closed="left").all()
        assert part.height >= 4
        owners = acc.filter(pl.col("account_id").is_in(part["dst_account"].unique().implode()))
        assert owners["party_id"].n_unique() == 1


def test_mule_chain_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    part = scheme_txns(tx, "mule_chain").with_row_index("hop")
    members = acc.filter(pl.col("typology") == "mule_chain")["account_id"].implode()
    nxt = (
        part.join(
            part,
            left_on=["scheme_id", "dst_account"],
            right_on=["scheme_id", "src_account"],
            suffix="_next",
        )
        .filter((pl.col("ts_next") > pl.col("ts")) & pl.col("dst_account").is_in(members))
        .sort("ts_next")
        .group_by("hop")
        .first()
    )
    assert nxt.height >= 2 * part["scheme_id"].n_unique()
    gap = nxt["ts_next"] - nxt["ts"]
    assert (gap <= timedelta(hours=12)).all()
    ratio = nxt["amount_base_next"] / nxt["amount_base"]
    assert ratio.is_between(0.9, 1.0, closed="left").all()
    mules = acc.filter(pl.col("account_id").is_in(nxt["dst_account"].implode()))
    young = mules["opened_at"] >= BEGIN - timedelta(days=120)
    assert young.mean() >= 0.5  # new accounts, but for an occasional dormant one


def test_dormant_mules_wake_up_with_high_volume(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """Some mules and funnels are old accounts silent until the scheme reaches them."""
    typologies = ["mule_chain", "funnel_account"]
    members = acc.filter(pl.col("typology").is_in(typologies) & (pl.col("country") == "US"))
    legs = pl.concat(
        [
            tx.select(pl.col(side).alias("account_id"), "ts", "amount_base", "is_suspicious")
            for side in ("src_account", "dst_account")
        ]
    ).join(members.select("account_id", "opened_at"), on="account_id")
    per = legs.group_by("account_id").agg(
        pl.col("ts").min().alias("first"),
        pl.col("ts").filter("is_suspicious").min().alias("first_scheme"),
        pl.col("amount_base").filter("is_suspicious").sum().alias("volume"),
        pl.col("opened_at").first(),
    )
    dormant = per.filter(
        (pl.col("first") == pl.col("first_scheme"))
        & (pl.col("first") - pl.col("opened_at") >= timedelta(days=120))
        & (pl.col("first") >= BEGIN + timedelta(days=DAYS / 4))  # silent
        & (pl.col("volume") >= 10_000)
    )
    assert dormant.height >= 1
    # one per scheme at most: the other mules are new accounts
    schemes = members.filter(pl.col("account_id").is_in(dormant["account_id"].implode()))
    assert schemes["scheme_id"].is_unique().all()


def test_mule_network_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for part in each_scheme(tx, "mule_network"):
        members = acc.filter(pl.col("scheme_id") == part["scheme_id"][0])
        ids = members["account_id"].implode()
        block = part.filter(
            pl.col("src_account").is_in(ids)
            & pl.col("dst_account").is_in(ids)
            & (pl.col("src_country") == pl.col("dst_country"))
        )
        senders, receivers = block["src_account"].unique(), block["dst_account"].unique()
        assert senders.len() >= 3 and receivers.len() >= 3
        assert not senders.is_in(receivers.implode()).any()  # bipartite
        pairs = block.select("src_account", "dst_account").unique().height
        assert pairs / (senders.len() * receivers.len()) >= 0.5  # dense
        assert block["amount_base"].is_between(1_000, 5_000).all()  # low thousands
        assert block["ts"].max() - block["ts"].min() <= timedelta(days=6)
        first = (
            pl.concat(
                [
                    block.select(pl.col(side).alias("account_id"), "ts")
                    for side in ("src_account", "dst_account")
                ]
            )
            .group_by("account_id")
            .agg(pl.col("ts").min())
            .join(members.select("account_id", "opened_at"), on="account_id")
        )
        age = first["ts"] - first["opened_at"]
        assert ((age >= timedelta(0)) & (age <= timedelta(days=60))).all()  # all new
        # receivers cash out or wire abroad soon after
        out = tx.filter(
            pl.col("src_account").is_in(receivers.implode())
            & pl.col("is_suspicious")
            & (
                (pl.col("channel") == "cash_withdrawal")
                | (pl.col("src_country") != pl.col("dst_country"))
            )
        )
        assert out["amount_base"].sum() >= 0.8 * block["amount_base"].sum()
        assert out["ts"].max() - block["ts"].max() <= timedelta(days=2)


@pytest.mark.parametrize(
    "typology, hub, other",
    [
        ("fan_in", "dst_account", "src_account"),
        ("fan_out", "src_account", "dst_account"),
    ],
)
def test_fan_shapes(tx: pl.DataFrame, typology: str, hub: str, other: str) -> None:
    for part in each_scheme(tx, typology):
        fans = part.group_by(hub).agg(
            pl.col(other).n_unique().alias("n"),
            (pl.col("ts").max() - pl.col("ts").min()).alias("span"),
        )
        best = fans.sort("n", descending=True).row(0, named=True)
        assert best["n"] >= 8
        assert best["span"] <= timedelta(days=2)


def test_scatter_gather_shape(tx: pl.DataFrame) -> None:
    for part in each_scheme(tx, "scatter_gather"):
        legs = part.join(part, left_on="dst_account", right_on="src_account", suffix="_2")
        legs = legs.filter(
            (pl.col("ts_2") > pl.col("ts")) & (pl.col("ts_2") - pl.col("ts") <= timedelta(days=5))
        )
        paths = legs.group_by("src_account", "dst_account_2").agg(
            pl.col("dst_account").n_unique().alias("mids")
        )
        assert paths["mids"].max() >= 3


def test_round_tripping_shape(tx: pl.DataFrame) -> None:
    part = scheme_txns(tx, "round_tripping").sort("scheme_id", "ts")
    by = pl.col("scheme_id")
    walk = part.with_columns(
        origin=pl.col("src_account").first().over(by),
        prev=pl.col("dst_account").shift(1).over(by),
        prev_ts=pl.col("ts").shift(1).over(by),
    ).with_columns(cycle=(pl.col("src_account") == pl.col("origin")).cum_sum().over(by))
    assert (walk["src_account"] == walk["prev"].fill_null(walk["origin"])).all()
    assert (walk.drop_nulls("prev_ts").select(pl.col("ts") > pl.col("prev_ts"))).to_series().all()
    cycles = walk.group_by("scheme_id", "cycle").agg(
        pl.col("dst_account").last() == pl.col("origin").first(),
        pl.len().alias("legs"),
        (pl.col("amount_base").last() / pl.col("amount_base").first()).alias("kept"),
    )
    assert cycles["dst_account"].all()
    assert cycles["legs"].is_between(2, 6).all()
    assert (cycles["kept"] >= 0.7).all() and (cycles["kept"] < 1).all()
    assert (part["src_country"] != part["dst_country"]).any()


def test_shared_identifiers_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for part in each_scheme(tx, "shared_identifiers"):
        members = acc.filter(pl.col("scheme_id") == part["scheme_id"][0])
        biggest = 0
        for ident in ("address", "phone", "device_id"):
            groups = members.group_by(ident).agg(
                pl.col("name").str.split(" ").list.last().n_unique().alias("surnames"),
                pl.col("birth_date").n_unique(),
                pl.col("party_id").n_unique(),
            )
            ok = groups.filter(
                (pl.col("surnames") >= 4) & (pl.col("birth_date") >= 4) & (pl.col("party_id") >= 4)
            )
            biggest = max(biggest, ok.height)
        assert biggest >= 1
        ids = members["account_id"].implode()
        assert (
            part.filter(pl.col("src_account").is_in(ids) & pl.col("dst_account").is_in(ids)).height
            >= 4
        )


def test_cse_small_intl_shape(tx: pl.DataFrame) -> None:
    for part in each_scheme(tx, "cse_small_intl"):
        assert part["src_account"].n_unique() == 1
        assert part.height >= 8
        assert (part["src_country"] != part["dst_country"]).all()
        assert (part["amount_base"] <= 150).all()
        assert part["dst_account"].n_unique() <= 3
        assert part["memo"].null_count() == part.height

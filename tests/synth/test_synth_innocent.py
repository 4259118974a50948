"""The innocent look-alikes the generator mixes in: ordinary people and businesses whose traffic
looks like a typology's in one respect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from synth_schemes import BEGIN, DAYS, NIGHT, PAID, START, atm_occasions


def innocent(acc: pl.DataFrame) -> pl.Series:
    return acc.filter(~pl.col("is_suspicious"))["account_id"].implode()


def test_innocent_hotel_heavy_travellers(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    hotels = tx.filter(pl.col("src_account").is_in(innocent(acc)) & (pl.col("mcc") == "7011"))
    heavy = hotels.group_by("src_account").agg(pl.len(), pl.col("location_id").n_unique())
    assert heavy.filter((pl.col("len") >= 4) & (pl.col("location_id") >= 2)).height >= 3


def test_innocent_cash_intensive_businesses(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    businesses = acc.filter(~pl.col("is_suspicious") & (pl.col("kind") == "business"))
    deposits = tx.filter(
        (pl.col("channel") == "cash_deposit")
        & pl.col("dst_account").is_in(businesses["account_id"].implode())
    )
    per = deposits.group_by("dst_account").agg(
        pl.len(),
        pl.col("amount_base").is_between(9_000, 10_000, closed="left").sum().alias("near"),
        (pl.col("amount_base") >= 10_000).sum().alias("over"),
    )
    heavy = per.filter(pl.col("len") >= 10)
    assert heavy.height >= 3
    assert heavy["near"].sum() >= 1 and heavy["over"].sum() >= 1
    assert (heavy["near"] < 0.5 * heavy["len"]).all()


def test_innocent_students_and_sellers_with_many_payers(
    tx: pl.DataFrame, acc: pl.DataFrame
) -> None:
    p2p = tx.filter(
        pl.col("channel").is_in(["p2p", "mobile_money"])
        & pl.col("dst_account").is_in(innocent(acc))
    )
    many = p2p.group_by("dst_account").agg(
        pl.col("src_account").n_unique().alias("payers"),
        pl.col("amount_base").median().alias("median"),
    )
    many = many.filter((pl.col("payers") >= 8) & (pl.col("median") <= 150))
    students = acc.filter(pl.col("occupation") == "student")["account_id"].implode()
    assert many.filter(pl.col("dst_account").is_in(students)).height >= 1
    assert many.height >= 5
    late = p2p.group_by("dst_account").agg(
        NIGHT.mean().alias("night"), pl.col("src_account").n_unique().alias("payers")
    )
    assert late.filter((pl.col("night") >= 0.5) & (pl.col("payers") >= 8)).height >= 1


def test_innocent_buyers_of_ads_prepaid_and_night_rides(
    tx: pl.DataFrame, acc: pl.DataFrame
) -> None:
    cards = tx.filter(pl.col("src_account").is_in(innocent(acc)) & (pl.col("channel") == "card"))
    for mccs in (["7311", "5967", "7273"], ["6540"]):
        often = cards.filter(pl.col("mcc").is_in(mccs)).group_by("src_account").len()
        assert often.filter(pl.col("len") >= 3).height >= 3
    rides = cards.filter((pl.col("mcc") == "4121") & NIGHT).group_by("src_account").len()
    assert rides.filter(pl.col("len") >= 3).height >= 3


def test_innocent_shared_addresses(acc: pl.DataFrame) -> None:
    people = acc.filter(
        ~pl.col("is_suspicious")
        & (pl.col("kind") == "individual")
        & pl.col("address").is_not_null()
    )
    shared = people.group_by("address").agg(
        pl.col("party_id").n_unique().alias("parties"),
        pl.col("name").str.split(" ").list.last().n_unique().alias("surnames"),
    )
    assert shared.filter(pl.col("parties") >= 3).height >= 10  # families
    assert shared.filter(pl.col("surnames") >= 2).height >= 10  # flatmates


def test_innocent_landlords_small_remitters_night_workers(
    tx: pl.DataFrame, acc: pl.DataFrame
) -> None:
    ok = innocent(acc)
    rent = tx.filter(
        pl.col("dst_account").is_in(ok)
        & (pl.col("amount_base") >= 500)
        & (pl.col("src_account") != pl.col("dst_account"))
    )
    landlords = acc.filter(pl.col("kind") == "individual")["account_id"].implode()
    per = (
        rent.filter(pl.col("dst_account").is_in(landlords))
        .group_by("dst_account")
        .agg(pl.col("src_account").n_unique().alias("payers"))
    )
    assert per["payers"].max() >= 5
    small = tx.filter(
        pl.col("src_account").is_in(ok)
        & (pl.col("amount_base") <= 150)
        & (pl.col("src_country") != pl.col("dst_country"))
    )
    assert small.group_by("src_account").len()["len"].max() >= 3
    cards = tx.filter(pl.col("src_account").is_in(ok) & (pl.col("channel") == "card"))
    night = cards.group_by("src_account").agg(NIGHT.mean().alias("night"), pl.len())
    assert night.filter((pl.col("night") >= 0.4) & (pl.col("len") >= 5)).height >= 3


def test_innocent_new_accounts_are_active(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    begin = datetime(START.year, START.month, START.day, tzinfo=UTC)
    new = acc.filter(~pl.col("is_suspicious") & (pl.col("opened_at") >= begin - timedelta(days=30)))
    active = tx.filter(pl.col("src_account").is_in(new["account_id"].implode()))
    assert active["src_account"].n_unique() >= 10


def test_innocent_gift_card_bursts(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    cards = tx.filter(pl.col("src_account").is_in(innocent(acc)) & (pl.col("mcc") == "6540"))
    burst = (
        cards.sort("src_account", "ts")
        .rolling(index_column="ts", period="4d", group_by="src_account")
        .agg(pl.len())
        .filter(pl.col("len") >= 3)
    )
    assert burst["src_account"].n_unique() >= 3


def test_innocent_families_opening_accounts_together(acc: pl.DataFrame) -> None:
    people = acc.filter(~pl.col("is_suspicious") & (pl.col("kind") == "individual"))
    homes = people.group_by("address").agg(
        pl.len(),
        pl.col("name").str.split(" ").list.last().n_unique().alias("surnames"),
        (pl.col("opened_at").max() - pl.col("opened_at").min()).alias("span"),
        pl.col("opened_at").min().alias("first"),
    )
    together = homes.filter(
        (pl.col("len") >= 3) & (pl.col("surnames") == 1) & (pl.col("span") <= timedelta(days=7))
    )
    assert together.height >= 2
    assert (together["first"] >= BEGIN - timedelta(days=60)).all()  # recently


def test_innocent_fixed_loan_instalments(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """Many people paying one account the very same sum, like workers repaying a recruiter."""
    pays = tx.filter(
        pl.col("src_account").is_in(innocent(acc))
        & pl.col("dst_account").is_in(innocent(acc))
        & pl.col("amount_base").is_between(150, 400)
    )
    same = pays.group_by("dst_account", "amount_base").agg(pl.col("src_account").n_unique())
    assert same.filter(pl.col("src_account") >= 5)["dst_account"].n_unique() >= 1


def test_innocent_people_with_two_or_three_jobs(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    firms = acc.filter(pl.col("kind") == "business")["account_id"].implode()
    people = acc.filter(~pl.col("is_suspicious") & (pl.col("kind") == "individual"))
    wages = tx.filter(
        pl.col("dst_account").is_in(people["account_id"].implode())
        & pl.col("src_account").is_in(firms)
        & PAID
    )
    jobs = wages.group_by("dst_account").agg(pl.col("src_account").n_unique())["src_account"]
    assert (jobs == 2).sum() >= 10
    assert 1 <= (jobs >= 3).sum() < (jobs == 2).sum()  # rarely three


def test_innocent_busy_atms(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    cash = tx.filter(
        (pl.col("channel") == "cash_withdrawal") & pl.col("src_account").is_in(innocent(acc))
    )
    assert atm_occasions(cash).height >= 5
    # some households come back together: three of them at one ATM on several evenings
    homes = cash.join(
        acc.select(pl.col("account_id").alias("src_account"), "address"), on="src_account"
    ).sort("address", "location_id", "ts")
    together = (
        homes.rolling(index_column="ts", period="10m", group_by=["address", "location_id"])
        .agg(pl.col("src_account").n_unique().alias("n"))
        .filter(pl.col("n") >= 3)
        .group_by("address")
        .agg(pl.col("ts").dt.date().n_unique().alias("days"))
    )
    assert (together["days"] >= 2).any()


def test_innocent_late_opening_salons(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    salons = acc.filter(~pl.col("is_suspicious") & pl.col("business_type").is_in(["7297", "7230"]))
    sales = tx.filter(
        (pl.col("channel") == "card") & pl.col("dst_account").is_in(salons["account_id"].implode())
    )
    late = sales.group_by("dst_account").agg(pl.len(), NIGHT.mean().alias("night"))
    assert late.filter((pl.col("len") >= 10) & (pl.col("night") >= 0.4)).height >= 1  # near 0.5
    assert late.filter(pl.col("night") < 0.2).height >= 1  # most keep day hours


def test_innocent_dormant_accounts_wake_up_with_normal_volume(
    tx: pl.DataFrame, acc: pl.DataFrame
) -> None:
    old = acc.filter(
        ~pl.col("is_suspicious")
        & (pl.col("kind") == "individual")
        & (pl.col("opened_at") <= BEGIN - timedelta(days=365))
    )
    legs = pl.concat(
        [
            tx.select(pl.col(side).alias("account_id"), "ts", "amount_base")
            for side in ("src_account", "dst_account")
        ]
    ).join(old.select("account_id"), on="account_id")
    per = legs.group_by("account_id").agg(pl.col("ts").min(), pl.col("amount_base").sum())
    woke = per.filter(pl.col("ts") >= BEGIN + timedelta(days=DAYS * 0.4))
    assert woke.height >= 3
    assert woke["amount_base"].median() < 10_000

"""The trafficking typologies as the generator shapes them (sexual exploitation, labour
exploitation), checked from the data the way a detector would see it: times, amounts,
counterparties, shared identifiers."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from synth_schemes import BEGIN, NIGHT, PAID, atm_occasions, each_scheme

TRANSFER = pl.col("channel").is_in(["p2p", "mobile_money"])


def sex_roles(tx: pl.DataFrame, acc: pl.DataFrame) -> list[tuple[pl.DataFrame, list[str], str]]:
    """Per sex-trafficking scheme: its members, its victims (people paid by many at night) and
    the controller their takings are swept to."""
    out = []
    for part in each_scheme(tx, "sex_trafficking"):
        members = acc.filter(pl.col("scheme_id") == part["scheme_id"][0])
        people = members.filter(pl.col("kind") == "individual")["account_id"].implode()
        inbound = tx.filter(pl.col("dst_account").is_in(people))
        victims = (
            inbound.group_by("dst_account")
            .agg(
                NIGHT.mean().alias("night"),
                pl.col("src_account").n_unique().alias("payers"),
            )
            .filter((pl.col("night") >= 0.5) & (pl.col("payers") >= 8))["dst_account"]
        )
        sweeps = part.filter(pl.col("src_account").is_in(victims.implode()) & TRANSFER)
        out.append((members, victims.to_list(), sweeps["dst_account"].mode()[0]))
    return out


def test_sex_trafficking_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for members, victims, controller in sex_roles(tx, acc):
        assert len(victims) >= 2
        inbound = tx.filter(pl.col("dst_account").is_in(victims) & NIGHT)
        assert (
            inbound.group_by("dst_account")
            .agg(pl.col("amount_base").median())["amount_base"]
            .is_between(80, 500)
            .all()
        )
        # takings swept to one account within hours of the night's last client
        sweeps = tx.filter(
            pl.col("src_account").is_in(victims) & TRANSFER & pl.col("is_suspicious")
        )
        assert sweeps["dst_account"].n_unique() == 1
        spend = tx.filter((pl.col("src_account") == controller) & (pl.col("channel") == "card"))
        hotels = spend.filter(pl.col("mcc") == "7011")
        assert hotels["location_id"].n_unique() >= 2
        assert hotels["location_id"].str.split("-").list.get(1).n_unique() >= 2  # cities
        victim_rows = members.filter(pl.col("account_id").is_in(victims))
        assert victim_rows["address"].n_unique() == 1


def sex_flags(
    tx: pl.DataFrame, acc: pl.DataFrame, members: pl.DataFrame, victims: list[str], controller: str
) -> set[str]:
    """The optional red flags one scheme shows, measured from the data."""
    flags = set()
    spend = tx.filter((pl.col("src_account") == controller) & (pl.col("channel") == "card"))
    if spend.filter(pl.col("mcc") == "6540").height >= 4:
        flags.add("prepaid")
    ads = spend.filter(pl.col("mcc").is_in(["7311", "5967", "7273"]))["ts"].sort()
    if ads.len() >= 3 and ads.max() - ads.min() >= timedelta(days=10):
        flags.add("ads")  # week after week
    weeks = (
        spend.filter(pl.col("mcc") == "7011")
        .group_by((pl.col("ts") - BEGIN).dt.total_days() // 7)
        .agg(
            pl.len(),
            pl.col("dst_account").n_unique().alias("hotels"),
            pl.col("location_id").n_unique().alias("places"),
        )
    )
    if weeks.filter(
        (pl.col("len") >= 4) & (pl.col("hotels") >= 2) & (pl.col("places") >= 3)
    ).height:
        flags.add("circuit")  # a hotel circuit within one week
    flights = spend.filter(pl.col("mcc") == "4511")
    if flights.height >= 4 and flights["ts"].dt.date().value_counts()["count"].max() >= 2:
        flags.add("airline")
    cash = tx.filter(
        (pl.col("channel") == "cash_withdrawal") & pl.col("src_account").is_in(victims)
    )
    if atm_occasions(cash)["day"].n_unique() >= 2:
        flags.add("atm")
    rows = acc.filter(pl.col("account_id").is_in(victims))
    boss = acc.filter(pl.col("account_id") == controller).row(0, named=True)
    shared = rows.filter(
        (pl.col("phone") == boss["phone"]) | (pl.col("device_id") == boss["device_id"])
    )
    opened = shared["opened_at"]
    if (
        shared.height >= 3
        and opened.max() - opened.min() <= timedelta(days=7)
        and opened.min() >= BEGIN - timedelta(days=60)
    ):
        flags.add("burst")
    fronts = members.filter(pl.col("business_type").is_in(["7297", "7230"]))["account_id"]
    for front in fronts:
        inflow = tx.filter(pl.col("dst_account") == front)
        cards = inflow.filter(pl.col("channel") == "card")
        pays = tx.filter((pl.col("src_account") == front) & (pl.col("dst_account") == controller))
        assert pays.height >= 1  # a front pays the controller
        if cards.height >= 10 and cards.select(NIGHT.mean()).item() >= 0.5:
            flags.add("night_front")
        cash_in = inflow.filter(pl.col("channel") == "cash_deposit")["amount_base"].sum()
        if cash_in >= 0.8 * inflow["amount_base"].sum():
            flags.add("cash_front")
    return flags


def test_sex_trafficking_schemes_show_varied_optional_red_flags(
    tx: pl.DataFrame, acc: pl.DataFrame
) -> None:
    shown = [frozenset(sex_flags(tx, acc, *roles)) for roles in sex_roles(tx, acc)]
    every = {"prepaid", "ads", "airline", "atm", "burst", "night_front", "cash_front", "circuit"}
    assert set().union(*shown) == every  # each red flag has labelled positives
    assert all(flags != every for flags in shown)  # but no scheme shows them all
    assert len(set(shown)) == len(shown)  # and no two schemes show the same ones


LABOUR_SECTORS = ["1711", "0780", "0763", "7349", "5812"]


def labour_roles(tx: pl.DataFrame, acc: pl.DataFrame) -> list[tuple[pl.DataFrame, str]]:
    """Per labour scheme: its member accounts and its employer (the member business)."""
    out = []
    for part in each_scheme(tx, "labour_exploitation"):
        members = acc.filter(pl.col("scheme_id") == part["scheme_id"][0])
        firms = members.filter(pl.col("kind") == "business")
        assert firms.height == 1
        out.append((members, firms["account_id"][0]))
    return out


def test_labour_exploitation_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for members, employer in labour_roles(tx, acc):
        assert (
            members.filter(pl.col("account_id") == employer)["business_type"][0] in LABOUR_SECTORS
        )
        people = members.filter(pl.col("kind") == "individual")
        assert people.height >= 6
        assert people["address"].n_unique() <= people.height / 2 + 2  # housed together


def test_labour_wages_paid_and_taken_back(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """In some schemes the employer pays low wages by bank and most comes back within days."""
    seen = 0
    for members, employer in labour_roles(tx, acc):
        wages = tx.filter(
            (pl.col("src_account") == employer)
            & pl.col("is_suspicious")
            & pl.col("dst_account").is_in(members["account_id"].implode())
        )
        workers = wages["dst_account"].unique()
        if workers.len() < 5:
            continue
        seen += 1
        assert (
            wages.group_by("dst_account").agg(pl.col("amount_base").mean())["amount_base"].median()
            < 1_000
        )  # low wages
        outflows = tx.select(
            pl.col("src_account").alias("dst_account"),
            pl.col("ts").alias("out_ts"),
            pl.col("amount_base").alias("out"),
        )
        passed_on = (
            wages.select("txn_id", "dst_account", "ts", "amount_base")
            .join(outflows, on="dst_account")
            .filter(
                (pl.col("out_ts") > pl.col("ts"))
                & (pl.col("out_ts") <= pl.col("ts") + timedelta(days=3))
            )
            .group_by("txn_id")
            .agg(pl.col("out").sum(), pl.col("amount_base").first())
        )
        assert passed_on.height / wages.height >= 0.9
        assert ((passed_on["out"] / passed_on["amount_base"]) >= 0.5).mean() >= 0.9
    assert seen >= 1


def test_labour_employer_with_revenue_but_no_payroll(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """In some schemes workers are paid in cash: revenue comes in, no payroll goes out."""
    kinds = acc.select(pl.col("account_id").alias("dst_account"), "kind")
    seen = 0
    for _, employer in labour_roles(tx, acc):
        out = tx.filter(pl.col("src_account") == employer).join(kinds, on="dst_account")
        payroll = out.filter(PAID & (pl.col("kind") == "individual")).height
        revenue = tx.filter((pl.col("dst_account") == employer) & PAID)["amount_base"].sum()
        cash = out.filter(pl.col("channel") == "cash_withdrawal")["amount_base"].sum()
        if payroll <= 1 and revenue >= 10_000 and cash >= 1_000:
            seen += 1
    assert seen >= 1


def test_labour_recruitment_fees_at_home_and_abroad(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """Workers of one scheme paying one account similar sums: a recruiter, sometimes abroad."""
    places = set()
    for members, _ in labour_roles(tx, acc):
        people = members.filter(pl.col("kind") == "individual")["account_id"].implode()
        fees = (
            tx.filter(
                pl.col("src_account").is_in(people) & pl.col("amount_base").is_between(140, 420)
            )
            .group_by("dst_account")
            .agg(
                pl.col("src_account").n_unique().alias("payers"),
                (pl.col("amount_base").std() / pl.col("amount_base").mean()).alias("cv"),
                (pl.col("src_country") != pl.col("dst_country")).all().alias("abroad"),
            )
            .filter((pl.col("payers") >= 5) & (pl.col("cv") <= 0.06))
        )
        places.update("abroad" if a else "home" for a in fees["abroad"])
    assert places == {"abroad", "home"}


def test_labour_wages_of_several_employers_pooled(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    """In some schemes one person receives payroll-type transfers from three or more firms."""
    firms = acc.filter(pl.col("kind") == "business")["account_id"].implode()
    pooled = 0
    for members, _ in labour_roles(tx, acc):
        people = members.filter(pl.col("kind") == "individual")["account_id"].implode()
        wages = tx.filter(
            pl.col("dst_account").is_in(people) & pl.col("src_account").is_in(firms) & PAID
        )
        pooled += (
            wages.group_by("dst_account").agg(pl.col("src_account").n_unique())["src_account"] >= 3
        ).sum()
    assert pooled >= 1

"""The synthetic generator: deterministic, canonical, labelled, and shaped like the typologies.

Shapes are checked from the generated data the way a detector would see them (times, amounts,
counterparties, shared identifiers), never from how ids are spelled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87 import schema
from flows87.errors import ConfigError
from flows87.research.synth import TYPOLOGIES, SynthData, generate

START = date(2026, 3, 1)
DAYS = 21
NIGHT = (pl.col("ts").dt.hour() >= 22) | (pl.col("ts").dt.hour() < 4)


@pytest.fixture(scope="module")
def data() -> SynthData:
    return generate(3_000, DAYS, seed=7, start=START, suspicious_share=0.02)


@pytest.fixture(scope="module")
def tx(data: SynthData) -> pl.DataFrame:
    return data.transactions


@pytest.fixture(scope="module")
def acc(data: SynthData) -> pl.DataFrame:
    return data.accounts


def scheme_txns(tx: pl.DataFrame, typology: str) -> pl.DataFrame:
    return tx.filter(pl.col("typology") == typology)


def each_scheme(tx: pl.DataFrame, typology: str) -> list[pl.DataFrame]:
    part = scheme_txns(tx, typology).sort("ts")
    return part.partition_by("scheme_id", maintain_order=True)


# -- determinism -----------------------------------------------------------------------------


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


# -- the canonical model ---------------------------------------------------------------------


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


# -- labels ----------------------------------------------------------------------------------


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


# -- typology shapes -------------------------------------------------------------------------

BEGIN = datetime(START.year, START.month, START.day, tzinfo=UTC)
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


def atm_occasions(withdrawals: pl.DataFrame, k: int = 3, minutes: int = 10) -> pl.DataFrame:
    """location_id, day of each occasion when >= k accounts withdrew there within minutes."""
    return (
        withdrawals.sort("location_id", "ts")
        .rolling(index_column="ts", period=f"{minutes}m", group_by="location_id")
        .agg(pl.col("src_account").n_unique().alias("n"))
        .filter(pl.col("n") >= k)
        .select("location_id", pl.col("ts").dt.date().alias("day"))
        .unique()
    )


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
PAID = pl.col("channel").is_in(["ach", "wire"])


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


# -- innocent look-alikes --------------------------------------------------------------------


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

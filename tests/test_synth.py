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
from flows87.synth import TYPOLOGIES, SynthData, generate

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
    first = pl.concat([
        tx.select(pl.col("src_account").alias("account_id"), "ts"),
        tx.select(pl.col("dst_account").alias("account_id"), "ts"),
    ]).group_by("account_id").agg(pl.col("ts").min().alias("first"))
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


@pytest.mark.parametrize("kwargs, column", [
    ({"accounts": 10}, "accounts"),
    ({"days": 2}, "days"),
    ({"seed": -1}, "seed"),
    ({"base_currency": "XXX"}, "base_currency"),
    ({"suspicious_share": 0.5}, "suspicious_share"),
])
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

def test_sex_trafficking_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for part in each_scheme(tx, "sex_trafficking"):
        members = acc.filter(pl.col("scheme_id") == part["scheme_id"][0])
        inbound = tx.filter(pl.col("dst_account").is_in(members["account_id"].implode()))
        victims = inbound.group_by("dst_account").agg(
            NIGHT.mean().alias("night"), pl.col("src_account").n_unique().alias("payers"),
            pl.col("amount_base").filter(NIGHT).median().alias("price"),
        ).filter((pl.col("night") >= 0.5) & (pl.col("payers") >= 8))
        assert victims.height >= 1
        assert victims["price"].is_between(80, 500).all()
        # takings swept to one account within hours of the night's last client
        sweeps = part.filter(pl.col("src_account").is_in(victims["dst_account"].implode()))
        assert sweeps["dst_account"].n_unique() == 1
        controller = sweeps["dst_account"][0]
        spend = tx.filter((pl.col("src_account") == controller) & (pl.col("channel") == "card"))
        hotels = spend.filter(pl.col("mcc") == "7011")
        assert hotels["location_id"].n_unique() >= 2
        assert hotels["location_id"].str.split("-").list.get(1).n_unique() >= 2   # cities
        assert spend["mcc"].is_in(["7311", "5967", "7273"]).any()
        victim_rows = members.filter(pl.col("account_id").is_in(victims["dst_account"].implode()))
        assert victim_rows["address"].n_unique() == 1


def test_labour_exploitation_shape(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    for part in each_scheme(tx, "labour_exploitation"):
        payers = part.group_by("src_account").agg(pl.col("dst_account").n_unique().alias("n"))
        employer = payers.sort("n", descending=True)["src_account"][0]
        wages = part.filter(pl.col("src_account") == employer)
        workers = wages["dst_account"].unique()
        assert workers.len() >= 5
        rows = acc.filter(pl.col("account_id").is_in(workers.implode()))
        assert rows["address"].n_unique() <= workers.len() / 2
        assert wages.group_by("dst_account").agg(pl.col("amount_base").mean())["amount_base"] \
            .median() < 1_000                                               # low wages
        outflows = tx.select(pl.col("src_account").alias("dst_account"),
                             pl.col("ts").alias("out_ts"), pl.col("amount_base").alias("out"))
        passed_on = (
            wages.select("txn_id", "dst_account", "ts", "amount_base")
            .join(outflows, on="dst_account")
            .filter((pl.col("out_ts") > pl.col("ts"))
                    & (pl.col("out_ts") <= pl.col("ts") + timedelta(days=3)))
            .group_by("txn_id").agg(pl.col("out").sum(), pl.col("amount_base").first())
        )
        share = passed_on.height / wages.height
        assert share >= 0.9
        assert ((passed_on["out"] / passed_on["amount_base"]) >= 0.5).mean() >= 0.9


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
    nxt = (
        part.join(part, left_on=["scheme_id", "dst_account"],
                  right_on=["scheme_id", "src_account"], suffix="_next")
        .filter(pl.col("ts_next") > pl.col("ts"))
        .sort("ts_next").group_by("hop").first()
    )
    assert nxt.height >= 2 * part["scheme_id"].n_unique()
    gap = nxt["ts_next"] - nxt["ts"]
    assert (gap <= timedelta(hours=12)).all()
    ratio = nxt["amount_base_next"] / nxt["amount_base"]
    assert ratio.is_between(0.9, 1.0, closed="left").all()
    mules = acc.filter(pl.col("account_id").is_in(nxt["dst_account"].implode()))
    begin = datetime(START.year, START.month, START.day, tzinfo=UTC)
    assert (mules["opened_at"] >= begin - timedelta(days=120)).all()


@pytest.mark.parametrize("typology, hub, other", [
    ("fan_in", "dst_account", "src_account"), ("fan_out", "src_account", "dst_account"),
])
def test_fan_shapes(tx: pl.DataFrame, typology: str, hub: str, other: str) -> None:
    for part in each_scheme(tx, typology):
        fans = part.group_by(hub).agg(
            pl.col(other).n_unique().alias("n"),
            (pl.col("ts").max() - pl.col("ts").min()).alias("span"))
        best = fans.sort("n", descending=True).row(0, named=True)
        assert best["n"] >= 8
        assert best["span"] <= timedelta(days=2)


def test_scatter_gather_shape(tx: pl.DataFrame) -> None:
    for part in each_scheme(tx, "scatter_gather"):
        legs = part.join(part, left_on="dst_account", right_on="src_account", suffix="_2")
        legs = legs.filter((pl.col("ts_2") > pl.col("ts"))
                           & (pl.col("ts_2") - pl.col("ts") <= timedelta(days=5)))
        paths = legs.group_by("src_account", "dst_account_2").agg(
            pl.col("dst_account").n_unique().alias("mids"))
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
                pl.col("birth_date").n_unique(), pl.col("party_id").n_unique())
            ok = groups.filter((pl.col("surnames") >= 4) & (pl.col("birth_date") >= 4)
                               & (pl.col("party_id") >= 4))
            biggest = max(biggest, ok.height)
        assert biggest >= 1
        ids = members["account_id"].implode()
        assert part.filter(pl.col("src_account").is_in(ids)
                           & pl.col("dst_account").is_in(ids)).height >= 4


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
    deposits = tx.filter((pl.col("channel") == "cash_deposit")
                         & pl.col("dst_account").is_in(businesses["account_id"].implode()))
    per = deposits.group_by("dst_account").agg(
        pl.len(),
        pl.col("amount_base").is_between(9_000, 10_000, closed="left").sum().alias("near"),
        (pl.col("amount_base") >= 10_000).sum().alias("over"))
    heavy = per.filter(pl.col("len") >= 10)
    assert heavy.height >= 3
    assert heavy["near"].sum() >= 1 and heavy["over"].sum() >= 1
    assert (heavy["near"] < 0.5 * heavy["len"]).all()


def test_innocent_students_and_sellers_with_many_payers(tx: pl.DataFrame,
                                                        acc: pl.DataFrame) -> None:
    p2p = tx.filter(pl.col("channel").is_in(["p2p", "mobile_money"])
                    & pl.col("dst_account").is_in(innocent(acc)))
    many = p2p.group_by("dst_account").agg(pl.col("src_account").n_unique().alias("payers"),
                                           pl.col("amount_base").median().alias("median"))
    many = many.filter((pl.col("payers") >= 8) & (pl.col("median") <= 150))
    students = acc.filter(pl.col("occupation") == "student")["account_id"].implode()
    assert many.filter(pl.col("dst_account").is_in(students)).height >= 1
    assert many.height >= 5
    late = p2p.group_by("dst_account").agg(NIGHT.mean().alias("night"),
                                           pl.col("src_account").n_unique().alias("payers"))
    assert late.filter((pl.col("night") >= 0.5) & (pl.col("payers") >= 8)).height >= 1


def test_innocent_buyers_of_ads_prepaid_and_night_rides(tx: pl.DataFrame,
                                                        acc: pl.DataFrame) -> None:
    cards = tx.filter(pl.col("src_account").is_in(innocent(acc)) & (pl.col("channel") == "card"))
    for mccs in (["7311", "5967", "7273"], ["6540"]):
        often = cards.filter(pl.col("mcc").is_in(mccs)).group_by("src_account").len()
        assert often.filter(pl.col("len") >= 3).height >= 3
    rides = cards.filter((pl.col("mcc") == "4121") & NIGHT).group_by("src_account").len()
    assert rides.filter(pl.col("len") >= 3).height >= 3


def test_innocent_shared_addresses(acc: pl.DataFrame) -> None:
    people = acc.filter(~pl.col("is_suspicious") & (pl.col("kind") == "individual")
                        & pl.col("address").is_not_null())
    shared = people.group_by("address").agg(
        pl.col("party_id").n_unique().alias("parties"),
        pl.col("name").str.split(" ").list.last().n_unique().alias("surnames"))
    assert shared.filter(pl.col("parties") >= 3).height >= 10       # families
    assert shared.filter(pl.col("surnames") >= 2).height >= 10      # flatmates


def test_innocent_landlords_small_remitters_night_workers(tx: pl.DataFrame,
                                                          acc: pl.DataFrame) -> None:
    ok = innocent(acc)
    rent = tx.filter(pl.col("dst_account").is_in(ok) & (pl.col("amount_base") >= 500)
                     & (pl.col("src_account") != pl.col("dst_account")))
    landlords = acc.filter(pl.col("kind") == "individual")["account_id"].implode()
    per = rent.filter(pl.col("dst_account").is_in(landlords)).group_by("dst_account").agg(
        pl.col("src_account").n_unique().alias("payers"))
    assert per["payers"].max() >= 5
    small = tx.filter(pl.col("src_account").is_in(ok) & (pl.col("amount_base") <= 150)
                      & (pl.col("src_country") != pl.col("dst_country")))
    assert small.group_by("src_account").len()["len"].max() >= 3
    cards = tx.filter(pl.col("src_account").is_in(ok) & (pl.col("channel") == "card"))
    night = cards.group_by("src_account").agg(NIGHT.mean().alias("night"), pl.len())
    assert night.filter((pl.col("night") >= 0.4) & (pl.col("len") >= 5)).height >= 3


def test_innocent_new_accounts_are_active(tx: pl.DataFrame, acc: pl.DataFrame) -> None:
    begin = datetime(START.year, START.month, START.day, tzinfo=UTC)
    new = acc.filter(~pl.col("is_suspicious") & (pl.col("opened_at") >= begin - timedelta(days=30)))
    active = tx.filter(pl.col("src_account").is_in(new["account_id"].implode()))
    assert active["src_account"].n_unique() >= 10

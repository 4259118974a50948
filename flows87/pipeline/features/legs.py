"""Transactions as legs: one row per (account, transaction), flagged and sorted, to aggregate.

Each transaction becomes two legs, one for each account it touches (an outbound leg for the
payer, an inbound leg for the payee). Every per-transaction condition (channel, MCC group,
night, cross-border, account kinds) is computed once per transaction and kept as one bit of an
integer, and account ids become dense integer codes, so no string and no column of booleans
reaches the legs; the legs are sorted once, by one integer key, into (account, time) order, so
the silence before each leg and the time since the last inflow are shifts and forward fills.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flows87.pipeline.features.settings import FeatureSettings

DIRECT_CHANNELS = ("wire", "p2p", "mobile_money", "crypto", "cheque", "other")
"""Channels of transfers between chosen counterparties, on which relationships are counted
(the one_off_* features): every transfer channel except ACH (payroll, bills, direct debits)."""
SMALL_INTL_AMOUNT = 150.0
UTC_US = pl.Datetime("us", "UTC")
FIXED_DECIMALS = 4
"""Amounts are summed in units of 10**-4 of the base currency (see `fixed_scale`)."""

FLAGS = (
    "card",
    "cash_deposit",
    "cash_withdrawal",
    "p2p",
    "transfer",
    "night",
    "near",
    "xb",
    "high_risk",
    "small",
    "payroll",
    "hotel",
    "airline",
    "transport",
    "ads",
    "adult",
    "prepaid",
    "living",
    "round",
    "direct",
)
"""Per-transaction conditions, one bit each of the legs' `flags` (see `flagged`)."""


def flag(name: str) -> pl.Expr:
    """The transaction condition `name` (see `FLAGS`), read from its bit of `flags`."""
    return (pl.col("flags") & pl.lit(1 << FLAGS.index(name), pl.UInt32)) != 0


def account_table(tx: pl.LazyFrame, acc: pl.LazyFrame) -> pl.DataFrame:
    """Every account id once, sorted (a null id first), with its kind and opening time: the row
    number is the account's integer code, so per-account attributes are looked up by
    `gather`."""
    ids = pl.concat(
        [
            acc.select("account_id").unique(),
            tx.select(pl.col("src_account").alias("account_id")).unique(),
            tx.select(pl.col("dst_account").alias("account_id")).unique(),
        ]
    )
    first = acc.select("account_id", "kind", "opened_at").unique(
        "account_id", keep="first", maintain_order=True
    )
    return (
        ids.unique()
        .sort("account_id")
        .join(first, on="account_id", how="left", maintain_order="left")
        .collect()
    )


def flagged(tx: pl.LazyFrame, ids: pl.DataFrame, s: FeatureSettings) -> pl.LazyFrame:
    """One row per transaction: account codes, time, amount, and every condition of `FLAGS`
    as one bit of the integer `flags` (a null condition, e.g. from a null channel, is unset,
    as a filter would drop it). One integer instead of many booleans is what keeps sorting
    the legs cheap."""
    codes = pl.Enum(ids["account_id"].drop_nulls())
    null_code = ids["account_id"].null_count()  # 1 when a null id holds code 0
    business, individual = pl.lit(ids["kind"] == "business"), pl.lit(ids["kind"] == "individual")
    amt, ch, mcc = pl.col("amt"), pl.col("channel"), pl.col("mcc")
    hour = pl.col("ts").dt.hour()
    if s.night_start_hour > s.night_end_hour:
        night = (hour >= s.night_start_hour) | (hour < s.night_end_hour)
    else:
        night = (hour >= s.night_start_hour) & (hour < s.night_end_hour)
    xb = (
        pl.col("src_country").is_not_null()
        & pl.col("dst_country").is_not_null()
        & (pl.col("src_country") != pl.col("dst_country"))
    )
    low = s.reporting_threshold * (1.0 - s.near_threshold_band)

    def code(column: str) -> pl.Expr:
        return (pl.col(column).cast(codes).to_physical().cast(pl.UInt32) + null_code).fill_null(0)

    def group(g: str) -> pl.Expr:
        return mcc.is_in(s.mcc_codes(g))

    conditions = {
        "card": ch == "card",
        "cash_deposit": ch == "cash_deposit",
        "cash_withdrawal": ch == "cash_withdrawal",
        "p2p": ch.is_in(["p2p", "mobile_money"]),
        "transfer": ch.is_in(["wire", "ach", "p2p", "mobile_money", "crypto", "cheque", "other"]),
        "night": night,
        "near": (ch == "cash_deposit") & (amt >= low) & (amt < s.reporting_threshold),
        "xb": xb,
        "high_risk": xb & pl.col("dst_country").is_in(s.high_risk_countries),
        "small": amt <= SMALL_INTL_AMOUNT,
        # a business paying an individual by ACH or wire: wages for the payee, payroll for
        # the payer
        "payroll": ch.is_in(["ach", "wire"])
        & business.gather(pl.col("src"))
        & individual.gather(pl.col("dst")),
        "hotel": group("hotel"),
        "airline": group("airline"),
        "transport": group("transport"),
        "ads": group("online_ads"),
        "adult": group("escort_dating") | group("adult_content"),
        "prepaid": group("prepaid_card"),
        "living": group("living_costs"),
        "round": (amt % s.round_amount_unit == 0) & (amt >= s.round_amount_unit),
        # a transfer the payer sends to a counterparty of its choosing: not card or cash, and
        # not ACH, the batch channel of payroll, bills and direct debits (recurring by nature)
        "direct": ch.is_in(DIRECT_CHANNELS),
    }
    assert tuple(conditions) == FLAGS
    bits = [
        cond.fill_null(False).cast(pl.UInt32) * pl.lit(1 << i, pl.UInt32)
        for i, cond in enumerate(conditions.values())
    ]
    return tx.select(
        "ts",
        code("src_account").alias("src"),
        code("dst_account").alias("dst"),
        pl.col("amount_base").alias("amt"),
        "channel",
        "mcc",
        "src_country",
        "dst_country",
        "location_id",
    ).select(
        "ts",
        "src",
        "dst",
        "amt",
        pl.sum_horizontal(bits).cast(pl.UInt32).alias("flags"),
        # integer ids for the distinct counts (only equality matters)
        pl.col("location_id").cast(pl.Categorical).to_physical().alias("location"),
        pl.col("dst_country").cast(pl.Categorical).to_physical().alias("country"),
    )


def legs(tx: pl.DataFrame, ids: pl.DataFrame, origin: datetime) -> pl.DataFrame:
    """Two legs per transaction, sorted by (account, time, inflows first), with the silence
    before each leg (`gap_seconds`), the hours since the account's latest inflow (`dwell_hours`,
    outflows only), whether the leg's day is that of the account's previous leg (`same_day`)
    and whether it is the only direct transfer between the two accounts (`one_off`)."""
    # the time order as a small integer (0 for a null time, which sorts first)
    tx = tx.with_columns(pl.col("ts").rank("dense").cast(pl.Int64).fill_null(0).alias("tick"))
    shared = pl.exclude("src", "dst")
    inflows = tx.lazy().select(
        pl.col("dst").alias("account"),
        pl.col("src").alias("cp"),
        pl.lit(True).alias("is_in"),
        shared,
    )
    outflows = tx.lazy().select(
        pl.col("src").alias("account"),
        pl.col("dst").alias("cp"),
        pl.lit(False).alias("is_in"),
        shared,
    )
    account, ts, is_in = pl.col("account"), pl.col("ts"), pl.col("is_in")
    ticks = tx.height + 1
    if ids.height * ticks * 2 < 2**63:  # one integer key sorts several times faster
        order = [(account.cast(pl.Int64) * ticks + pl.col("tick")) * 2 + (~is_in).cast(pl.Int64)]
    else:
        order = [account, pl.col("tick"), ~is_in]
    same_account = account == account.shift(1)
    # Silence before each transaction; before the first one, since the data began (or the
    # account opened, if later): a lower bound of the real silence.
    since = pl.max_horizontal(pl.lit(origin).cast(UTC_US), pl.lit(ids["opened_at"]).gather(account))
    previous = pl.when(same_account).then(ts.shift(1)).otherwise(since)
    # The latest inflow at or before each leg: inflows sort first among legs at the same time.
    last_in_ts = pl.when(is_in).then(ts).forward_fill()
    last_in_account = pl.when(is_in).then(account).forward_fill()
    # A direct transfer that is the only one between the two accounts in the whole data (either
    # direction): a relationship seen once. Every transfer between the pair touches the account,
    # so a partition holding an account's transactions sees all of them.
    direct = flag("direct")
    if ids.height * ids.height < 2**63:
        pair = [account.cast(pl.Int64) * ids.height + pl.col("cp").cast(pl.Int64)]
    else:
        pair = [account, pl.col("cp")]
    return (
        pl.concat([inflows, outflows])
        .sort(order)
        .drop("tick")
        .with_columns(
            (
                direct & (account != pl.col("cp")) & (direct.cast(pl.UInt32).sum().over(pair) == 1)
            ).alias("one_off"),
            # whole seconds, divided into days only after the maximum is taken: a float per leg
            # differed in its last bit between runs of the same data
            (ts - previous).dt.total_seconds().clip(lower_bound=0).alias("gap_seconds"),
            pl.when(~is_in & (last_in_account == account))
            .then((ts - last_in_ts).dt.total_seconds() * (1 / 3600))
            .alias("dwell_hours"),
            (same_account & (ts.dt.date() == ts.dt.date().shift(1)))
            .fill_null(False)
            .alias("same_day"),
        )
        .collect()
        .rechunk()  # one piece: adding a column to many pieces would copy them all, per window
    )


def fixed_scale(legs: pl.DataFrame) -> float:
    """The power of ten by which amounts are multiplied before they are summed as integers:
    10**FIXED_DECIMALS, or less when even the sum of every leg's largest amount could
    overflow 62 bits (the sums stay exact up to the last fixed-point unit).

    Integer sums do not depend on the order in which the multithreaded group-by meets the legs,
    so the same data gives the same features bit for bit in every process (float sums differ in
    the last bits from run to run)."""
    return scale_for(legs.select(pl.col("amt").abs().max()).item(), legs.height)


def scale_for(largest: float | None, legs: int) -> float:
    """`fixed_scale` of `legs` legs whose largest absolute amount is `largest`."""
    if not largest:
        return float(10**FIXED_DECIMALS)
    bound = float(largest) * max(legs, 1)
    digits = FIXED_DECIMALS
    while digits > -30 and bound * 10.0**digits >= 2.0**62:
        digits -= 1
    return 10.0**digits

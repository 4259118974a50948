"""Per-account windowed features, computed with polars expressions only.

Each transaction becomes two legs, one for each account it touches (an outbound leg for the
payer, an inbound leg for the payee), so every feature is a grouped aggregation over legs. Time
is cut into tumbling windows of each configured length, aligned to the start of the data, and
every account gets one row per window in which it was active. Rules then read the window they
name and fire on any period in which the behaviour happened.

How it stays fast on millions of transactions (5M transactions = 10M legs, on two cores):
- every per-transaction condition (channel, MCC group, night, cross-border, account kinds) is
  computed once per transaction and kept as one bit of an integer, and account ids become
  dense integer codes, so no string and no column of booleans reaches the legs;
- the legs are sorted once, by one integer key, into (account, time) order: the silence before
  each leg and the time since the last inflow are then shifts and forward fills;
- each window's aggregations are sums, counts and means of masked values
  (`when(condition).then(value)`) on the streaming engine, whose hashed group-by is the fastest
  here; the medians run where the in-memory engine is fastest, on the (account, period) key
  marked sorted; distinct counts come from one row per (account, period, counterparty), which
  also gives the top payer and payee shares.

Amounts are summed as integers (fixed point, `_fixed_scale`): integer sums do not depend on
the order in which the multithreaded group-by meets the legs, so the same data gives the same
features bit for bit in every process (float sums differ in the last bits from run to run).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from flows87.pipeline.features.registry import FEATURES, TIME_OF_DAY
from flows87.pipeline.features.settings import FeatureSettings

TRANSACTION_COLUMNS_READ = (
    "ts",
    "src_account",
    "dst_account",
    "amount_base",
    "channel",
    "mcc",
    "src_country",
    "dst_country",
    "location_id",
    "device_id",
)
"""The transaction columns `compute` reads: a caller may load only these (each string column of
5M transactions is about 100 MB in memory)."""
_PASS_THROUGH_HOURS = (6, 24, 48)
DIRECT_CHANNELS = ("wire", "p2p", "mobile_money", "crypto", "cheque", "other")
"""Channels of transfers between chosen counterparties, on which relationships are counted
(the one_off_* features): every transfer channel except ACH (payroll, bills, direct debits)."""
_IDENTIFIERS = ("address", "phone", "email", "device_id")
_SMALL_INTL_AMOUNT = 150.0
_UTC_US = pl.Datetime("us", "UTC")
_FIXED_DECIMALS = 4
"""Amounts are summed in units of 10**-4 of the base currency (see `_fixed_scale`)."""

_FLAGS = (
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
"""Per-transaction conditions, one bit each of the legs' `flags` (see `_transactions`)."""


def compute(
    transactions: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    settings: FeatureSettings,
    *,
    origin: datetime | None = None,
) -> pl.DataFrame:
    """The feature table: one row per (account, window length, window period) with activity.

    `origin` aligns the windows (default: midnight of the first transaction's day), so the same
    data always gives the same periods.
    """
    tx = transactions.lazy()
    acc = accounts.lazy()
    available = _available_columns(tx, acc)
    if origin is None:
        first = tx.select(pl.col("ts").min()).collect().item()
        if first is None:
            return _empty()
        origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    static = _static_features(acc, tx, available)
    ids = _account_table(tx, acc)
    legs = _legs(_transactions(tx, ids, settings).collect(), ids, origin)
    scale = _fixed_scale(legs)
    frames = [
        _window_features(legs, ids.height, name, delta, origin, scale)
        for name, delta in settings.window_deltas().items()
    ]
    del legs
    out = pl.concat(frames)
    del frames
    out = _in_order(out, out.select(pl.arg_sort_by("code", "window", "window_start")).to_series())
    # account attributes by code (an account listed twice keeps its first row, as in the legs)
    by_code = ids.select("account_id").join(
        static.unique("account_id", keep="first", maintain_order=True),
        on="account_id",
        how="left",
        maintain_order="left",
    )
    out = out.with_columns(
        pl.lit(by_code[c]).gather(pl.col("code")).alias(c) for c in by_code.columns
    ).with_columns(
        ((pl.col("window_end") - pl.col("opened_at")).dt.total_seconds() / 86_400.0).alias(
            "account_age_days"
        )
    )
    out = _null_missing(out, available)
    return out.select([f.name for f in FEATURES])


def _fixed_scale(legs: pl.DataFrame) -> float:
    """The power of ten by which amounts are multiplied before they are summed as integers:
    10**_FIXED_DECIMALS, or less when even the sum of every leg's largest amount could
    overflow 62 bits (the sums stay exact up to the last fixed-point unit)."""
    largest = legs.select(pl.col("amt").abs().max()).item()
    if not largest:
        return float(10**_FIXED_DECIMALS)
    bound = float(largest) * max(legs.height, 1)
    digits = _FIXED_DECIMALS
    while digits > -30 and bound * 10.0**digits >= 2.0**62:
        digits -= 1
    return 10.0**digits


def _in_order(frame: pl.DataFrame, order: pl.Series) -> pl.DataFrame:
    """The rows of `frame` in `order`, moved one column at a time: reordering the wide feature
    table in one go would hold two whole copies of it."""
    return pl.DataFrame([frame.drop_in_place(name).gather(order) for name in list(frame.columns)])


def _account_table(tx: pl.LazyFrame, acc: pl.LazyFrame) -> pl.DataFrame:
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


def has_time_of_day(tx: pl.LazyFrame | pl.DataFrame) -> bool:
    """True unless every timestamp is at midnight (data of day resolution)."""
    ts = pl.col("ts")
    midnight = (ts.dt.hour() == 0) & (ts.dt.minute() == 0) & (ts.dt.second() == 0)
    return bool(tx.lazy().select((~midnight).any()).collect().item())


def _available_columns(tx: pl.LazyFrame, acc: pl.LazyFrame) -> set[str]:
    """Optional columns that actually carry data (a column of nulls counts as absent)."""
    tx_counts = tx.select(pl.all().is_not_null().sum()).collect().row(0, named=True)
    acc_counts = acc.select(pl.all().is_not_null().sum()).collect().row(0, named=True)
    avail = {c for c, n in tx_counts.items() if n}
    avail |= {c for c, n in acc_counts.items() if n}
    if has_time_of_day(tx):
        avail.add(TIME_OF_DAY)
    kinds = acc.select(pl.col("kind").is_in(["individual", "business"]).any()).collect().item()
    if not kinds:
        avail.discard("kind")
    return avail


def _transactions(tx: pl.LazyFrame, ids: pl.DataFrame, s: FeatureSettings) -> pl.LazyFrame:
    """One row per transaction: account codes, time, amount, and every condition of `_FLAGS`
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
        "small": amt <= _SMALL_INTL_AMOUNT,
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
    assert tuple(conditions) == _FLAGS
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


def _flag(name: str) -> pl.Expr:
    """The transaction condition `name` (see `_FLAGS`), read from its bit of `flags`."""
    return (pl.col("flags") & pl.lit(1 << _FLAGS.index(name), pl.UInt32)) != 0


def _legs(tx: pl.DataFrame, ids: pl.DataFrame, origin: datetime) -> pl.DataFrame:
    """Two legs per transaction, sorted by (account, time, inflows first), with the silence
    before each leg (`gap_days`), the hours since the account's latest inflow (`dwell_hours`,
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
    since = pl.max_horizontal(
        pl.lit(origin).cast(_UTC_US), pl.lit(ids["opened_at"]).gather(account)
    )
    previous = pl.when(same_account).then(ts.shift(1)).otherwise(since)
    # The latest inflow at or before each leg: inflows sort first among legs at the same time.
    last_in_ts = pl.when(is_in).then(ts).forward_fill()
    last_in_account = pl.when(is_in).then(account).forward_fill()
    # A direct transfer that is the only one between the two accounts in the whole data (either
    # direction): a relationship seen once. Every transfer between the pair touches the account,
    # so a partition holding an account's transactions sees all of them.
    direct = (pl.col("flags") & pl.lit(1 << _FLAGS.index("direct"), pl.UInt32)) != 0
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
            (ts - previous)
            .dt.total_seconds()
            .truediv(86_400.0)
            .clip(lower_bound=0.0)
            .alias("gap_days"),
            pl.when(~is_in & (last_in_account == account))
            .then((ts - last_in_ts).dt.total_seconds() / 3600.0)
            .alias("dwell_hours"),
            (same_account & (ts.dt.date() == ts.dt.date().shift(1)))
            .fill_null(False)
            .alias("same_day"),
        )
        .collect()
        .rechunk()  # one piece: adding a column to many pieces would copy them all, per window
    )


def _window_features(
    legs: pl.DataFrame,
    codes: int,
    name: str,
    delta: timedelta,
    origin: datetime,
    scale: float = float(10**_FIXED_DECIMALS),
) -> pl.DataFrame:
    """The features of one window length, keyed by account `code`: one row per (account,
    period) with legs. `codes` is the number of account codes.

    Measured on 10M legs: the streaming engine's hashed group-by sums and counts several times
    faster than the in-memory one, and the in-memory one takes medians several times faster
    when the key is marked sorted (it cuts slices instead of hashing)."""
    step_us = int(delta.total_seconds() * 1_000_000)
    origin_lit = pl.lit(origin).cast(_UTC_US)
    period = (pl.col("ts") - origin_lit).dt.total_microseconds() // step_us
    first, last = legs.select(
        period.min().fill_null(0).alias("first"), period.max().fill_null(0).alias("last")
    ).row(0)
    periods = last - first + 1
    # (account, period) as one integer, ascending like the legs
    key = pl.col("account").cast(pl.Int64) * periods + (period - first)
    frame = legs.with_columns(
        key.alias("key"),
        # the amount in fixed point: integer sums are exact, whatever order they run in
        (pl.col("amt") * scale).round().cast(pl.Int64).alias("fixed"),
    ).with_columns(
        # the first leg of each day in the group: active days
        ((pl.col("key") != pl.col("key").shift(1)).fill_null(True) | ~pl.col("same_day")).alias(
            "new_day"
        )
    )
    inn, out, amt = pl.col("is_in"), ~pl.col("is_in"), pl.col("amt")
    flag = {f: _flag(f) for f in _FLAGS}

    def count(cond: pl.Expr) -> pl.Expr:
        return cond.sum().cast(pl.Int64)

    def total(cond: pl.Expr) -> pl.Expr:
        """The fixed-point sum (an integer; shares of two of them need no scaling back)."""
        return pl.when(cond).then(pl.col("fixed")).sum()

    def amount(total: pl.Expr) -> pl.Expr:
        return total / scale

    def median(cond: pl.Expr, value: pl.Expr = amt) -> pl.Expr:
        return pl.when(cond).then(value).median()

    def share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
        return pl.when(whole > 0).then(part / whole)

    in_sum, out_sum = total(inn), total(out)
    main = (
        frame.lazy()
        .group_by("key")
        .agg(
            count(inn).alias("in_count"),
            count(out).alias("out_count"),
            amount(in_sum).alias("in_sum"),
            amount(out_sum).alias("out_sum"),
            share(out_sum, in_sum).alias("out_in_ratio"),
            count(pl.col("new_day")).alias("active_days"),
            pl.col("gap_days").max().fill_null(0.0).alias("max_gap_days"),
            count(inn & flag["p2p"]).alias("p2p_in_count"),
            share(count(inn & flag["night"]), count(inn)).alias("night_in_share"),
            count(out & flag["night"]).alias("night_out_count"),
            *[
                share(total(out & (pl.col("dwell_hours") <= h)), in_sum)
                .clip(upper_bound=1.0)
                .alias(f"pass_through_{h}h")
                for h in _PASS_THROUGH_HOURS
            ],
            count(inn & flag["cash_deposit"]).alias("cash_in_count"),
            amount(total(inn & flag["cash_deposit"])).alias("cash_in_sum"),
            share(total(inn & flag["cash_deposit"]), in_sum).alias("cash_in_share"),
            amount(total(out & flag["cash_withdrawal"])).alias("cash_out_sum"),
            count(inn & flag["near"]).alias("near_threshold_count"),
            # the share among legs with an amount (a null amount has no round flag)
            pl.when(amt.is_not_null()).then(flag["round"]).mean().alias("round_amount_share"),
            count(out & flag["card"]).alias("card_out_count"),
            count(out & flag["hotel"]).alias("hotel_count"),
            count(out & flag["airline"]).alias("airline_count"),
            count(out & flag["transport"] & flag["night"]).alias("transport_night_count"),
            count(out & flag["ads"]).alias("ads_count"),
            count(out & flag["adult"]).alias("adult_count"),
            count(out & flag["prepaid"]).alias("prepaid_count"),
            amount(total(out & flag["prepaid"])).alias("prepaid_sum"),
            share(total(out & flag["living"]), out_sum).alias("living_cost_share"),
            count(inn & flag["card"]).alias("card_in_count"),
            share(count(inn & flag["card"] & flag["night"]), count(inn & flag["card"])).alias(
                "night_card_in_share"
            ),
            amount(total(inn & pl.col("one_off"))).alias("one_off_in_sum"),
            amount(total(out & pl.col("one_off"))).alias("one_off_out_sum"),
            share(total(inn & pl.col("one_off")), in_sum).alias("one_off_in_share"),
            share(total(out & pl.col("one_off")), out_sum).alias("one_off_out_share"),
            share(total(pl.col("one_off")), in_sum + out_sum).alias("one_off_share"),
            count(inn & flag["payroll"]).alias("wage_in_count"),
            amount(total(inn & flag["payroll"])).alias("wage_in_sum"),
            count(out & flag["payroll"]).alias("payroll_out_count"),
            count(out & flag["xb"]).alias("xb_out_count"),
            share(total(out & flag["xb"]), out_sum).alias("xb_out_share"),
            count(inn & flag["xb"]).alias("xb_in_count"),
            count(out & flag["high_risk"]).alias("high_risk_out_count"),
            count(out & flag["high_risk"] & flag["small"]).alias("high_risk_small_out_count"),
        )
    )
    medians = (
        frame.lazy()
        .with_columns(pl.col("key").set_sorted())
        .group_by("key")
        .agg(
            median(inn).alias("median_in_amount"),
            median(out).alias("median_out_amount"),
            median(inn & flag["p2p"]).alias("median_p2p_in_amount"),
            pl.col("dwell_hours").median().alias("median_dwell_hours"),
            median(out & flag["payroll"]).alias("median_payroll_amount"),
        )
    )
    payers = {
        "distinct_payers": inn,
        "distinct_payees": out,
        "transfer_payers": inn & flag["transfer"],
        "transfer_payees": out & flag["transfer"],
        "p2p_payers": inn & flag["p2p"],
        "night_in_payers": inn & flag["night"],
        "hotel_merchants": out & flag["hotel"],
        "wage_payers": inn & flag["payroll"],
        "payroll_payees": out & flag["payroll"],
        "high_risk_payees": out & flag["high_risk"],
        "one_off_payers": inn & pl.col("one_off"),
        "one_off_payees": out & pl.col("one_off"),
    }
    places = {
        "cash_locations": inn & flag["cash_deposit"],
        "near_threshold_locations": inn & flag["near"],
        "card_locations": out & flag["card"],
        "hotel_locations": out & flag["hotel"],
    }
    countries = {"xb_countries": out & flag["xb"]}
    parts = [
        main.collect(engine="streaming"),
        medians.collect(),
        _counterparties(frame.lazy(), payers, codes * periods, codes).collect(engine="streaming"),
        _distinct(frame.lazy(), "location", places).collect(engine="streaming"),
        _distinct(frame.lazy(), "country", countries).collect(engine="streaming"),
    ]
    del frame
    out_frame = parts[0]
    for part in parts[1:]:
        out_frame = out_frame.join(part, on="key", how="left")
    return out_frame.select(
        (pl.col("key") // periods).cast(pl.UInt32).alias("code"),
        pl.lit(name).alias("window"),
        (origin_lit + pl.duration(microseconds=(pl.col("key") % periods + first) * step_us)).alias(
            "window_start"
        ),
        (
            origin_lit + pl.duration(microseconds=(pl.col("key") % periods + first + 1) * step_us)
        ).alias("window_end"),
        pl.exclude("key"),
    ).with_columns(
        pl.col(*places, *countries).fill_null(0),  # no such leg in the period
        # money from one-off payers that went on to one-off payees in the same period
        pl.min_horizontal("one_off_in_sum", "one_off_out_sum").alias("one_off_through"),
    )


def _counterparties(
    frame: pl.LazyFrame, counts: dict[str, pl.Expr], keys: int, codes: int
) -> pl.LazyFrame:
    """Per (account, period): distinct counterparties meeting each condition, and the largest
    counterparty's share of the inbound and outbound amounts, from one row per counterparty.

    `keys` bounds the (account, period) key and `codes` the counterparty code: when their
    product fits in 64 bits, the pair is grouped as one integer, which is faster."""
    inn, amt = pl.col("is_in"), pl.col("fixed")
    aggs = [
        *(cond.any().alias(name) for name, cond in counts.items()),
        inn.any().alias("_any_in"),
        (~inn).any().alias("_any_out"),
        pl.when(inn).then(amt).sum().alias("_in"),
        pl.when(~inn).then(amt).sum().alias("_out"),
    ]
    if keys * codes < 2**63:
        pair = pl.col("key") * codes + pl.col("cp")
        pairs = frame.group_by(pair.alias("pair")).agg(aggs)
        pairs = pairs.with_columns((pl.col("pair") // codes).alias("key"))
    else:
        pairs = frame.group_by("key", "cp").agg(aggs)
    tops = []
    for side, alias in (("in", "top_payer_share"), ("out", "top_payee_share")):
        amount = pl.when(pl.col(f"_any_{side}")).then(pl.col(f"_{side}"))
        tops.append((amount.max() / amount.sum()).alias(alias))
    return pairs.group_by("key").agg(*(pl.col(name).sum().cast(pl.Int64) for name in counts), *tops)


def _distinct(frame: pl.LazyFrame, value: str, counts: dict[str, pl.Expr]) -> pl.LazyFrame:
    """Per (account, period): distinct non-null `value`s among the legs meeting each condition
    (periods without such legs are absent), from one row per (account, period, value)."""
    relevant = frame.filter(pl.col(value).is_not_null() & pl.any_horizontal(*counts.values()))
    pairs = relevant.group_by("key", value).agg(
        cond.any().alias(name) for name, cond in counts.items()
    )
    return pairs.group_by("key").agg(pl.col(name).sum().cast(pl.Int64) for name in counts)


def _static_features(acc: pl.LazyFrame, tx: pl.LazyFrame, available: set[str]) -> pl.DataFrame:
    """Account attributes and shared identifiers, the same for every window."""
    pairs = [
        acc.select("party_id", pl.col(c).alias("value"))
        .drop_nulls()
        .with_columns(pl.lit(c).alias("id"))
        for c in _IDENTIFIERS
        if c in available and c in acc.collect_schema().names()
    ]
    if "device_id" in available:
        parties = acc.select(pl.col("account_id").alias("src_account"), "party_id")
        pairs.append(
            tx.select("src_account", pl.col("device_id").alias("value"))
            .drop_nulls()
            .join(parties, on="src_account", how="inner")
            .select("party_id", "value", pl.lit("device_id").alias("id"))
        )
    static = acc.select("account_id", "party_id", "kind", "business_type", "opened_at")
    if pairs:
        # one row per (party, identifier, value): the rows sharing a value are its parties
        per_party = (
            pl.concat(pairs)
            .unique()
            .with_columns(pl.len().over("id", "value").alias("n"))
            .group_by("party_id")
            .agg((pl.col("n").max() - 1).cast(pl.Int64).alias("shared_id_parties"))
        )
        static = static.join(per_party, on="party_id", how="left").with_columns(
            pl.col("shared_id_parties").fill_null(0)
        )
    else:
        static = static.with_columns(pl.lit(None, dtype=pl.Int64).alias("shared_id_parties"))
    return static.drop("party_id").collect()


def _null_missing(frame: pl.DataFrame, available: set[str]) -> pl.DataFrame:
    """Null every feature whose source columns the data lacks, so rules can tell absent from zero."""
    exprs = []
    for f in FEATURES:
        missing = [n for n in f.needs if not any(alt in available for alt in n.split("|"))]
        if missing and f.name in frame.columns:
            exprs.append(pl.lit(None, dtype=frame.schema[f.name]).alias(f.name))
    return frame.with_columns(exprs) if exprs else frame


def _empty() -> pl.DataFrame:
    return pl.DataFrame({f.name: [] for f in FEATURES})


def missing_inputs(frame: pl.DataFrame) -> list[str]:
    """Features that are null in every row (their source columns were absent)."""
    if frame.is_empty():
        return []
    counts = frame.select(pl.all().is_not_null().sum()).row(0, named=True)
    return [f.name for f in FEATURES if f.needs and counts.get(f.name, 0) == 0]

"""Per-account windowed features, computed with polars expressions only.

Each transaction becomes two legs, one for each account it touches (an outbound leg for the
payer, an inbound leg for the payee), so every feature is a grouped aggregation over legs. Time
is cut into tumbling windows of each configured length, aligned to the start of the data, and
every account gets one row per window in which it was active. Rules then read the window they
name and fire on any period in which the behaviour happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from flows87.features.registry import FEATURES
from flows87.features.settings import FeatureSettings

_PASS_THROUGH_HOURS = (6, 24, 48)
_IDENTIFIERS = ("address", "phone", "email", "device_id")
_SMALL_INTL_AMOUNT = 150.0


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
    codes = _codes(tx, acc)
    legs = _legs(
        _encode(tx, codes, "src_account", "dst_account"),
        _encode(acc, codes, "account_id"),
        settings,
        origin,
    ).collect()
    frames = []
    for name, delta in settings.window_deltas().items():
        frames.append(_window_features(legs, settings, name, delta, origin))
    out = pl.concat(frames, how="diagonal_relaxed")  # by name: pivot order varies
    out = (
        out.join(
            codes.rename({"account_id": "_id", "code": "account_id"}), on="account_id", how="left"
        )
        .drop("account_id")
        .rename({"_id": "account_id"})
        .join(static, on="account_id", how="left")
        .with_columns(
            ((pl.col("window_end") - pl.col("opened_at")).dt.total_seconds() / 86_400.0).alias(
                "account_age_days"
            )
        )
        .drop("opened_at")
    )
    out = _null_missing(out, available)
    return out.select([f.name for f in FEATURES]).sort("account_id", "window", "window_start")


def _codes(tx: pl.LazyFrame, acc: pl.LazyFrame) -> pl.DataFrame:
    """A dense integer code per account: sorting, joining and counting on integers instead of
    strings is what keeps the legs and the group-bys fast on millions of rows."""
    ids = pl.concat(
        [
            acc.select("account_id"),
            tx.select(pl.col("src_account").alias("account_id")),
            tx.select(pl.col("dst_account").alias("account_id")),
        ]
    )
    return ids.unique().sort("account_id").with_row_index("code").collect()


def _encode(frame: pl.LazyFrame, codes: pl.DataFrame, *cols: str) -> pl.LazyFrame:
    for col in cols:
        frame = (
            frame.join(
                codes.lazy().rename({"account_id": col, "code": "_code"}), on=col, how="left"
            )
            .drop(col)
            .rename({"_code": col})
        )
    return frame


def _available_columns(tx: pl.LazyFrame, acc: pl.LazyFrame) -> set[str]:
    """Optional columns that actually carry data (a column of nulls counts as absent)."""
    tx_counts = tx.select(pl.all().is_not_null().sum()).collect().row(0, named=True)
    acc_counts = acc.select(pl.all().is_not_null().sum()).collect().row(0, named=True)
    avail = {c for c, n in tx_counts.items() if n}
    avail |= {c for c, n in acc_counts.items() if n}
    kinds = acc.select(pl.col("kind").is_in(["individual", "business"]).any()).collect().item()
    if not kinds:
        avail.discard("kind")
    return avail


def _legs(
    tx: pl.LazyFrame, acc: pl.LazyFrame, s: FeatureSettings, origin: datetime
) -> pl.LazyFrame:
    kinds = acc.select("account_id", "kind")
    base = tx.select(
        "txn_id",
        "ts",
        "src_account",
        "dst_account",
        "amount_base",
        "channel",
        "mcc",
        "location_id",
        (
            pl.col("src_country").is_not_null()
            & pl.col("dst_country").is_not_null()
            & (pl.col("src_country") != pl.col("dst_country"))
        ).alias("xb"),
        "dst_country",
    )
    out_legs = base.select(
        pl.col("src_account").alias("account_id"),
        pl.col("dst_account").alias("cp"),
        pl.lit(False).alias("is_in"),
        pl.exclude("src_account", "dst_account"),
    )
    in_legs = base.select(
        pl.col("dst_account").alias("account_id"),
        pl.col("src_account").alias("cp"),
        pl.lit(True).alias("is_in"),
        pl.exclude("src_account", "dst_account"),
    )
    hour = pl.col("ts").dt.hour()
    if s.night_start_hour > s.night_end_hour:
        night = (hour >= s.night_start_hour) | (hour < s.night_end_hour)
    else:
        night = (hour >= s.night_start_hour) & (hour < s.night_end_hour)
    legs = (
        pl.concat([out_legs, in_legs])
        .join(kinds.rename({"kind": "own_kind"}), on="account_id", how="left")
        .join(kinds.rename({"account_id": "cp", "kind": "cp_kind"}), on="cp", how="left")
        .join(acc.select("account_id", "opened_at"), on="account_id", how="left")
        .with_columns(night.alias("night"))
        .sort("account_id", "ts")
        .with_columns(
            # Silence before each transaction; before the first one, since the data began (or
            # the account opened, if later): a lower bound of the real silence.
            (
                pl.col("ts")
                - pl.col("ts")
                .shift(1)
                .over("account_id")
                .fill_null(
                    pl.max_horizontal(pl.lit(origin).cast(pl.Datetime("us", "UTC")), "opened_at")
                )
            )
            .dt.total_seconds()
            .truediv(86_400.0)
            .clip(lower_bound=0.0)
            .alias("gap_days")
        )
        .drop("opened_at")
    )
    return _with_dwell(legs)


def _with_dwell(legs: pl.LazyFrame) -> pl.LazyFrame:
    """Hours from the account's latest inflow to each outflow (null for inflows, or none before)."""
    inflows = (
        legs.filter(pl.col("is_in"))
        .select("account_id", pl.col("ts").alias("last_in_ts"))
        .sort("last_in_ts")
    )
    return (
        legs.sort("ts")
        .join_asof(
            inflows,
            left_on="ts",
            right_on="last_in_ts",
            by="account_id",
            strategy="backward",
            check_sortedness=False,  # both sides are sorted by time above
        )
        .with_columns(
            pl.when(~pl.col("is_in"))
            .then((pl.col("ts") - pl.col("last_in_ts")).dt.total_seconds() / 3600.0)
            .alias("dwell_hours")
        )
        .drop("last_in_ts")
    )


def _window_features(
    legs: pl.DataFrame, s: FeatureSettings, name: str, delta: timedelta, origin: datetime
) -> pl.DataFrame:
    step_us = int(delta.total_seconds() * 1_000_000)
    origin_lit = pl.lit(origin).cast(pl.Datetime("us", "UTC"))
    offset = (pl.col("ts") - origin_lit).dt.total_microseconds()
    start = origin_lit + pl.duration(microseconds=(offset // step_us) * step_us)
    legs = legs.lazy().with_columns(start.alias("window_start"))

    inn, out = pl.col("is_in"), ~pl.col("is_in")
    amt, ch, mcc = pl.col("amount_base"), pl.col("channel"), pl.col("mcc")
    card_out = out & (ch == "card")
    cash_in = inn & (ch == "cash_deposit")
    p2p_in = inn & ch.is_in(["p2p", "mobile_money"])
    transfer = ch.is_in(["wire", "ach", "p2p", "mobile_money", "crypto", "cheque", "other"])
    low = s.reporting_threshold * (1.0 - s.near_threshold_band)
    near = cash_in & (amt >= low) & (amt < s.reporting_threshold)
    wage_in = (
        inn
        & ch.is_in(["ach", "wire"])
        & (pl.col("cp_kind") == "business")
        & (pl.col("own_kind") == "individual")
    )
    payroll_out = (
        out
        & ch.is_in(["ach", "wire"])
        & (pl.col("cp_kind") == "individual")
        & (pl.col("own_kind") == "business")
    )
    high_risk = out & pl.col("xb") & pl.col("dst_country").is_in(s.high_risk_countries)

    def group(g: str) -> pl.Expr:
        return mcc.is_in(s.mcc_codes(g))

    def count(cond: pl.Expr) -> pl.Expr:
        return cond.sum().cast(pl.Int64)

    def total(cond: pl.Expr) -> pl.Expr:
        return amt.filter(cond).sum()

    def share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
        return pl.when(whole > 0).then(part / whole)

    in_sum, out_sum = total(inn), total(out)
    aggs = [
        count(inn).alias("in_count"),
        count(out).alias("out_count"),
        in_sum.alias("in_sum"),
        out_sum.alias("out_sum"),
        share(out_sum, in_sum).alias("out_in_ratio"),
        amt.filter(inn).median().alias("median_in_amount"),
        amt.filter(out).median().alias("median_out_amount"),
        pl.col("cp").filter(inn).n_unique().cast(pl.Int64).alias("distinct_payers"),
        pl.col("cp").filter(out).n_unique().cast(pl.Int64).alias("distinct_payees"),
        pl.col("cp").filter(inn & transfer).n_unique().cast(pl.Int64).alias("transfer_payers"),
        pl.col("cp").filter(out & transfer).n_unique().cast(pl.Int64).alias("transfer_payees"),
        pl.col("ts").dt.date().n_unique().cast(pl.Int64).alias("active_days"),
        pl.col("gap_days").max().fill_null(0.0).alias("max_gap_days"),
        count(p2p_in).alias("p2p_in_count"),
        pl.col("cp").filter(p2p_in).n_unique().cast(pl.Int64).alias("p2p_payers"),
        amt.filter(p2p_in).median().alias("median_p2p_in_amount"),
        share(count(inn & pl.col("night")), count(inn)).alias("night_in_share"),
        pl.col("cp")
        .filter(inn & pl.col("night"))
        .n_unique()
        .cast(pl.Int64)
        .alias("night_in_payers"),
        count(out & pl.col("night")).alias("night_out_count"),
        *[
            share(total(out & (pl.col("dwell_hours") <= h)), in_sum)
            .clip(upper_bound=1.0)
            .alias(f"pass_through_{h}h")
            for h in _PASS_THROUGH_HOURS
        ],
        pl.col("dwell_hours").filter(out).median().alias("median_dwell_hours"),
        count(cash_in).alias("cash_in_count"),
        total(cash_in).alias("cash_in_sum"),
        share(total(cash_in), in_sum).alias("cash_in_share"),
        total(out & (ch == "cash_withdrawal")).alias("cash_out_sum"),
        pl.col("location_id")
        .filter(cash_in)
        .drop_nulls()
        .n_unique()
        .cast(pl.Int64)
        .alias("cash_locations"),
        count(near).alias("near_threshold_count"),
        pl.col("location_id")
        .filter(near)
        .drop_nulls()
        .n_unique()
        .cast(pl.Int64)
        .alias("near_threshold_locations"),
        ((amt % s.round_amount_unit == 0) & (amt >= s.round_amount_unit))
        .mean()
        .alias("round_amount_share"),
        count(card_out).alias("card_out_count"),
        pl.col("location_id")
        .filter(card_out)
        .drop_nulls()
        .n_unique()
        .cast(pl.Int64)
        .alias("card_locations"),
        count(out & group("hotel")).alias("hotel_count"),
        pl.col("cp")
        .filter(out & group("hotel"))
        .n_unique()
        .cast(pl.Int64)
        .alias("hotel_merchants"),
        pl.col("location_id")
        .filter(out & group("hotel"))
        .drop_nulls()
        .n_unique()
        .cast(pl.Int64)
        .alias("hotel_locations"),
        count(out & group("airline")).alias("airline_count"),
        count(out & group("transport") & pl.col("night")).alias("transport_night_count"),
        count(out & group("online_ads")).alias("ads_count"),
        count(out & (group("escort_dating") | group("adult_content"))).alias("adult_count"),
        count(out & group("prepaid_card")).alias("prepaid_count"),
        total(out & group("prepaid_card")).alias("prepaid_sum"),
        share(total(out & group("living_costs")), out_sum).alias("living_cost_share"),
        count(inn & (ch == "card")).alias("card_in_count"),
        share(count(inn & (ch == "card") & pl.col("night")), count(inn & (ch == "card"))).alias(
            "night_card_in_share"
        ),
        count(wage_in).alias("wage_in_count"),
        total(wage_in).alias("wage_in_sum"),
        pl.col("cp").filter(wage_in).n_unique().cast(pl.Int64).alias("wage_payers"),
        count(payroll_out).alias("payroll_out_count"),
        pl.col("cp").filter(payroll_out).n_unique().cast(pl.Int64).alias("payroll_payees"),
        amt.filter(payroll_out).median().alias("median_payroll_amount"),
        count(out & pl.col("xb")).alias("xb_out_count"),
        share(total(out & pl.col("xb")), out_sum).alias("xb_out_share"),
        count(inn & pl.col("xb")).alias("xb_in_count"),
        pl.col("dst_country")
        .filter(out & pl.col("xb"))
        .drop_nulls()
        .n_unique()
        .cast(pl.Int64)
        .alias("xb_countries"),
        count(high_risk).alias("high_risk_out_count"),
        pl.col("cp").filter(high_risk).n_unique().cast(pl.Int64).alias("high_risk_payees"),
        count(high_risk & (amt <= _SMALL_INTL_AMOUNT)).alias("high_risk_small_out_count"),
    ]
    keys = ["account_id", "window_start"]
    main = legs.group_by(keys).agg(aggs)
    tops = (
        legs.group_by([*keys, "is_in", "cp"])
        .agg(amt.sum().alias("cp_sum"))
        .group_by([*keys, "is_in"])
        .agg((pl.col("cp_sum").max() / pl.col("cp_sum").sum()).alias("top_share"))
        .collect()
        .pivot(on="is_in", index=keys, values="top_share")
        .lazy()
    )
    rename = {"true": "top_payer_share", "false": "top_payee_share"}
    tops = tops.rename({k: v for k, v in rename.items() if k in tops.collect_schema().names()})
    for col in rename.values():
        if col not in tops.collect_schema().names():
            tops = tops.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    return (
        main.join(tops, on=keys, how="left")
        .with_columns(
            pl.lit(name).alias("window"),
            (pl.col("window_start") + pl.duration(microseconds=step_us)).alias("window_end"),
        )
        .collect()
    )


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
        ids = pl.concat(pairs).unique()
        sharing = ids.group_by("id", "value").agg(pl.col("party_id").n_unique().alias("n"))
        per_party = (
            ids.join(sharing, on=["id", "value"])
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

"""The canonical (transactions, accounts) tables of a shape's population and transfers.

Account ids, amounts in each account's currency and in USD, and the chain's labels.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from flows87 import schema
from flows87.research.synth.shapes.accounts import CURRENCIES, Population
from flows87.research.synth.shapes.flows import SECOND, Flows

CHAIN_TYPOLOGY = "mule_chain"
CHAIN_SCHEME = f"{CHAIN_TYPOLOGY}-0001"

ROUND_VALUES = (20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0)
ROUND_WEIGHTS = (0.1, 0.15, 0.45, 0.15, 0.1, 0.05)

BANKS = ("0101", "0202", "0303", "0404")


def _epoch_us(start: date) -> int:
    return int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * SECOND


def account_ids(rng: np.random.Generator, n: int) -> pl.Series:
    frame = pl.DataFrame({"bank": rng.integers(0, len(BANKS), n), "number": rng.permutation(n)})
    banks = pl.Series(BANKS, dtype=pl.String)
    return frame.select(
        pl.concat_str(
            [
                pl.lit(banks).gather(pl.col("bank")),
                (pl.col("number") + 10_000_000).cast(pl.String).str.zfill(10),
            ],
            separator="-",
        ).alias("account_id")
    ).to_series()


def _labels(suspicious: pl.Expr) -> list[pl.Expr]:
    return [
        suspicious.alias("is_suspicious"),
        pl.when(suspicious).then(pl.lit(CHAIN_TYPOLOGY)).alias("typology"),
        pl.when(suspicious).then(pl.lit(CHAIN_SCHEME)).alias("scheme_id"),
    ]


def _amounts(
    rng: np.random.Generator, flows: Flows, cur: np.ndarray, round_amounts: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(amount in the transaction's currency, amount in USD), both rounded."""
    units = np.asarray([u for _, _, u in CURRENCIES])[cur]
    if round_amounts:
        p = np.asarray(ROUND_WEIGHTS)
        amount = rng.choice(np.asarray(ROUND_VALUES), len(flows), p=p / p.sum())
    else:
        local = flows.usd * units
        amount = np.where(units >= 100, np.round(local), np.round(local, 2))
        amount = np.maximum(amount, np.where(units >= 100, 1.0, 0.01))
    base = np.maximum(np.round(amount / units, 2), 0.01)
    return amount, base


def frames(
    rng: np.random.Generator,
    pop: Population,
    flows: Flows,
    start: date,
    *,
    round_amounts: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The canonical (transactions, accounts) frames; transactions in time order."""
    ids = account_ids(rng, pop.n)
    order = np.argsort(flows.t, kind="stable")
    src, dst = flows.src[order], flows.dst[order]
    cur = pop.cur[src]
    amount, base = _amounts(rng, flows, pop.cur[flows.src], round_amounts)
    codes = pl.Series([c for c, _, _ in CURRENCIES], dtype=pl.String)
    countries = pl.Series([c for _, c, _ in CURRENCIES], dtype=pl.String)
    n = len(flows)
    tx = pl.DataFrame(
        {
            "txn_id": pl.int_range(n, eager=True),
            "ts": flows.t[order] + _epoch_us(start),
            "src_account": ids.gather(src),
            "dst_account": ids.gather(dst),
            "amount": amount[order],
            "currency": codes.gather(cur),
            "amount_base": base[order],
            "channel": pl.Series(schema.CHANNELS, dtype=pl.String).gather(flows.channel[order]),
            "mcc": flows.mcc[order],
            "src_country": countries.gather(cur),
            "dst_country": countries.gather(pop.cur[dst]),
            "suspicious": flows.suspicious[order],
        }
    ).select(
        ("T" + pl.col("txn_id").cast(pl.String).str.zfill(max(9, len(str(n))))).alias("txn_id"),
        pl.col("ts").cast(schema.UTC_TS),
        "src_account",
        "dst_account",
        "amount",
        "currency",
        "amount_base",
        "channel",
        pl.when(pl.col("mcc") >= 0).then(pl.col("mcc").cast(pl.String).str.zfill(4)).alias("mcc"),
        "src_country",
        "dst_country",
        *_labels(pl.col("suspicious")),
    )
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "i": np.arange(pop.n),
            "business": pop.business,
            "opened": pop.opened + _epoch_us(start),
            "country": countries.gather(pop.cur),
            "mcc": pop.mcc,
            "suspicious": pop.suspicious,
        }
    ).select(
        "account_id",
        ("P" + pl.col("i").cast(pl.String).str.zfill(9)).alias("party_id"),
        pl.col("account_id").str.slice(0, 4).alias("bank_id"),
        pl.when(pl.col("business"))
        .then(pl.lit("business"))
        .otherwise(pl.lit("individual"))
        .alias("kind"),
        pl.col("opened").cast(schema.UTC_TS).alias("opened_at"),
        "country",
        pl.when(pl.col("mcc") >= 0)
        .then(pl.col("mcc").cast(pl.String).str.zfill(4))
        .alias("business_type"),
        *_labels(pl.col("suspicious")),
    )
    return (
        schema.conform(tx, "transactions").collect(),
        schema.conform(accounts, "accounts").collect().sort("account_id"),
    )

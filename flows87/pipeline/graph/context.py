"""What a graph pattern reads: the GraphContext and the tables derived from it once for all.

The transfers (no cash legs, no self-transfers), the infrastructure accounts every pattern
leaves out, parties and money leaving or entering the country are memoised on the context, so
the patterns of one run share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from flows87.schema import columns, conform

CASH_CHANNELS = ("cash_deposit", "cash_withdrawal")
"""Cash legs have a till or ATM on one side, not a counterparty, so money paths skip them."""

IDENTIFIERS = ("address", "phone", "email", "device_id")
"""Party attributes that unrelated parties should not share (FinCEN 2020)."""

TX_COLUMNS = (
    "txn_id",
    "ts",
    "src_account",
    "dst_account",
    "amount_base",
    "channel",
    "src_country",
    "dst_country",
    "location_id",
    "device_id",
)
"""The transaction columns patterns read; the context keeps only these (at 20M transactions
each text column is about 0.3-0.6 GB). A pattern that starts reading another one fails on the
missing column, and its name belongs here."""


ACCOUNT_COLUMNS = (
    "account_id",
    "party_id",
    "bank_id",
    "kind",
    "opened_at",
    "country",
    "name",
    *IDENTIFIERS,
)
"""The account columns patterns read (and the required ones); the context keeps only these (at
2M accounts each text column is about 30-60 MB, and the table has 24). A pattern that starts
reading another one fails on the missing column, and its name belongs here."""


@dataclass
class GraphContext:
    """Everything a pattern may read; the canonical tables are conformed on construction."""

    transactions: pl.DataFrame
    """Only TX_COLUMNS are kept (a stage reads only those present: `graph_columns`)."""
    accounts: pl.DataFrame
    features: pl.DataFrame
    signals: pl.DataFrame
    columns: tuple[str, ...] = TX_COLUMNS
    """The transaction columns kept (a subset of TX_COLUMNS when the context serves only the
    patterns of one group that read no others: graph/groups.py)."""

    _memo: dict[str, pl.DataFrame] = field(default_factory=dict, init=False, repr=False)
    _transfers: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        # Conforming guarantees every optional column exists (as nulls when absent), so patterns
        # test for data with `is_not_null()` instead of checking for columns.
        self.transactions = in_graph_order(_graph_transactions(self.transactions, self.columns))
        self._transfers = int(self.transactions.select(TRANSFER.sum()).item())
        kept = [c for c in self.accounts.columns if c in ACCOUNT_COLUMNS]
        self.accounts = (
            conform(self.accounts.select(kept), "accounts").select(ACCOUNT_COLUMNS).collect()
        )

    def memo(self, key: str, make: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """A derived table computed once per context: several patterns read the same ones.

        The context is read-only after construction, so a memoised table never goes stale.
        """
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def memoised(self) -> dict[str, pl.DataFrame]:
        """The tables memoised so far, by key (what a partition's prime hands on)."""
        return dict(self._memo)

    def release(self, keep: set[str]) -> None:
        """Forget memoised tables whose kind (the key up to its first ':') is not in `keep`: the
        engine names the kinds later patterns still read, so a table lives only as long as it
        is read (a released one asked for again is made again: slower, never different)."""
        for key in [k for k in self._memo if k.split(":", 1)[0] not in keep]:
            del self._memo[key]


def _graph_transactions(frame: pl.DataFrame, kept: tuple[str, ...]) -> pl.DataFrame:
    """The `kept` columns of `frame` in canonical types, absent ones as nulls: `conform`
    restricted to what patterns read (a frame of only those columns, as the graph stage reads,
    lacks required columns no pattern reads)."""
    present = set(frame.columns)
    dtypes = {c.name: c.dtype for c in columns("transactions")}
    return frame.select(
        pl.col(c).cast(dtypes[c]) if c in present else pl.lit(None, dtypes[c]).alias(c)
        for c in kept
    )


TRANSFER = (
    (pl.col("src_account") != pl.col("dst_account")) & ~pl.col("channel").is_in(CASH_CHANNELS)
).fill_null(False)
"""An account-to-account transfer: no cash leg, no self-transfer."""


def _in_order(frame: pl.DataFrame) -> bool:
    n = frame.select(TRANSFER.sum()).item()
    head = frame.head(n)
    step = pl.col("ts").diff()
    later = (
        step.is_null() | (step > 0) | ((step == 0) & (pl.col("txn_id") > pl.col("txn_id").shift()))
    )
    return bool(head.select(TRANSFER.all() & later.all()).item())


ORDER_KEYS = ("txn_id", "ts", "src_account", "dst_account", "channel")
"""The columns that decide the graph order (`in_graph_order`)."""


def _order_of(frame: pl.DataFrame) -> pl.Series | None:
    """The row indices that put `frame` (its ORDER_KEYS) in graph order, None when it is in
    that order already. The keys in one chunk first: on a frame read from Parquet (one chunk
    per row group) polars' multi-key arg_sort took 39 s at 20M transactions, 1.3 s on one."""
    keys = frame.select(ORDER_KEYS).rechunk()
    if keys.is_empty() or _in_order(keys):
        return None
    return keys.select(pl.arg_sort_by(~TRANSFER, "ts", "txn_id")).to_series()


def in_graph_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s rows with the transfers first, in time order (then id): the context's
    transfers, and those in time order that money paths follow, are then slices of it instead of
    copies (about 2.5 and 2 GB at 20M transactions). Patterns do not depend on row order. A
    frame in that order already is returned as it is; otherwise the rows are gathered one column
    at a time, so the peak is the frame and one column (when the caller lets go of `frame`)."""
    order = _order_of(frame)
    if order is None:
        return frame
    out: dict[str, pl.Series] = {}
    for name in frame.columns:
        out[name] = frame.get_column(name).gather(order)
        frame = frame.drop(name)
    return pl.DataFrame(out)


def graph_order(path: Path) -> pl.Series | None:
    """The row indices that put a transactions Parquet file in graph order (`in_graph_order`),
    or None when its rows are in that order already: computed once, then each column is read
    and gathered alone (`read_in_graph_order`). Only the sort keys are read."""
    cols = graph_columns(list(pl.read_parquet_schema(path)))
    if set(ORDER_KEYS) - set(cols):
        return None
    return _order_of(pl.read_parquet(path, columns=list(ORDER_KEYS)))


def read_in_graph_order(
    path: Path, kept: tuple[str, ...] = TX_COLUMNS, order: pl.Series | None = None
) -> pl.DataFrame:
    """The `kept` columns of a transactions Parquet file (those it has), in graph order
    (`in_graph_order`; `order` from `graph_order`, computed here when not given), read one
    column at a time: the peak is the ordered columns and the one being read, never the file's
    table twice (an argument passed to `in_graph_order` stays alive in the caller's frame until
    it returns: 7.6 GB for a 1.5 GB table at 20M transactions)."""
    cols = [c for c in graph_columns(list(pl.read_parquet_schema(path))) if c in kept]
    if order is None:
        order = graph_order(path)
    if order is None:
        return pl.read_parquet(path, columns=cols)
    out: dict[str, pl.Series] = {}
    for name in cols:
        out[name] = pl.read_parquet(path, columns=[name]).to_series().rechunk().gather(order)
    return pl.DataFrame(out)


def graph_columns(present: list[str]) -> list[str]:
    """The columns of a transactions table with `present` columns that a GraphContext keeps."""
    return [c for c in present if c in TX_COLUMNS]


def days(value: float) -> timedelta:
    return timedelta(days=float(value))


def transfers(ctx: GraphContext, min_amount: float = 0.0) -> pl.DataFrame:
    """Account-to-account transfers (no cash legs, no self-transfers) of at least `min_amount`,
    in time order (then id)."""

    def make() -> pl.DataFrame:
        # the context's first rows, in time order (`in_graph_order`): a slice, not a copy
        optional = [c for c in ("src_country", "dst_country") if c in ctx.columns]
        return ctx.transactions.head(ctx._transfers).select(
            "txn_id",
            "ts",
            pl.col("src_account").alias("src"),
            pl.col("dst_account").alias("dst"),
            pl.col("amount_base").alias("amt"),
            "channel",
            *optional,
        )

    every = ctx.memo("transfers", make)
    return every.filter(pl.col("amt") >= min_amount) if min_amount > 0 else every


INFRASTRUCTURE_MIN_REACH = 200
"""Fewer counterparties than this never make an account infrastructure, however small the
population (in a graph of twenty accounts any hub trades with a fifth of them)."""


def infrastructure(ctx: GraphContext, share: float) -> pl.DataFrame:
    """Accounts (column `account_id`) that pay, or are paid by, at least `share` of the accounts
    that transfer at all (and INFRASTRUCTURE_MIN_REACH): a payment processor, a utility, a
    large merchant, the world outside the bank. Such an account is where everyone's money goes
    or comes from, not a controller, employer or beneficiary of a scheme, and patterns looking
    for those leave it out. O(E) hash groupings for E transfers; distinct counterparties are
    counted only for the few accounts with that many transfers (memoised per share)."""

    def make() -> pl.DataFrame:
        t = transfers(ctx).select("src", "dst")
        return infrastructure_of(t.lazy(), population(ctx, t), share)

    return ctx.memo(f"infrastructure:{share}", make)


def population(ctx: GraphContext, t: pl.DataFrame | None = None) -> int:
    """The accounts that count towards an infrastructure share: every account with features
    (the whole run's, also in a partition's context), else those transferring in `t`."""
    if "account_id" in ctx.features.columns and ctx.features.height:
        return int(ctx.features["account_id"].n_unique())
    t = transfers(ctx) if t is None else t
    return pl.concat([t["src"], t["dst"]]).n_unique()


def infrastructure_of(t: pl.LazyFrame, population: int, share: float) -> pl.DataFrame:
    """`infrastructure` of transfers `t` (src, dst): a lazy frame, so a partition of the graph
    (graph/anchored.py) computes it on every transaction, streaming, before its patterns run."""
    least = max(share * population, INFRASTRUCTURE_MIN_REACH)
    found = []
    for me, other in (("src", "dst"), ("dst", "src")):
        busy = t.group_by(me).len().filter(pl.col("len") >= least).select(me)
        found.append(
            t.join(busy, on=me, how="semi")
            .group_by(me)
            .agg(pl.col(other).n_unique().alias("reach"))
            .filter(pl.col("reach") >= least)
            .select(pl.col(me).alias("account_id"))
        )
    return pl.concat(found).unique().sort("account_id").collect(engine="streaming")


def party_of(accounts: pl.DataFrame) -> pl.DataFrame:
    """account_id -> party (the account itself stands for its party when party_id is null)."""
    return accounts.select(
        "account_id",
        pl.coalesce("party_id", pl.lit("account:") + pl.col("account_id")).alias("party"),
    )


def has_data(frame: pl.DataFrame, *cols: str) -> bool:
    """True when every named column holds at least one value (optional columns may be all null)."""
    if frame.is_empty():
        return False
    counts = frame.select(pl.col(c).is_not_null().any() for c in cols).row(0)
    return all(counts)


ABROAD = (
    pl.col("src_country").is_not_null()
    & pl.col("dst_country").is_not_null()
    & (pl.col("src_country") != pl.col("dst_country"))
)
"""A transaction that crosses a border (false when either country is unknown)."""


def ends_abroad(
    ctx: GraphContext,
    members: pl.DataFrame,
    spans: pl.DataFrame,
    lag: timedelta,
    min_share: float,
    *,
    outward: bool,
) -> pl.DataFrame:
    """The accounts abroad at the far end of an instance's money: instance, txn_id, ts,
    account_id, role.

    `members` (instance, account_id) are the instance's accounts and `spans` (instance, first,
    last, amount) its time span and amount. Outward, the transfers abroad from a member to an
    outsider between `first` and `last + lag` (role "beneficiary"); inward, the transfers from
    abroad to a member between `first - lag` and `last` (role "funder"). An outsider counts when
    its transfers add up to `min_share` of the instance's amount. A money trail that leaves the
    country (or arrives from abroad) just before or after a mule pattern is its other end: the
    controller or the final beneficiary (FATF/APG 2018; Egmont); a domestic counterparty may
    just as well be a victim, a landlord or an employer, and is left out.
    """
    member, other = ("src", "dst") if outward else ("dst", "src")
    legs = (
        transfers(ctx)
        .filter(ABROAD)
        .join(members.rename({"account_id": member}), on=member)
        .join(members.rename({"account_id": other}), on=["instance", other], how="anti")
        .join(spans, on="instance")
    )
    if outward:
        legs = legs.filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last") + lag)
    else:
        legs = legs.filter(pl.col("ts") >= pl.col("first") - lag, pl.col("ts") <= pl.col("last"))
    return (
        legs.filter(pl.col("amt").sum().over("instance", other) >= min_share * pl.col("amount"))
        .sort("instance", "ts", "txn_id")
        .select(
            "instance",
            "txn_id",
            "ts",
            pl.col(other).alias("account_id"),
            pl.lit("beneficiary" if outward else "funder").alias("role"),
        )
    )

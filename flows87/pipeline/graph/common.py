"""What every graph pattern shares: its input (GraphContext), its output (HIT_SCHEMA), helpers.

A pattern returns one row per account taking part in a found instance, so that hits join the
signal table like any other evidence; the instance's facts go into one JSON `evidence` text an
investigator reads. Helpers here turn two small frames (members with roles, facts per instance)
into that shape with polars expressions, never a loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from flows87.schema import conform

HIT_SCHEMA = pl.Schema(
    {
        "instance": pl.String(),
        "account_id": pl.String(),
        "role": pl.String(),
        "txn_ids": pl.List(pl.String()),
        "evidence": pl.String(),
    }
)

MAX_TXNS_PER_INSTANCE = 500
"""Evidence keeps at most this many transaction ids per instance (the counts stay exact)."""

MAX_MEMBERS_PER_ROLE = 100
"""An instance lists at most this many accounts of each role (the first, in display order); the
evidence then says how many more took part (`more_accounts`). Every listed account becomes a hit
row carrying the instance's evidence, which lists them all, so an instance of n accounts costs
n^2 downstream: a hub paid by 200,000 accounts would otherwise write 200,000 copies of a list of
200,000 ids. The hub, controller or beneficiary of an instance is a role of its own, so it is
always listed."""

CASH_CHANNELS = ("cash_deposit", "cash_withdrawal")
"""Cash legs have a till or ATM on one side, not a counterparty, so money paths skip them."""

IDENTIFIERS = ("address", "phone", "email", "device_id")
"""Party attributes that unrelated parties should not share (FinCEN 2020)."""

ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class GraphContext:
    """Everything a pattern may read; the canonical tables are conformed on construction."""

    transactions: pl.DataFrame
    accounts: pl.DataFrame
    features: pl.DataFrame
    signals: pl.DataFrame

    _memo: dict[str, pl.DataFrame] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # Conforming guarantees every optional column exists (as nulls when absent), so patterns
        # test for data with `is_not_null()` instead of checking for columns.
        self.transactions = conform(self.transactions, "transactions").collect()
        self.accounts = conform(self.accounts, "accounts").collect()

    def memo(self, key: str, make: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """A derived table computed once per context: several patterns read the same ones.

        The context is read-only after construction, so a memoised table never goes stale.
        """
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=HIT_SCHEMA)


def days(value: float) -> timedelta:
    return timedelta(days=float(value))


def transfers(ctx: GraphContext, min_amount: float = 0.0) -> pl.DataFrame:
    """Account-to-account transfers (no cash legs, no self-transfers) of at least `min_amount`."""

    def make() -> pl.DataFrame:
        return ctx.transactions.filter(
            (pl.col("src_account") != pl.col("dst_account"))
            & ~pl.col("channel").is_in(CASH_CHANNELS)
        ).select(
            "txn_id",
            "ts",
            pl.col("src_account").alias("src"),
            pl.col("dst_account").alias("dst"),
            pl.col("amount_base").alias("amt"),
            "channel",
            "src_country",
            "dst_country",
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
        if "account_id" in ctx.features.columns and ctx.features.height:
            population = ctx.features["account_id"].n_unique()
        else:
            population = pl.concat([t["src"], t["dst"]]).n_unique()
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
        return pl.concat(found).unique().sort("account_id")

    return ctx.memo(f"infrastructure:{share}", make)


def party_of(accounts: pl.DataFrame) -> pl.DataFrame:
    """account_id -> party (the account itself stands for its party when party_id is null)."""
    return accounts.select(
        "account_id",
        pl.coalesce("party_id", pl.lit("account:") + pl.col("account_id")).alias("party"),
    )


def finish(members: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """Hit rows from members (instance, account_id, role, in display order) and per-instance facts.

    `facts` has `instance`, `txn_ids` and any evidence columns; datetimes become ISO text and the
    instance's accounts are added to the evidence as "accounts". At most MAX_MEMBERS_PER_ROLE
    accounts of each role are listed; when some instance has more, every instance's evidence
    says how many were left out (`more_accounts`). O(M log M) for M member rows.
    """
    if members.is_empty():
        return empty_hits()
    members = members.unique(["instance", "account_id"], keep="first", maintain_order=True)
    listed = pl.int_range(pl.len()).over("instance", "role") < MAX_MEMBERS_PER_ROLE
    counts = members.group_by("instance").agg(pl.len().alias("_n"), listed.sum().alias("_listed"))
    if (counts["_n"] > counts["_listed"]).any():
        members = members.filter(listed)
        facts = facts.join(
            counts.select("instance", (pl.col("_n") - pl.col("_listed")).alias("more_accounts")),
            on="instance",
            how="left",
        )
    accounts = members.group_by("instance", maintain_order=True).agg(
        pl.col("account_id").alias("accounts")
    )
    facts = facts.join(accounts, on="instance", how="inner")
    extra = [c for c in facts.columns if c not in ("instance", "txn_ids", "accounts")]
    iso = [
        pl.col(c).dt.to_string(ISO) for c in extra if facts.schema[c] == pl.Datetime("us", "UTC")
    ]
    facts = facts.with_columns(iso).select(
        "instance",
        pl.col("txn_ids").list.head(MAX_TXNS_PER_INSTANCE),
        pl.struct("accounts", *extra).struct.json_encode().alias("evidence"),
    )
    return (
        members.join(facts, on="instance", how="inner", maintain_order="left")
        .select(list(HIT_SCHEMA.names()))
        .cast(dict(HIT_SCHEMA))
        .sort("instance", maintain_order=True)
    )


def txn_lists(legs: pl.DataFrame) -> pl.DataFrame:
    """instance -> its distinct txn ids in time order, from rows of (instance, txn_id, ts)."""
    return (
        legs.unique(["instance", "txn_id"])
        .sort("ts", "txn_id")
        .group_by("instance", maintain_order=True)
        .agg(pl.col("txn_id").alias("txn_ids"))
    )


def span_facts(ts: str = "ts", amount: str | None = None) -> list[pl.Expr]:
    """Aggregations every instance reports: first/last time and duration (and a rounded sum)."""
    out = [
        pl.col(ts).min().alias("first_ts"),
        pl.col(ts).max().alias("last_ts"),
        ((pl.col(ts).max() - pl.col(ts).min()).dt.total_seconds() / 3600)
        .round(2)
        .alias("duration_hours"),
    ]
    if amount is not None:
        out.append(pl.col(amount).sum().round(2).alias("total_amount"))
    return out


def has_data(frame: pl.DataFrame, *cols: str) -> bool:
    """True when every named column holds at least one value (optional columns may be all null)."""
    if frame.is_empty():
        return False
    counts = frame.select(pl.col(c).is_not_null().any() for c in cols).row(0)
    return all(counts)


def components(edges: pl.DataFrame) -> pl.DataFrame:
    """node -> component number of the undirected graph of `edges` (columns u, v, text ids).

    scipy's sparse labelling is linear in the edges, so a large linked mass of coincidental
    sharing costs milliseconds (networkx would spend seconds building Python objects for it).
    """
    nodes = pl.concat([edges.get_column("u"), edges.get_column("v")]).unique().sort()
    index = pl.DataFrame({"node": nodes}).with_row_index("i")
    ij = edges.join(index.rename({"node": "u", "i": "iu"}), on="u").join(
        index.rename({"node": "v", "i": "iv"}), on="v"
    )
    n = index.height
    adjacency = coo_array(
        (
            np.ones(ij.height, dtype=np.int8),
            (ij.get_column("iu").to_numpy(), ij.get_column("iv").to_numpy()),
        ),
        shape=(n, n),
    )
    _, labels = connected_components(adjacency, directed=False)
    return index.select("node", pl.Series("component", labels, dtype=pl.Int64))


def busiest_windows(
    legs: pl.DataFrame, by: str, item: str, window: timedelta, k: int
) -> pl.DataFrame:
    """For each `by` group, the end (`anchor`) of the window (anchor - window, anchor], anchored
    at one of its rows' `ts`, holding the most distinct `item`s, when at least `k`; the earliest
    such end on ties. Columns `by`, `anchor`.

    The same as a rolling distinct count per row (`rolling(...).agg(n_unique)`, whose cost grows
    with the rows in each window, so quadratically for a payroll run of thousands of payees on
    one day), but linear after a sort: an item counts at time t when one of its rows falls in
    (t - window, t], that is when t lies in [ts, ts + window) for one of its rows (`covering`).
    """
    anchors = legs.select(by, pl.col("ts").alias("anchor")).unique()
    counted = covering(legs, [by], item, anchors, pl.col("ts"), pl.col("ts") + window - ONE_US)
    counted = counted.filter(pl.col("n") >= k)
    # per group, the earliest of the windows with most items (hash groupings, no global sort)
    most = counted.group_by(by).agg(pl.col("n").max().alias("_most"))
    return (
        counted.join(most, on=by)
        .filter(pl.col("n") == pl.col("_most"))
        .group_by(by)
        .agg(pl.col("anchor").min())
        .sort(by)
    )


def in_window(legs: pl.DataFrame, ends: pl.DataFrame, by: str, window: timedelta) -> pl.DataFrame:
    """The rows of `legs` inside their group's window (anchor - window, anchor]; `ends` has one
    `anchor` per `by` group (e.g. from `busiest_windows`)."""
    return legs.join(ends.select(by, "anchor"), on=by).filter(
        pl.col("ts") > pl.col("anchor") - window, pl.col("ts") <= pl.col("anchor")
    )


def instance_by_first_txn(name: str, by: str) -> pl.Expr:
    """`name:<id of the group's first transaction>` (by time, then id): an instance name that is
    the same in every run over the same transactions."""
    return (pl.lit(f"{name}:") + pl.col("txn_id").sort_by("ts", "txn_id").first().over(by)).alias(
        "instance"
    )


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


ONE_US = timedelta(microseconds=1)


def covering(
    rows: pl.DataFrame,
    by: Sequence[str],
    item: str | None,
    at: pl.DataFrame,
    lo: pl.Expr,
    hi: pl.Expr,
    *,
    same_length: bool = True,
    name: str = "n",
) -> pl.DataFrame:
    """`at` (columns `by` and `anchor`) with `name`: how many distinct `item`s of the anchor's
    group have a row whose closed interval [`lo`, `hi`] (datetimes, evaluated on `rows`) holds
    the anchor; with `item` None, how many rows do.

    This is what a rolling distinct count computes (a window (t - w, t] holds a row at time s
    exactly when t lies in [s, s + w)), but in O(R log R + A log A) for R rows and A anchors
    whatever the windows hold: each item's overlapping intervals are merged into runs, each run
    adds one at its start and removes one after its end, and a running sum of these steps read
    at each anchor is the count there. A rolling aggregation instead visits every row of every
    window, which is quadratic when thousands of rows share a window (a hub's payers, a day of
    transactions all stamped midnight). With `same_length` False the intervals may differ in
    length (their runs are then merged with a running maximum per item).
    """
    keys = list(by)
    cols = [*keys, item] if item is not None else keys
    # text keys become integer codes: sorting and grouping them is several times faster
    iv = rows.select(*cols, lo.alias("_lo"), hi.alias("_hi")).filter(pl.col("_lo") <= pl.col("_hi"))
    numbered = at.select(*keys, "anchor").with_row_index("_i")
    codes = {c: codes_of(iv.get_column(c), numbered.get_column(c)) for c in keys}
    if item is not None:
        codes[item] = codes_of(iv.get_column(item))
    iv = iv.with_columns(code(c, dtype) for c, dtype in codes.items() if dtype is not None)
    numbered = numbered.with_columns(
        code(c, dtype) for c, dtype in codes.items() if dtype is not None and c in keys
    )
    if item is not None:
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift()) for c in cols])
        reach = pl.col("_hi") if same_length else pl.col("_hi").cum_max().over(cols)
        iv = (
            iv.sort([*cols, "_lo"])
            .with_columns(
                (~same.fill_null(False) | (pl.col("_lo") > reach.shift()).fill_null(True))
                .cum_sum()
                .alias("_run")
            )
            .group_by("_run")
            .agg(*(pl.col(c).first() for c in keys), pl.col("_lo").min(), pl.col("_hi").max())
        )
    steps = pl.concat(
        [
            iv.select(*keys, pl.col("_lo").alias("_t"), pl.lit(1, pl.Int64).alias("_s")),
            iv.select(
                *keys, (pl.col("_hi") + ONE_US).alias("_t"), pl.lit(-1, pl.Int64).alias("_s")
            ),
            numbered.select(*keys, pl.col("anchor").alias("_t"), pl.lit(0, pl.Int64).alias("_s")),
        ]
    )
    # Sorted by group, then time: each group's steps sum to zero, so one running sum serves all.
    counts = (
        steps.group_by(*keys, "_t")
        .agg(pl.col("_s").sum())
        .sort([*keys, "_t"])
        .select(*keys, pl.col("_t").alias("anchor"), pl.col("_s").cum_sum().alias(name))
    )
    found = numbered.join(counts, on=[*keys, "anchor"], how="left", nulls_equal=True)
    return at.with_columns(found.sort("_i").get_column(name))


def codes_of(*values: pl.Series) -> pl.Enum | None:
    """An enumeration of the texts in `values`, in sorted order, to turn them into integer codes
    with `code` (the same in every frame cast with it); None when they are not text."""
    if values[0].dtype != pl.String:
        return None
    return pl.Enum(pl.concat([v.drop_nulls() for v in values]).unique().sort())


def code(col: str, dtype: pl.Enum) -> pl.Expr:
    """The integer code of text column `col` in enumeration `dtype` (see `codes_of`)."""
    return pl.col(col).cast(dtype).to_physical().alias(col)


class Following:
    """The rows of `right` (columns `key`, `_t` and any others) that follow given rows in time:
    `after(left, ...)` joins each row of `left` to the first `limit` rows of `right` with the
    same `key` and a later `_t`.

    A plain join on the key followed by a time filter costs (rows of the key in `left`) x (rows
    of the key in `right`): quadratic at a hub, or between two accounts that pay each other
    every day (all the more when every timestamp is midnight). This costs
    O((L + R) log(L + R) + L x limit): `right` is sorted once by (key, time, `order`), an as-of
    join finds each left row's first later row of its key, and the next `limit` rows in that
    order are its candidates, taken by position. Build it once to use it for several `left`s.
    """

    def __init__(self, right: pl.DataFrame, key: str, order: Sequence[str] = ()) -> None:
        self.key = key
        # a text key is sorted and matched as an integer code (several times faster)
        right = right.filter(pl.col(key).is_not_null())
        self.codes = codes_of(right.get_column(key))
        self.right = right.with_columns(self._code(key).alias("_k")).sort(["_k", "_t", *order])
        n = self.right.height
        index = pl.int_range(n, dtype=pl.UInt32)
        self.starts = self.right.select("_k", pl.col("_t").alias("_at"), index.alias("_g")).sort(
            "_at", maintain_order=True
        )
        self.right = self.right.drop(key)
        self.ends = (
            self.right.select("_k", index.alias("_g"))
            .group_by("_k")
            .agg((pl.col("_g").max() + 1).alias("_last"))
        )

    def _code(self, col: str) -> pl.Expr:
        if self.codes is None:
            return pl.col(col)
        return pl.col(col).cast(self.codes, strict=False).to_physical()

    def _bounds(self, left: pl.DataFrame, ts: str, within: timedelta | None) -> pl.DataFrame:
        """`_l`, the key, `_g0`: the position in `right` of each left row's first later row of
        its key (null when none), and `_g1`: of its first row after `ts` + `within` (or the
        end of the key's rows), in `left`'s order."""

        def first_after(frame: pl.DataFrame, t: str, name: str) -> pl.DataFrame:
            keep = [*frame.columns, name]
            return frame.join_asof(
                self.starts.rename({"_g": name}),
                left_on=t,
                right_on="_at",
                by_left="_lk",
                by_right="_k",
                strategy="forward",
                allow_exact_matches=False,
                check_sortedness=False,
            ).select(keep)

        found = first_after(
            left.select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_l"),
                self._code(self.key).alias("_lk"),
                ts,
            ).sort(ts),
            ts,
            "_g0",
        )
        if within is not None:  # the window's ends are in the same order as its starts
            found = first_after(
                found.with_columns((pl.col(ts) + within).alias("_end")), "_end", "_g1"
            )
        else:
            found = found.with_columns(pl.lit(None, pl.UInt32).alias("_g1"))
        return (
            found.sort("_l")
            .join(self.ends.rename({"_k": "_lk"}), on="_lk", how="left", maintain_order="left")
            .select("_l", "_g0", pl.min_horizontal("_g1", "_last").alias("_g1"))
        )

    def after(
        self,
        left: pl.DataFrame,
        ts: str,
        limit: int,
        *,
        within: timedelta | None = None,
        budget: float | None = None,
        fair: tuple[str, Sequence[str]] | None = None,
    ) -> pl.DataFrame:
        """`left` (with the key column and `ts`) joined to its candidates: rows ordered by left
        row, then time. With `within`, only candidates up to that long after `ts`. With
        `budget`, at most about that many candidate rows are made: `left` rows are then kept by
        `fair_cap` with (group, order) = `fair`, so that the busiest groups are cut first."""
        found = self._bounds(left, ts, within)
        stop = pl.min_horizontal(pl.col("_g0") + limit, "_g1")
        found = found.with_columns(stop.alias("_g1")).drop_nulls("_g0")
        found = found.filter(pl.col("_g1") > pl.col("_g0"))
        if budget is not None:
            weight = (pl.col("_g1") - pl.col("_g0")).cast(pl.Int64)
            found = found.with_columns(weight.alias("_w"))
            if found.get_column("_w").sum() > budget:
                group, order = fair if fair is not None else ("_l", ())
                extra = left.select(group, *order).with_row_index("_l")
                found = fair_cap(
                    found.select("_l", "_g0", "_g1", "_w").join(extra, on="_l"),
                    "_w",
                    group,
                    [*order, "_l"],
                    budget,
                ).sort("_l")
        pairs = found.select(
            "_l", pl.int_ranges("_g0", "_g1", dtype=pl.UInt32).alias("_g")
        ).explode("_g")
        # candidates past the end of the key's rows were cut by `_last`: all share the key
        return pl.concat(
            [
                left[pairs.get_column("_l")],
                self.right.drop("_k")[pairs.get_column("_g")],
            ],
            how="horizontal",
        )


def following(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key: str,
    ts: str,
    limit: int,
    *,
    within: timedelta | None = None,
    order: Sequence[str] = (),
) -> pl.DataFrame:
    """Each row of `left` joined to the first `limit` rows of `right` with the same `key` and a
    later time, in time order (then `order`): `left` has `key` and `ts`, `right` has `key`
    and `_t` (and no other column of `left`'s names); with `within`, only rows up to that long
    after `ts`. See `Following` for the cost."""
    return Following(right, key, order).after(left, ts, limit, within=within)


def fair_cap(
    frame: pl.DataFrame, weight: str, group: str, order: Sequence[str], budget: float
) -> pl.DataFrame:
    """The rows of `frame` whose total `weight` fits `budget`, shared fairly among the values of
    `group`: each group keeps its first rows (in `order`) while their running weight stays under
    one allowance common to all groups, the largest allowance that fits. A group with little
    weight keeps everything; only the heaviest groups (a hub, a dense ring) are cut.
    O(n log n).
    """
    total = frame.get_column(weight).sum()
    if total is None or total <= budget:
        return frame
    # Rows in order of their group's running weight (ties by group, then order) form, at every
    # length, per-group prefixes: the longest whose weight fits is the fairest cut.
    ranked = (
        frame.sort([group, *order])
        .with_columns(pl.col(weight).cum_sum().over(group).alias("_cw"))
        .sort(["_cw", group, *order])
    )
    return ranked.filter(pl.col(weight).cum_sum() <= budget).drop("_cw")

"""What an account's one-off relationships with unusual accounts say about it.

Every pair of accounts that transacted is counted (how often, either direction), so the step
groups every transaction once. At 20M transactions one grouping of all pairs took 4.8 GB; here
the pairs are grouped in batches (a hash of the pair picks its batch, so each pair is counted
whole in one of them) of at most `PAIR_BATCH_ROWS` transactions, and of each batch only what
the result can use is kept: every account's count of counterparties (its reach) and the one-off
pairs that touch an account the detectors flagged.
"""

from __future__ import annotations

import math

import polars as pl

NEIGHBOUR_PERIOD_DAYS = 7
"""Length of the periods (aligned to midnight of the first transaction's day, like the feature
windows; a week, the detectors' window) over which `one_off_neighbours` measures how busy an
account's one-off relationships were when it met a counterparty."""

PAIR_BATCH_ROWS = 6_000_000
"""Transactions whose pairs one grouping counts at once (see the module's docstring); below it
all pairs are grouped in one go, as before."""

_PAIR_HASH = 2_654_435_761
"""Knuth's multiplicative constant: spreads (lo, hi) account codes evenly over the batches."""


def one_off_neighbours(
    transactions: pl.DataFrame | pl.LazyFrame,
    flagged: pl.DataFrame,
    infrastructure_share: float,
    period_days: int = NEIGHBOUR_PERIOD_DAYS,
    batch_rows: int | None = None,
) -> pl.DataFrame:
    """account_id -> neighbour_risk: what the `flagged` accounts (account_id, anomaly_risk) it
    exchanged exactly one transaction with (either direction, self-transfers aside) say about
    it, infrastructure counterparties (those that transacted with at least
    `infrastructure_share` of all accounts: a payment processor, a utility, the world outside
    the bank) left out.

    Each such one-off relationship with a flagged account y is one piece of evidence, worth y's
    anomaly_risk times how busy y's one-off relationships were in the period of the transfer
    (`period_days` long; y's one-off transactions in that period over those of its busiest
    period): the edge of a fan or mule network meets the hub while it meets its many new
    counterparties (FATF/INTERPOL/Egmont 2023, cyber-enabled fraud: a sudden run of transfers with parties with no apparent
    relationship), an ordinary customer of a busy account at any time. The pieces combine by
    noisy-OR (1 - prod(1 - evidence)): an account that met several unusual accounts once each,
    as a member of a laundering network does, ranks above one that met a single one. Without
    a `ts` column, or with `period_days` 0, every relationship counts whole.
    O(E) hash groupings for E transactions, in batches of `batch_rows` (`PAIR_BATCH_ROWS`)."""
    ends = _ends(transactions, period_days)
    # accounts as categoricals (one mapping for the process, alive while `ends` is): every
    # grouping and join below hashes 4-byte codes, not strings
    risky = flagged.filter(pl.col("anomaly_risk") > 0).select(
        pl.col("account_id").cast(pl.Categorical).alias("y"), "anomaly_risk"
    )
    risky_codes = risky["y"].to_physical().implode()
    rows = PAIR_BATCH_ROWS if batch_rows is None else batch_rows
    n_batches = max(1, math.ceil(ends.height / max(rows, 1)))
    lo = pl.min_horizontal(*(pl.col(c).to_physical() for c in ("src_account", "dst_account")))
    hi = pl.max_horizontal(*(pl.col(c).to_physical() for c in ("src_account", "dst_account")))
    batch = (lo.cast(pl.UInt64) * _PAIR_HASH + hi) % n_batches
    # each pair of accounts once, whichever way the money went: half the rows of both directions
    src_first = pl.col("src_account").to_physical() < pl.col("dst_account").to_physical()
    a = pl.when(src_first).then("src_account").otherwise("dst_account").alias("a")
    b = pl.when(src_first).then("dst_account").otherwise("src_account").alias("b")
    reaches: list[pl.DataFrame] = []
    kept: list[pl.DataFrame] = []
    for i in range(n_batches):
        part = ends if n_batches == 1 else ends.filter(batch == i)
        # streamed: per-group reductions, no list of row indices per pair
        pairs = (
            part.lazy()
            .group_by(a, b)
            .agg(pl.len(), pl.col("period").first())
            .collect(engine="streaming")
        )
        del part
        reaches.append(
            pl.concat([pairs.select(pl.col("a").alias("y")), pairs.select(pl.col("b").alias("y"))])
            .group_by("y")
            .len()
        )
        # only one-off pairs with a flagged end reach the result (the evidence and its weight)
        touches = pl.col("a").to_physical().is_in(risky_codes) | pl.col("b").to_physical().is_in(
            risky_codes
        )
        kept.append(pairs.filter((pl.col("len") == 1) & touches).select("a", "b", "period"))
        del pairs
    reach = (
        pl.concat(reaches).group_by("y").agg(pl.col("len").sum().alias("reach"))
        if n_batches > 1
        else reaches[0].rename({"len": "reach"})
    )
    seen = reach.height
    once = pl.concat(kept)
    one_off = (
        pl.concat(
            [
                once.select(pl.col("a").alias("x"), pl.col("b").alias("y"), "period"),
                once.select(pl.col("b").alias("x"), pl.col("a").alias("y"), "period"),
            ]
        )
        .join(reach, on="y")
        .filter(pl.col("reach") < infrastructure_share * seen)
        .select("x", "y", "period")
    )
    # how busy each account's one-off relationships were, per period, against its busiest
    busy = (
        one_off.group_by(pl.col("x").alias("y"), "period")
        .len()
        .with_columns((pl.col("len") / pl.col("len").max().over("y")).alias("busy"))
        .select("y", "period", "busy")
    )
    out = (
        one_off.join(risky, on="y")
        .join(busy, on=["y", "period"])
        .group_by("x")
        .agg(
            # sorted before summing: a group's rows arrive in an order that varies from run
            # to run, and a float product in another order can differ in its last bit
            (1.0 - (1.0 - pl.col("anomaly_risk") * pl.col("busy")).log().sort().sum().exp()).alias(
                "neighbour_risk"
            )
        )
        .select(pl.col("x").cast(pl.String).alias("account_id"), "neighbour_risk")
    )
    del ends
    return out


def _ends(transactions: pl.DataFrame | pl.LazyFrame, period_days: int) -> pl.DataFrame:
    """src_account, dst_account (categorical), period of every transaction but self-transfers:
    12 bytes a transaction, read in one pass (streamed from a file's scan)."""
    lf = transactions.lazy()
    timed = "ts" in lf.collect_schema().names() and period_days > 0
    src, dst = (pl.col(c).cast(pl.Categorical) for c in ("src_account", "dst_account"))
    query = lf.select(src, dst, *(["ts"] if timed else [])).filter(
        pl.col("src_account").to_physical() != pl.col("dst_account").to_physical()
    )
    ends = query.collect(engine="streaming" if isinstance(transactions, pl.LazyFrame) else "auto")
    if not timed:
        return ends.with_columns(pl.lit(0, dtype=pl.Int32).alias("period"))
    origin = pl.col("ts").min().dt.truncate("1d")
    return ends.with_columns(
        ((pl.col("ts") - origin).dt.total_days() // period_days).cast(pl.Int32).alias("period")
    ).drop("ts")


CONTEXT_SCHEMA = pl.Schema(
    {
        "account_id": pl.String(),
        "period": pl.Int32(),
        "anomaly_risk": pl.Float64(),
        "busy": pl.Float64(),
    }
)
"""What `one_off_neighbours` needs of the whole run to weigh one piece of evidence: each flagged
account that is not infrastructure, per period of its one-off relationships, its anomaly_risk
and how busy it was then (`neighbour_context`)."""


def _origin(transactions: pl.DataFrame | pl.LazyFrame, period_days: int) -> pl.DataFrame:
    """The periods' origin (midnight of the first transfer's day, self-transfers aside), as a
    one-row frame of the ts type; no row without a `ts` column or with `period_days` 0."""
    lf = transactions.lazy()
    if "ts" not in lf.collect_schema().names() or period_days <= 0:
        return pl.DataFrame(schema={"origin": pl.Datetime("us")}).clear()
    return (
        lf.filter(pl.col("src_account").cast(pl.String) != pl.col("dst_account").cast(pl.String))
        .select(pl.col("ts").min().dt.truncate("1d").alias("origin"))
        .collect()
        .drop_nulls()
    )


def _periods(
    transactions: pl.DataFrame | pl.LazyFrame, origin: pl.DataFrame, period_days: int
) -> pl.DataFrame:
    """`_ends` with the periods counted from a given `origin` (the whole run's, not the rows'):
    src_account, dst_account (categorical), period of every transfer but self-transfers."""
    lf = transactions.lazy()
    src, dst = (pl.col(c).cast(pl.Categorical) for c in ("src_account", "dst_account"))
    timed = origin.height > 0 and "ts" in lf.collect_schema().names() and period_days > 0
    query = lf.select(src, dst, *(["ts"] if timed else [])).filter(
        pl.col("src_account").to_physical() != pl.col("dst_account").to_physical()
    )
    ends = query.collect(engine="streaming" if isinstance(transactions, pl.LazyFrame) else "auto")
    if not timed:
        return ends.with_columns(pl.lit(0, dtype=pl.Int32).alias("period"))
    start = pl.lit(origin["origin"]).first()
    return ends.with_columns(
        ((pl.col("ts") - start).dt.total_days() // period_days).cast(pl.Int32).alias("period")
    ).drop("ts")


def _pairs(ends: pl.DataFrame) -> pl.LazyFrame:
    """Each pair of accounts once (a, b: the lower code first), its transfers (len) and the
    period of its first one."""
    src_first = pl.col("src_account").to_physical() < pl.col("dst_account").to_physical()
    a = pl.when(src_first).then("src_account").otherwise("dst_account").alias("a")
    b = pl.when(src_first).then("dst_account").otherwise("src_account").alias("b")
    return ends.lazy().group_by(a, b).agg(pl.len(), pl.col("period").first())


def neighbour_context(
    transactions: pl.DataFrame | pl.LazyFrame,
    flagged: pl.DataFrame,
    infrastructure_share: float,
    period_days: int = NEIGHBOUR_PERIOD_DAYS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The whole run's part of `one_off_neighbours`, computed once: (CONTEXT_SCHEMA table, the
    periods' origin). With it, `neighbour_evidence` gives an account's neighbour_risk from the
    transfers touching it alone, so a partition's task weighs its accounts' one-off
    relationships as the whole run does.

    Infrastructure (reach >= infrastructure_share x the accounts that transacted) is a property
    of the whole run: an account's reach is at most its transfers (its degree), so only accounts
    with that many transfers are candidates, and only the pairs touching them are grouped; a
    flagged account's busyness needs only the pairs touching flagged accounts. O(E) streamed
    passes over account codes, no grouping of every pair."""
    origin = _origin(transactions, period_days)
    ends = _periods(transactions, origin, period_days)
    codes = [pl.col(c).to_physical() for c in ("src_account", "dst_account")]
    either = pl.concat([ends.select(codes[0].alias("y")), ends.select(codes[1].alias("y"))])
    degree = either.group_by("y").len()
    threshold = infrastructure_share * degree.height  # `seen` of one_off_neighbours
    candidates = degree.filter(pl.col("len") >= threshold)["y"].implode()
    near = ends.filter(codes[0].is_in(candidates) | codes[1].is_in(candidates))
    pairs = _pairs(near).select("a", "b").collect()
    reach = (
        pl.concat([pairs.select(pl.col("a").alias("y")), pairs.select(pl.col("b").alias("y"))])
        .group_by("y")
        .len()
        .filter(pl.col("y").to_physical().is_in(candidates))
    )
    infrastructure = reach.filter(~(pl.col("len") < threshold)).select("y")
    risky = flagged.filter(pl.col("anomaly_risk") > 0).select(
        pl.col("account_id").cast(pl.Categorical).alias("y"), "anomaly_risk"
    )
    risky_codes = risky["y"].to_physical().implode()
    touching = ends.filter(codes[0].is_in(risky_codes) | codes[1].is_in(risky_codes))
    once = _pairs(touching).filter(pl.col("len") == 1).select("a", "b", "period").collect()
    one_off = pl.concat(
        [
            once.select(pl.col("a").alias("x"), pl.col("b").alias("y"), "period"),
            once.select(pl.col("b").alias("x"), pl.col("a").alias("y"), "period"),
        ]
    ).join(infrastructure, on="y", how="anti")
    # a flagged account's one-off relationships (with accounts not infrastructure) per period,
    # against its busiest: all of them are among the pairs touching flagged accounts
    busy = (
        one_off.join(risky.select(pl.col("y").alias("x")), on="x", how="semi")
        .group_by(pl.col("x").alias("y"), "period")
        .len()
        .with_columns((pl.col("len") / pl.col("len").max().over("y")).alias("busy"))
        .select("y", "period", "busy")
    )
    table = (
        risky.join(infrastructure, on="y", how="anti")
        .join(busy, on="y")
        .select(pl.col("y").cast(pl.String).alias("account_id"), "period", "anomaly_risk", "busy")
        .sort("account_id", "period")
    )
    return table.cast(CONTEXT_SCHEMA), origin


def neighbour_evidence(
    transactions: pl.DataFrame | pl.LazyFrame,
    context: pl.DataFrame,
    origin: pl.DataFrame,
    members: pl.Series | None,
    period_days: int = NEIGHBOUR_PERIOD_DAYS,
) -> pl.DataFrame:
    """account_id -> neighbour_risk of the `members` (every account when None), as
    `one_off_neighbours` gives it on the whole run: `transactions` must hold every transfer
    touching the members (parts.transactions), `context` and `origin` be the whole run's
    (`neighbour_context`)."""
    empty = pl.DataFrame(schema={"account_id": pl.String(), "neighbour_risk": pl.Float64()})
    if context.is_empty():
        return empty
    ends = _periods(transactions, origin, period_days)
    once = _pairs(ends).filter(pl.col("len") == 1).select("a", "b", "period").collect()
    del ends
    pieces = pl.concat(
        [
            once.select(pl.col("a").alias("x"), pl.col("b").alias("y"), "period"),
            once.select(pl.col("b").alias("x"), pl.col("a").alias("y"), "period"),
        ]
    ).with_columns(pl.col("x").cast(pl.String), pl.col("y").cast(pl.String))
    if members is not None:
        pieces = pieces.filter(pl.col("x").is_in(members.implode()))
    return (
        pieces.join(context.rename({"account_id": "y"}), on=["y", "period"])
        .group_by("x")
        .agg(
            # sorted before summing, as in one_off_neighbours: the same bits in any order
            (1.0 - (1.0 - pl.col("anomaly_risk") * pl.col("busy")).log().sort().sum().exp()).alias(
                "neighbour_risk"
            )
        )
        .select(pl.col("x").alias("account_id"), "neighbour_risk")
    )

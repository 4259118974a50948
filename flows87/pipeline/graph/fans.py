"""Fan patterns: money scattered and gathered again, hubs collecting from flagged accounts, and
many unrelated people paying one foreign beneficiary alike.

All three are joins and grouped counts over the transfer table; windows are anchored at each
candidate's own transactions, so only the few accounts that pass a whole-data count first are
ever windowed.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import (
    Anchored,
    Partition,
    by_role,
    incident,
    whole_infrastructure,
)
from flows87.pipeline.graph.common import (
    ONE_US,
    Following,
    GraphContext,
    covering,
    days,
    empty_hits,
    finish,
    has_data,
    in_window,
    infrastructure,
    instance_by_first_txn,
    span_facts,
    transfers,
    txn_lists,
)
from flows87.pipeline.graph.context import TRANSFER
from flows87.pipeline.graph.identity import surname


def _low_degree(every: pl.LazyFrame, among: pl.DataFrame, most: float) -> pl.DataFrame:
    """The accounts of `among.x` with at most `most` distinct counterparties, in and out, cash
    tills left out (column `x`), over the transfers `every` (src, dst, channel).

    The shops a person pays by card do not make a busy account, so card purchases are left out;
    a merchant's card sales do count (a merchant is no little-used intermediary).
    """
    # each side's legs of the `among` accounts only (a set lookup per transfer, no join of every
    # transfer), before the two are put together
    wanted = among.get_column("x").implode()
    sent = every.filter(pl.col("channel") != "card", pl.col("src").is_in(wanted))
    got = every.filter(pl.col("dst").is_in(wanted))
    legs = pl.concat(
        [
            sent.select(pl.col("src").alias("x"), pl.col("dst").alias("cp")),
            got.select(pl.col("dst").alias("x"), pl.col("src").alias("cp")),
        ]
    )
    # Counterparties are counted by their hashes first (equal texts hash alike, so a count of
    # distinct hashes above `most` means more distinct counterparties), then exactly for the
    # few accounts left: distinct texts per merchant took 1.6 GB at 20M transactions.
    few = (
        legs.group_by("x")
        .agg(pl.col("cp").hash().n_unique().alias("n"))
        .filter(pl.col("n") <= most)
        .select("x")
        .collect(engine="streaming")
    )
    return (
        legs.filter(pl.col("x").is_in(few.get_column("x").implode()))
        .group_by("x")
        .agg(pl.col("cp").n_unique().alias("degree"))
        .filter(pl.col("degree") <= most)
        .select("x")
        .sort("x")
        .collect(engine="streaming")
    )


def _intermediaries_of(
    every: pl.LazyFrame, infra: pl.DataFrame, p: dict[str, float]
) -> pl.DataFrame:
    """The accounts (column `x`) that could stand between the two ends of a scatter-gather in
    the transfers `every` (src, dst, amt, channel): paid by and paying a non-infrastructure
    account at least `min_amount`, with at most `max_intermediary_degree` counterparties."""
    e = every.filter(pl.col("amt") >= p["min_amount"]) if p["min_amount"] > 0 else every
    infra_lazy = infra.lazy()
    scattered = e.join(infra_lazy, left_on="src", right_on="account_id", how="anti")
    gathering = e.join(infra_lazy, left_on="dst", right_on="account_id", how="anti")
    both = (
        scattered.select(pl.col("dst").alias("x"))
        .unique()
        .join(gathering.select(pl.col("src").alias("x")).unique(), on="x")
        .collect(engine="streaming")
    )
    return _low_degree(every, both, p["max_intermediary_degree"])


def _intermediaries_key(p: dict[str, float]) -> str:
    keys = ("min_amount", "max_hub_share", "max_intermediary_degree")
    return "intermediaries:" + ":".join(str(float(p[k])) for k in keys)


def intermediaries(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """`_intermediaries_of` the context's transfers, memoised: a partition's context has it
    made from the whole graph first (`_whole_intermediaries`), since an intermediary's degree
    counts counterparties the partition does not read."""

    def make() -> pl.DataFrame:
        every = transfers(ctx).lazy().select("src", "dst", "amt", "channel")
        return _intermediaries_of(every, infrastructure(ctx, p["max_hub_share"]), p)

    return ctx.memo(_intermediaries_key(p), make)


def scatter_gather(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """A pays several low-degree accounts, each of which pays B soon after (A != B).

    Cost: O(E log E + S · `max_scan`) for E transfers and S payments into intermediaries: each
    payment in meets at most `max_scan` payments out (`common.Following`), not every payment
    the intermediary ever made (quadratic between accounts that pay each other daily); the
    busiest window of each (A, B) is found with `common.covering`, not by pairing every
    window start with every path. An instance lists at most MAX_MEMBERS_PER_ROLE
    intermediaries.
    """
    window, k = days(p["window_days"]), int(p["min_intermediaries"])
    e = transfers(ctx, float(p["min_amount"]))
    infra = infrastructure(ctx, p["max_hub_share"])
    # the intermediaries first (account columns only), then only their payments in and out:
    # two named copies of every transfer took 0.5 GB at 5M transactions
    lazy, infra_lazy = e.lazy(), infra.lazy()
    scatter_all = lazy.join(infra_lazy, left_on="src", right_on="account_id", how="anti")
    gather_all = lazy.join(infra_lazy, left_on="dst", right_on="account_id", how="anti")
    low = intermediaries(ctx, p)
    scatter = (
        scatter_all.join(low.lazy(), left_on="dst", right_on="x", how="semi")
        .select(
            pl.col("src").alias("a"),
            pl.col("dst").alias("x"),
            pl.col("txn_id").alias("x_in"),
            pl.col("ts").alias("t_in"),
            pl.col("amt").alias("amt_in"),
        )
        .collect()
        .sort("x_in")
    )
    gather = (
        gather_all.join(low.lazy(), left_on="src", right_on="x", how="semi")
        .select(
            pl.col("src").alias("x"),
            pl.col("dst").alias("b"),
            pl.col("txn_id").alias("x_out"),
            pl.col("ts").alias("_t"),
            pl.col("amt").alias("amt_out"),
        )
        .collect()
    )
    # Each payment in is followed by the intermediary's next `max_scan` payments out within the
    # window: an intermediary with few counterparties may still pay them again and again.
    legs = (
        Following(gather, "x", ["x_out"])
        .after(scatter, "t_in", int(p["max_scan"]), within=window)
        .rename({"_t": "t_out"})
        .filter(
            pl.col("a") != pl.col("b"),
            # The intermediary passes on (nearly) what it got: an employee paying rent out of
            # a wage passes on a part, a mule passes on all but a fee.
            pl.col("amt_out") >= pl.col("amt_in") * p["min_ratio"],
            pl.col("amt_out") <= pl.col("amt_in") * p["max_ratio"],
        )
    )
    pairs = legs.group_by("a", "b").agg(pl.col("x").n_unique().alias("n")).filter(pl.col("n") >= k)
    legs = legs.join(pairs.select("a", "b"), on=["a", "b"], how="semi")
    if legs.is_empty():
        return empty_hits()
    # Windows start at each scatter payment; keep the window of each (A, B) with most accounts.
    # A path A -> x -> B lies in the window starting at `anchor` when anchor <= t_in and
    # t_out <= anchor + window, i.e. when the anchor lies in [t_out - window, t_in].
    anchors = legs.select("a", "b", pl.col("t_in").alias("anchor")).unique()
    best = (
        covering(
            legs,
            ["a", "b"],
            "x",
            anchors,
            pl.col("t_out") - window,
            pl.col("t_in"),
            same_length=False,
        )
        .filter(pl.col("n") >= k)
        .sort(["a", "b", "n", "anchor"], descending=[False, False, True, False])
        .unique(["a", "b"], keep="first", maintain_order=True)
    )
    inside = legs.join(best.select("a", "b", "anchor"), on=["a", "b"]).filter(
        pl.col("t_in") >= pl.col("anchor"), pl.col("t_out") <= pl.col("anchor") + window
    )
    paths = inside
    # An instance is named by its first scatter payment; when that payment starts the windows of
    # two beneficiaries (the intermediaries pay both), the beneficiary tells them apart.
    first_in = pl.col("x_in").sort_by("t_in", "x_in").first().over("a", "b")
    paths = (
        paths.with_columns(first_in.alias("instance"))
        .with_columns(
            pl.when(pl.col("b").n_unique().over("instance") > 1)
            .then(pl.lit("scatter_gather:") + pl.col("instance") + ">" + pl.col("b"))
            .otherwise(pl.lit("scatter_gather:") + pl.col("instance"))
            .alias("instance")
        )
        .sort("instance", "t_in", "x_in", "t_out", "x_out")
    )
    scattered = (
        paths.unique(["instance", "x_in"], maintain_order=True)
        .group_by("instance")
        .agg(pl.col("amt_in").sum().round(2).alias("total_amount"))
    )
    gathered = (
        paths.unique(["instance", "x_out"], maintain_order=True)
        .group_by("instance")
        .agg(pl.col("amt_out").sum().round(2).alias("gathered_amount"))
    )
    legs_long = pl.concat(
        [
            paths.select("instance", pl.col("x_in").alias("txn_id"), pl.col("t_in").alias("ts")),
            paths.select("instance", pl.col("x_out").alias("txn_id"), pl.col("t_out").alias("ts")),
        ]
    )
    facts = (
        txn_lists(legs_long)
        .join(
            paths.group_by("instance").agg(
                pl.col("a").first().alias("source"),
                pl.col("b").first().alias("target"),
                pl.col("x").n_unique().alias("n_intermediaries"),
            ),
            on="instance",
        )
        .join(scattered, on="instance")
        .join(gathered, on="instance")
        .join(legs_long.group_by("instance").agg(span_facts()), on="instance")
    )
    members = pl.concat(
        [
            paths.select(
                "instance", pl.col("a").alias("account_id"), pl.lit("origin").alias("role")
            ),
            paths.select(
                "instance", pl.col("x").alias("account_id"), pl.lit("intermediary").alias("role")
            ),
            paths.select(
                "instance", pl.col("b").alias("account_id"), pl.lit("beneficiary").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def behaviour_flagged(ctx: GraphContext) -> pl.DataFrame | None:
    """src, signals: the accounts behaviour rules flagged (that passed the flood ceiling), with
    their rule ids; None without signals. What the controller patterns count as victims."""
    sig = ctx.signals
    if sig.is_empty() or not {"family", "account_id", "signal_id"} <= set(sig.columns):
        return None
    return (
        sig.filter(pl.col("family") == "behaviour")
        .group_by(pl.col("account_id").alias("src"))
        .agg(pl.col("signal_id").unique().sort().alias("signals"))
    )


def sender_signals(sent: pl.DataFrame, flagged: pl.DataFrame) -> pl.DataFrame:
    """instance, sender_signals: the rules that flagged each instance's senders, once each."""
    return (
        sent.select("instance", "src")
        .unique()
        .join(flagged, on="src")
        .group_by("instance")
        .agg(
            pl.col("signals")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique()
            .sort()
            .alias("sender_signals")
        )
    )


def _outflow_of(tx: pl.LazyFrame, senders: pl.DataFrame) -> pl.DataFrame:
    """src, outflow: everything each of the `senders` (column `src`) paid out, cash and card
    included, of the transactions `tx`. Summed in graph order (`in_graph_order`) whatever the
    order of `tx`, so the whole graph read from a file sums as the context's rows do."""
    # lazy: only the columns read are filtered, not a copy of every column
    return (
        tx.filter(
            pl.col("src_account") != pl.col("dst_account"),
            pl.col("src_account").is_in(senders.get_column("src").implode()),
        )
        .select(
            pl.col("src_account").alias("src"),
            "amount_base",
            (~TRANSFER).alias("_cash"),
            "ts",
            "txn_id",
        )
        .collect(engine="streaming")
        .sort("_cash", "ts", "txn_id")
        .group_by("src")
        .agg(pl.col("amount_base").sum().alias("outflow"))
    )


HUB_OUTFLOW = "flagged_outflow:controller_hub"
"""Its memo key: party_controller memoises its own senders' outflow, summed otherwise."""


def flagged_outflow(ctx: GraphContext, flagged: pl.DataFrame) -> pl.DataFrame:
    """`_outflow_of` the flagged accounts in the context's transactions, memoised: a
    partition's context has it made from the whole graph first (`_whole_outflow`), since a
    controller's partition reads what its senders paid it, not all they paid."""
    return ctx.memo(HUB_OUTFLOW, lambda: _outflow_of(ctx.transactions.lazy(), flagged))


def controller_hub(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """An account taking most of the outflow of several accounts that behaviour rules flagged.

    `min_payments_per_sender` asks for repeated sweeps: on average each flagged sender paid the
    hub that many times (a landlord is paid once a month; a controller collects daily or weekly).

    Cost: O(E log E) for E transfers (grouped sums over the flagged senders' transfers). A hub
    paid by 200,000 flagged accounts is one instance listing the MAX_MEMBERS_PER_ROLE that paid
    it most, with the exact count in `flagged_senders`; listing them all made every one of
    200,000 hit rows carry a list of 200,000 accounts (3 GB of evidence, most of a 20 s run).
    """
    flagged = behaviour_flagged(ctx)
    if flagged is None:
        return empty_hits()
    outflow = flagged_outflow(ctx, flagged)
    sent = transfers(ctx).join(flagged, on="src", how="semi")
    edges = (
        # in order of first payment: each hub's mean share sums its senders in the same order
        # whatever else the context holds (a partition's context, graph/anchored.py)
        sent.group_by("src", "dst", maintain_order=True)
        .agg(pl.col("amt").sum().alias("sent"), pl.len().alias("payments"))
        .join(outflow, on="src", maintain_order="left")
        .with_columns((pl.col("sent") / pl.col("outflow")).alias("share"))
    )
    hubs = (
        edges.group_by("dst")
        .agg(
            pl.col("src").n_unique().alias("flagged_senders"),
            pl.col("share").mean().alias("mean_share"),
            pl.col("payments").mean().alias("payments_per_sender"),
        )
        .filter(
            pl.col("flagged_senders") >= p["min_flagged_senders"],
            pl.col("mean_share") >= p["min_share"],
            pl.col("payments_per_sender") >= p["min_payments_per_sender"],
        )
        .join(
            infrastructure(ctx, p["max_hub_share"]),
            left_on="dst",
            right_on="account_id",
            how="anti",
        )
    )
    if hubs.is_empty():
        return empty_hits()
    sent = sent.join(hubs.select("dst"), on="dst", how="semi").with_columns(
        (pl.lit("controller_hub:") + pl.col("dst")).alias("instance")
    )
    flagged_by = sender_signals(sent, flagged)
    facts = (
        txn_lists(sent)
        .join(
            sent.group_by("instance").agg(pl.len().alias("n_transfers"), *span_facts(amount="amt")),
            on="instance",
        )
        .join(
            hubs.select(
                (pl.lit("controller_hub:") + pl.col("dst")).alias("instance"),
                "flagged_senders",
                pl.col("mean_share").round(4),
                pl.col("payments_per_sender").round(2),
            ),
            on="instance",
        )
        .join(flagged_by, on="instance")
    )
    members = pl.concat(
        [
            sent.select(
                "instance", pl.col("dst").alias("account_id"), pl.lit("controller").alias("role")
            ).unique(maintain_order=True),
            # the senders that paid the hub most first: the ones listed when there are too many
            sent.group_by("instance", "src")
            .agg(pl.col("amt").sum())
            .sort(["instance", "amt", "src"], descending=[False, True, False])
            .select("instance", pl.col("src").alias("account_id"), pl.lit("member").alias("role")),
        ]
    )
    return finish(members, facts)


def _cross_border(ctx: GraphContext, k: int, p: dict[str, float]) -> pl.DataFrame:
    """Transfers (no card sales) of at most `max_amount` to beneficiaries with `k` senders or
    more: cross-border ones, or with `cross_border` 0 any to an individual beneficiary (a
    recruiter at home; lenders and shops are businesses). Each sender's row carries what the
    tests need: when it first paid this beneficiary, whether it is known to be a business, and
    whether it bears the beneficiary's surname (kin)."""
    xb = transfers(ctx).filter(pl.col("channel") != "card", pl.col("amt") <= p["max_amount"])
    if p["cross_border"]:
        xb = xb.filter(pl.col("src_country") != pl.col("dst_country"))
    else:
        firms = ctx.accounts.filter(pl.col("kind") == "business").select(
            pl.col("account_id").alias("dst")
        )
        xb = xb.join(firms, on="dst", how="anti")
    wide = xb.group_by("dst").agg(pl.col("src").n_unique().alias("n")).filter(pl.col("n") >= k)
    xb = xb.join(wide.select("dst"), on="dst", how="semi")
    who = ctx.accounts.select(
        "account_id",
        (pl.col("kind") == "business").fill_null(False).alias("business"),
        surname().alias("sur"),
    )
    return (
        xb.with_columns(pl.col("ts").min().over("src", "dst").alias("first_paid"))
        .join(who.rename({"account_id": "src"}), on="src", how="left")
        .join(
            who.select(pl.col("account_id").alias("dst"), pl.col("sur").alias("dst_sur")),
            on="dst",
            how="left",
        )
        .with_columns(
            (pl.col("sur") == pl.col("dst_sur")).fill_null(False).alias("kin"),
            pl.col("business").fill_null(False),
        )
        .sort("dst", "ts", "txn_id")
    )


def many_to_one_beneficiary(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Many unrelated people paying one beneficiary (abroad, or with `cross_border` 0 anywhere):
    similar sums, within days, new payers.

    Family remittances and foreign merchants are popular beneficiaries too, so popularity is not
    enough. Pooled wages and debt repayments to a recruiter (FATF/APG 2018) come from workers
    who are individuals (`min_individual_share`), mostly start paying within the window
    (`min_new_share`: first payment to this beneficiary in the data falls inside it), pay
    similar sums (coefficient of variation <= `max_cv`), within `window_days`, and rarely bear
    the beneficiary's surname (`max_kin_share`; relatives do). Tests that need names or kinds
    pass when the data lacks them.

    Cost: O(E log E) for E transfers. Each window's distinct senders are counted with
    `common.covering` and its spread with sliding sums, not by visiting every payment of every
    window (quadratic for a beneficiary paid by 200,000 senders within a week). The instance
    lists at most MAX_MEMBERS_PER_ROLE senders (the first, in time order).
    """
    if p["cross_border"] and not has_data(ctx.transactions, "src_country", "dst_country"):
        return empty_hits()
    window, k = days(p["window_days"]), int(p["min_senders"])
    xb = _cross_border(ctx, k, p)
    if xb.is_empty():
        return empty_hits()
    # Each window (t - w, t] ends at a payment; a sender counts in it when one of its payments
    # falls in it, i.e. when t lies in [s, s + w) for one of its payment times s (`covering`).
    anchors = xb.select("dst", pl.col("ts").alias("anchor")).unique()
    span = (pl.col("ts"), pl.col("ts") + window - ONE_US)

    def senders(rows: pl.DataFrame, name: str) -> pl.DataFrame:
        return covering(rows, ["dst"], "src", anchors, *span, name=name)

    size = f"{int(window / ONE_US)}us"
    spread = (
        xb.with_columns(
            (
                pl.col("amt").rolling_std_by("ts", window_size=size).over("dst")
                / pl.col("amt").rolling_mean_by("ts", window_size=size).over("dst")
            ).alias("cv")
        )
        .group_by("dst", pl.col("ts").alias("anchor"))
        .agg(pl.col("cv").first().fill_null(0.0))
    )
    windows = (
        senders(xb, "n")
        .join(senders(xb.filter(~pl.col("business")), "individual"), on=["dst", "anchor"])
        # a sender is new when its first payment to the beneficiary falls in the window
        .join(senders(xb.filter(pl.col("ts") == pl.col("first_paid")), "new"), on=["dst", "anchor"])
        .join(senders(xb.filter(pl.col("kin")), "kin"), on=["dst", "anchor"])
        .join(spread, on=["dst", "anchor"])
        .with_columns(
            *(
                (pl.col(c).fill_null(0) / pl.col("n")).alias(f"{c}_share")
                for c in ("individual", "new", "kin")
            )
        )
        .filter(
            pl.col("n") >= k,
            pl.col("cv") <= p["max_cv"],
            pl.col("individual_share") >= p["min_individual_share"],
            pl.col("new_share") >= p["min_new_share"],
            pl.col("kin_share") <= p["max_kin_share"],
        )
    )
    best = windows.sort(["dst", "n", "anchor"], descending=[False, True, False]).unique(
        "dst", keep="first", maintain_order=True
    )
    got = in_window(xb, best, "dst", window)
    if got.is_empty():
        return empty_hits()
    got = got.with_columns(instance_by_first_txn("many_to_one_beneficiary", "dst"))
    facts = (
        txn_lists(got)
        .join(
            got.group_by("instance").agg(
                pl.col("dst").first(),
                pl.col("src").n_unique().alias("n_senders"),
                pl.len().alias("n_transfers"),
                pl.col("src_country").unique().sort().alias("sender_countries"),
                pl.col("dst_country").first().alias("beneficiary_country"),
                *span_facts(amount="amt"),
            ),
            on="instance",
        )
        .join(
            best.select(
                "dst",
                *(pl.col(c).round(4) for c in ("cv", "individual_share", "new_share", "kin_share")),
            ),
            on="dst",
        )
        .drop("dst")
    )
    members = pl.concat(
        [
            got.select(
                "instance", pl.col("dst").alias("account_id"), pl.lit("beneficiary").alias("role")
            ),
            got.select(
                "instance", pl.col("src").alias("account_id"), pl.lit("sender").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def _whole_intermediaries(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """Prime scatter_gather: the whole graph's infrastructure and intermediaries."""
    whole_infrastructure(tx, ctx, values)
    every = tx.filter(TRANSFER).select(
        pl.col("src_account").alias("src"),
        pl.col("dst_account").alias("dst"),
        pl.col("amount_base").alias("amt"),
        "channel",
    )
    table = _intermediaries_of(every, infrastructure(ctx, values["max_hub_share"]), values)
    ctx.memo(_intermediaries_key(values), lambda: table)


def _whole_outflow(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """Prime controller_hub: the whole graph's infrastructure and flagged senders' outflow."""
    whole_infrastructure(tx, ctx, values)
    flagged = behaviour_flagged(ctx)
    if flagged is not None:
        table = _outflow_of(tx, flagged)
        ctx.memo(HUB_OUTFLOW, lambda: table)


def _scattered(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The partition's accounts' transfers, and every payment out of an account they paid."""
    paid = (
        tx.filter(TRANSFER & p.has("src_account"))
        .select("dst_account")
        .unique()
        .collect(engine="streaming")
        .get_column("dst_account")
    )
    return incident(tx, accounts, p) | pl.col("src_account").is_in(paid.implode())


ANCHORED = {
    "scatter_gather": Anchored(by_role("origin"), _scattered, _whole_intermediaries),
    "controller_hub": Anchored(by_role("controller"), incident, _whole_outflow),
    "many_to_one_beneficiary": Anchored(by_role("beneficiary")),
}
"""A scatter-gather is its origin's: the origin's payments, and every payment out of an account
it paid (the gathering legs and what else an intermediary paid; degrees are primed). A
controller hub is the controller's: the payments into it (its senders' outflow is primed). A
many-to-one beneficiary is the beneficiary's: the payments into it."""

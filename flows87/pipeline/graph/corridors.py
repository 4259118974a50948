"""Beneficiaries abroad of the small payments that account rules flagged as exploitation-linked.

AUSTRAC (2019) describes payments for the live-streamed sexual exploitation of children as
frequent low-value transfers to facilitators in a few high-risk corridors. The account rule
finds the sender; the facilitators on the other side are accounts too (in an FIU's data, or a
bank's correspondent records) and belong in the same case: this pattern names them, with the
small transfers each received from the flagged senders.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role
from flows87.pipeline.graph.common import (
    GraphContext,
    empty_hits,
    finish,
    has_data,
    span_facts,
    transfers,
    txn_lists,
)

TYPOLOGY = "cse_small_intl"
"""Account-rule signals of at least `min_sender_score` whose typologies include this one mark the
senders (broader rules that merely list the typology, such as remittance corridors, do not)."""


def corridor_beneficiaries(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Each flagged sender and the beneficiaries abroad it paid at least `min_payments` small
    (at most `max_amount`) transfers; one instance per sender.

    Cost: O(E log E) for E transfers (a semi-join on the flagged senders and grouped counts);
    an instance lists at most MAX_MEMBERS_PER_ROLE beneficiaries.
    """
    sig = ctx.signals
    if sig.is_empty() or "typologies" not in sig.columns:
        return empty_hits()
    if not has_data(ctx.transactions, "src_country", "dst_country"):
        return empty_hits()
    senders = (
        sig.filter(
            pl.col("source") == "rule",
            pl.col("typologies").list.contains(TYPOLOGY),
            pl.col("score") >= p["min_sender_score"],
        )
        .select(pl.col("account_id").alias("src"))
        .unique()
    )
    if senders.is_empty():
        return empty_hits()
    small = (
        transfers(ctx)
        .join(senders, on="src", how="semi")
        .filter(
            pl.col("amt") <= p["max_amount"],
            pl.col("src_country").is_not_null(),
            pl.col("dst_country").is_not_null(),
            pl.col("src_country") != pl.col("dst_country"),
        )
    )
    pairs = (
        small.group_by("src", "dst")
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= p["min_payments"])
        .select("src", "dst")
    )
    legs = small.join(pairs, on=["src", "dst"], how="semi")
    if legs.is_empty():
        return empty_hits()
    legs = legs.with_columns((pl.lit("corridor:") + pl.col("src")).alias("instance"))
    facts = txn_lists(legs).join(
        legs.group_by("instance").agg(
            pl.col("src").first().alias("sender"),
            pl.col("dst").n_unique().alias("n_beneficiaries"),
            pl.col("dst_country").unique().sort().str.join(", ").alias("countries"),
            pl.len().alias("n_transfers"),
            pl.col("amt").median().round(2).alias("median_amount"),
            *span_facts(amount="amt"),
        ),
        on="instance",
    )
    members = pl.concat(
        [
            legs.sort("ts", "txn_id").select(
                "instance", pl.col("src").alias("account_id"), pl.lit("sender").alias("role")
            ),
            legs.sort("ts", "txn_id").select(
                "instance", pl.col("dst").alias("account_id"), pl.lit("beneficiary").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def _sent(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The payments of the partition's accounts (a sender's instance is its own small transfers
    abroad; the flagged senders come from the prior signals, whole in every partition)."""
    return p.has("src_account")


ANCHORED = {"corridor_beneficiaries": Anchored(by_role("sender"), _sent)}
"""An instance is its sender's: the flagged sender's own payments."""

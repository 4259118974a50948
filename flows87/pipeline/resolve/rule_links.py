"""Links made by rule beside the model's: one account's holders, and records written alike.

A goAML intake repeats itself: a bank copies its client's KYC record into every report, so one
holder of a busy account is hundreds of records identical in every compared field. Splink
needs only one of them (`representatives`): the copies are linked to it by rule, which keeps
the comparisons (and the work) to the distinct spellings, and keeps a busy account's copies
from passing for a crowd of matches when u (random pairs) and m (EM) are estimated. Copies
are only joined when something besides the name is known (an account, a birth date, an
identifier): two bare "John Smith" could be anyone. One account's holder records are linked
by `accounts.account_links`.

A rule's link has probability 1, `linked_by` naming the rule and an explanation in words; a
pair the model also scored keeps its weights, with the rule's words first.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.resolve.accounts import SAME_ACCOUNT, account_links

SAME_WRITING = "written the same in every compared field"

_COMPARED = (
    "kind", "account_id", "name_norm", "first_norm", "last_norm", "birth_date", "id_norm",
    "id_type_norm", "phone_norm", "email_norm", "address_norm", "country_norm",
)  # fmt: skip
_KNOWN = ("account_id", "birth_date", "id_norm", "phone_norm", "email_norm")

KEY = ["record_id_l", "record_id_r"]


def representatives(prepared: pl.DataFrame) -> pl.Series:
    """Each record's representative: the smallest record_id of those written the same (the
    record itself when only its name is known). Rows are grouped by a 64-bit hash of the
    compared fields (a window over the fields themselves took ~0.8 GB more for 1M records);
    two different rows share a hash with odds ~n²/2⁶⁵ (1M records: 3 in 10⁸)."""
    known = pl.any_horizontal([pl.col(c).is_not_null() for c in _KNOWN])
    same = pl.col("record_id").min().over(pl.struct(list(_COMPARED)).hash(87))
    rep = prepared.select(pl.when(known).then(same).otherwise(pl.col("record_id")))
    return rep.to_series().alias("representative")


def rule_links(prepared: pl.DataFrame, parties: pl.DataFrame) -> pl.DataFrame:
    """(record_id_l, record_id_r, kind, linked_by, why) of both rules, each pair once."""
    base = prepared.select("record_id", "kind", "account_id")
    if "holder" in parties.columns:
        base = base.join(parties.select("record_id", "holder"), on="record_id", how="left")
    acc = account_links(base).select(
        *KEY,
        "kind",
        pl.lit("account").alias("linked_by"),
        (pl.lit(f"{SAME_ACCOUNT} ") + pl.col("account_id")).alias("why"),
    )
    alike = (
        prepared.select("record_id", "kind", "representative")
        .filter(pl.col("representative") != pl.col("record_id"))
        .select(
            pl.col("representative").alias("record_id_l"),
            pl.col("record_id").alias("record_id_r"),
            "kind",
            pl.lit("identical").alias("linked_by"),
            pl.lit(SAME_WRITING).alias("why"),
        )
    )
    return pl.concat([acc, alike]).unique(subset=KEY, keep="first", maintain_order=True)


def with_rule_links(
    table: pl.DataFrame, prepared: pl.DataFrame, rules: pl.DataFrame
) -> pl.DataFrame:
    """The model's scored pairs (`linked_by` "model") with the rules' links: a scored pair a
    rule also links is raised to probability 1, the rule's words first; the others are added."""
    table = table.with_columns(pl.lit("model").alias("linked_by"))
    if rules.is_empty():
        return table
    scored = table.join(
        rules.select(*KEY, "why", pl.col("linked_by").alias("_rule")), on=KEY, how="left"
    )
    ruled = pl.col("_rule").is_not_null()
    scored = scored.with_columns(
        pl.when(ruled).then(pl.lit(1.0)).otherwise("match_probability").alias("match_probability"),
        pl.when(ruled)
        .then(pl.concat_str(["why", "explanation"], separator=", ", ignore_nulls=True))
        .otherwise("explanation")
        .alias("explanation"),
        pl.coalesce("_rule", "linked_by").alias("linked_by"),
    ).drop("why", "_rule")
    ids = prepared.select("record_id", "bank_id", "account_id", "name_norm")
    added = (
        rules.join(table.select(KEY), on=KEY, how="anti")
        .join(ids, left_on="record_id_l", right_on="record_id")
        .join(ids, left_on="record_id_r", right_on="record_id", suffix="_r")
        .select(
            *KEY,
            "kind",
            pl.lit(1.0).alias("match_probability"),
            pl.col("bank_id").alias("bank_id_l"),
            "bank_id_r",
            pl.col("account_id").alias("account_id_l"),
            "account_id_r",
            pl.col("name_norm").alias("name_norm_l"),
            "name_norm_r",
            pl.col("why").alias("explanation"),
            "linked_by",
        )
    )
    return pl.concat([scored, added], how="diagonal_relaxed")

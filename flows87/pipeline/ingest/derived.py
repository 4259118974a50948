"""The accounts table of sources that have none, derived from their transactions."""

from __future__ import annotations

import polars as pl

from flows87 import schema


def derive_accounts(tx: pl.LazyFrame, *, kind: pl.Expr | None = None) -> pl.LazyFrame:
    """Accounts seen in the transactions, for sources without an accounts table.

    Optional helper columns `_src_bank`/`_dst_bank` give the bank, `src_country`/`dst_country`
    the country. With labels, an account is suspicious when it sent or received a suspicious
    transaction; its typology and scheme are those of the earliest such transaction.
    """
    names = tx.collect_schema().names()

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in names else pl.lit(None, dtype=pl.String)

    sides = pl.concat(  # both ends of every transaction
        tx.select(
            account_id=pl.col(f"{end}_account"),
            bank_id=col(f"_{end}_bank"),
            country=col(f"{end}_country"),
            label=first_label(names),
        )
        for end in ("src", "dst")
    )
    accounts = sides.group_by("account_id").agg(
        pl.col("bank_id").drop_nulls().min(),
        pl.col("country").drop_nulls().min(),
        pl.col("label").min(),  # the earliest suspicious transaction's
    )
    if "is_suspicious" in names:
        parts = pl.col("label").str.split(SEP)
        accounts = accounts.with_columns(
            is_suspicious=pl.col("label").is_not_null(),
            typology=parts.list.get(1, null_on_oob=True).replace("", None),
            scheme_id=parts.list.get(2, null_on_oob=True).replace("", None),
        )
    accounts = accounts.with_columns(
        party_id=pl.lit(None, dtype=pl.String),
        kind=kind if kind is not None else pl.lit("unknown"),
        opened_at=pl.lit(None, dtype=schema.UTC_TS),
    )
    return schema.conform(accounts.sort("account_id"), "accounts")


SEP = "\x1f"


def first_label(names: list[str]) -> pl.Expr:
    """`<ts>SEP<typology>SEP<scheme_id>` of a suspicious transaction, null otherwise: the minimum
    per account is its earliest one, found by a plain streaming aggregate."""
    if "is_suspicious" not in names:
        return pl.lit(None, dtype=pl.String)
    parts = [pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")]
    parts += [
        pl.col(c).fill_null("") if c in names else pl.lit("") for c in ("typology", "scheme_id")
    ]
    return pl.when(pl.col("is_suspicious")).then(pl.concat_str(parts, separator=SEP))

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
    labelled = "is_suspicious" in tx.collect_schema().names()
    return _accounts(account_sides(tx), labelled, kind)


def account_sides(tx: pl.LazyFrame) -> pl.LazyFrame:
    """Per account seen: its least bank, country and label (`first_label`) in `tx`.

    Every column is a minimum, so the sides of several files, concatenated and taken the
    minimum of again (`accounts_from_sides`), are those of the files read as one: a file read
    on its own (a mapped read task) hands over its sides, not its accounts."""
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
    return sides.group_by("account_id").agg(
        pl.col("bank_id").drop_nulls().min(),
        pl.col("country").drop_nulls().min(),
        pl.col("label").min(),  # the earliest suspicious transaction's
    )


def accounts_from_sides(
    sides: pl.LazyFrame, labelled: bool, *, kind: pl.Expr | None = None
) -> pl.LazyFrame:
    """The accounts table of the `account_sides` of several files, concatenated."""
    least = sides.group_by("account_id").agg(
        pl.col("bank_id").min(), pl.col("country").min(), pl.col("label").min()
    )
    return _accounts(least, labelled, kind)


def _accounts(accounts: pl.LazyFrame, labelled: bool, kind: pl.Expr | None) -> pl.LazyFrame:
    if labelled:
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

"""The rows of many goAML reports as tables: transactions counted once, accounts merged,
party records for entity resolution."""

from __future__ import annotations

import polars as pl

from flows87 import schema
from flows87.pipeline.ingest import common
from flows87.pipeline.ingest.goaml_parse import Report
from flows87.pipeline.ingest.goaml_schema import (
    ACCOUNT_SCHEMA,
    PARTY_SCHEMA,
    REPORT_SCHEMA,
)

HOLDER = ("name", "birth_date", "id_number", "id_type", "nationality", "phone", "email",
          "address", "occupation", "business_type")  # fmt: skip
"""Holder attributes the accounts table takes from the holder's party record."""


def transactions_table(
    reports: list[Report], base_currency: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical transactions, each counted once, and which reports named each."""
    tx = pl.concat([c for r in reports for c in r.frames("transactions")], how="vertical")
    tx = tx.with_row_index("_row").with_columns(
        _day=pl.col("ts").dt.date(), _cents=(pl.col("amount_local") * 100).round().cast(pl.Int64)
    )
    same_money = ["src_account", "dst_account", "currency_local", "_cents", "_day"]
    tx = tx.with_columns(_k=pl.int_range(pl.len()).over("source_file", *same_money))
    groups = [[*same_money, "_k"], ["transactionnumber", "currency_local", "_cents", "_day"]]
    tx = tx.with_columns(_group=pl.col("_row"))
    for _ in range(20):  # connected components: the least row of each group, until stable
        before = tx["_group"]
        for keys in groups:
            tx = tx.with_columns(_group=pl.col("_group").min().over(keys))
        if tx["_group"].equals(before):
            break
    first = tx.filter(pl.col("_row") == pl.col("_group"))
    unique_number = pl.col("transactionnumber").is_unique()
    first = first.with_columns(
        txn_id=pl.when(unique_number)
        .then(pl.col("transactionnumber"))
        .otherwise(pl.concat_str("source_file", pl.lit("#"), "transactionnumber"))
    )
    ids = first.select("_group", "txn_id")
    reported = (
        tx.join(ids, on="_group", how="left")
        .sort("_row")
        .select(*REPORT_SCHEMA.names())
        .cast(REPORT_SCHEMA)
    )
    amount_base = common.to_base(pl.col("amount_local"), pl.col("currency_local"), base_currency)
    out = first.sort("_row").with_columns(amount_base=amount_base)
    # lineage: the report file of a transaction's source_row (its XML line), when there are
    # several files (one file's transactions publish as before: no source_file)
    several = len({r.source_file for r in reports}) > 1
    keep = [
        c.name
        for c in schema.TRANSACTION_COLUMNS
        if c.name in out.columns and (several or not c.filled)
    ]
    return out.select(keep), reported


def accounts_table(reports: list[Report]) -> pl.DataFrame:
    """One row per account, each attribute the first non-empty one in file order."""
    acc = pl.concat([c for r in reports for c in r.frames("accounts")], how="vertical")
    holders = parties_table(reports).filter(pl.col("holder"))
    holders = holders.group_by("txn_account", maintain_order=True).agg(
        pl.col("kind").drop_nulls().first(), *(pl.col(c).drop_nulls().first() for c in HOLDER)
    )
    merged = acc.group_by("account_id", maintain_order=True).agg(
        pl.col(c).drop_nulls().first() for c in ACCOUNT_SCHEMA.names() if c != "account_id"
    )
    merged = merged.join(
        holders.rename({"txn_account": "account_id", "name": "holder_name"}),
        on="account_id",
        how="left",
    )
    return merged.select(
        "account_id",
        party_id=pl.lit(None, dtype=pl.String),
        bank_id="bank_id",
        kind=pl.col("kind")
        .replace_strict({"person": "individual", "entity": "business"}, default="unknown")
        .fill_null("unknown"),
        opened_at=pl.col("opened").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        country="country",
        name=pl.coalesce("holder_name", "account_name"),
        **{c: c for c in HOLDER if c not in ("name",)},
        account_number="account_number",
        iban="iban",
        holder_kind="kind",
    ).sort("account_id")


def parties_table(reports: list[Report]) -> pl.DataFrame:
    """Every person and entity record of the reports."""
    parts = [c for r in reports for c in r.frames("parties")]
    return pl.concat(parts, how="vertical").select(PARTY_SCHEMA.names())

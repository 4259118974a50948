"""The goAML reader's row schemas: party records, report lineage, and the raw rows of
transactions and accounts before they are merged across reports."""

from __future__ import annotations

import polars as pl

from flows87 import schema

PARTY_SCHEMA = pl.Schema(
    {
        "record_id": pl.String(),
        "kind": pl.String(),
        "role": pl.String(),
        "account_id": pl.String(),
        "bank_id": pl.String(),
        "txn_account": pl.String(),
        "name": pl.String(),
        "first_name": pl.String(),
        "last_name": pl.String(),
        "birth_date": pl.Date(),
        "id_number": pl.String(),
        "id_type": pl.String(),
        "nationality": pl.String(),
        "phone": pl.String(),
        "email": pl.String(),
        "address": pl.String(),
        "country": pl.String(),
        "occupation": pl.String(),
        "business_type": pl.String(),
        "holder": pl.Boolean(),
        "source_file": pl.String(),
    }
)
"""One person or entity as one report wrote it. `kind` person/entity; `role` from, to
(the side's person or entity, or its account's entity), signatory, or party (activity
reports); `account_id` the account it holds or signs for (null if none); `txn_account` the
account id it stands for in the transactions (its account, or the pseudo-account of a walk-in
person or entity; null for activity parties without an account); `holder` whether the
accounts table took this record's attributes for that account."""

REPORT_SCHEMA = pl.Schema(
    {
        "txn_id": pl.String(),
        "source_file": pl.String(),
        "transactionnumber": pl.String(),
        "rentity_id": pl.String(),
        "report_code": pl.String(),
        "source_row": pl.Int64(),
    }
)
"""Every report that named a transaction (a transaction reported by two banks has two rows)."""

TX_SCHEMA = pl.Schema(
    {
        "source_file": pl.String(),
        "transactionnumber": pl.String(),
        "rentity_id": pl.String(),
        "report_code": pl.String(),
        "ts": schema.UTC_TS,
        "src_account": pl.String(),
        "dst_account": pl.String(),
        "amount_local": pl.Float64(),
        "currency_local": pl.String(),
        "amount": pl.Float64(),
        "currency": pl.String(),
        "channel": pl.String(),
        "src_country": pl.String(),
        "dst_country": pl.String(),
        "location_id": pl.String(),
        "memo": pl.String(),
        "source_row": pl.Int64(),
    }
)

ACCOUNT_SCHEMA = pl.Schema(
    {
        "account_id": pl.String(),
        "bank_id": pl.String(),
        "account_number": pl.String(),
        "iban": pl.String(),
        "currency": pl.String(),
        "account_name": pl.String(),
        "institution_country": pl.String(),
        "opened": pl.Date(),
        "country": pl.String(),
    }
)

"""SAML-D (Oztas et al. 2023): synthetic transactions with 28 typologies, 11 normal, 17 laundering.

`Time,Date,Sender_account,Receiver_account,Amount,Payment_currency,Received_currency,
Sender_bank_location,Receiver_bank_location,Payment_type,Is_laundering,Laundering_type`, with
`Time` like `10:35:19`, `Date` like `2022-10-07` (taken as UTC), currencies by name
(`UK pounds`, `Dirham`) and bank locations by country name (`UK`, `UAE`), which become ISO codes
(a location we do not know becomes null: it is optional). `amount` is in Payment_currency.

`Laundering_type` names normal behaviour too (`Normal_Fan_Out`); it becomes the typology, in
snake case (`Layered_Fan_Out` -> `layered_fan_out`, `Stacked Bipartite` -> `stacked_bipartite`),
only for rows with `Is_laundering` = 1. SAML-D gives no scheme ids.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87 import schema
from flows87.errors import InputError
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Options, ReadResult

REQUIRED = (
    "Time",
    "Date",
    "Sender_account",
    "Receiver_account",
    "Amount",
    "Payment_currency",
    "Payment_type",
)
OPTIONAL = (
    "Received_currency",
    "Sender_bank_location",
    "Receiver_bank_location",
    "Is_laundering",
    "Laundering_type",
)

CHANNELS = {
    "cash deposit": "cash_deposit",
    "cash withdrawal": "cash_withdrawal",
    "cross-border": "wire",
    "credit card": "card",
    "debit card": "card",
    "ach": "ach",
    "cheque": "cheque",
}


def read(path: Path, opts: Options) -> ReadResult:
    if path.is_dir():
        raise InputError("is a folder: give the SAML-D CSV file", file=path)
    lf, names, n_rows = files.open_csv(path, "samld", REQUIRED, OPTIONAL)
    countries = common.country_names()
    parsed = [
        common.date("Date", "_date"),
        common.time_of_day("Time", "_time"),
        common.key("Sender_account", "src_account"),
        common.key("Receiver_account", "dst_account"),
        common.amount("Amount", "amount"),
        common.lookup("Payment_currency", "currency", common.currency_names(), "currency"),
        common.lookup("Payment_type", "channel", CHANNELS, "payment type", default="other"),
    ]
    for column, out in (
        ("Sender_bank_location", "src_country"),
        ("Receiver_bank_location", "dst_country"),
    ):
        if column in names:
            parsed.append(
                common.lookup(column, out, countries, "location", required=False, strict=False)
            )
    labelled = "Is_laundering" in names
    if labelled:
        parsed.append(common.boolean("Is_laundering", "is_suspicious"))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(
        lf, checks, table="transactions", path=path, n_rows=n_rows, opts=opts
    )
    tx = good.with_columns(
        txn_id=common.row_id(path),
        ts=pl.col("_date").dt.combine(pl.col("_time"), "us").dt.replace_time_zone("UTC"),
        amount_base=common.to_base(pl.col("amount"), pl.col("currency"), opts.base_currency),
    )
    if labelled:
        typology = (
            common.snake(common.text("Laundering_type"))
            if "Laundering_type" in names
            else pl.lit(None, dtype=pl.String)
        )
        tx = tx.with_columns(
            typology=pl.when(pl.col("is_suspicious")).then(
                pl.coalesce(pl.when(typology != "").then(typology), pl.lit("laundering"))
            ),
            scheme_id=pl.lit(None, dtype=pl.String),
        )
    return ReadResult(
        format="samld",
        sources=[path],
        transactions=schema.conform(tx, "transactions"),
        accounts=common.derive_accounts(tx),
        rejects=rejects,
    )

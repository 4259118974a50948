"""PaySim (Lopez-Rojas et al. 2016): simulated mobile-money transactions with fraud labels.

`step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,
isFraud,isFlaggedFraud`. A step is one hour of simulated time, without a calendar date: `ts` is
`start + step hours`, `start` being `read(..., start=...)` or 2026-01-01 00:00 UTC. PaySim states
no currency; its amounts are taken as USD. Names starting with `M` are merchants (business
accounts), `C` customers (individuals).

PaySim models mobile-money *fraud* (account takeover, then TRANSFER and CASH_OUT), not
laundering: `isFraud` rows are suspicious with the typology `fraud`. `isFlaggedFraud` is the
simulator's own threshold rule, not a label, and is dropped; so are the balances.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from flows87 import schema
from flows87.errors import InputError
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Options, ReadResult

REQUIRED = ("step", "type", "amount", "nameOrig", "nameDest")
OPTIONAL = (
    "oldbalanceOrg",
    "newbalanceOrig",
    "oldbalanceDest",
    "newbalanceDest",
    "isFraud",
    "isFlaggedFraud",
)

START = datetime(2026, 1, 1, tzinfo=UTC)
"""Calendar time of step 0 when the caller gives none (PaySim has no dates)."""

CURRENCY = "USD"

CHANNELS = {
    "payment": "mobile_money",  # paying a merchant from the wallet
    "transfer": "p2p",  # wallet to wallet, between users
    "cash_in": "cash_deposit",  # cash paid in at a merchant agent
    "cash_out": "cash_withdrawal",  # cash taken out at a merchant agent
    "debit": "mobile_money",  # wallet to a bank account
}


def read(path: Path, opts: Options) -> ReadResult:
    if path.is_dir():
        raise InputError("is a folder: give the PaySim CSV file", file=path)
    lf, names, n_rows = files.open_csv(path, "paysim", REQUIRED, OPTIONAL)
    parsed = [
        common.whole_number("step", "_step"),
        common.lookup("type", "channel", CHANNELS, "transaction type", default="other"),
        common.amount("amount", "amount"),
        common.key("nameOrig", "src_account"),
        common.key("nameDest", "dst_account"),
    ]
    labelled = "isFraud" in names
    if labelled:
        parsed.append(common.boolean("isFraud", "is_suspicious"))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(
        lf, checks, table="transactions", path=path, n_rows=n_rows, opts=opts
    )
    start = opts.start or START
    tx = good.with_columns(
        txn_id=common.row_id(path),
        ts=pl.lit(start).cast(schema.UTC_TS) + pl.duration(hours=pl.col("_step")),
        currency=pl.lit(CURRENCY),
        amount_base=common.to_base(pl.col("amount"), pl.lit(CURRENCY), opts.base_currency),
    )
    if labelled:
        tx = tx.with_columns(
            typology=pl.when(pl.col("is_suspicious")).then(pl.lit("fraud")),
            scheme_id=pl.lit(None, dtype=pl.String),
        )
    kind = (
        pl.when(pl.col("account_id").str.starts_with("M"))
        .then(pl.lit("business"))
        .when(pl.col("account_id").str.starts_with("C"))
        .then(pl.lit("individual"))
        .otherwise(pl.lit("unknown"))
    )
    return ReadResult(
        format="paysim",
        sources=[path],
        transactions=schema.conform(tx, "transactions"),
        accounts=common.derive_accounts(tx, kind=kind),
        rejects=rejects,
    )

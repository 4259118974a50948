"""IBM AMLSim output: a folder with `transactions.csv`, `accounts.csv` and the alert files.

`transactions.csv`: `tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,
alert_id`, the time as ISO 8601 (`2017-01-01T00:00:00Z`) or, in older versions, as a day number
from the simulation's base date (`start`, default AMLSim's 2017-01-01). Amounts are in USD, the
accounts' reporting currency. `is_sar` is the label (older versions: `is_fraud`); `alert_id` -1
means no alert. The alert files (`alert_transactions.csv`, `alert_accounts.csv`) name each
alert's type (fan_in, cycle, ...), which becomes the typology of its SAR transactions and
accounts, with the alert id as scheme id.

`accounts.csv`: `acct_id,dsply_nm,type,acct_stat,acct_rptng_crncy,prior_sar_count,branch_id,
open_dt,close_dt,initial_deposit,tx_behavior_id,bank_id,first_name,last_name,street_addr,city,
state,country,zip,gender,birth_date,ssn,lon,lat` (the columns vary with AMLSim's schema.json;
only `acct_id` is required). `type` I/B means individual/business.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from flows87 import schema
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Options, ReadResult

REQUIRED = ("tran_id", "orig_acct", "bene_acct", "tx_type", "base_amt", "tran_timestamp")
OPTIONAL = ("is_sar", "is_fraud", "alert_id", "is_frgn_trxn")
ACCOUNT_REQUIRED = ("acct_id",)
ACCOUNT_OPTIONAL = (
    "dsply_nm", "type", "acct_stat", "acct_rptng_crncy", "prior_sar_count", "branch_id",
    "open_dt", "close_dt", "initial_deposit", "tx_behavior_id", "bank_id", "first_name",
    "last_name", "street_addr", "city", "state", "country", "zip", "gender", "birth_date", "ssn",
    "lon", "lat",
)  # fmt: skip

START = datetime(2017, 1, 1, tzinfo=UTC)
"""AMLSim's default `base_date`, for day numbers in place of dates."""

CURRENCY = "USD"

CHANNELS = {
    "transfer": "wire",  # account to account, bank to bank
    "wire": "wire",
    "credit": "ach",  # an electronic credit transfer
    "check": "cheque",
    "cheque": "cheque",
    "deposit": "cash_deposit",
    "cash-in": "cash_deposit",
    "cash-out": "cash_withdrawal",
    "ach": "ach",
}

KINDS = {"i": "individual", "individual": "individual", "b": "business", "business": "business"}


def locate(path: Path) -> dict[str, Path]:
    """The AMLSim files of a folder (or of the folder of `transactions.csv`) that exist."""
    folder = path if path.is_dir() else path.parent
    transactions = folder / "transactions.csv" if path.is_dir() else path
    found = {"transactions": transactions}
    for name in ("accounts", "alert_transactions", "alert_accounts"):
        if (folder / f"{name}.csv").is_file():
            found[name] = folder / f"{name}.csv"
    return found


def read(path: Path, opts: Options) -> ReadResult:
    found = locate(path)
    alerts = read_alerts(found)
    tx, tx_rejects = read_transactions(found["transactions"], opts, alerts)
    if "accounts" in found:
        accounts, acc_rejects = read_accounts(found["accounts"], opts, found.get("alert_accounts"))
    else:
        accounts, acc_rejects = common.derive_accounts(tx), common.empty_rejects()
    return ReadResult(
        format="amlsim",
        sources=list(found.values()),
        transactions=schema.conform(tx, "transactions"),
        accounts=accounts,
        rejects=common.join_rejects(tx_rejects, acc_rejects),
    )


def when_text(name: str, out: str, start: datetime, *, required: bool = True) -> common.Parsed:
    """ISO 8601 text, or a whole number of days after `start` (older AMLSim output)."""
    iso = common.iso_timestamp(name, out, required=required)
    days = common.text(name).cast(pl.Int64, strict=False)
    days = pl.when(days.abs() < 3_000_000).then(days)  # beyond that no datetime holds it
    value = pl.coalesce(pl.lit(start).cast(schema.UTC_TS) + pl.duration(days=days), iso.expr)
    return common.Parsed(value.alias(out), iso.check)


def read_transactions(
    path: Path, opts: Options, alerts: pl.DataFrame
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    lf, names, n_rows = files.open_csv(path, "amlsim", REQUIRED, OPTIONAL)
    label = next((c for c in ("is_sar", "is_fraud") if c in names), None)
    parsed = [
        common.key("tran_id", "txn_id"),
        common.key("orig_acct", "src_account"),
        common.key("bene_acct", "dst_account"),
        common.lookup("tx_type", "channel", CHANNELS, "transaction type", default="other"),
        common.amount("base_amt", "amount"),
        when_text("tran_timestamp", "ts", opts.start or START),
    ]
    if label:
        parsed.append(common.boolean(label, "is_suspicious"))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(
        lf, checks, table="transactions", path=path, n_rows=n_rows, opts=opts
    )
    tx = good.with_columns(
        currency=pl.lit(CURRENCY),
        amount_base=common.to_base(pl.col("amount"), pl.lit(CURRENCY), opts.base_currency),
    )
    if label:
        alert = common.text("alert_id") if "alert_id" in names else pl.lit(None, dtype=pl.String)
        alert = pl.when(alert != "-1").then(alert)
        tx = (
            tx.with_columns(_alert=alert)
            .join(
                alerts.lazy(),
                left_on="_alert",
                right_on="alert_id",
                how="left",
                maintain_order="left",
            )
            .with_columns(
                typology=pl.when(pl.col("is_suspicious")).then(
                    pl.coalesce("alert_type", pl.lit("laundering"))
                ),
                scheme_id=pl.when(pl.col("is_suspicious")).then(pl.col("_alert")),
            )
        )
    return tx, rejects


def read_alerts(found: dict[str, Path]) -> pl.DataFrame:
    """alert_id -> alert_type (snake case) from whichever alert files exist."""
    frames = [pl.DataFrame(schema={"alert_id": pl.String, "alert_type": pl.String})]
    for name in ("alert_transactions", "alert_accounts"):
        if name not in found:
            continue
        path = found[name]
        names = files.read_header(path)
        files.check_columns(path, names, ("alert_id", "alert_type"), (), name.replace("_", " "))
        lf = files.scan_text(path, names).select(
            alert_id=common.text("alert_id"), alert_type=common.snake(common.text("alert_type"))
        )
        frames.append(files.collect(lf.unique(), path))
    alerts = pl.concat(frames).drop_nulls("alert_id")
    return alerts.unique("alert_id", keep="first", maintain_order=True)


def read_accounts(
    path: Path, opts: Options, alert_accounts: Path | None
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    lf, names, n_rows = files.open_csv(path, "amlsim accounts", ACCOUNT_REQUIRED, ACCOUNT_OPTIONAL)
    start = opts.start or START
    parsed = [common.key("acct_id", "account_id")]
    if "open_dt" in names:
        parsed.append(when_text("open_dt", "opened_at", start, required=False))
    if "birth_date" in names:
        parsed.append(common.date("birth_date", "birth_date", required=False))
    if "prior_sar_count" in names:
        parsed.append(common.boolean("prior_sar_count", "_prior_sar", required=False))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(lf, checks, table="accounts", path=path, n_rows=n_rows, opts=opts)

    def opt(name: str) -> pl.Expr:
        return common.text(name) if name in names else pl.lit(None, dtype=pl.String)

    accounts = good.with_columns(
        party_id=opt("dsply_nm"),
        bank_id=opt("bank_id"),
        kind=common.remap(opt("type").str.to_lowercase(), KINDS, pl.String()).fill_null("unknown"),
        country=opt("country").str.to_uppercase(),
        name=pl.concat_str(opt("first_name"), opt("last_name"), separator=" ", ignore_nulls=True),
        address=pl.concat_str(
            opt("street_addr"),
            opt("city"),
            opt("state"),
            opt("zip"),
            separator=", ",
            ignore_nulls=True,
        ),
    ).with_columns([pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in ("name", "address")])
    labelled = "prior_sar_count" in names or alert_accounts is not None
    if labelled:
        accounts = label_accounts(accounts, names, alert_accounts)
    return schema.conform(accounts, "accounts"), rejects


def label_accounts(
    accounts: pl.LazyFrame, names: list[str], alert_accounts: Path | None
) -> pl.LazyFrame:
    """SAR accounts: `prior_sar_count`, or membership of a SAR alert (which gives the typology)."""
    members = pl.DataFrame(
        schema={"account_id": pl.String, "typology": pl.String, "scheme_id": pl.String}
    )
    if alert_accounts is not None:
        header = files.read_header(alert_accounts)
        files.check_columns(
            alert_accounts,
            header,
            ("alert_id", "alert_type", "acct_id"),
            ("is_sar",),
            "alert accounts",
        )
        sar = (
            common.text("is_sar")
            .str.to_lowercase()
            .pipe(common.remap, common.BOOLEANS, pl.Boolean())
            if "is_sar" in header
            else pl.lit(True)
        )
        lf = (
            files.scan_text(alert_accounts, header)
            .filter(sar)
            .select(
                account_id=common.text("acct_id"),
                typology=common.snake(common.text("alert_type")),
                scheme_id=common.text("alert_id"),
            )
            .drop_nulls("account_id")
            .sort("account_id", "scheme_id")
            .unique("account_id", keep="first", maintain_order=True)
        )
        members = files.collect(lf, alert_accounts)
    prior = pl.col("_prior_sar") if "prior_sar_count" in names else pl.lit(False)
    return (
        accounts.join(members.lazy(), on="account_id", how="left", maintain_order="left")
        .with_columns(
            is_suspicious=prior.fill_null(False) | pl.col("typology").is_not_null(),
        )
        .with_columns(
            typology=pl.when(pl.col("is_suspicious")).then(
                pl.coalesce("typology", pl.lit("laundering"))
            )
        )
    )

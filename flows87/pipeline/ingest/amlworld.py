"""IBM AMLworld transactions (`HI-Small_Trans.csv` ... `LI-Large_Trans.csv`, NeurIPS 2023).

One row per payment, sender side first:
`Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,
Payment Currency,Payment Format,Is Laundering`. The header repeats `Account`; pandas renames
the second one `Account.1`, and so do we. Bank codes are zero-padded text (`010`, `001120`) and
stay text: an account is `<bank>:<account>`.

`amount` is what the sender paid (Amount Paid, in Payment Currency). Payment formats map onto
our channels; `Cash` is a payment made in cash from one account holder to another, which the
canonical model records where the cash lands, as `cash_deposit`. `Reinvestment` (mostly an
account paying itself) becomes `other`; such self-transactions are kept, the quality gate
judges them.

When `<prefix>_Patterns.txt` lies beside `<prefix>_Trans.csv`, its laundering attempts give the
typology (`fan_out`, `cycle`, ...) and a scheme id per attempt to the matching transactions;
without it, laundering rows get the typology `laundering`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87 import schema
from flows87.errors import InputError
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Options, ReadResult

REQUIRED = (
    "Timestamp",
    "From Bank",
    "Account",
    "To Bank",
    "Account.1",
    "Amount Paid",
    "Payment Currency",
    "Payment Format",
)
OPTIONAL = ("Amount Received", "Receiving Currency", "Is Laundering")

TIME_FORMATS = ("%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
"""The benchmark writes the first; its patterns files and spreadsheets the others."""

CHANNELS = {
    "cheque": "cheque",
    "ach": "ach",
    "credit card": "card",
    "wire": "wire",
    "cash": "cash_deposit",
    "bitcoin": "crypto",
    "reinvestment": "other",
}

KEY = ["_k_ts", "_k_src_bank", "_k_src", "_k_dst_bank", "_k_dst", "amount", "currency"]
"""What identifies a transaction in both the transactions and the patterns file."""


def read(path: Path, opts: Options) -> ReadResult:
    if path.is_dir():
        raise InputError("is a folder: give the *_Trans.csv file", file=path)
    lf, names, n_rows = files.open_csv(path, "amlworld", REQUIRED, OPTIONAL)
    labelled = "Is Laundering" in names
    parsed = [
        common.timestamp(
            "Timestamp", "ts", common.pick_format(lf, "Timestamp", TIME_FORMATS, path)
        ),
        common.key("From Bank", "_src_bank"),
        common.key("Account", "_src"),
        common.key("To Bank", "_dst_bank"),
        common.key("Account.1", "_dst"),
        common.amount("Amount Paid", "amount"),
        common.lookup("Payment Currency", "currency", common.currency_names(), "currency"),
        common.lookup("Payment Format", "channel", CHANNELS, "payment format", default="other"),
    ]
    if labelled:
        parsed.append(common.boolean("Is Laundering", "is_suspicious"))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(
        lf, checks, table="transactions", path=path, n_rows=n_rows, opts=opts
    )
    tx = good.with_columns(
        txn_id=common.row_id(path),
        src_account=pl.concat_str("_src_bank", pl.lit(":"), "_src"),
        dst_account=pl.concat_str("_dst_bank", pl.lit(":"), "_dst"),
        amount_base=common.to_base(pl.col("amount"), pl.col("currency"), opts.base_currency),
    )
    sources = [path]
    if labelled:
        patterns = patterns_path(path)
        tx = label(tx, patterns)
        if patterns is not None:
            sources.append(patterns)
    return ReadResult(
        format="amlworld",
        sources=sources,
        transactions=schema.conform(tx, "transactions"),
        accounts=common.derive_accounts(tx),
        rejects=rejects,
    )


def patterns_path(path: Path) -> Path | None:
    """`HI-Small_Trans.csv` -> `HI-Small_Patterns.txt` beside it, if it exists."""
    stem = path.stem.removesuffix("_Trans").removesuffix("_trans")
    for name in (f"{stem}_Patterns.txt", f"{stem}_patterns.txt"):
        candidate = path.with_name(name)
        if candidate.is_file():
            return candidate
    return None


def label(tx: pl.LazyFrame, patterns: Path | None) -> pl.LazyFrame:
    """Typology and scheme id of laundering rows, from the patterns file when there is one."""
    fallback = pl.when(pl.col("is_suspicious")).then(pl.lit("laundering"))
    if patterns is None:
        return tx.with_columns(typology=fallback, scheme_id=pl.lit(None, dtype=pl.String))
    attempts = read_patterns(patterns).lazy()
    keyed = tx.with_columns(
        _k_ts=pl.col("ts"),
        _k_src_bank=bank_key(pl.col("_src_bank")),
        _k_src=pl.col("_src"),
        _k_dst_bank=bank_key(pl.col("_dst_bank")),
        _k_dst=pl.col("_dst"),
    )
    joined = keyed.join(attempts, on=KEY, how="left", maintain_order="left")
    return joined.with_columns(
        typology=pl.when(pl.col("is_suspicious")).then(
            pl.coalesce(pl.col("_p_typology"), pl.lit("laundering"))
        ),
        scheme_id=pl.when(pl.col("is_suspicious")).then(pl.col("_p_scheme")),
    )


def bank_key(bank: pl.Expr) -> pl.Expr:
    """Bank codes compared without leading zeros (`010` in one file is `10` in a re-saved one)."""
    return bank.str.strip_chars_start("0")


def read_patterns(path: Path) -> pl.DataFrame:
    """One row per transaction listed in a laundering attempt: its key, typology and scheme id.

    The file is blocks of CSV lines (same layout as the transactions, no header) between
    `BEGIN LAUNDERING ATTEMPT - FAN-OUT: <details>` and `END LAUNDERING ATTEMPT - FAN-OUT`.
    """
    files.require_file(path)
    lines = pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        infer_schema=False,
        new_columns=["line"],
        truncate_ragged_lines=True,
    ).select(pl.col("line").str.strip_chars())
    begin = pl.col("line").str.extract(r"^BEGIN LAUNDERING ATTEMPT\s*-\s*([^:]+)", 1)
    field = pl.col("_f").list
    blocks = lines.with_columns(
        _attempt=begin.is_not_null().cum_sum(),
        _p_typology=common.snake(begin).forward_fill(),
        _f=pl.col("line").str.split(","),
    ).filter(
        ~pl.col("line").str.starts_with("BEGIN")
        & ~pl.col("line").str.starts_with("END")
        & (field.len() >= 10)
        & (pl.col("_attempt") > 0)
    )
    when = field.get(0).str.strip_chars()
    ts = [
        when.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in TIME_FORMATS
    ]
    keyed = blocks.select(
        _k_ts=pl.coalesce(ts),
        _k_src_bank=bank_key(field.get(1).str.strip_chars()),
        _k_src=field.get(2).str.strip_chars(),
        _k_dst_bank=bank_key(field.get(3).str.strip_chars()),
        _k_dst=field.get(4).str.strip_chars(),
        amount=field.get(7).str.strip_chars().cast(pl.Float64, strict=False),
        currency=field.get(8)
        .str.strip_chars()
        .str.to_lowercase()
        .pipe(common.remap, common.currency_names(), pl.String()),
        _p_typology=pl.col("_p_typology"),
        _p_scheme=pl.concat_str(pl.lit(path.stem + ":"), pl.col("_attempt").cast(pl.String)),
    )
    try:
        frame = keyed.collect()
    except files.FILE_ERRORS as e:
        raise files.file_error(e, path) from None
    return frame.drop_nulls(KEY).unique(KEY, keep="first", maintain_order=True)

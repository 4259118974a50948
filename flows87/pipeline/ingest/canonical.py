"""The canonical format itself (schema.py), as Parquet (what `flows87 synth` writes) or CSV.

A folder holds `transactions.parquet` or `transactions.csv`, or its transactions in several
files (`transactions/*.parquet|csv`, or `transactions-*.parquet|csv` beside the accounts: one
per day or reporting entity, read as their union in name order), and optionally `accounts.*`;
without accounts they are derived from the transactions. CSV columns are read as text and
parsed like every other format; Parquet columns already of the canonical type are only checked,
others are read as text. Columns outside the canonical tables are ignored, except in a rejected
row's `record`, which keeps every field. A missing
`amount_base` is computed from `amount` and `currency` with the static rates; a present one is
taken as it is (in the run's base currency). `source_row` is always this file's row; with
transactions in several files each row's `source_file` also names its file (as a reject's
does), so a row quarantined later is found; a single file's rows have no `source_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flows87 import schema
from flows87.errors import InputError
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Check, Options, Parsed, ReadResult
from flows87.pipeline.ingest.derived import account_sides

SUFFIXES = (".parquet", ".csv")
FILLED = ("source_row", "source_file")
"""Lineage the reader fills (the row in its file; the file, when there are several), never
read from a file: a source's own columns of these names stay only in a reject's `record`."""


def required(table: str) -> tuple[str, ...]:
    """Columns a canonical file must have (amount_base can be computed)."""
    return tuple(c for c in schema.required_columns(table) if c != "amount_base")


def optional(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in schema.columns(table) if c.name not in required(table))


SPLIT = "transactions"
"""A canonical folder's transactions as several files: TRANSACTIONS/*.parquet|csv, or
transactions-*.parquet|csv beside accounts.* (`split_files`)."""


@dataclass(frozen=True)
class Layout:
    """Where a canonical input's tables are: one transactions file or several, read as their
    union in name order, and the accounts file if there is one."""

    transactions: tuple[Path, ...]
    accounts: Path | None = None

    @property
    def sources(self) -> list[Path]:
        return [*self.transactions, *([self.accounts] if self.accounts else [])]


def locate(path: Path) -> Layout:
    """The canonical tables of a folder, or of a single file (with its accounts beside it)."""
    folder = path if path.is_dir() else path.parent
    single = [] if path.is_dir() else [path]
    if path.is_dir():
        single = [
            folder / f"transactions{x}" for x in SUFFIXES if (folder / f"transactions{x}").is_file()
        ][:1]
        split = split_files(folder)
        if single and split:
            raise InputError(
                f"the folder holds both {single[0].name} and transactions in several files "
                f"({split[0].relative_to(folder)}, ...): which are the transactions?",
                file=path,
                hint="keep one layout: transactions.parquet|csv, or transactions/*.parquet|csv, "
                "or transactions-*.parquet|csv",
            )
        single = single or split
    accounts = None
    if path.is_dir() or path.stem == "transactions":
        accounts = next(
            (folder / f"accounts{x}" for x in SUFFIXES if (folder / f"accounts{x}").is_file()), None
        )
    if not single:
        held = sorted(p.name for p in path.iterdir())[:10]
        raise InputError(
            "the folder holds no transactions.parquet or transactions.csv, nor transactions in "
            f"several files (transactions/*.csv, transactions-*.parquet, ...; it holds {held})",
            file=path,
        )
    return Layout(tuple(single), accounts)


def split_files(folder: Path) -> list[Path]:
    """Transactions delivered as several files (a file per day or per reporting entity), in
    name order: the Parquet and CSV files of FOLDER/transactions/ (hidden ones, starting with
    `.` or `_`, left out), or FOLDER/transactions-*.parquet|csv. Both at once is an error."""
    inside: list[Path] = []
    if (folder / SPLIT).is_dir():
        inside = sorted(
            p
            for p in (folder / SPLIT).iterdir()
            if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith((".", "_"))
        )
    beside = sorted(
        p for p in folder.glob(f"{SPLIT}-*") if p.is_file() and p.suffix.lower() in SUFFIXES
    )
    if inside and beside:
        raise InputError(
            f"transactions both in {SPLIT}/ and as {beside[0].name}, ...: which are they?",
            file=folder,
            hint="keep one layout: transactions/*.parquet|csv or transactions-*.parquet|csv",
        )
    return inside or beside


def pieces(path: Path) -> int:
    """How many transaction files the input has: each a piece a task may read alone."""
    return len(locate(path).transactions)


def read(path: Path, opts: Options, piece: int | None = None) -> ReadResult:
    """The input's tables; several transaction files as their union, in name order (each
    file's rejects name that file and its own row: `source_row` is the file's row).

    With `piece`, the transactions of that file only: the first piece also reads the
    accounts; without an accounts file each piece hands over the partial aggregate its
    accounts are derived from (`account_sides`), which the union's accounts are made of."""
    found = locate(path)
    files_read = found.transactions if piece is None else (found.transactions[piece],)
    several = len(found.transactions) > 1  # each file numbers its rows from 1
    parts = [read_transactions(p, opts, several) for p in files_read]
    tx = (
        parts[0][0] if len(parts) == 1 else pl.concat([t for t, _ in parts], how="diagonal_relaxed")
    )
    tx_rejects = common.join_rejects(*(r for _, r in parts)) if len(parts) > 1 else parts[0][1]
    sides = None
    if found.accounts is not None and piece in (None, 0):
        accounts, acc_rejects = read_table(found.accounts, "accounts", opts)
        accounts = schema.conform(accounts, "accounts")
    elif found.accounts is not None:  # another piece: the accounts are the first one's
        accounts, acc_rejects = no_accounts(), common.empty_rejects()
    elif piece is None:
        accounts, acc_rejects = common.derive_accounts(tx), common.empty_rejects()
    else:
        accounts, acc_rejects = no_accounts(), common.empty_rejects()
        sides = account_sides(tx)
    read_files = [*files_read, *([found.accounts] if found.accounts and piece in (None, 0) else [])]
    return ReadResult(
        format="canonical",
        sources=read_files,
        transactions=schema.conform(tx, "transactions"),
        accounts=accounts,
        rejects=common.join_rejects(tx_rejects, acc_rejects),
        account_sides=sides,
    )


def no_accounts() -> pl.LazyFrame:
    """An accounts table without rows (a piece whose accounts another piece reads)."""
    target = schema.schema("accounts")
    return schema.conform(
        pl.LazyFrame(schema={c: target[c] for c in schema.required_columns("accounts")}),
        "accounts",
    )


def read_transactions(
    path: Path, opts: Options, name_file: bool = False
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """One transactions file, with amount_base computed when it has none; with `name_file`
    (one of several files) each row's `source_file` is the file, as its rejects' is."""
    tx, rejects = read_table(path, "transactions", opts)
    if "amount_base" not in tx.collect_schema().names():
        tx = tx.with_columns(
            amount_base=common.to_base(pl.col("amount"), pl.col("currency"), opts.base_currency)
        )
    if name_file:
        tx = tx.with_columns(source_file=pl.lit(str(path), dtype=pl.Categorical()))
    return tx, rejects


def read_table(path: Path, table: str, opts: Options) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Parse one canonical table; return its good rows (canonical columns present) and rejects."""
    if path.suffix.lower() == ".parquet":
        lf, dtypes, n_rows = open_parquet(path, table)
    else:
        lf, names, n_rows = files.open_csv(path, "canonical", required(table), optional(table))
        dtypes = {n: pl.String() for n in names}
    parsed = [
        parser(c, dtypes[c.name])
        for c in schema.columns(table)
        if c.name in dtypes and c.name not in FILLED
    ]
    lf, checks = common.apply(lf, parsed)
    if table == "transactions" and "amount_base" not in dtypes:
        checks.append(rate_check())
    good, rejects = common.finish(lf, checks, table=table, path=path, n_rows=n_rows, opts=opts)
    keep = [
        c.name
        for c in schema.columns(table)
        if (c.name in dtypes and c.name not in FILLED) or c.name == "source_row"
    ]
    return good.select(keep), rejects


def open_parquet(path: Path, table: str) -> tuple[pl.LazyFrame, dict[str, pl.DataType], int]:
    """A Parquet file with its columns renamed `raw:<name>`, the types of its canonical columns
    and its row count. Other columns are carried along for the rejects' `record` only."""
    files.require_file(path)
    try:
        scan = pl.scan_parquet(path)
        dtypes = dict(scan.collect_schema())
    except files.FILE_ERRORS as e:
        raise files.file_error(e, path) from None
    files.check_columns(path, list(dtypes), required(table), optional(table), "canonical")
    n_rows = int(files.collect(scan.select(pl.len()), path).item())
    if not n_rows:
        raise InputError("no data rows: the file has a schema only", file=path)
    target = schema.schema(table)
    known = {n: dtypes[n] for n in dtypes if n in target}
    as_text = {n for n, dtype in known.items() if not native(target[n], dtype)}
    # every column stays (as `raw:<name>`): a rejected row keeps its whole record
    lf = scan.select(
        (pl.col(n).cast(pl.String) if n in as_text else pl.col(n)).alias(files.RAW + n)
        for n in dtypes
    )
    lf = lf.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    return lf, {n: pl.String() if n in as_text else dtype for n, dtype in known.items()}, n_rows


def native(target: pl.DataType, source: pl.DataType) -> bool:
    """Whether a Parquet column can be used as it is typed; others are read as their text."""
    return (
        source == pl.String()
        or (target == schema.UTC_TS and isinstance(source, pl.Datetime))
        or (target == pl.Float64() and source.is_numeric())
        or (target == source and target in (pl.Boolean(), pl.Date()))
    )


def parser(column: schema.Column, source: pl.DataType) -> Parsed:
    """How to turn a source column (text, or a native Parquet type) into a canonical one."""
    name, target = column.name, column.dtype
    required = column.required and not column.nullable
    if source != pl.String():  # typed as native() allows
        if isinstance(source, pl.Datetime):
            return typed_timestamp(name, source, required)
        if target == pl.Float64():
            return Parsed(
                common.raw(name).cast(pl.Float64).alias(name),
                Check(name, common.amount_error(pl.col(name), pl.col(name).is_null())),
            )
        return Parsed(common.raw(name).alias(name))
    if target == schema.UTC_TS:
        return common.iso_timestamp(name, name, required=required)
    if target == pl.Float64():
        return common.amount(name, name)
    if target == pl.Boolean():
        return common.boolean(name, name, required=False)
    if target == pl.Date():
        return common.date(name, name, required=False)
    return text_parser(name, required)


def text_parser(name: str, required: bool) -> Parsed:
    """Text columns: identifiers must be there; coded columns must be in their vocabulary."""
    vocab = {"channel": schema.CHANNELS, "kind": schema.ACCOUNT_KINDS}
    if name in vocab:
        words = {w: w for w in vocab[name]}
        found = common.lookup(name, name, words, name, required=required and name != "kind")
        if name == "kind":  # a source that does not say is `unknown`
            value = found.expr.meta.undo_aliases()
            return Parsed(
                pl.when(common.text(name).is_null())
                .then(pl.lit("unknown"))
                .otherwise(value)
                .alias(name),
                found.check,
            )
        return found
    if name == "currency":
        return pattern(
            name, common.text(name).str.to_uppercase(), r"^[A-Z]{3}$", "not an ISO 4217 code"
        )
    if name in ("src_country", "dst_country", "country"):
        return pattern(
            name,
            common.text(name).str.to_uppercase(),
            r"^[A-Z]{2}$",
            "not an ISO 3166 alpha-2 code",
        )
    if name == "mcc":  # Excel drops the leading zero of 0780
        return pattern(
            name, common.text(name).str.zfill(4), r"^\d{4}$", "not a 4-digit merchant category code"
        )
    if required:
        return common.key(name, name)
    return common.optional_text(name, name)


def pattern(name: str, value: pl.Expr, regex: str, reason: str) -> Parsed:
    """A coded value that must match `regex` when present."""
    error = pl.when(pl.col(name).is_not_null() & ~pl.col(name).str.contains(regex)).then(
        pl.lit(reason)
    )
    return Parsed(value.alias(name), Check(name, error))


def typed_timestamp(name: str, source: pl.Datetime, required: bool) -> Parsed:
    """A Parquet datetime in UTC microseconds (naive ones are taken as UTC)."""
    value = common.raw(name)
    if source.time_zone is None:
        value = value.dt.replace_time_zone("UTC")
    else:
        value = value.dt.convert_time_zone("UTC")
    error = pl.when(pl.col(name).is_null()).then(pl.lit("empty value")) if required else None
    return Parsed(
        value.cast(schema.UTC_TS).alias(name), Check(name, error) if error is not None else None
    )


def rate_check() -> Check:
    """Without amount_base the currency needs a rate to compute it."""
    code = pl.col("currency")
    unknown = code.str.contains(r"^[A-Z]{3}$") & ~code.is_in(list(common.units_per_usd()))
    reason = "no FX rate for this currency (amount_base cannot be computed)"
    return Check("currency", pl.when(unknown).then(pl.lit(reason)))

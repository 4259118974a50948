"""AMLGentex output (AI Sweden, github.com/aidotse/AMLGentex; arXiv 2506.13989).

AMLGentex, the Python successor of IBM AMLSim, writes an experiment folder:
`temporal/tx_log.parquet` (one row per transfer) and `spatial/*.csv` (the account graph it
simulated on). We read the experiment folder, its `temporal/` folder, a folder holding
`tx_log.parquet` or `tx_log.csv`, or the tx_log file itself; `spatial/accounts.csv` and
`spatial/alert_models.csv` are read when they lie beside it (in `spatial/` of the same or the
parent folder), and `config/data.yaml` for the calendar date of step 0.

`tx_log`: `step,type,amount,nameOrig,nameDest,bankOrig,bankDest,daysInBankOrig,
phoneChangesOrig,oldbalanceOrig,newbalanceOrig,daysInBankDest,phoneChangesDest,oldbalanceDest,
newbalanceDest,isSAR,patternID,modelType` (simulator.py `write_output`). Parquet columns are
that the reader uses are cast to text and parsed like CSV, so a bad value becomes a reject with
its reason either way.

- **Time.** A step is one day (salaries every 28 steps). AMLGentex parses `base_date` but
  writes no dates: `ts` is `base_date + step days` at 00:00 UTC, `base_date` being
  `read(..., start=...)`, else `general.base_date` of the experiment's `config/data.yaml`, else
  2023-01-01 (the value in AMLGentex's template).
- **Accounts at the edge.** `nameOrig` -2 is the *source* and `nameDest` -1 the *sink*: money
  entering and leaving the simulated banks (salaries, spending). They become two pseudo-accounts
  `source` and `sink` of kind business (bank null), as the cash points are in `flows87 synth`.
- **Channels.** `type` is TRANSFER, CASH or INITALBALANCE (sic). TRANSFER between accounts is
  a `wire` (AMLGentex simulates a network of banks); from the source it is income, a salary
  (`ach`); to the sink, everyday spending (`card`). CASH to the sink is `cash_withdrawal`, from
  the source `cash_deposit`, and between two accounts `cash_deposit` (recorded where the cash
  lands, as for AMLworld). An unknown type is `other`. INITALBALANCE rows (one per account at
  step 0: the opening balance, not a payment; AMLGentex's own feature engineering drops them
  too) are not transactions and are left out.
- **Amounts** are SEK: AMLGentex states no currency, but derives every account's salary from
  Swedish income statistics in thousands of SEK (demographics_assigner.py).
- **Labels.** `isSAR` (0/1) is the transaction label; `modelType` 1-8 names its typology
  (src/utils/pattern_types.py: fan_out, fan_in, cycle, bipartite, stack, random,
  scatter_gather, gather_scatter), or, when it does not, the alert of `alert_models.csv` that
  both ends belong to; `patternID` (older versions: `alertID`) is the scheme id. An account is
  suspicious when it sent or received a SAR transaction, as AMLGentex's own preprocessing labels
  nodes; its typology and scheme are those of its earliest one. (A few alert members never
  transact in their pattern, when the pattern's transfers fail for lack of balance: they are
  `IS_SAR` in `accounts.csv` but indistinguishable from innocent accounts, and not labelled.)
- **accounts.csv** (`ACCOUNT_ID,CUSTOMER_ID,INIT_BALANCE,SALARY,AGE,CITY,IS_SAR,BANK_ID`) gives
  the party (`CUSTOMER_ID`) and bank; AMLGentex accounts are people (age and salary from
  population statistics), kind `individual`; `birth_date` is `base_date - AGE years` (it gives
  the age only); no country and no opening date (`daysInBank*` count from the simulation's
  start or the last change of bank). Without it accounts are derived from the transactions,
  with the bank of `bankOrig`/`bankDest`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from flows87 import schema
from flows87.errors import InputError
from flows87.pipeline.ingest import common, files
from flows87.pipeline.ingest.common import Options, ReadResult

REQUIRED = ("step", "type", "amount", "nameOrig", "nameDest", "bankOrig", "bankDest")
OPTIONAL = (
    "daysInBankOrig", "phoneChangesOrig", "oldbalanceOrig", "newbalanceOrig", "daysInBankDest",
    "phoneChangesDest", "oldbalanceDest", "newbalanceDest", "isSAR", "patternID", "alertID",
    "modelType",
)  # fmt: skip
READ = ("step", "type", "amount", "nameOrig", "nameDest", "bankOrig", "bankDest", "isSAR",
        "patternID", "alertID", "modelType")  # fmt: skip
"""The tx_log columns the reader uses (the balances and phone/bank counters are not read)."""

ACCOUNT_REQUIRED = ("ACCOUNT_ID",)
ACCOUNT_OPTIONAL = ("CUSTOMER_ID", "INIT_BALANCE", "SALARY", "AGE", "CITY", "IS_SAR", "BANK_ID")
ALERT_REQUIRED = ("modelID", "type", "accountID")
ALERT_OPTIONAL = ("isMain", "sourceType", "phase")

TX_LOGS = ("tx_log.parquet", "tx_log.csv")
"""What AMLGentex writes (output.transaction_log in data.yaml), and its CSV form."""

START = datetime(2023, 1, 1, tzinfo=UTC)
"""`general.base_date` of AMLGentex's template experiment, for data without its config."""

CURRENCY = "SEK"

SOURCE, SINK = "source", "sink"
"""Pseudo-accounts for AMLGentex's ids -2 (money entering) and -1 (money leaving)."""
EXTERNAL = {"-2": SOURCE, "-1": SINK}

SAR_TYPES = {
    "1": "fan_out", "2": "fan_in", "3": "cycle", "4": "bipartite", "5": "stack", "6": "random",
    "7": "scatter_gather", "8": "gather_scatter",
}  # fmt: skip
"""`modelType` of SAR transactions (AMLGentex src/utils/pattern_types.py SAR_PATTERN_TYPES)."""

OPENING = ("initalbalance", "initialbalance")
"""The opening-balance rows' type (AMLGentex spells it INITALBALANCE)."""


def locate(path: Path) -> dict[str, Path]:
    """The tx_log and whichever spatial files and config lie beside it."""
    if path.is_dir():
        tx = next(
            (
                folder / name
                for folder in (path, path / "temporal")
                for name in TX_LOGS
                if (folder / name).is_file()
            ),
            None,
        )
        if tx is None:
            held = sorted(p.name for p in path.iterdir())[:10]
            raise InputError(
                f"the folder holds no tx_log.parquet or tx_log.csv, nor temporal/ with one "
                f"(it holds {held})",
                file=path,
                hint="give an AMLGentex experiment folder or its temporal/tx_log.parquet",
            )
    else:
        tx = path
    found = {"transactions": tx}
    for folder in (tx.parent / "spatial", tx.parent.parent / "spatial", tx.parent):
        spatial = {n: folder / f"{n}.csv" for n in ("accounts", "alert_models")}
        spatial = {n: p for n, p in spatial.items() if p.is_file()}
        if spatial and (folder.name == "spatial" or "alert_models" in spatial):
            found.update(spatial)
            break
    for config in (tx.parent / "config" / "data.yaml", tx.parent.parent / "config" / "data.yaml"):
        if config.is_file():
            found["config"] = config
            break
    return found


def read(path: Path, opts: Options) -> ReadResult:
    found = locate(path)
    start = opts.start or base_date(found.get("config")) or START
    members = read_alert_models(found["alert_models"]) if "alert_models" in found else None
    tx, tx_rejects = read_transactions(found["transactions"], opts, start, members)
    if "accounts" in found:
        accounts, acc_rejects = read_accounts(found["accounts"], opts, start, tx)
    else:
        accounts, acc_rejects = common.derive_accounts(tx, kind=kind()), common.empty_rejects()
    return ReadResult(
        format="amlgentex",
        sources=list(found.values()),
        transactions=schema.conform(tx, "transactions"),
        accounts=accounts,
        rejects=common.join_rejects(tx_rejects, acc_rejects),
    )


def base_date(config: Path | None) -> datetime | None:
    """`general.base_date` of an AMLGentex data.yaml (None without the file or the key)."""
    if config is None:
        return None
    try:
        conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError(f"cannot be read as YAML: {e}", file=config) from None
    general = conf.get("general") if isinstance(conf, dict) else None
    value = general.get("base_date") if isinstance(general, dict) else None
    if value is None:
        return None
    if isinstance(value, date):  # YAML reads an unquoted 2023-01-01 as a date
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        return datetime.strptime(str(value).strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InputError(
            f"general.base_date {value!r} is not a date like 2023-01-01",
            file=config,
            hint="fix data.yaml, or give the date of step 0 with start=",
        ) from None


def open_tx_log(path: Path) -> tuple[pl.LazyFrame, list[str], int]:
    """The tx_log's raw-text scan (`raw:<name>` columns, `source_row`), header, row count."""
    if path.suffix.lower() != ".parquet":
        return files.open_csv(path, "amlgentex", REQUIRED, OPTIONAL)
    files.require_file(path)
    try:
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
    except files.FILE_ERRORS as e:
        raise files.file_error(e, path) from None
    files.check_columns(path, names, REQUIRED, OPTIONAL, "amlgentex")
    n_rows = int(files.collect(scan.select(pl.len()), path).item())
    if not n_rows:
        raise InputError("no data rows: the file has a schema only", file=path)
    lf = (
        scan.select(  # columns not read stay as they are typed: only a reject's record shows them
            (pl.col(n).cast(pl.String) if n in READ else pl.col(n)).alias(files.RAW + n)
            for n in names
        )
        .with_row_index("source_row", offset=1)
        .with_columns(pl.col("source_row").cast(pl.Int64))
    )
    return lf, names, n_rows


def account(name: str, out: str) -> common.Parsed:
    """An AMLGentex account id (an integer; -1/-2 the sink/source), must not be empty."""
    parsed = common.key(name, out)
    value = parsed.expr.meta.undo_aliases().str.replace(r"^(-?\d+)\.0*$", "${1}")
    value = pl.coalesce(common.remap(value, EXTERNAL, pl.String()), value)
    return common.Parsed(value.alias(out), parsed.check)


def read_transactions(
    path: Path, opts: Options, start: datetime, members: pl.DataFrame | None
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    lf, names, n_rows = open_tx_log(path)
    labelled = "isSAR" in names
    parsed = [
        common.whole_number("step", "_step"),
        common.key("type", "_type"),
        common.amount("amount", "amount"),
        account("nameOrig", "src_account"),
        account("nameDest", "dst_account"),
    ]
    if labelled:
        parsed.append(common.boolean("isSAR", "is_suspicious"))
    lf, checks = common.apply(lf, parsed)
    good, rejects = common.finish(
        lf, checks, table="transactions", path=path, n_rows=n_rows, opts=opts
    )
    kind_of = pl.col("_type").str.to_lowercase()
    good = good.filter(~kind_of.is_in(OPENING))
    from_source = pl.col("src_account") == SOURCE
    to_sink = pl.col("dst_account") == SINK
    cash = kind_of == "cash"
    channel = (
        pl.when(kind_of == "transfer")
        .then(pl.when(from_source).then(pl.lit("ach")).when(to_sink).then(pl.lit("card")))
        .when(cash)
        .then(pl.when(to_sink).then(pl.lit("cash_withdrawal")))
        .otherwise(pl.lit("other"))
    )
    default = pl.when(cash).then(pl.lit("cash_deposit")).otherwise(pl.lit("wire"))

    def bank(name: str) -> pl.Expr:  # source/sink are not banks
        value = common.text(name)
        return pl.when(~value.is_in([SOURCE, SINK])).then(value)

    tx = good.with_columns(
        txn_id=common.row_id(path),
        ts=pl.lit(start).cast(schema.UTC_TS) + pl.duration(days=pl.col("_step")),
        currency=pl.lit(CURRENCY),
        amount_base=common.to_base(pl.col("amount"), pl.lit(CURRENCY), opts.base_currency),
        channel=pl.coalesce(channel, default),
        _src_bank=bank("bankOrig"),
        _dst_bank=bank("bankDest"),
    )
    if labelled:
        tx = label(tx, names, members)
    return tx, rejects


def label(tx: pl.LazyFrame, names: list[str], members: pl.DataFrame | None) -> pl.LazyFrame:
    """Typology from `modelType`, else from the alert both ends belong to; scheme `patternID`."""
    if "modelType" in names:
        number = common.text("modelType").cast(pl.Float64, strict=False)
        whole = pl.when(number == number.floor()).then(number.cast(pl.Int64, strict=False))
        model = common.remap(whole.cast(pl.String), SAR_TYPES, pl.String())
    else:
        model = pl.lit(None, dtype=pl.String)
    scheme = next((c for c in ("patternID", "alertID") if c in names), None)
    pattern = common.text(scheme) if scheme else pl.lit(None, dtype=pl.String)
    tx = tx.with_columns(_model=model, scheme_id=pl.when(pl.col("is_suspicious")).then(pattern))
    alert = pl.lit(None, dtype=pl.String)
    if members is not None and members.height:
        both = alerts_of_both_ends(tx, members)
        tx = tx.join(both, on="txn_id", how="left", maintain_order="left")
        alert = pl.col("_alert_type")
    return tx.with_columns(
        typology=pl.when(pl.col("is_suspicious")).then(
            pl.coalesce(pl.col("_model"), alert, pl.lit("laundering"))
        )
    )


def alerts_of_both_ends(tx: pl.LazyFrame, members: pl.DataFrame) -> pl.LazyFrame:
    """txn_id -> alert type, for SAR transactions whose `modelType` names no typology
    (AMLGentex writes one on every SAR row; this is for edited or older files): the alert that
    holds both ends of the most transactions of their pattern (`patternID`), the first by
    modelID on ties. (Accounts often belong to several alerts, so one transaction alone is
    ambiguous; a pattern's transactions together rarely are.)"""
    m = members.lazy()
    unnamed = tx.filter(pl.col("is_suspicious") & pl.col("_model").is_null()).select(
        "txn_id", "src_account", "dst_account", _pattern=pl.coalesce("scheme_id", "txn_id")
    )
    pairs = unnamed.join(
        m.rename({"account_id": "src_account"}), on="src_account", how="inner"
    ).join(
        m.select(pl.col("account_id").alias("dst_account"), "model_id"),
        on=["dst_account", "model_id"],
        how="semi",
    )
    best = (
        pairs.group_by("_pattern", "model_id", "model_order", "alert_type")
        .agg(n=pl.len())
        .sort(
            ["_pattern", "n", "model_order", "model_id"],
            descending=[False, True, False, False],
            nulls_last=True,
        )
        .group_by("_pattern", maintain_order=True)
        .agg(pl.col("alert_type").first().alias("_alert_type"))
    )
    return unnamed.select("txn_id", "_pattern").join(best, on="_pattern").drop("_pattern")


def read_alert_models(path: Path) -> pl.DataFrame:
    """account_id, model_id, model_order (numeric where it can be), alert_type (snake case)."""
    names = files.read_header(path)
    files.check_columns(path, names, ALERT_REQUIRED, ALERT_OPTIONAL, "AMLGentex alert models")
    lf = files.scan_text(path, names).select(
        account_id=account("accountID", "account_id").expr,
        model_id=common.text("modelID"),
        model_order=common.text("modelID").cast(pl.Int64, strict=False),
        alert_type=common.snake(common.text("type")),
    )
    frame = files.collect(lf.drop_nulls(["account_id", "model_id", "alert_type"]), path)
    return frame.unique(["account_id", "model_id"], keep="first", maintain_order=True)


def kind() -> pl.Expr:
    """AMLGentex accounts are people; the source and sink stand for firms outside the banks."""
    return (
        pl.when(pl.col("account_id").is_in([SOURCE, SINK]))
        .then(pl.lit("business"))
        .otherwise(pl.lit("individual"))
    )


def read_accounts(
    path: Path, opts: Options, start: datetime, tx: pl.LazyFrame
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """accounts.csv, plus the accounts only the transactions name (source, sink, strays), with
    the labels of the transactions."""
    lf, names, n_rows = files.open_csv(
        path, "AMLGentex accounts", ACCOUNT_REQUIRED, ACCOUNT_OPTIONAL
    )
    lf, checks = common.apply(lf, [account("ACCOUNT_ID", "account_id")])
    good, rejects = common.finish(lf, checks, table="accounts", path=path, n_rows=n_rows, opts=opts)

    def opt(name: str) -> pl.Expr:
        return common.text(name) if name in names else pl.lit(None, dtype=pl.String)

    age = opt("AGE").cast(pl.Float64, strict=False)
    age = pl.when((age >= 0) & (age < 150) & (age == age.floor())).then(age.cast(pl.Int32))
    anniversary = pl.lit(start.date()).dt.offset_by(pl.format("-{}y", age))
    accounts = good.with_columns(
        party_id=opt("CUSTOMER_ID"),
        bank_id=opt("BANK_ID"),
        kind=pl.lit("individual"),
        opened_at=pl.lit(None, dtype=schema.UTC_TS),
        country=pl.lit(None, dtype=pl.String),
        birth_date=pl.when(age.is_not_null()).then(anniversary),
    ).unique("account_id", keep="first", maintain_order=True)
    derived = common.derive_accounts(tx, kind=kind())
    extra = derived.join(accounts.select("account_id"), on="account_id", how="anti")
    labelled = "is_suspicious" in tx.collect_schema().names()
    if labelled:
        labels = derived.select("account_id", "is_suspicious", "typology", "scheme_id")
        accounts = accounts.join(
            labels, on="account_id", how="left", maintain_order="left"
        ).with_columns(pl.col("is_suspicious").fill_null(False))
    columns: list[Any] = schema.schema("accounts", labels=labelled).names()
    return (
        pl.concat(
            [schema.conform(accounts, "accounts").select(columns), extra.select(columns)],
            how="vertical",
        ),
        rejects,
    )

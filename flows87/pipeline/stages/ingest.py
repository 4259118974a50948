"""Stage 1: read any supported input, gate it, publish canonical Parquet into the run directory.

Two steps, `read` then `gate_raw` (two Airflow tasks; in one process the read input passes to
the gate in memory): reading parses the input into canonical tables and keeps
the data interval's rows; the raw gate checks them. Accounts are gated first so the transactions
gate can check that every account it names is known. transactions.parquet and accounts.parquet
are written only after both gates pass, so a failed run leaves the previous results in place.

Rows the reader could not parse (its rejects, each with its whole source record) are staged
with the input and set aside by the raw gates in RUN/quarantine/ beside the rows failing checks;
every count of quarantined rows includes them (see quality/gate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.io import read_json, write_json, write_parquet
from flows87.pipeline import ingest as readers
from flows87.pipeline import quality
from flows87.pipeline.ingest.rejects import clear_staged, staged_files
from flows87.pipeline.job import Job
from flows87.pipeline.quality.gate import GateResult
from flows87.pipeline.quality.suites import import_gx_in_background
from flows87.pipeline.quality.validate import Validated
from flows87.pipeline.runinfo import StageRecord, fingerprint, stage
from flows87.pipeline.stages.config import RunConfig
from flows87.rundir import RunDir

Progress = Callable[[str], None]
TABLES = ("accounts", "transactions")
SIDE_TABLES = ("parties", "goaml_reports")
"""Tables a reader may add (ReadResult.side_tables); one an input lacks is removed from the run
directory, so a re-run on another input leaves none of an earlier one's."""


LARGE_ROWS = 8_000_000
"""Above this many rows a file is parsed to RUN/staging/ rather than held (read_input), and the
raw gate reads the transactions from the staged file, a chunk at a time (quality/chunks.py),
and streams the passed ones to RUN/transactions.parquet. Held in memory, ingest took 12.5 GB at
20M transactions; staged, 2.7 GB at 10M, 4.5 GB at 20M and 9.1 GB at 50M (bench_run.py
--step stage:ingest), most of it the gate's, with the thresholds at 4M (this), 2M
(parts.BATCH_TRANSACTIONS, quality.chunks.CHUNK_ROWS) and 1M (features.GATE_ROWS). Below 8M
the in-memory path is faster and fits: the whole 5M-transaction run took 98 s at those values,
73 s at 8M / 6M / 6M / 2M (peak 3.8 GB), so each was raised; above them memory follows the
batch, a batch being 3x larger than measured above."""


@dataclass
class RawInput:
    """The input as read, before the raw gate."""

    format: str
    transactions: pl.DataFrame | pl.LazyFrame
    """In memory, or (a large input) a scan of RUN/staging/transactions.parquet."""
    accounts: pl.DataFrame
    rejects: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    """input fingerprint, rows set aside as outside the data interval, the reader's notes."""
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    """The reader's tables beyond the canonical two (goAML: parties, goaml_reports)."""
    account_sides: pl.DataFrame | None = None
    """A piece of an input without accounts: what its accounts are derived from with the
    other pieces' (ingest/derived.py `account_sides`)."""


def read_input(
    source: str | Path,
    config: RunConfig,
    staging: Path | None = None,
    piece: int | None = None,
) -> RawInput:
    """Parse `source`; with `config.select_interval`, keep only the data interval's rows.

    A scheduled run reads a source that holds more than its interval (a landing folder, a
    whole-history extract): rows before or after the interval belong to other runs, so they
    are set aside and counted rather than quarantined as bad data.

    With `staging` (RUN/staging/), a file of more than LARGE_ROWS rows is parsed to a file
    there rather than held, and more than LARGE_ROWS transactions are streamed to
    STAGING/transactions.parquet and returned as a scan of it: at 20M transactions the parsed
    input held in memory took 12.5 GB.

    With `piece`, that piece of the input alone (one of its transaction files: a mapped read
    task, stages/ingest_files.py): its files are not fingerprinted (the list task did the
    whole input's), and an interval none of its rows falls in is no error (the other files'
    may: the union is checked, `ingest_files.load_pieces`).
    """
    if staging is not None:
        clear_staged(staging)  # an earlier read's, if it failed half-way
    result = readers.read(
        source,
        config.format,
        base_currency=config.base_currency,
        max_reject_fraction=config.max_reject_fraction,
        staging=staging,
        stage_above=LARGE_ROWS,
        piece=piece,
    )
    transactions, accounts = result.transactions, result.accounts
    info: dict[str, Any] = {} if piece is not None else {"input": fingerprint(result.sources)}
    if result.notes():
        info["reader_notes"] = result.notes()
    # a file was parsed to staging: the rows go there too, not through memory
    large = staging is not None and bool(staged_files(staging))
    if config.select_interval and config.interval_start and config.interval_end:
        start, end = config.interval_start, config.interval_end
        inside = pl.col("ts").is_between(pl.lit(start), pl.lit(end), closed="left")
        # rows whose timestamp did not parse stay in, so the gate quarantines them with a reason
        keep = inside | pl.col("ts").is_null()
        tx: pl.DataFrame | pl.LazyFrame
        if large and staging is not None:
            n_all = rows(transactions)
            tx = _sink(transactions.filter(keep), staging)
        else:
            tx_all = transactions.collect()
            n_all, tx = tx_all.height, tx_all.filter(keep)
        acc_all = accounts.collect(engine="streaming" if large else "auto")
        acc = acc_all.filter(pl.col("opened_at").is_null() | (pl.col("opened_at") < pl.lit(end)))
        info["outside_interval"] = {
            "transactions": n_all - rows(tx),
            "accounts": acc_all.height - acc.height,
        }
        if n_all and not rows(tx) and piece is None:
            raise outside_interval(n_all, config, source)
    else:
        tx = _sink(transactions, staging) if large and staging else transactions.collect()
        acc = accounts.collect(engine="streaming" if large else "auto")
    side = result.side_tables()
    if isinstance(tx, pl.LazyFrame) and rows(tx) <= LARGE_ROWS:
        tx = tx.collect()  # as an input read in memory: the gate holds it
    sides = None
    if result.account_sides is not None:
        sides = result.account_sides.collect(engine="streaming" if large else "auto")
    if staging is not None:  # everything read is collected or in transactions.parquet now
        clear_staged(staging)
    return RawInput(result.format, tx, acc, result.rejects, info, side, sides)


def outside_interval(n_all: int, config: RunConfig, source: str | Path) -> InputError:
    """No transaction of the input falls in the run's data interval."""
    start, end = config.interval_start, config.interval_end
    assert start is not None and end is not None
    return InputError(
        f"none of the {n_all:,} transactions falls in the data interval "
        f"[{start.isoformat()}, {end.isoformat()})",
        file=source,
        column="ts",
        hint="check the interval (logical date, lookback_days) and the source's dates",
    )


def _sink(transactions: pl.LazyFrame, staging: Path) -> pl.LazyFrame:
    """The transactions streamed to STAGING/transactions.parquet, and a scan of it."""
    path = staging / "transactions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    transactions.sink_parquet(path, engine="streaming")
    return pl.scan_parquet(path)


def stage_raw(raw: RawInput, folder: Path) -> None:
    """Write the read input to RUN/staging/ for the raw gate task (a large input's
    transactions are there already: `stage_large`)."""
    if isinstance(raw.transactions, pl.DataFrame):
        write_parquet(raw.transactions, folder / "transactions.parquet")
    write_parquet(raw.accounts, folder / "accounts.parquet")
    write_parquet(raw.rejects, folder / "rejects.parquet")
    for name, table in raw.tables.items():
        write_parquet(table, folder / f"{name}.parquet")
    write_json({"format": raw.format, "tables": list(raw.tables), **raw.info}, folder / "read.json")


def load_raw(folder: Path) -> RawInput:
    """The input the read step staged in `folder` (RUN/staging/)."""
    if not (folder / "read.json").exists():
        raise InputError("no staged input: run the read step first", file=folder)
    info = read_json(folder / "read.json")
    names = info.pop("tables", [])
    staged = pl.scan_parquet(folder / "transactions.parquet")
    large = staged.select(pl.len()).collect().item() > LARGE_ROWS  # from the file's metadata
    return RawInput(
        info.pop("format"),
        staged if large else staged.collect(),
        pl.read_parquet(folder / "accounts.parquet"),
        pl.read_parquet(folder / "rejects.parquet"),
        info,
        {name: pl.read_parquet(folder / f"{name}.parquet") for name in names},
    )


def read(job: Job) -> dict[str, Any]:
    """Parse the input, keep the data interval's rows, hand them to the raw gate."""
    config, run = job.config, job.run
    if job.source is None:
        raise ConfigError("no input to read", field="source")
    import_gx_in_background()  # the gate needs it next; the import overlaps the parsing
    params = {"source": str(job.source), "format": config.format, **config.interval_params()}
    with stage(run, "read", params) as rec:
        clear_pieces(run.staging)  # a mapped read's of this run directory: the gate reads this
        job.progress("reading input")
        with rec.step("read"):
            raw = read_input(job.source, config, run.staging)
        rec.params["format"] = raw.format
        rec.extra.update(raw.info)
        rec.warnings = list(raw.info.get("reader_notes", []))
        rec.counts = {
            "transactions": rows(raw.transactions),
            "accounts": raw.accounts.height,
            "parse_rejected": {t: rejected_rows(raw.rejects, t) for t in TABLES},
            **{f"outside_interval_{k}": v for k, v in raw.info.get("outside_interval", {}).items()},
        }
        stage_large(raw, run.staging)
        job.hand_over(run.staging, raw, stage_raw)
    return {"run_dir": str(run), "format": raw.format, **rec.counts}


def clear_pieces(staging: Path) -> None:
    from flows87.pipeline.stages import ingest_files

    ingest_files.clear(staging)


def rows(frame: pl.DataFrame | pl.LazyFrame) -> int:
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.select(pl.len()).collect().item())


def stage_large(raw: RawInput, folder: Path) -> None:
    """A large input's transactions go to RUN/staging/ now, also within one process, and the
    gate gets a scan of the file: the frame in memory is let go before the gate runs."""
    if isinstance(raw.transactions, pl.DataFrame) and raw.transactions.height > LARGE_ROWS:
        path = write_parquet(raw.transactions, folder / "transactions.parquet")
        raw.transactions = pl.scan_parquet(path)


def gate_raw(job: Job) -> dict[str, Any]:
    """The raw gates on the read input; publishes RUN/transactions.parquet and accounts.parquet.

    When the input's files were read and gated a task each (the DAG: stages/ingest_files.py),
    the transactions gate merges the files' gates into the gate on their union."""
    from flows87.pipeline.stages import ingest_files

    importing = import_gx_in_background()
    accounts: GateResult[pl.DataFrame] | None = None
    validated = None
    if ingest_files.listed(job.run.staging):
        raw, accounts, validated = ingest_files.gated_pieces(job.run)
    else:
        raw = job.take(job.run.staging, load_raw)
    n_outside = raw.info.get("outside_interval", {}).get("transactions", 0)
    if n_outside and not rows(raw.transactions):  # the union of pieces read apart (`read` raised)
        raise outside_interval(n_outside, job.config, str(job.source))
    importing.join()
    with stage(job.run, "gate_raw", job.config.interval_params()) as rec:
        return _gate(raw, job.run, job.config, rec, job.progress, accounts, validated)


def _gate(
    raw: RawInput,
    run: RunDir,
    config: RunConfig,
    rec: StageRecord,
    progress: Progress,
    accounts: GateResult[pl.DataFrame] | None = None,
    validated: Validated | None = None,
) -> dict[str, Any]:
    """The accounts gate (unless given: gated by its own task), then the transactions gate
    (`validated`: the merge of the files' gates); the tables written once both passed."""
    interval = config.interval_params()
    if accounts is None:
        progress("quality gate: accounts")
        with rec.step("gate_accounts"):
            accounts = quality.run_gate(
                raw.accounts,
                "raw_accounts",
                run,
                params=interval,
                max_failed_fraction=config.max_failed_fraction,
                prior_rejects=_rejects_of(raw.rejects, "accounts"),
            )
    acc_gate = accounts
    progress("quality gate: transactions")
    with rec.step("gate_transactions"):
        known = acc_gate.passed.get_column("account_id").to_list()
        txn_gate = quality.run_gate(
            raw.transactions,
            "raw_transactions",
            run,
            params={**interval, "known_accounts": known},
            max_failed_fraction=config.max_failed_fraction,
            prior_rejects=_rejects_of(raw.rejects, "transactions"),
            validated=validated,
        )
    progress("writing canonical tables")
    with rec.step("write"):
        write_parquet(acc_gate.passed, run.accounts)
        write_parquet(txn_gate.passed, run.transactions)
        for name in SIDE_TABLES:
            if name in raw.tables:
                write_parquet(raw.tables[name], run.side_table(name))
            else:
                run.side_table(name).unlink(missing_ok=True)

    # what was written (a large input's passed rows were streamed there, not held)
    txns = (
        txn_gate.passed.lazy()
        if isinstance(txn_gate.passed, pl.DataFrame)
        else pl.scan_parquet(run.transactions)
    )
    names = txns.collect_schema().names()
    gates = {"accounts": acc_gate.stats, "transactions": txn_gate.stats}

    def per_table(key: str) -> dict[str, int]:
        return {table: int(stats[key]) for table, stats in gates.items()}

    summary: dict[str, Any] = {
        "run_dir": str(run),
        "format": raw.format,
        "transactions": txn_gate.stats["rows_passed"],
        "accounts": acc_gate.passed.height,
        # parse rejects + rows failing checks: every row set aside in RUN/quarantine/
        "quarantined": per_table("rows_quarantined"),
        "parse_rejected": per_table("rows_parse_rejected"),
        "failed_checks": per_table("rows_failed_checks"),
        "rows_in": per_table("rows_in"),  # rows read (in the interval), parse rejects included
        "labelled": "is_suspicious" in names,
    }
    if "outside_interval" in raw.info:
        summary["outside_interval"] = raw.info["outside_interval"]
    if summary["labelled"]:
        counts = (
            txns.filter(pl.col("is_suspicious"))
            .group_by("typology")
            .len()
            .sort("typology", nulls_last=True)
            .collect()
        )
        summary["suspicious_transactions"] = int(
            txns.select(pl.col("is_suspicious").sum()).collect().item()
        )
        summary["typologies"] = {str(t): int(n) for t, n in counts.iter_rows()}
    rec.counts = dict(summary)
    rec.warnings = [*acc_gate.stats["warnings"], *txn_gate.stats["warnings"]]
    summary["warnings"] = rec.warnings
    return summary


def _rejects_of(rejects: pl.DataFrame, table: str) -> pl.DataFrame:
    """The table's parse rejects; an empty frame when there are none (a raw gate's quarantine
    file then still has the columns of parse rejects)."""
    return rejects.filter(pl.col("table") == table)


def rejected_rows(rejects: pl.DataFrame, table: str) -> int:
    """Source rows of `table` the reader rejected (a reject is a cell; a row may have several)."""
    part = rejects.filter(pl.col("table") == table)
    known = part.filter(pl.col("source_row").is_not_null())
    return known.unique(["source_file", "source_row"]).height + part.height - known.height

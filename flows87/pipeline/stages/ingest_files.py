"""The read and the raw gate as tasks per input file (the DAG): list the input's pieces, read
each alone, gate the accounts of their union, run the transactions gate's checks on each
file's rows, and hand `gate_raw` the files' results to merge.

A bank or FIU delivers transactions as many files (a file per day or per reporting entity):
a canonical input in several files (ingest/canonical.py `split_files`) is read a file per
mapped task, each parsing its file, setting aside its rows outside the data interval and
staging its rows, rejects and counts in RUN/staging/pieces/<piece>/. `gate_accounts` gates the
union's accounts (they name no file: the accounts file, or derived from every file's rows);
then a mapped `gate_file` task runs the transactions suite on its file's rows (GX's results,
the accounts its rows name checked against those passing, and a hash of each row's key for
the repeats across files: quality/pieces.py), and the raw gate (stages/ingest.py `gate_raw`)
merges them into the gate on the union: the same quarantine, counts, report and tables as one
gate on the union (tested), its own work only the repeats across files and writing the passed
rows. Any other input is one piece. `flows87 run` keeps its one `read` step and one gate (in
one process the read input passes to the gate in memory).

The union is the input read as one: the pieces' transactions in file order, the accounts read
by the first piece (or, without an accounts file, derived from every piece's partial aggregate,
`account_sides`), the rejects of every file (each naming its file and row), the counts of rows
outside the interval summed; an interval none of the files' rows falls in is the same error.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl

from flows87 import schema
from flows87.errors import ConfigError, InputError
from flows87.io import read_json, write_json, write_parquet
from flows87.pipeline import ingest as readers
from flows87.pipeline import quality
from flows87.pipeline.ingest import canonical
from flows87.pipeline.ingest.common import join_rejects
from flows87.pipeline.ingest.derived import accounts_from_sides
from flows87.pipeline.job import Job
from flows87.pipeline.quality import pieces
from flows87.pipeline.quality.gate import GateResult
from flows87.pipeline.quality.suites import import_gx_in_background
from flows87.pipeline.quality.validate import Validated
from flows87.pipeline.runinfo import fingerprint, stage
from flows87.pipeline.stages.ingest import (
    TABLES,
    RawInput,
    outside_interval,
    read_input,
    rejected_rows,
    rows,
    stage_raw,
)
from flows87.rundir import RunDir

PIECES = "pieces"
LISTED = "inputs.json"
SIDES = "account_sides.parquet"
ACCOUNTS_PASSED = "accounts_passed.parquet"


def folder(staging: Path) -> Path:
    """RUN/staging/pieces/: the listed input and a folder per piece."""
    return staging / PIECES


def piece_folder(staging: Path, piece: int) -> Path:
    return folder(staging) / f"{piece:04d}"


def listed(staging: Path) -> bool:
    """Whether the input was listed for mapped reads (the gate then reads their pieces)."""
    return (folder(staging) / LISTED).is_file()


def clear(staging: Path) -> None:
    """Remove an earlier listing, its pieces and the accounts its gate passed (a re-run of
    the interval, or `read`'s)."""
    (folder(staging) / LISTED).unlink(missing_ok=True)
    (folder(staging) / ACCOUNTS_PASSED).unlink(missing_ok=True)
    for old in sorted(folder(staging).glob("[0-9]*")) if folder(staging).is_dir() else []:
        shutil.rmtree(old)  # its files, and its gate's spill folder


def list_inputs(job: Job) -> list[int]:
    """The input's pieces, one mapped `read_file` task each: its transaction files (a
    canonical input in several), else the one input.

    Several pieces are recorded as the `read` stage with the whole input's fingerprint (what
    `read` records); one piece is read by its task as `read` reads it, which records it."""
    config, run = job.config, job.run
    if job.source is None:
        raise ConfigError("no input to read", field="source")
    params = {"source": str(job.source), "format": config.format, **config.interval_params()}
    source = Path(job.source)
    fmt = config.format or readers.detect_format(source)
    n = readers.pieces(source, fmt)
    clear(run.staging)
    if n > 1:
        with stage(run, "read", {**params, "format": fmt}) as rec:
            rec.extra["input"] = fingerprint(canonical.locate(source).sources)
            rec.counts = {"pieces": n}
    write_json({"source": str(source), "format": fmt, "pieces": n}, folder(run.staging) / LISTED)
    return list(range(n))


def read_file(job: Job, piece: int) -> dict[str, Any]:
    """Parse one piece of the input to RUN/staging/pieces/<piece>/: its rows in the data
    interval, its rejects, the accounts (the first piece) or their partial aggregate. The one
    piece of an input is read and recorded as `read` does."""
    config, run = job.config, job.run
    if job.source is None:
        raise ConfigError("no input to read", field="source")
    info = read_json(folder(run.staging) / LISTED)
    one = int(info["pieces"]) == 1
    out = piece_folder(run.staging, piece)
    params: dict[str, Any] = {"source": str(job.source), "format": config.format}
    if not one:
        params["piece"] = piece
    name = "read" if one else f"read_file-{piece:04d}"
    with stage(run, name, {**params, **config.interval_params()}) as rec:
        out.mkdir(parents=True, exist_ok=True)
        for suite in ("raw_transactions",):  # an earlier gate of this piece's rows
            pieces.results_path(out, suite).unlink(missing_ok=True)
            pieces.keys_path(out, suite).unlink(missing_ok=True)
        raw = read_input(job.source, config, out, None if one else piece)
        if one:
            rec.params["format"] = raw.format
            rec.extra.update(raw.info)
        if raw.account_sides is not None:
            write_parquet(raw.account_sides, out / SIDES)
        stage_raw(raw, out)
        rec.warnings = list(raw.info.get("reader_notes", []))
        rec.counts = {
            "transactions": rows(raw.transactions),
            "accounts": raw.accounts.height,
            "parse_rejected": {t: rejected_rows(raw.rejects, t) for t in TABLES},
            **{f"outside_interval_{k}": v for k, v in raw.info.get("outside_interval", {}).items()},
        }
    return {"piece": piece, **rec.counts}


def parts_of(staging: Path) -> list[Path]:
    """The piece folders of the listed input, in order; each must have been read."""
    info = read_json(folder(staging) / LISTED)
    parts = [piece_folder(staging, i) for i in range(int(info["pieces"]))]
    missing = [p.name for p in parts if not (p / "read.json").is_file()]
    if missing:
        raise InputError(f"pieces {missing} were not read: run read_file first", file=staging)
    return parts


def _stacked(parts: list[Path]) -> pl.LazyFrame:
    """The pieces' staged transactions one after another, as read (a scan: nothing is read)."""
    scans = [pl.scan_parquet(p / "transactions.parquet") for p in parts]
    return pl.concat(scans, how="diagonal_relaxed")


def union(parts: list[Path]) -> pl.LazyFrame:
    """The pieces' transactions as one table, in piece order (a scan: nothing is read)."""
    return schema.conform(_stacked(parts), "transactions")


def as_in_union(parts: list[Path], piece: int) -> pl.LazyFrame:
    """One piece's transactions as its rows of the union: the union's columns and types (a
    file may lack an optional column another has)."""
    columns = _stacked(parts).collect_schema()
    mine = pl.scan_parquet(parts[piece] / "transactions.parquet")
    return schema.conform(
        pl.concat([pl.LazyFrame(schema=columns), mine], how="diagonal_relaxed"), "transactions"
    )


def load_pieces(staging: Path, accounts: bool = True) -> RawInput:
    """The union of the staged pieces, as `read` would have handed it to the gate (the
    transactions a scan; without `accounts`, none derived)."""
    info = read_json(folder(staging) / LISTED)
    parts = parts_of(staging)
    reads = [read_json(p / "read.json") for p in parts]
    transactions = union(parts)
    rejects = join_rejects(*(pl.read_parquet(p / "rejects.parquet") for p in parts))
    merged: dict[str, Any] = {}
    notes = [note for r in reads for note in r.get("reader_notes", [])]
    if notes:
        merged["reader_notes"] = list(dict.fromkeys(notes))
    outside = [r["outside_interval"] for r in reads if "outside_interval" in r]
    if outside:
        merged["outside_interval"] = {
            k: sum(int(o.get(k, 0)) for o in outside) for k in ("transactions", "accounts")
        }
    names = reads[0].get("tables", [])
    return RawInput(
        str(info["format"]),
        transactions,
        _accounts(parts, transactions) if accounts else pl.DataFrame(),
        rejects,
        merged,
        {name: pl.read_parquet(parts[0] / f"{name}.parquet") for name in names},
    )


def gate_accounts(job: Job) -> dict[str, Any]:
    """The accounts gate on the union's accounts (the first file's, or derived from every
    file's), before the files' transactions gates: each checks the accounts its rows name
    against those passing. The passed accounts wait in the staging folder; RUN/accounts.parquet
    is written by `gate_raw` once the transactions passed too."""
    config, run = job.config, job.run
    importing = import_gx_in_background()
    raw = load_pieces(run.staging)
    n_outside = raw.info.get("outside_interval", {}).get("transactions", 0)
    if n_outside and not rows(raw.transactions):  # no file's rows fall in the interval
        raise outside_interval(n_outside, config, str(job.source))
    importing.join()
    (folder(run.staging) / ACCOUNTS_PASSED).unlink(missing_ok=True)  # an earlier gate's
    with stage(run, "gate_accounts", config.interval_params()) as rec:
        gate = quality.run_gate(
            raw.accounts,
            "raw_accounts",
            run,
            params=config.interval_params(),
            max_failed_fraction=config.max_failed_fraction,
            prior_rejects=raw.rejects.filter(pl.col("table") == "accounts"),
        )
        write_parquet(gate.passed, folder(run.staging) / ACCOUNTS_PASSED)
        rec.counts = {k: gate.stats[k] for k in ("rows_in", "rows_passed", "rows_quarantined")}
        rec.warnings = list(gate.stats["warnings"])
    return dict(rec.counts)


def gate_file(job: Job, piece: int) -> dict[str, Any]:
    """The transactions gate's checks on one file's rows (quality/pieces.py): GX's results
    and the rows' key hashes wait in the piece's folder for `gate_raw`, which merges them
    with every other file's into the gate on their union."""
    config, run = job.config, job.run
    parts = parts_of(run.staging)
    known = pl.read_parquet(folder(run.staging) / ACCOUNTS_PASSED, columns=["account_id"])
    with stage(run, f"gate_file-{piece:04d}", {"piece": piece, **config.interval_params()}) as rec:
        rec.counts = pieces.gate_piece(
            as_in_union(parts, piece),
            "raw_transactions",
            parts[piece],
            params={
                **config.interval_params(),
                "known_accounts": known.get_column("account_id").to_list(),
            },
        )
    return {"piece": piece, **rec.counts}


def gated_pieces(run: RunDir) -> tuple[RawInput, GateResult[pl.DataFrame], Validated]:
    """What `gate_raw` gates when the files were gated a task each: their union, the accounts
    gate's result and the merge of the files' transactions gates."""
    raw = load_pieces(run.staging, accounts=False)
    path = run.quality / "raw_accounts.json"
    passed = folder(run.staging) / ACCOUNTS_PASSED
    if not passed.is_file() or not path.is_file():
        raise InputError("the accounts were not gated: run gate_accounts first", file=run.staging)
    raw.accounts = pl.read_parquet(passed)
    stats = read_json(path)["meta"]["flows87"]["stats"]
    quarantine = run.quarantine("raw_accounts")
    accounts = GateResult(
        "raw_accounts",
        raw.accounts,
        pl.read_parquet(quarantine) if quarantine.is_file() else pl.DataFrame(),
        path,
        path.with_suffix(".md"),
        quarantine if quarantine.is_file() else None,
        stats,
    )
    return raw, accounts, pieces.merged(parts_of(run.staging), "raw_transactions")


def _accounts(parts: list[Path], transactions: pl.LazyFrame) -> pl.DataFrame:
    """The first piece's accounts, or (an input without) those derived from every piece's."""
    sides = [p / SIDES for p in parts if (p / SIDES).is_file()]
    if sides:
        labelled = "is_suspicious" in transactions.collect_schema().names()
        return accounts_from_sides(pl.scan_parquet(sides), labelled).collect()
    tables = [pl.read_parquet(p / "accounts.parquet") for p in parts]
    return schema.conform(pl.concat(tables, how="diagonal_relaxed"), "accounts").collect()

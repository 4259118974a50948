"""Which format a file or folder is in, from its header or the files the folder holds."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87.errors import InputError
from flows87.pipeline.ingest import (
    amlgentex,
    amlsim,
    amlworld,
    canonical,
    files,
    goaml,
    paysim,
    samld,
)

FORMATS: tuple[str, ...] = (
    "canonical", "amlworld", "amlsim", "paysim", "samld", "amlgentex", "goaml",
)  # fmt: skip

HEADERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "canonical": (canonical.required("transactions"), canonical.optional("transactions")),
    "amlworld": (amlworld.REQUIRED, amlworld.OPTIONAL),
    "amlsim": (amlsim.REQUIRED, amlsim.OPTIONAL),
    "paysim": (paysim.REQUIRED, paysim.OPTIONAL),
    "samld": (samld.REQUIRED, samld.OPTIONAL),
    "amlgentex": (amlgentex.REQUIRED, amlgentex.OPTIONAL),
}
"""Required and optional transaction columns of each CSV format (goAML is XML: see goaml.py)."""


def detect_format(path: str | Path) -> str:
    """The format of a file (by its header) or folder (by the files it holds)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        return detect_folder(path)
    if path.suffix.lower() == ".parquet":
        return detect_parquet(path)
    if path.suffix.lower() in (".xml", ".zip") and goaml.is_goaml(path):
        return "goaml"
    return detect_header(path, files.read_header(path))


def detect_parquet(path: Path) -> str:
    """A Parquet file is AMLGentex's tx_log when its columns are, else canonical (whose reader
    names what is wrong with it)."""
    try:
        names = list(pl.read_parquet_schema(path))
    except files.FILE_ERRORS:
        return "canonical"
    return "amlgentex" if set(amlgentex.REQUIRED) <= set(names) else "canonical"


def detect_folder(path: Path) -> str:
    """A folder is canonical (transactions.parquet/.csv, or several transaction files:
    canonical.split_files), AMLSim output (transactions.csv) or
    AMLGentex output (tx_log.parquet/.csv, in the folder or its temporal/)."""
    if (path / "transactions.parquet").is_file():
        return "canonical"
    if not (path / "transactions.csv").is_file() and canonical.split_files(path):
        return detect_split(path, canonical.split_files(path))
    for folder in (path, path / "temporal"):
        for name in amlgentex.TX_LOGS:
            log = folder / name
            if log.is_file() and detect_format(log) == "amlgentex":
                return "amlgentex"
    table = path / "transactions.csv"
    if not table.is_file() and goaml.is_goaml(path):
        return "goaml"
    if not table.is_file():
        held = sorted(p.name for p in path.iterdir())[:10]
        raise InputError(
            f"unknown format: the folder holds no transactions.parquet or transactions.csv "
            f"(nor an AMLGentex tx_log.parquet or tx_log.csv; it holds {held})",
            file=path,
            hint="give a folder written by `flows87 synth`, AMLSim or AMLGentex, or a CSV file "
            f"of one of the formats {', '.join(FORMATS)}",
        )
    found = detect_header(table, files.read_header(table))
    if found not in ("canonical", "amlsim"):
        raise InputError(
            f"transactions.csv is in the {found} format, which is read from its file alone",
            file=path,
            hint=f"give the file itself: {table}",
        )
    return found


def detect_split(folder: Path, parts: list[Path]) -> str:
    """Transactions in several files are canonical: their first file must say so."""
    first = parts[0]
    found = detect_parquet(first) if first.suffix.lower() == ".parquet" else None
    found = found or detect_header(first, files.read_header(first))
    if found != "canonical":
        raise InputError(
            f"{first.name} is in the {found} format; transactions in several files are read in "
            "the canonical format only",
            file=folder,
            hint=f"give one {found} file at a time, e.g. {first}",
        )
    return found


def detect_header(path: Path, names: list[str]) -> str:
    """The format whose required columns the header has (the best match if several)."""
    present = set(names)
    matches = [f for f in HEADERS if set(HEADERS[f][0]) <= present]
    if matches:
        return max(
            matches, key=lambda f: (len(present & set(sum(HEADERS[f], ()))), -FORMATS.index(f))
        )
    share = {f: len(present & set(HEADERS[f][0])) / len(HEADERS[f][0]) for f in HEADERS}
    closest = max(HEADERS, key=lambda f: share[f])
    missing = [c for c in HEADERS[closest][0] if c not in present]
    shown = ",".join(names)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    hint = f"the closest is {closest}, which lacks {missing}"
    if not share[closest]:
        hint = "no column of it belongs to a known format; they begin: " + "; ".join(
            f"{f}: {','.join(HEADERS[f][0][:4])},..." for f in HEADERS
        )
    if names and names[0].startswith("BEGIN LAUNDERING ATTEMPT"):
        hint = "this is an AMLworld patterns file: give the *_Trans.csv beside it"
    elif names == ["id", "src", "dst", "ttype"]:
        hint = (
            "this is AMLGentex's spatial graph (who may pay whom): give the experiment folder "
            "or its temporal/tx_log.parquet"
        )
    elif len(names) == 1 and ";" in names[0]:
        hint = "the header looks separated by ';': save the file as comma-separated CSV"
    raise InputError(
        f"unknown format: the header is {shown!r}; known formats are {', '.join(FORMATS)}",
        file=path,
        hint=hint,
    )

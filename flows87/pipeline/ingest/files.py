"""Whole-file checks and scans: existence, header, encoding, row shape, and the raw-text scan.

Problems with a file as a whole (missing, empty, wrong header, not UTF-8, ragged rows, no data)
raise `InputError` before any row is parsed, naming the file and, where there is one, the row.
Raw columns are named `raw:<header>`, so that a canonical file, whose headers are the output
names, can be parsed into columns of those names without a clash.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError

RAW = "raw:"
PANDAS_INDEX = re.compile(r"(Unnamed: \d+)?")
"""A column pandas adds when a frame is saved with its index (empty name or `Unnamed: 0`)."""


def require_file(path: Path) -> None:
    """A readable, non-empty file, or an InputError saying which of these it is not."""
    if not path.exists():
        raise InputError("file not found", file=path)
    if not path.is_file():
        raise InputError("is not a file", file=path)
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes): no header and no data rows", file=path)


def read_header(path: Path) -> list[str]:
    """The header's column names, stripped, BOM removed, duplicates renamed `X.1` like pandas."""
    require_file(path)
    with path.open("rb") as f:
        head = f.read(1 << 16)
    for magic, kind in ((b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "gzip-compressed")):
        if head.startswith(magic):
            raise InputError(f"the file is {kind}, not CSV", file=path, hint="extract it first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            "not UTF-8: the file is UTF-16 (Excel's 'Unicode text')",
            file=path,
            hint="save it as 'CSV UTF-8 (comma delimited)'",
        )
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"not UTF-8: byte 0x{first[e.start]:02x} at byte offset {e.start} of the header",
            file=path,
            hint="save the file as UTF-8 (it may be Latin-1 or Windows-1252)",
        ) from None
    if not line.strip():
        raise InputError("the first line (the header) is empty", file=path)
    try:
        names = next(csv.reader([line]))
    except csv.Error as e:
        raise InputError(f"the header is not CSV: {e}", file=path) from None
    return dedupe([n.strip() for n in names])


def dedupe(names: list[str]) -> list[str]:
    """Rename repeated names as pandas does: Account, Account -> Account, Account.1."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def usable(names: list[str]) -> list[str]:
    """The header without columns pandas adds for its index."""
    return [n for n in names if not PANDAS_INDEX.fullmatch(n)]


def check_columns(
    path: Path, names: list[str], required: tuple[str, ...], optional: tuple[str, ...], fmt: str
) -> None:
    """InputError listing missing and unexpected columns when `required` are not all there."""
    missing = [c for c in required if c not in names]
    if not missing:
        return
    unexpected = [n for n in usable(names) if n not in required and n not in optional]
    text = f"the header does not match the {fmt} format: missing columns {missing}"
    if unexpected:
        text += f"; unexpected columns {unexpected}"
    hint = f"a {fmt} header has {', '.join(required)}"
    if len(names) == 1 and ";" in names[0]:
        hint = "the header looks separated by ';': save the file as comma-separated CSV"
    raise InputError(text, file=path, hint=hint)


FILE_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError)
"""What polars raises on a malformed file (a panic is a polars bug on odd bytes: still the file)."""


def collect(lf: pl.LazyFrame, path: Path) -> pl.DataFrame:
    """Run a query over `path`, turning the errors of a malformed file into InputError."""
    try:
        return lf.collect(engine="streaming")
    except FILE_ERRORS as e:
        raise file_error(e, path) from None


def file_error(e: BaseException, path: Path) -> InputError:
    """The InputError for an error polars or the OS raised while reading `path`."""
    if isinstance(e, OSError):
        return InputError(f"cannot be read: {e.strerror or e}", file=path)
    lines = str(e).strip().splitlines()
    message = lines[0] if lines else type(e).__name__
    if "utf-8" in message.lower() or "utf8" in message.lower():
        return encoding_error(path)
    return InputError(f"cannot be read: {message}", file=path)


def encoding_error(path: Path) -> InputError:
    """InputError naming the row and byte offset of the first byte sequence that is not UTF-8."""
    offset, line = first_bad_utf8(path)
    return InputError(
        f"not UTF-8: invalid byte sequence at byte offset {offset} (line {line})",
        file=path,
        row=line - 1 if line > 1 else None,
        hint="save the file as UTF-8 (it may be Latin-1 or Windows-1252)",
    )


def first_bad_utf8(path: Path, chunk_size: int = 1 << 20) -> tuple[int, int]:
    """Byte offset and 1-based line of the first invalid UTF-8 sequence (end of file if none)."""
    offset, line, carry = 0, 1, b""
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            data = carry + chunk
            try:
                data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as e:
                if e.reason != "unexpected end of data":
                    return offset + e.start, line + data.count(b"\n", 0, e.start)
                good = e.start  # a sequence cut by the chunk boundary: finish it next time
            line += data.count(b"\n", 0, good)
            offset += good
            carry = data[good:]
    return offset, line


def count_rows(path: Path, n_fields: int) -> int:
    """Number of data rows; InputError if there are none or a row has the wrong number of fields.

    Reads each line as one string (no quoting) and counts its separators, outside quotes, so a
    truncated last line or a stray comma is named by its row. Lines of nothing but commas
    (what Excel leaves below a table) do not count; the readers skip them.
    """
    lines = pl.scan_csv(
        path,
        has_header=False,
        skip_rows=1,
        separator="\x1f",
        quote_char=None,
        infer_schema=False,
        new_columns=["line"],
        truncate_ragged_lines=True,
        empty_string_is_null=False,
        row_index_name="row",
        row_index_offset=1,
    ).with_columns(pl.col("line").fill_null(""))
    line = pl.col("line")
    lines = lines.with_columns(
        quoted=line.str.contains('"', literal=True),
        blank=line.str.strip_chars(",\r") == "",
        fields=line.str.count_matches(",", literal=True) + 1,
    )
    plain = ~pl.col("quoted") & ~pl.col("blank")
    ragged = plain & (pl.col("fields") != n_fields)
    stats = _stats(
        lines.select(
            rows=(~pl.col("blank")).sum(),
            quoted=pl.col("quoted").sum(),
            ragged=ragged.sum(),
            first=pl.col("row").filter(ragged).first(),
            fields=pl.col("fields").filter(ragged).first(),
        ),
        path,
    )
    if stats["quoted"]:  # quoted commas do not separate: count those lines again without them
        fields = line.str.replace_all(r'"[^"]*"', "").str.count_matches(",", literal=True) + 1
        odd = line.str.count_matches('"', literal=True) % 2 == 1
        quoted = (
            lines.filter(pl.col("quoted") & ~pl.col("blank"))
            .select("row", fields=fields, odd=odd)
            .filter((pl.col("fields") != n_fields) | pl.col("odd"))
        )
        extra = _stats(
            quoted.select(
                odd=pl.col("odd").any(),
                ragged=pl.len(),
                first=pl.col("row").first(),
                fields=pl.col("fields").first(),
            ),
            path,
        )
        if extra["odd"]:  # a quoted field spans lines: leave the counting to the CSV parser
            scan = scan_text(path, [f"c{i}" for i in range(n_fields)])
            return int(collect(scan.select(pl.len()), path).item())
        if extra["ragged"] and (not stats["ragged"] or extra["first"] < stats["first"]):
            stats.update(first=extra["first"], fields=extra["fields"])
        stats["ragged"] += extra["ragged"]
    if stats["ragged"]:
        more = stats["ragged"] - 1
        raise InputError(
            f"the row has {stats['fields']} fields but the header has {n_fields}"
            + (f" ({more:,} more rows have the wrong number of fields)" if more else ""),
            file=path,
            row=stats["first"],
            hint="a truncated last line, a stray comma, or an unclosed quote",
        )
    if not stats["rows"]:
        raise InputError("no data rows: the file has a header only", file=path)
    return int(stats["rows"])


def _stats(query: pl.LazyFrame, path: Path) -> dict[str, Any]:
    """The one row of an aggregate over the lines of `path` (zeros when it has no lines)."""
    try:
        return query.collect(engine="streaming").row(0, named=True)
    except pl.exceptions.NoDataError:  # nothing after the header
        return {"rows": 0, "quoted": 0, "ragged": 0, "odd": False}
    except FILE_ERRORS as e:
        raise file_error(e, path) from None


def scan_text(path: Path, names: list[str]) -> pl.LazyFrame:
    """Every column as text named `raw:<header>`, plus `source_row` (1-based data row)."""
    raw_names = [RAW + n for n in names]
    return (
        pl.scan_csv(
            path,
            infer_schema=False,
            new_columns=raw_names,
            row_index_name="source_row",
            row_index_offset=1,
        )
        .with_columns(pl.col("source_row").cast(pl.Int64))
        .filter(~pl.all_horizontal(pl.col(raw_names).is_null()))
    )


def open_csv(
    path: Path, fmt: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[pl.LazyFrame, list[str], int]:
    """Check a CSV as a whole; return its raw-text scan, its header and its number of rows."""
    names = read_header(path)
    check_columns(path, names, required, optional, fmt)
    n_rows = count_rows(path, len(names))
    return scan_text(path, names), names, n_rows

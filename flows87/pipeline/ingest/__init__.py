"""Readers: the canonical format and the public benchmark formats, onto the canonical tables.

`read` detects the format from the header (or the folder's files), scans the data lazily with
every column as text and parses it with polars expressions: a row that does not parse is set
aside in `rejects` with its file, row, column, raw value and reason, and the rest reads on.
Problems with a whole file raise `InputError` naming the file (and row, where there is one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flows87.errors import ConfigError, InputError
from flows87.pipeline.ingest import amlgentex, amlsim, amlworld, canonical, goaml, paysim, samld
from flows87.pipeline.ingest.common import Options, ReadResult, check_options
from flows87.pipeline.ingest.detect import FORMATS, detect_format

__all__ = ["FORMATS", "ReadResult", "detect_format", "pieces", "read"]

READERS: dict[str, Callable[[Path, Options], ReadResult]] = {
    "canonical": canonical.read,
    "amlworld": amlworld.read,
    "amlsim": amlsim.read,
    "paysim": paysim.read,
    "samld": samld.read,
    "amlgentex": amlgentex.read,
    "goaml": goaml.read,
}


def read(
    path: str | Path,
    format: str | None = None,
    *,
    base_currency: str = "USD",
    max_reject_fraction: float = 0.05,
    start: datetime | None = None,
    staging: Path | None = None,
    stage_above: int = Options.stage_above,
    piece: int | None = None,
) -> ReadResult:
    """Read a file or folder of any known format into canonical transactions and accounts.

    `format` overrides detection. `start` is the calendar time of step 0 for sources that
    count time in steps (PaySim hours, AMLGentex and old AMLSim days); naive means UTC. More
    rejected rows than `max_reject_fraction` of a file's rows raise InputError. A file of more
    than `stage_above` rows is parsed to `staging` (a folder) and its rows are read back lazily:
    the result then reads those files until `common.clear_staged(staging)`. With `piece`, only
    that piece of the input (`pieces`): one transaction file of a canonical input in several.
    """
    if start is not None:
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    opts = Options(base_currency, max_reject_fraction, start, staging, stage_above)
    check_options(opts)
    if format is not None and format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}", hint=f"one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    fmt = format or detect_format(path)
    if piece is None:
        return READERS[fmt](path, opts)
    if piece not in range(pieces(path, fmt)):
        raise ConfigError(f"no piece {piece} of {path}: it has {pieces(path, fmt)}")
    if fmt == "canonical":
        return canonical.read(path, opts, piece)
    return READERS[fmt](path, opts)


def pieces(path: str | Path, format: str | None = None) -> int:
    """How many pieces `read(path, piece=...)` can read the input in, each alone (a task per
    input file): a canonical input's transaction files; any other input is one piece."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    if (format or detect_format(path)) == "canonical":
        return canonical.pieces(path)
    return 1

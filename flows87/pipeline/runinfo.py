"""What ran, on what, with which versions, and how long each stage took.

Each stage records itself in RUN/stages/<stage>.json (the Airflow tasks run them in separate
processes, so no stage can hold the whole story in memory); `assemble` gathers them into
RUN/run.json when a run succeeds, or RUN/run.failed.json when it fails, so run.json always
describes the results that are in the folder and a failed re-run never makes them look failed.
The input is fingerprinted by content (sha256 of every source file). run.json's `quarantine`
gives each quality gate's rows in and rows set aside (parse rejects + rows failing checks).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from flows87 import __version__
from flows87.errors import Flows87Error
from flows87.io import write_json
from flows87.pipeline.plan import seconds_by_stage
from flows87.rundir import PathLike, RunDir

_LIBRARIES = ("polars", "pyarrow", "great-expectations", "pyod", "networkx", "apache-airflow")


def fingerprint(paths: list[Path]) -> dict[str, Any]:
    """sha256 and size of every input file (read in 1 MiB blocks, so size does not matter)."""
    files: list[dict[str, Any]] = []
    for p in sorted(paths):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        files.append({"path": str(p), "bytes": p.stat().st_size, "sha256": h.hexdigest()})
    combined = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    return {"sha256": combined, "files": files}


def versions() -> dict[str, str]:
    out = {"flows87": __version__, "python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class StageRecord:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)


@contextmanager
def stage(
    run_dir: PathLike, name: str, params: dict[str, Any] | None = None
) -> Iterator[StageRecord]:
    """Time a stage and write RUN/stages/<name>.json, whether it succeeds or fails."""
    record = StageRecord(name, dict(params or {}))
    started, t0 = _now(), time.perf_counter()
    status, error = "succeeded", None
    try:
        yield record
    except Flows87Error as exc:
        status, error = "failed", exc.message
        raise
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        write_json(
            {
                "stage": name,
                "status": status,
                "error": error,
                "started_at": started,
                "finished_at": _now(),
                "seconds": round(time.perf_counter() - t0, 3),
                "params": record.params,
                "counts": record.counts,
                "timings": record.timings,
                "warnings": record.warnings,
                **record.extra,
            },
            RunDir(run_dir).stage_record(name),
        )


def gate_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """A gate's row counts from its `meta.flows87.stats`: rows_in (parse rejects included),
    rows_quarantined = rows_parse_rejected + rows_failed_checks. A result written before parse
    rejects were counted in (rows_in and rows_quarantined without them) is read as it meant."""
    keys = ("rows_in", "rows_quarantined", "rows_parse_rejected", "rows_failed_checks")
    if "rows_failed_checks" in stats:
        return {k: stats[k] for k in keys}
    parse, failing = stats.get("rows_parse_rejected") or 0, stats.get("rows_quarantined")
    rows_in = stats.get("rows_in")
    return {
        "rows_in": None if rows_in is None else rows_in + parse,
        "rows_quarantined": None if failing is None else failing + parse,
        "rows_parse_rejected": parse,
        "rows_failed_checks": failing,
    }


def quarantine_counts(run_dir: PathLike) -> dict[str, dict[str, Any]]:
    """Each gate's row counts (`gate_counts`), from RUN/quality/<gate>.json."""
    folder = RunDir(run_dir).quality
    out = {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            result = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a gate result
        stats = ((result.get("meta") or {}).get("flows87") or {}).get("stats")
        if isinstance(stats, dict):
            out[p.stem] = gate_counts(stats)
    return out


def stages(run_dir: PathLike) -> dict[str, dict[str, Any]]:
    folder = RunDir(run_dir).stages
    out = {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        out[p.stem] = json.loads(p.read_text(encoding="utf-8"))
    return out


def assemble(
    run_dir: PathLike,
    command: str,
    params: dict[str, Any],
    *,
    status: str = "succeeded",
    error: str | None = None,
) -> Path:
    """Write run.json (success) or run.failed.json (failure) from the stage records."""
    run_dir = Path(run_dir)
    recorded = stages(run_dir)
    data = {
        "command": command,
        "status": status,
        "error": error,
        "finished_at": _now(),
        "params": params,
        "input": (recorded.get("read") or {}).get("input"),
        # by stage (ingest, features, ...: the sum of its steps and partitions), then by step
        "stage_seconds": seconds_by_stage((k, v["seconds"]) for k, v in recorded.items()),
        "step_seconds": {k: v["seconds"] for k, v in recorded.items()},
        "counts": {k: v["counts"] for k, v in recorded.items()},
        # rows each quality gate set aside (parse rejects + rows failing checks)
        "quarantine": quarantine_counts(run_dir),
        "warnings": [w for v in recorded.values() for w in v.get("warnings", [])],
        "versions": versions(),
    }
    failed = RunDir(run_dir).failed_json
    if status == "succeeded":
        failed.unlink(missing_ok=True)
        return write_json(data, RunDir(run_dir).run_json)
    return write_json(data, failed)


def load(run_dir: PathLike) -> dict[str, Any]:
    return json.loads(RunDir(run_dir).run_json.read_text(encoding="utf-8"))

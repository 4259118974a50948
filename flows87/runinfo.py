"""The run directory's `run.json`: what ran, on what input, with which versions, how long each stage took.

A run is reproducible only if we can say exactly what went in, so the input is fingerprinted by
content (sha256 of every source file) and the versions of the libraries that shape results are
recorded beside the parameters.
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
from flows87.io import write_json

_LIBRARIES = ("polars", "pyarrow", "great-expectations", "pyod", "networkx", "apache-airflow")


def fingerprint(paths: list[Path]) -> dict[str, Any]:
    """sha256 and size of every input file (read in 1 MiB blocks, so size does not matter)."""
    files = []
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


@dataclass
class RunInfo:
    """Collects parameters, counts and stage timings; `save` writes RUN/run.json atomically."""

    run_dir: Path
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(time.perf_counter() - t0, 3)

    def save(self) -> Path:
        """Write run.json after success; after a failure write run.failed.json instead.

        run.json always describes the results that are in the folder, so a failed re-run does not
        make the previous, still valid results look failed.
        """
        data = {
            "command": self.command,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "params": self.params,
            "input": self.input,
            "stage_seconds": self.stages,
            "counts": self.counts,
            "versions": versions(),
        }
        failed = self.run_dir / "run.failed.json"
        if self.status == "succeeded":
            failed.unlink(missing_ok=True)
            return write_json(data, self.run_dir / "run.json")
        return write_json(data, failed)


def load(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))

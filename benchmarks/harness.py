"""The benchmark scripts' shared harness: steps in their own process, peak RSS, CPU, load, timings.

Each script measures a step by running itself again as `python SCRIPT --step NAME ...`
(`step_command`, `spawn`), so the step's peak RSS is its own: the child does the work and prints
one JSON line (`emit` adds its peak RSS and CPU seconds), the parent adds the wall time and the
load averages around it (other work on a shared machine slows wall times down; CPU seconds
depend less on it). Commands that are not such a step (`flows87 run`, `airflow dags test`) are
measured by `measure` (a wrapper process reads their rusage) or, with a time limit and a memory
guard, by `guarded`. A run directory's stage records are read here too, by stage of the plan.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows87.pipeline.plan import PLAN, STEPS
from flows87.pipeline.plan import stage_of as plan_stage_of
from flows87.rundir import RunDir

# one /proc walker for the tests and the benchmarks (tests/airflow_cluster.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from airflow_cluster import process_tree

RUN_STAGES = tuple(dict.fromkeys(s.stage for s in PLAN if not s.scheduled_only))
"""The stages `flows87 run` runs, in order (the plan's, without publishing)."""


# ------------------------------------------------------------------------------ the machine


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def usage() -> dict[str, float]:
    """This process's peak RSS (MB) and CPU seconds so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": round(ru.ru_maxrss / 1024), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1)}


def rss_mb(pid: int | str = "self") -> int:
    """The resident memory of one process now (VmRSS), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) // 1024
    except (OSError, StopIteration):
        return 0


def tree_rss_mb(pid: int) -> int:
    """The resident memory of `pid` and its descendants now."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total // 1024


class RssSampler(threading.Thread):
    """Peak RSS of this process per stage, sampled every `period` s (ru_maxrss alone cannot say
    which stage); `at` is the `progress` callback of `flows87.pipeline.run.run`."""

    def __init__(self, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.period, self.current = period, "start"
        self.peaks: dict[str, int] = {}
        self._done = threading.Event()

    def at(self, step: str, fraction: float | None = None) -> None:
        """A fraction marks a new step of the plan; its stage is charged from now on."""
        if fraction is not None:
            self.current = STEPS[step].stage if step in STEPS else step
            self._sample()

    def _sample(self) -> None:
        self.peaks[self.current] = max(self.peaks.get(self.current, 0), rss_mb())

    def run(self) -> None:
        while not self._done.wait(self.period):
            self._sample()

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join()
        self._sample()
        return self.peaks


# ------------------------------------------------------------------------------ child steps


def step_command(script: str | Path, step: str, **options: Any) -> list[str]:
    """`python SCRIPT --step STEP --option value ...`; None and False leave an option out,
    True gives the bare flag."""
    cmd = [sys.executable, str(script), "--step", step]
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        cmd += [flag] if value is True else [flag, str(value)]
    return cmd


def emit(result: dict[str, Any]) -> None:
    """A child step's answer: `result` with its process's peak RSS and CPU, one JSON line."""
    print(json.dumps({**result, **usage()}), flush=True)


def spawn(
    cmd: Sequence[str], what: str, timeout: float | None = None, check: bool = True
) -> dict[str, Any]:
    """Run a child step and return its JSON answer with `process_s` (wall seconds of the
    process) and `load_before`/`load_after`. A failure or a timeout ends the script (`check`)
    or is returned as {"failed": [last error line]} / {"timeout_s": ...}."""
    before = load()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        if check:
            raise SystemExit(f"{what} did not finish within {timeout} s") from None
        return {"timeout_s": timeout, "load_before": before}
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        if check:
            raise SystemExit(f"{what} failed")
        return {"failed": proc.stderr.strip().splitlines()[-1:], "load_before": before}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(process_s=round(time.perf_counter() - t0, 1), load_before=before, load_after=load())
    return res


# Runs the command in its own process, so ru_maxrss of its children is this command's peak alone.
_WRAP = (
    "import json, resource, subprocess, sys; rc = subprocess.run(sys.argv[2:]).returncode; "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "open(sys.argv[1], 'w').write(json.dumps([rc, u.ru_maxrss, u.ru_utime + u.ru_stime]))"
)


def measure(cmd: Sequence[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Any command's wall and CPU seconds and the peak RSS of its largest process; its output
    goes to `log`."""
    before = load()
    used = log.with_suffix(".usage.json")
    t0 = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(
            [sys.executable, "-c", _WRAP, str(used), *cmd],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wall = time.perf_counter() - t0
    rc, maxrss_kb, cpu = json.loads(used.read_text())
    return {
        "ok": rc == 0,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(maxrss_kb / 1024),
        "load_before": before,
    }


def guarded(
    cmd: Sequence[str],
    log: Path,
    timeout: float,
    max_rss_mb: int,
    where: Callable[[], str],
    env: dict[str, str] | None = None,
    period: float = 0.2,
) -> dict[str, Any]:
    """Run `cmd` (stderr to `log`, stdout beside it) under a time limit and a memory guard on
    the RSS of its process tree, sampled every `period` s: past either, its session is killed.
    `where()` names what it is doing (a stage), for the peaks and the reason it was killed.
    CPU and peak RSS come from os.wait4, so a killed command has them too."""
    before = load()
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err, open(log.with_suffix(".out"), "w") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, start_new_session=True)
        peaks: dict[str, int] = {}
        peak, killed, stage, signalled = 0, None, where(), False
        while True:
            pid, status, used = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            stage = where()
            rss = tree_rss_mb(proc.pid)
            peak = max(peak, rss)
            peaks[stage] = max(peaks.get(stage, 0), rss)
            elapsed = time.perf_counter() - t0
            if killed is None and rss > max_rss_mb:
                killed = f"memory guard: {rss:,} MB > {max_rss_mb:,} MB in {stage}"
            elif killed is None and elapsed > timeout:
                killed = f"time limit: {elapsed:.0f} s > {timeout:.0f} s in {stage}"
            if killed and not signalled:
                # the command's own session (start_new_session): only what this script started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                signalled = True
            time.sleep(period)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return {
        "exit_code": proc.returncode,
        "killed": killed,
        "stage_at_end": stage if (killed or proc.returncode) else None,
        "wall_s": round(wall, 2),
        "cpu_s": round(used.ru_utime + used.ru_stime, 1),
        "peak_rss_mb": max(used.ru_maxrss // 1024, peak),
        "stage_peak_rss_mb": peaks,
        "load_before": before,
        "load_after": load(),
    }


# ------------------------------------------------------------------------------ run directories


def stage_of(record: str) -> str:
    """The stage of a RUN/stages/<record>.json (a run of an older commit names them by stage)."""
    return plan_stage_of(record) or record


def stage_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every RUN/stages/<record>.json by record name (steps, partitions, merges), in the order
    of the plan."""
    paths = sorted(RunDir(run_dir).stages.glob("*.json"), key=lambda p: _record_order(p.stem))
    return {p.stem: json.loads(p.read_text()) for p in paths}


_RECORD_ORDER = {s.record_name: i for i, s in enumerate(PLAN)}
_STEP_ORDER = {s.name: i for i, s in enumerate(PLAN)}


def _record_order(record: str) -> tuple[int, str]:
    """Where the plan has the step that wrote the record (a partition's: "<step>-<part>")."""
    if record in _RECORD_ORDER:
        return _RECORD_ORDER[record], record
    return _STEP_ORDER.get(record.rsplit("-", 1)[0], len(PLAN)), record


def by_stage(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records summed up per stage: seconds, the worst status, the step timings (summed
    over partitions), the first error, and the counts of the record named after the stage."""
    out: dict[str, dict[str, Any]] = {}
    for name, rec in records.items():
        st = out.setdefault(
            stage_of(name), {"seconds": 0.0, "status": "succeeded", "timings": {}, "error": None}
        )
        st["seconds"] = round(st["seconds"] + float(rec.get("seconds") or 0.0), 3)
        if rec.get("status") != "succeeded" and st["status"] == "succeeded":
            st["status"] = rec.get("status")
        for k, v in (rec.get("timings") or {}).items():
            st["timings"][k] = round(st["timings"].get(k, 0.0) + v, 3)
        st["error"] = st["error"] or rec.get("error")
        if name == stage_of(name):
            st["counts"] = rec.get("counts", {})
    return {k: out[k] for k in sorted(out, key=_stage_order)}


def _stage_order(stage: str) -> int:
    return RUN_STAGES.index(stage) if stage in RUN_STAGES else len(RUN_STAGES)


def current_stage(run_dir: Path) -> str:
    """The stage running now: the first whose steps have not all recorded themselves."""
    done = set(stage_records(run_dir)) if RunDir(run_dir).stages.exists() else set()

    def recorded(step_name: str) -> bool:
        s = STEPS[step_name]
        return s.record_name in done or (
            s.per_part and any(d.startswith(f"{s.name}-") for d in done)
        )

    for stage in RUN_STAGES:
        steps = [s.name for s in PLAN if s.stage == stage]
        if stage not in done and not all(recorded(s) for s in steps):
            return stage
    return "finishing"


def top_steps(timings: dict[str, float], k: int = 3) -> str:
    """The `k` slowest steps of a stage, "name seconds, ..."."""
    top = sorted(timings.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{name} {s:.1f}" for name, s in top if s >= 0.05)


# ------------------------------------------------------------------------------ the data


def synth_input(
    folder: Path,
    accounts: int,
    days: int = 10,
    seed: int = 1,
    transform: Callable[[Any], Any] | None = None,
    reuse: bool = True,
    block: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Generate labelled data (`flows87.research.synth.generate`) into the canonical input
    folder `folder`, or reuse what is there (`reuse`); `transform` changes the transactions
    before they are written; `options` go to `generate` (e.g. start). With `block`, fewer
    accounts than `accounts` are generated at a time (`synth_blocks`)."""
    import polars as pl

    files = RunDir(folder)  # a canonical input folder names its tables as a run directory does
    if reuse and files.transactions.exists():
        n = pl.scan_parquet(files.transactions).select(pl.len()).collect().item()
        return {"transactions": n, "reused": True}
    if block and block < accounts:
        return synth_blocks(folder, accounts, block, days, seed, transform, **options)
    from flows87.io import write_parquet
    from flows87.research.synth import generate

    t0 = time.perf_counter()
    data = generate(accounts=accounts, days=days, seed=seed, **options)
    generated = time.perf_counter() - t0
    write_parquet(data.accounts, files.accounts)
    write_parquet(
        transform(data.transactions) if transform else data.transactions, files.transactions
    )
    return {
        "transactions": data.transactions.height,
        "accounts": data.accounts.height,
        "reused": False,
        "generate_s": round(generated, 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }


BLOCK_IDS = {
    "transactions": ("txn_id", "src_account", "dst_account", "scheme_id", "device_id"),
    "accounts": ("account_id", "party_id", "scheme_id", "device_id"),
}
"""The identifiers a block's prefix makes distinct (the generator numbers them from 0 in every
block); the rest (phones, IBANs, locations) are drawn at random, as within one block."""


def synth_blocks(
    folder: Path,
    accounts: int,
    block: int,
    days: int,
    seed: int,
    transform: Callable[[Any], Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """`accounts` accounts generated `block` at a time, each block with its own seed and its
    identifiers prefixed `Bnn-` (a cash account `CASH:Bnn-...`), written on its own to
    FOLDER/blocks/ and then streamed into one transactions.parquet and accounts.parquet: the
    generator's memory grows with the block, not the total (one piece of 2M accounts took
    9.8 GB). No transaction crosses blocks: they are separate banks of one country."""
    import polars as pl

    from flows87.io import write_parquet
    from flows87.research.synth import generate

    t0 = time.perf_counter()
    parts = folder / "blocks"
    parts.mkdir(parents=True, exist_ok=True)
    sizes = [block] * (accounts // block) + ([accounts % block] if accounts % block else [])
    for k, size in enumerate(sizes):
        data = generate(accounts=size, days=days, seed=seed + k, **options)
        tables = {"transactions": data.transactions, "accounts": data.accounts}
        if transform:
            tables["transactions"] = transform(tables["transactions"])
        del data
        for name, table in tables.items():
            write_parquet(
                prefixed(table, BLOCK_IDS[name], f"B{k:02d}-"), parts / f"{name}-{k}.parquet"
            )
        del tables
    files, counts = RunDir(folder), {}
    for name, path in (("transactions", files.transactions), ("accounts", files.accounts)):
        scan = pl.scan_parquet([parts / f"{name}-{k}.parquet" for k in range(len(sizes))])
        scan.sink_parquet(path, engine="streaming")
        counts[name] = pl.scan_parquet(path).select(pl.len()).collect().item()
    shutil.rmtree(parts)
    return {
        **counts,
        "blocks": len(sizes),
        "reused": False,
        "total_s": round(time.perf_counter() - t0, 2),
    }


def prefixed(frame: Any, columns: tuple[str, ...], prefix: str) -> Any:
    """`frame` with `prefix` before each of `columns`' values (after `CASH:` in a cash account)."""
    import polars as pl

    def one(name: str) -> pl.Expr:
        c = pl.col(name)
        cash = c.str.starts_with("CASH:")
        return (
            pl.when(cash).then("CASH:" + pl.lit(prefix) + c.str.slice(5)).otherwise(prefix + c)
        ).alias(name)

    return frame.with_columns(one(c) for c in columns if c in frame.columns)


def write_results(results: dict[str, Any], path: Path) -> None:
    """Results so far as indented JSON (after every size or shape: a later crash loses nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))

"""A real Airflow 3 deployment on this machine, for a test or a benchmark.

`dag.test()` runs every task in one process; this starts what a production deployment runs:
the scheduler with the LocalExecutor (`parallelism` worker processes, tasks side by side), the
DAG processor, and the API server, whose execution API is where Airflow 3's task processes read
and write the metadata (their JWTs are signed and checked with one shared secret). The metadata
database is a PostgreSQL database, as in production (SQLite takes one writer at a time, and
here a scheduler, an API server and several task processes write at once), the AIRFLOW_HOME a fresh
folder, the DAGS folder the repository's dags/. Everything listens on 127.0.0.1 on free ports;
the scheduler's log server (which binds every interface) is not started: task logs are files
under AIRFLOW_HOME/logs, read here and by the API server on the same machine. Each process's
output is kept in WORKDIR/<name>.log, and `stop` ends every process group it started, and their
task processes (each in a group of its own), also when the caller failed.

With `executor="celery"` the scheduler runs the CeleryExecutor instead: it queues each task on a
Redis broker (Debian's redis-server, started here on 127.0.0.1, a free port, its own folder, no
persistence) and `workers` processes of `airflow celery worker` (each `--concurrency 1`, its own
`--celery-hostname wN@...`, `--skip-serve-logs`) take them; Celery's results go to the metadata
PostgreSQL (`db+postgresql+psycopg://`). On one machine every worker would record the same
hostname on its task instances, so each worker reports its Celery name instead (core
hostname_callable = `worker_hostname` below): on separate machines that is the machine's name.

Used by tests/test_multiworker.py, tests/test_celery.py and benchmarks/bench_scheduler.py (which
puts tests/ on sys.path); it lives beside tests/postgres.py, whose throwaway server it is given a
database on.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROCESSES = {
    # the log server binds every interface and is not needed on one machine
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "api-server": ["api-server", "--workers", "1"],
}
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
WORKER_NAME = "FLOWS87_CELERY_WORKER"  # the Celery worker's name, set in its environment only


def worker_hostname() -> str:
    """The hostname a Celery worker's task processes record (core hostname_callable)."""
    return os.environ.get(WORKER_NAME) or socket.getfqdn()


class AirflowError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def async_url(url: str) -> str:
    """The async form of a postgresql+psycopg URL (Airflow's API server and triggerer use it)."""
    scheme, rest = url.split(":", 1)
    return f"postgresql+psycopg_async:{rest}" if scheme.startswith("postgresql") else url


def default_parallelism() -> int:
    """One task process per core, at least two (the executor's 32 by default swamp 2 cores)."""
    return max(2, os.cpu_count() or 1)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, read from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for thread in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{thread}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class AirflowCluster:
    """`with AirflowCluster(workdir, database_url, env=...) as airflow:` starts and stops it."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        parallelism: int | None = None,
        env: Mapping[str, str] | None = None,
        dags_folder: Path = ROOT / "dags",
        executor: str = "local",
        workers: int = 2,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor {executor!r}: one of {sorted(EXECUTORS)}")
        self.workdir = Path(workdir)
        self.executor = executor
        self.home = self.workdir / "airflow"
        self.parallelism = parallelism or default_parallelism()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_HOME", "FLOWS87_"))
        }
        self.env = {
            **inherited,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # Airflow would derive asyncpg (not installed); psycopg 3 has an async dialect too
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": async_url(database_url),
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "MPLCONFIGDIR": str(self.workdir / "mpl"),
            **(env or {}),
        }
        self.commands = {name: [str(BIN / "airflow"), *args] for name, args in PROCESSES.items()}
        self.worker_env: dict[str, dict[str, str]] = {}
        if executor == "celery":
            self._celery(database_url, workers)

    def _celery(self, database_url: str, workers: int) -> None:
        """Redis, the Celery settings and `workers` worker processes of concurrency 1."""
        redis = shutil.which("redis-server")
        if redis is None:
            raise AirflowError("redis-server not found: install Debian's redis-server")
        broker = free_port()
        self.commands = {
            "redis": [
                redis,
                *("--bind", "127.0.0.1", "--port", str(broker), "--protected-mode", "yes"),
                *("--dir", str(self.workdir / "redis"), "--save", "", "--appendonly", "no"),
            ],
            **self.commands,
        }
        self.env.update(
            {
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            }
        )
        tests = str(Path(__file__).resolve().parent)
        python_path = os.pathsep.join(p for p in (tests, self.env.get("PYTHONPATH")) if p)
        for n in range(1, workers + 1):
            name = f"worker{n}"
            celery_name = f"w{n}@{socket.gethostname()}"
            self.commands[name] = [
                str(BIN / "airflow"),
                *("celery", "worker", "--celery-hostname", celery_name),
                *("--concurrency", "1", "--skip-serve-logs"),
            ]
            self.worker_env[name] = {
                WORKER_NAME: celery_name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_cluster.worker_hostname",
                "PYTHONPATH": python_path,
            }

    # --- start and stop ---------------------------------------------------------------------

    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.workdir / "mpl").mkdir(exist_ok=True)
        (self.workdir / "redis").mkdir(exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (self.workdir / "migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise AirflowError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        for name, command in self.commands.items():
            with open(self.workdir / f"{name}.log", "wb") as log:
                self.procs[name] = subprocess.Popen(
                    command,
                    env={**self.env, **self.worker_env.get(name, {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, stopped as one
                    cwd=self.workdir,
                )
        self._wait_healthy(time.monotonic() + timeout)

    def _wait_healthy(self, deadline: float) -> None:
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                if all(
                    (last.get(c) or {}).get("status") == "healthy"
                    for c in ("metadatabase", "scheduler", "dag_processor")
                ) and all(self._worker_ready(name) for name in self.worker_env):
                    return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        raise AirflowError(f"Airflow not healthy in time: {last}\n{self.log_tails()}")

    def _worker_ready(self, name: str) -> bool:
        """Celery says `<name> ready.` once the worker consumes from the broker."""
        log = self.workdir / f"{name}.log"
        return log.exists() and " ready." in log.read_text(errors="replace")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AirflowError(f"airflow {name} exited ({proc.returncode})\n{self.log_tails()}")

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to every process group started, then SIGKILL to whatever of them (and of
        their task processes, in groups of their own) is left after `grace` seconds."""
        tree = [p for proc in self.procs.values() for p in process_tree(proc.pid)]
        groups = set()
        for pid in tree:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                continue
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(timeout=10)
        self.procs = {}

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for name in ("migrate", *self.commands):
            path = self.workdir / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(out)

    # --- the REST API -----------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        if self._token is None:
            got = httpx.post(
                f"{self.url}/auth/token",
                json={"username": "admin", "password": self.password},
                timeout=30,
            )
            got.raise_for_status()
            self._token = got.json()["access_token"]
        answer = httpx.request(
            method,
            f"{self.url}/api/v2/{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=60,
        )
        if answer.status_code >= 400:
            raise AirflowError(f"{method} {path}: {answer.status_code} {answer.text[:2000]}")
        return answer.json() if answer.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """The DAG once the DAG processor has parsed it (fails on its import errors)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            errors = self.api("GET", "importErrors").get("import_errors", [])
            if errors:
                raise AirflowError(f"DAG import errors: {errors}")
            try:
                found: dict[str, Any] = self.api("GET", f"dags/{dag_id}")
                return found
            except AirflowError:
                time.sleep(1)
        raise AirflowError(f"DAG {dag_id} not parsed in time\n{self.log_tails()}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: datetime, conf: dict[str, Any]) -> str:
        run = self.api(
            "POST",
            f"dags/{dag_id}/dagRuns",
            {"logical_date": logical_date.isoformat(), "conf": conf},
        )
        run_id: str = run["dag_run_id"]
        return run_id

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        got = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)
        tis: list[dict[str, Any]] = got["task_instances"]
        return sorted(tis, key=lambda t: (t["task_id"], t["map_index"]))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """The finished run; raises with the failed tasks' log tails unless it succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.dag_run(dag_id, run_id)
            if run["state"] == "success":
                return run
            if run["state"] == "failed":
                raise AirflowError(f"run {run_id} failed:\n{self.failure_report(dag_id, run_id)}")
            time.sleep(2)
        raise AirflowError(
            f"run {run_id} not finished in {timeout:.0f} s:\n{self.failure_report(dag_id, run_id)}"
        )

    def failure_report(self, dag_id: str, run_id: str, lines: int = 40) -> str:
        tis = self.task_instances(dag_id, run_id)
        out = [
            "states: " + ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}" for t in tis)
        ]
        for t in tis:
            if t["state"] in ("failed", "up_for_retry", "running", "queued"):
                tail = self.task_log(dag_id, run_id, t["task_id"], t["map_index"])[-lines:]
                out.append(f"--- {t['task_id']}[{t['map_index']}] ({t['state']}) ---")
                out.extend(tail)
        out.append(self.log_tails())
        return "\n".join(out)

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[str]:
        """The lines of the task's log files (every attempt), read where the tasks wrote them."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        lines: list[str] = []
        for path in sorted(folder.glob("attempt=*.log")):
            for raw in path.read_text(errors="replace").splitlines():
                lines.append(_log_line(raw))
        return lines

    def pids(self) -> Iterator[int]:
        for proc in self.procs.values():
            yield from process_tree(proc.pid)

    def listening(self) -> set[tuple[str, int]]:
        """The (address, port) of every TCP socket the deployment's processes listen on."""
        inodes = set()
        for pid in self.pids():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if target.startswith("socket:["):
                            inodes.add(target[8:-1])
            except OSError:
                continue
        out = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table, encoding="ascii") as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                        address, port = cols[1].split(":")
                        out.add((_address(address), int(port, 16)))
        return out


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp[6] (little-endian 32-bit words) as text."""
    import ipaddress

    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _log_line(raw: str) -> str:
    """Task logs are JSON lines: show level, event and any exception text."""
    try:
        record = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(record, dict):
        return raw
    text = f"{record.get('level', '')}: {record.get('event', '')}"
    for error in record.get("error_detail") or []:
        frames = error.get("frames") or [{}]
        where = f"{frames[-1].get('filename')}:{frames[-1].get('lineno')}"
        text += f"\n  {error.get('exc_type')}: {error.get('exc_value')} (at {where})"
    return text

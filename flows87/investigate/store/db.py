"""Where the case store lives and how to open it; schema upgrades through Alembic.

The database URL: an explicit `url` argument (the CLI's `--db`), else the environment variable
FLOWS87_DB_URL, else a SQLite file `$FLOWS87_HOME/cases.db`. PostgreSQL by URL, e.g.
`postgresql+psycopg://flows87@db.example/flows87`. A plain path is taken as a SQLite file.

    store = Store.open()                 # or Store.open("postgresql+psycopg://...")
    store.upgrade()                      # create or migrate the schema (idempotent)
    with store.session() as s:           # one unit of work: committed at the end, or rolled back
        ...

The migrations ship inside the package (flows87/investigate/store/migrations), so `flows87 store upgrade`
works on an installed flows87 without an alembic.ini.

Writers: `store.session(write=True)` is a unit of work that writes, serialised across processes
(the web app's workers, the loader, the CLI): on SQLite it begins with BEGIN IMMEDIATE (the
write lock is taken at the start, waiting up to the busy timeout, instead of failing with
"database is locked" when a read-then-write transaction tries to upgrade mid-way); on
PostgreSQL it takes a transaction-level advisory lock (the audit chain's next entry is read and
written by one writer at a time).

SQLite is refused when the deployment is distributed (FLOWS87_DISTRIBUTED=1, or an Airflow
executor other than Local/Sequential): its file locking is not safe on a shared file system
(NFS), where a distributed set-up would put cases.db. Use PostgreSQL (FLOWS87_DB_URL) there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from flows87.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ENV_URL = "FLOWS87_DB_URL"
ENV_DISTRIBUTED = "FLOWS87_DISTRIBUTED"
LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})
WRITE_OPTION = "flows87_write"
PG_WRITE_LOCK = 87_014_001  # the advisory lock key of the store's writers


def default_url() -> str:
    """FLOWS87_DB_URL, or the SQLite file cases.db in FLOWS87_HOME."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    from flows87.pipeline.schedule import home

    return f"sqlite:///{home() / 'cases.db'}"


def resolve_url(url: str | Path | None = None) -> str:
    """A SQLAlchemy URL from an argument, the environment or the default; a path means SQLite."""
    if url is None or str(url) == "":
        return default_url()
    text = str(url)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    return text


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _airflow_executor() -> str:
    """The Airflow executor setting: the environment's, else Airflow's configuration when
    Airflow is already loaded (inside a task); empty when neither says."""
    value = os.environ.get("AIRFLOW__CORE__EXECUTOR", "")
    if not value and "airflow.configuration" in sys.modules:
        try:
            value = str(sys.modules["airflow.configuration"].conf.get("core", "executor"))
        except Exception:  # an Airflow without the option: not distributed as far as we know
            value = ""
    return value


def distributed_reason() -> str | None:
    """Why this deployment counts as distributed (None: it does not). FLOWS87_DISTRIBUTED
    decides when set (0 says the run stays on one host even with a remote executor)."""
    flag = os.environ.get(ENV_DISTRIBUTED)
    if flag is not None and flag.strip():
        return f"{ENV_DISTRIBUTED}={flag.strip()}" if _truthy(flag) else None
    remote = []
    for entry in _airflow_executor().split(","):
        name = entry.strip().split(":")[-1].rsplit(".", 1)[-1]
        if name and name not in LOCAL_EXECUTORS:
            remote.append(name)
    if remote:
        return f"the Airflow executor is {', '.join(remote)}"
    return None


def refuse_distributed_sqlite(url: URL) -> None:
    """A ConfigError when the store would be a SQLite file in a distributed deployment."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    reason = distributed_reason()
    if reason:
        raise ConfigError(
            f"the case store is a SQLite file ({url.database}) but this deployment is "
            f"distributed ({reason}): SQLite's locking is not safe on a shared file system",
            hint=f"set {ENV_URL} to a PostgreSQL database, e.g. "
            "postgresql+psycopg://flows87@db.example/flows87 (see docs/deployment.md)",
        )


def make_engine(url: str | Path | None = None, **kwargs) -> Engine:
    text = resolve_url(url)
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", hint="e.g. sqlite:///cases.db") from None
    refuse_distributed_sqlite(parsed)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
    elif parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:  # e.g. a driver that is not installed
        raise ConfigError(f"cannot open database {parsed.render_as_string()}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the web app) do not block the loader
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """A writer's transaction begins with BEGIN IMMEDIATE: it takes the write lock now (waiting
    for another process's writer) and reads what it will write under it, as in SQLAlchemy's
    "Serializable isolation / Savepoints / Transactional DDL" recipe for pysqlite. Other units
    of work keep pysqlite's own deferred BEGIN before their first write (reads never wait in
    WAL mode; the loader and the CLI write as they always did)."""
    dbapi_connection: Any = conn.connection.dbapi_connection
    if conn.get_execution_options().get(WRITE_OPTION):
        dbapi_connection.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        dbapi_connection.isolation_level = ""


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema to `revision` (idempotent: at head, nothing happens)."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


class Store:
    """An engine and a session factory for one case store database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        writer = engine.execution_options(**{WRITE_OPTION: True})
        self.write_sessions = sessionmaker(writer, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | Path | None = None, **engine_kwargs) -> Store:
        return cls(make_engine(url, **engine_kwargs))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self.engine, revision)

    def downgrade(self, revision: str = "base") -> None:
        downgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        return current_revision(self.engine)

    def check_schema(self) -> None:
        """Raise a ConfigError unless the schema is at the head revision."""
        current, head = self.current_revision(), head_revision()
        if current != head:
            raise ConfigError(
                f"the case store {self.url} is at schema revision {current or 'none'}, not {head}",
                hint="run `flows87 store upgrade`",
            )

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises. With
        `write`, one writer at a time across processes (see the module's docstring)."""
        factory = self.write_sessions if write else self.sessions
        with factory() as session, session.begin():
            if write and self.engine.dialect.name == "postgresql":
                session.execute(
                    sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK}
                )
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

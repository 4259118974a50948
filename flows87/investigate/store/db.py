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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from flows87.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ENV_URL = "FLOWS87_DB_URL"


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


def make_engine(url: str | Path | None = None, **kwargs) -> Engine:
    text = resolve_url(url)
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", hint="e.g. sqlite:///cases.db") from None
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
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the web app) do not block the loader
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


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
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

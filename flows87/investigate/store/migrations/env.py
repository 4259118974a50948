"""Alembic environment of the case store: run programmatically by flows87.investigate.store.db.

The connection comes from `config.attributes["connection"]` (flows87 opens it), or from the
`sqlalchemy.url` option when someone runs plain `alembic` with a config of their own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from flows87.investigate.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database to migrate: set sqlalchemy.url in the Alembic config "
            "(or pass a connection in config.attributes['connection'])"
        )
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

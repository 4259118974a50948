"""What the case-store commands share: the --db option, opening the store, reading a password."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

_DB_HELP = (
    "Case store: a database URL (postgresql+psycopg://...) or a SQLite file "
    "(default: $FLOWS87_DB_URL, else $FLOWS87_HOME/cases.db)."
)


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db_url", default=None, metavar="URL", help=_DB_HELP)(f)


def open_store(db_url: str | None, check: bool = True) -> Any:
    from flows87.investigate.store import Store

    store = Store.open(db_url)
    if check:
        store.check_schema()
    return store


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)

"""`flows87 audit`: verify, anchor and show the case store's keyed audit log (docs/audit.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EPILOG, EXIT_AUDIT_BROKEN, err, out
from flows87.cli.store_options import db_option, open_store


@click.group(
    "audit", epilog=EPILOG + " `audit verify`, `audit anchor`: 4 when the chain is broken."
)
def audit_group() -> None:
    """The keyed, hash-chained audit log of the case store (key: $FLOWS87_AUDIT_KEY)."""


@contextmanager
def _store(db_url: str | None) -> Iterator[Any]:
    """The checked store, its connections closed at the end (a CLI call may run in a test)."""
    store = open_store(db_url)
    try:
        yield store
    finally:
        store.dispose()


def _broken(what: object, fitting: int) -> None:
    err.print(
        f"[bold red]audit log broken:[/] {escape(str(what))} ({fitting} entries before it verified)",
        highlight=False,
    )
    raise click.exceptions.Exit(EXIT_AUDIT_BROKEN)


@audit_group.command("verify")
@db_option
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An anchor from `flows87 audit anchor`: the chain must still reach that head.",
)
@click.option(
    "--no-legacy",
    is_flag=True,
    help="Refuse unkeyed entries (from before the key): for stores created with a key.",
)
def audit_verify(db_url: str | None, anchor_file: Path | None, no_legacy: bool) -> None:
    """Check every entry's MAC and link (and the anchored head); name the first entry that does
    not fit (exit 4)."""
    from flows87.investigate.store import check_audit
    from flows87.investigate.store.auditanchor import check_anchor, read_anchor

    anchor = read_anchor(anchor_file) if anchor_file is not None else None
    with _store(db_url) as store, store.session() as s:
        if anchor is None:
            status = check_audit(s)
            broken = status.broken
        else:
            status, broken = check_anchor(s, anchor)
    if broken is not None:
        _broken(broken, status.entries)
    if no_legacy and status.legacy:
        _broken(f"entries 1..{status.legacy} are unkeyed (plain SHA-256)", 0)
    legacy = f", {status.legacy} of them unkeyed from before the key" if status.legacy else ""
    reach = f"; reaches the anchor of {anchor.ts} (entry {anchor.seq})" if anchor else ""
    out.print(f"audit log ok: {status.entries} entries{legacy}, head {status.head}{reach}")


@audit_group.command("anchor")
@db_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write the signed head (JSON); keep it outside the database's reach.",
)
def audit_anchor(db_url: str | None, out_file: Path) -> None:
    """Verify the chain, then export its signed head (seq, MAC, time, HMAC over them) to keep
    elsewhere (WORM storage, an e-mail to the compliance officer)."""
    from flows87.investigate.store import check_audit
    from flows87.investigate.store.auditanchor import make_anchor

    with _store(db_url) as store, store.session() as s:
        status = check_audit(s)
        if status.broken is not None:
            _broken(status.broken, status.entries)
        anchor = make_anchor(s, status)
    out_file.write_text(anchor.to_json(), encoding="utf-8")
    out.print(f"anchored entry {anchor.seq} (MAC {anchor.mac}) at {anchor.ts} in {out_file}")


@audit_group.command("grant")
@db_option
@click.option("--app-role", "role", required=True, help="The PostgreSQL role the app logs in as.")
def audit_grant(db_url: str | None, role: str) -> None:
    """PostgreSQL: give the app's role what it needs, and on audit_log only SELECT and INSERT
    (run as the owner of the schema, the role migrations run as)."""
    from flows87.investigate.store.roles import grant_app_role

    with _store(db_url) as store, store.engine.begin() as connection:
        grant_app_role(connection, role)
    out.print(f"granted role {role}: the case tables, and audit_log SELECT and INSERT only")


@audit_group.command("show")
@db_option
@click.option("--case", "case_id", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def audit_show(db_url: str | None, case_id: str | None, limit: int, as_json: bool) -> None:
    """The newest audit entries (of one case with --case)."""
    from flows87.investigate.store import audit_entries

    with _store(db_url) as store, store.session() as s:
        rows = audit_entries(
            s, entity_type="case" if case_id else None, entity_id=case_id, limit=limit
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=f"{len(rows)} audit entries")
    for col in ("seq", "ts", "actor", "action", "entity", "after"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["seq"]),
            r["ts"].strftime("%Y-%m-%d %H:%M:%S"),
            r["actor"],
            r["action"],
            f"{r['entity_type']} {r['entity_id'] or ''}",
            escape(json.dumps(r["after"], ensure_ascii=False)[:80]),
        )
    out.print(table)

"""`flows87 audit`: verify and show the case store's hash-chained audit log."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EPILOG, EXIT_AUDIT_BROKEN, err, out
from flows87.cli.store_options import db_option, open_store


@click.group("audit", epilog=EPILOG + " `audit verify`: 4 when the chain is broken.")
def audit_group() -> None:
    """The hash-chained audit log of the case store."""


@audit_group.command("verify")
@db_option
def audit_verify(db_url: str | None) -> None:
    """Check every entry's hash and link; name the first entry that does not fit (exit 4)."""
    from flows87.investigate.store import check_audit

    store = open_store(db_url)
    with store.session() as s:
        status = check_audit(s)
    if status.broken is not None:
        err.print(
            f"[bold red]audit log broken:[/] {escape(str(status.broken))} "
            f"({status.entries} entries before it verified)",
            highlight=False,
        )
        raise click.exceptions.Exit(EXIT_AUDIT_BROKEN)
    out.print(f"audit log ok: {status.entries} entries, head {status.head}")


@audit_group.command("show")
@db_option
@click.option("--case", "case_id", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def audit_show(db_url: str | None, case_id: str | None, limit: int, as_json: bool) -> None:
    """The newest audit entries (of one case with --case)."""
    from flows87.investigate.store import audit_entries

    store = open_store(db_url)
    with store.session() as s:
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

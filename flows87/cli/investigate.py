"""The investigators' commands: the case store, its users and audit log, exports, the case app.

store, users, audit, export, serve.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EPILOG, EXIT_AUDIT_BROKEN, err, out

_DB_HELP = (
    "Case store: a database URL (postgresql+psycopg://...) or a SQLite file "
    "(default: $FLOWS87_DB_URL, else $FLOWS87_HOME/cases.db)."
)


def _db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db_url", default=None, metavar="URL", help=_DB_HELP)(f)


def _open_store(db_url: str | None, check: bool = True) -> Any:
    from flows87.investigate.store import Store

    store = Store.open(db_url)
    if check:
        store.check_schema()
    return store


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("store", epilog=EPILOG)
def store_group() -> None:
    """The case store investigators work in: create or migrate it, load runs into it."""


@store_group.command("upgrade")
@_db_option
@click.option("--revision", default="head", show_default=True)
def store_upgrade(db_url: str | None, revision: str) -> None:
    """Create the case store or migrate it to the latest schema (safe to repeat)."""
    store = _open_store(db_url, check=False)
    store.upgrade(revision)
    out.print(f"case store {store.url} at schema revision {store.current_revision()}")


@store_group.command("init")
@_db_option
def store_init(db_url: str | None) -> None:
    """Same as `store upgrade`: create the case store (or bring it up to date)."""
    store = _open_store(db_url, check=False)
    store.upgrade()
    out.print(f"case store {store.url} at schema revision {store.current_revision()}")


@store_group.command("downgrade")
@_db_option
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask (downgrading to base drops every table).")
def store_downgrade(db_url: str | None, revision: str, yes: bool) -> None:
    """Migrate the schema down to REVISION (`base` removes everything)."""
    store = _open_store(db_url, check=False)
    if not yes:
        click.confirm(f"downgrade {store.url} to {revision}? data may be lost", abort=True)
    store.downgrade(revision)
    out.print(f"case store {store.url} at schema revision {store.current_revision() or 'none'}")


@store_group.command("load")
@_db_option
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--interval",
    "interval_key",
    default=None,
    help="Interval key (default: from run.json or the directory name).",
)
@click.option("--json", "as_json", is_flag=True)
def store_load(db_url: str | None, run_dir: Path, interval_key: str | None, as_json: bool) -> None:
    """Load RUN_DIR's cases into the store: new cases added, changed evidence updated,
    decisions and history kept; loading the same run again changes nothing."""
    from flows87.investigate.store import load_run

    store = _open_store(db_url)
    with store.session() as s:
        result = load_run(s, run_dir, interval_key, actor="cli")
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    out.print(
        f"{result.cases} cases from {run_dir} ({result.interval_key}): {result.new} new, "
        f"{result.updated} updated, {result.unchanged} unchanged; {result.transactions} "
        f"transactions written in {result.seconds:.2f} s"
    )
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")


@store_group.command("dispositions")
@_db_option
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=".parquet or .csv",
)
@click.option("--accounts", is_flag=True, help="One row per account (labels) instead of per case.")
def store_dispositions(db_url: str | None, out_file: Path, accounts: bool) -> None:
    """Write the investigators' decisions as labels (case or account level)."""
    from flows87.investigate.store import account_labels, export_dispositions

    store = _open_store(db_url)
    with store.session() as s:
        frame = account_labels(s) if accounts else export_dispositions(s)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if out_file.suffix == ".csv":
        frame.with_columns(
            [
                frame[c].list.join(";").alias(c)
                for c in frame.columns
                if str(frame[c].dtype).startswith("List")
            ]
        ).write_csv(out_file)
    else:
        frame.write_parquet(out_file)
    out.print(f"{frame.height} rows written to {out_file}")


@store_group.command("outcomes")
@_db_option
@click.option("--json", "as_json", is_flag=True)
def store_outcomes(db_url: str | None, as_json: bool) -> None:
    """Which rules and detectors produced the decided cases, by disposition."""
    from flows87.investigate.store import signal_outcomes

    store = _open_store(db_url)
    with store.session() as s:
        frame = signal_outcomes(s)
    if as_json:
        click.echo(json.dumps(frame.to_dicts(), indent=2))
        return
    table = Table(
        title=f"signals of {frame['cases'].sum() if frame.height else 0} decided case-signal pairs"
    )
    for col in frame.columns:
        table.add_column(col)
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


@click.group("users", epilog=EPILOG)
def users_group() -> None:
    """Users of the case app (investigator, supervisor, admin)."""


@users_group.command("add")
@_db_option
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["investigator", "supervisor", "admin"]))
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin.",
)
def users_add(db_url: str | None, username: str, role: str, password_stdin: bool) -> None:
    """Create USERNAME with ROLE; the password is prompted for (argon2-hashed)."""
    from flows87.investigate.store import create_user

    store = _open_store(db_url)
    password = _read_password(password_stdin)
    with store.session() as s:
        create_user(s, username, role, password)
    out.print(f"user {username} ({role}) created")


@users_group.command("passwd")
@_db_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def users_passwd(db_url: str | None, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password."""
    from flows87.investigate.store import set_password

    store = _open_store(db_url)
    password = _read_password(password_stdin)
    with store.session() as s:
        set_password(s, username, password)
    out.print(f"password of {username} set")


@users_group.command("deactivate")
@_db_option
@click.argument("username")
def users_deactivate(db_url: str | None, username: str) -> None:
    """Stop USERNAME from logging in (their history stays)."""
    from flows87.investigate.store import set_active

    store = _open_store(db_url)
    with store.session() as s:
        set_active(s, username, False)
    out.print(f"user {username} deactivated")


@users_group.command("activate")
@_db_option
@click.argument("username")
def users_activate(db_url: str | None, username: str) -> None:
    from flows87.investigate.store import set_active

    store = _open_store(db_url)
    with store.session() as s:
        set_active(s, username, True)
    out.print(f"user {username} activated")


@users_group.command("list")
@_db_option
def users_list(db_url: str | None) -> None:
    from flows87.investigate.store import list_users

    store = _open_store(db_url)
    with store.session() as s:
        rows = [(u.username, u.role, "yes" if u.active else "no") for u in list_users(s)]
    table = Table(title=f"{len(rows)} users")
    for col in ("username", "role", "active"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@click.group("audit", epilog=EPILOG + " `audit verify`: 4 when the chain is broken.")
def audit_group() -> None:
    """The hash-chained audit log of the case store."""


@audit_group.command("verify")
@_db_option
def audit_verify(db_url: str | None) -> None:
    """Check every entry's hash and link; name the first entry that does not fit (exit 4)."""
    from flows87.investigate.store import check_audit

    store = _open_store(db_url)
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
@_db_option
@click.option("--case", "case_id", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def audit_show(db_url: str | None, case_id: str | None, limit: int, as_json: bool) -> None:
    """The newest audit entries (of one case with --case)."""
    from flows87.investigate.store import audit_entries

    store = _open_store(db_url)
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


@click.group("export", epilog=EPILOG)
def export_group() -> None:
    """Export a case: goAML STR XML or CSV of its transactions."""


@export_group.command("goaml")
@_db_option
@click.argument("case_id")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--settings",
    "settings_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reporting-entity settings YAML (default: $FLOWS87_GOAML_SETTINGS, else the bundled example).",
)
@click.option(
    "--xsd",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The FIU's goAML XSD to validate against (default: the settings' schema, else $FLOWS87_GOAML_XSD).",
)
@click.option("--no-validate", is_flag=True, help="Write the report without validating it.")
def export_goaml_cmd(
    db_url: str | None,
    case_id: str,
    out_file: Path,
    settings_file: Path | None,
    xsd: Path | None,
    no_validate: bool,
) -> None:
    """Write CASE_ID as a goAML STR report to --out, validated against the XSD."""
    from flows87.investigate.export import export_goaml, load_goaml_settings
    from flows87.io import atomic_path

    store = _open_store(db_url)
    settings = load_goaml_settings(settings_file)
    with store.session() as s:
        xml, schema = export_goaml(
            s,
            case_id,
            settings=settings,
            xsd=xsd,
            validate=not no_validate,
            actor="cli",
        )
    with atomic_path(out_file) as tmp:
        tmp.write_bytes(xml)
    how = f"validated against {schema}" if schema else "not validated (no XSD configured)"
    out.print(f"goAML report of {case_id} written to {out_file}, {how}")


@export_group.command("csv")
@_db_option
@click.argument("case_id")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_csv_cmd(db_url: str | None, case_id: str, out_file: Path) -> None:
    """Write CASE_ID's transactions as CSV to --out."""
    from flows87.investigate.export import write_transactions_csv

    store = _open_store(db_url)
    with store.session() as s:
        write_transactions_csv(s, case_id, out_file)
    out.print(f"transactions of {case_id} written to {out_file}")


@click.command("serve", epilog=EPILOG)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback by default; put a TLS proxy in front for anything else).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Case store database URL or SQLite file (default: $FLOWS87_DB_URL, else cases.db in $FLOWS87_HOME).",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Mark the session cookie Secure and send HSTS: use behind HTTPS (default: $FLOWS87_WEB_SECURE_COOKIES, else off).",
)
@click.option(
    "--same-site",
    type=click.Choice(["lax", "strict"]),
    default="lax",
    show_default=True,
    help="SameSite attribute of the session cookie.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Host name the app answers to (repeatable; default: the loopback names when bound to loopback, else any).",
)
@click.option(
    "--rules",
    "rules_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Rules folder for the rule descriptions (default: the bundled rules).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_cmd(
    host: str,
    port: int,
    db_url: str | None,
    secure_cookies: bool | None,
    same_site: str,
    allowed_hosts: tuple[str, ...],
    rules_dir: str | None,
    log_level: str,
) -> None:
    """Serve the investigators' case app (queue, cases, money graph, workflow, audit log).

    Users sign in with accounts made by `flows87 users add`. Sessions are signed with
    $FLOWS87_SECRET_KEY (at least 32 characters; without it a random key is used and everyone
    is signed out when the server stops).
    """
    import os

    from flows87.investigate.store import Store
    from flows87.investigate.web.security import ENV_SECRET, is_loopback
    from flows87.investigate.web.server import make_settings, serve

    store = Store.open(db_url)
    store.check_schema()
    settings = make_settings(
        host,
        secure_cookies=secure_cookies,
        same_site=same_site,
        allowed_hosts=allowed_hosts,
        rules_dir=rules_dir,
    )
    if not os.environ.get(ENV_SECRET):
        err.print(f"[yellow]note:[/] no {ENV_SECRET} set: sessions end when the server stops")
    if not is_loopback(host) and not settings.secure_cookies:
        err.print(
            "[yellow]warning:[/] listening beyond loopback without --secure-cookies: serve it behind HTTPS"
        )
    shown = f"[{host}]" if ":" in host else host
    err.print(f"case app on http://{shown}:{port}/ (store {escape(store.url)}); Ctrl-C stops it")
    serve(store, host, port, settings, log_level=log_level)


COMMANDS: tuple[click.Command, ...] = (
    store_group,
    users_group,
    audit_group,
    export_group,
    serve_cmd,
)

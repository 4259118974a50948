"""The investigators' commands: the case store, its users and audit log, exports, the case app.

store, users and serve here; audit in flows87.cli.audit, export in flows87.cli.exports; the
store options they share in flows87.cli.store_options.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.audit import audit_group
from flows87.cli.common import EPILOG, err, out
from flows87.cli.exports import export_group
from flows87.cli.store_options import db_option, open_store, read_password


@click.group("store", epilog=EPILOG)
def store_group() -> None:
    """The case store investigators work in: create or migrate it, load runs into it."""


@store_group.command("upgrade")
@db_option
@click.option("--revision", default="head", show_default=True)
def store_upgrade(db_url: str | None, revision: str) -> None:
    """Create the case store or migrate it to the latest schema (safe to repeat)."""
    store = open_store(db_url, check=False)
    store.upgrade(revision)
    out.print(f"case store {store.url} at schema revision {store.current_revision()}")


@store_group.command("init")
@db_option
def store_init(db_url: str | None) -> None:
    """Same as `store upgrade`: create the case store (or bring it up to date)."""
    store = open_store(db_url, check=False)
    store.upgrade()
    out.print(f"case store {store.url} at schema revision {store.current_revision()}")


@store_group.command("downgrade")
@db_option
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask (downgrading to base drops every table).")
def store_downgrade(db_url: str | None, revision: str, yes: bool) -> None:
    """Migrate the schema down to REVISION (`base` removes everything)."""
    store = open_store(db_url, check=False)
    if not yes:
        click.confirm(f"downgrade {store.url} to {revision}? data may be lost", abort=True)
    store.downgrade(revision)
    out.print(f"case store {store.url} at schema revision {store.current_revision() or 'none'}")


@store_group.command("load")
@db_option
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

    store = open_store(db_url)
    with store.session(write=True) as s:
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
@db_option
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

    store = open_store(db_url)
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
@db_option
@click.option("--json", "as_json", is_flag=True)
def store_outcomes(db_url: str | None, as_json: bool) -> None:
    """Which rules and detectors produced the decided cases, by disposition."""
    from flows87.investigate.store import signal_outcomes

    store = open_store(db_url)
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
@db_option
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

    store = open_store(db_url)
    password = read_password(password_stdin)
    with store.session(write=True) as s:
        create_user(s, username, role, password)
    out.print(f"user {username} ({role}) created")


@users_group.command("passwd")
@db_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def users_passwd(db_url: str | None, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password."""
    from flows87.investigate.store import set_password

    store = open_store(db_url)
    password = read_password(password_stdin)
    with store.session(write=True) as s:
        set_password(s, username, password)
    out.print(f"password of {username} set")


@users_group.command("deactivate")
@db_option
@click.argument("username")
def users_deactivate(db_url: str | None, username: str) -> None:
    """Stop USERNAME from logging in (their history stays)."""
    from flows87.investigate.store import set_active

    store = open_store(db_url)
    with store.session(write=True) as s:
        set_active(s, username, False)
    out.print(f"user {username} deactivated")


@users_group.command("activate")
@db_option
@click.argument("username")
def users_activate(db_url: str | None, username: str) -> None:
    from flows87.investigate.store import set_active

    store = open_store(db_url)
    with store.session(write=True) as s:
        set_active(s, username, True)
    out.print(f"user {username} activated")


@users_group.command("list")
@db_option
def users_list(db_url: str | None) -> None:
    from flows87.investigate.store import list_users

    store = open_store(db_url)
    with store.session() as s:
        rows = [(u.username, u.role, "yes" if u.active else "no") for u in list_users(s)]
    table = Table(title=f"{len(rows)} users")
    for col in ("username", "role", "active"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


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
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (they share sign-in limits and sessions through the store).",
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
    workers: int,
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
    serve(store, host, port, settings, log_level=log_level, workers=workers)


COMMANDS: tuple[click.Command, ...] = (
    store_group,
    users_group,
    audit_group,
    export_group,
    serve_cmd,
)
"""The investigators' commands (`audit` and `export` live in modules of their own)."""

"""`flows87 export`: a case as a goAML report or as CSV of its transactions."""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flows87.cli.common import EPILOG, out
from flows87.cli.store_options import db_option, open_store

if TYPE_CHECKING:
    from flows87.investigate.store.models import User


@click.group("export", epilog=EPILOG)
def export_group() -> None:
    """Export a case: goAML STR XML or CSV of its transactions."""


@export_group.command("goaml")
@db_option
@click.argument("case_id")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--settings",
    "settings_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reporting-entity settings YAML (default: $FLOWS87_GOAML_SETTINGS; required, see "
    "docs/goaml-export.md).",
)
@click.option(
    "--xsd",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The FIU's goAML XSD to validate against (default: the settings' schema, else "
    "$FLOWS87_GOAML_XSD).",
)
@click.option(
    "--no-validate",
    is_flag=True,
    help="Write the report without validating it (the audit log records that it was not).",
)
@click.option(
    "--as",
    "as_user",
    default=None,
    metavar="USERNAME",
    help="Export as this case-store user (a supervisor or admin may export any case). Without "
    "it, only a case closed as reported with a supervisor's approval.",
)
def export_goaml_cmd(
    db_url: str | None,
    case_id: str,
    out_file: Path,
    settings_file: Path | None,
    xsd: Path | None,
    no_validate: bool,
    as_user: str | None,
) -> None:
    """Write CASE_ID as a goAML STR report to --out, validated against the FIU's XSD.

    The export is written to the audit log (who, the report's sha256, the XSD, the settings)."""
    from flows87.investigate.export import export_goaml, load_goaml_settings
    from flows87.io import atomic_path

    settings = load_goaml_settings(settings_file)  # refused before anything else if unset
    store = open_store(db_url)
    with store.session() as s:
        actor: User | str = cli_actor() if as_user is None else store_user(s, as_user)
        xml, schema = export_goaml(
            s,
            case_id,
            settings=settings,
            xsd=xsd,
            validate=not no_validate,
            actor=actor,
        )
    with atomic_path(out_file) as tmp:
        tmp.write_bytes(xml)
    how = f"validated against {schema}" if schema else "NOT validated (--no-validate)"
    digest = hashlib.sha256(xml).hexdigest()
    out.print(f"goAML report of {case_id} written to {out_file} (sha256 {digest}), {how}")


def cli_actor() -> str:
    """The audit log's actor for a command run without --as: the operating-system user."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}"[:64]


def store_user(session: Any, username: str) -> User:
    from sqlalchemy import select

    from flows87.investigate.store.errors import NotFound
    from flows87.investigate.store.models import User

    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no active case-store user {username!r} (--as)")
    return user


@export_group.command("csv")
@db_option
@click.argument("case_id")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_csv_cmd(db_url: str | None, case_id: str, out_file: Path) -> None:
    """Write CASE_ID's transactions as CSV to --out."""
    from flows87.investigate.export import write_transactions_csv

    store = open_store(db_url)
    with store.session() as s:
        write_transactions_csv(s, case_id, out_file)
    out.print(f"transactions of {case_id} written to {out_file}")

"""`flows87 export`: a case as a goAML report or as CSV of its transactions."""

from __future__ import annotations

from pathlib import Path

import click

from flows87.cli.common import EPILOG, out
from flows87.cli.store_options import db_option, open_store


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

    store = open_store(db_url)
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

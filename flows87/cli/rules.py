"""The rule catalogue's commands: check the rules, list them, copy them out to edit.

rules lint, rules list, rules init.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EXIT_USER, err, out


@click.group("rules")
def rules_group() -> None:
    """Check, list and copy out the detection rules (one YAML file per rule)."""


@rules_group.command("lint")
@click.argument(
    "folder",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
def rules_lint(folder: Path | None) -> None:
    """Check every rule file in FOLDER (default: the bundled rules/); report every problem."""
    from flows87.pipeline.rules import lint

    good, errors = lint(folder)
    for e in errors:
        err.print(f"[red]✗[/] {escape(e.message)}", highlight=False, soft_wrap=True)
    out.print(f"{len(good)} rule file(s) ok, {len(errors)} with errors")
    if errors:
        raise click.exceptions.Exit(EXIT_USER)


@rules_group.command("list")
@click.argument(
    "folder",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
def rules_list(folder: Path | None, as_json: bool) -> None:
    """List the rules: id, scope, window, severity, family, typologies, title."""
    from flows87.pipeline.rules import load_rules

    loaded = load_rules(folder)
    if as_json:
        click.echo(json.dumps([r.rule.model_dump(mode="json") for r in loaded], indent=2))
        return
    table = Table(title=f"{len(loaded)} rules")
    for col in ("id", "scope", "window", "severity", "family", "typologies", "title"):
        table.add_column(col)
    for item in loaded:
        r = item.rule
        table.add_row(
            r.id,
            r.scope,
            r.window or r.pattern or "",
            r.severity,
            r.family,
            ", ".join(r.typologies),
            r.title,
        )
    out.print(table)


@rules_group.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Copy into a folder that is not empty (same-named files are replaced).",
)
def rules_init(folder: Path, force: bool) -> None:
    """Copy the bundled rules and their settings into FOLDER to edit; run with `--rules FOLDER`.

    FOLDER gets one YAML file per rule and settings/ (features, detectors, scoring). An existing
    folder that is not empty is refused unless --force.
    """
    from flows87 import catalogue
    from flows87.errors import Flows87Error

    try:
        files = catalogue.copy_rules(folder, force=force)
    except FileExistsError as exc:
        raise Flows87Error(
            "not an empty folder: the bundled rules were not copied",
            file=folder,
            hint="choose a new folder, or pass --force to replace the rule files in it",
        ) from exc
    settings = [f for f in files if f.parent != Path(".")]
    out.print(
        f"copied {len(files) - len(settings)} rules and {len(settings)} settings files "
        f"from {escape(str(catalogue.rules_dir()))} to {escape(str(folder))}"
    )
    out.print(
        "next: edit them, check them with "
        f"`flows87 rules lint {escape(str(folder))}`, then run with "
        f"`flows87 run SOURCE --out RUN --rules {escape(str(folder))}`",
        highlight=False,
        soft_wrap=True,
    )


COMMANDS: tuple[click.Command, ...] = (rules_group,)

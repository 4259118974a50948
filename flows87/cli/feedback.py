"""`flows87 feedback`: each rule's precision over time from investigators' dispositions, and a
suggested patch for a rule whose false positives cluster on one feature (docs/feedback.md)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EPILOG, out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


@click.command("feedback", epilog=EPILOG)
@click.argument(
    "run_dir",
    metavar="RUN",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Case store with investigators' dispositions (default: $FLOWS87_DB_URL, else $FLOWS87_HOME/cases.db).",
)
@click.option(
    "--period",
    type=click.Choice(["week", "month"]),
    default=None,
    help="Precision per ISO week or calendar month of the decision (default: rules/settings/feedback.yaml's, week).",
)
@click.option(
    "--rules",
    "rules_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rule catalogue the patches change (default: the one RUN used). Never rewritten.",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for feedback.json, feedback.md and patches/ (default: RUN/feedback).",
)
def feedback_cmd(
    run_dir: Path,
    db_url: str | None,
    period: str | None,
    rules_dir: Path | None,
    out_dir: Path | None,
) -> None:
    """Per rule: decided cases, reported, false positives and precision per week (or month) of
    decision with the trend; for a rule whose false positives cluster on one feature of RUN's
    decided hits, a suggested patch of its parameter's default (applied like `flows87 sweep`'s,
    with `git apply`) or the condition to add. Exit 2 without decided cases."""
    from flows87.research.feedback import feedback

    doc, paths = feedback(
        run_dir,
        out_dir,
        db_url=db_url,
        period=period,  # type: ignore[arg-type]
        rules_dir=rules_dir,
    )
    table = Table(title=f"precision by rule, per {doc['settings']['period']}")
    table.add_column("rule", no_wrap=True)
    for col in ("cases", "FP", "prec.", "last", "trend"):
        table.add_column(col, justify="right" if col != "trend" else "left")
    table.add_column("suggestion", overflow="fold")
    for sid, r in doc["rules"].items():
        sug = r.get("suggestion") or {}
        shown = (
            f"{sug['param'].split('.', 1)[1]}: {_num(sug['from'])} -> {_num(sug['to'])}"
            if sug.get("kind") == "parameter"
            else f"add {sug['condition']}"
            if sug
            else ""
        )
        table.add_row(
            escape(sid),
            str(r["decided_cases"]),
            str(r["false_positive"]),
            "" if r["precision"] is None else f"{r['precision']:.2f}",
            "" if r["last"] is None else f"{r['last']:.2f}",
            "-" if r["trend"] == "too few periods" else r["trend"],
            escape(shown),
        )
    out.print(table)
    for note in doc["notes"]:
        out.print(escape(note))
    patches = [p for k, p in paths.items() if k.startswith("patch:")]
    if patches:
        out.print(
            f"{len(patches)} patch(es) in {escape(str(patches[0].parent))}: review and apply from "
            f"{escape(doc['patch_root'])} with `git apply`"
        )
    out.print(f"report: {escape(str(paths['markdown']))} (and feedback.json)")


COMMANDS: tuple[click.Command, ...] = (feedback_cmd,)

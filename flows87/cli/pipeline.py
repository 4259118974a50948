"""The pipeline's commands: make or read data, run it, look at the result.

synth, demo, ingest, run, show, schema, detect, features. The rule catalogue's commands are in
`flows87.cli.rules`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from flows87.cli.common import EPILOG, format_choice, out, pct, progress, utc_date
from flows87.research.synth import MIN_ACCOUNTS, MIN_DAYS
from flows87.research.synth.shapes import SHAPES
from flows87.rundir import RunDir


@click.command(epilog=EPILOG)
@click.option(
    "--accounts",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=MIN_ACCOUNTS),
    help="Accounts in the bank's table, merchants and foreign counterparties included "
    "(transactions are about accounts x days).",
)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(min=MIN_DAYS),
    help="Length of the simulated period.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Random seed: the same seed gives the same data.",
)
@click.option(
    "--start",
    default="2026-01-01",
    show_default=True,
    help="First day of the simulated period (UTC).",
)
@click.option(
    "--suspicious-share",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0.0, 0.2),
    help="Share of accounts in injected schemes.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for transactions.parquet and accounts.parquet.",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--shape",
    type=click.Choice(SHAPES),
    help="Instead of the bank: a random background with one shape of real data imposed "
    "(flows87.research.synth.shapes, the shape benchmark's inputs, at its sizes: a hub of 200k, a "
    "chain of 100k hops, ...); --accounts and --suspicious-share do not apply.",
)
@click.option(
    "--transactions",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(min=1_000),
    help="With --shape: rows to generate.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["canonical", "goaml"]),
    default="canonical",
    show_default=True,
    help="canonical: the bank's two tables; goaml: what an FIU receives, the banks' goAML "
    "reports in OUT/<bank>/<report id>.xml with the truth apart in OUT/truth/.",
)
@click.option(
    "--noise",
    type=click.Choice(["none", "low", "default", "high"]),
    default="default",
    show_default=True,
    help="With --format goaml: how often banks and reports spell one party differently.",
)
@click.option(
    "--banks",
    type=click.IntRange(min=2, max=50),
    default=None,
    help="With --format goaml: spread the clients over this many reporting banks (default: the "
    "generator's domestic banks).",
)
@click.option(
    "--ctr-threshold",
    type=click.FloatRange(min=0.0, min_open=True),
    default=10_000.0,
    show_default=True,
    help="With --format goaml: cash at or over this (base currency) gets a CTR.",
)
@click.option("--zip", "zip_banks", is_flag=True, help="With --format goaml: one zip per bank.")
@click.option(
    "--split-schemes",
    "split",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="With --format goaml: share of the schemes' key persons (funnel holders, controllers, "
    "structurers, mule hubs) who spread their scheme over accounts at two or three banks.",
)
def synth(
    accounts: int,
    days: int,
    seed: int,
    start: str,
    suspicious_share: float,
    out_dir: Path,
    quiet: bool,
    shape: str | None,
    transactions: int,
    fmt: str,
    noise: str,
    banks: int | None,
    ctr_threshold: float,
    zip_banks: bool,
    split: float,
) -> None:
    """Generate a labelled synthetic bank population with trafficking and laundering schemes.

    Every transaction and account carries `is_suspicious`, `typology` and `scheme_id`. With
    --format goaml the same population (same seed, same people and money) is written as the
    goAML reports several banks would file with an FIU, labels kept apart in OUT/truth/.
    """
    from flows87.io import write_parquet
    from flows87.research.synth import generate

    try:
        start_day = date.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(
            f"{start!r} is not a date like 2026-01-01", param_hint="--start"
        ) from None
    if shape and fmt == "goaml":
        raise click.BadParameter("--shape writes canonical tables only", param_hint="--format")
    if shape:
        from flows87.research.synth import shapes

        made = shapes.generate_to(
            shape,
            out_dir,
            transactions=transactions,
            seed=seed,
            days=days,
            start=start_day,
        )
        out.print(
            f"wrote {made['transactions']:,} transactions ({made['suspicious_transactions']:,} "
            f"suspicious) and {made['accounts']:,} accounts of shape {shape} to {out_dir}"
        )
        return
    if fmt == "goaml":
        _synth_goaml(
            accounts, days, seed, start_day, suspicious_share, out_dir, quiet,
            noise=noise, banks=banks, ctr_threshold=ctr_threshold, zip_banks=zip_banks,
            split=split,
        )  # fmt: skip
        return
    with progress(not quiet) as update:
        data = generate(
            accounts,
            days,
            seed,
            start=start_day,
            suspicious_share=suspicious_share,
            progress=update,
        )
        update("writing Parquet", 1.0)
        folder = RunDir(out_dir)  # a canonical input folder: a run directory's first two files
        write_parquet(data.accounts, folder.accounts)
        write_parquet(data.transactions, folder.transactions)
    sus = data.transactions.filter(data.transactions["is_suspicious"])
    out.print(
        f"wrote {data.transactions.height:,} transactions ({sus.height:,} suspicious, "
        f"{sus['typology'].n_unique()} typologies) and {data.accounts.height:,} accounts to {out_dir}"
    )


def _synth_goaml(
    accounts: int,
    days: int,
    seed: int,
    start: date,
    suspicious_share: float,
    out_dir: Path,
    quiet: bool,
    *,
    noise: str,
    banks: int | None,
    ctr_threshold: float,
    zip_banks: bool,
    split: float = 0.5,
) -> None:
    """`synth --format goaml`: the population as the FIU receives it."""
    from flows87.research.synth import generate
    from flows87.research.synth.goaml import write_goaml
    from flows87.research.synth.goaml_select import Filing, rebank

    with progress(not quiet) as update:
        data = generate(
            accounts, days, seed, start=start, suspicious_share=suspicious_share
        )  # fmt: skip
        if banks:
            data = rebank(data, banks, seed)
        made = write_goaml(
            data,
            out_dir,
            seed=seed,
            noise=noise,
            zip_banks=zip_banks,
            filing=Filing(ctr_threshold=ctr_threshold),
            split=split,
            progress=update,
        )
    codes = ", ".join(f"{n:,} {code}" for code, n in sorted(made.by_code.items()))
    spelling = made.spelling
    out.print(
        f"wrote {made.reports:,} goAML reports ({codes}) from {made.banks} banks with "
        f"{made.transactions:,} transactions and {made.party_records:,} party records to "
        f"{out_dir}; {pct(spelling['share_all'])} of the {int(spelling['persons']):,} persons "
        f"named are spelled more than one way (noise {noise}); {made.split_persons} key persons "
        f"spread over banks; truth in {out_dir / 'truth'}"
    )


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `ingest` and `run`."""
    options = [
        click.argument("source", type=click.Path(exists=True, path_type=Path)),
        click.option(
            "--format",
            "fmt",
            default=None,
            type=format_choice(),
            help="Input format; detected from the header when omitted.",
        ),
        click.option(
            "--out",
            "out_dir",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Run directory to write.",
        ),
        click.option(
            "--start",
            default=None,
            callback=utc_date,
            help="Start of the run's data interval (UTC date); rows outside are quarantined.",
        ),
        click.option(
            "--end",
            default=None,
            callback=utc_date,
            help="End of the data interval, exclusive (UTC date).",
        ),
        click.option(
            "--base-currency",
            default="USD",
            show_default=True,
            help="Currency that amount_base is expressed in.",
        ),
        click.option(
            "--max-failed-fraction",
            default=0.01,
            show_default=True,
            type=click.FloatRange(0.0, 1.0),
            help="Stop the run when more than this share of rows fails a quality gate.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option("--quiet", is_flag=True, help="No progress display."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(
    fmt: str | None,
    start: datetime | None,
    end: datetime | None,
    base_currency: str,
    max_failed_fraction: float,
    **extra: Any,
) -> Any:
    from pydantic import ValidationError

    from flows87.pipeline.stages.config import RunConfig

    try:
        return RunConfig(
            format=fmt,
            interval_start=start,
            interval_end=end,
            base_currency=base_currency,
            max_failed_fraction=max_failed_fraction,
            **extra,
        )
    except ValidationError as exc:
        raise click.UsageError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


@click.command(epilog=EPILOG)
@_source_options
def ingest(
    source: Path,
    fmt: str | None,
    out_dir: Path,
    start: datetime | None,
    end: datetime | None,
    base_currency: str,
    max_failed_fraction: float,
    as_json: bool,
    quiet: bool,
) -> None:
    """Read SOURCE (a file or folder in any supported format), gate it, write canonical Parquet.

    Formats: canonical CSV/Parquet (a `flows87 synth` folder too), IBM AMLworld, AMLSim, PaySim,
    SAML-D. Rows that fail a check go to OUT/quarantine/ with the reason; the gate's results are
    in OUT/quality/.
    """
    from flows87.pipeline.run import ingest as run_ingest

    config = _config(fmt, start, end, base_currency, max_failed_fraction)
    with progress(not quiet) as update:
        summary = run_ingest(source, out_dir, config, progress=lambda step: update(step, None))
    _print_ingest(summary, as_json)


@click.command(epilog=EPILOG)
@_source_options
@click.option(
    "--rules",
    "rules_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of rule files (default: the bundled rules/).",
)
@click.option(
    "--alert-budget",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0.0001, 1.0),
    help="Share of accounts investigators can review; used for the report's metrics.",
)
@click.option(
    "--partitions",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Account-hash partitions the feature, rule, detector, graph and case-ranking steps run "
    "over, one after another as the DAG's mapped tasks do: the same results, in the memory of "
    "one partition (one is fastest; more for inputs whose graph stage needs more memory).",
)
def run(
    source: Path,
    fmt: str | None,
    out_dir: Path,
    start: datetime | None,
    end: datetime | None,
    base_currency: str,
    max_failed_fraction: float,
    as_json: bool,
    quiet: bool,
    rules_dir: Path | None,
    alert_budget: float,
    partitions: int,
) -> None:
    """Run the whole pipeline on SOURCE: ingest, gates, features, rules, detectors, graph, cases, report.

    OUT gets transactions.parquet, features.parquet, signals.parquet, accounts_scored.parquet,
    cases.parquet, report.html / report.md and run.json (see README, "The run directory").
    """
    from flows87.pipeline.run import run as run_pipeline

    extra: dict[str, Any] = {"alert_budget": alert_budget}
    if rules_dir is not None:
        extra["rules_dir"] = rules_dir
    config = _config(fmt, start, end, base_currency, max_failed_fraction, **extra)
    with progress(not quiet) as update:
        summary = run_pipeline(source, out_dir, config, progress=update, partitions=partitions)
    _print_run(out_dir, summary, as_json)


def _print_ingest(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=f"ingest summary ({summary['format']})", show_header=False)
    table.add_row("run directory", str(summary["run_dir"]))
    table.add_row("transactions kept", f"{summary['transactions']:,}")
    table.add_row("accounts kept", f"{summary['accounts']:,}")
    for name, n in summary["quarantined"].items():
        table.add_row(f"{name} quarantined", f"{n:,}")
    if summary["labelled"]:
        table.add_row("suspicious transactions", f"{summary['suspicious_transactions']:,}")
        for typ, n in summary["typologies"].items():
            table.add_row(f"  {typ}", f"{n:,}")
    for w in summary["warnings"]:
        table.add_row("warning", w)
    out.print(table)


def _print_run(run_dir: Path, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    _print_ingest(summary["ingest"], False)
    _print_cases(run_dir, summary["report"]["metrics"])


def _print_cases(run_dir: Path, metrics_all: dict[str, Any], top: int = 10) -> None:
    import polars as pl

    rundir = RunDir(run_dir)
    cases = pl.read_parquet(rundir.cases)
    table = Table(title=f"top cases ({cases.height} in all)")
    for col in ("rank", "case", "risk", "accounts", "typologies"):
        table.add_column(col)
    for r in cases.head(top).iter_rows(named=True):
        table.add_row(
            str(r["rank"]),
            r["case_id"],
            f"{r['risk_score']:.2f}",
            str(r["n_accounts"]),
            ", ".join(r["typologies"][:3]),
        )
    out.print(table)
    metrics = metrics_all.get("accounts")
    if metrics:
        typ = Table(title="detection quality against the labels")
        for col in (
            "typology",
            "accounts",
            "recall (in a case)",
            "recall at 1 % budget",
        ):
            typ.add_column(col)
        for t, v in metrics["typologies"].items():
            typ.add_row(t, str(v["accounts"]), pct(v["recall"]), pct(v["recall_at_1pct"]))
        out.print(typ)
        out.print(
            f"alert rate {pct(metrics['alert_rate'])}, precision {pct(metrics['precision'])}, "
            f"recall {pct(metrics['recall'])}; precision of the top 100 cases "
            f"{pct(metrics_all.get('cases', {}).get('precision_top_100'))}"
        )
    out.print(f"\nreport: {rundir.report_html} (and report.md)\ncases: {rundir.cases}")


@click.command("show", epilog=EPILOG)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1))
def show(run_dir: Path, top: int) -> None:
    """Print the top cases of RUN_DIR (a run directory or a published interval) and, when the
    input was labelled, recall per typology."""
    from flows87.errors import InputError
    from flows87.io import read_json

    rundir = RunDir(run_dir)
    if not rundir.cases.exists():
        raise InputError(f"no {rundir.cases.name}: not a finished run", file=run_dir)
    metrics = read_json(rundir.metrics) if rundir.metrics.exists() else {}
    _print_cases(run_dir, metrics, top)


@click.command(epilog=EPILOG)
@click.option(
    "--out",
    "out_dir",
    default=Path("demo"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo's data and run.",
)
@click.option(
    "--accounts",
    default=5_000,
    show_default=True,
    type=click.IntRange(min=MIN_ACCOUNTS),
)
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=MIN_DAYS))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def demo(out_dir: Path, accounts: int, days: int, seed: int, as_json: bool, quiet: bool) -> None:
    """Run the main job on generated demo data: synth, then the whole pipeline, then a summary."""
    from flows87.io import write_parquet
    from flows87.pipeline.run import run as run_pipeline
    from flows87.research.synth import generate

    data_dir, run_dir = out_dir / "data", out_dir / "run"
    with progress(not quiet) as update:
        data = generate(accounts, days, seed, progress=update)
        update("writing demo data", 1.0)
        write_parquet(data.accounts, RunDir(data_dir).accounts)
        write_parquet(data.transactions, RunDir(data_dir).transactions)
        summary = run_pipeline(data_dir, run_dir, progress=update)
    _print_run(run_dir, summary, as_json)
    if not as_json:
        out.print(f"demo data: {data_dir}")


@click.command("schema")
def schema_cmd() -> None:
    """Print the canonical tables (columns, types, meaning) as Markdown."""
    from flows87.schema import describe

    click.echo(describe())


@click.command("detect")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def detect(source: Path) -> None:
    """Print the format flows87 detects for SOURCE."""
    from flows87.pipeline.ingest import detect_format

    click.echo(detect_format(source))


@click.group("features")
def features_group() -> None:
    """The account features rules and detectors read."""


@features_group.command("list")
def features_list() -> None:
    """Every feature with its unit, meaning and the optional columns it needs (Markdown)."""
    from flows87.pipeline.features import as_markdown

    click.echo(as_markdown())


COMMANDS: tuple[click.Command, ...] = (
    synth,
    demo,
    ingest,
    run,
    show,
    schema_cmd,
    detect,
    features_group,
)

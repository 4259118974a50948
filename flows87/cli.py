"""The `flows87` command.

Exit codes scripts can trust: 0 success, 1 internal error (a bug: please report the traceback),
2 bad input, usage or configuration (the message says file, row, column and why),
3 a quality gate stopped the run (the message says where the report and quarantine are),
130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows87 import __version__
from flows87.errors import Flows87Error
from flows87.research.synth import MIN_ACCOUNTS, MIN_DAYS
from flows87.research.synth.shapes import SHAPES

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

err = Console(stderr=True)
out = Console()

EPILOG = (
    "Exit codes: 0 ok, 1 internal error, 2 bad input or usage, "
    "3 a quality gate stopped the run, 130 interrupted."
)


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[str, float | None], None]]:
    """A progress display on stderr; yields `update(step, fraction_or_None)`."""
    if not enabled:
        yield lambda step, fraction=None: None
        return
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(step: str, fraction: float | None = None) -> None:
            bar.update(task, description=step, completed=fraction if fraction is not None else 0)

        yield update


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31") from None


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flows87")
def cli() -> None:
    """flows87: find money flows linked to human trafficking, forced labour and laundering.

    Typical use: `flows87 synth --out data/` makes labelled demo data; `flows87 ingest data/
    --out run/` reads it (or a public dataset: AMLworld, AMLSim, PaySim, SAML-D), checks its
    quality and writes canonical Parquet with a quarantine of rejected rows.
    """


@cli.command(epilog=EPILOG)
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
) -> None:
    """Generate a labelled synthetic bank population with trafficking and laundering schemes.

    Every transaction and account carries `is_suspicious`, `typology` and `scheme_id`.
    """
    from flows87.io import write_parquet
    from flows87.research.synth import generate

    try:
        start_day = date.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(
            f"{start!r} is not a date like 2026-01-01", param_hint="--start"
        ) from None
    if shape:
        from flows87.research.synth import shapes

        made = shapes.generate_to(
            shape, out_dir, transactions=transactions, seed=seed, days=days, start=start_day
        )
        out.print(
            f"wrote {made['transactions']:,} transactions ({made['suspicious_transactions']:,} "
            f"suspicious) and {made['accounts']:,} accounts of shape {shape} to {out_dir}"
        )
        return
    with _progress(not quiet) as update:
        data = generate(
            accounts,
            days,
            seed,
            start=start_day,
            suspicious_share=suspicious_share,
            progress=update,
        )
        update("writing Parquet", 1.0)
        write_parquet(data.accounts, out_dir / "accounts.parquet")
        write_parquet(data.transactions, out_dir / "transactions.parquet")
    sus = data.transactions.filter(data.transactions["is_suspicious"])
    out.print(
        f"wrote {data.transactions.height:,} transactions ({sus.height:,} suspicious, "
        f"{sus['typology'].n_unique()} typologies) and {data.accounts.height:,} accounts to {out_dir}"
    )


def _format_choice() -> click.Choice:
    from flows87.pipeline.ingest import FORMATS

    return click.Choice(list(FORMATS))


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `ingest` and `run`."""
    options = [
        click.argument("source", type=click.Path(exists=True, path_type=Path)),
        click.option(
            "--format",
            "fmt",
            default=None,
            type=_format_choice(),
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
            callback=_date,
            help="Start of the run's data interval (UTC date); rows outside are quarantined.",
        ),
        click.option(
            "--end",
            default=None,
            callback=_date,
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


@cli.command(epilog=EPILOG)
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
    with _progress(not quiet) as update:
        summary = run_ingest(source, out_dir, config, progress=lambda step: update(step, None))
    _print_ingest(summary, as_json)


@cli.command(epilog=EPILOG)
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
    with _progress(not quiet) as update:
        summary = run_pipeline(source, out_dir, config, progress=update)
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

    cases = pl.read_parquet(run_dir / "cases.parquet")
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
        for col in ("typology", "accounts", "recall (in a case)", "recall at 1 % budget"):
            typ.add_column(col)
        for t, v in metrics["typologies"].items():
            typ.add_row(t, str(v["accounts"]), _pct(v["recall"]), _pct(v["recall_at_1pct"]))
        out.print(typ)
        out.print(
            f"alert rate {_pct(metrics['alert_rate'])}, precision {_pct(metrics['precision'])}, "
            f"recall {_pct(metrics['recall'])}; precision of the top 100 cases "
            f"{_pct(metrics_all.get('cases', {}).get('precision_top_100'))}"
        )
    out.print(
        f"\nreport: {run_dir / 'report.html'} (and report.md)\ncases: {run_dir / 'cases.parquet'}"
    )


@cli.command("show", epilog=EPILOG)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1))
def show(run_dir: Path, top: int) -> None:
    """Print the top cases of RUN_DIR (a run directory or a published interval) and, when the
    input was labelled, recall per typology."""
    from flows87.errors import InputError
    from flows87.io import read_json

    if not (run_dir / "cases.parquet").exists():
        raise InputError("no cases.parquet: not a finished run", file=run_dir)
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    _print_cases(run_dir, metrics, top)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


@cli.command(epilog=EPILOG)
@click.option(
    "--out",
    "out_dir",
    default=Path("demo"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo's data and run.",
)
@click.option("--accounts", default=5_000, show_default=True, type=click.IntRange(min=MIN_ACCOUNTS))
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
    with _progress(not quiet) as update:
        data = generate(accounts, days, seed, progress=update)
        update("writing demo data", 1.0)
        write_parquet(data.accounts, data_dir / "accounts.parquet")
        write_parquet(data.transactions, data_dir / "transactions.parquet")
        summary = run_pipeline(data_dir, run_dir, progress=update)
    _print_run(run_dir, summary, as_json)
    if not as_json:
        out.print(f"demo data: {data_dir}")


@cli.command("schema")
def schema_cmd() -> None:
    """Print the canonical tables (columns, types, meaning) as Markdown."""
    from flows87.schema import describe

    click.echo(describe())


@cli.command("detect")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def detect(source: Path) -> None:
    """Print the format flows87 detects for SOURCE."""
    from flows87.pipeline.ingest import detect_format

    click.echo(detect_format(source))


@cli.group("rules")
def rules_group() -> None:
    """Check and list the detection rules (one YAML file per rule)."""


@rules_group.command("lint")
@click.argument(
    "folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
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
    "folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
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


@cli.group("features")
def features_group() -> None:
    """The account features rules and detectors read."""


@features_group.command("list")
def features_list() -> None:
    """Every feature with its unit, meaning and the optional columns it needs (Markdown)."""
    from flows87.pipeline.features import as_markdown

    click.echo(as_markdown())


# --- the case store (issue 5): store, users, audit, export ---------------------------------

EXIT_AUDIT_BROKEN = 4

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


@cli.group("store", epilog=EPILOG)
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


@cli.group("users", epilog=EPILOG)
def users_group() -> None:
    """Users of the case app (investigator, supervisor, admin)."""


@users_group.command("add")
@_db_option
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["investigator", "supervisor", "admin"]))
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
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


@cli.group("audit", epilog=EPILOG + " `audit verify`: 4 when the chain is broken.")
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


@cli.group("export", epilog=EPILOG)
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
            s, case_id, settings=settings, xsd=xsd, validate=not no_validate, actor="cli"
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


@cli.command("serve", epilog=EPILOG)
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


# --- evaluate (issue 6): metrics of a run against labels and dispositions -------------------


class _FloatsOption(click.Option):
    """An option taking one or more numbers: `--budgets 0.005 0.01 0.02` (also "0.01,0.02")."""

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)
            if opt is None:
                continue
            original = opt.process

            def process(value: Any, state: Any, original: Any = original) -> None:
                values = [value]
                while state.rargs and state.rargs[0].replace(".", "", 1).rstrip("%").isdigit():
                    values.append(state.rargs.pop(0))
                original(" ".join(values), state)

            opt.process = process


@cli.command("evaluate", epilog=EPILOG)
@click.argument(
    "run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for evaluation.json/.md/.html and the plots (default: RUN/evaluation).",
)
@click.option(
    "--budgets",
    cls=_FloatsOption,
    default=None,
    metavar="SHARE...",
    help="Alert budgets as shares of accounts (default: 0.005 0.01 0.02).",
)
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Case store with investigators' dispositions (default: $FLOWS87_DB_URL, else $FLOWS87_HOME/cases.db; skipped when absent).",
)
@click.option("--no-plots", is_flag=True, help="Write JSON and text only.")
@click.option("--json", "as_json", is_flag=True, help="Print the headline numbers as JSON.")
def evaluate_cmd(
    run_dir: Path,
    out_dir: Path | None,
    budgets: str | None,
    db_url: str | None,
    no_plots: bool,
    as_json: bool,
) -> None:
    """Metrics of RUN against its labels (is_suspicious, typology) and investigators'
    dispositions: precision, recall, F1, PR-AUC, precision@k, recall at alert budgets, per
    typology, rule and detector, rule overlap, alerts per day. Exit 2 when RUN has no labels and
    there are no dispositions."""
    from flows87.research.evaluate.evaluation import evaluate, headline, parse_budgets

    result = evaluate(run_dir, out_dir, parse_budgets(budgets), db_url=db_url, plots=not no_plots)
    head = headline(result)
    if as_json:
        click.echo(json.dumps(head, indent=2, default=str))
        return
    table = Table(title="evaluation", show_header=False)
    for key, value in head.items():
        if key in ("run_dir", "report"):
            continue
        shown = (
            ", ".join(f"{k}: {v}" for k, v in value.items())
            if isinstance(value, dict)
            else str(value)
        )
        table.add_row(key.replace("_", " "), shown)
    out.print(table)
    out.print(f"report: {result['files']['html']} (and evaluation.md, evaluation.json)")


@cli.command("sweep", epilog=EPILOG)
@click.argument(
    "run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--rules",
    "rules_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rule catalogue whose defaults and ranges to sweep (default: the one RUN used). Never rewritten.",
)
@click.option(
    "--grid",
    "use_grid",
    is_flag=True,
    help="A grid over --levels values of each parameter's range (the default); the full grid when it has at most --max-settings points, else one parameter at a time.",
)
@click.option(
    "--random",
    "random_n",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="N seeded random draws within the ranges instead of a grid.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the random draws.",
)
@click.option(
    "--params",
    "params",
    multiple=True,
    metavar="RULE.PARAM",
    help="Parameters to sweep (repeat, or comma-separated): rule_id.param, rule_id (all of its parameters), detectors.contamination, scoring.min_risk, scoring.min_families, ... (default: every rule parameter and detectors.contamination).",
)
@click.option(
    "--levels",
    type=click.IntRange(min=2, max=20),
    default=3,
    show_default=True,
    help="Grid values per parameter range (ends included).",
)
@click.option(
    "--vary",
    type=click.IntRange(min=1),
    default=None,
    help="Parameters changed per random draw (default: all of --params, or 3 when none are named).",
)
@click.option(
    "--max-settings",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Largest full grid; a larger one is swept one parameter at a time.",
)
@click.option(
    "--max-alert-rate",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.02,
    show_default=True,
    help="Alert budget: the chosen setting has the best recall with at most this share of accounts in cases.",
)
@click.option(
    "--population",
    type=click.Choice(["all", "active"]),
    default="all",
    show_default=True,
    help="Accounts measured: all of the run's, or those with a transaction in it.",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for sweep.json/.md, pareto.png and chosen.patch (default: RUN/sweep).",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
def sweep_cmd(
    run_dir: Path,
    rules_dir: Path | None,
    use_grid: bool,
    random_n: int | None,
    seed: int,
    params: tuple[str, ...],
    levels: int,
    vary: int | None,
    max_settings: int,
    max_alert_rate: float,
    population: str,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Search rule parameters (within the ranges of the rule files) and detector settings on
    RUN's computed features, transactions and signals: per setting only the changed rules run
    again, then scoring and cases. Reports the Pareto front of alert volume vs recall and writes
    the best recall within the alert budget as a patch of the rule files' defaults."""
    from flows87.research.sweep import sweep

    if use_grid and random_n:
        raise click.UsageError("give --grid or --random N, not both")
    out_dir = out_dir or run_dir / "sweep"
    with _progress(not quiet) as update:
        result = sweep(
            run_dir,
            rules_dir=rules_dir,
            out=out_dir,
            params=list(params) or None,
            grid_levels=levels,
            random_n=random_n,
            seed=seed,
            vary=vary,
            max_settings=max_settings,
            max_alert_rate=max_alert_rate,
            population=population,
            progress=lambda i, n: update(f"setting {i}/{n}", i / n),
        )
    doc = result.doc
    table = Table(title=f"Pareto front ({len(doc['settings'])} settings, {doc['mode']})")
    for col in ("#", "alert rate", "recall", "precision", "setting"):
        table.add_column(col)
    for i in doc["pareto"]:
        s = doc["settings"][i]
        m = s["metrics"]
        setting = ", ".join(f"{k}={v}" for k, v in sorted(s["setting"].items())) or "(defaults)"
        table.add_row(
            f"{i}{' *' if i == doc['chosen'] else ''}",
            f"{m['alert_rate']:.4f}",
            f"{m['recall']:.4f}",
            str(m["precision"]),
            escape(setting),
        )
    out.print(table)
    t = doc["timing"]
    full = f"{t['full_run_seconds']} s" if t["full_run_seconds"] else "unknown"
    out.print(
        f"time: {t['mean_seconds_per_setting']} s per setting ({t['sweep_seconds']} s for {len(doc['settings'])}, setup {t['setup_seconds']} s); one full run: {full}"
    )
    if doc["chosen"] is None:
        out.print(f"no setting keeps the alert rate within {max_alert_rate:.2%}: no patch written")
    elif not doc["settings"][doc["chosen"]]["setting"]:
        out.print("the defaults are the best within the alert budget: no patch written")
    else:
        out.print(
            f"chosen: setting {doc['chosen']}; review {escape(str(result.paths['patch']))} and apply it from {escape(doc['patch_root'])} with `git apply`"
        )
    out.print(f"report: {escape(str(result.paths['markdown']))} (and sweep.json, pareto.png)")


@cli.command("bench", epilog=EPILOG)
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    default=None,
    type=_format_choice(),
    help="Input format (default: detected).",
)
@click.option(
    "--split",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=0.7,
    show_default=True,
    help="Where to cut the time range (share of it): the report period is after the cut, the tuning period before it.",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="Alert budget as a share of the report period's active accounts.",
)
@click.option(
    "--gfp",
    is_flag=True,
    help="Add IBM's Graph Feature Preprocessor + IForest baseline (needs snapml: bash benchmarks/run.sh).",
)
@click.option(
    "--gfp-patterns",
    default=None,
    metavar="LIST",
    help="What GFP computes, comma-separated: fan, degree, scatter-gather, temp-cycle, lc-cycle, vertex-stats (or default, all). Default: fan,degree,scatter-gather,vertex-stats (temporal cycles grow much faster than the number of transactions over spans of several days). Recorded in bench.json/.md.",
)
@click.option(
    "--gfp-timeout",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Stop the GFP baseline after this long and report it as not finished (default: no limit).",
)
@click.option(
    "--tune-on",
    type=click.Choice(["report-length", "all"]),
    default="report-length",
    show_default=True,
    help="Tuning period: as long as the report period, just before it (risk scores depend on the window's length), or all of the input before the report period.",
)
@click.option(
    "--rules",
    "rules_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rule catalogue (default: rules/).",
)
@click.option(
    "--sweep",
    "sweep_n",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random settings of a rule sweep on the tuning period (0: tune the score threshold only).",
)
@click.option(
    "--sweep-params",
    multiple=True,
    metavar="RULE.PARAM",
    help="Parameters of the tuning sweep (as `flows87 sweep --params`).",
)
@click.option(
    "--sweep-alert-rate",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.02,
    show_default=True,
    help="Alert budget of the tuning sweep (share of accounts in cases).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for bench.json/.md and the two run directories.",
)
def bench_cmd(
    source: Path,
    fmt: str | None,
    split: float,
    budget: float,
    gfp: bool,
    gfp_patterns: str | None,
    gfp_timeout: float | None,
    tune_on: str,
    rules_dir: Path | None,
    sweep_n: int,
    sweep_params: tuple[str, ...],
    sweep_alert_rate: float,
    seed: int,
    out_dir: Path,
) -> None:
    """Benchmark on a labelled INPUT with a time split: report detection (recall and precision
    at the budget, PR-AUC, top cases) and throughput per stage on the part after the cut, tuned
    on the period of the same length before it (--tune-on all: everything before it); with
    --gfp, side by side with a GFP + IForest baseline."""
    from flows87.research.bench import bench, table

    doc = bench(
        source,
        out_dir,
        fmt=fmt,
        split=split,
        budget=budget,
        gfp=gfp,
        gfp_patterns=gfp_patterns,
        gfp_timeout=gfp_timeout,
        tune_on=tune_on,
        rules_dir=rules_dir,
        sweep_n=sweep_n,
        sweep_params=list(sweep_params) or None,
        sweep_alert_rate=sweep_alert_rate,
        seed=seed,
        say=lambda m: err.print(escape(m)),
    )
    click.echo(table(doc))
    out.print(f"report: {escape(str(out_dir / 'bench.md'))} (and bench.json)")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn user errors into a message and an exit code, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="flows87", standalone_mode=False)
        if isinstance(rv, int):  # click returns an Exit's code in non-standalone mode
            return rv
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USER
    except click.exceptions.Abort:
        err.print("aborted")
        return EXIT_INTERRUPTED
    except Flows87Error as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""The researchers' commands: measure a run, tune the rules, benchmark on labelled data.

evaluate, sweep, bench.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from flows87.cli.common import EPILOG, err, format_choice, out, progress


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


@click.command("evaluate", epilog=EPILOG)
@click.argument(
    "run_dir",
    metavar="RUN",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
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
@click.option(
    "--learning",
    is_flag=True,
    help="Add the learned scorer beside today's ranking: PR-AUC and precision at 1% of today's risk, the model's score and their blend, with the label counts the model was trained on (evaluation.json 'learning', evaluation.md).",
)
def evaluate_cmd(
    run_dir: Path,
    out_dir: Path | None,
    budgets: str | None,
    db_url: str | None,
    no_plots: bool,
    as_json: bool,
    learning: bool,
) -> None:
    """Metrics of RUN against its labels (is_suspicious, typology) and investigators'
    dispositions: precision, recall, F1, PR-AUC, precision@k, recall at alert budgets, per
    typology, rule and detector, rule overlap, alerts per day. Exit 2 when RUN has no labels and
    there are no dispositions."""
    from flows87.research.evaluate.evaluation import evaluate, headline, parse_budgets

    result = evaluate(run_dir, out_dir, parse_budgets(budgets), db_url=db_url, plots=not no_plots)
    head = headline(result)
    if learning:
        head["learning"] = _learning_side(run_dir, result)
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


def _learning_side(run_dir: Path, result: dict) -> dict:
    """today / learned / blend of the run, added to evaluation.json and evaluation.md."""
    from flows87.research.learning.side import markdown, side_by_side

    side = side_by_side(run_dir, 0.01)
    files = result.get("files") or {}
    if files.get("json"):
        path = Path(files["json"])
        path.write_text(json.dumps({**json.loads(path.read_text()), "learning": side}, indent=2))
    if files.get("markdown"):
        path = Path(files["markdown"])
        path.write_text(path.read_text().rstrip("\n") + "\n\n" + markdown(side))
    return side


@click.command("sweep", epilog=EPILOG)
@click.argument(
    "run_dir",
    metavar="RUN",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
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
    with progress(not quiet) as update:
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


@click.command("bench", epilog=EPILOG)
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    default=None,
    type=format_choice(),
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
@click.option(
    "--learning",
    is_flag=True,
    help="Add the learned scorer's learning curve: trained after 10, 50, 200, 1000 of the tuning run's cases and on all its labels (both methods), today / learned / blend on the report period, with the label counts; with --gfp, GFP + XGBoost on the same labels. In bench.json 'learning' and bench.md.",
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
    learning: bool,
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
        learning=learning,
        say=lambda m: err.print(escape(m)),
    )
    click.echo(table(doc))
    if learning:
        from flows87.research.learning import table as learning_table

        click.echo(learning_table(doc["learning"]))
    out.print(f"report: {escape(str(out_dir / 'bench.md'))} (and bench.json)")


COMMANDS: tuple[click.Command, ...] = (evaluate_cmd, sweep_cmd, bench_cmd)

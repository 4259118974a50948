"""`flows87 evaluate`: a run directory in, evaluation.json / .md / .html and PNG plots out.

`evaluate_run` reads a finished run directory (accounts_scored, signals, cases and, for the
transaction level, transactions) and returns the metrics as one JSON-ready dict;
`write_evaluation` writes it with its plots; `evaluate` does both. The metric functions are in
ranking, contrib, transactions, volume and dispositions (pure functions of polars frames).

Definitions (the same as the run report's): an account is *alerted* when it is in a case,
*signalled* when any rule, detector or graph pattern flagged it; ranking metrics (PR-AUC,
precision@k, recall at budget) order all accounts by risk_score.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.research.evaluate.contrib import contributions, overlap, overlap_matrix
from flows87.research.evaluate.dispositions import disposition_metrics, load_dispositions
from flows87.research.evaluate.metrics import case_metrics, number
from flows87.research.evaluate.ranking import (
    DEFAULT_BUDGETS,
    DEFAULT_KS,
    average_precision,
    budget_key,
    classification_metrics,
    pr_curve,
    ranking_metrics,
    score_comparison,
    top_k_hits,
)
from flows87.research.evaluate.transactions import transaction_metrics
from flows87.research.evaluate.volume import alerts_per_day, volume_summary
from flows87.rundir import RunDir

LABEL = "is_suspicious"
CURVE_POINTS = 200
# recall-vs-budget curve: 0.1 % to 10 % of accounts
BUDGET_GRID: tuple[float, ...] = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
)


def _read(path: Path, required: bool = False) -> pl.DataFrame | None:
    if not path.exists():
        if required:
            raise InputError(
                f"{path.name} is missing: not a finished run directory",
                file=path.parent,
                hint="evaluate the output folder of `flows87 run` (or a daily run's directory)",
            )
        return None
    return pl.read_parquet(path)


def _read_transactions(run: RunDir) -> pl.DataFrame | None:
    """The columns of transactions.parquet the evaluation needs (ids, time, accounts, labels)."""
    path = run.transactions
    if not path.exists():
        return None
    wanted = ("txn_id", "ts", "src_account", "dst_account", LABEL, "typology")
    have = pl.read_parquet_schema(path)
    return pl.read_parquet(path, columns=[c for c in wanted if c in have])


def _frame_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def account_level(
    scored: pl.DataFrame,
    signals: pl.DataFrame | None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, Any]:
    """Account-level metrics of a labelled accounts_scored frame: alerted (in a case) and
    signalled (any signal) precision/recall/F1, ranking metrics of risk_score, the PR curve and
    recall over a grid of budgets (for plots)."""
    signalled = (
        signals.select("account_id").unique()
        if signals is not None
        else pl.DataFrame(schema={"account_id": pl.String})
    )
    frame = scored.with_columns(
        pl.col("account_id").is_in(signalled["account_id"].implode()).alias("_signalled")
    )
    in_case = pl.col("case_id").is_not_null() if "case_id" in frame.columns else pl.lit(False)
    curve = pr_curve(frame[LABEL], frame["risk_score"], CURVE_POINTS)
    grid_k = {b: max(1, int(round(frame.height * b))) for b in BUDGET_GRID}
    hits = top_k_hits(frame, list(grid_k.values()))
    pos = int(frame[LABEL].fill_null(False).sum())
    return {
        "alerted": classification_metrics(frame, in_case, LABEL),
        "signalled": classification_metrics(frame, "_signalled", LABEL),
        **ranking_metrics(frame, LABEL, "risk_score", "account_id", budgets, ks),
        "pr_curve": {c: [round(float(v), 5) for v in curve[c]] for c in ("recall", "precision")},
        "recall_vs_budget": {
            "budget": list(BUDGET_GRID),
            "recall": [round(hits[k] / pos, 4) if pos else None for k in grid_k.values()],
        },
    }


def typology_level(
    scored: pl.DataFrame,
    signals: pl.DataFrame | None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
) -> dict[str, Any]:
    """Per typology: suspicious accounts, recall in a case and by any signal, recall at each
    budget (top accounts of all by risk_score) and average precision of risk_score for that
    typology's accounts against the unlabelled accounts (other typologies left out)."""
    if "typology" not in scored.columns:
        return {}
    signalled = (
        signals["account_id"].unique().implode()
        if signals is not None
        else pl.Series([], dtype=pl.String).implode()
    )
    ranked = scored.sort(["risk_score", "account_id"], descending=[True, False]).with_columns(
        pl.int_range(1, scored.height + 1).alias("_rank"),
        pl.col("account_id").is_in(signalled).alias("_signalled"),
    )
    n = ranked.height
    ks = {budget_key(b): max(1, int(round(n * b))) for b in budgets}
    sus = pl.col(LABEL).fill_null(False)
    per = (
        ranked.filter(sus)
        .group_by("typology")
        .agg(
            pl.len().alias("accounts"),
            pl.col("case_id").is_not_null().sum().alias("in_case"),
            pl.col("_signalled").sum().alias("signalled"),
            *[(pl.col("_rank") <= k).sum().alias(f"top_{key}") for key, k in ks.items()],
        )
        .sort("typology")
    )
    negatives = ranked.filter(~sus)
    out: dict[str, Any] = {}
    for r in per.iter_rows(named=True):
        typ = r["typology"]
        mine = ranked.filter(sus & (pl.col("typology") == typ))
        both = pl.concat([mine.select(LABEL, "risk_score"), negatives.select(LABEL, "risk_score")])
        a = int(r["accounts"])
        out[str(typ)] = {
            "accounts": a,
            "recall": round(r["in_case"] / a, 4),
            "recall_signalled": round(r["signalled"] / a, 4),
            "recall_at_budget": {key: round(r[f"top_{key}"] / a, 4) for key in ks},
            "average_precision": average_precision(both[LABEL], both["risk_score"]),
        }
    return out


def _score_comparison(
    run: RunDir, scored: pl.DataFrame, budgets: Sequence[float]
) -> list[dict[str, Any]]:
    """risk_score, signal_risk and every anomaly detector's score alone, as rankings."""
    frame = scored
    path = run.anomaly_scores
    if path.exists():
        anomaly = pl.read_parquet(path)
        extra = [c for c in anomaly.columns if c != "account_id" and c not in frame.columns]
        if extra:
            frame = frame.join(anomaly.select("account_id", *extra), on="account_id", how="left")
    numeric: list[str] = [
        c
        for c in ("risk_score", "signal_risk", "anomaly_score")
        if c in frame.columns and frame[c].dtype.is_numeric()
    ]
    numeric += sorted(
        c for c in frame.columns if c.startswith("rank_") and frame[c].dtype.is_numeric()
    )
    return score_comparison(frame, numeric, LABEL, "account_id", budgets)


def evaluate_run(
    run_dir: str | Path,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    ks: Sequence[int] = DEFAULT_KS,
    db_url: str | None = None,
    dispositions: pl.DataFrame | None = None,
    use_store: bool = True,
) -> dict[str, Any]:
    """All the metrics of one run directory as a JSON-ready dict (see the module docstring).

    Dispositions come from `dispositions` if given, else from the case store at `db_url`
    (default: $FLOWS87_DB_URL, else cases.db in FLOWS87_HOME), skipped silently when there is
    no store or no decided case (or `use_store` is False). Raises InputError (exit 2) when the
    run has neither labels nor dispositions.
    """
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    if not run_dir.is_dir():
        raise InputError("no such run directory", file=run_dir)
    scored = _read(run.accounts_scored, required=True)
    assert scored is not None
    signals = _read(run.signals)
    cases = _read(run.cases)
    budgets = tuple(sorted(set(budgets)))
    tx = _read_transactions(run)
    if dispositions is None and use_store:
        dispositions = load_dispositions(db_url)
    labelled = LABEL in scored.columns
    if not labelled and (dispositions is None or dispositions.is_empty()):
        raise InputError(
            "the run has no labels (accounts_scored.parquet has no is_suspicious column) and "
            "the case store has no dispositions: nothing to evaluate against",
            file=run_dir,
            hint="run on labelled data (flows87 synth, or a public dataset with labels), or "
            "point --db at a case store where investigators closed cases",
        )
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "budgets": [budget_key(b) for b in budgets],
        "labelled": labelled,
        "accounts": scored.height,
        "signals": signals.height if signals is not None else 0,
        "cases": cases.height if cases is not None else 0,
    }
    if labelled:
        result["account_level"] = account_level(scored, signals, budgets, ks)
        result["typologies"] = typology_level(scored, signals, budgets)
        result["scores"] = _score_comparison(run, scored, budgets)
        if cases is not None:
            case_level = case_metrics(cases, scored)
            if not cases.is_empty():
                with_label = (
                    cases.select("case_id", pl.col("accounts").alias("account_id"))
                    .explode("account_id")
                    .join(scored.select("account_id", LABEL), on="account_id", how="left")
                    .group_by("case_id")
                    .agg(pl.col(LABEL).fill_null(False).any().alias("_any"))
                )
                share = number(with_label["_any"].mean(), "cases with a suspicious account")
                case_level["precision_any_suspicious"] = round(float(share), 4)
            result["case_level"] = case_level
        if tx is not None and LABEL in tx.columns:
            result["transaction_level"] = transaction_metrics(
                tx, signals, cases, scored, budgets, ks
            )
        if signals is not None and not signals.is_empty():
            labels = scored.select("account_id", LABEL)
            result["signals_contribution"] = _frame_records(contributions(signals, labels))
            result["sources_contribution"] = _frame_records(
                contributions(signals, labels, by=("source",))
            )
    if signals is not None and not signals.is_empty():
        pairs = overlap(signals)
        names, matrix = overlap_matrix(pairs)
        result["rule_overlap"] = {
            "signals": names,
            "accounts": pairs.filter(pl.col("a") == pl.col("b")).sort("a")["a_accounts"].to_list(),
            "jaccard": [list(row) for row in matrix],
            "top_pairs": _frame_records(
                pairs.filter((pl.col("a") < pl.col("b")) & (pl.col("shared") > 0))
                .sort(["jaccard", "shared", "a", "b"], descending=[True, True, False, False])
                .head(20)
            ),
        }
    per_day = alerts_per_day(signals, cases, tx)
    result["alert_volume"] = {
        **volume_summary(per_day, signals, tx),
        "per_day": _frame_records(per_day),
    }
    if dispositions is not None and not dispositions.is_empty():
        result["dispositions"] = disposition_metrics(dispositions, scored, cases)
    return result


def evaluate(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    db_url: str | None = None,
    plots: bool = True,
    use_store: bool = True,
) -> dict[str, Any]:
    """Evaluate a run directory and write evaluation.json, .md, .html and the PNG plots to
    `out_dir` (default RUN/evaluation/). Returns the metrics with a "files" entry."""
    from flows87.research.evaluate.render import write_evaluation

    run_dir = Path(run_dir)
    result = evaluate_run(run_dir, budgets, db_url=db_url, use_store=use_store)
    out = Path(out_dir) if out_dir is not None else RunDir(run_dir).evaluation
    result["files"] = write_evaluation(result, out, plots=plots)
    return result


def parse_budgets(values: Sequence[str | float] | str | None) -> tuple[float, ...]:
    """Alert budgets from the command line or a DAG param: numbers or strings such as "0.01",
    "1%" or "0.005,0.01 0.02"; each a share of accounts in (0, 1]. Empty gives the defaults."""
    if values is None:
        return DEFAULT_BUDGETS
    items = [values] if isinstance(values, (str, int, float)) else list(values)
    out: list[float] = []
    for item in items:
        for token in str(item).replace(",", " ").split():
            try:
                b = float(token.rstrip("%")) / (100 if token.endswith("%") else 1)
            except ValueError:
                raise InputError(
                    f"alert budget {token!r} is not a number",
                    field="budgets",
                    hint="shares of accounts, e.g. 0.005 0.01 0.02 (or 1%)",
                ) from None
            if not 0 < b <= 1:
                raise InputError(
                    f"alert budget {token!r} is not in (0, 1]",
                    field="budgets",
                    hint="shares of accounts, e.g. 0.01 for 1 %",
                ) from None
            out.append(b)
    return tuple(sorted(set(out))) or DEFAULT_BUDGETS


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers worth a log line or an XCom: PR-AUC, alerted precision/recall/F1,
    recall at each budget, transaction-level PR-AUC and recall, disposition precision."""
    acc = result.get("account_level") or {}
    tx = result.get("transaction_level") or {}
    disp = result.get("dispositions") or {}
    out: dict[str, Any] = {"run_dir": result.get("run_dir"), "labelled": result.get("labelled")}
    if acc:
        out |= {
            "pr_auc": acc["average_precision"],
            "precision": acc["alerted"]["precision"],
            "recall": acc["alerted"]["recall"],
            "f1": acc["alerted"]["f1"],
            "recall_at_budget": acc["recall_at_budget"],
        }
    if tx:
        out |= {
            "transaction_pr_auc": tx["ranking"]["average_precision"],
            "transaction_recall": tx["recall"],
        }
    if disp:
        out |= {"decided_cases": disp["decided_cases"], "disposition_precision": disp["precision"]}
    if "files" in result:
        out["report"] = result["files"].get("html")
    return out

"""Stage 6: the run report (Markdown and HTML from the same sections) and run.json.

The report is built from the files of the run directory only, so it can be rebuilt at any time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows87.document import Section, to_html, to_markdown
from flows87.document import fmt as _fmt
from flows87.io import write_json, write_text
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import assemble, gate_counts, stage, stages
from flows87.pipeline.stages.config import RunConfig
from flows87.research.evaluate.metrics import account_metrics, case_metrics, rule_metrics
from flows87.rundir import RunDir

TOP_CASES = 20


def _learning_sections(recorded: dict[str, Any], run: RunDir) -> list[Section]:
    """The learned scorer: which model ranked this run, what it was trained on, and (labelled
    input) how today's ranking, the model and their blend order this run's accounts."""
    learned = recorded.get("learn")
    if not learned:
        return []
    counts = learned.get("counts", {})
    meta_path = run.path / "learning" / "model" / "model.meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    rows = [
        ["model", counts.get("model")],
        ["retrained in this run", counts.get("retrained")],
        ["method", meta.get("method")],
        ["trained on (decided accounts)", meta.get("labelled")],
        [
            "reported / false positive",
            f"{meta.get('positives')} / "
            f"{int(meta.get('negatives', 0)) - int(meta.get('presumed_negatives', 0))}",
        ]
        if meta
        else ["reported / false positive", None],
        ["presumed negatives (in no case, undecided)", meta.get("presumed_negatives")],
        ["decisions made before", meta.get("cutoff")],
        ["new decisions since the model in use", counts.get("new_labels")],
        ["blend weight", learned.get("params", {}).get("blend_weight")],
    ]
    secs = [Section("Learned scorer", header=["", ""], rows=rows)]
    scored = pl.read_parquet(run.accounts_scored)
    if {"today_score", "learned_score", "is_suspicious"} <= set(scored.columns):
        from flows87.research.evaluate.ranking import average_precision

        truth = scored["is_suspicious"].fill_null(False)
        table = [
            [name, average_precision(truth, scored[col].fill_null(0.0))]
            for name, col in (
                ("today (rules + anomaly)", "today_score"),
                ("learned alone", "learned_score"),
                ("blend", "risk_score"),
            )
        ]
        secs.append(
            Section("Ranking against the input's labels", header=["ranking", "PR-AUC"], rows=table)
        )
    return secs


def _sections(run_dir: Path, config: RunConfig) -> tuple[list[Section], dict[str, Any]]:
    run = RunDir(run_dir)
    recorded = stages(run_dir)
    ingest = recorded.get("ingest") or recorded.get("read") or {}
    secs = [
        Section(
            "Run",
            header=["", ""],
            rows=[
                ["run directory", str(run_dir)],
                ["input", ingest.get("params", {}).get("source")],
                ["format", ingest.get("params", {}).get("format")],
                ["input sha256", (ingest.get("input") or {}).get("sha256")],
            ],
        )
    ]
    secs.append(
        Section(
            "Stages",
            header=["stage", "status", "seconds", "counts"],
            rows=[
                [k, v["status"], v["seconds"], json.dumps(v.get("counts", {}), default=str)[:300]]
                for k, v in recorded.items()
            ],
        )
    )
    quality_rows = []
    for p in sorted(run.quality.glob("*.json")):
        res = json.loads(p.read_text(encoding="utf-8"))
        stats = gate_counts((res.get("meta", {}).get("flows87") or {}).get("stats", {}))
        failed = [
            r["expectation_config"]["type"] for r in res.get("results", []) if not r.get("success")
        ]
        quality_rows.append(
            [
                p.stem,
                res.get("success"),
                stats["rows_in"],
                stats["rows_quarantined"],
                stats["rows_parse_rejected"],
                stats["rows_failed_checks"],
                ", ".join(sorted(set(failed))) or "none",
                f"quality/{p.stem}.md",
            ]
        )
    secs.append(
        Section(
            "Data quality",
            text=(
                "Rows in: rows read, those the reader could not parse included. Quarantined: "
                "rows set aside in the gate's file in quarantine/ (parse rejects, with their "
                "whole source record, + rows failing checks), each with its reasons."
            ),
            header=[
                "gate",
                "passed",
                "rows in",
                "quarantined",
                "parse rejects",
                "failing checks",
                "failed expectations",
                "report",
            ],
            rows=quality_rows,
        )
    )
    secs += _ceiling_sections(recorded)
    secs += _learning_sections(recorded, run)
    warnings = [w for v in recorded.values() for w in v.get("warnings", [])]
    if warnings:
        secs.append(Section("Warnings", header=["warning"], rows=[[w] for w in warnings]))

    metrics: dict[str, Any] = {}
    cases_path = run.cases
    if cases_path.exists():
        cases = pl.read_parquet(cases_path)
        secs.append(
            Section(
                f"Top {min(TOP_CASES, cases.height)} of {cases.height} cases",
                header=["rank", "case", "risk", "accounts", "typologies", "summary"],
                rows=[
                    [
                        r["rank"],
                        r["case_id"],
                        r["risk_score"],
                        r["n_accounts"],
                        r["typologies"],
                        r["summary"],
                    ]
                    for r in cases.head(TOP_CASES).iter_rows(named=True)
                ],
            )
        )
        scored = pl.read_parquet(run.accounts_scored)
        signals = pl.read_parquet(run.signals)
        metrics = {
            "accounts": account_metrics(
                scored, tuple(sorted({0.005, 0.01, 0.02, config.alert_budget}))
            ),
            "cases": case_metrics(cases, scored),
            "signals": rule_metrics(signals, scored),
        }
        fired = signals.group_by("source", "signal_id").agg(
            pl.col("account_id").n_unique().alias("n")
        )
        per_rule = metrics["signals"]
        secs.append(
            Section(
                "Signals",
                header=["source", "signal", "accounts", "labelled precision"],
                rows=[
                    [
                        r["source"],
                        r["signal_id"],
                        r["n"],
                        per_rule.get(r["signal_id"], {}).get("precision"),
                    ]
                    for r in fired.sort("source", "signal_id").iter_rows(named=True)
                ],
            )
        )
        acc = metrics["accounts"]
        if acc:
            secs.append(
                Section(
                    "Detection quality (labels)",
                    text=(
                        f"{acc['suspicious_accounts']:,} of {acc['accounts']:,} accounts are labelled "
                        f"suspicious; {acc['alerted_accounts']:,} accounts are in cases (alert rate "
                        f"{_fmt(acc['alert_rate'])}), precision {_fmt(acc['precision'])}, recall "
                        f"{_fmt(acc['recall'])}; recall at budget {acc['recall_at_budget']}; "
                        f"precision of the top 100 cases {_fmt(metrics['cases'].get('precision_top_100'))}."
                    ),
                    header=["typology", "accounts", "recall (in a case)", "recall at 1 % budget"],
                    rows=[
                        [t, v["accounts"], v["recall"], v["recall_at_1pct"]]
                        for t, v in acc["typologies"].items()
                    ],
                )
            )
    return secs, metrics


def _ceiling_sections(recorded: dict[str, Any]) -> list[Section]:
    """Rules held back by the flood ceiling, and the values relative thresholds took."""
    held = [r for name in ("rules", "graph") for r in recorded.get(name, {}).get("held_back", [])]
    ceiling = recorded.get("rules", {}).get("ceiling") or recorded.get("graph", {}).get("ceiling")
    secs = []
    if ceiling:
        secs.append(
            Section(
                "Flood ceiling",
                text=(
                    f"A rule or pattern may flag at most {ceiling['max_share']:.1%} of the "
                    f"{ceiling['population']:,} active accounts (at least "
                    f"{ceiling['min_accounts']} accounts; a rule's own max_share overrides). Above "
                    "it a rule with rank_by keeps its strongest hits (its threshold raised on that "
                    "value), one without is held back whole. Held-back signals are in "
                    "signals_held.parquet: they count toward no risk and no case, and no pattern "
                    "reads them." + ("" if held else " No rule was held back in this run.")
                ),
                header=["rule", "flagged", "share", "ceiling", "action", "kept", "why"],
                rows=[
                    [
                        r["rule"],
                        r["accounts_flagged"],
                        r["share"],
                        r["ceiling_accounts"],
                        r["action"],
                        r["kept_accounts"],
                        r["reason"],
                    ]
                    for r in held
                ],
            )
        )
    relative = recorded.get("rules", {}).get("relative") or []
    if relative:
        secs.append(
            Section(
                "Relative thresholds",
                text="Parameters stated as a percentile of this run's population.",
                header=["rule", "parameter", "percentile of", "population value", "file", "used"],
                rows=[
                    [
                        r["rule"],
                        r["param"],
                        f"p{r['percentile']:g} of {r['of']}",
                        r["quantile"],
                        r["given"],
                        r["used"],
                    ]
                    for r in relative
                ],
            )
        )
    return secs


def report(job: Job) -> dict[str, Any]:
    """The run report, metrics.json when the input is labelled, and run.json (the run succeeded)."""
    run = job.run
    with stage(run, "report") as rec:
        sections, metrics = _sections(run.path, job.config)
        title = f"flows87 run report: {run.path.name}"
        write_text(to_markdown(title, sections), run.report_md)
        write_text(to_html(title, sections), run.report_html)
        if metrics.get("accounts"):
            write_json(metrics, run.metrics)
        rec.counts = {"metrics": bool(metrics.get("accounts"))}
    assemble(run, job.command, job.params())
    return {"report": str(run.report_html), "metrics": metrics}

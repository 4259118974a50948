"""Feedback for rules from investigators' dispositions (`flows87 feedback RUN`, docs/feedback.md).

Per rule (signal_id): precision per ISO week or month of decision and its trend
(`precision`); for a rule with enough decided hits, the one-feature threshold that removes most
of its false positives while keeping its reports (`clusters`), and when it does so well, a
suggested parameter patch in the sweep's format or a condition to add (`patches`). Output:
feedback.json, feedback.md and patches/ (`report`). Nothing here changes a rule file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.pipeline.rules import LoadedRule, load_rules
from flows87.research.evaluate.dispositions import disposition_metrics, load_dispositions
from flows87.research.feedback.clusters import decided_hits, hit_features, numeric_features, splits
from flows87.research.feedback.patches import suggest
from flows87.research.feedback.precision import Period, precision_by_period, rule_precision
from flows87.research.feedback.report import markdown, write
from flows87.research.feedback.settings import FeedbackSettings, load_settings
from flows87.research.sweep.patch import repo_root
from flows87.rundir import PathLike, RunDir

__all__ = [
    "FeedbackSettings",
    "feedback",
    "load_settings",
    "markdown",
    "precision_by_period",
    "rule_feedback",
]


def run_rules_dir(run_dir: PathLike) -> Path:
    """The rule catalogue the run was made with (run.json's params.rules_dir), else the bundled."""
    from flows87.pipeline.features import RULES_DIR

    path = RunDir(run_dir).run_json
    if path.exists():
        params = json.loads(path.read_text(encoding="utf-8")).get("params") or {}
        if params.get("rules_dir") and Path(params["rules_dir"]).is_dir():
            return Path(params["rules_dir"])
    return RULES_DIR


def _cluster(
    sid: str,
    hits: pl.DataFrame,
    columns: list[str],
    rule: LoadedRule | None,
    settings: FeedbackSettings,
    root: Path | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    mine = hits.filter(pl.col("signal_id") == sid)
    labelled = mine.filter(
        pl.col("disposition").is_in(["reported", "false_positive"])
    ).with_columns((pl.col("disposition") == "reported").alias("reported"))
    n_rep = int(labelled["reported"].sum())
    n_fp = labelled.height - n_rep
    rep_cases = labelled.filter(pl.col("reported"))["case_id"].n_unique()
    fp_cases = labelled.filter(~pl.col("reported"))["case_id"].n_unique()
    info: dict[str, Any] = {
        "reported": n_rep,
        "false_positives": n_fp,
        "no_further_action": mine.height - labelled.height,
        "reported_cases": rep_cases,
        "false_positive_cases": fp_cases,
        "top": [],
        "note": "",
    }
    # enough is counted in cases: one large case's many accounts are one decision
    if fp_cases < settings.min_false_positives or rep_cases < settings.min_reported:
        info["note"] = (
            f"Too few to look for a cluster: {fp_cases} false-positive and {rep_cases} reported "
            f"cases with hits in this run (from {settings.min_false_positives} and "
            f"{settings.min_reported})."
        )
        return info, None
    found = splits(labelled, columns, settings.keep_reported)
    info["top"] = [s.as_dict() for s in found[: settings.top_features]]
    sug = suggest(rule, labelled, found, settings, root) if rule is not None else None
    if sug is None:
        best = found[0].removed_share if found else 0.0
        info["note"] = (
            f"The false positives do not cluster on one feature: the best threshold removes "
            f"{best:.0%} of them (a suggestion needs {settings.min_removed:.0%})."
            if rule is not None or best < settings.min_removed
            else "Not a rule of the catalogue (a detector): no patch."
        )
    return info, sug


def rule_feedback(
    run_dir: str | Path,
    dispositions: pl.DataFrame,
    *,
    period: Period | None = None,
    rules_dir: str | Path | None = None,
    settings: FeedbackSettings | None = None,
    patch_root: str | Path | None = None,
) -> dict[str, Any]:
    """The feedback document (see the module docstring) for `dispositions` (the frame of
    `export_dispositions`) and the run's signals and features."""
    run = RunDir(run_dir)
    rules_path = Path(rules_dir) if rules_dir else run_rules_dir(run)
    if settings is None:
        own = rules_path / "settings" / "feedback.yaml"
        settings = load_settings(own if own.exists() else None)
    period = period or settings.period
    overall = disposition_metrics(dispositions).get("rules", {})
    rules = rule_precision(
        dispositions, overall, period, settings.trend_min_periods, settings.trend_slope
    )
    catalogue = {r.rule.id: r for r in load_rules(rules_path)}
    root = Path(patch_root) if patch_root else repo_root(rules_path)
    doc: dict[str, Any] = {
        "run_dir": str(run),
        "rules_dir": str(rules_path),
        "patch_root": str(root.resolve()),
        "decided_cases": dispositions.height,
        "settings": {**settings.model_dump(), "period": period},
        "rules": rules,
        "notes": [],
    }
    for name, path in (("signals", run.signals), ("features", run.features)):
        if not path.exists():
            doc["notes"].append(f"{name}.parquet not in the run: no clusters looked for")
            return doc
    signals = pl.read_parquet(run.signals)
    features = pl.read_parquet(run.features)
    columns = numeric_features(features)
    hits = decided_hits(dispositions, signals).join(
        hit_features(signals, features), on=["signal_id", "account_id"], how="inner"
    )
    for sid, entry in rules.items():
        entry["cluster"], entry["suggestion"] = _cluster(
            sid, hits, columns, catalogue.get(sid), settings, root
        )
    return doc


def feedback(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    db_url: str | None = None,
    dispositions: pl.DataFrame | None = None,
    period: Period | None = None,
    rules_dir: str | Path | None = None,
    patch_root: str | Path | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read the store's dispositions (or take `dispositions`), build the feedback of the run
    and write it under `out` (default RUN/feedback/): the document and the files' paths."""
    if dispositions is None:
        dispositions = load_dispositions(db_url)
    if dispositions is None or dispositions.is_empty():
        raise InputError(
            "no decided cases in the case store",
            hint="investigators' closed cases are the feedback; give the store with --db URL",
        )
    doc = rule_feedback(
        run_dir, dispositions, period=period, rules_dir=rules_dir, patch_root=patch_root
    )
    paths = write(doc, Path(out) if out else RunDir(run_dir).path / "feedback")
    return doc, paths

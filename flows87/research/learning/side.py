"""`flows87 evaluate --learning`: a run's own learned scorer beside today's ranking.

The learn step keeps today's risk (`today_score`), the model's score (`learned_score`) and the
blend (`risk_score`) in accounts_scored, and the model's label counts in RUN/learning/model/
model.meta.json; this measures the three over the run's active labelled accounts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows87.document import Markdown
from flows87.document import table as md_table
from flows87.research.learning.curve import measure, population
from flows87.research.learning.labels import KEY
from flows87.rundir import RunDir


def side_by_side(run_dir: Path, budget: float = 0.01) -> dict[str, Any]:
    """today / learned / blend metrics at `budget` with the model's label counts; learned and
    blend None when the run used no model."""
    scored = pl.read_parquet(RunDir(run_dir).accounts_scored)
    pop = population(run_dir)
    meta_path = Path(run_dir) / "learning" / "model" / "model.meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    today_col = "today_score" if "today_score" in scored.columns else "risk_score"
    used = "learned_score" in scored.columns and scored["learned_score"].is_not_null().any()

    def of(col: str) -> dict[str, Any]:
        return measure(pop, scored.select(KEY, pl.col(col).alias("score")), budget)

    return {
        "budget": budget,
        "accounts": pop.height,
        "suspicious": int(pop["is_suspicious"].sum()),
        "model": {k: meta.get(k) for k in ("version", "method", "positives", "negatives", "cutoff")}
        if used
        else None,
        "today": of(today_col),
        "learned": of("learned_score") if used else None,
        "blend": of("risk_score") if used else None,
    }


def markdown(side: dict[str, Any]) -> str:
    """The side by side as a section of evaluation.md."""
    model = side["model"]
    rows = []
    for name in ("today", "learned", "blend"):
        m = side[name]
        rows.append([name, *(m[k] if m else "–" for k in ("pr_auc", "precision_at_budget"))])
    said = (
        f"Model {model['version']} ({model['method']}) trained on {model['positives']} reported "
        f"and {model['negatives']} false-positive accounts decided before {model['cutoff']}."
        if model
        else "The run used no learned model: today's ranking only."
    )
    return (
        Markdown()
        .heading("The learned scorer beside today's ranking")
        .para(
            said,
            md_table(
                ["ranking", "PR-AUC", f"precision at {side['budget']:.1%}"],
                rows,
                str,
            ),
        )
        .text()
    )

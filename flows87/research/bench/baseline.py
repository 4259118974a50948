"""The GFP + Isolation Forest baseline measured over the benchmark's periods and population."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.research.bench.metrics import ranking_metrics
from flows87.research.bench.runfiles import rates
from flows87.rundir import RunDir


def measure_gfp(
    train_dir: Path,
    test_dir: Path,
    population: pl.DataFrame,
    budget: float,
    seed: int,
    since: datetime,
    patterns: tuple[str, ...],
    say: Callable[[str], None],
    timeout: float | None = None,
) -> dict[str, Any]:
    """The baseline's metrics and throughput on the report run's accounts, fitted on the
    tuning run's transactions from `since`; only what it computed when stopped by `timeout`."""
    from flows87.research.bench import gfp

    computed = gfp.describe(patterns)
    say(f"GFP baseline computes {computed['text']}")
    res = gfp.run_baseline(
        RunDir(train_dir).transactions,
        RunDir(test_dir).transactions,
        budget,
        seed,
        since,
        patterns,
        timeout,
    )
    label = f"gfp+iforest ({', '.join(patterns)})"
    if "timed_out" in res:
        say(f"GFP baseline stopped: not finished within {res['timed_out']:,.0f} s")
        return {"label": label, "gfp": computed, "timed_out": res["timed_out"]}
    scores = pl.DataFrame(
        {"account_id": res["account_id"], "score": res["score"]},
        schema={"account_id": pl.String, "score": pl.Float64},
    )
    lowest = float(np.min(scores["score"].to_numpy(), initial=0.0))
    frame = population.join(scores, on="account_id", how="left").with_columns(
        pl.col("score").fill_null(lowest)
    )
    metrics = ranking_metrics(frame, budget, res["threshold"])
    secs = res["seconds"]
    n = res["transactions"]
    fitted = sum(res["train_seconds"].values())
    say(
        f"GFP baseline: {sum(secs.values()):.1f} s on the report period's {n:,} transactions, "
        f"{fitted:.1f} s fitting on {res.get('train_transactions') or 0:,} before the cut"
    )
    return {
        "label": label,
        "gfp": computed,
        "metrics": metrics,
        "throughput": {
            **rates(n, secs),
            "fitted_from": since.isoformat(),
            "fitted_transactions": res.get("train_transactions"),
            "tuning_period_seconds": res["train_seconds"],
            "features": res["features"],
        },
    }


def measure_gfp_supervised(
    train_dirs: list[Path],
    test_dir: Path,
    population: pl.DataFrame,
    budget: float,
    label_sets: dict[str, pl.DataFrame],
    settings: Any,
    patterns: tuple[str, ...] | None,
    say: Callable[[str], None],
    timeout: float | None = None,
) -> dict[str, Any]:
    """GFP + XGBoost trained on each label set (keyed `<i>/<account_id>`: the account in the
    i-th tuning run; the learned scorer's boosting settings:
    learning.yaml) and GFP + IForest, measured on the report run's accounts: name -> PR-AUC,
    precision and recall at the budget (None: one class only)."""
    from flows87.research.bench import gfp

    xgb = {
        "n_estimators": settings.n_estimators,
        "max_depth": settings.max_depth,
        "learning_rate": settings.learning_rate,
        "random_state": settings.seed,
        "n_jobs": 1,
    }
    say(f"GFP + XGBoost on {len(label_sets)} label sets ({gfp.describe(patterns)['text']})")
    res = gfp.run_supervised(
        [RunDir(d).transactions for d in train_dirs],
        RunDir(test_dir).transactions,
        label_sets,
        xgb,
        settings.seed,
        None,
        patterns,
        timeout,
    )
    if "timed_out" in res:
        return {"timed_out": res["timed_out"]}
    keep = ("pr_auc", "precision_at_budget", "recall_at_budget")

    def metrics(values: list[float] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        scores = pl.DataFrame(
            {"account_id": res["account_id"], "score": values},
            schema={"account_id": pl.String, "score": pl.Float64},
        )
        lowest = float(np.min(scores["score"].to_numpy(), initial=0.0))
        frame = population.select("account_id", "is_suspicious").join(
            scores, on="account_id", how="left"
        )
        m = ranking_metrics(frame.with_columns(pl.col("score").fill_null(lowest)), budget)
        return {k: m[k] for k in keep}

    return {
        "patterns": gfp.describe(patterns)["patterns"],
        "features": res["features"],
        "seconds": res["seconds"],
        "iforest": metrics(res["iforest"]),
        "xgboost": {name: metrics(v) for name, v in res["scores"].items()},
    }

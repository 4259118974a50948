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

"""A run whose cases the learned scorer ranked (issue 16), made from a real pipeline run: a model
trained on the run's own learning rows with the generator's truth as labels (an honest model
would only see decisions made before the interval; for what the case page shows this is
enough), saved, scored and blended into accounts_scored.parquet and cases.parquet as the learn
stage does. The model here does not see today's ranking (the `risk:*` columns): trained on the
truth it would explain every case by today's risk alone, and the page's reasons would name no
rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline.cases import load_settings as load_scoring
from flows87.pipeline.learn import blend_accounts, blend_cases, load_settings, train
from flows87.pipeline.learn import model as models
from flows87.pipeline.learn.blend import critical_accounts
from flows87.rundir import RunDir

CUTOFF = "2026-03-01T00:00:00+00:00"


def make_learned_run(source: Path, target: Path) -> Path:
    """A copy of the run at `source` in `target`, with a learned model's scores blended in."""
    shutil.copytree(source, target)
    run = RunDir(target)
    settings = load_settings().model_copy(update={"top_reasons": 5})
    matrix = pl.read_parquet(target / "learning" / "matrix.parquet")
    matrix = matrix.drop(c for c in matrix.columns if c.startswith("risk:"))
    scored = pl.read_parquet(run.accounts_scored)
    labels = scored.select("account_id", pl.col("is_suspicious").fill_null(False).alias("label"))
    model = train(matrix, labels, settings, labelled=labels.height, cutoff=CUTOFF)
    models.save(model, target / "learning" / "model")
    scores = models.score(model, matrix).join(
        models.contributions(model, matrix, settings.top_reasons), on="account_id", how="left"
    )
    signals = pl.read_parquet(run.signals)
    critical = critical_accounts(signals, load_scoring().strong_signal)
    accounts = blend_accounts(scored, scores, critical, settings.blend_weight)
    cases = blend_cases(pl.read_parquet(run.cases), accounts, critical, settings.blend_weight)
    write_parquet(accounts, run.accounts_scored)
    write_parquet(cases, run.cases)
    return target

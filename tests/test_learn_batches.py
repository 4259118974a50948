"""The learning matrix built, written and scored in batches of accounts is the table built in one
piece: same columns, values and row order (a batch lacking a window or a signal still gets its
column), and the same scores (real files, real XGBoost)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows87.pipeline.learn import account_matrix, train
from flows87.pipeline.learn import model as models
from flows87.pipeline.stages.learn import MATRIX, _matrix_batches, _scores, write_matrix
from flows87.rundir import RunDir

N = 30


def small_run(folder: Path) -> RunDir:
    """accounts_scored (unsorted) over a00..a29; features sorted by account and window, where
    some accounts have one window or none and b-accounts are not scored; signals where r_rare
    fires for one late account only; detector scores for most accounts."""
    rng = np.random.default_rng(3)
    ids = [f"a{i:02d}" for i in range(N)]
    pl.DataFrame({"account_id": list(reversed(ids)), "risk_score": rng.random(N)}).write_parquet(
        folder / "accounts_scored.parquet"
    )
    feats = []
    for i, acc in enumerate([*ids, "b1", "b2"]):
        windows = ["30d", "7d", "7d"] if i % 5 else (["7d"] if i % 10 else [])
        if i == 7:
            windows = ["30d"]
        for w in windows:
            feats.append(
                {
                    "account_id": acc,
                    "window": w,
                    "kind": "person",
                    "in_count": int(rng.integers(0, 50)),
                    "out_sum": float(rng.gamma(2.0, 100.0)),
                }
            )
    pl.DataFrame(feats).sort("account_id", "window").write_parquet(folder / "features.parquet")
    sigs = [
        {"source": "rule", "signal_id": f"r{i % 3}", "account_id": ids[i], "score": rng.random()}
        for i in range(0, N, 2)
    ]
    sigs.append({"source": "pattern", "signal_id": "r_rare", "account_id": "a27", "score": 0.9})
    pl.DataFrame(sigs).sample(fraction=1.0, shuffle=True, seed=1).write_parquet(
        folder / "signals.parquet"
    )
    pl.DataFrame(
        {"account_id": ids[2:], "anomaly_score": rng.random(N - 2), "rank_x": rng.random(N - 2)}
    ).write_parquet(folder / "anomaly_scores.parquet")
    return RunDir(folder)


def test_the_matrix_in_batches_is_the_matrix_in_one_piece(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    whole = account_matrix(
        pl.read_parquet(run.accounts_scored),
        pl.read_parquet(run.features),
        pl.read_parquet(run.signals),
        pl.read_parquet(run.anomaly_scores),
    )
    one, height, columns = write_matrix(run, size=N)
    assert one is not None and one.equals(whole)
    assert pl.read_parquet(run.path / MATRIX).equals(whole)
    for size in (4, 7, N - 1):
        batched, height, columns = write_matrix(run, size=size)
        assert batched is None and (height, columns) == (N, whole.columns)
        assert pl.read_parquet(run.path / MATRIX).equals(whole), size
    assert {"in_count@30d", "out_sum@7d", "signal:r_rare", "anomaly:rank_x"} <= set(columns)
    assert "kind@7d" not in columns


def test_a_model_scores_the_same_in_batches(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    matrix, _, columns = write_matrix(run, size=N)
    assert matrix is not None
    labels = matrix.select("account_id", (pl.col("in_count@7d").fill_null(0) > 25).alias("label"))
    assert 5 <= int(labels["label"].sum()) <= N - 5
    fitted = train(matrix, labels, models.LearnSettings(n_estimators=20, max_depth=2))
    named = pl.DataFrame({"account_id": ["a01", "a05", "a27", "zz"]})
    whole = _scores(fitted, _matrix_batches(run, matrix, columns, N), named, 3)
    write_matrix(run, size=4)
    batched = _scores(fitted, _matrix_batches(run, None, columns, 4), named, 3)
    assert whole.height == N and whole["learned_reasons"].drop_nulls().len() == 3
    assert batched.sort("account_id").equals(whole.sort("account_id"))
    assert whole["learned_score"].n_unique() > 1


@pytest.mark.parametrize("size", [1, 2])
def test_one_account_per_batch_still_gives_every_row(tmp_path: Path, size: int) -> None:
    run = small_run(tmp_path)
    write_matrix(run, size=size)
    got = pl.read_parquet(run.path / MATRIX)
    assert got["account_id"].to_list() == sorted(f"a{i:02d}" for i in range(N))

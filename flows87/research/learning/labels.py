"""What simulated investigators know when they train the model: the tuning period's truth only.

An input's account labels (accounts.is_suspicious) can be derived from all of its transactions
(the AMLGentex reader marks an account that took part in a SAR transaction anywhere in the
file), so a tuning run's account label may already know what happens after the cut. Where the
run's transactions carry labels, an account counts as suspicious for training only when its
label says so and it took part in a suspicious transaction of that run (its own interval);
without transaction labels the account label alone, static by construction.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87.rundir import RunDir

KEY = "account_id"


class LeakError(AssertionError):
    """A training label that the tuning period could not have known."""


def period_span(run_dir: Path) -> tuple[object, object]:
    """(first, last) transaction time of a run."""
    row = (
        pl.scan_parquet(RunDir(run_dir).transactions)
        .select(pl.col("ts").min(), pl.col("ts").max().alias("hi"))
        .collect()
        .row(0)
    )
    return row[0], row[1]


def period_truth(run_dir: Path) -> pl.DataFrame:
    """account_id, label: each account active in the run, True when its label says suspicious
    and, where the transactions carry labels, it took part in a suspicious transaction of the
    run's own interval (see the module's docstring; an innocent counterparty of a suspicious
    transaction is not suspicious)."""
    run = RunDir(run_dir)
    scored = pl.read_parquet(run.accounts_scored)
    if "is_suspicious" not in scored.columns:
        raise LeakError(f"{run.accounts_scored} has no labels to simulate investigators with")
    labelled_tx = "is_suspicious" in pl.read_parquet_schema(run.transactions)
    cols = ["src_account", "dst_account", *(["is_suspicious"] if labelled_tx else [])]
    tx = pl.read_parquet(run.transactions, columns=cols)
    if not labelled_tx:
        tx = tx.with_columns(pl.lit(True).alias("is_suspicious"))
    ends = pl.concat(
        [
            tx.select(pl.col("src_account").alias(KEY), "is_suspicious"),
            tx.select(pl.col("dst_account").alias(KEY), "is_suspicious"),
        ]
    )
    active = ends.group_by(KEY).agg(pl.col("is_suspicious").fill_null(False).any().alias("_tx"))
    return (
        active.join(scored.select(KEY, "is_suspicious"), on=KEY, how="left")
        .select(KEY, (pl.col("is_suspicious").fill_null(False) & pl.col("_tx")).alias("label"))
        .sort(KEY)
    )


def case_order(cases: pl.DataFrame) -> pl.DataFrame:
    """Cases in the order investigators meet them: today's ranking (`today_score` when the learn
    step blended the run's risk), then rank."""
    key = "today_score" if "today_score" in cases.columns else "risk_score"
    return cases.sort([key, "rank"], descending=[True, False], nulls_last=True)


def reviewed_labels(train_dir: Path, n_cases: int | None) -> tuple[pl.DataFrame, int]:
    """(account_id, label) decided after reviewing the first `n_cases` of the tuning run's cases
    in rank order (every account of a case decided by the period's truth: suspicious is
    reported, anything else a false positive), and the number of cases reviewed. None: every
    active account of the period with its truth (the labels the input carries)."""
    truth = period_truth(train_dir)
    if n_cases is None:
        return truth, 0
    cases = case_order(pl.read_parquet(RunDir(train_dir).cases)).head(n_cases)
    accounts = (
        cases.select(pl.col("accounts").alias(KEY))
        .explode(KEY)
        .drop_nulls()
        .unique(KEY, keep="first", maintain_order=True)
    )
    # a party's quiet account in a case has no activity (and no row of truth) in the period
    labels = accounts.join(truth, on=KEY, how="inner")
    return labels.sort(KEY), cases.height


def check_no_leak(labels: pl.DataFrame, train_dir: Path, test_dir: Path) -> None:
    """Raise LeakError unless the tuning period ends before the scored period begins and every
    training label is the tuning period's own truth of an account active in it."""
    _, train_hi = period_span(train_dir)
    test_lo, _ = period_span(test_dir)
    if train_hi is not None and test_lo is not None and train_hi >= test_lo:  # type: ignore[operator]
        raise LeakError(f"the tuning period ends at {train_hi}, after the scored one begins")
    truth = period_truth(train_dir)
    joined = labels.select(KEY, "label").join(truth, on=KEY, how="left", suffix="_truth")
    unknown = joined.filter(pl.col("label_truth").is_null())
    if unknown.height:
        raise LeakError(
            f"{unknown.height} training labels name accounts not active in the tuning period, "
            f"e.g. {unknown[KEY][0]}"
        )
    wrong = joined.filter(pl.col("label") != pl.col("label_truth"))
    if wrong.height:
        raise LeakError(
            f"{wrong.height} training labels differ from the tuning period's truth, "
            f"e.g. {wrong[KEY][0]}: a label from after the cut"
        )

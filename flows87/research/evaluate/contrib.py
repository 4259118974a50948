"""What each rule, detector and graph pattern contributes, alone and beyond the others.

Pure functions of polars frames. `signals` needs the columns source, signal_id, account_id (the
run's signals.parquet); `labels` needs account_id and a boolean label column (the run's
accounts_scored.parquet on labelled data). A flagged account missing from `labels` counts as not
suspicious; recall is over the labelled positives of `labels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then((num / den).round(4)).otherwise(None)


def flagged_accounts(
    signals: pl.DataFrame, by: Sequence[str] = ("source", "signal_id")
) -> pl.DataFrame:
    """Distinct (group..., account_id) pairs: which accounts each group of signals flags."""
    return signals.select(*by, "account_id").drop_nulls("account_id").unique()


def contributions(
    signals: pl.DataFrame,
    labels: pl.DataFrame,
    by: Sequence[str] = ("source", "signal_id"),
    label: str = "is_suspicious",
) -> pl.DataFrame:
    """Per group of signals (default: each rule/detector/pattern; `by=("source",)` for rules vs
    detectors vs graph): what it catches alone and what only it catches.

    Columns: *by, accounts (flagged), tp (suspicious among them), precision, recall, f1,
    only_accounts (flagged by no other group), only_tp (suspicious accounts no other group
    flags), only_recall (only_tp over all suspicious accounts: the recall lost without it).
    Sorted by tp, then accounts (descending), then the group keys.
    """
    by = list(by)
    positives = int(labels[label].fill_null(False).sum())
    flags = flagged_accounts(signals, by)
    groups_per_account = flags.group_by("account_id").agg(pl.len().alias("_groups"))
    sus = pl.col(label).fill_null(False)
    only = pl.col("_groups") == 1
    per = (
        flags.join(labels.select("account_id", label), on="account_id", how="left")
        .join(groups_per_account, on="account_id", how="left")
        .group_by(by)
        .agg(
            pl.len().alias("accounts"),
            sus.sum().alias("tp"),
            only.sum().alias("only_accounts"),
            (only & sus).sum().alias("only_tp"),
        )
        .with_columns(
            pl.col("accounts", "tp", "only_accounts", "only_tp").cast(pl.Int64),
        )
        .with_columns(
            _safe_div(pl.col("tp"), pl.col("accounts")).alias("precision"),
            _safe_div(pl.col("tp"), pl.lit(positives)).alias("recall"),
            _safe_div(pl.col("only_tp"), pl.lit(positives)).alias("only_recall"),
        )
        .with_columns(
            pl.when(pl.col("precision").is_null() | pl.col("recall").is_null())
            .then(None)
            .when(pl.col("precision") + pl.col("recall") == 0)
            .then(0.0)
            .otherwise(
                (
                    2
                    * pl.col("precision")
                    * pl.col("recall")
                    / (pl.col("precision") + pl.col("recall"))
                ).round(4)
            )
            .alias("f1")
        )
    )
    return per.select(
        *by,
        "accounts",
        "tp",
        "precision",
        "recall",
        "f1",
        "only_accounts",
        "only_tp",
        "only_recall",
    ).sort(["tp", "accounts", *by], descending=[True, True, *([False] * len(by))])


def overlap(signals: pl.DataFrame, key: str = "signal_id") -> pl.DataFrame:
    """Jaccard overlap between the account sets each `key` flags, for every ordered pair.

    Columns: a, b, a_accounts, b_accounts, shared, jaccard (shared / union; 1 on the diagonal).
    Long format, one row per pair (both orders), sorted by a, b.
    """
    flags = flagged_accounts(signals, [key])
    sizes = flags.group_by(key).agg(pl.len().cast(pl.Int64).alias("n"))
    shared = (
        flags.join(flags, on="account_id", suffix="_b")
        .group_by(key, f"{key}_b")
        .agg(pl.len().cast(pl.Int64).alias("shared"))
        .rename({key: "a", f"{key}_b": "b"})
    )
    grid = (
        sizes.rename({key: "a", "n": "a_accounts"})
        .join(sizes.rename({key: "b", "n": "b_accounts"}), how="cross")
        .join(shared, on=["a", "b"], how="left")
        .with_columns(pl.col("shared").fill_null(0))
    )
    union = pl.col("a_accounts") + pl.col("b_accounts") - pl.col("shared")
    return grid.with_columns(_safe_div(pl.col("shared"), union).alias("jaccard")).sort("a", "b")


def overlap_matrix(pairs: pl.DataFrame) -> tuple[list[str], list[tuple[float, ...]]]:
    """The output of `overlap` as (names, square matrix of Jaccard values) in name order."""
    wide = pairs.pivot(on="b", index="a", values="jaccard", sort_columns=True).sort("a")
    names = wide["a"].to_list()
    return names, wide.select(names).fill_null(0.0).rows()

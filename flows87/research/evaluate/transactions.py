"""Transaction-level view: which transactions a run alerted, and how well, against labels.

A transaction counts as **alerted** when
  - it is evidence of a signal (its txn_id is in some signal's `txn_ids`), or
  - it belongs to a case: its txn_id is in the case's `txn_ids`, or its sender and receiver are
    both accounts of the *same* case (money moving inside a case's network).
Both accounts merely being in some case (two unrelated cases) is not enough: that would count
a payment between two unrelated alerted customers as detected.

A transaction's **score** for ranking (PR-AUC, recall at budget) is the larger risk score of its
two accounts (0 for an account the run did not score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from flows87.research.evaluate.ranking import (
    DEFAULT_BUDGETS,
    DEFAULT_KS,
    classification_metrics,
    ranking_metrics,
)
from flows87.schema import join_ends


def _txn_ids(frame: pl.DataFrame | None) -> pl.DataFrame:
    if frame is None or "txn_ids" not in frame.columns or frame.is_empty():
        return pl.DataFrame(schema={"txn_id": pl.String})
    return (
        frame.select(pl.col("txn_ids").alias("txn_id"))
        .explode("txn_id")
        .drop_nulls()
        .unique()
        .with_columns(pl.col("txn_id").cast(pl.String))
    )


def alerted_transactions(
    transactions: pl.DataFrame,
    signals: pl.DataFrame | None,
    cases: pl.DataFrame | None,
    scored: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The transactions with boolean columns via_signal, via_case, alerted and a float `score`
    (see the module docstring for the definitions). Keeps every column of `transactions`."""
    sig = _txn_ids(signals).with_columns(pl.lit(True).alias("via_signal"))
    case_tx = _txn_ids(cases).with_columns(pl.lit(True).alias("_in_case_txns"))
    if cases is not None and not cases.is_empty() and "accounts" in cases.columns:
        members = (
            cases.select("case_id", pl.col("accounts").alias("account_id"))
            .explode("account_id")
            .drop_nulls()
            .unique("account_id", keep="first", maintain_order=True)
        )
    else:
        members = pl.DataFrame(schema={"case_id": pl.String, "account_id": pl.String})
    joined = transactions.join(sig, on="txn_id", how="left").join(case_tx, on="txn_id", how="left")
    out = (
        join_ends(joined, members, {"case_id": ("_src_case", "_dst_case")})
        .with_columns(
            pl.col("via_signal").fill_null(False),
            (
                pl.col("_in_case_txns").fill_null(False)
                | (pl.col("_src_case") == pl.col("_dst_case")).fill_null(False)
            ).alias("via_case"),
        )
        .with_columns((pl.col("via_signal") | pl.col("via_case")).alias("alerted"))
    )
    if scored is not None and "risk_score" in scored.columns:
        risk = scored.select("account_id", "risk_score")
        out = join_ends(out, risk, {"risk_score": ("_rs", "_rd")}).with_columns(
            pl.max_horizontal(pl.col("_rs").fill_null(0.0), pl.col("_rd").fill_null(0.0)).alias(
                "score"
            )
        )
    else:
        out = out.with_columns(pl.lit(0.0).alias("score"))
    return out.drop("_in_case_txns", "_src_case", "_dst_case", "_rs", "_rd", strict=False)


def transaction_metrics(
    transactions: pl.DataFrame,
    signals: pl.DataFrame | None,
    cases: pl.DataFrame | None,
    scored: pl.DataFrame | None = None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    ks: Sequence[int] = DEFAULT_KS,
    label: str = "is_suspicious",
) -> dict[str, Any]:
    """Precision, recall, F1 of alerted transactions (and of each way of being alerted),
    ranking metrics of the transaction score, and recall per typology. {} without labels."""
    if label not in transactions.columns:
        return {}
    tx = alerted_transactions(
        transactions.select(
            "txn_id",
            "src_account",
            "dst_account",
            label,
            *(["typology"] if "typology" in transactions.columns else []),
        ),
        signals,
        cases,
        scored,
    )
    out: dict[str, Any] = {
        "definition": (
            "alerted = txn_id in a signal's txn_ids, or in a case's txn_ids, or both accounts "
            "in the same case; score = max risk score of its two accounts"
        ),
        **classification_metrics(tx, "alerted", label),
        "via_signal": classification_metrics(tx, "via_signal", label),
        "via_case": classification_metrics(tx, "via_case", label),
        "ranking": ranking_metrics(tx, label, "score", "txn_id", budgets, ks),
        "typologies": {},
    }
    if "typology" in tx.columns:
        per = (
            tx.filter(pl.col(label).fill_null(False))
            .group_by("typology")
            .agg(
                pl.len().alias("transactions"),
                pl.col("alerted").sum().alias("alerted"),
                pl.col("via_signal").sum().alias("via_signal"),
            )
            .sort("typology")
        )
        for r in per.iter_rows(named=True):
            n = int(r["transactions"])
            out["typologies"][str(r["typology"])] = {
                "transactions": n,
                "recall": round(r["alerted"] / n, 4),
                "recall_via_signal": round(r["via_signal"] / n, 4),
            }
    return out

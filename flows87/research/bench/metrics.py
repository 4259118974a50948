"""Detection metrics over one population of accounts scored by any method."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def top_k(n: int, budget: float) -> int:
    return max(1, int(round(n * budget)))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """PR-AUC as average precision, sum over thresholds of (R_n - R_{n-1}) P_n, with tied scores
    as one threshold (as scikit-learn computes it)."""
    labels = np.asarray(labels).astype(bool)
    pos = int(labels.sum())
    if pos == 0 or len(labels) == 0:
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    s, y = np.asarray(scores, dtype=np.float64)[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / pos
    return float((recall_step * precision).sum())


def ranking_metrics(
    frame: pl.DataFrame, budget: float, threshold: float | None = None
) -> dict[str, Any]:
    """`frame`: account_id, score, is_suspicious[, typology], one row per account of the
    population. Recall and precision in the top `budget` share, at `threshold` (tuned
    elsewhere), per typology, and PR-AUC."""
    n = frame.height
    ranked = frame.sort(["score", "account_id"], descending=[True, False])
    labels = ranked["is_suspicious"].fill_null(False).to_numpy().astype(bool)
    scores = ranked["score"].fill_null(0.0).to_numpy().astype(np.float64)
    pos = int(labels.sum())
    k = top_k(n, budget)
    tp = int(labels[:k].sum())
    out: dict[str, Any] = {
        "accounts": n,
        "suspicious_accounts": pos,
        "budget": budget,
        "alerts_at_budget": k,
        "recall_at_budget": _r(tp / pos) if pos else None,
        "precision_at_budget": _r(tp / k),
        "pr_auc": _r(average_precision(labels, scores)),
        "base_rate": _r(pos / n) if n else None,
    }
    if threshold is not None:
        alerted = scores >= threshold
        m = int(alerted.sum())
        hit = int((alerted & labels).sum())
        out["threshold"] = {
            "value": threshold,
            "alerts": m,
            "alert_rate": _r(m / n) if n else None,
            "recall": _r(hit / pos) if pos else None,
            "precision": _r(hit / m) if m else None,
        }
    if "typology" in ranked.columns:
        top = ranked.head(k).filter(pl.col("is_suspicious"))
        per = (
            ranked.filter(pl.col("is_suspicious"))
            .group_by("typology")
            .len()
            .join(top.group_by("typology").len().rename({"len": "hit"}), on="typology", how="left")
            .sort("typology")
        )
        out["typologies"] = {
            str(r["typology"]): {
                "accounts": r["len"],
                "recall_at_budget": _r((r["hit"] or 0) / r["len"]),
            }
            for r in per.iter_rows(named=True)
        }
    return out


def threshold_at(scores: np.ndarray, budget: float) -> float:
    """The score of the last account inside the top `budget` share."""
    if len(scores) == 0:
        return float("inf")
    k = top_k(len(scores), budget)
    return float(np.sort(scores)[::-1][k - 1])

"""Ranking and classification metrics: pure functions of polars frames (or numpy arrays).

Conventions shared by every function here and used by `flows87 evaluate`, `sweep` and `bench`:

- **Ranking.** Items are ranked by score, highest first; ties are broken by the id column
  (ascending), so a ranking and everything computed from its top k is deterministic. This is
  the order of `metrics.account_metrics` and of the case queue.
- **Budget.** An alert budget `b` is a share of all items; its top k is `max(1, round(n * b))`
  items (at least one alert, as an FIU with any capacity reviews at least one case).
- **Average precision** (PR-AUC) is the step-wise area under the precision/recall curve, with
  tied scores taken as one threshold: AP = sum over distinct thresholds of
  (R_t - R_{t-1}) * P_t, the definition of scikit-learn's `average_precision_score`.
- A null (or NaN) score ranks below every other score; tied nulls are one threshold.
- A ratio whose denominator is zero (no positives, nothing flagged) is `None`, not 0: "not
  measurable" is different from "measured and bad".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

DEFAULT_BUDGETS: tuple[float, ...] = (0.005, 0.01, 0.02)
DEFAULT_KS: tuple[int, ...] = (10, 50, 100, 500)


def ratio(num: float, den: float, digits: int = 4) -> float | None:
    """num / den rounded, or None when den is 0."""
    return round(float(num) / float(den), digits) if den else None


def f1(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean of precision and recall; None when either is None, 0 when both are 0."""
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return round(2 * precision * recall / (precision + recall), 4)


def budget_key(budget: float) -> str:
    """The JSON key of a budget: 0.01 -> "1.0%", 0.005 -> "0.5%"."""
    return f"{budget:.1%}"


def budget_k(n: int, budget: float) -> int:
    """How many of n items a budget allows: max(1, round(n * budget)), at most n."""
    return min(n, max(1, int(round(n * budget)))) if n else 0


def _arrays(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(pl.Series(y_true).fill_null(False).cast(pl.Boolean).to_numpy(), dtype=bool)
    s = np.asarray(
        pl.Series(score).cast(pl.Float64).fill_nan(None).fill_null(-np.inf).to_numpy(), dtype=float
    )
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape}) and scores ({s.shape}) differ in length")
    return y, s


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    # the last position of each run of equal scores is where that threshold's counts stand
    last = np.r_[np.flatnonzero(ss[1:] != ss[:-1]), ys.size - 1] if ys.size else np.array([], int)
    tps = np.cumsum(ys)[last]
    fps = (last + 1) - tps
    return ss[last], tps, fps


def average_precision(y_true: Any, score: Any) -> float | None:
    """Average precision (PR-AUC) of `score` against boolean `y_true` (Series, array or list).

    Tied scores count as one threshold (scikit-learn's definition). None without positives.
    """
    y, s = _arrays(y_true, score)
    pos = int(y.sum())
    if pos == 0:
        return None
    _, tps, fps = _threshold_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / pos
    return round(float(np.sum(np.diff(np.r_[0.0, recall]) * precision)), 6)


def pr_curve(y_true: Any, score: Any, max_points: int | None = None) -> pl.DataFrame:
    """Precision/recall at each distinct score threshold (highest first): columns threshold,
    alerts, tp, precision, recall. `max_points` thins the curve evenly (keeping both ends)."""
    y, s = _arrays(y_true, score)
    pos = int(y.sum())
    thresholds, tps, fps = _threshold_counts(y, s)
    curve = pl.DataFrame(
        {
            "threshold": thresholds,
            "alerts": (tps + fps).astype(np.int64),
            "tp": tps.astype(np.int64),
            "precision": tps / np.maximum(tps + fps, 1),
            "recall": tps / pos if pos else np.zeros(tps.size),
        }
    )
    if max_points and curve.height > max_points:
        idx = np.unique(np.linspace(0, curve.height - 1, max_points).round().astype(int))
        curve = curve[idx]
    return curve


def rank(
    frame: pl.DataFrame, score: str = "risk_score", id_col: str = "account_id"
) -> pl.DataFrame:
    """The frame ranked by score (highest first, ties by id) with a 1-based `_rank` column."""
    cols = [score, id_col] if id_col in frame.columns else [score]
    ranked = frame.sort(cols, descending=[True, False][: len(cols)], nulls_last=True)
    return ranked.with_columns(pl.int_range(1, ranked.height + 1, dtype=pl.Int64).alias("_rank"))


def top_k_hits(
    frame: pl.DataFrame,
    ks: Sequence[int],
    label: str = "is_suspicious",
    score: str = "risk_score",
    id_col: str = "account_id",
) -> dict[int, int]:
    """How many positives are among the top k items, for each k (k capped at the frame size)."""
    ranked = rank(frame, score, id_col)
    hits = ranked[label].fill_null(False).cast(pl.Int64).cum_sum()
    n = ranked.height
    return {int(k): int(hits[min(k, n) - 1]) if n and k > 0 else 0 for k in ks}


def precision_at_k(
    frame: pl.DataFrame,
    k: int,
    label: str = "is_suspicious",
    score: str = "risk_score",
    id_col: str = "account_id",
) -> float | None:
    """Share of positives among the top k items by score (k capped at the frame size)."""
    k = min(k, frame.height)
    return ratio(top_k_hits(frame, [k], label, score, id_col)[k], k)


def recall_at_budget(
    frame: pl.DataFrame,
    budget: float,
    label: str = "is_suspicious",
    score: str = "risk_score",
    id_col: str = "account_id",
) -> float | None:
    """Share of all positives among the top `budget_k(n, budget)` items by score."""
    k = budget_k(frame.height, budget)
    pos = int(frame[label].fill_null(False).sum())
    return ratio(top_k_hits(frame, [k], label, score, id_col)[k], pos)


def ranking_metrics(
    frame: pl.DataFrame,
    label: str = "is_suspicious",
    score: str = "risk_score",
    id_col: str = "account_id",
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, Any]:
    """How well `score` ranks the positives of `label`: items, positives, average precision,
    precision@k for each k, and recall and precision at each alert budget (keys "1.0%")."""
    n = frame.height
    pos = int(frame[label].fill_null(False).sum())
    budget_ks = {b: budget_k(n, b) for b in budgets}
    hits = top_k_hits(frame, [*ks, *budget_ks.values()], label, score, id_col)
    return {
        "items": n,
        "positives": pos,
        "average_precision": average_precision(frame[label], frame[score]),
        "precision_at_k": {str(k): ratio(hits[k], min(k, n)) for k in ks},
        "recall_at_budget": {budget_key(b): ratio(hits[k], pos) for b, k in budget_ks.items()},
        "precision_at_budget": {budget_key(b): ratio(hits[k], k) for b, k in budget_ks.items()},
        "alerts_at_budget": {budget_key(b): k for b, k in budget_ks.items()},
    }


def classification_metrics(
    frame: pl.DataFrame, flagged: str | pl.Expr, label: str | pl.Expr = "is_suspicious"
) -> dict[str, Any]:
    """Confusion counts, precision, recall, F1 and alert rate of a boolean flag against a label.

    `flagged` and `label` are column names or boolean expressions over `frame` (nulls are False).
    """
    f = (pl.col(flagged) if isinstance(flagged, str) else flagged).fill_null(False)
    y = (pl.col(label) if isinstance(label, str) else label).fill_null(False)
    c = frame.select(
        (f & y).sum().alias("tp"),
        (f & ~y).sum().alias("fp"),
        (~f & y).sum().alias("fn"),
        (~f & ~y).sum().alias("tn"),
    ).row(0, named=True)
    tp, fp, fn, tn = (int(c[k] or 0) for k in ("tp", "fp", "fn", "tn"))
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {
        "items": frame.height,
        "positives": tp + fn,
        "flagged": tp + fp,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "alert_rate": ratio(tp + fp, frame.height),
        "precision": precision,
        "recall": recall,
        "f1": f1(precision, recall),
    }


def score_comparison(
    frame: pl.DataFrame,
    scores: Sequence[str],
    label: str = "is_suspicious",
    id_col: str = "account_id",
    budgets: Sequence[float] = DEFAULT_BUDGETS,
) -> list[dict[str, Any]]:
    """Each score column alone as a ranking (e.g. risk_score, signal_risk, the anomaly
    ensemble and each PyOD model's rank): average precision and recall at each budget.
    A null score ranks last."""
    out = []
    for col in scores:
        m = ranking_metrics(frame, label, col, id_col, budgets, ks=())
        out.append(
            {
                "score": col,
                "average_precision": m["average_precision"],
                "recall_at_budget": m["recall_at_budget"],
            }
        )
    return out

"""Detection quality against labels: what the run report shows when the input was labelled.

Account level: an account is *alerted* when it is in a case. Recall at a budget ranks all
accounts by risk score and takes the top share (e.g. 1 % of accounts), which is how an FIU with
a fixed review capacity would use the ranking. A case is a true positive when its anchor (its
riskiest account) is labelled suspicious.
"""

from __future__ import annotations

from typing import Any

import polars as pl


def number(value: object, what: str) -> float:
    """A polars scalar known to be numeric (the mean or maximum of a non-empty number column)
    as a number; a null or a non-number is a bug upstream, reported as such."""
    if isinstance(value, int | float):
        return value
    raise TypeError(f"{what}: expected a number, got {value!r}")


def _safe(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def account_metrics(
    scored: pl.DataFrame, budgets: tuple[float, ...] = (0.005, 0.01, 0.02)
) -> dict[str, Any]:
    """Overall and per-typology precision, recall and alert rate; recall at alert budgets."""
    if "is_suspicious" not in scored.columns:
        return {}
    n = scored.height
    ranked = scored.sort(["risk_score", "account_id"], descending=[True, False]).with_columns(
        pl.int_range(1, n + 1).alias("_rank")
    )
    alerted = pl.col("case_id").is_not_null()
    sus = pl.col("is_suspicious")
    totals = ranked.select(
        alerted.sum().alias("alerted"),
        sus.sum().alias("suspicious"),
        (alerted & sus).sum().alias("tp"),
    ).row(0, named=True)
    out: dict[str, Any] = {
        "accounts": n,
        "suspicious_accounts": int(totals["suspicious"]),
        "alerted_accounts": int(totals["alerted"]),
        "alert_rate": _safe(totals["alerted"], n),
        "precision": _safe(totals["tp"], totals["alerted"]),
        "recall": _safe(totals["tp"], totals["suspicious"]),
        "recall_at_budget": {},
        "precision_at_budget": {},
        "typologies": {},
    }
    for b in budgets:
        k = max(1, int(round(n * b)))
        top = ranked.filter(pl.col("_rank") <= k)
        tp = int(top["is_suspicious"].sum())
        out["recall_at_budget"][f"{b:.1%}"] = _safe(tp, totals["suspicious"])
        out["precision_at_budget"][f"{b:.1%}"] = _safe(tp, k)
    k1 = max(1, int(round(n * 0.01)))
    per_typ = (
        ranked.filter(sus)
        .group_by("typology")
        .agg(
            pl.len().alias("accounts"),
            alerted.sum().alias("alerted"),
            (pl.col("_rank") <= k1).sum().alias("in_top_1pct"),
        )
        .sort("typology")
    )
    for row in per_typ.iter_rows(named=True):
        out["typologies"][str(row["typology"])] = {
            "accounts": row["accounts"],
            "recall": _safe(row["alerted"], row["accounts"]),
            "recall_at_1pct": _safe(row["in_top_1pct"], row["accounts"]),
        }
    return out


def case_metrics(cases: pl.DataFrame, scored: pl.DataFrame, top: int = 100) -> dict[str, Any]:
    if "is_suspicious" not in scored.columns or cases.is_empty():
        return {}
    labels = scored.select("account_id", "is_suspicious", "typology")
    ranked = (
        cases.sort("rank")
        .head(top)
        .join(labels.rename({"account_id": "anchor_account"}), on="anchor_account", how="left")
    )
    return {
        "cases": cases.height,
        f"precision_top_{top}": _safe(
            int(ranked["is_suspicious"].fill_null(False).sum()), ranked.height
        ),
        "top_cases_considered": ranked.height,
    }


def rule_metrics(signals: pl.DataFrame, scored: pl.DataFrame) -> dict[str, Any]:
    """Per signal id: accounts flagged and the share of them labelled suspicious."""
    if "is_suspicious" not in scored.columns or signals.is_empty():
        return {}
    per = (
        signals.select("signal_id", "account_id")
        .unique()
        .join(scored.select("account_id", "is_suspicious"), on="account_id", how="left")
        .group_by("signal_id")
        .agg(
            pl.len().alias("accounts"),
            pl.col("is_suspicious").fill_null(False).mean().alias("precision"),
        )
        .sort("signal_id")
    )
    return {
        r["signal_id"]: {"accounts": r["accounts"], "precision": round(r["precision"], 4)}
        for r in per.iter_rows(named=True)
    }

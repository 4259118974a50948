"""How the learned score enters the ranking (rules/settings/learning.yaml blend_weight = w).

    ranked = (1 - w) x today's risk + w x learned score

for accounts (accounts_scored.risk_score) and for cases (a case's learned score is its
accounts' highest). It moves accounts and cases up or down the queue; it never removes a case
(cases come from the signals alone), and an account or case with a critical signal (a rule
whose score reaches scoring.yaml's strong_signal) never ranks below where today's risk put it:
for them the model can only raise.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.learn.matrix import KEY


def critical_accounts(signals: pl.DataFrame, strong_signal: float) -> pl.DataFrame:
    """account_id of every account with a rule signal at or above `strong_signal`."""
    return (
        signals.filter((pl.col("source") == "rule") & (pl.col("score") >= strong_signal))
        .select(KEY)
        .unique()
    )


def _blend(today: pl.Expr, learned: pl.Expr, critical: pl.Expr, weight: float) -> pl.Expr:
    mixed = (1.0 - weight) * today + weight * learned
    mixed = pl.when(critical).then(pl.max_horizontal(mixed, today)).otherwise(mixed)
    return pl.when(learned.is_null()).then(today).otherwise(mixed)


def blend_accounts(
    scored: pl.DataFrame, learned: pl.DataFrame, critical: pl.DataFrame, weight: float
) -> pl.DataFrame:
    """accounts_scored with `today_score` (the risk before the blend), `learned_score`,
    `learned_reasons` and the blended `risk_score`, sorted again."""
    crit = critical.with_columns(pl.lit(True).alias("_critical"))
    cols = [c for c in ("learned_score", "learned_reasons") if c in learned.columns]
    out = (
        scored.drop("today_score", "learned_score", "learned_reasons", strict=False)
        .join(learned.select(KEY, *cols), on=KEY, how="left")
        .join(crit, on=KEY, how="left")
        .with_columns(pl.col("risk_score").alias("today_score"))
    )
    if "learned_reasons" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("learned_reasons"))
    critical_expr = pl.col("_critical").fill_null(False)
    out = out.with_columns(
        _blend(pl.col("today_score"), pl.col("learned_score"), critical_expr, weight)
        .clip(0.0, 1.0)
        .alias("risk_score")
    ).drop("_critical")
    return out.sort(["risk_score", KEY], descending=[True, False])


def blend_cases(
    cases: pl.DataFrame, accounts: pl.DataFrame, critical: pl.DataFrame, weight: float
) -> pl.DataFrame:
    """cases with `today_score`, `learned_score` (the highest of its named accounts'),
    `learned_reasons` (that account's) and the blended `risk_score`; ranks renumbered."""
    if cases.is_empty():
        return cases.with_columns(
            pl.col("risk_score").alias("today_score"),
            pl.lit(None, dtype=pl.Float64).alias("learned_score"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("learned_reasons"),
        )
    per_account = (
        cases.select("case_id", pl.col("accounts").alias(KEY))
        .explode(KEY)
        .join(accounts.select(KEY, "learned_score", "learned_reasons"), on=KEY, how="left")
    )
    best = (
        per_account.drop_nulls("learned_score")
        .sort(["case_id", "learned_score", KEY], descending=[False, True, False])
        .group_by("case_id", maintain_order=True)
        .first()
        .select("case_id", "learned_score", "learned_reasons")
    )
    crit = (
        per_account.join(critical, on=KEY, how="semi")
        .select("case_id")
        .unique()
        .with_columns(pl.lit(True).alias("_critical"))
    )
    out = (
        cases.drop("today_score", "learned_score", "learned_reasons", strict=False)
        .join(best, on="case_id", how="left")
        .join(crit, on="case_id", how="left")
        .with_columns(pl.col("risk_score").alias("today_score"))
    )
    out = out.with_columns(
        _blend(
            pl.col("today_score"),
            pl.col("learned_score"),
            pl.col("_critical").fill_null(False),
            weight,
        )
        .clip(0.0, 1.0)
        .alias("risk_score")
    ).drop("_critical")
    return out.sort(["risk_score", "case_id"], descending=[True, False]).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank")
    )

"""Evaluate account and transaction rules into signals, one per (rule, account).

A rule fires on an account when its condition holds in any window period; the signal keeps the
strongest period as evidence (its numbers, its time span, its transactions), so an investigator
sees exactly what met the rule.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from flows87.pipeline.features import FeatureSettings, missing_inputs
from flows87.pipeline.features.compute import has_time_of_day
from flows87.pipeline.rules.compile import compiled_condition, compiled_having
from flows87.pipeline.rules.model import Rule
from flows87.schema import join_ends
from flows87.windows import parse_duration

MAX_TXNS_PER_SIGNAL = 500

SIGNAL_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "signal_id": pl.String(),
        "account_id": pl.String(),
        "txn_ids": pl.List(pl.String()),
        "score": pl.Float64(),
        "family": pl.String(),
        "typologies": pl.List(pl.String()),
        "window_start": pl.Datetime("us", "UTC"),
        "window_end": pl.Datetime("us", "UTC"),
        "evidence": pl.String(),
        "summary": pl.String(),
    }
)


def empty_signals() -> pl.DataFrame:
    return pl.DataFrame(schema=SIGNAL_SCHEMA)


class _Lenient(string.Formatter):
    """Fill a summary template; a missing value shows as '?' rather than failing the run."""

    def get_value(self, key: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(key, "?")

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or value == "?" or (isinstance(value, float) and math.isnan(value)):
            return "?"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _Lenient()


def render(template: str, values: dict[str, Any]) -> str:
    return _FORMATTER.format(template, **values)


def _json_value(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def _signals_from(rule: Rule, best: pl.DataFrame, evidence_cols: list[str]) -> pl.DataFrame:
    """Build the signal rows of one rule from its best period per account (small frames)."""
    rows = []
    for rec in best.iter_rows(named=True):  # one row per flagged account, not per transaction
        ev = {c: _json_value(rec.get(c)) for c in evidence_cols}
        ev["window"] = rule.window
        ev["periods_matched"] = rec.get("periods_matched")
        values = {
            **ev,
            "account": rec["account_id"],
            "window_start": rec["window_start"],
            "window_end": rec["window_end"],
        }
        rows.append(
            {
                "source": "rule",
                "signal_id": rule.id,
                "account_id": rec["account_id"],
                "txn_ids": (rec.get("txn_ids") or [])[:MAX_TXNS_PER_SIGNAL],
                "score": rule.score,
                "family": rule.family,
                "typologies": list(rule.typologies),
                "window_start": rec["window_start"],
                "window_end": rec["window_end"],
                "evidence": json.dumps(ev, default=str, sort_keys=True),
                "summary": render(rule.summary, values),
            }
        )
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA) if rows else empty_signals()


def _best_period(matched: pl.DataFrame, order_by: str) -> pl.DataFrame:
    """Per account: the matching period with the largest `order_by`, and how many periods matched."""
    return (
        matched.with_columns(pl.len().over("account_id").alias("periods_matched"))
        .sort([order_by, "window_start"], descending=[True, False], nulls_last=True)
        .unique("account_id", keep="first", maintain_order=True)
        .sort("account_id")
    )


def period_txns(bests: list[pl.DataFrame], transactions: pl.DataFrame) -> list[pl.DataFrame]:
    """Attach to each rule's flagged accounts (`_best_period` frames) the ids of their
    transactions inside the evidence period: one pass over the transactions for all rules (a
    pass each cost about 0.15 s per rule on 5M transactions)."""
    keys = pl.concat(
        [
            b.select(
                pl.lit(i, pl.UInt32).alias("_rule"), "account_id", "window_start", "window_end"
            )
            for i, b in enumerate(bests)
        ]
    )
    # each side joined to the flagged accounts on its own: no frame of every transaction twice
    legs = pl.concat(
        [
            transactions.select("txn_id", "ts", pl.col(side).alias("account_id")).join(
                keys, on="account_id", how="inner"
            )
            for side in ("src_account", "dst_account")
        ]
    )
    ids = (
        legs.filter(
            (pl.col("ts") >= pl.col("window_start")) & (pl.col("ts") < pl.col("window_end"))
        )
        .sort("ts", "txn_id")
        .group_by("_rule", "account_id", maintain_order=True)
        .agg(pl.col("txn_id").head(MAX_TXNS_PER_SIGNAL).alias("txn_ids"))
    )
    by_rule = ids.partition_by("_rule", as_dict=True, include_key=False)
    empty = ids.clear().drop("_rule")
    return [
        b.join(by_rule.get((i,), empty), on="account_id", how="left") for i, b in enumerate(bests)
    ]


def account_rule_matches(
    rule: Rule,
    features: pl.DataFrame,
    overrides: dict[str, float] | None = None,
    resolved: dict[str, float] | None = None,
) -> pl.DataFrame | None:
    """Per flagged account, the strongest period meeting the rule's condition (None: none);
    `resolved` are the values of its relative parameters (flows87/pipeline/rules/relative.py)."""
    cond = compiled_condition(rule, overrides, resolved)
    # one pass, no copy of the rule's window: the features of all windows are large
    window = pl.col("window") == rule.window
    matched = features.lazy().filter(window & cond.fill_null(False)).collect()
    if matched.is_empty():
        return None
    return _best_period(matched, rule.evidence[0] if rule.evidence else "in_sum")


def account_signals(rule: Rule, best: pl.DataFrame) -> pl.DataFrame:
    """The signals of an account rule from its matches with their transactions (`period_txns`)."""
    return _signals_from(rule, best, rule.evidence)


def transaction_view(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, settings: FeatureSettings
) -> pl.LazyFrame:
    """Transactions with the derived columns transaction rules may read (see TRANSACTION_DERIVED).

    Lazy: a rule's filter then runs before the account joins wherever it reads transaction
    columns only, instead of the joins running on every transaction."""
    hour = pl.col("ts").dt.hour()
    s, e = settings.night_start_hour, settings.night_end_hour
    night = (hour >= s) | (hour < e) if s > e else (hour >= s) & (hour < e)
    attrs = {c: (f"src_{c}", f"dst_{c}") for c in ("kind", "business_type", "opened_at")}
    return (
        join_ends(transactions, accounts, attrs)
        .with_columns(
            hour.alias("hour"),
            night.alias("night"),
            (
                pl.col("src_country").is_not_null()
                & pl.col("dst_country").is_not_null()
                & (pl.col("src_country") != pl.col("dst_country"))
            ).alias("xb"),
            ((pl.col("ts") - pl.col("src_opened_at")).dt.total_seconds() / 86_400).alias(
                "src_age_days"
            ),
            ((pl.col("ts") - pl.col("dst_opened_at")).dt.total_seconds() / 86_400).alias(
                "dst_age_days"
            ),
        )
        .drop("src_opened_at", "dst_opened_at")
    )


def evaluate_transaction_rule(
    rule: Rule,
    view: pl.DataFrame | pl.LazyFrame,
    origin: datetime,
    overrides: dict[str, float] | None = None,
) -> pl.DataFrame:
    cond = compiled_condition(rule, overrides)
    having = compiled_having(rule, overrides)
    assert rule.window is not None and rule.subject is not None
    step_us = int(parse_duration(rule.window).total_seconds() * 1_000_000)
    subject = f"{rule.subject}_account"
    other = "dst_account" if rule.subject == "src" else "src_account"
    origin_lit = pl.lit(origin).cast(pl.Datetime("us", "UTC"))
    k = (pl.col("ts") - origin_lit).dt.total_microseconds() // step_us
    hits = (
        view.lazy()
        .filter(cond.fill_null(False))
        .with_columns((origin_lit + pl.duration(microseconds=k * step_us)).alias("window_start"))
        .collect()
    )
    if hits.is_empty():
        return empty_signals()
    grouped = (
        hits.sort("ts", "txn_id")  # a total order: sums and id lists are the same every run
        .group_by(pl.col(subject).alias("account_id"), "window_start")
        .agg(
            pl.len().alias("count"),
            pl.col("amount_base").sum().alias("total"),
            pl.col(other).n_unique().alias("counterparties"),
            pl.col("location_id").drop_nulls().n_unique().alias("locations"),
            pl.col("ts").dt.date().n_unique().alias("active_days"),
            pl.col("amount_base").max().alias("max_amount"),
            pl.col("txn_id").alias("txn_ids"),
        )
        .with_columns(
            (pl.col("window_start") + pl.duration(microseconds=step_us)).alias("window_end")
        )
    )
    matched = grouped.filter(having.fill_null(False))
    if matched.is_empty():
        return empty_signals()
    best = _best_period(matched, "count")
    return _signals_from(rule, best, rule.evidence)


def absent_inputs(
    features: pl.DataFrame | pl.LazyFrame, transactions: pl.DataFrame | pl.LazyFrame
) -> dict[str, set[str]]:
    """Per rule scope, the inputs the data lacks: features null throughout (their source columns
    were absent) and transaction columns without a value. Computed once per run, not once per
    rule (on 5M transactions each count reads every column); a batch of accounts passes the
    whole run's (scans), as a column empty in its rows alone is not absent."""
    tx = transactions.lazy()
    counts = tx.select(pl.all().is_not_null().sum()).collect(engine="streaming").row(0, named=True)
    absent = {n for n, k in counts.items() if k == 0}
    if "ts" in counts and not has_time_of_day(tx):
        absent |= {"hour", "night"}  # day resolution: every payment would read as at midnight
    return {"account": set(missing_inputs(features)), "transaction": absent}


def needs_missing(rule: Rule, absent: dict[str, set[str]]) -> list[str]:
    """Inputs a rule reads that the data does not have (the rule is then skipped, with a warning).

    `absent` is `absent_inputs` of the run's features and transactions."""
    if rule.scope not in absent:
        return []
    return sorted(set(compiled_condition(rule).meta.root_names()) & absent[rule.scope])

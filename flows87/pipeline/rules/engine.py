"""Run a rule catalogue over one run's data: account and transaction rules first, then graph rules
(which may read what the first ones flagged)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from flows87.pipeline.features import FeatureSettings
from flows87.pipeline.rules.ceiling import Ceiling, hold_back
from flows87.pipeline.rules.compile import compiled_condition, compiled_of
from flows87.pipeline.rules.evaluate import (
    SIGNAL_SCHEMA,
    absent_inputs,
    account_rule_matches,
    account_signals,
    empty_signals,
    evaluate_transaction_rule,
    needs_missing,
    period_txns,
    render,
    transaction_view,
)
from flows87.pipeline.rules.model import Rule
from flows87.pipeline.rules.relative import Resolved, resolve

TRANSACTION_KEYS = (
    "txn_id",
    "ts",
    "src_account",
    "dst_account",
    "amount_base",
    "location_id",
    "src_country",
    "dst_country",
)
"""Transaction columns account and transaction rules always read: the evidence period's
transactions, the aggregates of a transaction rule and the view's derived columns (xb)."""
FEATURE_KEYS = ("account_id", "window", "window_start", "window_end", "in_sum")
"""Feature columns every account rule reads (in_sum orders periods when a rule has no evidence)."""


def columns_read(rules: list[Rule]) -> tuple[set[str], set[str]] | None:
    """(transaction columns, feature columns) that account and transaction `rules` read, so a
    stage can load only those; None when a graph rule is among them (patterns read anything).

    Names of the transaction view's derived columns and of features absent from the data are
    included too: a reader keeps the names its file has."""
    tx, feats = set(TRANSACTION_KEYS), set(FEATURE_KEYS)
    for rule in rules:
        if rule.status == "deprecated":
            continue
        if rule.scope == "graph":
            return None
        roots = set(compiled_condition(rule).meta.root_names())
        for name, param in rule.params.items():
            if param.of is not None:
                roots |= set(compiled_of(rule, name).meta.root_names())
        if rule.scope == "account":
            feats |= roots | set(rule.evidence)
        else:
            tx |= roots
    return tx, feats


@dataclass
class RuleRun:
    signals: pl.DataFrame
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    held: pl.DataFrame = field(default_factory=empty_signals)
    """Signals of rules above their flood ceiling, kept aside (flows87/pipeline/rules/ceiling.py)."""
    held_back: list[dict[str, Any]] = field(default_factory=list)
    relative: list[dict[str, Any]] = field(default_factory=list)
    """The value each relative (percentile) parameter took (flows87/pipeline/rules/relative.py)."""

    def keep(self, rule: Rule, signals: pl.DataFrame, ceiling: Ceiling | None) -> pl.DataFrame:
        """`signals` of `rule` within its ceiling; the rest is added to `held`."""
        if ceiling is None or signals.is_empty():
            return signals
        kept, held, record = hold_back(rule, signals, ceiling)
        if record is not None:
            self.held = pl.concat([self.held, held])
            self.held_back.append(record)
        return kept


ACCOUNT_SLOT = "\x00account\x00"
"""Stands for the account in a summary rendered once per instance and role."""


def graph_signals(rule: Rule, hits: pl.DataFrame) -> pl.DataFrame:
    """Turn a pattern's hits (one row per account of an instance) into signals of this rule.

    An instance's evidence is the same for all its members but their role, so the evidence and
    the summary are made once per (instance, role) in Python and joined to the member rows:
    a fan-in of 5,000 hubs with 20 senders each is 10,000 renderings, not 100,000."""
    if hits.is_empty():
        return empty_signals()
    rendered = []
    for instance, role, evidence in (
        hits.select("instance", "role", "evidence").unique(maintain_order=True).iter_rows()
    ):
        ev = json.loads(evidence)
        ev.setdefault("instance", instance)
        ev["role"] = role
        rendered.append(
            (
                instance,
                role,
                evidence,
                json.dumps(ev, sort_keys=True, default=str),
                render(rule.summary, {**ev, "account": ACCOUNT_SLOT}),
            )
        )
    table = pl.DataFrame(
        rendered,
        schema=["instance", "role", "evidence", "_evidence", "_summary"],
        orient="row",
    )
    return (
        hits.join(table, on=["instance", "role", "evidence"], how="left", maintain_order="left")
        .select(
            pl.lit("graph").alias("source"),
            pl.lit(rule.id).alias("signal_id"),
            "account_id",
            pl.col("txn_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.lit(rule.score, dtype=pl.Float64).alias("score"),
            pl.lit(rule.family).alias("family"),
            pl.lit(list(rule.typologies), dtype=pl.List(pl.String)).alias("typologies"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("window_start"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("window_end"),
            pl.col("_evidence").alias("evidence"),
            pl.col("_summary")
            .str.replace_all(ACCOUNT_SLOT, pl.col("account_id"), literal=True)
            .alias("summary"),
        )
        .cast(pl.Schema(SIGNAL_SCHEMA))
    )


PERIOD_TXNS = "account rules' transactions"
"""The timings key of the one pass that finds the account rules' transactions."""


def _with_account_signals(
    parts: list[pl.DataFrame],
    ordered: list[Rule],
    matches: dict[str, pl.DataFrame],
    transactions: pl.DataFrame,
    result: RuleRun,
    ceiling: Ceiling | None,
) -> list[pl.DataFrame]:
    """`parts` (one per rule evaluated so far, in `ordered` order) with each matched account
    rule's placeholder replaced by its signals within the ceiling, their transactions found in
    one pass (for the kept accounts only: a flood's transactions are never looked up)."""
    t0 = time.perf_counter()
    by_id = {r.id: r for r in ordered}
    ids = list(matches)
    kept = {i: result.keep(by_id[i], account_signals(by_id[i], matches[i]), ceiling) for i in ids}
    bests = [
        matches[i].join(kept[i].select("account_id"), on="account_id", how="semi") for i in ids
    ]
    with_txns = dict(zip(ids, period_txns(bests, transactions), strict=True))
    evaluated = [r.id for r in ordered if r.id in result.fired]
    out = []
    for rule_id, part in zip(evaluated, parts, strict=True):
        if rule_id in with_txns:
            part = _attach_txns(kept[rule_id], with_txns[rule_id])
            result.fired[rule_id] = part.height
        out.append(part)
    result.seconds[PERIOD_TXNS] = round(time.perf_counter() - t0, 3)
    return out


def _attach_txns(signals: pl.DataFrame, with_txns: pl.DataFrame) -> pl.DataFrame:
    """An account rule's signals (one per account) with the transaction ids of `period_txns`."""
    return (
        signals.drop("txn_ids")
        .join(
            with_txns.select("account_id", "txn_ids"),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(pl.col("txn_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .select(list(SIGNAL_SCHEMA.names()))
    )


def run_rules(
    rules: list[Rule],
    features: pl.DataFrame,
    transactions: pl.DataFrame,
    accounts: pl.DataFrame,
    settings: FeatureSettings,
    origin: datetime,
    overrides: dict[str, dict[str, float]] | None = None,
    prior: pl.DataFrame | None = None,
    ceiling: Ceiling | None = None,
    resolved: Resolved | None = None,
    absent: dict[str, set[str]] | None = None,
    graph_columns: tuple[str, ...] | None = None,
    hits: dict[str, pl.DataFrame] | None = None,
) -> RuleRun:
    """Evaluate `rules`; graph rules also see `prior` signals (the rules stage's, in a graph stage).

    With a `ceiling`, each rule's signals are held back above it before any graph rule reads
    them (a partitioned run leaves it out and holds back after merging). Relative parameters
    take the `resolved` values, or are resolved on `features` (the whole population's); the
    inputs the data lacks are `absent` (`absent_inputs` of the whole run), or those `features`
    and `transactions` lack. Graph rules' context keeps the transaction columns
    `graph_columns` (default: every one a pattern reads), and each table it memoises only while
    a later graph rule's pattern reads it (graph/groups.py MEMOS). A graph rule with its
    pattern's `hits` given (by rule id: found a partition at a time, graph/anchored.py) turns
    them into signals without a context."""
    from flows87.pipeline.graph.context import TX_COLUMNS
    from flows87.pipeline.graph.groups import still_read
    from flows87.pipeline.graph.patterns import PATTERNS, GraphContext

    overrides = overrides or {}
    result = RuleRun(empty_signals())
    if resolved is None:
        resolved, result.relative = resolve(rules, features, overrides)
    parts: list[pl.DataFrame] = []
    view = None
    ctx: GraphContext | None = None
    ordered = [r for r in rules if r.scope != "graph"] + [r for r in rules if r.scope == "graph"]
    later = [r.pattern for r in ordered if r.scope == "graph" and r.status != "deprecated"]
    if absent is None:
        absent = absent_inputs(features, transactions)
    # Account rules first find their matches; their transactions are then looked up in one pass
    # for all of them (PERIOD_TXNS in the timings), before any graph rule reads their signals.
    matches: dict[str, pl.DataFrame] = {}
    for rule in ordered:
        if rule.status == "deprecated":
            continue
        t0 = time.perf_counter()
        missing = needs_missing(rule, absent)
        if missing:
            result.skipped.append(rule.id)
            result.warnings.append(f"rule {rule.id} skipped: the data has no {', '.join(missing)}")
            continue
        params = overrides.get(rule.id)
        if rule.scope == "account":
            best = account_rule_matches(rule, features, params, resolved.get(rule.id))
            if best is not None:
                matches[rule.id] = best
            sig = empty_signals()  # filled in below, with the transactions
        elif rule.scope == "transaction":
            if view is None:  # lazy: each rule's filter runs before the account joins
                view = transaction_view(transactions.lazy(), accounts.lazy(), settings)
            sig = result.keep(rule, evaluate_transaction_rule(rule, view, origin, params), ceiling)
        else:
            if matches:
                parts = _with_account_signals(
                    parts, ordered, matches, transactions, result, ceiling
                )
                matches = {}
            assert rule.pattern is not None
            pattern = PATTERNS[rule.pattern]
            found = (hits or {}).get(rule.id)
            if found is None:
                if ctx is None:  # one context for all graph rules: it caches derived tables
                    seen = [prior] if prior is not None else []
                    ctx = GraphContext(
                        transactions,
                        accounts,
                        features,
                        pl.concat([*seen, *parts]) if seen or parts else empty_signals(),
                        graph_columns or TX_COLUMNS,
                    )
                found = pattern.fn(ctx, {**pattern.params, **rule.values(params)})
            later.remove(rule.pattern)
            if ctx is not None:
                ctx.release(still_read([p for p in later if p is not None]))
            sig = result.keep(rule, graph_signals(rule, found), ceiling)
            del found
        parts.append(sig)
        result.fired[rule.id] = sig.height
        result.seconds[rule.id] = round(time.perf_counter() - t0, 3)
    if matches:
        parts = _with_account_signals(parts, ordered, matches, transactions, result, ceiling)
    result.signals = pl.concat(parts) if parts else empty_signals()
    return result

"""The flood ceiling: no rule or pattern may flag more than a set share of the run's accounts.

A threshold written for one population floods on another (a "new account" rule where every
account opened last month, a fan-in where merchants have thousands of payers). Flooded alerts
are worse than none: they bury the real cases, and patterns that read other rules' flags (a
controller collecting from flagged accounts) then see everyone. So every rule's hits are counted
against the population it ran on, and above its ceiling (`max_share` of the active accounts, at
least `min_accounts`), the rule is held back:

- a rule with `rank_by` keeps its strongest hits only: the threshold is raised on that value to
  just above the first value that would pass the ceiling (ties are held back together, so the
  result does not depend on the order rows came in);
- a rule without one is held back whole: its condition says nothing about which hits matter
  more, and keeping an arbitrary part would be a lottery.

Held-back signals are kept (RUN/signals_held.parquet, without their transaction lists) but count
for nothing: no risk, no case, no input to other patterns. Each hold-back is recorded with the
counts, the cut and the reason, for the stage files, the signals gate and the run report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from flows87.pipeline.rules.model import Rule


class CeilingSettings(BaseModel):
    """The catalogue's default ceiling (`ceiling:` in rules/settings/scoring.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_share: float = Field(0.02, gt=0, le=1)
    min_accounts: int = Field(25, ge=1)


@dataclass(frozen=True)
class Ceiling:
    """The ceiling of one run: its active accounts and the catalogue's default.

    A pattern instance counts as at most `instance_accounts` accounts (its first members: the
    hub, the chain's ends, ...): a 100k-hop chain is one alert, reviewed as one case that names
    that many accounts (`max_case_accounts`), not 100k alerts."""

    population: int
    settings: CeilingSettings = CeilingSettings()
    instance_accounts: int | None = None

    def share(self, rule: Rule) -> float:
        return rule.max_share if rule.max_share is not None else self.settings.max_share

    def limit(self, rule: Rule) -> int:
        """Most accounts `rule` may flag in this run."""
        return max(self.settings.min_accounts, math.floor(self.share(rule) * self.population))


def rank_values(signals: pl.DataFrame, key: str) -> pl.Expr:
    """A signal's `key` from its evidence JSON, as a number (null when absent or not a number)."""
    return pl.col("evidence").str.json_path_match(f"$.{key}").cast(pl.Float64, strict=False)


def hold_back(
    rule: Rule, signals: pl.DataFrame, ceiling: Ceiling
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any] | None]:
    """(kept, held back, record) of one rule's signals; the record is None below the ceiling.

    O(S log S) for S signals: one sort of the accounts by their strongest hit."""
    counted = _counted(rule, signals, ceiling)
    flagged = signals.filter(counted)["account_id"].n_unique()
    limit = ceiling.limit(rule)
    if flagged <= limit:
        return signals, signals.clear(), None
    record: dict[str, Any] = {
        "rule": rule.id,
        "source": "graph" if rule.scope == "graph" else "rule",
        "accounts_flagged": flagged,
        "population": ceiling.population,
        "share": round(flagged / max(ceiling.population, 1), 4),
        "max_share": ceiling.share(rule),
        "ceiling_accounts": limit,
        "rank_by": rule.rank_by,
    }
    share = f"{flagged:,} of {ceiling.population:,} active accounts ({record['share']:.1%})"
    above = f"above its ceiling of {limit:,} ({ceiling.share(rule):.1%})"
    value = rank_values(signals, rule.rank_by) if rule.rank_by else pl.lit(None, pl.Float64)
    ranked = signals.with_columns(value.alias("_v"), counted.alias("_counted"))
    if rule.rank_by is None or ranked["_v"].null_count() == ranked.height:
        why = (
            "it has no rank_by to keep its strongest hits by"
            if rule.rank_by is None
            else f"no signal has a number in evidence field {rule.rank_by!r}"
        )
        record.update(action="held back", kept_accounts=0, cut=None)
        record["reason"] = f"flagged {share}, {above}; held back whole: {why}"
        return signals.clear(), _without_txns(signals), record
    # the (limit + 1)-th account by its strongest hit sets the cut: every hit at or below it goes
    best = (
        ranked.filter("_counted")
        .group_by("account_id")
        .agg(pl.col("_v").max())
        .sort("_v", descending=True, nulls_last=True)
    )
    cut = best["_v"][limit]
    keep = pl.col("_v") > cut if cut is not None else pl.col("_v").is_not_null()
    kept = ranked.filter(keep)
    held = ranked.filter(~keep.fill_null(False)).drop("_v", "_counted")
    kept_accounts = kept.filter("_counted")["account_id"].n_unique()
    kept = kept.drop("_v", "_counted")
    record.update(action="threshold raised", kept_accounts=kept_accounts, cut=cut)
    record["reason"] = (
        f"flagged {share}, {above}; kept the {record['kept_accounts']:,} accounts whose "
        f"{rule.rank_by} is above {cut:,.4g}"
        if cut is not None
        else f"flagged {share}, {above}; kept those with a value of {rule.rank_by}"
    )
    return kept, _without_txns(held), record


def _counted(rule: Rule, signals: pl.DataFrame, ceiling: Ceiling) -> pl.Expr:
    """The signals that count toward the ceiling: all of an account rule's; of a pattern's, the
    first `instance_accounts` members of each instance (in the pattern's display order)."""
    if rule.scope != "graph" or ceiling.instance_accounts is None:
        return pl.lit(True)
    instance = pl.col("evidence").str.json_path_match("$.instance")
    return pl.int_range(pl.len()).over(instance) < ceiling.instance_accounts


def _without_txns(signals: pl.DataFrame) -> pl.DataFrame:
    """Held-back signals keep their evidence and summary, not their transaction lists (a flood
    of them would cost as much memory as the transactions themselves)."""
    return signals.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("txn_ids"))


def hold_back_all(
    rules: list[Rule], signals: pl.DataFrame, ceiling: Ceiling
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]]]:
    """`hold_back` for each rule's signals in `signals` (a merged signals file); the order of
    the kept and held rows follows `signals`."""
    by_id = {r.id: r for r in rules}
    kept_parts, held_parts, records = [], [], []
    for (rule_id,), part in signals.partition_by(
        "signal_id", as_dict=True, maintain_order=True
    ).items():
        rule = by_id.get(str(rule_id))
        if rule is None:
            kept_parts.append(part)
            continue
        kept, held, record = hold_back(rule, part, ceiling)
        kept_parts.append(kept)
        held_parts.append(held)
        if record:
            records.append(record)
    empty = signals.clear()
    return (
        pl.concat([empty, *kept_parts]),
        pl.concat([empty, *held_parts]),
        sorted(records, key=lambda r: r["rule"]),
    )


def summary_lines(records: list[dict[str, Any]]) -> list[str]:
    """One sentence per held-back rule, for stage warnings and the report."""
    return [f"rule {r['rule']} {r['action']}: {r['reason']}" for r in records]

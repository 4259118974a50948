"""Graph rules run group by group (graph/groups.py) and their results put back in rule order:
what one context over every pattern gives, with one group's tables in memory at a time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import polars as pl

from flows87.pipeline.graph.groups import GROUP_OF, GROUPS, Group
from flows87.pipeline.rules.engine import RuleRun
from flows87.pipeline.rules.evaluate import empty_signals
from flows87.pipeline.rules.model import Rule


def groups_of(rules: list[Rule]) -> list[tuple[Group, list[Rule]]]:
    """The groups `rules`' patterns fall in (GROUPS order), each with its rules in `rules` order."""
    out = []
    for group in GROUPS:
        mine = [r for r in rules if r.pattern is not None and GROUP_OF.get(r.pattern) is group]
        if mine:
            out.append((group, mine))
    rest = [r for r in rules if r.pattern not in GROUP_OF]
    if rest:  # not in any group (a pattern added to the registry only): alone, every column
        raise ValueError(f"patterns in no graph group: {sorted({str(r.pattern) for r in rest})}")
    return out


def run_grouped(
    rules: list[Rule],
    run: Callable[[Group, list[Rule]], RuleRun],
    between: Callable[[], Any] = lambda: None,
) -> RuleRun:
    """`run` each group's rules (its own context), calling `between` after each (to give the
    memory back), and merge the results in `rules` order."""
    runs = []
    for group, mine in groups_of(rules):
        runs.append(run(group, mine))
        between()
    return merge_runs(rules, runs)


_RULE = re.compile(r"^rule (\S+) ")


def merge_runs(rules: list[Rule], runs: list[RuleRun]) -> RuleRun:
    """One RuleRun of `rules` from the runs of disjoint subsets of them, everything in `rules`
    order as one run of them all gives it: signals and held-back signals rule after rule, and
    the per-rule records and timings."""
    at = {r.id: i for i, r in enumerate(rules)}
    last = len(rules)

    def by_rule(frames: list[pl.DataFrame]) -> pl.DataFrame:
        pieces: dict[str, pl.DataFrame] = {}
        for frame in frames:
            for key, piece in frame.partition_by(
                "signal_id", as_dict=True, maintain_order=True
            ).items():
                pieces[str(key[0])] = piece
        ordered = [pieces[k] for k in sorted(pieces, key=lambda k: at.get(k, last))]
        return pl.concat([empty_signals(), *ordered]) if ordered else empty_signals()

    def rule_of(text: str) -> int:
        found = _RULE.match(text)
        return at.get(found.group(1), last) if found else last

    merged = RuleRun(by_rule([r.signals for r in runs]))
    merged.held = by_rule([r.held for r in runs])
    merged.warnings = sorted((w for r in runs for w in r.warnings), key=rule_of)
    merged.skipped = sorted((s for r in runs for s in r.skipped), key=lambda s: at.get(s, last))
    merged.held_back = sorted(
        (h for r in runs for h in r.held_back), key=lambda h: at.get(h.get("rule", ""), last)
    )
    merged.relative = sorted(
        (v for r in runs for v in r.relative), key=lambda v: at.get(v.get("rule", ""), last)
    )
    for field in ("fired", "seconds"):
        values = {k: v for r in runs for k, v in getattr(r, field).items()}
        setattr(merged, field, dict(sorted(values.items(), key=lambda kv: at.get(kv[0], last))))
    return merged

"""Graph patterns as a whole: the registry and its rules, empty data, near misses that fire once
relaxed, hits independent of row order, and busiest windows."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import graph_cases
import polars as pl
import pytest
from graph_rows import T0, a, context, t
from polars.testing import assert_frame_equal

from flows87.errors import ConfigError
from flows87.pipeline.graph.common import busiest_windows
from flows87.pipeline.graph.patterns import HIT_SCHEMA, PATTERNS, GraphContext, find
from flows87.pipeline.rules.compile import check_rule
from flows87.pipeline.rules.loader import RULES_DIR, load_rule
from flows87.pipeline.rules.model import Param, Rule


def test_registry_entries_are_documented() -> None:
    assert len(PATTERNS) == 19
    for name, p in PATTERNS.items():
        assert p.name == name
        assert len(p.description) > 40 and p.description.endswith(".")
        assert p.params and all(isinstance(v, int | float) for v in p.params.values())


def _graph_rule(pattern: str, params: dict[str, float]) -> Rule:
    return Rule(
        id="ml_test_rule",
        title="A test rule",
        description="A graph rule used by the tests only.",
        status="experimental",
        severity="high",
        family="network",
        typologies=["laundering"],
        date=date(2024, 1, 1),
        references=["FATF"],
        scope="graph",
        pattern=pattern,
        params={k: Param(default=v, min=0, max=1000) for k, v in params.items()},
        summary="found",
        falsepositives=["none"],
    )


def test_rules_may_override_declared_params_only() -> None:
    check_rule(_graph_rule("cycle", {"min_length": 3, "window_days": 5}))
    with pytest.raises(ConfigError, match="no parameter 'hops'"):
        check_rule(_graph_rule("cycle", {"hops": 3}))
    with pytest.raises(ConfigError, match="no parameter"):
        find(context([]), "cycle", {"hops": 3})
    with pytest.raises(ConfigError, match="unknown graph pattern"):
        find(context([]), "cycles")


@pytest.mark.parametrize(
    "rule_id",
    [
        "fa_multi_card_atm",
        "id_shared_identifiers",
        "ml_many_to_one_beneficiary",
        "ml_fan_in",
        "ml_fan_out",
        "ml_mule_network",
        "cse_corridor_beneficiaries",
        "fa_funnel_flow",
        "fa_structuring_accounts",
        "fa_funnel_party",
        "ht_controller_party",
    ],
)
def test_rule_file_declares_the_patterns_params(rule_id: str) -> None:
    rule = load_rule(RULES_DIR / f"{rule_id}.yaml")
    check_rule(rule)
    assert rule.pattern is not None
    declared = {name: param.default for name, param in rule.params.items()}
    assert declared == PATTERNS[rule.pattern].params


def test_every_pattern_runs_on_empty_and_bare_data() -> None:
    bare = [t(f"r{i}", i, f"acc{i % 7}", f"acc{(i * 3 + 1) % 7}", 100.0 + i) for i in range(40)]
    bare = [r for r in bare if r["src_account"] != r["dst_account"]]
    accounts = [
        {
            "account_id": f"acc{i}",
            "party_id": None,
            "bank_id": None,
            "kind": "unknown",
            "opened_at": None,
            "country": None,
        }
        for i in range(7)
    ]
    for ctx in (context([]), context(bare, accounts)):
        for name in PATTERNS:
            hits = find(ctx, name)
            assert hits.schema == HIT_SCHEMA
            if name not in ("cycle", "layering_chain", "scatter_gather"):
                assert hits.is_empty(), name  # these need data the bare set lacks


def _late_cycle() -> GraphContext:
    return context(
        [*graph_cases.CYCLE[:2], {**graph_cases.CYCLE[2], "ts": T0 + timedelta(days=11)}]
    )


def _slow_chain() -> GraphContext:
    return context(
        [*graph_cases.CHAIN[:2], {**graph_cases.CHAIN[2], "ts": T0 + timedelta(hours=70)}]
    )


def _merchant_in_the_middle() -> GraphContext:
    busy = [t(f"m{i}", 50 + i, f"shop{i}", "X2", 20, "card") for i in range(35)]
    return context(graph_cases.scatter() + busy)


@pytest.mark.parametrize(
    ("name", "build", "relaxed"),
    [
        ("cycle", _late_cycle, {"window_days": 12}),
        ("layering_chain", _slow_chain, {"max_hop_hours": 72}),
        ("scatter_gather", _merchant_in_the_middle, {"max_intermediary_degree": 40}),
        (
            "controller_hub",
            lambda: context(
                graph_cases.hub_rows(10), signals=graph_cases.signals(["S0", "S1", "S2"])
            ),
            {"min_share": 0.05},
        ),
        ("payroll_recapture", lambda: graph_cases.payroll(6, delay_hours=96), {"max_days": 5}),
        ("shared_address_workers", lambda: graph_cases.housed(sharing=4), {"min_sharing": 4}),
        (
            "shared_identifiers",
            lambda: graph_cases.ring(["Ann Smith", "Bo Smith", "Cy Smith", "Di Smith"]),
            {"min_surnames": 1},
        ),
        ("onboarding_burst", lambda: graph_cases.openings(gap_days=5), {"window_days": 11}),
        ("multi_card_atm", lambda: graph_cases.atm(minutes_apart=6), {"window_minutes": 12}),
        (
            "many_to_one_beneficiary",
            lambda: graph_cases.many_to_one(spacing_hours=24),
            {"window_days": 8},
        ),
        ("funnel", lambda: graph_cases.funnel(days_apart=3), {"window_days": 10}),
        ("party_structuring", lambda: graph_cases.structurer(days_apart=4), {"window_days": 9}),
        ("fan_out", lambda: graph_cases.front_company(cashed=0.7), {"min_cash_out": 0.6}),
    ],
)
def test_a_near_miss_fires_once_its_parameter_is_relaxed(
    name: str, build: Any, relaxed: dict[str, float]
) -> None:
    ctx = build()
    assert find(ctx, name).is_empty()
    assert find(ctx, name, relaxed)["instance"].n_unique() == 1


def _prefixed(i: int, ctx: GraphContext) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The context's tables with every id prefixed, so several planted sets can share one run."""
    pre = pl.lit(f"{i}_")
    tx = ctx.transactions.with_columns(
        (pre + pl.col(c)).alias(c) for c in ("txn_id", "src_account", "dst_account")
    )
    acc = ctx.accounts.with_columns(
        (pre + pl.col(c)).alias(c) for c in ("account_id", "party_id", "address")
    )
    sig = ctx.signals.with_columns((pre + pl.col("account_id")).alias("account_id"))
    return tx, acc, sig


def test_hits_do_not_depend_on_row_order() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    planted = [
        context(graph_cases.CYCLE),
        context(graph_cases.CHAIN),
        context(graph_cases.scatter()),
        graph_cases.many_to_one(),
        context(graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1", "S2"])),
        graph_cases.payroll(4),
        graph_cases.housed(5),
        graph_cases.ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"]),
        graph_cases.openings(2),
        graph_cases.atm(),
        context(graph_cases.mules(30, graph_cases.FULL), young),
        context(graph_cases.fan_rows()),
        context(graph_cases.fan_rows(inbound=False)),
        context(graph_cases.small_intl(), signals=graph_cases.cse_signal("SENDER")),
        graph_cases.sharers(2, graph_cases.STUDENTS[:4]),
        graph_cases.funnel(),
        graph_cases.structurer(),
        graph_cases.spread_funnel(),
        graph_cases.spread_controller(),
    ]
    parts = [_prefixed(i, c) for i, c in enumerate(planted)]
    tx, acc, sig = (pl.concat([p[j] for p in parts]) for j in range(3))
    ctx = GraphContext(tx, acc, pl.DataFrame(), sig)
    shuffled = GraphContext(
        tx.sample(fraction=1, shuffle=True, seed=3),
        acc.sample(fraction=1, shuffle=True, seed=4),
        pl.DataFrame(),
        sig,
    )
    for name in PATTERNS:
        hits = find(ctx, name)
        assert not hits.is_empty(), name
        assert_frame_equal(
            hits.sort("instance", "account_id"), find(shuffled, name).sort("instance", "account_id")
        )


def test_busiest_windows_equals_a_rolling_distinct_count() -> None:
    """The linear running count gives the rolling n_unique's best window (ties, window edges and
    items seen twice included), and its earliest end on ties."""
    rng = random.Random(7)
    for _ in range(200):
        hours = [0, 12, 24, 36, 48, 60, 72]
        rows = [
            (
                f"h{rng.randint(0, 3)}",
                f"s{rng.randint(0, 12)}",
                T0
                + timedelta(hours=rng.choice(hours) if rng.random() < 0.5 else rng.random() * 90),
            )
            for _ in range(rng.randint(1, 60))
        ]
        legs = pl.DataFrame(rows, schema=["hub", "spoke", "ts"], orient="row")
        window, k = timedelta(days=rng.choice([0.5, 1, 1.5, 2])), rng.randint(1, 6)
        expected = (
            legs.sort("hub", "ts")
            .rolling(index_column="ts", period=window, group_by="hub")
            .agg(pl.col("spoke").n_unique().alias("n"))
            .filter(pl.col("n") >= k)
            .sort(["hub", "n", "ts"], descending=[False, True, False])
            .unique("hub", keep="first", maintain_order=True)
            .select("hub", pl.col("ts").alias("anchor"))
        )
        got = busiest_windows(legs, "hub", "spoke", window, k)
        assert_frame_equal(got.sort("hub"), expected.sort("hub"))

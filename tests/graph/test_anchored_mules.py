"""mule_network, multi_card_atm and corridor_beneficiaries found a partition at a time
(graph/anchored.py; their ANCHORED in graph/mules.py and graph/corridors.py) equal the whole
graph's hits: on generated data, hand-built shapes and random graphs, with the partition's own
reach and with the wider context a DAG partition task builds (the union of every anchored
pattern's reach, here with the accounts' incident transactions)."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import graph_cases
import polars as pl
import pytest
from graph_rows import a, context, t
from polars.testing import assert_frame_equal

from flows87.pipeline.graph import mules
from flows87.pipeline.graph.anchored import Partition, anchored_in, incident
from flows87.pipeline.graph.context import GraphContext
from flows87.pipeline.graph.hits import HIT_SCHEMA
from flows87.pipeline.graph.patterns import ANCHORED, PATTERNS
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.research.synth import generate
from tests.graph.anchored_check import assert_same_by_partition

MINE = ("corridor_beneficiaries", "multi_card_atm", "mule_network")

FIRING: dict[str, dict[str, float]] = {
    "multi_card_atm": {"min_accounts": 2, "window_minutes": 60, "max_accounts": 20},
    "mule_network": {"min_senders": 2, "min_receivers": 2, "min_density": 0.3, "min_amount": 0},
    "corridor_beneficiaries": {"max_amount": 1000},
}
"""Parameters with which each pattern fires on the data below (more instances to compare)."""


def _hits(ctx: GraphContext, name: str, values: dict[str, float]) -> pl.DataFrame:
    return PATTERNS[name].fn(ctx, values).select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA)


def _same_in_wider_contexts(
    tx: pl.DataFrame, accounts: pl.DataFrame, prior: pl.DataFrame, name: str, values: dict
) -> None:
    """As a DAG partition task runs it: the context holds the pattern's reach and more (other
    patterns' reaches); the instances anchored in the partition must not change."""
    values = {**PATTERNS[name].params, **values}
    spec = ANCHORED[name]
    whole = _hits(GraphContext(tx, accounts, pl.DataFrame(), prior), name, values)
    found = []
    for part in range(3):
        p = Partition(part, 3)
        keep = spec.reach(tx.lazy(), accounts, p) | incident(tx.lazy(), accounts, p)
        ctx = GraphContext(tx.filter(keep), accounts, pl.DataFrame(), prior)
        if spec.prime is not None:
            spec.prime(tx.lazy(), ctx, values)
        found.append(anchored_in(_hits(ctx, name, values), spec, p))
    assert_frame_equal(pl.concat(found).sort("instance", maintain_order=True), whole)


def _check(
    tx: pl.DataFrame, accounts: pl.DataFrame, prior: pl.DataFrame, name: str, values: dict
) -> int:
    """Both comparisons; the number of instances the whole graph gives."""
    whole = assert_same_by_partition(tx, accounts, pl.DataFrame(), prior, name, values)
    _same_in_wider_contexts(tx, accounts, prior, name, values)
    return whole["instance"].n_unique()


def _flagged(tx: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """Prior signals flagging (score 1) a `share` of the accounts sending money abroad, and
    some more with a score below the threshold or another typology."""
    rng = random.Random(seed)
    senders = sorted(set(tx.filter(pl.col("src_country") != pl.col("dst_country"))["src_account"]))
    signals = [graph_cases.cse_signal(s) for s in senders if rng.random() < share]
    signals += [graph_cases.cse_signal(s, score=0.5) for s in senders[:3]]
    signals += [graph_cases.cse_signal(s, typology="remittance") for s in senders[-3:]]
    return pl.concat(signals) if signals else pl.DataFrame(schema=SIGNAL_SCHEMA)


@pytest.fixture(scope="module")
def generated() -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    return [(d.transactions, d.accounts) for d in (generate(800, 14, s) for s in (1, 2))]


@pytest.mark.parametrize("name", MINE)
def test_generated_data_a_partition_at_a_time(
    generated: list[tuple[pl.DataFrame, pl.DataFrame]], name: str
) -> None:
    for i, (tx, accounts) in enumerate(generated):
        prior = _flagged(tx, 0.5, i)
        for values in ({}, FIRING[name]):
            _check(tx, accounts, prior, name, values)
        assert _check(tx, accounts, prior, name, FIRING[name]) >= 2, (name, i)


def _frame(ctx: GraphContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    return ctx.transactions, ctx.accounts


def test_hand_built_shapes_a_partition_at_a_time() -> None:
    # two controllers at two machines, and a crowd at a third
    one, two = graph_cases.atm(), graph_cases.atm(minutes_apart=5)
    moved = two.transactions.with_columns(
        pl.lit("ATM-7").alias("location_id"),
        pl.col("src_account").str.replace("C", "D"),
        pl.col("txn_id") + "-2",
    )
    crowd = [graph_cases.cash(f"q{i}", 10 + i / 60, f"Q{i}", "ATM-9") for i in range(30)]
    tx = pl.concat([one.transactions, moved, context(crowd).transactions], how="vertical")
    accounts = pl.concat(
        [
            one.accounts,
            one.accounts.with_columns(pl.col("account_id").str.replace("C", "D")),
            context(crowd).accounts,
        ]
    ).unique("account_id", keep="first", maintain_order=True)
    assert _check(tx, accounts, pl.DataFrame(schema=SIGNAL_SCHEMA), "multi_card_atm", {}) == 2
    # two mule rings of young accounts, and old accounts paying each other the same way
    young = [a(f"{k}{i}", opened_days=-30) for k in "SRUV" for i in range(3)]
    rows = graph_cases.mules(30, graph_cases.FULL) + [
        t(f"n{s}{r}", 50 + s * 3 + r, f"U{s}", f"V{r}", 900, "p2p") for s, r in graph_cases.FULL
    ]
    rows += [t(f"o{s}{r}", 60 + s, f"O{s}", f"P{r}", 900, "p2p") for s, r in graph_cases.FULL]
    rows += [t("abroad", 40, "R0", "FAR", 3000, "wire", src_country="US", dst_country="RO")]
    ctx = context(rows, young)
    assert _check(*_frame(ctx), pl.DataFrame(schema=SIGNAL_SCHEMA), "mule_network", {}) == 2
    # two flagged senders paying facilitators abroad
    pay = graph_cases.small_intl()
    pay += [r | {"txn_id": r["txn_id"] + "b", "src_account": "OTHER"} for r in pay]
    prior = pl.concat([graph_cases.cse_signal("SENDER"), graph_cases.cse_signal("OTHER")])
    ctx = context(pay)
    assert _check(*_frame(ctx), prior, "corridor_beneficiaries", {}) == 2


def _random_graph(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Few accounts (some young, some of one party), few machines, coarse times (ties), small
    and large transfers at home and abroad: every pattern here finds something on some seeds."""
    rng = random.Random(seed)
    names = [f"A{i}" for i in range(14)]
    accounts = [
        a(n, party=f"P{rng.randrange(10)}", opened_days=rng.choice([-400, -40, -10, 1]))
        for n in names
    ]
    rows: list[dict[str, Any]] = []
    for i in range(rng.randrange(20, 60)):
        src, dst = rng.sample(names, 2)
        abroad = rng.random() < 0.4
        rows.append(
            t(
                f"t{i:03d}",
                rng.randrange(0, 20 * 24, 6),
                src,
                dst if rng.random() < 0.8 else f"X{rng.randrange(3)}",
                rng.choice([40, 90, 400, 2500]),
                rng.choice(["p2p", "wire"]),
                src_country="US",
                dst_country=rng.choice(["PH", "RO"]) if abroad else "US",
            )
        )
    for i in range(rng.randrange(10, 60)):
        hours = rng.randrange(0, 6) * 24 + rng.choice([0, 0.05, 0.1, 0.5])
        card = rng.choice(names[:8])
        rows.append(graph_cases.cash(f"w{i:03d}", hours, card, f"ATM-{rng.randrange(4)}"))
    ctx = context(rows, accounts)
    return ctx.transactions, ctx.accounts, _flagged(ctx.transactions, 0.7, seed)


def test_random_graphs_a_partition_at_a_time() -> None:
    fired = dict.fromkeys(MINE, 0)
    for seed in range(8):
        tx, accounts, prior = _random_graph(seed)
        for name in MINE:
            fired[name] += _check(tx, accounts, prior, name, FIRING[name])
    assert all(n >= 2 for n in fired.values()), fired


def test_mule_network_louvain_budget_is_the_same_in_every_partition(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The Louvain budget is shared by all loose components, but every partition sees the same
    young rows (primed): it splits the same components, so the union still equals the whole."""
    rows, young = [], []
    for k in range(3):  # three loose components, a dense ring inside each
        young += [
            a(f"{k}{x}{i}", opened_days=-30) for x in "SRQ" for i in range(3 + 7 * (x == "Q"))
        ]
        rows += [
            t(f"{k}m{s}{r}", 3 * s + r, f"{k}S{s}", f"{k}R{r}", 900, "p2p")
            for s, r in graph_cases.FULL
        ]
        rows += [
            t(f"{k}q{i}{d}", 100 + i, f"{k}Q{i}", f"{k}Q{(i + d) % 10}", 50, "p2p")
            for i in range(10)
            for d in (1, 2)
        ]
        rows += [t(f"{k}b{j}", 130 + j, f"{k}R0", f"{k}Q{5 * j}", 50, "p2p") for j in (0, 1)]
    monkeypatch.setattr(mules, "MAX_LOUVAIN_EDGES_TOTAL", 70)
    ctx = context(rows, young)
    with caplog.at_level(logging.WARNING, logger=mules.__name__):
        found = _check(*_frame(ctx), pl.DataFrame(schema=SIGNAL_SCHEMA), "mule_network", {})
    assert "1 loose young components not split" in caplog.text
    assert found == 2


def test_mule_network_primed_rows_are_the_young_graph_and_its_abroad_legs() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    rows = graph_cases.mules(30, graph_cases.FULL)
    rows += [t("out", 40, "R0", "FAR", 3000, "wire", src_country="US", dst_country="RO")]
    rows += [t("home", 41, "R0", "OLD", 3000, "wire", src_country="US", dst_country="US")]
    rows += [t("old", 42, "OLD", "FAR", 3000, "wire", src_country="US", dst_country="RO")]
    ctx = context(rows, young + [a("OLD"), a("FAR")])
    primed = mules._young_rows(ctx.transactions.lazy(), ctx, timedelta(days=90))
    assert sorted(primed["txn_id"]) == sorted([f"m{s}{r}" for s, r in graph_cases.FULL] + ["out"])
    assert primed.schema == ctx.transactions.schema

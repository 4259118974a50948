"""The cash and party patterns found a partition at a time (graph/cash.py, graph/parties.py:
funnel, party_structuring, party_funnel, party_controller) equal the whole graph's, on the
labelled run and on random graphs built to stress what partitioning by party can break: parties
whose accounts hash to other partitions than their party, accounts missing from the accounts
table (their own party), accounts without a party_id, several banks, ties in time, flagged
senders paying controllers of other partitions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows87.pipeline.graph.anchored import Partition
from flows87.pipeline.graph.parties import party_accounts
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.schema import conform
from tests.graph.anchored_check import assert_same_by_partition, run_tables, whole_and_parts

MINE = ("funnel", "party_structuring", "party_funnel", "party_controller")

LOOSE: dict[str, dict[str, float]] = {
    "funnel": {"min_locations": 2, "min_deposits": 2, "min_amount": 500, "min_flow_through": 0.3},
    "party_structuring": {"min_deposits": 2, "min_accounts": 1, "band": 0.3},
    "party_funnel": {
        "min_locations": 2,
        "min_deposits": 2,
        "min_amount": 500,
        "min_flow_through": 0.3,
        "min_accounts": 1,
        "min_banks": 1,
    },
    "party_controller": {
        "min_flagged_senders": 2,
        "min_share": 0.1,
        "min_payments_per_sender": 1,
        "min_accounts": 1,
        "min_banks": 1,
    },
}
"""Parameters with which each pattern fires on the labelled run and on random graphs (their
defaults find little or nothing in 800 generated accounts), within its catalogue rule's bounds
(rules/fa_funnel_flow, fa_structuring_accounts, fa_funnel_party, ht_controller_party.yaml)."""

SPREAD: dict[str, dict[str, float]] = {
    "funnel": {**LOOSE["funnel"], "business_accounts": 1},
    "party_funnel": {**LOOSE["party_funnel"], "min_accounts": 2, "min_banks": 2},
    "party_controller": {**LOOSE["party_controller"], "min_accounts": 2, "min_banks": 2},
    "party_structuring": {**LOOSE["party_structuring"], "min_accounts": 2},
}
"""The party patterns asking for what only the party view shows (two accounts, two banks); the
account funnel counting business accounts too."""


@pytest.mark.parametrize("name", MINE)
def test_fired_on_the_labelled_run_a_partition_at_a_time(labelled_run: Path, name: str) -> None:
    tx, accounts, features, prior = run_tables(labelled_run)
    whole = assert_same_by_partition(tx, accounts, features, prior, name, LOOSE[name])
    assert whole["instance"].n_unique() >= 2, name


T0 = datetime(2024, 3, 1, tzinfo=UTC)
BANKS = ("001", "002", "003")


def random_graph(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Transactions, accounts and behaviour signals of a small random graph: 40 parties of one
    to four accounts at three banks (some accounts without a party_id, some paid accounts not in
    the table at all), cash deposits near a 10,000 threshold at six places, transfers (some
    abroad) and withdrawals, stamped on whole hours so that many share a time."""
    rng = random.Random(seed)
    accounts: list[dict[str, Any]] = []
    for party in range(40):
        for k in range(rng.choice((1, 1, 2, 3, 4))):
            accounts.append(
                {
                    "account_id": f"A{party}-{k}",
                    "party_id": None if rng.random() < 0.1 else f"P{party}",
                    "bank_id": rng.choice(BANKS),
                    "kind": "business" if rng.random() < 0.1 else "individual",
                    "opened_at": T0 - timedelta(days=400),
                    "country": "US",
                }
            )
    ids = [a["account_id"] for a in accounts]
    loose = [f"X{i}" for i in range(8)]  # accounts of other banks: in no table
    rows: list[dict[str, Any]] = []

    def add(src: str, dst: str, amount: float, channel: str, **extra: Any) -> None:
        rows.append(
            {
                "txn_id": f"T{len(rows):04d}",
                "ts": T0 + timedelta(hours=rng.randrange(14 * 24)),
                "src_account": src,
                "dst_account": dst,
                "amount": amount,
                "currency": "USD",
                "amount_base": amount,
                "channel": channel,
                **extra,
            }
        )

    for _ in range(350):
        place = rng.randrange(6)
        amount = rng.choice((rng.uniform(7000, 9999), rng.uniform(500, 5000)))
        located = {"location_id": f"L{place}"} if rng.random() < 0.9 else {}
        add(f"CASH:L{place}", rng.choice(ids + loose), round(amount, 2), "cash_deposit", **located)
    for _ in range(450):
        src, dst = rng.choice(ids + loose[:2]), rng.choice(ids + loose)
        abroad = {"src_country": "US", "dst_country": "MX"} if rng.random() < 0.2 else {}
        add(src, dst, round(rng.uniform(50, 9000), 2), rng.choice(("wire", "p2p", "ach")), **abroad)
    for _ in range(60):
        add(rng.choice(ids), "CASH:ATM", round(rng.uniform(100, 3000), 2), "cash_withdrawal")
    tx = conform(pl.DataFrame(rows, infer_schema_length=None), "transactions").collect()
    acc = conform(pl.DataFrame(accounts, infer_schema_length=None), "accounts").collect()
    flagged = rng.sample(ids, len(ids) // 3)
    signals = pl.DataFrame(
        [
            {
                "source": "rule",
                "signal_id": rng.choice(("ht_sweep_to_controller", "ml_rapid_movement")),
                "account_id": x,
                "txn_ids": [],
                "score": 0.75,
                "family": "behaviour",
                "typologies": [],
                "window_start": T0,
                "window_end": T0 + timedelta(days=14),
                "evidence": "{}",
                "summary": "s",
            }
            for x in flagged
        ],
        schema=SIGNAL_SCHEMA,
    )
    return tx, acc, signals


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), partitions=st.sampled_from((2, 3, 4)))
def test_random_graphs_a_partition_at_a_time(seed: int, partitions: int) -> None:
    tx, accounts, signals = random_graph(seed)
    for name in MINE:
        for values in (LOOSE[name], SPREAD[name]):
            assert_same_by_partition(
                tx, accounts, pl.DataFrame(), signals, name, values, partitions
            )


def test_random_graphs_fire_every_pattern() -> None:
    """The random graphs are not vacuous: each pattern finds several instances there, the party
    ones also over two accounts at two banks."""
    tx, accounts, signals = random_graph(87)
    for name in MINE:
        for values in (LOOSE[name], SPREAD[name]):
            whole, union, _ = whole_and_parts(tx, accounts, pl.DataFrame(), signals, name, values)
            assert whole["instance"].n_unique() >= 2, (name, values)
            assert union.equals(whole)


def test_a_party_brings_its_accounts_whatever_their_own_hash() -> None:
    """Every account of a party is in its party's partition; in the random graph some of them
    hash (as accounts) to other partitions, so the reach cannot be the accounts' own."""
    _, accounts, _ = random_graph(87)
    parts = [Partition(k, 4) for k in range(4)]
    mine = [set(party_accounts(accounts, p)) for p in parts]
    assert sum(len(m) for m in mine) == accounts.height
    assert set().union(*mine) == set(accounts["account_id"])
    moved = [a for p, m in zip(parts, mine, strict=True) for a in m if not _has(p, a)]
    assert moved, "no party's accounts straddle partitions: the test would not test that"


def _has(p: Partition, value: str) -> bool:
    return bool(pl.select(p.has(pl.lit(value))).item())

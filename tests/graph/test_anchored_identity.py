"""Identity and labour patterns (graph/identity.py, graph/labour.py) found a partition at a time
equal the patterns on the whole graph (tests/graph/anchored_check.py), on generated data where
each of them fires, on hand-built shapes and on random identity graphs."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from flows87.pipeline.graph.patterns import ANCHORED
from flows87.research.synth import generate
from flows87.schema import conform
from tests.graph import anchored_check
from tests.graph.anchored_check import assert_same_by_partition

T0 = datetime(2024, 3, 1, tzinfo=UTC)

MINE = (
    "payroll_recapture",
    "shared_address_workers",
    "shared_identifiers",
    "onboarding_burst",
    "common_payee",
)


@pytest.fixture(scope="module")
def generated() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts and transactions of generated data (3,000 accounts, 60 days) where each of the
    patterns finds two instances or more."""
    data = generate(3000, 60, 2)
    return data.transactions, data.accounts


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("partitions", [3, 4])
def test_a_partition_at_a_time_finds_what_the_whole_graph_gives(
    generated: tuple[pl.DataFrame, pl.DataFrame], name: str, partitions: int
) -> None:
    tx, accounts = generated
    # every account has features in a run: the infrastructure share's population
    features = accounts.select("account_id")
    whole = assert_same_by_partition(
        tx, accounts, features, pl.DataFrame(), name, partitions=partitions
    )
    assert whole["instance"].n_unique() >= 2, name


FIRING: dict[str, dict[str, float]] = {
    "payroll_recapture": {"min_workers": 2, "min_share": 0.3, "min_fraction": 0.3, "max_scan": 3},
    "shared_address_workers": {"min_payees": 2, "min_sharing": 2},
    "shared_identifiers": {"min_parties": 2, "min_surnames": 2, "max_group": 6, "min_kinds": 2},
    "onboarding_burst": {"min_accounts": 2, "window_days": 3},
    "common_payee": {"min_payers": 2, "min_surnames": 2, "min_per_payer": 1, "max_group": 6},
}
"""Parameters with which each pattern finds several instances in `_random_graph`'s data (small
groups, and `max_group` low enough that large components fall apart into their values)."""


def _random_graph(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Transactions and accounts drawn from small pools, so that values, surnames, opening days
    and timestamps coincide often: parties holding two accounts, identifiers written in other
    cases and spaces, employers paying workers who pay on (to one another, to the employer, to a
    few payees), the same instant shared by several payments."""
    rng = random.Random(seed)
    n = 90
    ids = [f"A{i:03d}" for i in range(n)]

    def pick(pool: str, size: int, none: float = 0.2) -> str | None:
        if rng.random() < none:
            return None
        value = f"{pool}-{rng.randrange(size)}"
        return rng.choice([value, value.upper(), f" {value} "])

    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "party_id": [f"P{rng.randrange(70)}" if rng.random() < 0.9 else None for _ in ids],
            "bank_id": ["001"] * n,
            "kind": ["business" if i < 8 else "individual" for i in range(n)],
            "opened_at": [T0 + timedelta(days=rng.randrange(20)) for _ in ids],
            "country": ["US"] * n,
            "name": [f"X {rng.choice(['Li', 'Ng', 'Ode', 'Roy', 'Sa'])}" for _ in ids],
            "address": [pick("addr", 12) for _ in ids],
            "phone": [pick("tel", 25, 0.4) for _ in ids],
            "email": [pick("mail", 40, 0.3) for _ in ids],
            "device_id": [pick("dev", 30, 0.5) for _ in ids],
        }
    )
    own = dict(zip(ids, accounts["device_id"], strict=True))  # a holder's device
    rows: list[dict[str, Any]] = []

    def pay(src: str, dst: str, hours: int, amount: float, channel: str) -> None:
        rows.append(
            {
                "txn_id": f"t{len(rows):05d}",
                "ts": T0 + timedelta(hours=hours // 6 * 6),
                "src_account": src,
                "dst_account": dst,
                "amount": amount,
                "currency": "USD",
                "amount_base": amount,
                "channel": channel,
                "device_id": own[src] if rng.random() < 0.5 else pick("dev", 90, 0.7),
            }
        )

    for employer in ids[:8]:  # wages, much of them passed on within days to few accounts
        staff = rng.sample(ids[8:], 6)
        for _ in range(40):
            worker, hours, wage = rng.choice(staff), rng.randrange(24 * 30), rng.randrange(5, 40)
            pay(employer, worker, hours, wage * 100.0, rng.choice(["ach", "wire"]))
            if rng.random() < 0.7:
                boss = rng.choice([employer, ids[10], ids[11], rng.choice(ids)])
                pay(worker, boss, hours + rng.randrange(80), wage * 60.0, "online")
    for _ in range(600):  # and anyone paying anyone, or one of three payees
        dst = rng.choice(ids) if rng.random() < 0.6 else ids[rng.randrange(3)]
        channel = rng.choice(["ach", "wire", "card", "online"])
        pay(rng.choice(ids), dst, rng.randrange(24 * 30), rng.randrange(1, 40) * 50.0, channel)
    tx = conform(pl.DataFrame(rows), "transactions").collect()
    return tx, conform(accounts, "accounts").collect()


@pytest.mark.parametrize("seed", range(3))
def test_random_identity_graphs_by_partition(seed: int) -> None:
    tx, accounts = _random_graph(seed)
    features = accounts.select("account_id")
    for name in MINE:
        whole = assert_same_by_partition(
            tx, accounts, features, pl.DataFrame(), name, FIRING[name], partitions=3
        )
        assert whole["instance"].n_unique() >= 2, (seed, name)
        if name == "shared_identifiers":  # groups sharing a device show its transactions
            assert whole["txn_ids"].list.len().max() > 0


@pytest.mark.parametrize("name", ["shared_identifiers", "onboarding_burst", "common_payee"])
def test_a_partition_alone_misses_the_devices_other_partitions_used(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Without the prime, a partition sees only its own transactions' devices: what the prime
    brings is needed (the comparison above can fail)."""
    tx, accounts = _random_graph(0)
    monkeypatch.setitem(anchored_check.ANCHORED, name, replace(ANCHORED[name], prime=None))
    whole, union, _ = anchored_check.whole_and_parts(
        tx, accounts, accounts.select("account_id"), pl.DataFrame(), name, FIRING[name], 3
    )
    assert not union.equals(whole)

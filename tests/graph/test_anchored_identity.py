"""Identity and labour patterns (graph/identity.py, graph/labour.py) found a partition at a time
equal the patterns on the whole graph (tests/graph/anchored_check.py), on generated data where
each of them fires, on hand-built shapes and on random identity graphs."""

from __future__ import annotations

import polars as pl
import pytest

from flows87.research.synth import generate
from tests.graph.anchored_check import assert_same_by_partition

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

"""What every graph pattern imports, in one place: input, output and the shared helpers.

The helpers live in modules named after what they do, and the patterns (and cases/groups.py,
the tests, the benchmarks) import them from here:
- graph/context.py: the GraphContext a pattern reads and the tables derived from it (transfers,
  infrastructure, parties, money abroad);
- graph/hits.py: what a pattern returns (HIT_SCHEMA rows with JSON evidence);
- graph/intervals.py: distinct items per time window without a rolling aggregation;
- graph/following.py: rows that follow other rows in time, and fair candidate budgets;
- graph/components.py and graph/codes.py: connected components, text keys as integer codes.
"""

from __future__ import annotations

from flows87.pipeline.graph.codes import code, codes_of
from flows87.pipeline.graph.components import components
from flows87.pipeline.graph.context import (
    ABROAD,
    CASH_CHANNELS,
    IDENTIFIERS,
    INFRASTRUCTURE_MIN_REACH,
    TX_COLUMNS,
    GraphContext,
    days,
    ends_abroad,
    graph_columns,
    has_data,
    infrastructure,
    party_of,
    transfers,
)
from flows87.pipeline.graph.following import Following, fair_cap, following
from flows87.pipeline.graph.hits import (
    HIT_SCHEMA,
    ISO,
    MAX_MEMBERS_PER_ROLE,
    MAX_TXNS_PER_INSTANCE,
    empty_hits,
    finish,
    instance_by_first_txn,
    span_facts,
    txn_lists,
)
from flows87.pipeline.graph.intervals import ONE_US, busiest_windows, covering, in_window

__all__ = [
    "ABROAD",
    "CASH_CHANNELS",
    "HIT_SCHEMA",
    "IDENTIFIERS",
    "INFRASTRUCTURE_MIN_REACH",
    "ISO",
    "MAX_MEMBERS_PER_ROLE",
    "MAX_TXNS_PER_INSTANCE",
    "ONE_US",
    "TX_COLUMNS",
    "Following",
    "GraphContext",
    "busiest_windows",
    "code",
    "codes_of",
    "components",
    "covering",
    "days",
    "empty_hits",
    "ends_abroad",
    "fair_cap",
    "finish",
    "following",
    "graph_columns",
    "has_data",
    "in_window",
    "infrastructure",
    "instance_by_first_txn",
    "party_of",
    "span_facts",
    "transfers",
    "txn_lists",
]

"""The graph patterns in groups by what they read, so a large graph stage holds one group's
transaction columns and derived tables at a time instead of every pattern's at once.

A group's patterns share a context of only the transaction columns they read (`Group.columns`);
the memoised tables (`MEMOS`) live only while a later pattern still reads them. Patterns read
no other graph rule's signals (a context sees the signals from before the stage), so running
the groups one after the other, or as separate tasks, and putting the signals back in rule
order gives what one context gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows87.pipeline.graph.context import TX_COLUMNS

BASE_COLUMNS = ("txn_id", "ts", "src_account", "dst_account", "amount_base", "channel")
"""What every pattern reads: the transfers and the cash legs."""


@dataclass(frozen=True)
class Group:
    name: str
    patterns: tuple[str, ...]
    columns: tuple[str, ...]
    """The transaction columns its patterns read (in TX_COLUMNS order)."""


def _columns(*extra: str) -> tuple[str, ...]:
    return tuple(c for c in TX_COLUMNS if c in BASE_COLUMNS or c in extra)


GROUPS: tuple[Group, ...] = (
    Group(
        "places",
        ("funnel", "party_structuring", "party_funnel", "multi_card_atm"),
        _columns("location_id"),
    ),
    Group(
        "identity",
        ("shared_identifiers", "onboarding_burst", "common_payee"),
        _columns("device_id"),
    ),
    Group(
        "paths",
        (
            "cycle",
            "layering_chain",
            "scatter_gather",
            "controller_hub",
            "payroll_recapture",
            "shared_address_workers",
            "party_controller",
        ),
        BASE_COLUMNS,
    ),
    Group(
        "abroad",
        (
            "mule_network",
            "many_to_one_beneficiary",
            "fan_in",
            "fan_out",
            "corridor_beneficiaries",
        ),
        _columns("src_country", "dst_country"),
    ),
)
"""Every pattern in one group (tests/graph/test_groups.py checks it against the registry)."""

GROUP_OF: dict[str, Group] = {name: g for g in GROUPS for name in g.patterns}

MEMOS: dict[str, tuple[str, ...]] = {
    "cycle": ("transfers_by_time",),
    "layering_chain": ("transfers_by_time",),
    "scatter_gather": ("infrastructure", "intermediaries"),
    "controller_hub": ("infrastructure", "flagged_outflow"),
    "payroll_recapture": ("infrastructure",),
    "party_controller": ("infrastructure", "spread_parties", "flagged_outflow"),
    "party_funnel": ("spread_parties",),
    "shared_identifiers": ("identifier_pairs",),
    "onboarding_burst": ("identifier_pairs",),
    "common_payee": ("identifier_pairs",),
    "mule_network": ("young_rows",),
}
"""The kinds of memoised table (GraphContext.memo keys up to ':') each pattern reads; `transfers`
is a slice of the context's own rows and always kept."""


def still_read(later: list[str]) -> set[str]:
    """The memo kinds the `later` patterns read (the rest may be released)."""
    return {"transfers"} | {kind for name in later for kind in MEMOS.get(name, ())}

"""The registry of graph patterns that graph rules name (`scope: graph`, `pattern: <name>`).

Each pattern is a function of the run's tables and its parameters that returns one row per
account taking part in each found instance (HIT_SCHEMA). A rule may override any default listed
here, and only those: the rule loader checks names against `PATTERNS[name].params`.
Sources for each pattern are in docs/red-flags.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from flows87.errors import ConfigError
from flows87.pipeline.graph import (
    cash,
    corridors,
    fans,
    flows,
    hubs,
    identity,
    labour,
    layering,
    mules,
    parties,
)
from flows87.pipeline.graph.anchored import Anchored, Linked
from flows87.pipeline.graph.common import HIT_SCHEMA, GraphContext, empty_hits

__all__ = [
    "ANCHORED",
    "HIT_SCHEMA",
    "LINKED",
    "PATTERNS",
    "GraphContext",
    "Pattern",
    "empty_hits",
    "find",
]


@dataclass(frozen=True)
class Pattern:
    """A named pattern; `fn` expects every key of `params` (use `find` to merge overrides)."""

    name: str
    description: str
    params: dict[str, float]
    fn: Callable[[GraphContext, dict[str, float]], pl.DataFrame]


_ALL: tuple[Pattern, ...] = (
    Pattern(
        "cycle",
        "Money that leaves an account and comes back to it through other accounts, in time "
        "order within days, with most of the amount returned (round-tripping).",
        {
            "window_days": 10,
            "min_length": 3,
            "max_length": 6,
            "min_ratio": 0.7,
            "max_ratio": 1.1,
            "min_amount": 500,
            "max_scan": 50,
            "max_paths_per_origin": 2000,
            "max_per_account": 3,
        },
        flows.cycles,
    ),
    Pattern(
        "layering_chain",
        "A chain of accounts each passing on nearly all of what it just received within hours, "
        "moving money away from its origin (layering).",
        {
            "min_hops": 3,
            "max_hops": 8,
            "max_hop_hours": 48,
            "min_ratio": 0.8,
            "max_ratio": 1.0,
            "min_amount": 500,
            "max_scan": 50,
            "max_paths_per_transfer": 0.5,
        },
        layering.layering_chains,
    ),
    Pattern(
        "scatter_gather",
        "One account pays several little-used accounts which each pay the same second account "
        "within days (scatter-gather through intermediaries), each passing on between "
        "`min_ratio` and `max_ratio` of what it received.",
        {
            "min_intermediaries": 3,
            "window_days": 5,
            "max_intermediary_degree": 30,
            "min_amount": 200,
            "min_ratio": 0.0,
            "max_ratio": 1000.0,
            "max_scan": 20,
            "max_hub_share": 0.2,
        },
        fans.scatter_gather,
    ),
    Pattern(
        "controller_hub",
        "One account receiving most of the outflow of several accounts that behaviour rules "
        "flagged, as a controller collecting victims' earnings does.",
        {
            "min_flagged_senders": 3,
            "min_share": 0.5,
            "min_payments_per_sender": 1.0,
            "max_hub_share": 0.2,
        },
        fans.controller_hub,
    ),
    Pattern(
        "payroll_recapture",
        "An employer's workers send much of each wage on to one common account within days of "
        "being paid (wage recapture, debt bondage).",
        {
            "min_workers": 5,
            "min_share": 0.5,
            "min_fraction": 0.5,
            "max_days": 3,
            "max_scan": 50,
            "max_hub_share": 0.2,
        },
        labour.payroll_recapture,
    ),
    Pattern(
        "shared_address_workers",
        "Many payroll payees of one employer, of different parties, registered at one address "
        "or phone number (workers housed by the employer).",
        {"min_payees": 5, "min_sharing": 5},
        labour.shared_address_workers,
    ),
    Pattern(
        "shared_identifiers",
        "Parties with different surnames tied together by several kinds of shared identifier "
        "(address, phone, e-mail, device), or by one shared phone, e-mail or device alone; an "
        "address alone is what flatmates share (the surname test is skipped without names).",
        {"min_parties": 4, "min_surnames": 3, "max_group": 50, "min_kinds": 2},
        identity.shared_identifiers,
    ),
    Pattern(
        "onboarding_burst",
        "Several accounts of at least two parties opened within days of each other that share "
        "one address, phone, e-mail or device.",
        {"min_accounts": 3, "window_days": 7},
        identity.onboarding_burst,
    ),
    Pattern(
        "mule_network",
        "A dense group of new accounts sending money to each other many-to-many "
        "(a money-mule network) and moving at least `min_amount` in all; also names the "
        "accounts abroad that funded it just before or received its money just after.",
        {
            "max_age_days": 90,
            "min_senders": 3,
            "min_receivers": 3,
            "min_density": 0.5,
            "min_amount": 5000,
            "flow_days": 3,
            "min_abroad_share": 0.1,
            "max_split_edges": 20_000,
        },
        mules.mule_network,
    ),
    Pattern(
        "multi_card_atm",
        "The same few cards of different people used together for cash withdrawals at one ATM "
        "or branch, within minutes, on separate occasions (a controller emptying victims' "
        "accounts); strangers in a busy ATM's queue do not come back together.",
        {
            "min_accounts": 3,
            "window_minutes": 10,
            "min_occasions": 2,
            "max_accounts": 8,
            "min_gap_hours": 1,
            "max_partners": 20,
        },
        mules.multi_card_atm,
    ),
    Pattern(
        "many_to_one_beneficiary",
        "Many unrelated individuals, mostly new payers, sending similar sums to one beneficiary "
        "abroad within days, card purchases excluded (pooled wages, debt repayments to a "
        "recruiter); relatives' remittances vary, recur and share a surname.",
        {
            "min_senders": 8,
            "window_days": 7,
            "max_cv": 0.35,
            "min_individual_share": 0.8,
            "min_new_share": 0.5,
            "max_kin_share": 0.2,
            "cross_border": 1,
            "max_amount": 1_000_000_000,
        },
        fans.many_to_one_beneficiary,
    ),
    Pattern(
        "fan_in",
        "Many distinct accounts transferring money to one (non-business) account within days, "
        "which sends most of it on soon after; card sales left out. Names the hub, every sender "
        "and the beneficiary abroad, if any.",
        {
            "min_counterparties": 6,
            "window_days": 2,
            "min_amount": 500,
            "min_flow_through": 0.7,
            "flow_days": 3,
            "business_hubs": 1,
            "min_source_share": 0.3,
        },
        hubs.fan_in,
    ),
    Pattern(
        "fan_out",
        "One account, funded just before, transferring money to many distinct accounts within "
        "days; a business hub only with cash or money from abroad just before and receivers "
        "who withdraw it in cash (payroll left out). Names the hub, every receiver and the "
        "funder abroad, if any.",
        {
            "min_counterparties": 6,
            "window_days": 2,
            "min_amount": 200,
            "min_flow_through": 0.7,
            "flow_days": 3,
            "business_hubs": 1,
            "min_source_share": 0.3,
            "min_cash_out": 0.8,
            "min_business_amount": 500,
            "max_scan": 20,
        },
        hubs.fan_out,
    ),
)

_ALL = (
    *_ALL,
    Pattern(
        "corridor_beneficiaries",
        "The beneficiaries abroad of the small transfers of accounts that rules flagged for "
        "frequent low-value payments to high-risk corridors (the facilitators on the other side).",
        {"min_payments": 1, "max_amount": 150, "min_sender_score": 1.0},
        corridors.corridor_beneficiaries,
    ),
    Pattern(
        "common_payee",
        "Unrelated parties sharing one address, phone, e-mail or device who each pay the same "
        "outside account several times within one window (controlled accounts, debt repayments).",
        {
            "min_payers": 3,
            "min_surnames": 3,
            "min_per_payer": 2,
            "window_days": 30,
            "max_group": 50,
        },
        identity.common_payee,
    ),
)

_ALL = (
    *_ALL,
    Pattern(
        "funnel",
        "Cash paid into one (non-business) account at several places within days, most of it "
        "leaving again within hours (a funnel account); names the account and the beneficiaries "
        "of its outgoing transfers.",
        {
            "window_days": 7,
            "min_locations": 3,
            "min_deposits": 3,
            "min_amount": 5000,
            "flow_hours": 48,
            "min_flow_through": 0.7,
            "min_beneficiary_share": 0.1,
            "business_accounts": 0,
        },
        cash.funnel,
    ),
    Pattern(
        "party_structuring",
        "Cash deposits just under the reporting threshold into the accounts of one party, "
        "several within days (rolling window), over two or more of its accounts; names every "
        "account that took one.",
        {
            "threshold": 10_000,
            "band": 0.1,
            "min_deposits": 3,
            "min_accounts": 2,
            "window_days": 7,
        },
        cash.party_structuring,
    ),
)

_ALL = (
    *_ALL,
    Pattern(
        "party_funnel",
        "Cash paid into the accounts of one party (resolved across banks) at several places "
        "within days, over two or more of its accounts at two or more banks, most of it leaving "
        "the party within hours; names its accounts and the beneficiaries.",
        {
            "window_days": 7,
            "min_locations": 3,
            "min_deposits": 3,
            "min_amount": 5000,
            "flow_hours": 48,
            "min_flow_through": 0.7,
            "min_beneficiary_share": 0.1,
            "min_accounts": 2,
            "min_banks": 2,
            "business_accounts": 0,
        },
        parties.party_funnel,
    ),
    Pattern(
        "party_controller",
        "One party collecting, into its accounts at two or more banks, most of the outflow of "
        "accounts of several other parties that behaviour rules flagged (a controller paid by "
        "victims at several banks).",
        {
            "min_flagged_senders": 3,
            "min_share": 0.5,
            "min_payments_per_sender": 2.0,
            "min_accounts": 2,
            "min_banks": 2,
            "max_hub_share": 0.2,
        },
        parties.party_controller,
    ),
)

PATTERNS: dict[str, Pattern] = {p.name: p for p in _ALL}

ANCHORED: dict[str, Anchored] = {
    name: spec
    for module in (cash, corridors, fans, flows, hubs, identity, labour, mules, parties)
    for name, spec in getattr(module, "ANCHORED", {}).items()
}
"""The patterns found a partition of accounts at a time (graph/anchored.py), each declared
beside its function as its module's ANCHORED."""

LINKED: dict[str, Linked] = dict(layering.LINKED)
"""The patterns found from pieces each partition finds (graph/anchored.py `Linked`): their
instances span partitions. With ANCHORED, every pattern: none needs one task over the whole
graph."""


def find(ctx: GraphContext, name: str, overrides: dict[str, float] | None = None) -> pl.DataFrame:
    """Run one pattern with its defaults updated by `overrides` (unknown names are refused)."""
    if name not in PATTERNS:
        raise ConfigError(
            f"unknown graph pattern {name!r}",
            field="pattern",
            hint=f"known: {', '.join(sorted(PATTERNS))}",
        )
    pattern = PATTERNS[name]
    unknown = sorted(set(overrides or {}) - set(pattern.params))
    if unknown:
        raise ConfigError(
            f"pattern {name!r} takes no parameter {unknown[0]!r}",
            field="params",
            hint=f"it takes: {', '.join(sorted(pattern.params))}",
        )
    params = {**pattern.params, **(overrides or {})}
    return pattern.fn(ctx, params).select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA)

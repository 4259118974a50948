"""The shapes imposed on the background, one function each.

Hubs, a dense group, self-transfers and a chain add transfers; fifty currencies and new
accounts change the background's accounts in place.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth.shapes.accounts import Population, opened_before
from flows87.research.synth.shapes.flows import (
    CH,
    DAY,
    HOUR,
    SECOND,
    Flows,
    Sampler,
    channels,
    lognormal,
    times,
)
from flows87.research.synth.shapes.sizes import Sizes

UTILITY_MCC = 4900
PAYROLL_MCC = 8999


def hub_in(
    rng: np.random.Generator, pop: Population, n_accounts: int, hub: int, days: int
) -> Flows:
    """A utility paid once by each of `hub` distinct background accounts."""
    center = pop.add(1, business=True, opened=opened_before(rng, 1, 3_000, 6_000), mcc=UTILITY_MCC)
    payers = rng.choice(n_accounts, hub, replace=False)
    channel = channels(rng, hub, {"ach": 0.6, "card": 0.3, "cheque": 0.1})
    mcc = np.where(channel == CH["card"], UTILITY_MCC, -1)
    return Flows(
        payers, center[0], times(rng, hub, days), lognormal(rng, 90, 0.5, hub), channel, mcc
    )


def hub_out(
    rng: np.random.Generator, pop: Population, n_accounts: int, hub: int, days: int
) -> Flows:
    """A benefits payer paying each of `hub` distinct background accounts once, on pay days."""
    center = pop.add(1, business=True, opened=opened_before(rng, 1, 3_000, 6_000), mcc=PAYROLL_MCC)
    payees = rng.choice(n_accounts, hub, replace=False)
    paydays = np.asarray([d for d in (0, 14, 28) if d < days])
    t = rng.choice(paydays, hub) * DAY + times(rng, hub, 1, "morning")
    usd = np.maximum(rng.normal(1_400, 350, hub), 150.0)
    channel = channels(rng, hub, {"ach": 0.97, "wire": 0.03})
    return Flows(np.full(hub, center[0]), payees, t, usd, channel, -1)


def dense_repeat(rng: np.random.Generator, n_accounts: int, sizes: Sizes, days: int) -> Flows:
    """`dense_accounts` accounts each paying its fixed partners in the group, over and over."""
    m, p, k = sizes.dense_accounts, sizes.dense_partners, sizes.dense_transfers
    members = rng.choice(n_accounts, m, replace=False)
    partner = (np.arange(m)[:, None] + rng.integers(1, m, (m, p))) % m  # never oneself
    typical = lognormal(rng, 150, 0.8, m * p).reshape(m, p)
    i, j = rng.integers(0, m, k), rng.integers(0, p, k)
    usd = np.maximum(typical[i, j] * rng.normal(1.0, 0.05, k), 1.0)
    channel = channels(rng, k, {"p2p": 0.6, "mobile_money": 0.25, "wire": 0.15})
    return Flows(members[i], members[partner[i, j]], times(rng, k, days), usd, channel, -1)


def self_transfers(
    rng: np.random.Generator, pop: Population, n_accounts: int, k: int, days: int
) -> Flows:
    """`k` transfers from an account to itself (sweeps between a customer's own products)."""
    who = Sampler(np.arange(n_accounts), pop.weight).draw(rng, k)
    channel = channels(rng, k, {"wire": 0.3, "ach": 0.3, "other": 0.4})
    return Flows(who, who, times(rng, k, days), lognormal(rng, 500, 1.2, k), channel, -1)


def chain(rng: np.random.Generator, pop: Population, hops: int, days: int) -> Flows:
    """A pass-through chain of `hops` transfers through `hops` + 1 new accounts."""
    accounts = pop.add(
        hops + 1, business=False, opened=opened_before(rng, hops + 1, 20, 365), suspicious=True
    )
    span = days * DAY
    mean_gap = min(3 * HOUR, 0.9 * span / hops)
    gaps = (mean_gap * rng.uniform(0.2, 1.8, hops)).astype(np.int64)
    gaps = np.maximum(gaps, SECOND)
    start = int(rng.uniform(0, max(span - gaps.sum(), 1) * 0.5))
    t = start + np.cumsum(gaps) - gaps[0]
    fee = rng.uniform(0, min(0.02, 2 / hops), hops)
    fee[0] = 0.0
    usd = np.round(rng.uniform(20_000, 30_000) * np.cumprod(1 - fee), 2)
    channel = channels(rng, hops, {"p2p": 0.5, "wire": 0.3, "mobile_money": 0.2})
    return Flows(accounts[:-1], accounts[1:], t, usd, channel, -1, np.ones(hops, bool))


def fifty_currencies(
    rng: np.random.Generator, pop: Population, flows: Flows, n_currencies: int
) -> None:
    """Spread the accounts over `n_currencies` currencies (Zipf-like, USD most common), with
    one paying account of every currency."""
    n = pop.n
    p = 1.0 / np.arange(1, n_currencies + 1) ** 1.1
    pop.cur = rng.choice(n_currencies, n, p=p / p.sum()).astype(np.int16)
    payers = np.unique(flows.src[~flows.suspicious])
    chosen = rng.choice(payers, min(n_currencies, payers.size), replace=False)
    pop.cur[chosen] = np.arange(chosen.size)


def open_in_period(rng: np.random.Generator, pop: Population, flows: Flows, days: int) -> None:
    """Every account opened inside the period, before (or when) it first transacts."""
    first = np.full(pop.n, days * DAY - 1, np.int64)
    np.minimum.at(first, flows.src, flows.t)
    np.minimum.at(first, flows.dst, flows.t)
    pop.opened = (rng.random(pop.n) * first).astype(np.int64)

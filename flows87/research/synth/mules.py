"""Money-mule networks: new accounts paying each other many-to-many, then cashing out.

The shape of the mule groups in Egmont and FATF typologies and of AMLworld's bipartite pattern:
a few recently opened "sender" accounts, funded by scam victims, cash or a wire from abroad,
each pay several recently opened "receiver" accounts within days; the receivers draw the money
out or wire it abroad.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.kit import Kit, opened_at
from flows87.research.synth.parts import (
    CH,
    DAY,
    HOUR,
    Txns,
    at_hour,
    cents,
    channel_mix,
    concat,
    ragged,
    round_to,
)
from flows87.research.synth.population import ATM, BRANCH, FOREIGN_BUSINESS, FOREIGN_PERSON

FUNDING: dict[str, float] = {"victims": 0.4, "cash": 0.3, "abroad": 0.3}


def mule_network(kit: Kit) -> Txns:
    """3-8 new senders each paying several of 3-8 new receivers within days (a dense bipartite
    block), funded just before; the receivers cash out or wire abroad within a day or two."""
    rng, pop = kit.rng, kit.pop
    senders = kit.people(int(rng.integers(3, 9)))
    receivers = kit.people(int(rng.integers(3, 9)))
    group = np.concatenate([senders, receivers])
    span = min(int(rng.integers(2, 6)), pop.days - 3)  # days of transfers
    t0 = int(rng.integers(1, pop.days - span - 1)) * DAY
    opened_at(pop, group, t0 - rng.integers(2 * DAY, (60 - span) * DAY, group.size))
    pop.habits.activity[group] *= 0.5

    s, r = senders.size, receivers.size
    link = rng.random((s, r)) < rng.uniform(0.55, 0.9)
    a = np.arange(max(s, r))
    link[a % s, a % r] = True  # everyone has at least two partners
    link[a % s, (a + 1) % r] = True
    i, j = np.nonzero(link)
    reps = rng.integers(1, 3, i.size)
    i, j = np.repeat(i, reps), np.repeat(j, reps)
    t = t0 + at_hour(rng, rng.integers(0, span, i.size), cat.DAYTIME)
    amount = cents(rng.uniform(1000, 4500, i.size))
    moves = kit.txns(
        senders[i],
        receivers[j],
        t,
        amount,
        channel_mix(rng, i.size, {"p2p": 0.5, "mobile_money": 0.2, "ach": 0.2, "wire": 0.1}),
    )
    sent = np.bincount(i, weights=amount, minlength=s)
    first = np.full(s, np.iinfo(np.int64).max)
    np.minimum.at(first, i, t)
    got = np.bincount(j, weights=amount, minlength=r)
    last = np.zeros(r, np.int64)
    np.maximum.at(last, j, t)
    return concat(
        [_funding(kit, senders, sent, first), moves, _cash_out(kit, receivers, got, last)]
    )


def _funding(kit: Kit, senders: np.ndarray, sent: np.ndarray, first: np.ndarray) -> Txns:
    """Money reaching each sender hours before it pays out: from scam victims, cash or abroad."""
    rng, pop = kit.rng, kit.pop
    how = kit.variant(FUNDING)
    k = rng.integers(1, 4, senders.size) if how != "abroad" else np.ones(senders.size, np.int64)
    owner, _ = ragged(k)
    t = first[owner] - rng.integers(2 * HOUR, 20 * HOUR, owner.size)
    amount = sent[owner] / k[owner] * rng.uniform(1.0, 1.08, owner.size)
    who = senders[owner]
    if how == "victims":
        return kit.txns(
            kit.bystanders(owner.size),
            who,
            t,
            cents(amount),
            channel_mix(rng, owner.size, {"p2p": 0.6, "ach": 0.2, "wire": 0.2}),
        )
    if how == "cash":
        kind = np.where(rng.random(owner.size) < 0.5, BRANCH, ATM)
        return kit.cash(who, kind, pop.city(who), t, round_to(amount, 20), deposit=True)
    origin = int(kit.foreign(1, cat.OFFSHORE, FOREIGN_BUSINESS)[0])
    cur = np.where(rng.random(owner.size) < 0.5, pop.currency(np.full(owner.size, origin)), -1)
    return kit.txns(origin, who, t, cents(amount), CH["wire"], cur=cur)


def _cash_out(kit: Kit, receivers: np.ndarray, got: np.ndarray, last: np.ndarray) -> Txns:
    """Each receiver draws its takings in cash or wires them abroad soon after the last one."""
    rng, pop = kit.rng, kit.pop
    t = np.minimum(last + rng.integers(2 * HOUR, 36 * HOUR, receivers.size), pop.days * DAY - HOUR)
    amount = got * rng.uniform(0.85, 0.98, receivers.size)
    wire = rng.random(receivers.size) < rng.uniform(0.0, 1.0)
    parts = [
        kit.cash(
            receivers[~wire],
            BRANCH,
            pop.city(receivers[~wire]),
            t[~wire],
            round_to(amount[~wire], 100),
            deposit=False,
        )
    ]
    if wire.any():
        bens = kit.foreign(
            int(rng.integers(1, 3)), cat.FUNNEL_DESTINATIONS + cat.OFFSHORE, FOREIGN_PERSON
        )
        dst = bens[rng.integers(0, bens.size, int(wire.sum()))]
        cur = np.where(rng.random(dst.size) < 0.5, pop.currency(dst), -1)
        parts.append(
            kit.txns(receivers[wire], dst, t[wire], cents(amount[wire]), CH["wire"], cur=cur)
        )
    return concat(parts)

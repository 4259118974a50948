"""Classic laundering typologies (FATF, Egmont, FinCEN): how proceeds are placed and layered.

Each function builds one scheme instance; sizes, amounts and timing are drawn from ranges.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.kit import Kit, dormant_until, quiet, same_person
from flows87.research.synth.parts import (
    CH,
    DAY,
    HOUR,
    Txns,
    at_hour,
    cents,
    channel_mix,
    concat,
    round_to,
)
from flows87.research.synth.population import ATM, BRANCH, FOREIGN_BUSINESS, FOREIGN_PERSON

ABROAD = cat.OFFSHORE + cat.TRADE_PARTNERS
# A dormant account (silent for months, opened years ago) used as the mule or funnel (FATF;
# FATF/INTERPOL/Egmont 2023 on mule accounts); it wakes up well into the window, like innocent reactivations.
DORMANT: dict[str, float] = {"dormant": 0.35}


def _person_or_business(kit: Kit, p_business: float) -> int:
    return int((kit.businesses(1) if kit.rng.random() < p_business else kit.people(1))[0])


def _in_local_currency(kit: Kit, foreign: int, n: int, p: float = 0.5) -> np.ndarray:
    return np.where(kit.rng.random(n) < p, kit.pop.currency(np.full(n, foreign)), -1)


def funnel_account(kit: Kit) -> Txns:
    """Cash paid in at many branches in several cities, wired abroad or drawn out elsewhere;
    in some schemes the funnel is a long-dormant account that wakes up for it."""
    rng, pop = kit.rng, kit.pop
    dormant = kit.traits(DORMANT)["dormant"]
    acct = _person_or_business(kit, 0.25)
    t0, length = kit.window(7, 14, tail_days=2, not_before=0.4 * pop.days if dormant else 0)
    n = int(rng.integers(8, 25))
    cities = rng.choice(pop.n_cities, min(pop.n_cities, int(rng.integers(3, 7))), replace=False)
    city = cities[rng.permutation(n) % cities.size]
    kind = np.where(rng.random(n) < 0.6, BRANCH, ATM)
    t = t0 + at_hour(rng, rng.integers(0, max(length // DAY, 1), n), cat.DAYTIME)
    amount = round_to(rng.uniform(500, 8500, n), 10)
    if dormant:
        dormant_until(pop, rng, [acct], int(t.min()))
    parts = [kit.cash(acct, kind, city, t, amount, deposit=True)]

    _, g = np.unique((t - t0) // (2 * DAY), return_inverse=True)  # two-day batches
    total = np.bincount(g, weights=amount)
    last = np.zeros(total.size, np.int64)
    np.maximum.at(last, g, t)
    out_t = last + rng.integers(2 * HOUR, 46 * HOUR, total.size)
    out_amount = cents(total * rng.uniform(0.85, 0.97, total.size))
    wire = rng.random(total.size) < rng.uniform(0.3, 1.0)
    if wire.any():
        role = FOREIGN_PERSON if rng.random() < 0.5 else FOREIGN_BUSINESS
        ben = int(kit.foreign(1, cat.FUNNEL_DESTINATIONS, role)[0])
        parts.append(
            kit.txns(
                acct,
                ben,
                out_t[wire],
                out_amount[wire],
                CH["wire"],
                cur=_in_local_currency(kit, ben, int(wire.sum())),
            )
        )
    if (~wire).any():
        elsewhere = np.setdiff1d(np.arange(pop.n_cities), cities)
        out_city = elsewhere[rng.integers(0, elsewhere.size, int((~wire).sum()))]
        notes = np.floor(out_amount[~wire] / 100) * 100  # a round sum, in hundreds
        parts.append(kit.cash(acct, BRANCH, out_city, out_t[~wire], notes, deposit=False))
    return concat(parts)


def structuring(kit: Kit) -> Txns:
    """Cash deposits just under the 10,000 reporting threshold, over days and branches."""
    rng, pop = kit.rng, kit.pop
    accts = kit.people(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])))
    same_person(pop, rng, accts)
    quiet(pop, accts[1:], 0.3)
    t0, length = kit.window(5, 14, tail_days=0.5)
    n = int(rng.integers(4, 15))
    home = pop.city(accts[:1])
    branches = kit.cash_points.pick(rng, BRANCH, np.repeat(home, int(rng.integers(1, 5))))
    loc = branches[rng.integers(0, branches.size, n)]
    t = t0 + at_hour(rng, rng.integers(0, max(length // DAY, 1), n), cat.OFFICE)
    step = float(rng.choice([10, 50, 100]))
    amount = 9000 + np.floor(rng.uniform(0, 1000, n) / step) * step
    dst = accts[rng.integers(0, accts.size, n)]
    return kit.txns(pop.loc_account[loc], dst, t, amount, CH["cash_deposit"], loc=loc)


def mule_chain(kit: Kit) -> Txns:
    """Funds passed along new-ish accounts within hours, a small cut kept at every hop; in some
    schemes the first mule is instead a long-dormant account that suddenly moves large sums."""
    rng, pop = kit.rng, kit.pop
    dormant = kit.traits(DORMANT)["dormant"]
    length = int(rng.integers(3, 8))
    mules = kit.people(length)
    pop.opened[mules] = -rng.integers(5 * DAY, 90 * DAY, length)
    source = int(kit.foreign(1, ABROAD, FOREIGN_BUSINESS)[0]) if rng.random() < 0.6 else -1
    sink = (
        int(kit.foreign(1, cat.FUNNEL_DESTINATIONS, FOREIGN_PERSON)[0])
        if rng.random() < 0.5
        else -1
    )
    hop = 6 * HOUR
    run_span = (length + 1) * hop + DAY
    avail = pop.days * DAY - DAY
    runs = max(1, min(int(rng.integers(1, 4)), avail // run_span))
    latest = max((avail - runs * run_span) // DAY, 1)
    first_day = int(rng.integers(min(int(0.4 * pop.days), latest - 1) if dormant else 0, latest))
    t = int(at_hour(rng, [first_day], cat.DAYTIME)[0])
    if dormant:  # silent until the first run reaches it
        dormant_until(pop, rng, mules[:1], t)
    parts = []
    for _ in range(runs):  # one to three runs of the chain
        times = t + np.cumsum(rng.integers(HOUR // 4, hop, length + 1))
        amounts = cents(rng.uniform(3000, 40000) * np.cumprod(rng.uniform(0.95, 0.99, length + 1)))
        if source >= 0:
            parts.append(
                kit.txns(
                    source,
                    mules[0],
                    times[:1],
                    amounts[:1],
                    CH["wire"],
                    cur=_in_local_currency(kit, source, 1),
                )
            )
        else:
            parts.append(
                kit.cash(
                    mules[0],
                    BRANCH,
                    pop.city(mules[:1]),
                    times[:1],
                    round_to(amounts[:1], 10),
                    deposit=True,
                )
            )
        parts.append(
            kit.txns(
                mules[:-1],
                mules[1:],
                times[1:length],
                amounts[1:length],
                channel_mix(rng, length - 1, {"p2p": 0.4, "wire": 0.3, "ach": 0.3}),
            )
        )
        if sink >= 0:
            parts.append(kit.txns(mules[-1], sink, times[length:], amounts[length:], CH["wire"]))
        else:
            parts.append(
                kit.cash(
                    mules[-1],
                    BRANCH,
                    pop.city(mules[-1:]),
                    times[length:],
                    round_to(amounts[length:], 10),
                    deposit=False,
                )
            )
        t = int(times[-1]) + int(rng.integers(12 * HOUR, DAY))
    return concat(parts)


def fan_in(kit: Kit) -> Txns:
    """Many accounts pay one within a day or two; the hub then moves the sum on."""
    rng, pop = kit.rng, kit.pop
    hub = _person_or_business(kit, 0.3)
    senders = kit.people(int(rng.integers(8, 21)))
    day = int(rng.integers(1, pop.days - 4))
    span = int(rng.integers(1, 3))  # over one or two days
    who = np.repeat(senders, rng.choice([1, 2], senders.size, p=[0.75, 0.25]))
    t = at_hour(rng, day + rng.integers(0, span, who.size), cat.DAYTIME)
    amount = round_to(rng.uniform(500, 4000) * rng.uniform(0.8, 1.2, who.size), 10)
    pay = kit.txns(
        who, hub, t, amount, channel_mix(rng, who.size, {"p2p": 0.4, "wire": 0.3, "ach": 0.3})
    )
    f = rng.random(who.size) < 0.5  # some senders are funded in cash first
    funding = kit.cash(
        who[f],
        np.where(rng.random(int(f.sum())) < 0.5, BRANCH, ATM),
        pop.city(who[f]),
        t[f] - rng.integers(HOUR, 20 * HOUR, int(f.sum())),
        round_to(amount[f] * rng.uniform(1.0, 1.05, int(f.sum())), 10),
        deposit=True,
    )
    total = float(amount.sum()) * rng.uniform(0.85, 0.95)
    out_t = (day + span) * DAY + int(rng.integers(2 * HOUR, 36 * HOUR))
    if rng.random() < 0.6:
        ben = int(kit.foreign(1, ABROAD, FOREIGN_BUSINESS)[0])
        out = kit.txns(
            hub, ben, out_t, cents(total), CH["wire"], cur=_in_local_currency(kit, ben, 1)
        )
    else:
        m = int(rng.integers(2, 5))
        out = kit.cash(
            hub,
            BRANCH,
            np.repeat(pop.city(np.asarray([hub])), m),
            out_t + np.arange(m) * int(rng.integers(HOUR, 6 * HOUR)),
            round_to(np.full(m, total / m), 10),
            deposit=False,
        )
    return concat([funding, pay, out])


def fan_out(kit: Kit) -> Txns:
    """One account, freshly funded, pays many accounts within a day or two; most cash out."""
    rng, pop = kit.rng, kit.pop
    src = _person_or_business(kit, 0.3)
    recv = kit.people(int(rng.integers(8, 21)))
    day = int(rng.integers(1, pop.days - 4))
    t = at_hour(rng, day + rng.integers(0, int(rng.integers(1, 3)), recv.size), cat.DAYTIME)
    amount = round_to(rng.uniform(300, 3000) * rng.uniform(0.8, 1.2, recv.size), 10)
    pay = kit.txns(
        src, recv, t, amount, channel_mix(rng, recv.size, {"p2p": 0.5, "ach": 0.3, "wire": 0.2})
    )
    total = float(amount.sum()) * rng.uniform(1.02, 1.1)
    fund_t = int(t.min()) - int(rng.integers(2 * HOUR, 20 * HOUR))
    if rng.random() < 0.6:
        origin = int(kit.foreign(1, ABROAD, FOREIGN_BUSINESS)[0])
        fund = kit.txns(
            origin, src, fund_t, cents(total), CH["wire"], cur=_in_local_currency(kit, origin, 1)
        )
    else:
        m = int(rng.integers(2, 5))
        fund = kit.cash(
            src,
            BRANCH,
            np.repeat(pop.city(np.asarray([src])), m),
            fund_t - np.arange(m) * HOUR,
            round_to(np.full(m, total / m), 10),
            deposit=True,
        )
    out = rng.random(recv.size) < 0.7
    cash_out = kit.cash(
        recv[out],
        BRANCH,
        pop.city(recv[out]),
        t[out] + rng.integers(HOUR, DAY, int(out.sum())),
        round_to(amount[out] * rng.uniform(0.9, 1.0, int(out.sum())), 20),
        deposit=False,
    )
    return concat([fund, pay, cash_out])


def scatter_gather(kit: Kit) -> Txns:
    """A splits a sum over several intermediaries, who pass it on to B within days."""
    rng, pop = kit.rng, kit.pop
    a = _person_or_business(kit, 0.5)
    b = _person_or_business(kit, 0.3)
    mids = kit.people(int(rng.integers(3, 11)))
    day = int(rng.integers(0, pop.days - 4))
    amount = round_to(
        rng.uniform(10_000, 100_000) / mids.size * rng.uniform(0.8, 1.2, mids.size), 10
    )
    t1 = at_hour(rng, np.full(mids.size, day), cat.OFFICE)
    t2 = t1 + rng.integers(6 * HOUR, 72 * HOUR, mids.size)
    mix = {"wire": 0.4, "ach": 0.4, "p2p": 0.2}
    return concat(
        [
            kit.txns(a, mids, t1, amount, channel_mix(rng, mids.size, mix)),
            kit.txns(
                mids,
                b,
                t2,
                cents(amount * rng.uniform(0.9, 0.98, mids.size)),
                channel_mix(rng, mids.size, mix),
            ),
        ]
    )


def round_tripping(kit: Kit) -> Txns:
    """Money leaves a business, travels a time-ordered cycle (often abroad) and comes back."""
    rng, pop = kit.rng, kit.pop
    length = int(rng.integers(2, 7))  # accounts in the cycle
    origin = kit.businesses(1)
    n_abroad = 1 + int(rng.binomial(length - 2, 0.5))  # at least one leg goes abroad
    middle = rng.permutation(
        np.concatenate(
            [kit.foreign(n_abroad, ABROAD, FOREIGN_BUSINESS), kit.people(length - 1 - n_abroad)]
        )
    )
    cycle = np.concatenate([origin, middle, origin])
    src, dst = cycle[:-1], cycle[1:]
    abroad = pop.role[src] == FOREIGN_BUSINESS
    leg_cur = np.where(abroad, pop.currency(src), pop.currency(dst))
    foreign_leg = abroad | (pop.role[dst] == FOREIGN_BUSINESS)
    loops = int(rng.integers(1, 3))
    avail = pop.days * DAY - DAY
    hop = min(48 * HOUR, avail // (length * loops + 1))
    t = int(rng.integers(0, max(avail - loops * length * hop, 1)))
    memos = np.asarray([cat.MEMO[m] for m in ("INVOICE", "CONSULTING FEE", "LOAN REPAYMENT")])
    parts = []
    for _ in range(loops):  # once or twice round
        times = t + np.cumsum(rng.integers(HOUR, hop, length))
        amounts = cents(rng.uniform(10_000, 200_000) * np.cumprod(rng.uniform(0.96, 0.995, length)))
        cur = np.where(foreign_leg & (rng.random(length) < 0.5), leg_cur, -1)
        memo = np.where(rng.random(length) < 0.6, memos[rng.integers(0, 3, length)], -1)
        parts.append(kit.txns(src, dst, times, amounts, CH["wire"], cur=cur, memo=memo))
        t = int(times[-1]) + HOUR
    return concat(parts)


def shared_identifiers(kit: Kit) -> Txns:
    """Unrelated people sharing an address, phone or device, all paying one beneficiary."""
    rng, pop = kit.rng, kit.pop
    group = kit.people(int(rng.integers(4, 9)))
    ben = _person_or_business(kit, 0.3)
    share = rng.random(3) < 0.5
    share[rng.integers(3)] = True
    for on, arr in zip(share, (pop.hh, pop.phone, pop.device), strict=True):
        if on:
            arr[group] = arr[group[0]]
    pop.last[group] = rng.permutation(len(cat.LAST_NAMES))[: group.size]  # all unrelated
    t0, length = kit.window(7, 21, tail_days=1)
    who = np.repeat(group, rng.integers(2, 6, group.size))
    t = t0 + at_hour(rng, rng.integers(1, max(length // DAY, 2), who.size), cat.DAYTIME)
    amount = round_to(rng.uniform(200, 3000, who.size), 10)
    sends = kit.txns(
        who, ben, t, amount, channel_mix(rng, who.size, {"p2p": 0.5, "ach": 0.3, "wire": 0.2})
    )
    f = rng.random(who.size) < 0.5
    funding = kit.cash(
        who[f],
        ATM,
        pop.city(who[f]),
        t[f] - rng.integers(HOUR, 20 * HOUR, int(f.sum())),
        round_to(amount[f] * rng.uniform(1.0, 1.1, int(f.sum())), 10),
        deposit=True,
    )
    m = group.size // 2 + 1
    i = rng.integers(0, group.size, m)
    j = (i + rng.integers(1, group.size, m)) % group.size
    among = kit.txns(
        group[i],
        group[j],
        t0 + at_hour(rng, rng.integers(1, max(length // DAY, 2), m), cat.DAYTIME),
        round_to(rng.uniform(100, 1500, m), 10),
        CH["p2p"],
    )
    return concat([funding, sends, among])

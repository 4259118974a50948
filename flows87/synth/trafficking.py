"""Schemes of exploitation itself: sex trafficking, forced labour, child sexual exploitation.

Shapes follow the public red flags (RED-FLAGS.md): FinCEN FIN-2020-A008, FINTRAC Project
PROTECT, FATF/APG 2018 and AUSTRAC 2019. Each function builds one scheme instance with sizes,
amounts and timing drawn from ranges, so no two schemes share a template.
"""

from __future__ import annotations

import numpy as np

from flows87.synth import catalog as cat
from flows87.synth.kit import Kit, quiet
from flows87.synth.parts import (
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
from flows87.synth.population import FOREIGN_PERSON


def sex_trafficking(kit: Kit) -> Txns:
    """Victims paid at night by many clients, swept to a controller who pays hotels and ads."""
    rng, pop = kit.rng, kit.pop
    ctrl = int(kit.people(1)[0])
    victims = kit.people(int(rng.integers(2, 7)))
    pop.hh[victims] = pop.hh[victims[0]]
    if rng.random() < 0.7:
        pop.device[victims] = pop.device[ctrl]      # the controller runs their phones
    if rng.random() < 0.5:
        pop.phone[victims] = pop.phone[victims[0]]
    quiet(pop, victims, 0.2)
    t0, length = kit.window(7, 21, tail_days=1)
    nights = max(int(length // DAY), 1)

    busy = rng.poisson(rng.uniform(3, 6), (victims.size, nights))
    busy *= rng.random((victims.size, nights)) < 0.75
    vi, ni = np.nonzero(busy)
    g, _ = ragged(busy[vi, ni])                      # each receipt's (victim, night)
    t = t0 + ni[g] * DAY + 22 * HOUR + rng.integers(0, 6 * HOUR, g.size)
    amount = round_to(rng.uniform(100, 400) * rng.uniform(0.85, 1.15, g.size), 5)
    channel = channel_mix(rng, g.size, {"p2p": 0.7, "mobile_money": 0.15, "card": 0.15})
    receipts = kit.txns(kit.bystanders(g.size), victims[vi[g]], t, amount, channel,
                        mcc=np.where(channel == CH["card"], 7297, -1))

    take = np.bincount(g, weights=amount, minlength=vi.size)
    last = np.zeros(vi.size, np.int64)
    np.maximum.at(last, g, t)
    sweeps = kit.txns(victims[vi], ctrl, last + rng.integers(HOUR // 2, 6 * HOUR, vi.size),
                      cents(take * rng.uniform(0.8, 0.95, vi.size)),
                      channel_mix(rng, vi.size, {"p2p": 0.8, "mobile_money": 0.2}))
    return concat([receipts, sweeps, _controller_spending(kit, ctrl, t0, length)])


def _controller_spending(kit: Kit, ctrl: int, t0: int, length: int) -> Txns:
    """Hotels in a circuit of cities, online ads, prepaid cards, flights, night rides."""
    rng = kit.rng
    weeks = length / (7 * DAY)
    nights = max(int(length // DAY), 1)
    cities = kit.merchants.cities_with(cat.HOTEL)
    circuit = rng.choice(cities, min(int(cities.size), int(rng.integers(2, 5))), replace=False)

    def spend(mcc: np.ndarray, lo: float, hi: float, profile: np.ndarray, online: bool,
              city: np.ndarray | None = None) -> Txns:
        if city is None:
            city = circuit[rng.integers(0, circuit.size, mcc.size)]
        t = t0 + at_hour(rng, rng.integers(0, nights, mcc.size), profile)
        return kit.card(ctrl, mcc, city, t, rng.uniform(lo, hi, mcc.size), online)

    n_hotel = max(2, int(rng.poisson(3.5 * weeks)))
    return concat([
        spend(np.full(n_hotel, cat.HOTEL), 70, 220, cat.EVENING, False,
              circuit[np.arange(n_hotel) % circuit.size]),
        spend(rng.choice(cat.AD_MCCS, max(1, int(rng.poisson(1.5 * weeks)))), 20, 150,
              cat.DAYTIME, True),
        spend(np.full(int(rng.poisson(1.5 * weeks)), cat.PREPAID), 50, 500, cat.DAYTIME, False),
        spend(np.full(int(rng.poisson(0.7 * weeks)), cat.AIRLINE), 150, 600, cat.DAYTIME, True),
        spend(np.full(int(rng.poisson(3 * weeks)), cat.RIDES), 12, 60, cat.LATE_NIGHT, False),
    ])


def labour_exploitation(kit: Kit) -> Txns:
    """Low wages to housed-together workers, most of each wage taken back within days."""
    rng, pop = kit.rng, kit.pop
    boss = kit.employer()
    pop.btype[boss] = rng.choice(cat.LABOUR_SCHEME_TYPES)
    workers = kit.people(int(rng.integers(5, 21)))
    takers = kit.people(int(rng.integers(1, 3)))    # the employer's associates
    homes = pop.hh[workers[: int(rng.integers(1, 3))]]
    pop.hh[workers] = homes[np.arange(workers.size) % homes.size]
    if rng.random() < 0.6:
        pop.phone[workers] = pop.phone[workers[0]]
    if rng.random() < 0.3:
        pop.device[workers] = pop.device[takers[0]]
    quiet(pop, workers, 0.15)

    period = int(rng.choice([7, 14]))
    paydays = np.arange(int(rng.integers(0, min(period, pop.days - 4))), pop.days - 4, period)
    w = np.repeat(np.arange(workers.size), paydays.size)
    t = at_hour(rng, np.tile(paydays, workers.size), cat.EARLY)
    wage = cents(rng.uniform(120, 320) * period / 7 * rng.uniform(0.9, 1.1, workers.size)[w])
    wages = kit.txns(boss, workers[w], t, wage,
                     channel_mix(rng, w.size, {"ach": 0.75, "cheque": 0.15, "p2p": 0.1}),
                     memo=np.where(rng.random(w.size) < 0.8, cat.MEMO["PAYROLL"], -1))
    keep = np.clip(rng.uniform(0.6, 0.85) + rng.normal(0, 0.03, w.size), 0.5, 0.95)
    taker = takers[rng.integers(0, takers.size, workers.size)][w]
    back = kit.txns(workers[w], taker, t + rng.integers(2 * HOUR, 72 * HOUR, w.size),
                    cents(wage * keep),
                    channel_mix(rng, w.size, {"p2p": 0.6, "mobile_money": 0.25, "wire": 0.15}))
    fee = round_to(rng.uniform(25, 100), 5)      # the same "recruitment fee" from everyone
    fees = kit.txns(workers[w], takers[-1], t + rng.integers(HOUR, 48 * HOUR, w.size), fee,
                    channel_mix(rng, w.size, {"p2p": 0.7, "mobile_money": 0.3}))
    return concat([wages, back, fees])


def cse_small_intl(kit: Kit) -> Txns:
    """Frequent low-value transfers, no stated purpose, to a few high-risk corridors."""
    rng, pop = kit.rng, kit.pop
    sender = int(kit.people(1)[0])
    bens = kit.foreign(int(rng.integers(1, 4)), cat.CSE_CORRIDORS, FOREIGN_PERSON)
    t0, length = kit.window(10, 28, tail_days=0.5)
    n = int(rng.integers(8, 31))
    t = t0 + at_hour(rng, rng.integers(0, max(length // DAY, 1), n), cat.EVENING)
    dst = bens[rng.integers(0, bens.size, n)]
    cur = np.where(rng.random(n) < 0.3, pop.currency(dst), -1)
    channel = channel_mix(rng, n, {"mobile_money": 0.4, "wire": 0.3, "other": 0.3})
    return kit.txns(sender, dst, t, round_to(rng.uniform(10, 149, n), 1), channel, cur=cur)

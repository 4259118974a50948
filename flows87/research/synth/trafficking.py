"""Schemes of sexual exploitation: sex trafficking and child sexual exploitation payments.

Shapes follow the public red flags (docs/red-flags.md): FinCEN FIN-2020-A008, FINTRAC Project
PROTECT, FATF/APG 2018 and AUSTRAC 2019. Each function builds one scheme instance with sizes,
amounts and timing drawn from ranges, and shows a random subset of the typology's optional red
flags, so no two schemes share a template.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.kit import Kit, opened_at, quiet
from flows87.research.synth.parts import (
    CH,
    DAY,
    HOUR,
    Txns,
    at_hour,
    cents,
    channel_mix,
    concat,
    lognormal,
    pick,
    ragged,
    round_to,
)
from flows87.research.synth.population import ATM, BRANCH, FOREIGN_PERSON

MINUTE = HOUR // 60

# Optional red flags of a sex-trafficking scheme and how often a scheme shows each.
SEX_FLAGS: dict[str, float] = {
    "prepaid": 0.8,  # prepaid / gift cards several times a month (FINTRAC; FinCEN 2020)
    "ads": 0.85,  # weekly escort / classified ads (FinCEN 2020; FATF 2018)
    "airline": 0.4,  # airline tickets for victims, several a month (FinCEN 2020)
    "atm": 0.4,  # victims' cards emptied at one ATM within minutes (FATF 2018)
    "burst": 0.4,  # victims' accounts opened together on the controller's phone/device
    # a front business, a massage parlour or nail salon (FinCEN 2014; Polaris 2017), taking
    # card payments at night, or banking mostly cash; some fronts do both
    "night_front": 0.3,
    "cash_front": 0.3,
    # a hotel circuit: a hotel most nights, moving city every few nights (FinCEN; FINTRAC)
    "circuit": 0.6,
}


def sex_trafficking(kit: Kit) -> Txns:
    """Victims paid at night by many clients, swept to a controller who pays hotels, and, per
    scheme, ads, prepaid cards, flights, ATM runs, fresh accounts and a front business."""
    rng, pop = kit.rng, kit.pop
    flags = kit.traits(SEX_FLAGS)
    ctrl = int(kit.people(1)[0])
    few = 3 if flags["atm"] or flags["burst"] else 2
    victims = kit.people(int(rng.integers(few, 7)))
    pop.hh[victims] = pop.hh[victims[0]]
    if rng.random() < 0.7:
        pop.device[victims] = pop.device[ctrl]  # the controller runs their phones
    if rng.random() < 0.5:
        pop.phone[victims] = pop.phone[victims[0]]
    quiet(pop, victims, 0.2)
    t0, length = kit.window(7, 21, tail_days=1)
    if flags["burst"]:
        _onboarding_burst(kit, ctrl, victims, t0)
    nights = max(int(length // DAY), 1)

    busy = rng.poisson(rng.uniform(3, 6), (victims.size, nights))
    busy *= rng.random((victims.size, nights)) < 0.75
    vi, ni = np.nonzero(busy)
    g, _ = ragged(busy[vi, ni])  # each receipt's (victim, night)
    t = t0 + ni[g] * DAY + 22 * HOUR + rng.integers(0, 6 * HOUR, g.size)
    amount = round_to(rng.uniform(100, 400) * rng.uniform(0.85, 1.15, g.size), 5)
    channel = channel_mix(rng, g.size, {"p2p": 0.7, "mobile_money": 0.15, "card": 0.15})
    receipts = kit.txns(
        kit.bystanders(g.size),
        victims[vi[g]],
        t,
        amount,
        channel,
        mcc=np.where(channel == CH["card"], 7297, -1),
    )

    take = np.bincount(g, weights=amount, minlength=vi.size)
    last = np.zeros(vi.size, np.int64)
    np.maximum.at(last, g, t)
    sweeps = kit.txns(
        victims[vi],
        ctrl,
        last + rng.integers(HOUR // 2, 6 * HOUR, vi.size),
        cents(take * rng.uniform(0.8, 0.95, vi.size)),
        channel_mix(rng, vi.size, {"p2p": 0.8, "mobile_money": 0.2}),
    )
    parts = [receipts, sweeps, _controller_spending(kit, ctrl, t0, length, flags)]
    if flags["atm"]:
        parts.append(_atm_runs(kit, victims, t0, length))
    if flags["night_front"] or flags["cash_front"]:
        parts.append(_front_business(kit, ctrl, flags["night_front"], flags["cash_front"]))
    return concat(parts)


def _onboarding_burst(kit: Kit, ctrl: int, victims: np.ndarray, t0: int) -> None:
    """Victims' accounts opened within days of each other shortly before they are used, on the
    controller's phone or device (FinCEN 2020)."""
    rng, pop = kit.rng, kit.pop
    first = t0 - int(rng.uniform(5, 45) * DAY)
    opened_at(pop, victims, first + rng.integers(0, 4 * DAY, victims.size))
    ident = pop.phone if rng.random() < 0.5 else pop.device
    ident[victims] = ident[ctrl]


def _controller_spending(kit: Kit, ctrl: int, t0: int, length: int, flags: dict[str, bool]) -> Txns:
    """Hotels in two or more cities (a circuit of them most nights in some schemes) and night
    rides while the victims work; prepaid cards, ads and flights all period long, many of them
    only when the scheme shows that flag."""
    rng, pop = kit.rng, kit.pop
    weeks = length / (7 * DAY)
    nights = max(int(length // DAY), 1)
    month = pop.days / 30
    cities = kit.merchants.cities_with(cat.HOTEL)
    stops = int(rng.integers(3, 6) if flags["circuit"] else rng.integers(2, 4))
    circuit = rng.choice(cities, min(int(cities.size), stops), replace=False)

    def spend(
        mcc: np.ndarray,
        t: np.ndarray,
        amount: np.ndarray,
        online: bool,
        city: np.ndarray | None = None,
    ) -> Txns:
        if city is None:
            city = circuit[rng.integers(0, circuit.size, mcc.size)]
        return kit.card(ctrl, mcc, city, t, amount, online)

    def during(n: int, profile: np.ndarray) -> np.ndarray:
        return t0 + at_hour(rng, rng.integers(0, nights, n), profile)

    def anytime(n: int, profile: np.ndarray) -> np.ndarray:
        return at_hour(rng, rng.integers(0, pop.days, n), profile)

    if flags["circuit"]:  # one or two rooms most nights, 1-3 nights in each city
        rooms = (rng.random(nights) < rng.uniform(0.7, 0.95)) * rng.integers(1, 3, nights)
        stay = np.cumsum(rng.integers(1, 4, nights))
        night_of, _ = ragged(rooms)
        hotel_t = t0 + at_hour(rng, night_of, cat.EVENING)
        hotel_city = circuit[np.searchsorted(stay, night_of, side="right") % circuit.size]
    else:  # now and then, in two or three cities
        n_hotel = max(2, int(rng.poisson(2 * weeks)))
        hotel_t = during(n_hotel, cat.EVENING)
        hotel_city = circuit[np.arange(n_hotel) % circuit.size]
    n_rides = int(rng.poisson(3 * weeks))
    n_prepaid = (
        max(4, round(rng.uniform(4, 9) * month)) if flags["prepaid"] else int(rng.poisson(0.5))
    )
    if flags["ads"]:  # one ad a week, mostly on one site
        weekly = np.arange(int(rng.integers(0, 7)), pop.days, 7)
        ad_day = np.clip(weekly + rng.integers(-1, 2, weekly.size), 0, pop.days - 1)
        ad_t = at_hour(rng, ad_day, cat.DAYTIME)
    else:
        ad_t = anytime(int(rng.poisson(0.4)), cat.DAYTIME)
    site = rng.choice(cat.AD_MCCS)
    ad_mcc = np.where(rng.random(ad_t.size) < 0.8, site, rng.choice(cat.AD_MCCS, ad_t.size))
    return concat(
        [
            spend(
                np.full(hotel_t.size, cat.HOTEL),
                hotel_t,
                rng.uniform(70, 220, hotel_t.size),
                False,
                hotel_city,
            ),
            spend(
                np.full(n_rides, cat.RIDES),
                during(n_rides, cat.LATE_NIGHT),
                rng.uniform(12, 60, n_rides),
                False,
            ),
            spend(ad_mcc, ad_t, rng.uniform(20, 150) * rng.uniform(0.9, 1.1, ad_t.size), True),
            spend(
                np.full(n_prepaid, cat.PREPAID),
                anytime(n_prepaid, cat.DAYTIME),
                round_to(rng.uniform(50, 500, n_prepaid), 25),
                False,
            ),
            _flights(kit, ctrl, flags["airline"]),
        ]
    )


def _flights(kit: Kit, ctrl: int, often: bool) -> Txns:
    """Airline tickets bought online, several passengers on one day when buying for victims."""
    rng, pop = kit.rng, kit.pop
    if often:
        trips = max(2, round(rng.uniform(2, 4) * pop.days / 30))
        seats = rng.integers(1, 4, trips)
        seats[0] += max(0, 4 - int(seats.sum()))  # at least four tickets in all
    else:
        trips = int(rng.poisson(0.3))
        seats = np.ones(trips, np.int64)
    trip, _ = ragged(seats)
    booked = at_hour(rng, rng.integers(0, pop.days, trips), cat.DAYTIME)
    t = np.minimum(booked[trip] + rng.integers(0, 20 * MINUTE, trip.size), pop.days * DAY - 1)
    fare = rng.uniform(120, 450, trips)[trip] * rng.uniform(0.95, 1.05, trip.size)
    city = rng.choice(kit.merchants.cities_with(cat.AIRLINE), trip.size)
    return kit.card(ctrl, np.full(trip.size, cat.AIRLINE), city, t, fare, True)


def _atm_runs(kit: Kit, victims: np.ndarray, t0: int, length: int) -> Txns:
    """On several days the controller withdraws cash with three or more victims' cards at one
    ATM within minutes (FATF/APG 2018)."""
    rng, pop = kit.rng, kit.pop
    nights = max(int(length // DAY), 1)
    runs = min(int(rng.integers(2, 6)), nights)
    day = rng.choice(nights, runs, replace=False)
    atm = kit.cash_points.pick(rng, ATM, np.repeat(pop.city(victims[:1]), runs))
    if rng.random() < 0.6:
        atm[:] = atm[0]  # often always the same machine
    cards = rng.integers(3, victims.size + 1, runs)
    run, k = ragged(cards)
    order = np.argsort(rng.random((runs, victims.size)), axis=1)
    span = rng.uniform(2, 9.5, runs) * MINUTE
    start = t0 + at_hour(rng, day, cat.LATE_NIGHT)
    t = (start[run] + span[run] * k / (cards[run] - 1)).astype(np.int64)
    t += rng.integers(0, 30_000_000, t.size)  # a few seconds either way
    amount = round_to(rng.uniform(200, 500, t.size), 20)
    loc = atm[run]
    return kit.txns(
        victims[order[run, k]], pop.loc_account[loc], t, amount, CH["cash_withdrawal"], loc=loc
    )


def _front_business(kit: Kit, ctrl: int, night: bool, cash: bool) -> Txns:
    """A massage parlour or nail salon open at night all period, its clients paying by card
    (`night`: many card sales at night) or in cash (`cash`: cash deposits far above its card
    takings), paying the controller every week. Nothing when no such business is left."""
    rng, pop = kit.rng, kit.pop
    # massage parlours have fewer daytime customers to hide the night trade among
    front = kit.front(7297 if night and rng.random() < 0.8 else 7230)
    if front is None:
        return concat([])
    pop.habits.cash_heavy[front] = False  # its own cash pattern replaces the usual one
    if cash:  # and no other business buys from it
        sells = pop.habits.suppliers == front
        pop.habits.suppliers[sells] = pick(rng, kit.pools.firm_bystanders, int(sells.sum()))
    rate, price = rng.uniform(5, 12) if night else rng.uniform(0.3, 1.5), rng.uniform(60, 160)
    day, _ = ragged(rng.poisson(rate, pop.days) * (rng.random(pop.days) < 0.9))
    t = at_hour(rng, day, cat.LATE_NIGHT if night else cat.EVENING)
    amount = round_to(price * rng.uniform(0.85, 1.15, day.size), 5)
    sales = kit.txns(
        kit.bystanders(day.size),
        front,
        t,
        amount,
        CH["card"],
        mcc=int(pop.btype[front]),
        loc=int(pop.terminal[front]),
    )

    # a cash front banks several times what its clients pay by card
    banked = np.flatnonzero(rng.random(pop.days) < (rng.uniform(0.7, 1) if cash else 0.5))
    median = rng.uniform(2500, 4500) + 6 * rate * price if cash else rng.uniform(400, 1500)
    deposits = kit.cash(
        front,
        BRANCH,
        np.repeat(pop.city(np.asarray([front])), banked.size),
        at_hour(rng, banked, cat.OFFICE),
        round_to(lognormal(rng, median, 0.3, banked.size), 10),
        deposit=True,
    )

    takings = np.bincount(
        np.concatenate([t, deposits.t]) // (7 * DAY),
        weights=np.concatenate([amount, deposits.amount]),
    )
    paid = np.flatnonzero(takings > 0)
    pay_t = np.minimum(
        at_hour(rng, paid * 7 + rng.integers(7, 10, paid.size), cat.OFFICE), pop.days * DAY - HOUR
    )  # after the week, the last one at the end
    memo = np.where(rng.random(paid.size) < 0.5, cat.MEMO["CONSULTING FEE"], -1)
    pay = kit.txns(
        front,
        ctrl,
        pay_t,
        cents(takings[paid] * rng.uniform(0.4, 0.8)),
        channel_mix(rng, paid.size, {"ach": 0.6, "wire": 0.4}),
        memo=memo,
    )
    return concat([sales, deposits, pay])


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

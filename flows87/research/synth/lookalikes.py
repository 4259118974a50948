"""Innocent behaviour that looks like a scheme: what makes real alerts mostly false positives.

Business travellers live in hotels and airports, students and small sellers are paid by many
people, cash businesses deposit large sums, dormant accounts wake up with ordinary volume,
families open their accounts together, people buy gift cards before a holiday, repay a loan in
fixed monthly instalments, hold two or three part-time jobs, queue at a busy ATM, and some spas
and salons stay open late. Other look-alikes come from the population itself: landlords with
many tenants, big employers, households and flatmates sharing an address or phone, small regular
remittances, night-shift workers, new accounts. All of them stay labelled innocent.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.background import card, monthly, periodic
from flows87.research.synth.kit import FRONT_TYPES, opened_at
from flows87.research.synth.parts import (
    CH,
    DAY,
    HOUR,
    Directory,
    Txns,
    at_hour,
    cents,
    channel_mix,
    concat,
    lognormal,
    ragged,
    round_to,
    txns,
)
from flows87.research.synth.population import ATM, BRANCH, BUSINESS, PERSON, Population

# Innocent buyers of what traffickers buy: (role, share of that role, MCC, purchases a day,
# median amount, hours, online).
HABITUAL: tuple[tuple[int, float, int, float, float, np.ndarray, bool], ...] = (
    (PERSON, 0.01, cat.PREPAID, 0.2, 60.0, cat.DAYTIME, False),  # gift cards
    (PERSON, 0.01, cat.RIDES, 0.3, 20.0, cat.LATE_NIGHT, False),  # rides home from work
    (PERSON, 0.01, 7273, 0.1, 30.0, cat.EVENING, True),  # dating sites
    (BUSINESS, 0.4, 7311, 0.15, 120.0, cat.OFFICE, True),  # online advertising
)


def lookalikes(pop: Population, rng: np.random.Generator) -> Txns:
    """All look-alike flows that the population's habits alone do not produce."""
    merchants = pop.merchants()
    return concat(
        [
            travellers(pop, rng, merchants),
            habitual_buyers(pop, rng, merchants),
            supported_students(pop, rng),
            small_sellers(pop, rng),
            reactivations(pop, rng),
            gift_card_bursts(pop, rng, merchants),
            loan_instalments(pop, rng),
            second_jobs(pop, rng),
            atm_queues(pop, rng),
            late_openers(pop, rng),
        ]
    )


def families_opening_together(
    pop: Population, rng: np.random.Generator, touched: np.ndarray
) -> None:
    """Families (one surname, one address) whose accounts were all opened within a few days,
    some shortly before or during the window: innocent look-alikes of an onboarding burst.
    Runs before the everyday flows; `touched` marks accounts the schemes already use."""
    eligible = _households(pop, touched | pop.habits.dormant, same_surname=True)
    chosen = rng.choice(
        eligible, min(eligible.size, max(3, round(0.03 * eligible.size))), replace=False
    )
    base = np.zeros(pop.addr_city.size, np.int64)
    base[chosen] = rng.integers(-60 * DAY, int(0.7 * pop.days * DAY), chosen.size)
    members = np.flatnonzero((pop.role == PERSON) & np.isin(pop.hh, chosen))
    opened_at(pop, members, base[pop.hh[members]] + rng.integers(0, 3 * DAY, members.size))
    pop.habits.new[members] = True


def _households(pop: Population, exclude: np.ndarray, same_surname: bool = False) -> np.ndarray:
    """Addresses of three or more people, none in a scheme or `exclude` (optionally all of one
    surname)."""
    persons = np.flatnonzero(pop.role == PERSON)
    hh = pop.hh[persons]
    n_addr = pop.addr_city.size
    size = np.bincount(hh, minlength=n_addr)
    busy = np.bincount(hh, weights=(exclude | (pop.label_typ >= 0))[persons], minlength=n_addr)
    ok = (size >= 3) & (busy == 0)
    if same_surname:
        lo = np.full(n_addr, np.iinfo(np.int16).max, np.int64)
        hi = np.full(n_addr, -1, np.int64)
        np.minimum.at(lo, hh, pop.last[persons])
        np.maximum.at(hi, hh, pop.last[persons])
        ok &= lo == hi
    return np.flatnonzero(ok)


def gift_card_bursts(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """People buying several gift cards within a few days, as before a holiday."""
    pool = np.flatnonzero((pop.role == PERSON) & (pop.label_typ < 0))
    buyers = pool[rng.random(pool.size) < 0.01]
    owner, _ = ragged(rng.integers(3, 9, buyers.size))
    start = rng.integers(0, pop.days, buyers.size)
    day = np.minimum(start[owner] + rng.integers(0, 4, owner.size), pop.days - 1)
    who = buyers[owner]
    return card(
        pop,
        rng,
        merchants,
        who,
        np.full(who.size, cat.PREPAID),
        pop.city(who),
        at_hour(rng, day, cat.DAYTIME),
        round_to(lognormal(rng, 50, 0.5, who.size), 5),
    )


def loan_instalments(pop: Population, rng: np.random.Generator) -> Txns:
    """Borrowers repaying a lender the same instalment every month (some every two weeks);
    each lender sells a few standard plans, so many people pay it near-identical sums."""
    people = np.flatnonzero((pop.role == PERSON) & (pop.label_typ < 0))
    firms = np.flatnonzero((pop.role == BUSINESS) & (pop.label_typ < 0) & (pop.terminal < 0))
    lenders = rng.choice(firms, min(firms.size, max(3, people.size // 1500)), replace=False)
    plans = round_to(rng.uniform(150, 400, (lenders.size, 3)), 5)
    who = people[rng.random(people.size) < 0.03]
    weight = rng.pareto(1.0, lenders.size) + 1
    lender = rng.choice(lenders.size, who.size, p=weight / weight.sum())
    plan = plans[lender, rng.integers(0, 3, who.size)]
    fortnightly = rng.random(who.size) < 0.25
    mo, md = monthly(pop.start, pop.days, rng.integers(1, 29, who.size))
    mo, md = mo[~fortnightly[mo]], md[~fortnightly[mo]]
    fo, fd = periodic(pop.days, np.full(who.size, 14), rng.integers(0, 14, who.size))
    fo, fd = fo[fortnightly[fo]], fd[fortnightly[fo]]
    owner, day = np.concatenate([mo, fo]), np.concatenate([md, fd])
    amount = np.where(fortnightly[owner], plan[owner] / 2, plan[owner])
    memo = np.where(rng.random(owner.size) < 0.5, cat.MEMO["LOAN REPAYMENT"], -1)
    return txns(
        who[owner],
        lenders[lender[owner]],
        at_hour(rng, day, cat.DAYTIME),
        cents(amount),
        channel_mix(rng, owner.size, {"ach": 0.85, "p2p": 0.15}),
        memo=memo,
    )


def second_jobs(pop: Population, rng: np.random.Generator) -> Txns:
    """People with a second part-time job (a few with a third), paid by each employer."""
    h = pop.habits
    workers = np.flatnonzero((h.employer >= 0) & (pop.label_typ < 0))
    who = workers[rng.random(workers.size) < 0.025]
    who = np.concatenate([who, who[rng.random(who.size) < 0.2]])  # a third job
    firms = np.flatnonzero((pop.role == BUSINESS) & (pop.label_typ < 0))
    boss = firms[rng.integers(0, firms.size, who.size)]
    every = rng.choice([14, 30], who.size)
    owner, day = periodic(pop.days, every, rng.integers(0, np.minimum(every, pop.days)))
    amount = lognormal(rng, 1000, 0.35, who.size)[owner] * every[owner] / 30
    memo = np.where(rng.random(owner.size) < 0.8, cat.MEMO["PAYROLL"], -1)
    return txns(
        boss[owner],
        who[owner],
        at_hour(rng, day, cat.EARLY),
        cents(amount),
        channel_mix(rng, owner.size, {"ach": 0.95, "wire": 0.05}),
        memo=memo,
    )


def atm_queues(pop: Population, rng: np.random.Generator) -> Txns:
    """Several strangers withdrawing at one ATM within minutes (a Friday night, a festival),
    and households who routinely go to the ATM together."""
    people = np.flatnonzero((pop.role == PERSON) & (pop.label_typ < 0))
    locals_ = Directory(people, np.zeros(people.size), pop.city(people), pop.n_cities)
    events = max(5, round(people.size / 400 * pop.days / 30))
    city = rng.choice(pop.n_cities, events, p=pop.city_weight)
    atm = pop.cash_points().pick(rng, ATM, city)
    owner, k = ragged(rng.integers(3, 7, events))
    start = at_hour(rng, rng.integers(0, pop.days, events), cat.EVENING)
    t = start[owner] + (
        rng.uniform(2, 15, events)[owner] * 60_000_000 * rng.random(owner.size)
    ).astype(np.int64)
    who = locals_.pick(rng, 0, city[owner])
    notes = np.asarray([20, 40, 60, 100, 200])
    loc = atm[owner]
    strangers = txns(
        who,
        pop.loc_account[loc],
        t,
        notes[rng.integers(0, notes.size, who.size)],
        CH["cash_withdrawal"],
        loc=loc,
    )
    return concat([strangers, _households_at_atm(pop, rng, people.size)])


def _households_at_atm(pop: Population, rng: np.random.Generator, n_people: int) -> Txns:
    """A few households withdrawing together at their home ATM on two to four evenings."""
    homes = _households(pop, np.zeros(pop.n, bool))
    chosen = rng.choice(homes, min(homes.size, max(2, n_people // 2000)), replace=False)
    slot = np.full(pop.addr_city.size, -1)
    slot[chosen] = np.arange(chosen.size)
    members = np.flatnonzero((pop.role == PERSON) & (slot[pop.hh] >= 0) & (pop.hh >= 0))
    home = slot[pop.hh[members]]
    times = rng.integers(2, 5, chosen.size)  # evenings per household
    at_home, o = ragged(times)  # each evening's household
    step = rng.integers(1, max(2, pop.days // 4), chosen.size)  # on different days
    day = (rng.integers(0, pop.days, chosen.size)[at_home] + o * step[at_home]) % pop.days
    start = at_hour(rng, day, cat.EVENING)
    span = rng.uniform(2, 10, day.size) * 60_000_000
    i, k = ragged(times[home])  # each member on each evening
    event = (np.cumsum(times) - times)[home[i]] + k
    t = start[event] + (span[event] * rng.random(i.size)).astype(np.int64)
    loc = pop.cash_points().pick(rng, ATM, pop.addr_city[chosen])[home[i]]
    amount = round_to(lognormal(rng, 100, 0.5, i.size), 20)
    return txns(members[i], pop.loc_account[loc], t, amount, CH["cash_withdrawal"], loc=loc)


def late_openers(pop: Population, rng: np.random.Generator) -> Txns:
    """Spas and salons open late, taking many card payments in the evening and at night."""
    shops = np.flatnonzero(
        (pop.role == BUSINESS)
        & (pop.label_typ < 0)
        & (pop.terminal >= 0)
        & np.isin(pop.btype, FRONT_TYPES)
    )
    late = rng.choice(shops, min(shops.size, max(2, round(0.3 * shops.size))), replace=False)
    per_day = rng.poisson(rng.uniform(5, 15, late.size)[:, None], (late.size, pop.days))
    shop, day = np.nonzero(per_day)
    shop, day = np.repeat(shop, per_day[shop, day]), np.repeat(day, per_day[shop, day])
    people = np.flatnonzero(pop.role == PERSON)
    who = late[shop]
    t = at_hour(rng, day, cat.NIGHTLIFE)
    after = rng.random(who.size) < rng.uniform(0.5, 0.95, late.size)[shop]  # open till late
    t[after] = at_hour(rng, day[after], cat.LATE_NIGHT)
    return txns(
        people[rng.integers(0, people.size, who.size)],
        who,
        t,
        cents(lognormal(rng, 55, 0.4, who.size)),
        CH["card"],
        mcc=pop.btype[who],
        loc=pop.terminal[who],
    )


def habitual_buyers(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """Innocent accounts that often pay for gift cards, night rides, dating sites, ads."""
    parts = []
    for role, share, mcc, rate, median, profile, online in HABITUAL:
        pool = np.flatnonzero((pop.role == role) & (pop.label_typ < 0))
        buyers = pool[rng.random(pool.size) < share]
        who = np.repeat(buyers, rng.poisson(rate * pop.days, buyers.size))
        t = at_hour(rng, rng.integers(0, pop.days, who.size), profile)
        parts.append(
            card(
                pop,
                rng,
                merchants,
                who,
                np.full(who.size, mcc),
                pop.city(who),
                t,
                lognormal(rng, median, 0.5, who.size),
                online,
            )
        )
    return concat(parts)


def travellers(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """Hotels, flights, taxis and meals in several cities, several nights a week."""
    who = np.flatnonzero(pop.habits.traveller)
    hotel_cities = merchants.cities_with(cat.HOTEL)
    trips = hotel_cities[rng.integers(0, hotel_cities.size, (who.size, 5))]
    parts = []
    for mcc, rate, median, sigma, profile in (
        (cat.HOTEL, 0.35, 160.0, 0.4, cat.EVENING),
        (cat.AIRLINE, 0.08, 380.0, 0.5, cat.DAYTIME),
        (cat.RIDES, 0.4, 25.0, 0.5, cat.DAYTIME),
        (5812, 0.5, 45.0, 0.5, cat.EVENING),
    ):
        i = np.repeat(np.arange(who.size), rng.poisson(rate * pop.days, who.size))
        city = trips[i, rng.integers(0, 5, i.size)]
        t = at_hour(rng, rng.integers(0, pop.days, i.size), profile)
        parts.append(
            card(
                pop,
                rng,
                merchants,
                who[i],
                np.full(i.size, mcc),
                city,
                t,
                lognormal(rng, median, sigma, i.size),
                mcc == cat.AIRLINE,
            )
        )
    return concat(parts)


def supported_students(pop: Population, rng: np.random.Generator) -> Txns:
    """Students receiving many small transfers from family and friends."""
    who = np.flatnonzero(pop.habits.supported)
    people = np.flatnonzero(pop.role == PERSON)
    circle = rng.choice(people, (who.size, 10))
    circle[:, :2] = pop.habits.contacts[who, :2]
    i = np.repeat(np.arange(who.size), rng.poisson(0.35 * pop.days, who.size))
    payer = circle[i, rng.integers(0, 10, i.size)]
    t = at_hour(rng, rng.integers(0, pop.days, i.size), cat.DAYTIME)
    channel = channel_mix(rng, i.size, {"p2p": 0.8, "mobile_money": 0.2})
    return txns(payer, who[i], t, round_to(lognormal(rng, 60, 0.6, i.size), 5), channel)


def small_sellers(pop: Population, rng: np.random.Generator) -> Txns:
    """People selling things, paid by many strangers (some by card on a phone reader);
    some sell at night (street food, nightlife) and are paid mostly late."""
    seller = pop.habits.seller
    who = np.flatnonzero(seller > 0)
    people = np.flatnonzero(pop.role == PERSON)
    busy = np.where(seller[who] == 2, 1.0, 0.7)  # sales a day
    i = np.repeat(np.arange(who.size), rng.poisson(busy * pop.days))
    day = rng.integers(0, pop.days, i.size)
    t = at_hour(rng, day, cat.DAYTIME)
    late = seller[who[i]] == 2
    t[late] = at_hour(rng, day[late], cat.NIGHTLIFE)
    payer = people[rng.integers(0, people.size, i.size)]
    channel = channel_mix(rng, i.size, {"p2p": 0.7, "mobile_money": 0.1, "card": 0.2})
    mcc = np.where(channel == CH["card"], 5999, -1)  # a phone card reader, no terminal
    return txns(payer, who[i], t, round_to(lognormal(rng, 45, 0.6, i.size), 1), channel, mcc=mcc)


def reactivations(pop: Population, rng: np.random.Generator) -> Txns:
    """A dormant account wakes up with a deposit or a cheque, then behaves normally."""
    who = np.flatnonzero(pop.habits.dormant)
    t = pop.active_from[who] + rng.integers(0, 2 * HOUR, who.size)
    cheque = rng.random(who.size) < 0.5
    biz = np.flatnonzero(pop.role == BUSINESS)
    cash = pop.cash_points()
    loc = cash.pick(rng, BRANCH, pop.city(who))
    src = np.where(cheque, biz[rng.integers(0, biz.size, who.size)], pop.loc_account[loc])
    return txns(
        src,
        who,
        t,
        round_to(lognormal(rng, 2500, 0.6, who.size), 10),
        np.where(cheque, CH["cheque"], CH["cash_deposit"]),
        loc=np.where(cheque, -1, loc),
    )

"""Innocent behaviour that looks like a scheme: what makes real alerts mostly false positives.

Business travellers live in hotels and airports, students and small sellers are paid by many
people, cash businesses deposit large sums, dormant accounts wake up. Other look-alikes come
from the population itself: landlords with many tenants, big employers, households and
flatmates sharing an address or phone, small regular remittances, night-shift workers, new
accounts. All of them stay labelled innocent.
"""

from __future__ import annotations

import numpy as np

from flows87.synth import catalog as cat
from flows87.synth.background import card
from flows87.synth.parts import (
    CH,
    HOUR,
    Directory,
    Txns,
    at_hour,
    channel_mix,
    concat,
    lognormal,
    round_to,
    txns,
)
from flows87.synth.population import BRANCH, BUSINESS, PERSON, Population

# Innocent buyers of what traffickers buy: (role, share of that role, MCC, purchases a day,
# median amount, hours, online).
HABITUAL: tuple[tuple[int, float, int, float, float, np.ndarray, bool], ...] = (
    (PERSON, 0.01, cat.PREPAID, 0.2, 60.0, cat.DAYTIME, False),     # gift cards
    (PERSON, 0.01, cat.RIDES, 0.3, 20.0, cat.LATE_NIGHT, False),    # rides home from work
    (PERSON, 0.01, 7273, 0.1, 30.0, cat.EVENING, True),             # dating sites
    (BUSINESS, 0.4, 7311, 0.15, 120.0, cat.OFFICE, True),           # online advertising
)


def lookalikes(pop: Population, rng: np.random.Generator) -> Txns:
    """All look-alike flows that the population's habits alone do not produce."""
    merchants = pop.merchants()
    return concat([travellers(pop, rng, merchants), habitual_buyers(pop, rng, merchants),
                   supported_students(pop, rng), small_sellers(pop, rng),
                   reactivations(pop, rng)])


def habitual_buyers(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """Innocent accounts that often pay for gift cards, night rides, dating sites, ads."""
    parts = []
    for role, share, mcc, rate, median, profile, online in HABITUAL:
        pool = np.flatnonzero((pop.role == role) & (pop.label_typ < 0))
        buyers = pool[rng.random(pool.size) < share]
        who = np.repeat(buyers, rng.poisson(rate * pop.days, buyers.size))
        t = at_hour(rng, rng.integers(0, pop.days, who.size), profile)
        parts.append(card(pop, rng, merchants, who, np.full(who.size, mcc), pop.city(who), t,
                          lognormal(rng, median, 0.5, who.size), online))
    return concat(parts)


def travellers(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """Hotels, flights, taxis and meals in several cities, several nights a week."""
    who = np.flatnonzero(pop.habits.traveller)
    hotel_cities = merchants.cities_with(cat.HOTEL)
    trips = hotel_cities[rng.integers(0, hotel_cities.size, (who.size, 5))]
    parts = []
    for mcc, rate, median, sigma, profile in (
        (cat.HOTEL, 0.35, 160.0, 0.4, cat.EVENING), (cat.AIRLINE, 0.08, 380.0, 0.5, cat.DAYTIME),
        (cat.RIDES, 0.4, 25.0, 0.5, cat.DAYTIME), (5812, 0.5, 45.0, 0.5, cat.EVENING),
    ):
        i = np.repeat(np.arange(who.size), rng.poisson(rate * pop.days, who.size))
        city = trips[i, rng.integers(0, 5, i.size)]
        t = at_hour(rng, rng.integers(0, pop.days, i.size), profile)
        parts.append(card(pop, rng, merchants, who[i], np.full(i.size, mcc), city, t,
                          lognormal(rng, median, sigma, i.size), mcc == cat.AIRLINE))
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
    busy = np.where(seller[who] == 2, 1.0, 0.7)           # sales a day
    i = np.repeat(np.arange(who.size), rng.poisson(busy * pop.days))
    day = rng.integers(0, pop.days, i.size)
    t = at_hour(rng, day, cat.DAYTIME)
    late = seller[who[i]] == 2
    t[late] = at_hour(rng, day[late], cat.NIGHTLIFE)
    payer = people[rng.integers(0, people.size, i.size)]
    channel = channel_mix(rng, i.size, {"p2p": 0.7, "mobile_money": 0.1, "card": 0.2})
    mcc = np.where(channel == CH["card"], 5999, -1)       # a phone card reader, no terminal
    return txns(payer, who[i], t, round_to(lognormal(rng, 45, 0.6, i.size), 1), channel,
                mcc=mcc)


def reactivations(pop: Population, rng: np.random.Generator) -> Txns:
    """A dormant account wakes up with a deposit or a cheque, then behaves normally."""
    who = np.flatnonzero(pop.habits.dormant)
    t = pop.active_from[who] + rng.integers(0, 2 * HOUR, who.size)
    cheque = rng.random(who.size) < 0.5
    biz = np.flatnonzero(pop.role == BUSINESS)
    cash = pop.cash_points()
    loc = cash.pick(rng, BRANCH, pop.city(who))
    src = np.where(cheque, biz[rng.integers(0, biz.size, who.size)], pop.loc_account[loc])
    return txns(src, who, t, round_to(lognormal(rng, 2500, 0.6, who.size), 10),
                np.where(cheque, CH["cheque"], CH["cash_deposit"]),
                loc=np.where(cheque, -1, loc))

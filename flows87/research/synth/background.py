"""Innocent everyday money: wages, rent, bills, card spending, p2p, cash, trade, remittances.

Each function draws a count per account (Poisson on its daily rate times the window), repeats
the account that many times, and draws every other column as a whole array. Rates are chosen
so that the whole population makes roughly one transaction per account per day.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from numpy.typing import ArrayLike

from flows87.research.synth import catalog as cat
from flows87.research.synth.parts import (
    CH,
    DAY,
    Directory,
    Txns,
    at_hour,
    cents,
    channel_mix,
    concat,
    lognormal,
    pick,
    ragged,
    round_to,
    txns,
)
from flows87.research.synth.population import ATM, BRANCH, BUSINESS, PERSON, Population


def everyday(pop: Population, rng: np.random.Generator) -> Txns:
    """All innocent everyday flows of the population, before the validity filter."""
    merchants = pop.merchants()
    cash = pop.cash_points()
    return concat(
        [
            payroll(pop, rng),
            rent(pop, rng),
            bills(pop, rng),
            card_spending(pop, rng, merchants),
            p2p(pop, rng),
            personal_cash(pop, rng, cash),
            trade(pop, rng),
            business_cash(pop, rng, cash),
            remittances(pop, rng),
            crypto(pop, rng),
            savings(pop, rng),
        ]
    )


def monthly(start: date, days: int, dom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, day) of each owner's day-of-month `dom` in every month the window touches."""
    owners, out = [], []
    first = date(start.year, start.month, 1)
    while first < start + timedelta(days=days):  # one pass per month
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        length = (nxt - first).days
        day = (first - start).days + np.minimum(dom, length) - 1
        ok = (day >= 0) & (day < days)
        owners.append(np.flatnonzero(ok))
        out.append(day[ok])
        first = nxt
    return np.concatenate(owners), np.concatenate(out)


def periodic(days: int, period: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, day) every `period` days from `phase`, within the window."""
    counts = np.maximum((days - 1 - phase) // period + 1, 0)
    owner, k = ragged(counts)
    return owner, phase[owner] + k * period[owner]


def payroll(pop: Population, rng: np.random.Generator) -> Txns:
    """Wages from employers: monthly, bi-weekly or weekly, early-morning ACH."""
    h = pop.habits
    biz = np.flatnonzero(pop.role == BUSINESS)
    per = h.pay_period[biz].astype(np.int64)
    phase = h.pay_phase[biz].astype(np.int64)
    mo, md = monthly(pop.start, pop.days, phase[per == 0])
    po, pd = periodic(pop.days, per[per > 0], phase[per > 0])
    owner = np.concatenate([np.flatnonzero(per == 0)[mo], np.flatnonzero(per > 0)[po]])
    day = np.concatenate([md, pd])
    order = np.argsort(owner, kind="stable")
    owner, day = owner[order], day[order]
    n_days = np.bincount(owner, minlength=biz.size)
    first = np.cumsum(n_days) - n_days

    slot = np.full(pop.n, -1, np.int64)
    slot[biz] = np.arange(biz.size)
    staff = np.flatnonzero(h.employer >= 0)
    b = slot[h.employer[staff]]
    i, k = ragged(n_days[b])
    who = staff[i]
    period = per[b[i]]
    share = np.where(period == 0, 1.0, period * 12 / 365)
    amount = h.salary[who] * share * np.where(period == 7, rng.normal(1, 0.05, who.size), 1)
    t = at_hour(rng, day[first[b[i]] + k], cat.EARLY)
    channel = channel_mix(rng, who.size, {"ach": 0.92, "cheque": 0.05, "wire": 0.03})
    memo = np.where(rng.random(who.size) < 0.8, cat.MEMO["PAYROLL"], -1)
    return txns(h.employer[who], who, t, cents(amount), channel, memo=memo)


def rent(pop: Population, rng: np.random.Generator) -> Txns:
    """Monthly rent from household heads to landlords and property managers."""
    h = pop.habits
    renters = np.flatnonzero(h.rent_to >= 0)
    i, day = monthly(pop.start, pop.days, rng.integers(1, 6, renters.size))
    who = renters[i]
    channel = channel_mix(rng, who.size, {"ach": 0.5, "p2p": 0.25, "cheque": 0.15, "wire": 0.1})
    memo = np.where(rng.random(who.size) < 0.6, cat.MEMO["RENT"], -1)
    return txns(
        who, h.rent_to[who], at_hour(rng, day, cat.DAYTIME), cents(h.rent[who]), channel, memo=memo
    )


def bills(pop: Population, rng: np.random.Generator) -> Txns:
    """Utility and phone bills, monthly, by ACH or card."""
    heads = np.flatnonzero(pop.habits.bills)
    parts = []
    for mcc, median in ((4900, 110.0), (4814, 60.0)):
        payees = pop.businesses_of((mcc,))
        payee = pick(rng, payees, heads.size)
        i, day = monthly(pop.start, pop.days, rng.integers(1, 29, heads.size))
        card = rng.random(i.size) < 0.3
        parts.append(
            txns(
                heads[i],
                payee[i],
                at_hour(rng, day, cat.DAYTIME),
                cents(lognormal(rng, median, 0.35, i.size)),
                np.where(card, CH["card"], CH["ach"]),
                mcc=np.where(card, mcc, -1),
                loc=np.where(card, pop.terminal[payee[i]], -1),
                dev=np.where(card, pop.device[heads[i]], -1),
                memo=np.where(card, -1, cat.MEMO["UTILITY BILL"]),
            )
        )
    return concat(parts)


def spend_profile(
    pop: Population, rng: np.random.Generator, who: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """Daytime hours, shifted to the night for night-shift workers."""
    t = at_hour(rng, days, cat.DAYTIME)
    night = pop.habits.night[who]
    t[night] = at_hour(rng, days[night], cat.NIGHT_SHIFT)
    return t


def card(
    pop: Population,
    rng: np.random.Generator,
    merchants: Directory,
    who: ArrayLike,
    mcc: np.ndarray,
    city: ArrayLike,
    t: np.ndarray,
    amount: np.ndarray,
    online: ArrayLike = False,
    typ: int = -1,
    sch: int = -1,
) -> Txns:
    """Card payments at a merchant of the MCC, in the city when there is one there."""
    dst = merchants.pick(rng, mcc, city)
    dev = np.where(online, pop.device[np.asarray(who, np.int64)], -1)
    return txns(
        who,
        dst,
        t,
        cents(amount),
        CH["card"],
        mcc=mcc,
        loc=pop.terminal[dst],
        dev=dev,
        typ=typ,
        sch=sch,
    )


def card_spending(pop: Population, rng: np.random.Generator, merchants: Directory) -> Txns:
    """Everyday card payments across merchant categories, mostly in the home city."""
    h = pop.habits
    people = np.flatnonzero(pop.role == PERSON)
    counts = rng.poisson(0.66 * h.activity[people] * pop.days)
    who = np.repeat(people, counts)
    spend = cat.CARD_SPEND
    w = np.asarray([s.weight for s in spend])
    k = rng.choice(len(spend), who.size, p=w / w.sum())
    mcc = np.asarray([s.mcc for s in spend])[k]
    amount = lognormal(
        rng,
        np.asarray([s.median for s in spend])[k],
        np.asarray([s.sigma for s in spend])[k],
        who.size,
    )
    online = np.asarray([s.online for s in spend])[k]
    away = rng.random(who.size) < 0.1
    city = np.where(away, rng.choice(pop.n_cities, who.size, p=pop.city_weight), pop.city(who))
    t = spend_profile(pop, rng, who, rng.integers(0, pop.days, who.size))
    paid = card(pop, rng, merchants, who, mcc, city, t, amount, online)
    # a trafficking front (massage parlour, nail salon) has few genuine customers
    front = (pop.label_typ == cat.TYPOLOGIES.index("sex_trafficking")) & (pop.role == BUSINESS)
    return paid.take(~front[paid.dst] | (rng.random(len(paid)) < 0.3))


def p2p(pop: Population, rng: np.random.Generator) -> Txns:
    """Transfers among friends and family."""
    h = pop.habits
    people = np.flatnonzero(pop.role == PERSON)
    who = np.repeat(people, rng.poisson(0.1 * h.activity[people] * pop.days))
    dst = h.contacts[who, rng.integers(0, 4, who.size)]
    raw = lognormal(rng, 40, 0.8, who.size)
    amount = np.where(rng.random(who.size) < 0.3, cents(raw), round_to(raw, 1))  # split bills
    t = spend_profile(pop, rng, who, rng.integers(0, pop.days, who.size))
    channel = channel_mix(rng, who.size, {"p2p": 0.85, "mobile_money": 0.15})
    memo = np.where(rng.random(who.size) < 0.1, cat.MEMO["THANKS"], -1)
    return txns(who, dst, t, amount, channel, memo=memo)


def cash_txns(
    pop: Population,
    rng: np.random.Generator,
    cash: Directory,
    who: ArrayLike,
    kind: ArrayLike,
    city: ArrayLike,
    t: ArrayLike,
    amount: ArrayLike,
    deposit: bool,
    typ: int = -1,
    sch: int = -1,
) -> Txns:
    """Cash in or out at a branch or ATM of the city; the cash side is the location's account."""
    loc = cash.pick(rng, kind, city)
    point = pop.loc_account[loc]
    src, dst = (point, who) if deposit else (who, point)
    channel = CH["cash_deposit"] if deposit else CH["cash_withdrawal"]
    return txns(src, dst, t, amount, channel, loc=loc, typ=typ, sch=sch)


def personal_cash(pop: Population, rng: np.random.Generator, cash: Directory) -> Txns:
    """ATM withdrawals (a few a month) and occasional deposits, near home."""
    h = pop.habits
    people = np.flatnonzero(pop.role == PERSON)
    out = np.repeat(people, rng.poisson(0.07 * np.sqrt(h.activity[people]) * pop.days))
    notes = np.asarray([20, 40, 60, 80, 100, 120, 200, 300, 400])
    amount = notes[
        rng.choice(notes.size, out.size, p=[0.05, 0.15, 0.1, 0.1, 0.2, 0.05, 0.2, 0.1, 0.05])
    ].astype(float)
    away = rng.random(out.size) < 0.1
    city = np.where(away, rng.integers(0, pop.n_cities, out.size), pop.city(out))
    withdrawals = cash_txns(
        pop,
        rng,
        cash,
        out,
        ATM,
        city,
        spend_profile(pop, rng, out, rng.integers(0, pop.days, out.size)),
        amount,
        deposit=False,
    )
    dep = np.repeat(people, rng.poisson(0.015 * pop.days, people.size))
    kind = np.where(rng.random(dep.size) < 0.5, BRANCH, ATM)
    deposits = cash_txns(
        pop,
        rng,
        cash,
        dep,
        kind,
        pop.city(dep),
        at_hour(rng, rng.integers(0, pop.days, dep.size), cat.OFFICE),
        round_to(lognormal(rng, 300, 0.8, dep.size), 10),
        deposit=True,
    )
    return concat([withdrawals, deposits])


def trade(pop: Population, rng: np.random.Generator) -> Txns:
    """Businesses paying suppliers at home and, for some, abroad."""
    h = pop.habits
    biz = np.flatnonzero(pop.role == BUSINESS)
    rate = np.minimum(0.05 + 0.05 * h.size[biz], 2.0)
    who = np.repeat(biz, rng.poisson(rate * pop.days))
    dst = h.suppliers[who, rng.integers(0, 3, who.size)]
    amount = lognormal(rng, 1500 * np.sqrt(h.size[who]), 0.9, who.size)
    channel = channel_mix(rng, who.size, {"ach": 0.55, "wire": 0.3, "cheque": 0.15})
    memo = np.where(rng.random(who.size) < 0.5, cat.MEMO["INVOICE"], -1)
    home = txns(
        who,
        dst,
        at_hour(rng, rng.integers(0, pop.days, who.size), cat.OFFICE),
        cents(amount),
        channel,
        memo=memo,
    )

    importers = np.flatnonzero(h.foreign_supplier >= 0)
    imp = np.repeat(importers, rng.poisson(0.03 * pop.days, importers.size))
    sup = h.foreign_supplier[imp]
    cur = np.where(rng.random(imp.size) < 0.5, pop.currency(sup), -1)
    abroad = txns(
        imp,
        sup,
        at_hour(rng, rng.integers(0, pop.days, imp.size), cat.OFFICE),
        cents(lognormal(rng, 8000, 0.8, imp.size)),
        CH["wire"],
        cur=cur,
        memo=cat.MEMO["INVOICE"],
    )
    return concat([home, abroad])


def business_cash(pop: Population, rng: np.random.Generator, cash: Directory) -> Txns:
    """Cash takings deposited by cash-intensive businesses; some deposit large sums daily."""
    h = pop.habits
    cash_types = [b.code for b in cat.BUSINESS_TYPES if b.cash]
    biz = pop.businesses_of(tuple(cash_types))
    heavy = h.cash_heavy[biz]
    who = np.repeat(biz, rng.poisson(np.where(heavy, 0.8, 0.25) * pop.days))
    big = h.cash_heavy[who]
    amount = np.where(
        big, lognormal(rng, 6500, 0.35, who.size), lognormal(rng, 1200, 0.6, who.size)
    )
    kind = np.where(rng.random(who.size) < 0.85, BRANCH, ATM)
    t = at_hour(rng, rng.integers(0, pop.days, who.size), cat.OFFICE)
    return cash_txns(
        pop, rng, cash, who, kind, pop.city(who), t, round_to(amount, 10), deposit=True
    )


def remittances(pop: Population, rng: np.random.Generator) -> Txns:
    """Migrant workers sending money home; some send small sums often."""
    h = pop.habits
    senders = np.flatnonzero(h.remit_to >= 0)
    small = h.remit_small[senders]
    who = np.repeat(senders, rng.poisson(np.where(small, 0.15, 0.066) * pop.days))
    dst = h.remit_to[who]
    amount = np.where(
        h.remit_small[who], rng.uniform(30, 150, who.size), lognormal(rng, 300, 0.45, who.size)
    )
    channel = channel_mix(rng, who.size, {"wire": 0.4, "mobile_money": 0.3, "other": 0.3})
    cur = np.where(rng.random(who.size) < 0.4, pop.currency(dst), -1)
    memo = np.where(rng.random(who.size) < 0.5, cat.MEMO["FAMILY SUPPORT"], -1)
    t = at_hour(rng, rng.integers(0, pop.days, who.size), cat.DAYTIME)
    return txns(who, dst, t, round_to(amount, 1), channel, cur=cur, memo=memo)


def crypto(pop: Population, rng: np.random.Generator) -> Txns:
    """Occasional crypto purchases at an exchange."""
    h = pop.habits
    buyers = np.flatnonzero(h.crypto)
    who = np.repeat(buyers, rng.poisson(0.05 * pop.days, buyers.size))
    dst = pick(rng, pop.businesses_of((6051,)), who.size)
    t = at_hour(rng, rng.integers(0, pop.days, who.size), cat.EVENING)
    return txns(who, dst, t, round_to(lognormal(rng, 200, 0.9, who.size), 1), CH["crypto"])


def savings(pop: Population, rng: np.random.Generator) -> Txns:
    """People moving money to their own second account."""
    h = pop.habits
    owners = np.flatnonzero(h.twin >= 0)
    who = np.repeat(owners, rng.poisson(0.1 * pop.days, owners.size))
    t = at_hour(rng, rng.integers(0, pop.days, who.size), cat.DAYTIME)
    return txns(who, h.twin[who], t, round_to(lognormal(rng, 200, 0.7, who.size), 10), CH["ach"])


def valid(pop: Population, tx: Txns) -> Txns:
    """Drop draws that cannot happen: to oneself, before an account is active, off-window."""
    keep = (
        (tx.src != tx.dst)
        & (tx.t >= 0)
        & (tx.t < pop.days * DAY)
        & (tx.t >= pop.active_from[tx.src])
        & (tx.t >= pop.active_from[tx.dst])
        & (tx.src >= 0)
        & (tx.dst >= 0)
    )
    return tx.take(keep)

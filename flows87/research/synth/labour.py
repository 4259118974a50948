"""Forced labour: wages paid and taken back, recruitment debts, pooled wages, cash payrolls.

Shapes follow FinCEN FIN-2014-A008 and FIN-2020-A008, FATF/APG 2018 and Polaris 2017. Every
scheme has workers housed together by one exploiting employer in a labour-intensive sector; how
they are paid and what else the scheme does varies from scheme to scheme.
"""

from __future__ import annotations

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.background import periodic
from flows87.research.synth.kit import Kit, quiet
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
    round_to,
)
from flows87.research.synth.population import ATM, BRANCH, FOREIGN_PERSON

# How the employer pays: wages by bank transfer, most taken back within days (FinCEN 2014), or
# in cash, so a business with revenue shows almost no payroll (FinCEN 2020; Polaris 2017).
WAGE_MODES: dict[str, float] = {"bank": 0.65, "cash": 0.35}
# Recruitment fees / debt bondage repayments (FATF 2018; Polaris 2017): to a recruiter abroad,
# to one at home, or none.
FEE_MODES: dict[str, float] = {"foreign": 0.25, "domestic": 0.3, "none": 0.45}
# Wages of workers placed at several employers paid into one account (FinCEN 2020).
LABOUR_FLAGS: dict[str, float] = {"pooled_wages": 0.4}
# Origin countries of recruiters and where pooled fees are sent (high-risk corridors).
RECRUITER_COUNTRIES: tuple[str, ...] = ("PH", "VN", "NG", "RO", "TH", "ID")


def labour_exploitation(kit: Kit) -> Txns:
    """Housed-together workers of one employer, paid by bank (most taken back) or in cash; per
    scheme also recruitment fees at home or abroad and wages pooled from several employers."""
    rng, pop = kit.rng, kit.pop
    mode, fees = kit.variant(WAGE_MODES), kit.variant(FEE_MODES)
    pooled = kit.traits(LABOUR_FLAGS)["pooled_wages"]
    boss = kit.employer()
    pop.btype[boss] = rng.choice(cat.LABOUR_SCHEME_TYPES)
    workers = kit.people(int(rng.integers(5, 21)))
    takers = kit.people(int(rng.integers(1, 3)))  # the employer's associates
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
    if mode == "cash" or rng.random() < 0.7:  # most exploiters are small outfits
        staff = np.flatnonzero(pop.habits.employer == boss)  # whose real staff work elsewhere
        pop.habits.employer[staff] = pick(rng, kit.pools.firm_bystanders, staff.size)
    pay = _bank_wages if mode == "bank" else _cash_wages
    parts = [pay(kit, boss, workers[w], takers, t, wage)]
    if fees != "none":
        parts.append(_recruitment_fees(kit, workers, takers[-1], fees == "foreign"))
    if pooled:
        parts.append(_pooled_wages(kit, int(takers[0]), workers))
    return concat(parts)


def _bank_wages(
    kit: Kit, boss: int, paid: np.ndarray, takers: np.ndarray, t: np.ndarray, wage: np.ndarray
) -> Txns:
    """Low wages by transfer, most of each sent on to the employer's associates within days."""
    rng = kit.rng
    n = paid.size
    wages = kit.txns(
        boss,
        paid,
        t,
        wage,
        channel_mix(rng, n, {"ach": 0.75, "cheque": 0.15, "p2p": 0.1}),
        memo=np.where(rng.random(n) < 0.8, cat.MEMO["PAYROLL"], -1),
    )
    keep = np.clip(rng.uniform(0.6, 0.85) + rng.normal(0, 0.03, n), 0.5, 0.95)
    worker, slot = np.unique(paid, return_inverse=True)
    taker = takers[rng.integers(0, takers.size, worker.size)][slot]
    back = kit.txns(
        paid,
        taker,
        t + rng.integers(2 * HOUR, 72 * HOUR, n),
        cents(wage * keep),
        channel_mix(rng, n, {"p2p": 0.6, "mobile_money": 0.25, "wire": 0.15}),
    )
    return concat([wages, back])


def _cash_wages(
    kit: Kit, boss: int, paid: np.ndarray, takers: np.ndarray, t: np.ndarray, wage: np.ndarray
) -> Txns:
    """Revenue from clients by transfer, wages in cash drawn on paydays: no payroll in the bank,
    a worker now and then banking a little of it."""
    rng, pop = kit.rng, kit.pop
    clients = kit.bystander_firms(int(rng.integers(2, 6)))
    n = max(4, round(rng.uniform(6, 14) * pop.days / 30))
    memo = np.where(rng.random(n) < 0.6, cat.MEMO["INVOICE"], -1)
    revenue = kit.txns(
        clients[rng.integers(0, clients.size, n)],
        boss,
        at_hour(rng, rng.integers(0, pop.days, n), cat.OFFICE),
        cents(lognormal(rng, rng.uniform(3500, 7000), 0.4, n)),
        channel_mix(rng, n, {"ach": 0.6, "wire": 0.25, "cheque": 0.15}),
        memo=memo,
    )
    day, at = np.unique(t // DAY, return_inverse=True)
    payroll = np.bincount(at, weights=wage)
    home = pop.city(np.asarray([boss]))
    draw = kit.cash(
        boss,
        BRANCH,
        np.repeat(home, day.size),
        at_hour(rng, np.maximum(day - 1, 0), cat.OFFICE),
        round_to(payroll * rng.uniform(1.0, 1.1, day.size), 100),
        deposit=False,
    )
    banks = rng.random(paid.size) < 0.3
    banked = kit.cash(
        paid[banks],
        ATM,
        pop.city(paid[banks]),
        t[banks] + rng.integers(HOUR, 48 * HOUR, int(banks.sum())),
        round_to(wage[banks] * rng.uniform(0.2, 0.5, int(banks.sum())), 10),
        deposit=True,
    )
    share = kit.txns(
        boss,
        takers[0],
        at_hour(rng, [int(day[day.size // 2])], cat.OFFICE),
        cents([payroll.sum() * rng.uniform(0.3, 0.6)]),  # once: not a payroll
        CH["wire"] if rng.random() < 0.5 else CH["cheque"],
        memo=cat.MEMO["CONSULTING FEE"],
    )
    return concat([revenue, draw, banked, share])


def _recruitment_fees(kit: Kit, workers: np.ndarray, domestic: int, abroad: bool) -> Txns:
    """Every worker repays a similar 'recruitment fee' or debt, monthly or every two weeks, to
    one recruiter; a recruiter at home sends the pooled fees to the origin country."""
    rng, pop = kit.rng, kit.pop
    recruiter = int(kit.foreign(1, RECRUITER_COUNTRIES, FOREIGN_PERSON)[0]) if abroad else domestic
    every = int(rng.choice([14, 30]))
    phase = int(rng.integers(0, min(every, pop.days - 3)))
    owner, day = periodic(
        pop.days,
        np.full(workers.size, every),
        np.minimum(phase + rng.integers(0, 3, workers.size), pop.days - 1),
    )
    fee = round_to(rng.uniform(150, 400) * rng.uniform(0.95, 1.05, workers.size), 5)[owner]
    t = at_hour(rng, day, cat.EVENING)
    if abroad:
        channel = channel_mix(rng, owner.size, {"wire": 0.5, "mobile_money": 0.3, "other": 0.2})
        cur = np.where(
            rng.random(owner.size) < 0.3, pop.currency(np.full(owner.size, recruiter)), -1
        )
        return kit.txns(workers[owner], recruiter, t, fee, channel, cur=cur)
    paid = kit.txns(
        workers[owner],
        recruiter,
        t,
        fee,
        channel_mix(rng, owner.size, {"p2p": 0.7, "mobile_money": 0.3}),
    )
    sends = np.arange(int(t.min() // DAY) + 1, pop.days, int(rng.integers(3, 8)))
    if rng.random() < 0.4 or sends.size == 0:
        return paid
    ben = int(kit.foreign(1, RECRUITER_COUNTRIES, FOREIGN_PERSON)[0])
    amount = cents(np.full(sends.size, fee.sum() / sends.size * rng.uniform(0.8, 0.95)))
    return concat(
        [
            paid,
            kit.txns(
                recruiter,
                ben,
                at_hour(rng, sends, cat.DAYTIME),
                amount,
                channel_mix(rng, sends.size, {"wire": 0.6, "other": 0.4}),
            ),
        ]
    )


def _pooled_wages(kit: Kit, holder: int, workers: np.ndarray) -> Txns:
    """Workers placed at three or more unwitting employers whose wages are all paid into one
    account the controller holds; the workers get a pittance, the rest is drawn in cash."""
    rng, pop = kit.rng, kit.pop
    firms = kit.bystander_firms(int(rng.choice([3, 4, 5], p=[0.5, 0.3, 0.2])))
    placed = rng.integers(1, 4, firms.size)  # workers at each employer
    every = rng.choice([7, 14, 30], firms.size)
    owner, day = periodic(pop.days, every, rng.integers(0, np.minimum(every, pop.days)))
    monthly = rng.uniform(1800, 3000, firms.size) * placed
    amount = cents(monthly[owner] * every[owner] / 30 * rng.uniform(0.97, 1.03, owner.size))
    t = at_hour(rng, day, cat.EARLY)
    n = owner.size
    wages = kit.txns(
        firms[owner],
        holder,
        t,
        amount,
        channel_mix(rng, n, {"ach": 0.9, "wire": 0.1}),
        memo=np.where(rng.random(n) < 0.8, cat.MEMO["PAYROLL"], -1),
    )
    draw = kit.cash(
        holder,
        BRANCH,
        np.repeat(pop.city(np.asarray([holder])), n),
        np.minimum(t + rng.integers(2 * HOUR, 36 * HOUR, n), pop.days * DAY - 1),
        round_to(amount * rng.uniform(0.4, 0.7, n), 20),
        deposit=False,
    )
    weeks = np.arange(int(rng.integers(1, 7)), pop.days, 7)
    got = workers[rng.integers(0, workers.size, weeks.size * 2)]
    pittance = kit.txns(
        holder,
        got,
        at_hour(rng, np.repeat(weeks, 2), cat.EVENING),
        round_to(rng.uniform(30, 100, got.size), 5),
        CH["p2p"],
    )
    return concat([wages, draw, pittance])

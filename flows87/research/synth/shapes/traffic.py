"""The background's everyday transfers: card purchases, bills, p2p, trade, transfers, wages."""

from __future__ import annotations

import numpy as np

from flows87.research.synth.shapes.accounts import BILLER_MCCS, Population
from flows87.research.synth.shapes.flows import (
    CH,
    DAY,
    FIELDS,
    Flows,
    Sampler,
    channels,
    concat,
    lognormal,
    times,
)

EMPLOYED = 0.65  # share of individuals with an employer among the businesses

# kind: (channel mix, payer group, payee group, share, median USD, sigma, time profile)
BACKGROUND: dict[str, tuple[dict[str, float], str, str, float, float, float, str]] = {
    "card": ({"card": 1.0}, "person", "merchant", 0.46, 35.0, 0.9, "day"),
    "p2p": ({"p2p": 0.8, "mobile_money": 0.2}, "person", "person", 0.22, 60.0, 1.0, "day"),
    "bills": (
        {"ach": 0.6, "card": 0.3, "cheque": 0.1},
        "person",
        "biller",
        0.10,
        120.0,
        0.7,
        "day",
    ),
    "trade": ({"wire": 0.7, "ach": 0.3}, "business", "business", 0.09, 3_000.0, 1.2, "day"),
    "transfer": ({"wire": 0.6, "ach": 0.4}, "person", "person", 0.07, 900.0, 1.0, "day"),
    "purchase": ({"ach": 0.5, "wire": 0.5}, "person", "business", 0.06, 700.0, 0.9, "day"),
}
"""Everyday transfers between accounts drawn by activity weight; wages come apart (`payroll`)."""


def payroll(rng: np.random.Generator, pop: Population, n_accounts: int, days: int) -> Flows:
    """Wages: each employed individual paid by one employer (drawn by the businesses' weight)
    monthly, every two weeks or weekly, the same salary each time, early in the morning."""
    base = np.arange(n_accounts)
    people = base[~pop.business[:n_accounts]]
    staff = people[rng.random(people.size) < EMPLOYED]
    employer = Sampler(base[pop.business[:n_accounts]], pop.weight).draw(rng, staff.size)
    period = rng.choice(np.asarray([30, 14, 7]), staff.size, p=[0.5, 0.35, 0.15])
    phase = np.where(period == 30, rng.integers(24, 28, staff.size), rng.integers(0, period))
    phase = phase % min(days, 30)
    paydays = np.maximum((days - 1 - phase) // period + 1, 0)
    who = np.repeat(np.arange(staff.size), paydays)
    k = np.arange(who.size) - np.repeat(np.cumsum(paydays) - paydays, paydays)
    day = phase[who] + k * period[who]
    salary = np.maximum(rng.lognormal(np.log(4_000), 0.45, staff.size), 800.0)
    usd = np.round(salary[who] * period[who] / 30, 2)
    t = day * DAY + times(rng, who.size, 1, "morning")
    channel = channels(rng, who.size, {"ach": 0.95, "cheque": 0.05})
    return Flows(employer[who], staff[who], t, usd, channel, -1)


def background(
    rng: np.random.Generator, pop: Population, n_accounts: int, k: int, days: int
) -> Flows:
    """`k` everyday transfers among the first `n_accounts` accounts of `pop`: wages (at most a
    quarter of them), the rest by kind in the shares of BACKGROUND."""
    wages = payroll(rng, pop, n_accounts, days)
    if len(wages) > k // 4:
        keep = np.sort(rng.choice(len(wages), k // 4, replace=False))
        wages = Flows(*(getattr(wages, f)[keep] for f in FIELDS))
    base = np.arange(n_accounts)
    business = pop.business[:n_accounts]
    biller = np.isin(pop.mcc[:n_accounts], BILLER_MCCS)
    groups = {
        "person": Sampler(base[~business], pop.weight),
        "business": Sampler(base[business], pop.weight),
        "merchant": Sampler(base[business & ~biller], pop.weight),
        "biller": Sampler(base[biller], pop.weight),
    }
    shares = np.asarray([v[3] for v in BACKGROUND.values()])
    counts = rng.multinomial(k - len(wages), shares / shares.sum())
    parts = [wages]
    for (mix, payer, payee, _, median, sigma, profile), m in zip(
        BACKGROUND.values(), counts, strict=True
    ):
        src = groups[payer].draw(rng, m)
        dst = groups[payee].draw_other(rng, src)
        channel = channels(rng, m, mix)
        mcc = np.where(channel == CH["card"], pop.mcc[dst], -1)
        usd = lognormal(rng, median, sigma, m)
        parts.append(Flows(src, dst, times(rng, m, days, profile), usd, channel, mcc))
    return concat(parts)

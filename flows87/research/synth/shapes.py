"""Data of the shapes real data has and `flows87 synth` lacks: the shape benchmark's inputs.

Each shape is a plain random background population with ONE shape imposed on it. The background
is a random graph of ordinary accounts (individuals and about 8 % businesses, each with a
heavy-tailed activity weight, payers and payees drawn by it): card purchases at merchants,
bills to utilities, telecoms and landlords, p2p and mobile money, transfers, business wires and
cheques, with lognormal amounts per kind, and wages (about 65 % of individuals are paid by one
employer each, monthly, fortnightly or weekly, the same salary each time); timestamps spread
over the day (business hours peak, wages in the early morning) across `days` days from `start`,
accounts opened months to years before the period, about 3 % of accounts abroad (paying in their
own currency). Shapes:

    random            the background alone: the reference
    hub_in            one hub (a utility) paid once by each of `hub` distinct payers
    hub_out           one hub (a benefits payer) paying each of `hub` distinct payees once,
                      on three pay days
    dense_repeat      `dense_accounts` accounts, each paying `dense_partners` fixed partners in
                      the group again and again: `dense_transfers` transfers among them
    new_accounts      every account opened inside the period (before its first transaction)
    day_resolution    every timestamp at midnight
    round_amounts     every amount one of a handful of round values (100.00 most often)
    self_transfers    `self_transfers` transfers whose payer is its payee
    one_currency      every account domestic, every amount in USD
    fifty_currencies  accounts in `currencies` (up to 50) countries and currencies, USD most
                      common; every currency is used
    chain             a `chain_hops`-hop pass-through chain of new accounts: each passes on
                      the whole amount less a fee of at most 2 % (at most 2/hops, so the
                      amount stays near its start however long the chain) soon after receiving
                      it, within min(3 h, 90 % of the period / hops) on average, the only
                      suspicious transactions: is_suspicious, typology `mule_chain`, scheme_id
                      `mule_chain-0001` (transactions and accounts)

Every other row is labelled `is_suspicious=false`. The imposed transfers replace background
rows, so a shape has `transactions` rows, except that at least half of `transactions` stays
background: `dense_repeat` at its default sizes (2M transfers) has 2.5M rows at 1M. The
background has `accounts` accounts (default transactions / 10), raised to 1.25 x `hub` for the
hubs and 2 x `dense_accounts` for the dense group; hubs and chain accounts are added to it.
Amounts are drawn in USD, converted to the payer's currency and rounded (whole units where one
dollar is 100 units or more); `amount_base` is in USD, so any ISO code is readable. The same
seed gives the same frames, and the shapes that only alter the background (`random`,
`new_accounts`, `day_resolution`, `round_amounts`, `one_currency`) alter the same background.
Everything is drawn as whole numpy columns: 1M rows take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87 import schema
from flows87.errors import ConfigError
from flows87.io import write_parquet

SHAPES: tuple[str, ...] = (
    "random",
    "hub_in",
    "hub_out",
    "dense_repeat",
    "new_accounts",
    "day_resolution",
    "round_amounts",
    "self_transfers",
    "one_currency",
    "fifty_currencies",
    "chain",
)
"""Every shape, the reference (`random`) first."""

CHAIN_TYPOLOGY = "mule_chain"
CHAIN_SCHEME = f"{CHAIN_TYPOLOGY}-0001"

SECOND = 1_000_000  # microseconds
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
CH = {c: i for i, c in enumerate(schema.CHANNELS)}

# (ISO 4217 code, ISO 3166 country, units per US dollar). The first thirty as the readers'
# reference table (flows87/pipeline/ingest/reference/currencies.yaml), the others approximate; USD first.
CURRENCIES: tuple[tuple[str, str, float], ...] = (
    ("USD", "US", 1.0),
    ("EUR", "DE", 0.8534),
    ("CNY", "CN", 6.6976),
    ("JPY", "JP", 105.4),
    ("INR", "IN", 73.444),
    ("RUB", "RU", 77.804),
    ("GBP", "GB", 0.7742),
    ("CAD", "CA", 1.3193),
    ("AUD", "AU", 1.4128),
    ("MXN", "MX", 21.1431),
    ("BRL", "BR", 5.6465),
    ("CHF", "CH", 0.9150),
    ("ILS", "IL", 3.3770),
    ("SAR", "SA", 3.7511),
    ("AED", "AE", 3.6725),
    ("ALL", "AL", 117.5),
    ("MAD", "MA", 10.95),
    ("NGN", "NG", 440.0),
    ("PKR", "PK", 220.0),
    ("TRY", "TR", 18.6),
    ("HKD", "HK", 7.85),
    ("SGD", "SG", 1.42),
    ("PHP", "PH", 58.7),
    ("THB", "TH", 37.9),
    ("KRW", "KR", 1420.0),
    ("ZAR", "ZA", 18.0),
    ("SEK", "SE", 11.0),
    ("NOK", "NO", 10.6),
    ("DKK", "DK", 7.6),
    ("PLN", "PL", 4.9),
    ("VND", "VN", 24_000.0),
    ("IDR", "ID", 15_500.0),
    ("MYR", "MY", 4.7),
    ("EGP", "EG", 30.9),
    ("KES", "KE", 150.0),
    ("GHS", "GH", 12.0),
    ("COP", "CO", 4_000.0),
    ("PEN", "PE", 3.8),
    ("CLP", "CL", 900.0),
    ("ARS", "AR", 350.0),
    ("UAH", "UA", 37.0),
    ("RON", "RO", 4.6),
    ("HUF", "HU", 360.0),
    ("CZK", "CZ", 23.0),
    ("BDT", "BD", 110.0),
    ("LKR", "LK", 320.0),
    ("NPR", "NP", 133.0),
    ("GTQ", "GT", 7.8),
    ("DOP", "DO", 56.5),
    ("HNL", "HN", 24.7),
)
USD = 0
FOREIGN = ("EUR", "CNY", "INR", "GBP", "CAD", "MXN", "NGN", "PHP")
"""Currencies of the background's few foreign accounts (remittance corridors and trade)."""
FOREIGN_SHARE = 0.03

ROUND_VALUES = (20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0)
ROUND_WEIGHTS = (0.1, 0.15, 0.45, 0.15, 0.1, 0.05)

BANKS = ("0101", "0202", "0303", "0404")
MERCHANT_MCCS = (5411, 5812, 5541, 5912, 5999, 5311, 4111, 5814, 5732, 7230)
BILLER_MCCS = (4900, 4814, 6513)  # utilities, telecoms, rent: what households pay monthly
BILLER_SHARE = 0.15  # of businesses
EMPLOYED = 0.65  # share of individuals with an employer among the businesses
UTILITY_MCC = 4900
PAYROLL_MCC = 8999


@dataclass(frozen=True)
class Sizes:
    """Sizes of the imposed shapes; the defaults are the issue's (benchmark at 1M rows)."""

    hub: int = 200_000
    dense_accounts: int = 5_000
    dense_partners: int = 20
    dense_transfers: int = 2_000_000
    self_transfers: int = 100_000
    chain_hops: int = 100_000
    currencies: int = 50

    @classmethod
    def small(cls) -> Sizes:
        """Sizes for tests: with 20k transactions every shape takes well under a second."""
        return cls(
            hub=2_000,
            dense_accounts=200,
            dense_partners=10,
            dense_transfers=10_000,
            self_transfers=2_000,
            chain_hops=2_000,
        )


def imposed(shape: str, sizes: Sizes) -> int:
    """How many transfers the shape adds to the background."""
    return {
        "hub_in": sizes.hub,
        "hub_out": sizes.hub,
        "dense_repeat": sizes.dense_transfers,
        "self_transfers": sizes.self_transfers,
        "chain": sizes.chain_hops,
    }.get(shape, 0)


# ------------------------------------------------------------------------------ population


@dataclass
class Population:
    """Accounts as parallel columns; times are microseconds since the start of the period."""

    business: np.ndarray  # bool
    weight: np.ndarray  # float64 activity weight
    opened: np.ndarray  # int64
    cur: np.ndarray  # int16 index into CURRENCIES (the account's currency and country)
    mcc: np.ndarray  # int16 business's merchant category, -1 for individuals
    suspicious: np.ndarray  # bool

    @property
    def n(self) -> int:
        return int(self.business.size)

    def add(
        self, k: int, *, business: bool, opened: np.ndarray, mcc: int = -1, suspicious: bool = False
    ) -> np.ndarray:
        """Append `k` domestic accounts; return their positions."""
        first = self.n
        self.business = np.concatenate([self.business, np.full(k, business)])
        self.weight = np.concatenate([self.weight, np.ones(k)])
        self.opened = np.concatenate([self.opened, np.asarray(opened, np.int64)])
        self.cur = np.concatenate([self.cur, np.full(k, USD, np.int16)])
        self.mcc = np.concatenate([self.mcc, np.full(k, mcc, np.int16)])
        self.suspicious = np.concatenate([self.suspicious, np.full(k, suspicious)])
        return np.arange(first, first + k)


def opened_before(
    rng: np.random.Generator, k: int, low_days: float, high_days: float
) -> np.ndarray:
    """Opening times between `high_days` and `low_days` days before the period, skewed recent."""
    u = rng.random(k) ** 2  # more recent accounts than old ones
    return -((low_days + u * (high_days - low_days)) * DAY).astype(np.int64)


def population(rng: np.random.Generator, n: int) -> Population:
    business = rng.random(n) < 0.08
    business[:2] = True, False  # never a population without either
    weight = np.where(business, rng.lognormal(0.7, 1.2, n), rng.lognormal(0.0, 0.8, n))
    foreign = rng.random(n) < FOREIGN_SHARE
    codes = [c for c, _, _ in CURRENCIES]
    foreign_cur = np.asarray([codes.index(c) for c in FOREIGN], np.int16)
    cur = np.where(foreign, rng.choice(foreign_cur, n), USD).astype(np.int16)
    biller = business & (rng.random(n) < BILLER_SHARE)
    biller[0] = True
    mcc = np.where(
        biller, rng.choice(np.asarray(BILLER_MCCS), n), rng.choice(np.asarray(MERCHANT_MCCS), n)
    )
    return Population(
        business=business,
        weight=weight,
        opened=opened_before(rng, n, 45, 15 * 365),
        cur=cur,
        mcc=np.where(business, mcc, -1).astype(np.int16),
        suspicious=np.zeros(n, bool),
    )


# ------------------------------------------------------------------------------ transfers


@dataclass
class Flows:
    """Transfers as parallel columns (times in microseconds since the period's start, USD)."""

    src: np.ndarray
    dst: np.ndarray
    t: np.ndarray
    usd: np.ndarray
    channel: np.ndarray
    mcc: np.ndarray
    suspicious: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        n = self.src.size
        self.dst = np.broadcast_to(self.dst, n).astype(np.int64)
        self.src = self.src.astype(np.int64)
        self.t = self.t.astype(np.int64)
        self.usd = np.asarray(self.usd, np.float64)
        self.channel = np.broadcast_to(self.channel, n).astype(np.int8)
        self.mcc = np.broadcast_to(self.mcc, n).astype(np.int16)
        if self.suspicious.size != n:
            self.suspicious = np.zeros(n, bool) if not self.suspicious.size else self.suspicious
            self.suspicious = np.broadcast_to(self.suspicious, n).astype(bool)

    def __len__(self) -> int:
        return int(self.src.size)


FIELDS = ("src", "dst", "t", "usd", "channel", "mcc", "suspicious")


def concat(parts: list[Flows]) -> Flows:
    return Flows(*(np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS))


def times(rng: np.random.Generator, k: int, days: int, profile: str = "day") -> np.ndarray:
    """`k` times over `days` days: daytime-peaked (`day`) or 05:00-08:00 (`morning`)."""
    day = rng.integers(0, days, k)
    if profile == "morning":
        sec = rng.uniform(5 * 3600, 8 * 3600, k)
    else:  # 85 % around mid-afternoon, the rest at any hour
        peak = rng.normal(14.5 * 3600, 3.5 * 3600, k) % 86_400
        sec = np.where(rng.random(k) < 0.85, peak, rng.uniform(0, 86_400, k))
    return day * DAY + sec.astype(np.int64) * SECOND


def lognormal(rng: np.random.Generator, median: float, sigma: float, k: int) -> np.ndarray:
    return np.maximum(median * np.exp(sigma * rng.standard_normal(k)), 1.0)


def channels(rng: np.random.Generator, k: int, mix: dict[str, float]) -> np.ndarray:
    codes = np.asarray([CH[c] for c in mix], np.int8)
    p = np.asarray(list(mix.values()))
    return rng.choice(codes, k, p=p / p.sum())


class Sampler:
    """Accounts of one group drawn in proportion to their activity weight."""

    def __init__(self, members: np.ndarray, weight: np.ndarray) -> None:
        self.members = members
        self.cum = np.cumsum(weight[members])

    def positions(self, rng: np.random.Generator, k: int) -> np.ndarray:
        return np.searchsorted(self.cum, rng.random(k) * self.cum[-1], side="right")

    def draw(self, rng: np.random.Generator, k: int) -> np.ndarray:
        return self.members[self.positions(rng, k)]

    def draw_other(self, rng: np.random.Generator, payers: np.ndarray) -> np.ndarray:
        """One payee per payer, never the payer itself (the next member when drawn)."""
        pos = self.positions(rng, payers.size)
        out = self.members[pos]
        same = out == payers
        out[same] = self.members[(pos[same] + 1) % self.members.size]
        return out


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


# ------------------------------------------------------------------------------ the shapes


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


# ------------------------------------------------------------------------------ assembly


def _epoch_us(start: date) -> int:
    return int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * SECOND


def account_ids(rng: np.random.Generator, n: int) -> pl.Series:
    frame = pl.DataFrame({"bank": rng.integers(0, len(BANKS), n), "number": rng.permutation(n)})
    banks = pl.Series(BANKS, dtype=pl.String)
    return frame.select(
        pl.concat_str(
            [
                pl.lit(banks).gather(pl.col("bank")),
                (pl.col("number") + 10_000_000).cast(pl.String).str.zfill(10),
            ],
            separator="-",
        ).alias("account_id")
    ).to_series()


def _labels(suspicious: pl.Expr) -> list[pl.Expr]:
    return [
        suspicious.alias("is_suspicious"),
        pl.when(suspicious).then(pl.lit(CHAIN_TYPOLOGY)).alias("typology"),
        pl.when(suspicious).then(pl.lit(CHAIN_SCHEME)).alias("scheme_id"),
    ]


def _amounts(
    rng: np.random.Generator, flows: Flows, cur: np.ndarray, round_amounts: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(amount in the transaction's currency, amount in USD), both rounded."""
    units = np.asarray([u for _, _, u in CURRENCIES])[cur]
    if round_amounts:
        p = np.asarray(ROUND_WEIGHTS)
        amount = rng.choice(np.asarray(ROUND_VALUES), len(flows), p=p / p.sum())
    else:
        local = flows.usd * units
        amount = np.where(units >= 100, np.round(local), np.round(local, 2))
        amount = np.maximum(amount, np.where(units >= 100, 1.0, 0.01))
    base = np.maximum(np.round(amount / units, 2), 0.01)
    return amount, base


def frames(
    rng: np.random.Generator,
    pop: Population,
    flows: Flows,
    start: date,
    *,
    round_amounts: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The canonical (transactions, accounts) frames; transactions in time order."""
    ids = account_ids(rng, pop.n)
    order = np.argsort(flows.t, kind="stable")
    src, dst = flows.src[order], flows.dst[order]
    cur = pop.cur[src]
    amount, base = _amounts(rng, flows, pop.cur[flows.src], round_amounts)
    codes = pl.Series([c for c, _, _ in CURRENCIES], dtype=pl.String)
    countries = pl.Series([c for _, c, _ in CURRENCIES], dtype=pl.String)
    n = len(flows)
    tx = pl.DataFrame(
        {
            "txn_id": pl.int_range(n, eager=True),
            "ts": flows.t[order] + _epoch_us(start),
            "src_account": ids.gather(src),
            "dst_account": ids.gather(dst),
            "amount": amount[order],
            "currency": codes.gather(cur),
            "amount_base": base[order],
            "channel": pl.Series(schema.CHANNELS, dtype=pl.String).gather(flows.channel[order]),
            "mcc": flows.mcc[order],
            "src_country": countries.gather(cur),
            "dst_country": countries.gather(pop.cur[dst]),
            "suspicious": flows.suspicious[order],
        }
    ).select(
        ("T" + pl.col("txn_id").cast(pl.String).str.zfill(max(9, len(str(n))))).alias("txn_id"),
        pl.col("ts").cast(schema.UTC_TS),
        "src_account",
        "dst_account",
        "amount",
        "currency",
        "amount_base",
        "channel",
        pl.when(pl.col("mcc") >= 0).then(pl.col("mcc").cast(pl.String).str.zfill(4)).alias("mcc"),
        "src_country",
        "dst_country",
        *_labels(pl.col("suspicious")),
    )
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "i": np.arange(pop.n),
            "business": pop.business,
            "opened": pop.opened + _epoch_us(start),
            "country": countries.gather(pop.cur),
            "mcc": pop.mcc,
            "suspicious": pop.suspicious,
        }
    ).select(
        "account_id",
        ("P" + pl.col("i").cast(pl.String).str.zfill(9)).alias("party_id"),
        pl.col("account_id").str.slice(0, 4).alias("bank_id"),
        pl.when(pl.col("business"))
        .then(pl.lit("business"))
        .otherwise(pl.lit("individual"))
        .alias("kind"),
        pl.col("opened").cast(schema.UTC_TS).alias("opened_at"),
        "country",
        pl.when(pl.col("mcc") >= 0)
        .then(pl.col("mcc").cast(pl.String).str.zfill(4))
        .alias("business_type"),
        *_labels(pl.col("suspicious")),
    )
    return (
        schema.conform(tx, "transactions").collect(),
        schema.conform(accounts, "accounts").collect().sort("account_id"),
    )


# ------------------------------------------------------------------------------ entry points


def _check(shape: str, transactions: int, days: int, sizes: Sizes) -> None:
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}", column="shape", hint=", ".join(SHAPES))
    if not isinstance(transactions, int) or transactions < 1_000:
        raise ConfigError(
            f"transactions must be an integer >= 1000, got {transactions!r}",
            column="transactions",
        )
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"days must be a positive integer, got {days!r}", column="days")
    if not 1 <= sizes.currencies <= len(CURRENCIES):
        raise ConfigError(
            f"currencies must be within [1, {len(CURRENCIES)}], got {sizes.currencies}",
            column="currencies",
        )
    if sizes.dense_accounts <= sizes.dense_partners:
        raise ConfigError("dense_accounts must be more than dense_partners", column="sizes")
    if min(sizes.hub, sizes.dense_transfers, sizes.self_transfers, sizes.chain_hops) < 1:
        raise ConfigError("every size must be positive", column="sizes")


def plan(shape: str, transactions: int, sizes: Sizes, accounts: int | None) -> tuple[int, int]:
    """(background transfers, background accounts) of a shape."""
    extra = imposed(shape, sizes)
    n_txn = max(transactions - extra, transactions // 2) if extra else transactions
    n_acc = accounts or max(transactions // 10, 1_000)
    if shape in ("hub_in", "hub_out"):
        n_acc = max(n_acc, sizes.hub * 5 // 4 + 1)
    if shape == "dense_repeat":
        n_acc = max(n_acc, 2 * sizes.dense_accounts)
    return n_txn, n_acc


def generate(
    shape: str,
    transactions: int = 1_000_000,
    *,
    seed: int = 0,
    days: int = 30,
    start: date = date(2026, 1, 1),
    sizes: Sizes | None = None,
    accounts: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The canonical (transactions, accounts) frames of `shape` (see the module's docstring)."""
    sizes = sizes or Sizes()
    _check(shape, transactions, days, sizes)
    n_txn, n_acc = plan(shape, transactions, sizes, accounts)
    s_pop, s_bg, s_shape, s_ids = np.random.SeedSequence(seed).spawn(4)
    pop = population(np.random.default_rng(s_pop), n_acc)
    flows = background(np.random.default_rng(s_bg), pop, n_acc, n_txn, days)
    rng = np.random.default_rng(s_shape)
    if shape == "hub_in":
        flows = concat([flows, hub_in(rng, pop, n_acc, sizes.hub, days)])
    elif shape == "hub_out":
        flows = concat([flows, hub_out(rng, pop, n_acc, sizes.hub, days)])
    elif shape == "dense_repeat":
        flows = concat([flows, dense_repeat(rng, n_acc, sizes, days)])
    elif shape == "self_transfers":
        flows = concat([flows, self_transfers(rng, pop, n_acc, sizes.self_transfers, days)])
    elif shape == "chain":
        flows = concat([flows, chain(rng, pop, sizes.chain_hops, days)])
    elif shape == "new_accounts":
        open_in_period(rng, pop, flows, days)
    elif shape == "day_resolution":
        flows.t = flows.t // DAY * DAY
    elif shape == "one_currency":
        pop.cur[:] = USD
    elif shape == "fifty_currencies":
        fifty_currencies(rng, pop, flows, sizes.currencies)
    return frames(
        np.random.default_rng(s_ids), pop, flows, start, round_amounts=shape == "round_amounts"
    )


def write(transactions: pl.DataFrame, accounts: pl.DataFrame, out_dir: str | Path) -> Path:
    """Write a canonical input folder (transactions.parquet, accounts.parquet) for `flows87 run`."""
    out = Path(out_dir)
    write_parquet(accounts, out / "accounts.parquet")
    write_parquet(transactions, out / "transactions.parquet")
    return out


def generate_to(shape: str, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Generate `shape` (options as `generate`) into `out_dir`; return a short summary."""
    tx, accounts = generate(shape, **options)
    write(tx, accounts, out_dir)
    return {
        "shape": shape,
        "transactions": tx.height,
        "accounts": accounts.height,
        "suspicious_transactions": int(tx["is_suspicious"].sum()),
        "path": str(out_dir),
    }

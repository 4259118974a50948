"""The background's accounts as parallel columns: kinds, activity weights, currencies, ages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flows87.pipeline.ingest.reference import units_per_usd
from flows87.research.synth.shapes.flows import DAY

# (ISO 4217 code, ISO 3166 country) of the currencies a shape may use, USD first; their rates
# come from the readers' one rate table (flows87/pipeline/ingest/currencies.yaml), so generated
# amount_base is what ingest computes.
_COUNTRIES: tuple[tuple[str, str], ...] = (
    ("USD", "US"),
    ("EUR", "DE"),
    ("CNY", "CN"),
    ("JPY", "JP"),
    ("INR", "IN"),
    ("RUB", "RU"),
    ("GBP", "GB"),
    ("CAD", "CA"),
    ("AUD", "AU"),
    ("MXN", "MX"),
    ("BRL", "BR"),
    ("CHF", "CH"),
    ("ILS", "IL"),
    ("SAR", "SA"),
    ("AED", "AE"),
    ("ALL", "AL"),
    ("MAD", "MA"),
    ("NGN", "NG"),
    ("PKR", "PK"),
    ("TRY", "TR"),
    ("HKD", "HK"),
    ("SGD", "SG"),
    ("PHP", "PH"),
    ("THB", "TH"),
    ("KRW", "KR"),
    ("ZAR", "ZA"),
    ("SEK", "SE"),
    ("NOK", "NO"),
    ("DKK", "DK"),
    ("PLN", "PL"),
    ("VND", "VN"),
    ("IDR", "ID"),
    ("MYR", "MY"),
    ("EGP", "EG"),
    ("KES", "KE"),
    ("GHS", "GH"),
    ("COP", "CO"),
    ("PEN", "PE"),
    ("CLP", "CL"),
    ("ARS", "AR"),
    ("UAH", "UA"),
    ("RON", "RO"),
    ("HUF", "HU"),
    ("CZK", "CZ"),
    ("BDT", "BD"),
    ("LKR", "LK"),
    ("NPR", "NP"),
    ("GTQ", "GT"),
    ("DOP", "DO"),
    ("HNL", "HN"),
)
CURRENCIES: tuple[tuple[str, str, float], ...] = tuple(
    (code, country, units_per_usd()[code]) for code, country in _COUNTRIES
)
"""(code, country, units per US dollar)."""
USD = 0
FOREIGN = ("EUR", "CNY", "INR", "GBP", "CAD", "MXN", "NGN", "PHP")
"""Currencies of the background's few foreign accounts (remittance corridors and trade)."""
FOREIGN_SHARE = 0.03

MERCHANT_MCCS = (5411, 5812, 5541, 5912, 5999, 5311, 4111, 5814, 5732, 7230)
BILLER_MCCS = (4900, 4814, 6513)  # utilities, telecoms, rent: what households pay monthly
BILLER_SHARE = 0.15  # of businesses


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

"""The background's accounts as parallel columns: kinds, activity weights, currencies, ages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flows87.research.synth.shapes.flows import DAY

# (ISO 4217 code, ISO 3166 country, units per US dollar). The first thirty as the readers'
# reference table (flows87/pipeline/ingest/currencies.yaml), the others approximate; USD first.
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

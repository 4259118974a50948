"""Transactions as columns of numpy arrays, and the vector helpers every generator uses.

Generators never build rows: they draw whole columns at once (counts per account, then
`np.repeat`), and hand back a `Txns`. Accounts are integer positions into the population,
times are microseconds since the start of the window, amounts are in the base currency;
`assemble` turns these into the canonical string/datetime columns once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from flows87.schema import CHANNELS

HOUR = 3_600_000_000
DAY = 24 * HOUR
CH = {c: i for i, c in enumerate(CHANNELS)}


@dataclass
class Txns:
    """A batch of transactions as parallel columns (one element per transaction)."""

    src: np.ndarray  # int64 account position
    dst: np.ndarray  # int64 account position
    t: np.ndarray  # int64 microseconds since window start
    amount: np.ndarray  # float64, base currency
    channel: np.ndarray  # int8 index into CHANNELS
    mcc: np.ndarray  # int16 merchant category code, -1 none
    loc: np.ndarray  # int32 index into the population's locations, -1 none
    dev: np.ndarray  # int64 device number, -1 none
    cur: np.ndarray  # int16 index into catalog.CURRENCIES, -1 base currency
    memo: np.ndarray  # int8 index into catalog.MEMOS, -1 none
    typ: np.ndarray  # int8 index into TYPOLOGIES, -1 innocent
    sch: np.ndarray  # int32 scheme number within its typology, -1 innocent

    def __len__(self) -> int:
        return int(self.src.size)

    def take(self, keep: np.ndarray) -> Txns:
        return Txns(*(getattr(self, f.name)[keep] for f in fields(self)))


_DTYPES = {
    "src": np.int64,
    "dst": np.int64,
    "t": np.int64,
    "amount": np.float64,
    "channel": np.int8,
    "mcc": np.int16,
    "loc": np.int32,
    "dev": np.int64,
    "cur": np.int16,
    "memo": np.int8,
    "typ": np.int8,
    "sch": np.int32,
}


def txns(
    src: ArrayLike,
    dst: ArrayLike,
    t: ArrayLike,
    amount: ArrayLike,
    channel: ArrayLike,
    *,
    mcc: ArrayLike = -1,
    loc: ArrayLike = -1,
    dev: ArrayLike = -1,
    cur: ArrayLike = -1,
    memo: ArrayLike = -1,
    typ: int = -1,
    sch: int = -1,
) -> Txns:
    """Build a `Txns` from arrays or scalars (scalars are broadcast to the length of `t`)."""
    n = np.asarray(t).size
    cols = dict(
        src=src,
        dst=dst,
        t=t,
        amount=amount,
        channel=channel,
        mcc=mcc,
        loc=loc,
        dev=dev,
        cur=cur,
        memo=memo,
        typ=typ,
        sch=sch,
    )
    out = {}
    for name, value in cols.items():
        arr = np.asarray(value, dtype=_DTYPES[name])
        out[name] = np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr.reshape(n)
    return Txns(**out)


def concat(parts: list[Txns]) -> Txns:
    parts = [p for p in parts if len(p)]
    if not parts:
        return txns([], [], [], [], [])
    return Txns(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Txns)))


def ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For `counts[i]` items per owner i: each item's owner and its position among its owner's."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def at_hour(rng: np.random.Generator, day: ArrayLike, profile: np.ndarray) -> np.ndarray:
    """Times on the given days, the hour drawn from a 24-hour profile, minutes uniform."""
    days = np.asarray(day, dtype=np.int64)
    hour = rng.choice(24, size=days.size, p=profile)
    return days * DAY + hour * HOUR + rng.integers(0, HOUR, days.size)


def pick(rng: np.random.Generator, options: ArrayLike, n: int) -> np.ndarray:
    """`n` draws with replacement from `options`."""
    arr = np.asarray(options)
    return arr[rng.integers(0, arr.size, n)]


def lognormal(rng: np.random.Generator, median: ArrayLike, sigma: ArrayLike, n: int) -> np.ndarray:
    spread = np.asarray(sigma, dtype=np.float64)
    return np.asarray(median, dtype=np.float64) * np.exp(spread * rng.standard_normal(n))


def cents(x: ArrayLike) -> np.ndarray:
    return np.maximum(np.round(np.asarray(x, dtype=np.float64), 2), 0.01)


def round_to(x: ArrayLike, step: float) -> np.ndarray:
    return np.maximum(np.round(np.asarray(x) / step) * step, step)


def channel_mix(rng: np.random.Generator, n: int, mix: dict[str, float]) -> np.ndarray:
    """Channel codes drawn from `{channel: probability}`."""
    names = list(mix)
    p = np.asarray([mix[c] for c in names], dtype=np.float64)
    codes = np.asarray([CH[c] for c in names], dtype=np.int8)
    return codes[rng.choice(len(names), size=n, p=p / p.sum())]


class Directory:
    """Members indexed by (key, city), to pick one per request without a loop.

    A request whose city has no member of that key falls back to any city; a key with no member
    at all is a bug in the population, so it raises.
    """

    def __init__(
        self, members: np.ndarray, key: np.ndarray, city: np.ndarray, n_cities: int
    ) -> None:
        self.n_cities = n_cities
        code = np.asarray(key, np.int64) * n_cities + np.asarray(city, np.int64)
        order = np.lexsort((members, code))
        self.members = np.asarray(members)[order]
        self.codes = code[order]

    def cities_with(self, key: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.codes, [key * self.n_cities, (key + 1) * self.n_cities])
        return np.unique(self.codes[lo:hi] - key * self.n_cities)

    def pick(self, rng: np.random.Generator, keys: ArrayLike, cities: ArrayLike) -> np.ndarray:
        key, city = np.broadcast_arrays(np.asarray(keys, np.int64), np.asarray(cities, np.int64))
        code = key * self.n_cities + city
        lo = np.searchsorted(self.codes, code, "left")
        cnt = np.searchsorted(self.codes, code, "right") - lo
        any_lo = np.searchsorted(self.codes, key * self.n_cities, "left")
        any_cnt = np.searchsorted(self.codes, (key + 1) * self.n_cities, "left") - any_lo
        lo = np.where(cnt > 0, lo, any_lo)
        cnt = np.where(cnt > 0, cnt, any_cnt)
        if np.any(cnt == 0):
            raise RuntimeError(f"no member for keys {np.unique(key[cnt == 0])[:5]}")
        return self.members[lo + (rng.random(code.size) * cnt).astype(np.int64)]

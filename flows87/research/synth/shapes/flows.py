"""Transfers as parallel numpy columns, and how their times, amounts and ends are drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from flows87 import schema

SECOND = 1_000_000  # microseconds
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
CH = {c: i for i, c in enumerate(schema.CHANNELS)}


@dataclass(init=False)
class Flows:
    """Transfers as parallel columns (times in microseconds since the period's start, USD).

    `dst`, `channel` and `mcc` may be given as one value for all transfers (mcc -1: none);
    `suspicious` left out means none is. The columns are arrays of one length."""

    src: np.ndarray
    dst: np.ndarray
    t: np.ndarray
    usd: np.ndarray
    channel: np.ndarray
    mcc: np.ndarray
    suspicious: np.ndarray

    def __init__(
        self,
        src: np.ndarray,
        dst: ArrayLike,
        t: np.ndarray,
        usd: ArrayLike,
        channel: ArrayLike,
        mcc: ArrayLike,
        suspicious: np.ndarray | None = None,
    ) -> None:
        n = src.size
        self.dst = np.broadcast_to(dst, n).astype(np.int64)
        self.src = src.astype(np.int64)
        self.t = t.astype(np.int64)
        self.usd = np.asarray(usd, np.float64)
        self.channel = np.broadcast_to(channel, n).astype(np.int8)
        self.mcc = np.broadcast_to(mcc, n).astype(np.int16)
        self.suspicious = np.zeros(0, bool) if suspicious is None else suspicious
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

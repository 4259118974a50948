"""What a scheme generator needs: member draws, labels, and transaction makers that label.

Members come from ordinary customers (so they keep their everyday background activity) and
never from the innocent look-alike segments, so a look-alike stays a clean false positive.
People who only pay a scheme (a trafficking victim's clients) come from a separate
"bystander" third of the customers and stay labelled innocent; their payments are labelled.
Businesses are split the same way: unwitting employers and clients of a scheme are bystanders.

Each scheme shows a random subset of its typology's optional red flags (`Kit.traits`,
`Kit.variant`); every flag is forced into one of the first schemes of its typology, so that even
a small population with two schemes per typology has labelled positives for every flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from flows87.errors import ConfigError
from flows87.research.synth import catalog as cat
from flows87.research.synth.background import card, cash_txns
from flows87.research.synth.parts import DAY, Directory, Txns, pick, txns
from flows87.research.synth.population import (
    BUSINESS,
    FOREIGN_BUSINESS,
    FOREIGN_PERSON,
    PERSON,
    YEAR,
    Population,
)

FRONT_TYPES: tuple[int, ...] = (7297, 7230)  # massage parlour, nail salon (FinCEN 2014)


class Pools:
    """Shuffled candidates for scheme roles, consumed in order so no account is drawn twice."""

    def __init__(self, pop: Population, rng: np.random.Generator) -> None:
        h = pop.habits
        copies = np.zeros(pop.n, bool)
        copies[h.twin[h.twin >= 0]] = True
        plain = ~(
            h.supported
            | (h.seller > 0)
            | h.traveller
            | h.landlord
            | h.dormant
            | h.new
            | (h.twin >= 0)
            | copies
            | h.remit_small
        ) & (pop.opened < -30 * DAY)
        people = rng.permutation(np.flatnonzero((pop.role == PERSON) & plain))
        cut = people.size * 2 // 3
        self.rng = rng
        firms = (pop.role == BUSINESS) & plain & ~np.isin(pop.btype, (6513, 6051))
        salons = firms & (pop.terminal >= 0) & np.isin(pop.btype, FRONT_TYPES)
        others = rng.permutation(np.flatnonzero(firms & ~salons))
        mine, self.firm_bystanders = others[: others.size * 2 // 3], others[others.size * 2 // 3 :]
        card = pop.terminal[mine] >= 0
        self.lists: dict[object, np.ndarray] = {
            "people": people[:cut],
            # employers that take no card payments, so their sector can be changed
            "employer": mine[~card],
            "business": mine[card],
        }
        for code in FRONT_TYPES:  # massage parlours and nail salons, all of them
            self.lists[("front", code)] = rng.permutation(
                np.flatnonzero(salons & (pop.btype == code))
            )
        self.bystanders = people[cut:]
        for role in (FOREIGN_PERSON, FOREIGN_BUSINESS):
            mine = (pop.role == role) & pop.reserved
            for c in np.unique(pop.country[mine]):
                here = np.flatnonzero(mine & (pop.country == c))
                self.lists[(role, int(c))] = rng.permutation(here)
        self.used = dict.fromkeys(self.lists, 0)

    def left(self, key: object) -> int:
        return self.lists[key].size - self.used[key] if key in self.lists else 0

    def take(self, key: object, k: int) -> np.ndarray:
        if self.left(key) < k:
            raise ConfigError(
                f"the population has too few {key} accounts for the requested schemes",
                column="suspicious_share",
                hint="lower suspicious_share or raise accounts",
            )
        i = self.used[key]
        self.used[key] = i + k
        return self.lists[key][i : i + k]

    def foreign(self, k: int, countries: tuple[str, ...], role: int) -> np.ndarray:
        """Unused foreign accounts in the countries; once they run out, one already used by
        another scheme (an offshore company serving several schemes keeps its first label)."""
        out = []
        wanted = [(role, cat.COUNTRIES.index(c)) for c in countries]
        wanted = [key for key in wanted if key in self.lists]
        for _ in range(k):  # k is at most a few
            fresh = [key for key in wanted if self.left(key)]
            if fresh:
                out.append(self.take(fresh[int(self.rng.integers(len(fresh)))], 1))
            else:
                used = np.concatenate([self.lists[key] for key in wanted])
                taken = np.concatenate(out) if out else used[:0]
                out.append(self.rng.choice(np.setdiff1d(used, taken), 1))
        return np.concatenate(out) if out else np.zeros(0, np.int64)


@dataclass
class Kit:
    """One scheme being built: its typology, number, random stream and the shared pools."""

    pop: Population
    rng: np.random.Generator
    pools: Pools
    merchants: Directory
    cash_points: Directory
    typ: int
    sch: int
    count: int = 1  # schemes of this typology in the population

    def traits(self, odds: dict[str, float]) -> dict[str, bool]:
        """Which optional red flags this scheme shows: each with its probability, flag j always
        in scheme j % count (so every flag appears somewhere), and never all of several."""
        forced = np.arange(len(odds)) % self.count == self.sch
        on = (self.rng.random(len(odds)) < np.asarray(list(odds.values()))) | forced
        if on.all() and len(odds) > 1:
            spare = np.flatnonzero(~forced)
            on[spare[self.rng.integers(spare.size)] if spare.size else 0] = False
        return dict(zip(odds, on.tolist(), strict=True))

    def variant(self, odds: dict[str, float]) -> str:
        """One of several ways to run the scheme: drawn by weight, and variant j in scheme j."""
        names = list(odds)
        p = np.asarray(list(odds.values()), dtype=np.float64)
        drawn = names[int(self.rng.choice(len(names), p=p / p.sum()))]
        return names[self.sch] if self.sch < len(names) else drawn

    def _label(self, idx: np.ndarray) -> np.ndarray:
        fresh = idx[self.pop.label_typ[idx] < 0]
        self.pop.label_typ[fresh] = self.typ
        self.pop.label_sch[fresh] = self.sch
        return idx

    def people(self, k: int) -> np.ndarray:
        return self._label(self.pools.take("people", k))

    def businesses(self, k: int) -> np.ndarray:
        return self._label(self.pools.take("business", k))

    def employer(self) -> int:
        """A business without card takings (its sector may be rewritten by the scheme)."""
        return int(self._label(self.pools.take("employer", 1))[0])

    def front(self, prefer: int) -> int | None:
        """A business of type `prefer` (massage parlour or nail salon), else of the other type,
        or None when none is left."""
        for code in sorted(FRONT_TYPES, key=lambda c: c != prefer):
            if self.pools.left(("front", code)):
                return int(self._label(self.pools.take(("front", code), 1))[0])
        return None

    def foreign(self, k: int, countries: tuple[str, ...], role: int) -> np.ndarray:
        return self._label(self.pools.foreign(k, countries, role))

    def bystanders(self, k: int) -> np.ndarray:
        """Innocent customers who pay into the scheme (not members, not labelled)."""
        return pick(self.rng, self.pools.bystanders, k)

    def bystander_firms(self, k: int) -> np.ndarray:
        """`k` different innocent businesses dealing with the scheme (unwitting employers)."""
        firms = self.pools.firm_bystanders
        return self.rng.choice(firms, min(k, firms.size), replace=False)

    def window(
        self, lo_days: float, hi_days: float, tail_days: float = 1.0, not_before: float = 0.0
    ) -> tuple[int, int]:
        """Start (a midnight) and length, in microseconds, of the scheme's active period,
        whole days, leaving `tail_days` at the end of the window for the follow-up moves and
        starting on day `not_before` or later when there is room."""
        span = int(self.pop.days - tail_days)
        length = max(1, min(int(self.rng.uniform(lo_days, hi_days)), span))
        last = span - length
        return int(self.rng.integers(min(int(not_before), last), last + 1)) * DAY, length * DAY

    def txns(
        self,
        src: ArrayLike,
        dst: ArrayLike,
        t: ArrayLike,
        amount: ArrayLike,
        channel: ArrayLike,
        **optional: ArrayLike,
    ) -> Txns:
        """Transactions labelled with this scheme (`optional`: mcc, loc, dev, cur, memo)."""
        return txns(src, dst, t, amount, channel, typ=self.typ, sch=self.sch, **optional)

    def card(
        self,
        who: ArrayLike,
        mcc: np.ndarray,
        city: ArrayLike,
        t: np.ndarray,
        amount: np.ndarray,
        online: ArrayLike = False,
    ) -> Txns:
        return card(
            self.pop,
            self.rng,
            self.merchants,
            who,
            mcc,
            city,
            t,
            amount,
            online,
            typ=self.typ,
            sch=self.sch,
        )

    def cash(
        self,
        who: ArrayLike,
        kind: ArrayLike,
        city: ArrayLike,
        t: ArrayLike,
        amount: ArrayLike,
        deposit: bool,
    ) -> Txns:
        return cash_txns(
            self.pop,
            self.rng,
            self.cash_points,
            who,
            kind,
            city,
            t,
            amount,
            deposit,
            typ=self.typ,
            sch=self.sch,
        )


def quiet(pop: Population, idx: np.ndarray, activity: float) -> None:
    """Strip an account of its ordinary life (no job, rent, bills), keep a little spending."""
    h = pop.habits
    h.employer[idx] = -1
    h.rent_to[idx] = -1
    h.remit_to[idx] = -1
    h.bills[idx] = False
    h.crypto[idx] = False
    h.activity[idx] *= activity


def same_person(pop: Population, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Make several accounts belong to one person, at different banks."""
    for arr in (
        pop.party,
        pop.first,
        pop.last,
        pop.birth,
        pop.hh,
        pop.phone,
        pop.device,
        pop.email_no,
        pop.occupation,
    ):
        arr[idx[1:]] = arr[idx[0]]
    pop.bank[idx] = rng.choice(pop.n_banks, idx.size, replace=False)


def opened_at(pop: Population, idx: np.ndarray | list[int], opened: ArrayLike) -> None:
    """Set when accounts were opened (microseconds); they move money only from then on."""
    pop.opened[idx] = opened
    pop.active_from[idx] = np.maximum(np.asarray(opened), 0)


def dormant_until(
    pop: Population, rng: np.random.Generator, idx: np.ndarray | list[int], t: int
) -> None:
    """Old accounts silent until `t`: opened years ago, no everyday activity before `t`."""
    pop.opened[idx] = -rng.integers(2 * YEAR, 12 * YEAR, np.size(idx))
    pop.active_from[idx] = t

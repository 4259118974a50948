"""The synthetic bank's accounts: customers, merchants, foreign counterparties and cash points.

Every counterparty a transaction can touch is an account, so referential integrity holds:
merchants, hotels, airlines and ad sites are business accounts whose `business_type` is their
MCC; foreign beneficiaries and offshore companies are accounts at foreign banks; the cash side
of a deposit or withdrawal is a pseudo-account per branch or ATM, `CASH:<location_id>`, of kind
business with business_type 6010 (branch) or 6011 (ATM).

Location ids read `<BR|ATM|POS>-C<city>-<n>`: the city is the middle part, so a detector can
count cities without a location table. Account positions are integers here; the account ids
are random-looking numbers, so an id says nothing about the account's role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth.parts import DAY, Directory, lognormal

PERSON, BUSINESS, FOREIGN_PERSON, FOREIGN_BUSINESS, CASH = range(5)
NO_DATE = np.iinfo(np.int32).min  # birth dates before 1970 are negative day numbers
BRANCH, ATM, POS = range(3)
YEAR = 365 * DAY


@dataclass
class Habits:
    """How each account behaves when innocent; schemes edit these before background runs."""

    employer: np.ndarray  # position of the employer, -1 none
    salary: np.ndarray  # monthly wage
    pay_period: np.ndarray  # per account (used for businesses): 0 monthly, 7 or 14 days
    pay_phase: np.ndarray  # day of month (monthly) or day offset (weekly/bi-weekly)
    activity: np.ndarray  # multiplier of everyday spending and p2p
    night: np.ndarray  # night-shift worker
    rent_to: np.ndarray  # landlord position, -1 none
    rent: np.ndarray  # monthly rent
    bills: np.ndarray  # pays utilities (household head)
    remit_to: np.ndarray  # foreign beneficiary, -1 none
    remit_small: np.ndarray  # sends small frequent remittances
    crypto: np.ndarray  # buys crypto now and then
    supported: np.ndarray  # student supported by many small p2p transfers
    seller: np.ndarray  # small seller paid by many people (0 no, 1 by day, 2 at night)
    traveller: np.ndarray  # business traveller
    landlord: np.ndarray  # individual landlord
    twin: np.ndarray  # the person's second account, -1 none
    contacts: np.ndarray  # (n, 4) friends and family for p2p
    suppliers: np.ndarray  # (n, 3) supplier businesses
    foreign_supplier: np.ndarray  # foreign business paid now and then, -1 none
    size: np.ndarray  # business size (employees scale)
    cash_heavy: np.ndarray  # cash-intensive business depositing almost daily
    dormant: np.ndarray  # inactive until `active_from`
    new: np.ndarray  # opened recently


@dataclass
class Population:
    start: date
    days: int
    base_currency: str
    home: int  # index into catalog.COUNTRIES
    n_cities: int
    city_names: list[str]
    city_weight: np.ndarray
    bank_codes: list[str]  # domestic banks first, then one per foreign country
    n_banks: int
    # locations (branches, ATMs, merchant terminals)
    loc_kind: np.ndarray
    loc_city: np.ndarray
    loc_account: np.ndarray  # cash pseudo-account or merchant at the location
    # addresses
    addr_num: np.ndarray
    addr_street: np.ndarray
    addr_city: np.ndarray  # -1 abroad
    addr_unit: np.ndarray
    # accounts
    role: np.ndarray
    bank: np.ndarray
    country: np.ndarray
    party: np.ndarray
    first: np.ndarray
    last: np.ndarray
    birth: np.ndarray  # days since 1970-01-01, NO_DATE none
    hh: np.ndarray  # address index, -1 none
    phone: np.ndarray  # -1 none
    device: np.ndarray  # -1 none
    email_no: np.ndarray
    occupation: np.ndarray  # index into catalog.OCCUPATIONS, -1 none
    btype: np.ndarray  # MCC, -1 none
    opened: np.ndarray  # microseconds relative to window start
    active_from: np.ndarray  # microseconds relative to window start
    terminal: np.ndarray  # location of a merchant or cash point, -1 none
    number: np.ndarray  # account number (random, unique)
    reserved: np.ndarray  # foreign accounts kept for schemes (innocent flows avoid them)
    habits: Habits
    label_typ: np.ndarray
    label_sch: np.ndarray

    @property
    def n(self) -> int:
        return int(self.role.size)

    def city(self, idx: np.ndarray) -> np.ndarray:
        """Home city of accounts (via their address); -1 abroad."""
        hh = self.hh[idx]
        return np.where(hh >= 0, self.addr_city[np.maximum(hh, 0)], -1)

    def positions(self, role: int) -> np.ndarray:
        return np.flatnonzero(self.role == role)

    def merchants(self, settled: bool = False) -> Directory:
        """Merchants by (MCC, city), for card payments; `settled`: only those open all along."""
        m = np.flatnonzero(
            (self.role == BUSINESS)
            & (self.terminal >= 0)
            & ((self.active_from <= 0) | (not settled))
        )
        return Directory(m, self.btype[m], self.city(m), self.n_cities)

    def cash_points(self) -> Directory:
        """Cash locations by (BRANCH/ATM, city)."""
        locs = np.flatnonzero(self.loc_kind != POS)
        return Directory(locs, self.loc_kind[locs], self.loc_city[locs], self.n_cities)

    def businesses_of(self, codes: tuple[int, ...]) -> np.ndarray:
        return np.flatnonzero((self.role == BUSINESS) & np.isin(self.btype, codes))

    def currency(self, idx: np.ndarray) -> np.ndarray:
        """Index into catalog.CURRENCIES of the local currency of accounts' countries."""
        codes = np.asarray([cat.CURRENCIES.index(cat.COUNTRY_CURRENCY[c]) for c in cat.COUNTRIES])
        return codes[self.country[idx]].astype(np.int16)


def country_index(codes: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.asarray([cat.COUNTRIES.index(c) for c in codes], dtype=np.int16)


def build(
    rng: np.random.Generator, n: int, start: date, days: int, base_currency: str
) -> Population:
    """Draw the whole population; sizes of each segment scale with `n` (total accounts)."""
    n_cities = int(np.clip(round(np.sqrt(n) / 3), 6, 80))
    n_banks = int(np.clip(3 + n // 150_000, 3, 6))
    atms = int(np.clip(n // (n_cities * 400), 2, 30))
    n_cash = n_cities * (n_banks + atms)
    n_fp = max(60, n // 50)
    n_fb = max(40, n // 100)
    n_biz = max(len(cat.BUSINESS_TYPES) + n_cities, int(0.07 * n))
    n_person = n - n_cash - n_fp - n_fb - n_biz
    if n_person < n // 2:
        raise ValueError(f"population of {n} accounts is too small")
    home = cat.COUNTRIES.index(cat.HOME_COUNTRY[base_currency])

    names = [s + e for s in cat.CITY_STEMS for e in cat.CITY_ENDS]
    city_names = [names[i] for i in rng.permutation(len(names))[:n_cities]]
    city_weight = 1.0 / np.arange(1, n_cities + 1) ** 0.8
    city_weight /= city_weight.sum()
    domestic = np.sort(rng.choice(np.arange(1, 900), n_banks, replace=False))
    foreign_banks = [f"{900 + i:04d}" for i in range(len(cat.COUNTRIES))]  # one per country
    bank_codes = [f"{b:04d}" for b in domestic] + foreign_banks
    bank_share = rng.dirichlet(np.full(n_banks, 4.0))

    role = np.concatenate(
        [
            np.full(k, r, np.int8)
            for k, r in (
                (n_person, PERSON),
                (n_biz, BUSINESS),
                (n_fp, FOREIGN_PERSON),
                (n_fb, FOREIGN_BUSINESS),
                (n_cash, CASH),
            )
        ]
    )
    seg = {r: np.flatnonzero(role == r) for r in range(5)}

    first = rng.integers(0, len(cat.FIRST_NAMES), n).astype(np.int16)
    last = rng.integers(0, len(cat.LAST_NAMES), n).astype(np.int16)
    bank = rng.choice(n_banks, n, p=bank_share).astype(np.int16)
    country = np.full(n, home, np.int16)
    party = rng.permutation(n).astype(np.int64) + 1
    birth = np.full(n, NO_DATE, np.int32)
    phone = rng.integers(200_000_000, 999_999_999, n)
    device = rng.integers(10**11, 10**12, n)
    email_no = rng.integers(1, 100_000, n).astype(np.int32)
    number = rng.permutation(n).astype(np.int64) * 1000 + rng.integers(0, 1000, n)
    occupation = np.full(n, -1, np.int8)
    btype = np.full(n, -1, np.int16)
    opened = -rng.integers(YEAR, 25 * YEAR, n)
    terminal = np.full(n, -1, np.int32)
    start_days = (start - date(1970, 1, 1)).days

    # -- persons and their households (families share a surname, flatmates only the address)
    sizes = rng.choice([1, 2, 3, 4, 5], n_person, p=[0.4, 0.28, 0.15, 0.11, 0.06])
    n_hh = int(np.searchsorted(np.cumsum(sizes), n_person)) + 1
    sizes = sizes[:n_hh]
    p_hh = np.repeat(np.arange(n_hh), sizes)[:n_person]
    head = (np.cumsum(sizes) - sizes)[p_hh]
    family = (rng.random(n_hh) < 0.65)[p_hh]
    persons = seg[PERSON]
    last[persons] = np.where(family, last[persons][head], last[persons])
    phone[persons] = np.where(
        family & (rng.random(n_hh) < 0.3)[p_hh], phone[persons][head], phone[persons]
    )
    device[persons] = np.where(
        family & (rng.random(n_hh) < 0.15)[p_hh], device[persons][head], device[persons]
    )
    occ_p = np.asarray(list(cat.OCCUPATION_WEIGHTS.values()))
    occupation[persons] = rng.choice(len(cat.OCCUPATIONS), n_person, p=occ_p / occ_p.sum())
    student = occupation == cat.OCCUPATIONS.index("student")
    age = np.where(student, rng.uniform(18, 26, n), rng.uniform(18, 85, n))
    birth[persons] = (start_days - age * 365.25)[persons].astype(np.int32)

    # -- addresses: one per household, business, foreign account
    n_addr = n_hh + n_biz + n_fp + n_fb
    addr_num = rng.integers(1, 9999, n_addr).astype(np.int32)
    addr_street = rng.integers(0, len(cat.STREETS), n_addr).astype(np.int16)
    addr_city = rng.choice(n_cities, n_addr, p=city_weight).astype(np.int16)
    addr_unit = np.where(rng.random(n_addr) < 0.4, rng.integers(1, 60, n_addr), 0).astype(np.int16)
    addr_city[n_hh + n_biz :] = -1
    hh = np.full(n, -1, np.int32)
    hh[persons] = p_hh
    hh[seg[BUSINESS]] = n_hh + np.arange(n_biz)
    hh[seg[FOREIGN_PERSON]] = n_hh + n_biz + np.arange(n_fp)
    hh[seg[FOREIGN_BUSINESS]] = n_hh + n_biz + n_fp + np.arange(n_fb)

    # -- businesses: every type at least once, a hotel in every city, the rest by weight
    biz = seg[BUSINESS]
    codes = np.asarray([b.code for b in cat.BUSINESS_TYPES], np.int16)
    weights = np.asarray([b.weight for b in cat.BUSINESS_TYPES], float)
    forced = np.concatenate([codes, np.full(n_cities, cat.HOTEL, np.int16)])
    rest = rng.choice(codes, n_biz - forced.size, p=weights / weights.sum())
    btype[biz] = np.concatenate([forced, rest])
    addr_city[hh[biz[codes.size : forced.size]]] = np.arange(n_cities)
    size_scale = np.asarray([cat.BTYPE[int(c)].size for c in codes])
    order = np.argsort(codes)
    tix = order[np.searchsorted(codes[order], btype[biz])]  # row of BUSINESS_TYPES
    size = np.zeros(n)
    size[biz] = (rng.pareto(1.2, n_biz) + 1) * size_scale[tix]
    is_card = np.asarray([b.card for b in cat.BUSINESS_TYPES])[tix]

    # -- foreign accounts: every corridor country gets a few, the rest by corridor
    fp = seg[FOREIGN_PERSON]
    need = sorted(set(cat.REMITTANCE_CORRIDORS + cat.CSE_CORRIDORS + cat.FUNNEL_DESTINATIONS))
    forced_c = np.repeat(country_index(need), 3)
    country[fp] = np.concatenate(
        [
            forced_c,
            rng.choice(
                country_index(cat.REMITTANCE_CORRIDORS + cat.CSE_CORRIDORS), n_fp - forced_c.size
            ),
        ]
    )
    fb = seg[FOREIGN_BUSINESS]
    partners = sorted(set(cat.OFFSHORE + cat.TRADE_PARTNERS))
    forced_b = np.repeat(country_index(partners), 3)
    country[fb] = np.concatenate(
        [forced_b, rng.choice(country_index(partners), n_fb - forced_b.size)]
    )
    btype[fb] = rng.choice(np.asarray([5046, 7372, 8111, 4214], np.int16), n_fb)
    foreign = np.concatenate([fp, fb])
    bank[foreign] = n_banks + country[foreign]
    # half of each country's foreign accounts are kept for schemes, half serve innocent flows
    reserved = np.zeros(n, bool)
    for group in (fp, fb):
        reserved[group[np.argsort(country[group], kind="stable")[::2]]] = True
    phone[foreign] = -1
    device[foreign] = -1
    birth[fp] = (start_days - rng.uniform(18, 80, n_fp) * 365.25).astype(np.int32)

    # -- locations: a branch per bank and some ATMs per city, then one terminal per merchant
    per_city = n_banks + atms
    loc_city = np.concatenate(
        [np.repeat(np.arange(n_cities), per_city), addr_city[hh[biz[is_card]]]]
    ).astype(np.int16)
    loc_kind = np.concatenate(
        [np.tile([BRANCH] * n_banks + [ATM] * atms, n_cities), np.full(int(is_card.sum()), POS)]
    ).astype(np.int8)
    cash = seg[CASH]
    loc_account = np.concatenate([cash, biz[is_card]]).astype(np.int64)
    terminal[cash] = np.arange(n_cash)
    terminal[biz[is_card]] = n_cash + np.arange(int(is_card.sum()))
    slot = np.tile(np.arange(per_city), n_cities)
    bank[cash] = np.where(slot < n_banks, slot, bank[cash])  # branch k belongs to bank k
    btype[cash] = np.where(loc_kind[:n_cash] == BRANCH, cat.BRANCH_MCC, cat.ATM_MCC)
    party[cash] = n + 1 + bank[cash].astype(np.int64)  # the bank stands behind its cash points
    first[cash] = -1
    last[cash] = -1
    phone[cash] = -1
    device[cash] = -1
    opened[cash] = -10 * YEAR

    # -- new and dormant accounts (innocent look-alikes of burst rules)
    new = (role == PERSON) & (rng.random(n) < 0.03) | (role == BUSINESS) & (rng.random(n) < 0.03)
    new[biz[: forced.size]] = False  # the one-of-each merchants exist all along
    opened = np.where(new, rng.integers(-60 * DAY, int(0.7 * days * DAY), n), opened)
    active_from = np.maximum(opened, 0)
    dormant = (role == PERSON) & ~new & (rng.random(n) < 0.01)
    active_from = np.where(
        dormant, rng.integers(int(0.4 * days * DAY), int(0.8 * days * DAY), n), active_from
    )

    habits = _habits(
        rng, n, role, seg, occupation, btype, size, country, home, head, tix, new, dormant, reserved
    )
    # a second account of the same person: copy the identity
    twin = habits.twin
    owners = np.flatnonzero(twin >= 0)
    copies = twin[owners]
    for arr in (party, first, last, birth, hh, phone, device, email_no, occupation):
        arr[copies] = arr[owners]

    return Population(
        start=start,
        days=days,
        base_currency=base_currency,
        home=home,
        n_cities=n_cities,
        city_names=city_names,
        city_weight=city_weight,
        bank_codes=bank_codes,
        n_banks=n_banks,
        loc_kind=loc_kind,
        loc_city=loc_city,
        loc_account=loc_account,
        addr_num=addr_num,
        addr_street=addr_street,
        addr_city=addr_city,
        addr_unit=addr_unit,
        role=role,
        bank=bank,
        country=country,
        party=party,
        first=first,
        last=last,
        birth=birth,
        hh=hh,
        phone=phone,
        device=device,
        email_no=email_no,
        occupation=occupation,
        btype=btype,
        opened=opened,
        active_from=active_from,
        terminal=terminal,
        number=number,
        reserved=reserved,
        habits=habits,
        label_typ=np.full(n, -1, np.int8),
        label_sch=np.full(n, -1, np.int32),
    )


def _habits(
    rng: np.random.Generator,
    n: int,
    role: np.ndarray,
    seg: dict[int, np.ndarray],
    occupation: np.ndarray,
    btype: np.ndarray,
    size: np.ndarray,
    country: np.ndarray,
    home: int,
    head: np.ndarray,
    tix: np.ndarray,
    new: np.ndarray,
    dormant: np.ndarray,
    reserved: np.ndarray,
) -> Habits:
    """Everyday habits: jobs, homes, remittances, and the innocent look-alike segments."""
    persons, biz = seg[PERSON], seg[BUSINESS]
    is_person = role == PERSON
    is_biz = role == BUSINESS
    student = is_person & (occupation == cat.OCCUPATIONS.index("student"))
    employed = is_person & ~np.isin(
        occupation, [cat.OCCUPATIONS.index(o) for o in cat.NOT_EMPLOYED]
    )
    employed |= student & (rng.random(n) < 0.3)

    employer = np.full(n, -1, np.int64)
    employer[employed] = rng.choice(biz, int(employed.sum()), p=size[biz] / size[biz].sum())
    type_row = np.full(n, 0, np.int64)
    type_row[biz] = tix
    wage = np.asarray([b.wage for b in cat.BUSINESS_TYPES])
    salary = np.zeros(n)
    salary[employed] = lognormal(rng, wage[type_row[employer[employed]]], 0.3, int(employed.sum()))
    salary = np.where(student, salary * 0.4, salary)
    labour = np.asarray([b.labour for b in cat.BUSINESS_TYPES])[type_row]
    pay_period = np.where(
        rng.random(n) < np.where(labour, 0.5, 0.15), 7, rng.choice([0, 14], n, p=[0.6, 0.4])
    ).astype(np.int16)
    pay_phase = np.where(
        pay_period == 0,
        rng.choice([1, 15, 25, 28], n),
        rng.integers(0, 14, n) % np.maximum(pay_period, 1),
    ).astype(np.int16)

    activity = np.where(is_person, lognormal(rng, 1.0, 0.5, n), 0.0)
    night_jobs = [cat.OCCUPATIONS.index(o) for o in cat.NIGHT_OCCUPATIONS]
    night = is_person & np.isin(occupation, night_jobs) & (rng.random(n) < 0.5)
    is_head = np.zeros(n, bool)
    is_head[persons] = head == np.arange(persons.size)

    # homes: heads of households rent from individual landlords or property managers
    landlord = is_person & ~student & (rng.random(n) < 0.02)
    renter = is_head & ~landlord & (rng.random(n) < 0.6)
    lords = np.flatnonzero(landlord)
    managers = biz[btype[biz] == 6513]
    rent_to = np.full(n, -1, np.int64)
    k = int(renter.sum())
    lord_w = rng.pareto(1.0, lords.size) + 1
    mgr_w = rng.pareto(1.0, managers.size) + 1
    rent_to[renter] = np.where(
        rng.random(k) < 0.5,
        rng.choice(lords, k, p=lord_w / lord_w.sum()),
        rng.choice(managers, k, p=mgr_w / mgr_w.sum()),
    )
    rent = np.where(renter, lognormal(rng, 1400, 0.35, n), 0.0)

    # remittances home, crypto
    corridors = [c for c in country_index(cat.REMITTANCE_CORRIDORS) if c != home]
    remitter = is_person & (rng.random(n) < 0.06)
    remit_to = np.full(n, -1, np.int64)
    fp = seg[FOREIGN_PERSON][~reserved[seg[FOREIGN_PERSON]]]
    ben = Directory(fp, country[fp], np.zeros(fp.size, np.int64), 1)
    remit_to[remitter] = ben.pick(rng, rng.choice(corridors, int(remitter.sum())), 0)
    remit_small = remitter & (rng.random(n) < 0.3)
    crypto = is_person & (rng.random(n) < 0.03)

    # look-alike segments
    supported = student & (rng.random(n) < 0.4)
    seller = np.where(
        is_person & (rng.random(n) < 0.012), np.where(rng.random(n) < 0.4, 2, 1), 0
    ).astype(np.int8)
    traveller = employed & ~night & (rng.random(n) < 0.012)
    salary = np.where(traveller, salary * 1.8, salary)

    # a few people hold a second account (copies take the owner's identity in `build`)
    twin = np.full(n, -1, np.int64)
    m = int(0.015 * persons.size)
    perm = rng.permutation(persons[~(new | dormant)[persons]])
    owners, copies = perm[:m], perm[m : 2 * m]
    twin[owners] = copies
    for arr in (employer, remit_to, rent_to):
        arr[copies] = -1
    for arr in (remitter, supported, traveller, crypto, is_head):
        arr[copies] = False
    seller[copies] = 0
    activity[copies] *= 0.3

    contacts = np.full((n, 4), -1, np.int64)
    contacts[persons] = rng.choice(persons, (persons.size, 4))
    head_pos = persons[head]
    contacts[persons, 0] = np.where(head_pos != persons, head_pos, contacts[persons, 0])
    suppliers = np.full((n, 3), -1, np.int64)
    suppliers[biz] = rng.choice(biz, (biz.size, 3))
    foreign_supplier = np.full(n, -1, np.int64)
    has_fs = is_biz & (rng.random(n) < 0.15)
    fb = seg[FOREIGN_BUSINESS][~reserved[seg[FOREIGN_BUSINESS]]]
    foreign_supplier[has_fs] = rng.choice(fb, int(has_fs.sum()))
    cash_type = np.asarray([b.cash for b in cat.BUSINESS_TYPES])[type_row] & is_biz
    cash_heavy = cash_type & (rng.random(n) < 0.25)

    return Habits(
        employer=employer,
        salary=salary,
        pay_period=pay_period,
        pay_phase=pay_phase,
        activity=activity,
        night=night,
        rent_to=rent_to,
        rent=rent,
        bills=is_head,
        remit_to=remit_to,
        remit_small=remit_small,
        crypto=crypto,
        supported=supported,
        seller=seller,
        traveller=traveller,
        landlord=landlord,
        twin=twin,
        contacts=contacts,
        suppliers=suppliers,
        foreign_supplier=foreign_supplier,
        size=size,
        cash_heavy=cash_heavy,
        dormant=dormant,
        new=new,
    )

"""Planted instances of the graph patterns and their near misses, shared by the family tests and
the tests over every pattern (near misses that fire once relaxed, hits independent of row order)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
from graph_rows import T0, a, context, t

from flows87.pipeline.graph.patterns import GraphContext
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA

CYCLE = [t("c1", 0, "A", "B", 1000), t("c2", 5, "B", "C", 950), t("c3", 30, "C", "A", 900)]


CHAIN = [
    t("l1", 0, "A", "B", 1000),
    t("l2", 10, "B", "C", 960),
    t("l3", 20, "C", "D", 930),
    t("l4", 40, "D", "E", 900),
]


def scatter(xs: int = 3, gather_hours: float = 10) -> list[dict[str, Any]]:
    rows = []
    for i in range(xs):
        rows.append(t(f"s{i}", i, "A", f"X{i}", 300))
        rows.append(t(f"g{i}", gather_hours + i, f"X{i}", "B", 280))
    return rows


def signals(accounts: list[str], family: str = "behaviour") -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "source": "rule",
                "signal_id": "ht_sweep_to_controller",
                "account_id": x,
                "txn_ids": [],
                "score": 0.75,
                "family": family,
                "typologies": ["sex_trafficking"],
                "window_start": T0,
                "window_end": T0 + timedelta(days=7),
                "evidence": "{}",
                "summary": "s",
            }
            for x in accounts
        ],
        schema=SIGNAL_SCHEMA,
    )


def hub_rows(to_hub: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(3):
        rows.append(t(f"h{i}", i, f"S{i}", "H", to_hub, "p2p"))
        rows.append(t(f"o{i}", i + 1, f"S{i}", f"shop{i}", 100 - to_hub, "card"))
    return rows


SURNAMES = ["Tran", "Okafor", "Silva", "Novak", "Reyes", "Haddad", "Kowalski", "Mensah", "Ito"]


def many_to_one(
    senders: int = 8,
    spacing_hours: float = 9,
    channel: str = "wire",
    dst_country: str = "PH",
    amounts: list[float] | None = None,
    kind: str = "individual",
    kin: int = 0,
    paid_before: bool = False,
) -> GraphContext:
    """Workers each paying a recruiter abroad the same fee soon after payday (FATF/APG 2018);
    the arguments turn one behaviour at a time into that of an innocent look-alike."""
    amounts = amounts or [150.0] * senders
    rows = [
        t(
            f"r{i}",
            24 * 20 + spacing_hours * i,
            f"W{i}",
            "BEN",
            amounts[i],
            channel,
            src_country="US",
            dst_country=dst_country,
        )
        for i in range(senders)
    ]
    if paid_before:  # the same people paid this beneficiary before, one every other day
        rows += [
            {**r, "txn_id": f"e{i}", "ts": T0 + timedelta(days=2 * i)} for i, r in enumerate(rows)
        ]
    accounts = [a("BEN", name="Minh Vo", country=dst_country)] + [
        a(f"W{i}", kind=kind, name=f"Worker {'Vo' if i < kin else SURNAMES[i % 9]}")
        for i in range(senders)
    ]
    return context(rows, accounts)


def payroll(
    recaptured: int, delay_hours: float = 20, common: bool = True, kind: str = "business"
) -> GraphContext:
    rows, accounts = [], [a("EMP", kind=kind)]
    for i in range(6):
        rows.append(t(f"w{i}", i, "EMP", f"W{i}", 1000, "ach"))
        payee = "BOSS" if common else f"LANDLORD{i}"
        if i < recaptured:
            rows.append(t(f"k{i}", i + delay_hours, f"W{i}", payee, 600, "p2p"))
        rows.append(t(f"f{i}", i + 30, f"W{i}", "GROCER", 80, "card"))
    return context(rows, accounts)


def housed(sharing: int, same_party: bool = False) -> GraphContext:
    rows, accounts = [], [a("EMP", kind="business")]
    for i in range(7):
        rows.append(t(f"w{i}", i, "EMP", f"W{i}", 900, "ach"))
        address = " 1 Farm Road " if i < sharing else f"{i} Other Street"
        accounts.append(
            a(f"W{i}", party="P-same" if same_party else None, address=address, phone=f"555-{i}")
        )
    return context(rows, accounts)


def ring(names: list[str | None]) -> GraphContext:
    accounts = [
        a("I0", name=names[0], phone="+1 555 0100"),
        a("I1", name=names[1], phone="+1 555 0100", address="9 Elm St"),
        a("I2", name=names[2], address="9 ELM ST", email="x@y.z"),
        a("I3", name=names[3], email="x@y.z"),
        a("I4", name="Ann Lone" if names[0] else None, address="1 Solo Way"),
    ]
    rows = [
        t("d1", 1, "I3", "SHOP", 20, "card", device_id="dev-7"),
        t("d2", 2, "I4", "SHOP", 20, "card", device_id="dev-8"),
    ]
    return context(rows, accounts)


STUDENTS = ["Novak", "Okafor", "Reyes", "Ito", "Haddad"]


def openings(gap_days: float, same_party: bool = False) -> GraphContext:
    accounts = [
        a(
            f"N{i}",
            opened_days=-20 + i * gap_days,
            party="P-one" if same_party else None,
            device_id="tablet-9",
        )
        for i in range(3)
    ]
    accounts.append(a("OLD", opened_days=-900, device_id="tablet-9"))
    return context([t("z", 0, "N0", "N1", 5)], accounts)


def mules(
    age_days: float, pairs: list[tuple[int, int]], amount: float = 900
) -> list[dict[str, Any]]:
    return [t(f"m{s}{r}", s * 3 + r, f"S{s}", f"R{r}", amount, "p2p") for s, r in pairs]


FULL = [(s, r) for s in range(3) for r in range(3)]


def cash(txn: str, hours: float, account: str, location: str = "ATM-1") -> dict[str, Any]:
    return t(txn, hours, account, "CASH", 200, "cash_withdrawal", location_id=location)


def atm(
    minutes_apart: float = 3,
    visits: tuple[float, ...] = (10, 24 * 3 + 22),
    same_party: bool = False,
    cards: tuple[tuple[int, ...], ...] = ((0, 1, 2), (0, 1, 2)),
    crowd: list[dict[str, Any]] | None = None,
) -> GraphContext:
    """A controller withdrawing from the same three victims' cards, one after the other, on a
    morning and on a night three days later (visits: hours from T0; cards: used at each)."""
    rows = [
        cash(f"atm{v}{i}", hour + i * minutes_apart / 60, f"C{card}")
        for v, (hour, used) in enumerate(zip(visits, cards, strict=True))
        for i, card in enumerate(used)
    ]
    rows.append(cash("far", 10, "C9", "ATM-2"))
    accounts = [a(f"C{i}", party="P-one" if same_party else None) for i in (0, 1, 2, 3, 9)]
    return context(rows + (crowd or []), accounts)


def fan_rows(
    n: int = 7,
    *,
    inbound: bool = True,
    channel: str = "p2p",
    amount: float = 1200,
    flow: bool = True,
    days_apart: float = 0,
) -> list[dict[str, Any]]:
    """n spokes paying a hub H (or H paying n spokes) an hour (plus `days_apart`) apart; with
    `flow`, the money passes through H: it leaves a day after the last collection (fan-in) or
    arrives two hours before the first payment (fan-out)."""
    rows = [
        t(f"F{i}", i + 24 * days_apart * i, f"S{i}", "H", amount, channel)
        if inbound
        else t(f"F{i}", i + 24 * days_apart * i, "H", f"S{i}", amount, channel)
        for i in range(n)
    ]
    last = rows[-1]["ts"]
    if flow and inbound:
        rows.append(t("OUT", 0, "H", "BOSS", 0.9 * n * amount) | {"ts": last + timedelta(days=1)})
    if flow and not inbound:
        rows.append(t("IN", -2, "BOSS", "H", n * amount))
    return rows


def cse_signal(account: str, score: float = 1.0, typology: str = "cse_small_intl") -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "source": "rule",
                "signal_id": "cse_small_intl_transfers",
                "account_id": account,
                "txn_ids": [],
                "score": score,
                "family": "behaviour",
                "typologies": [typology],
                "window_start": None,
                "window_end": None,
                "evidence": "{}",
                "summary": "",
            }
        ],
        schema=SIGNAL_SCHEMA,
    )


def small_intl() -> list[dict[str, Any]]:
    xb = {"src_country": "US"}
    rows = [
        t(f"c{i}", i * 20, "SENDER", f"FAC{i % 2}", 40 + i, "mobile_money", dst_country="PH", **xb)
        for i in range(8)
    ]
    rows.append(t("once", 5, "SENDER", "AUNT", 60, "wire", dst_country="PH", **xb))
    rows.append(t("big", 6, "SENDER", "FAC0", 900, "wire", dst_country="PH", **xb))
    rows.append(t("home", 7, "SENDER", "FRIEND", 50, "p2p", dst_country="US", **xb))
    return rows


def sharers(per_payer: int, surnames: list[str], payee: str = "BEN") -> GraphContext:
    people = [a(f"W{i}", name=f"Ana {s}", address="9 Mill Rd") for i, s in enumerate(surnames)]
    rows = [
        t(f"w{i}{k}", 24 * (i + 7 * k), f"W{i}", payee, 250, "p2p")
        for i in range(len(surnames))
        for k in range(per_payer)
    ]
    return context(rows, people + [a(payee, name="Bo Cruz")])


def front_company(
    cashed: float = 1.0, placed: bool = True, n: int = 7, amount: float = 1200
) -> GraphContext:
    """A business H pays n people, who each withdraw `cashed` of it in cash within hours; with
    `placed`, the money was paid into H in cash two hours before the first payment."""
    rows = [t(f"F{i}", i, "H", f"S{i}", amount, "p2p") for i in range(n)]
    rows += [
        t(
            f"W{i}",
            i + 3,
            f"S{i}",
            "CASH:BR2",
            cashed * amount,
            "cash_withdrawal",
            location_id="BR2",
        )
        for i in range(n)
    ]
    if placed:
        rows += [
            t("D1", -3, "CASH:BR1", "H", n * amount / 2, "cash_deposit", location_id="BR1"),
            t("D2", -2, "CASH:BR1", "H", n * amount / 2, "cash_deposit", location_id="BR1"),
        ]
    return context(rows, [a("H", kind="business")])


def funnel(
    days_apart: float = 1,
    locations: int = 4,
    kept: bool = False,
    kind: str = "individual",
) -> GraphContext:
    """Cash paid into F at `locations` branches, `days_apart` days apart, 2,500 each; most of it
    wired to BEN abroad the day after the last deposit (unless `kept`), a little to a friend."""
    rows = [
        t(
            f"D{i}",
            24 * days_apart * i,
            f"CASH:BR{i}",
            "F",
            2500,
            "cash_deposit",
            location_id=f"BR{i}",
        )
        for i in range(locations)
    ]
    last = 24 * days_apart * (locations - 1)
    if not kept:
        rows.append(
            t("WIRE", last + 20, "F", "BEN", 2300 * locations, src_country="US", dst_country="MX")
        )
        rows.append(t("TIP", last + 21, "F", "PAL", 300, "p2p"))
    return context(rows, [a("F", kind=kind)])


def structurer(
    days_apart: float = 1, same_party: bool = True, amount: float = 9500
) -> GraphContext:
    """Four deposits just under 10,000, `days_apart` apart, alternating between two accounts
    of one person (two each: under the account rule's three)."""
    rows = [
        t(
            f"S{i}",
            24 * days_apart * i,
            "CASH:BR1",
            f"A{i % 2}",
            amount,
            "cash_deposit",
            location_id="BR1",
        )
        for i in range(4)
    ]
    accounts = [a("A0", party="P1"), a("A1", party="P1" if same_party else "P2")]
    return context(rows, accounts)


def spread_funnel() -> GraphContext:
    """Cash at four branches into one person's accounts at two banks (two each), wired on."""
    rows = [
        t(f"PF{i}", 24 * i, f"CASH:BR{i}", f"F{i % 2}", 2500, "cash_deposit", location_id=f"BR{i}")
        for i in range(4)
    ]
    rows += [t(f"PW{i}", 100 + i, f"F{i}", "BEN", 4600) for i in range(2)]
    accounts = [a("F0", party="P", bank_id="001"), a("F1", party="P", bank_id="002")]
    return context(rows, accounts)


def spread_controller() -> GraphContext:
    """Three flagged victims each sweeping twice to one person's account at its own bank."""
    rows = [t(f"PC{i}{k}", 24 * k + i, f"V{i}", f"C{i}", 400) for i in range(3) for k in range(2)]
    accounts = [a(f"C{i}", party="C", bank_id=f"00{i + 1}") for i in range(3)]
    return context(rows, accounts, signals=signals(["V0", "V1", "V2"]))

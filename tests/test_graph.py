"""Graph patterns: each finds a planted instance and stays quiet on its near misses."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import networkx as nx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.errors import ConfigError
from flows87.pipeline.graph import analysis
from flows87.pipeline.graph.common import busiest_windows
from flows87.pipeline.graph.patterns import HIT_SCHEMA, PATTERNS, GraphContext, Pattern, find
from flows87.pipeline.rules.compile import check_rule
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.pipeline.rules.loader import RULES_DIR, load_rule
from flows87.pipeline.rules.model import Param, Rule
from flows87.schema import conform, schema

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def t(
    txn_id: str,
    hours: float,
    src: str,
    dst: str,
    amount: float,
    channel: str = "wire",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "ts": T0 + timedelta(hours=hours),
        "src_account": src,
        "dst_account": dst,
        "amount": amount,
        "currency": "USD",
        "amount_base": amount,
        "channel": channel,
        **extra,
    }


def a(
    account_id: str,
    kind: str = "individual",
    party: str | None = None,
    opened_days: float = -400,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "party_id": party or f"P-{account_id}",
        "bank_id": "001",
        "kind": kind,
        "opened_at": T0 + timedelta(days=opened_days),
        "country": "US",
        **extra,
    }


def context(
    txns: list[dict[str, Any]],
    accounts: list[dict[str, Any]] | None = None,
    signals: pl.DataFrame | None = None,
) -> GraphContext:
    if txns:
        tx = conform(pl.DataFrame(txns, infer_schema_length=None), "transactions").collect()
    else:
        tx = pl.DataFrame(schema=schema("transactions", labels=False))
    known = {r["account_id"] for r in accounts or []}
    seen = sorted(set(tx["src_account"]) | set(tx["dst_account"]))
    rows = list(accounts or []) + [a(x) for x in seen if x not in known]
    acc = (
        conform(pl.DataFrame(rows, infer_schema_length=None), "accounts").collect()
        if rows
        else pl.DataFrame(schema=schema("accounts", labels=False))
    )
    return GraphContext(
        tx,
        acc,
        pl.DataFrame(),
        signals if signals is not None else pl.DataFrame(schema=SIGNAL_SCHEMA),
    )


def roles(hits: pl.DataFrame) -> dict[str, str]:
    return dict(zip(hits["account_id"], hits["role"], strict=True))


def evidence(hits: pl.DataFrame) -> dict[str, Any]:
    assert hits["instance"].n_unique() == 1
    return json.loads(hits["evidence"][0])


def check_shape(hits: pl.DataFrame) -> None:
    assert hits.schema == HIT_SCHEMA
    for inst in hits.partition_by("instance"):
        assert inst["evidence"].n_unique() == 1
        assert sorted(json.loads(inst["evidence"][0])["accounts"]) == sorted(inst["account_id"])


# ---------------------------------------------------------------- registry


def test_registry_entries_are_documented() -> None:
    assert len(PATTERNS) == 17
    for name, p in PATTERNS.items():
        assert isinstance(p, Pattern) and p.name == name
        assert len(p.description) > 40 and p.description.endswith(".")
        assert p.params and all(isinstance(v, int | float) for v in p.params.values())


def _graph_rule(pattern: str, params: dict[str, float]) -> Rule:
    return Rule(
        id="ml_test_rule",
        title="A test rule",
        description="A graph rule used by the tests only.",
        status="experimental",
        severity="high",
        family="network",
        typologies=["laundering"],
        date=date(2024, 1, 1),
        references=["FATF"],
        scope="graph",
        pattern=pattern,
        params={k: Param(default=v, min=0, max=1000) for k, v in params.items()},
        summary="found",
        falsepositives=["none"],
    )


def test_rules_may_override_declared_params_only() -> None:
    check_rule(_graph_rule("cycle", {"min_length": 3, "window_days": 5}))
    with pytest.raises(ConfigError, match="no parameter 'hops'"):
        check_rule(_graph_rule("cycle", {"hops": 3}))
    with pytest.raises(ConfigError, match="no parameter"):
        find(context([]), "cycle", {"hops": 3})
    with pytest.raises(ConfigError, match="unknown graph pattern"):
        find(context([]), "cycles")


@pytest.mark.parametrize(
    "rule_id",
    [
        "fa_multi_card_atm",
        "id_shared_identifiers",
        "ml_many_to_one_beneficiary",
        "ml_fan_in",
        "ml_fan_out",
        "ml_mule_network",
        "cse_corridor_beneficiaries",
        "fa_funnel_flow",
        "fa_structuring_accounts",
    ],
)
def test_rule_file_declares_the_patterns_params(rule_id: str) -> None:
    rule = load_rule(RULES_DIR / f"{rule_id}.yaml")
    check_rule(rule)
    assert rule.pattern is not None
    declared = {name: param.default for name, param in rule.params.items()}
    assert declared == PATTERNS[rule.pattern].params


def test_every_pattern_runs_on_empty_and_bare_data() -> None:
    bare = [t(f"r{i}", i, f"acc{i % 7}", f"acc{(i * 3 + 1) % 7}", 100.0 + i) for i in range(40)]
    bare = [r for r in bare if r["src_account"] != r["dst_account"]]
    accounts = [
        {
            "account_id": f"acc{i}",
            "party_id": None,
            "bank_id": None,
            "kind": "unknown",
            "opened_at": None,
            "country": None,
        }
        for i in range(7)
    ]
    for ctx in (context([]), context(bare, accounts)):
        for name in PATTERNS:
            hits = find(ctx, name)
            assert hits.schema == HIT_SCHEMA
            if name not in ("cycle", "layering_chain", "scatter_gather"):
                assert hits.is_empty(), name  # these need data the bare set lacks


# ---------------------------------------------------------------- cycles and chains

CYCLE = [t("c1", 0, "A", "B", 1000), t("c2", 5, "B", "C", 950), t("c3", 30, "C", "A", 900)]


def test_cycle_found_with_roles_and_retained_amount() -> None:
    noise = [t("n1", 1, "B", "D", 40), t("n2", 2, "D", "E", 700)]
    hits = find(context(CYCLE + noise), "cycle")
    check_shape(hits)
    assert set(hits["instance"]) == {"cycle:c1"}
    assert roles(hits) == {"A": "origin", "B": "intermediary", "C": "intermediary"}
    assert hits["txn_ids"][0].to_list() == ["c1", "c2", "c3"]
    ev = evidence(hits)
    assert ev["length"] == 3 and ev["retained"] == pytest.approx(0.9)
    assert ev["first_amount"] == 1000 and ev["returned_amount"] == 900
    assert ev["duration_hours"] == 30 and ev["first_ts"].startswith("2024-03-01T00:00")


@pytest.mark.parametrize(
    "change",
    [
        {"c3": {"ts": T0 - timedelta(hours=1)}},  # closes before it opens: not time-ordered
        {"c3": {"ts": T0 + timedelta(days=11)}},  # slower than the 10-day window
        {"c3": {"amount_base": 500.0}},  # only half comes back on the last hop
        {"c1": {"amount_base": 400.0}, "c2": {"amount_base": 390.0}, "c3": {"amount_base": 380.0}},
    ],
    ids=["not-time-ordered", "too-slow", "amount-drops", "too-small"],
)
def test_cycle_near_misses(change: dict[str, dict[str, Any]]) -> None:
    rows = [{**r, **change.get(r["txn_id"], {})} for r in CYCLE]
    assert find(context(rows), "cycle").is_empty()


def test_cycle_length_param() -> None:
    assert find(context(CYCLE), "cycle", {"min_length": 4}).is_empty()
    two = [t("d1", 0, "A", "B", 1000), t("d2", 1, "B", "A", 990)]
    assert find(context(two), "cycle").is_empty()
    assert set(find(context(two), "cycle", {"min_length": 2})["account_id"]) == {"A", "B"}


CHAIN = [
    t("l1", 0, "A", "B", 1000),
    t("l2", 10, "B", "C", 960),
    t("l3", 20, "C", "D", 930),
    t("l4", 40, "D", "E", 900),
]


def test_layering_chain_reports_the_whole_chain_once() -> None:
    hits = find(context(CHAIN), "layering_chain")
    check_shape(hits)
    assert set(hits["instance"]) == {"layering_chain:l1"}
    assert roles(hits) == {
        "A": "origin",
        "B": "intermediary",
        "C": "intermediary",
        "D": "intermediary",
        "E": "end",
    }
    assert hits["txn_ids"][0].to_list() == ["l1", "l2", "l3", "l4"]
    ev = evidence(hits)
    assert ev["hops"] == 4 and ev["max_hop_hours"] == 20 and ev["retained"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    "rows",
    [
        [*CHAIN[:2], {**CHAIN[2], "ts": T0 + timedelta(hours=70)}],  # third hop 60 h later
        [*CHAIN[:2], {**CHAIN[2], "amount_base": 1100.0}],  # amount grows
        [*CHAIN[:2], {**CHAIN[2], "dst_account": "A"}],  # a cycle, not a chain
    ],
    ids=["slow-hop", "amount-grows", "cycle"],
)
def test_layering_chain_near_misses(rows: list[dict[str, Any]]) -> None:
    assert find(context(rows), "layering_chain").is_empty()


# ---------------------------------------------------------------- fans


def _scatter(xs: int = 3, gather_hours: float = 10) -> list[dict[str, Any]]:
    rows = []
    for i in range(xs):
        rows.append(t(f"s{i}", i, "A", f"X{i}", 300))
        rows.append(t(f"g{i}", gather_hours + i, f"X{i}", "B", 280))
    return rows


def test_scatter_gather_found() -> None:
    hits = find(context(_scatter()), "scatter_gather")
    check_shape(hits)
    assert roles(hits) == {
        "A": "origin",
        "X0": "intermediary",
        "X1": "intermediary",
        "X2": "intermediary",
        "B": "beneficiary",
    }
    assert set(hits["instance"]) == {"scatter_gather:s0"}
    assert hits["txn_ids"][0].to_list() == ["s0", "s1", "s2", "g0", "g1", "g2"]
    ev = evidence(hits)
    assert ev["n_intermediaries"] == 3 and ev["source"] == "A" and ev["target"] == "B"
    assert ev["total_amount"] == 900 and ev["gathered_amount"] == 840


def test_scatter_gather_to_two_beneficiaries_is_two_instances() -> None:
    # The intermediaries pay both B and C: two scatter-gathers starting with the same payment,
    # each naming its own beneficiary (one instance would name either, at random).
    rows = _scatter() + [t(f"h{i}", 12 + i, f"X{i}", "C", 270) for i in range(3)]
    hits = find(context(rows), "scatter_gather")
    check_shape(hits)
    targets = {
        inst: json.loads(part["evidence"][0])["target"]
        for (inst,), part in hits.partition_by("instance", as_dict=True).items()
    }
    assert targets == {"scatter_gather:s0>B": "B", "scatter_gather:s0>C": "C"}


def test_scatter_gather_near_misses() -> None:
    assert find(context(_scatter(xs=2)), "scatter_gather").is_empty()
    assert find(context(_scatter(gather_hours=-5)), "scatter_gather").is_empty()  # paid B first
    assert find(context(_scatter(gather_hours=24 * 6)), "scatter_gather").is_empty()
    busy = [t(f"m{i}", 50 + i, f"shop{i}", "X2", 20, "card") for i in range(35)]
    assert find(context(_scatter() + busy), "scatter_gather").is_empty()  # X2 is a merchant


def test_scatter_gather_ratio_and_card_degree() -> None:
    # Employees paying a common landlord out of their wages pass on a part only.
    wages = []
    for i in range(3):
        wages.append(t(f"s{i}", i, "EMP", f"X{i}", 3000, "ach"))
        wages.append(t(f"g{i}", 10 + i, f"X{i}", "LANDLORD", 900, "ach"))
    rule = {"min_ratio": 0.8, "max_ratio": 1.05}
    assert not find(context(wages), "scatter_gather").is_empty()  # the pattern's default
    assert find(context(wages), "scatter_gather", rule).is_empty()
    # Mules relaying all but a fee are found, even when they shop a lot by card.
    shops = [t(f"m{i}", 50 + i, "X2", f"shop{i}", 20, "card") for i in range(40)]  # purchases
    hits = find(context(_scatter() + shops), "scatter_gather", rule)
    assert {"X0", "X1", "X2"} <= set(hits["account_id"])
    # ... but not when the intermediary has many transfer counterparties (a busy account).
    busy = [t(f"p{i}", 50 + i, f"friend{i}", "X2", 20, "p2p") for i in range(35)]
    hits = find(context(_scatter() + busy), "scatter_gather", rule)
    assert "X2" not in set(hits["account_id"])


def _signals(accounts: list[str], family: str = "behaviour") -> pl.DataFrame:
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


def _hub_rows(to_hub: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(3):
        rows.append(t(f"h{i}", i, f"S{i}", "H", to_hub, "p2p"))
        rows.append(t(f"o{i}", i + 1, f"S{i}", f"shop{i}", 100 - to_hub, "card"))
    return rows


def test_controller_hub_found() -> None:
    hits = find(context(_hub_rows(80), signals=_signals(["S0", "S1", "S2"])), "controller_hub")
    check_shape(hits)
    assert roles(hits) == {"H": "controller", "S0": "member", "S1": "member", "S2": "member"}
    ev = evidence(hits)
    assert ev["flagged_senders"] == 3 and ev["mean_share"] == pytest.approx(0.8)
    assert ev["sender_signals"] == ["ht_sweep_to_controller"] and ev["total_amount"] == 240
    assert sorted(hits["txn_ids"][0]) == ["h0", "h1", "h2"]


def test_controller_hub_near_misses() -> None:
    assert find(
        context(_hub_rows(10), signals=_signals(["S0", "S1", "S2"])), "controller_hub"
    ).is_empty()  # the hub takes only a tenth
    assert find(context(_hub_rows(80), signals=_signals(["S0", "S1"])), "controller_hub").is_empty()
    assert find(
        context(_hub_rows(80), signals=_signals(["S0", "S1", "S2"], "network")), "controller_hub"
    ).is_empty()


def test_controller_hub_can_ask_for_repeated_sweeps() -> None:
    # each flagged sender paid the hub once (as a tenant pays rent) ...
    once = context(_hub_rows(80), signals=_signals(["S0", "S1", "S2"]))
    assert not find(once, "controller_hub").is_empty()  # the default asks for one payment
    assert find(once, "controller_hub", {"min_payments_per_sender": 2}).is_empty()
    # ... or twice, a week apart (a controller collects again and again)
    again = [t(f"a{i}", 24 * 7 + i, f"S{i}", "H", 80, "p2p") for i in range(3)]
    twice = context(_hub_rows(80) + again, signals=_signals(["S0", "S1", "S2"]))
    hits = find(twice, "controller_hub", {"min_payments_per_sender": 2})
    assert evidence(hits)["payments_per_sender"] == 2
    assert set(hits["account_id"]) == {"H", "S0", "S1", "S2"}


def test_infrastructure_is_never_the_controller() -> None:
    """A hub trading with a fifth of all accounts is a utility or processor, not a controller."""
    found = context(_hub_rows(80), signals=_signals(["S0", "S1", "S2"]))
    assert not find(found, "controller_hub").is_empty()
    # the same hub also paid once by 300 other accounts: it trades with 303 of 307 accounts
    bills = [t(f"b{i}", 30 + i / 100, f"C{i}", "H", 40, "card") for i in range(300)]
    busy = context(_hub_rows(80) + bills, signals=_signals(["S0", "S1", "S2"]))
    assert find(busy, "controller_hub").is_empty()
    assert not find(busy, "controller_hub", {"max_hub_share": 1.0}).is_empty()


SURNAMES = ["Tran", "Okafor", "Silva", "Novak", "Reyes", "Haddad", "Kowalski", "Mensah", "Ito"]


def _many_to_one(
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


def test_many_to_one_beneficiary_found() -> None:
    hits = find(_many_to_one(), "many_to_one_beneficiary")
    check_shape(hits)
    assert roles(hits)["BEN"] == "beneficiary"
    assert sum(r == "sender" for r in roles(hits).values()) == 8
    ev = evidence(hits)
    assert ev["n_senders"] == 8 and ev["total_amount"] == 1200 and ev["beneficiary_country"] == "PH"
    assert ev["cv"] == 0 and ev["new_share"] == 1 and ev["individual_share"] == 1
    assert ev["kin_share"] == 0 and ev["duration_hours"] == 63
    assert set(hits["instance"]) == {"many_to_one_beneficiary:r0"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"senders": 7},
        {"spacing_hours": 24},
        {"channel": "card"},
        {"dst_country": "US"},
        {"amounts": [40.0, 400.0] * 4},
        {"kind": "business"},
        {"kin": 2},
        {"paid_before": True},
    ],
    ids=[
        "too-few",
        "too-spread",
        "card-sales",
        "domestic",
        "varied-amounts",
        "businesses",
        "relatives",
        "regular-payers",
    ],
)
def test_many_to_one_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(_many_to_one(**kwargs), "many_to_one_beneficiary").is_empty()


def _family_abroad() -> GraphContext:
    """A mother in Manila: six children abroad send what they can every week, and three in-laws
    join them from the second week on."""
    relatives = ["Santos"] * 6 + ["Cruz", "Lim", "Reyes"]
    accounts = [a("MOM", name="Maria Santos", country="PH")] + [
        a(f"K{i}", name=f"Child {s}") for i, s in enumerate(relatives)
    ]
    rows = [
        t(
            f"k{i}w{w}",
            24 * (7 * w + 1) + 5 * i,
            f"K{i}",
            "MOM",
            [120, 300, 80, 200, 450, 60, 150, 250, 100][(i + w) % 9],
            "mobile_money" if i % 2 else "wire",
            src_country="US",
            dst_country="PH",
            memo="FAMILY SUPPORT",
        )
        for i in range(9)
        for w in range(4)
        if i < 6 or w > 0
    ]
    return context(rows, accounts)


def test_many_to_one_ignores_a_family_abroad() -> None:
    family = _family_abroad()
    assert find(family, "many_to_one_beneficiary").is_empty()
    # as popular as a recruiter: popularity alone (the rule before) flags it
    popular = {"max_cv": 10.0, "min_new_share": 0.0, "max_kin_share": 1.0}
    assert find(family, "many_to_one_beneficiary", popular)["instance"].n_unique() == 1
    defaults = PATTERNS["many_to_one_beneficiary"].params
    for name in popular:  # varied sums, old payers, shared surname: each alone keeps it quiet
        one = {**popular, name: defaults[name]}
        assert find(family, "many_to_one_beneficiary", one).is_empty(), name


# ---------------------------------------------------------------- labour


def _payroll(
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


def test_payroll_recapture_found() -> None:
    hits = find(_payroll(recaptured=4), "payroll_recapture")
    check_shape(hits)
    assert roles(hits) == {
        "EMP": "employer",
        "W0": "worker",
        "W1": "worker",
        "W2": "worker",
        "W3": "worker",
        "BOSS": "recapturer",
    }
    ev = evidence(hits)
    assert ev["workers"] == 6 and ev["recapturing_workers"] == 4
    assert ev["employer"] == "EMP" and ev["recapturer"] == "BOSS"
    assert ev["share"] == pytest.approx(4 / 6, abs=1e-4) and ev["recaptured_fraction"] == 0.6
    assert set(hits["txn_ids"][0]) == {f"w{i}" for i in range(4)} | {f"k{i}" for i in range(4)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recaptured": 2},
        {"recaptured": 6, "delay_hours": 24 * 4},
        {"recaptured": 6, "common": False},
        {"recaptured": 6, "kind": "unknown"},
    ],
    ids=["few-workers", "too-late", "normal-rent", "no-kinds"],
)
def test_payroll_recapture_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(_payroll(**kwargs), "payroll_recapture").is_empty()


def _housed(sharing: int, same_party: bool = False) -> GraphContext:
    rows, accounts = [], [a("EMP", kind="business")]
    for i in range(7):
        rows.append(t(f"w{i}", i, "EMP", f"W{i}", 900, "ach"))
        address = " 1 Farm Road " if i < sharing else f"{i} Other Street"
        accounts.append(
            a(f"W{i}", party="P-same" if same_party else None, address=address, phone=f"555-{i}")
        )
    return context(rows, accounts)


def test_shared_address_workers_found() -> None:
    hits = find(_housed(sharing=5), "shared_address_workers")
    check_shape(hits)
    assert roles(hits) == {"EMP": "employer", **{f"W{i}": "worker" for i in range(5)}}
    ev = evidence(hits)
    assert ev["identifier"] == "address" and ev["value"] == "1 farm road"
    assert ev["payees"] == 7 and ev["sharing"] == 5 and ev["total_amount"] == 4500


def test_shared_address_workers_near_misses() -> None:
    assert find(_housed(sharing=4), "shared_address_workers").is_empty()
    assert find(_housed(sharing=7, same_party=True), "shared_address_workers").is_empty()


# ---------------------------------------------------------------- identity


def _ring(names: list[str | None]) -> GraphContext:
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


def test_shared_identifiers_found() -> None:
    hits = find(_ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"]), "shared_identifiers")
    check_shape(hits)
    assert set(hits["account_id"]) == {"I0", "I1", "I2", "I3"}
    assert set(hits["role"]) == {"member"}
    ev = evidence(hits)
    assert ev["n_parties"] == 4 and ev["n_surnames"] == 4
    assert ev["identifiers"] == ["address:9 elm st", "email:x@y.z", "phone:+1 555 0100"]
    assert ev["kinds"] == ["address", "email", "phone"] and ev["strong_identifiers"] == []


def test_shared_identifiers_near_misses() -> None:
    family = _ring(["Ann Smith", "Bo Smith", "Cy Smith", "Di Smith"])
    assert find(family, "shared_identifiers").is_empty()
    ring = _ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"])
    assert find(ring, "shared_identifiers", {"min_parties": 5}).is_empty()
    # every shared value is shared by 2 parties; a cap of 1 drops them all
    assert find(ring, "shared_identifiers", {"max_group": 1}).is_empty()


def test_shared_identifiers_without_names_uses_parties_only() -> None:
    hits = find(_ring([None, None, None, None]), "shared_identifiers")
    assert set(hits["account_id"]) == {"I0", "I1", "I2", "I3"}
    assert evidence(hits)["n_surnames"] is None


def test_shared_identifiers_counts_transaction_devices() -> None:
    accounts = [a(f"V{i}", name=f"N{i} Sur{i}") for i in range(4)]
    rows = [t(f"v{i}", i, f"V{i}", "SHOP", 10, "card", device_id="phone-1") for i in range(4)]
    hits = find(context(rows, accounts), "shared_identifiers")
    assert set(hits["account_id"]) == {"V0", "V1", "V2", "V3"}
    assert hits["txn_ids"][0].to_list() == ["v0", "v1", "v2", "v3"]


def _house(surnames: list[str], **shared: str) -> list[dict[str, Any]]:
    """People at one address; `shared` gives identifiers the first two of them also share."""
    return [
        {**a(f"H{i}", name=f"Sam {s}", address="12 Campus Rd"), **(shared if i < 2 else {})}
        for i, s in enumerate(surnames)
    ]


STUDENTS = ["Novak", "Okafor", "Reyes", "Ito", "Haddad"]


def test_shared_identifiers_ignores_flatmates() -> None:
    flat = context([], _house(STUDENTS))
    assert find(flat, "shared_identifiers").is_empty()
    assert set(find(flat, "shared_identifiers", {"min_kinds": 1})["account_id"]) == {
        f"H{i}" for i in range(5)
    }  # what the rule flagged before: five surnames at one address
    # a couple among them sharing a tablet is two people, not a ring of four
    couple = context([], _house(STUDENTS, device_id="tab-1"))
    assert find(couple, "shared_identifiers").is_empty()
    # a family of five sharing address and phone has one surname
    family = context([], _house(["Novak"] * 5, phone="+1 555 0177"))
    assert find(family, "shared_identifiers").is_empty()


def test_shared_identifiers_strong_value_alone() -> None:
    strangers = [a(f"S{i}", name=f"Kim {s}", phone="+1 555 0199") for i, s in enumerate(STUDENTS)]
    # S0 lives with flatmates and relatives: they are tied to the ring by the address only
    home = [
        a("F1", name="Lee Park", address="3 Oak St"),
        a("F2", name="Ray Diaz", address="3 Oak St"),
        {**strangers[0], "address": "3 Oak St"},
    ]
    hits = find(context([], strangers[1:4] + home), "shared_identifiers")
    assert set(hits["account_id"]) == {"S0", "S1", "S2", "S3"}
    ev = evidence(hits)
    assert ev["strong_identifiers"] == ["phone:+1 555 0199"] and ev["n_parties"] == 4
    # three strangers on one phone are fewer than min_parties, with nothing else shared
    assert find(context([], strangers[:3]), "shared_identifiers").is_empty()


def _openings(gap_days: float, same_party: bool = False) -> GraphContext:
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


def test_onboarding_burst_found() -> None:
    hits = find(_openings(gap_days=2), "onboarding_burst")
    check_shape(hits)
    assert hits["account_id"].to_list() == ["N0", "N1", "N2"]
    assert set(hits["instance"]) == {"onboarding_burst:device_id:tablet-9"}
    ev = evidence(hits)
    assert ev["n_accounts"] == 3 and ev["span_days"] == 4 and ev["n_parties"] == 3


def test_onboarding_burst_near_misses() -> None:
    assert find(_openings(gap_days=5), "onboarding_burst").is_empty()
    assert find(_openings(gap_days=2, same_party=True), "onboarding_burst").is_empty()


# ---------------------------------------------------------------- mules


def _mules(
    age_days: float, pairs: list[tuple[int, int]], amount: float = 900
) -> list[dict[str, Any]]:
    return [t(f"m{s}{r}", s * 3 + r, f"S{s}", f"R{r}", amount, "p2p") for s, r in pairs]


FULL = [(s, r) for s in range(3) for r in range(3)]


def test_mule_network_found() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    hits = find(context(_mules(30, FULL), young), "mule_network")
    check_shape(hits)
    assert roles(hits) == {
        **{f"S{i}": "sender" for i in range(3)},
        **{f"R{i}": "receiver" for i in range(3)},
    }
    ev = evidence(hits)
    assert ev["density"] == 1.0 and ev["n_edges"] == 9 and len(hits["txn_ids"][0]) == 9
    assert ev["n_senders"] == 3 and ev["n_receivers"] == 3


def test_mule_network_found_inside_a_loose_component() -> None:
    # A ring of young accounts (each pays the next two) hangs off R0: the component as a whole is
    # far from dense, so only its Louvain split reveals the 3x3 group (stretches of the ring,
    # young accounts passing money on to each other, may be reported too).
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    young += [a(f"Q{i}", opened_days=-10) for i in range(10)]
    ring = [
        t(f"q{i}{d}", 100 + i, f"Q{i}", f"Q{(i + d) % 10}", 50, "p2p")
        for i in range(10)
        for d in (1, 2)
    ]
    bridge = [t("b1", 130, "R0", "Q0", 50, "p2p"), t("b2", 131, "R0", "Q5", 50, "p2p")]
    hits = find(context(_mules(30, FULL) + ring + bridge, young), "mule_network")
    planted = {f"S{i}" for i in range(3)} | {f"R{i}" for i in range(3)}
    group = hits.filter(pl.col("instance") == hits.filter(pl.col("account_id") == "S0")["instance"])
    assert set(group["account_id"]) == planted
    assert evidence(group)["density"] == 1.0


def test_mule_network_min_amount() -> None:
    # Young friends splitting small bills are as dense as a mule ring but move next to nothing.
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    assert find(context(_mules(30, FULL, amount=60), young), "mule_network").is_empty()
    small = find(context(_mules(30, FULL, amount=60), young), "mule_network", {"min_amount": 500})
    assert set(small["account_id"]) == {f"{k}{i}" for k in "SR" for i in range(3)}
    rule = load_rule(RULES_DIR / "ml_mule_network.yaml")
    assert rule.values()["min_amount"] == 5000 and rule.params["min_amount"].max >= 1_000_000


def test_mule_network_near_misses() -> None:
    old = [a(f"{k}{i}", opened_days=-400) for k in "SR" for i in range(3)]
    assert find(context(_mules(400, FULL), old), "mule_network").is_empty()
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    sparse = [(0, 0), (1, 1), (2, 2), (0, 1)]
    assert find(context(_mules(30, sparse), young), "mule_network").is_empty()


def _cash(txn: str, hours: float, account: str, location: str = "ATM-1") -> dict[str, Any]:
    return t(txn, hours, account, "CASH", 200, "cash_withdrawal", location_id=location)


def _atm(
    minutes_apart: float = 3,
    visits: tuple[float, ...] = (10, 24 * 3 + 22),
    same_party: bool = False,
    cards: tuple[tuple[int, ...], ...] = ((0, 1, 2), (0, 1, 2)),
    crowd: list[dict[str, Any]] | None = None,
) -> GraphContext:
    """A controller withdrawing from the same three victims' cards, one after the other, on a
    morning and on a night three days later (visits: hours from T0; cards: used at each)."""
    rows = [
        _cash(f"atm{v}{i}", hour + i * minutes_apart / 60, f"C{card}")
        for v, (hour, used) in enumerate(zip(visits, cards, strict=True))
        for i, card in enumerate(used)
    ]
    rows.append(_cash("far", 10, "C9", "ATM-2"))
    accounts = [a(f"C{i}", party="P-one" if same_party else None) for i in (0, 1, 2, 3, 9)]
    return context(rows + (crowd or []), accounts)


def test_multi_card_atm_found() -> None:
    hits = find(_atm(), "multi_card_atm")
    check_shape(hits)
    assert hits["account_id"].to_list() == ["C0", "C1", "C2"]
    assert set(hits["instance"]) == {"multi_card_atm:atm00"}
    assert hits["txn_ids"][0].to_list() == [f"atm{v}{i}" for v in range(2) for i in range(3)]
    ev = evidence(hits)
    assert ev["location_id"] == "ATM-1" and ev["n_parties"] == 3 and ev["n_accounts"] == 3
    assert ev["n_occasions"] == 2 and ev["n_withdrawals"] == 6
    assert ev["longest_occasion_minutes"] == 6 and ev["total_amount"] == 1200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minutes_apart": 6},  # 12 minutes from first to last card
        {"visits": (10,), "cards": ((0, 1, 2),)},  # once only
        {"visits": (10, 10.5)},  # half an hour later is the same occasion
        {"same_party": True},  # one person's own cards
        {"cards": ((0, 1, 2), (0, 1, 3))},  # not the same set twice
    ],
    ids=["too-slow", "once", "same-occasion", "same-party", "other-set"],
)
def test_multi_card_atm_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(_atm(**kwargs), "multi_card_atm").is_empty()


def _queue(
    day: int, people: range, every_minutes: float, prefix: str = "Q"
) -> list[dict[str, Any]]:
    """One customer after another at ATM-1 from 9:00, `every_minutes` apart."""
    return [
        _cash(f"{prefix}{day}_{p}", 24 * day + 9 + i * every_minutes / 60, f"{prefix}{p}")
        for i, p in enumerate(people)
    ]


def test_multi_card_atm_ignores_a_busy_atm() -> None:
    # 40 strangers a morning, one every 2 minutes, other strangers each day: the old rule saw
    # one 80-minute burst a day; nobody comes back with the same people.
    busy = [r for d in range(3) for r in _queue(d, range(40 * d, 40 * d + 40), 2)]
    assert find(context(busy), "multi_card_atm").is_empty()
    assert (
        find(context(busy), "multi_card_atm", {"min_occasions": 1, "max_accounts": 100})[
            "instance"
        ].n_unique()
        >= 3
    )
    # the same 12 commuters every weekday morning within minutes: regulars, not one controller
    regulars = [r for d in range(5) for r in _queue(d, range(12), 0.8, "R")]
    assert find(context(regulars), "multi_card_atm").is_empty()
    assert (
        find(context(regulars), "multi_card_atm", {"max_accounts": 12})["instance"].n_unique() == 1
    )


def test_multi_card_atm_found_inside_a_crowd() -> None:
    # the controller's visits fall in the middle of each morning's queue of strangers
    crowd = [r for d in (0, 3) for r in _queue(d, range(40 * d, 40 * d + 30), 1)]
    hits = find(_atm(visits=(9.2, 24 * 3 + 9.2), crowd=crowd), "multi_card_atm")
    assert set(hits["account_id"]) == {"C0", "C1", "C2"}
    assert evidence(hits)["n_withdrawals"] == 6


# ---------------------------------------------------------------- analysis


def test_pagerank_highest_for_the_hub_and_edges_aggregated() -> None:
    rows = [t(f"p{i}{j}", i + j, f"V{i}", "HUB", 100, "p2p") for i in range(5) for j in range(2)]
    rows += [t("x1", 50, "V0", "V1", 10), t("x2", 51, "HUB", "V2", 20)]
    tx = context(rows).transactions
    g = analysis.money_graph(tx)
    assert g["V3"]["HUB"]["count"] == 2 and g["V3"]["HUB"]["sum"] == 200
    pr = analysis.pagerank(g)
    assert max(pr, key=lambda n: pr[n]) == "HUB"
    small = analysis.money_graph(tx, ["V0", "V1", "HUB"])
    assert set(small.edges) == {("V0", "V1"), ("V0", "HUB"), ("V1", "HUB")}


def test_louvain_separates_two_cliques_and_betweenness_finds_the_bridge() -> None:
    rows = [
        t(f"{c}{i}{j}", 1, f"{c}{i}", f"{c}{j}", 100, "p2p")
        for c in "KL"
        for i in range(4)
        for j in range(4)
        if i != j
    ]
    rows.append(t("bridge", 2, "K0", "L0", 10))
    g = analysis.money_graph(context(rows).transactions)
    parts = analysis.communities(g)
    assert sorted(sorted(p) for p in parts) == [
        [f"K{i}" for i in range(4)],
        [f"L{i}" for i in range(4)],
    ]
    table = analysis.node_table(g)
    top = table.sort("betweenness", descending=True)["account_id"].head(2).to_list()
    assert sorted(top) == ["K0", "L0"]
    assert table.filter(pl.col("account_id").str.starts_with("K"))["community"].n_unique() == 1


def test_louvain_does_not_depend_on_insertion_order() -> None:
    # Plain networkx Louvain, even seeded, splits a graph differently when its nodes and edges
    # were inserted in another order (e.g. from an unsorted polars group-by): runs of the same
    # data then gave different mule rings and cases from process to process.
    base = nx.gnp_random_graph(40, 0.1, seed=7)
    edges = sorted((f"A{u:02d}", f"A{v:02d}") for u, v in base.edges())
    splits = set()
    for seed in range(6):
        shuffled = edges[:]
        random.Random(seed).shuffle(shuffled)
        g = nx.Graph([(v, u) if seed % 2 else (u, v) for u, v in shuffled])
        splits.add(tuple(sorted(tuple(sorted(c)) for c in analysis.louvain(g, seed=0))))
        assert analysis.communities(g) == analysis.communities(nx.Graph(edges))
    assert len(splits) == 1


def test_mule_network_in_a_loose_component_does_not_depend_on_row_order() -> None:
    # Young accounts paying each other at random: the component is loose, so it is split with
    # Louvain, whose result must not depend on the order of the transactions.
    rng = random.Random(5)
    names = [f"Y{i:02d}" for i in range(40)]
    young = [a(n, opened_days=-10) for n in names]
    rows = [t(f"y{i}", i, *rng.sample(names, 2), 50 + i, "p2p") for i in range(160)]
    rows += _mules(30, FULL)
    young += [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    ctx = context(rows, young)
    first = find(ctx, "mule_network")
    assert not first.is_empty()
    for seed in range(4):
        shuffled = GraphContext(
            ctx.transactions.sample(fraction=1, shuffle=True, seed=seed),
            ctx.accounts.sample(fraction=1, shuffle=True, seed=seed + 10),
            pl.DataFrame(),
            ctx.signals,
        )
        assert_frame_equal(find(shuffled, "mule_network"), first)


# ---------------------------------------------------------------- near misses are near


def _late_cycle() -> GraphContext:
    return context([*CYCLE[:2], {**CYCLE[2], "ts": T0 + timedelta(days=11)}])


def _slow_chain() -> GraphContext:
    return context([*CHAIN[:2], {**CHAIN[2], "ts": T0 + timedelta(hours=70)}])


def _merchant_in_the_middle() -> GraphContext:
    busy = [t(f"m{i}", 50 + i, f"shop{i}", "X2", 20, "card") for i in range(35)]
    return context(_scatter() + busy)


@pytest.mark.parametrize(
    ("name", "build", "relaxed"),
    [
        ("cycle", _late_cycle, {"window_days": 12}),
        ("layering_chain", _slow_chain, {"max_hop_hours": 72}),
        ("scatter_gather", _merchant_in_the_middle, {"max_intermediary_degree": 40}),
        (
            "controller_hub",
            lambda: context(_hub_rows(10), signals=_signals(["S0", "S1", "S2"])),
            {"min_share": 0.05},
        ),
        ("payroll_recapture", lambda: _payroll(6, delay_hours=96), {"max_days": 5}),
        ("shared_address_workers", lambda: _housed(sharing=4), {"min_sharing": 4}),
        (
            "shared_identifiers",
            lambda: _ring(["Ann Smith", "Bo Smith", "Cy Smith", "Di Smith"]),
            {"min_surnames": 1},
        ),
        ("onboarding_burst", lambda: _openings(gap_days=5), {"window_days": 11}),
        ("multi_card_atm", lambda: _atm(minutes_apart=6), {"window_minutes": 12}),
        (
            "many_to_one_beneficiary",
            lambda: _many_to_one(spacing_hours=24),
            {"window_days": 8},
        ),
        ("funnel", lambda: _funnel(days_apart=3), {"window_days": 10}),
        ("party_structuring", lambda: _structurer(days_apart=4), {"window_days": 9}),
        ("fan_out", lambda: _front_company(cashed=0.7), {"min_cash_out": 0.6}),
    ],
)
def test_a_near_miss_fires_once_its_parameter_is_relaxed(
    name: str, build: Any, relaxed: dict[str, float]
) -> None:
    ctx = build()
    assert find(ctx, name).is_empty()
    assert find(ctx, name, relaxed)["instance"].n_unique() == 1


# ---------------------------------------------------------------- determinism


def _prefixed(i: int, ctx: GraphContext) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The context's tables with every id prefixed, so several planted sets can share one run."""
    pre = pl.lit(f"{i}_")
    tx = ctx.transactions.with_columns(
        (pre + pl.col(c)).alias(c) for c in ("txn_id", "src_account", "dst_account")
    )
    acc = ctx.accounts.with_columns(
        (pre + pl.col(c)).alias(c) for c in ("account_id", "party_id", "address")
    )
    sig = ctx.signals.with_columns((pre + pl.col("account_id")).alias("account_id"))
    return tx, acc, sig


def test_hits_do_not_depend_on_row_order() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    planted = [
        context(CYCLE),
        context(CHAIN),
        context(_scatter()),
        _many_to_one(),
        context(_hub_rows(80), signals=_signals(["S0", "S1", "S2"])),
        _payroll(4),
        _housed(5),
        _ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"]),
        _openings(2),
        _atm(),
        context(_mules(30, FULL), young),
        context(_fan_rows()),
        context(_fan_rows(inbound=False)),
        context(_small_intl(), signals=_cse_signal("SENDER")),
        _sharers(2, STUDENTS[:4]),
        _funnel(),
        _structurer(),
    ]
    parts = [_prefixed(i, c) for i, c in enumerate(planted)]
    tx, acc, sig = (pl.concat([p[j] for p in parts]) for j in range(3))
    ctx = GraphContext(tx, acc, pl.DataFrame(), sig)
    shuffled = GraphContext(
        tx.sample(fraction=1, shuffle=True, seed=3),
        acc.sample(fraction=1, shuffle=True, seed=4),
        pl.DataFrame(),
        sig,
    )
    for name in PATTERNS:
        hits = find(ctx, name)
        assert not hits.is_empty(), name
        assert_frame_equal(
            hits.sort("instance", "account_id"), find(shuffled, name).sort("instance", "account_id")
        )


# ---------------------------------------------------------------- fan-in / fan-out


def _fan_rows(
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


@pytest.mark.parametrize(
    "name, inbound, spoke_role", [("fan_in", True, "sender"), ("fan_out", False, "receiver")]
)
def test_fan_names_the_hub_and_every_spoke(name: str, inbound: bool, spoke_role: str) -> None:
    hits = find(context(_fan_rows(inbound=inbound)), name)
    check_shape(hits)
    assert roles(hits) == {"H": "hub", **{f"S{i}": spoke_role for i in range(7)}}
    ev = evidence(hits)
    assert (ev["n_counterparties"], ev["total_amount"], ev["hub"]) == (7, 8400.0, "H")
    assert ev["flow_through"] == (0.9 if inbound else 1.0)
    assert hits["txn_ids"][0].to_list() == [f"F{i}" for i in range(7)]


@pytest.mark.parametrize("name, inbound", [("fan_in", True), ("fan_out", False)])
def test_fan_near_misses(name: str, inbound: bool) -> None:
    assert find(context(_fan_rows(5, inbound=inbound)), name).is_empty()  # too few
    assert find(context(_fan_rows(inbound=inbound, channel="card")), name).is_empty()  # a shop
    assert find(context(_fan_rows(inbound=inbound, amount=80)), name).is_empty()  # small sums
    business = context(_fan_rows(inbound=inbound), [a("H", kind="business")])
    assert find(business, name).is_empty()  # payroll / a company's receipts
    slow = context(_fan_rows(inbound=inbound, days_apart=1))
    assert find(slow, name).is_empty()  # spread over a week
    assert not find(slow, name, {"window_days": 8}).is_empty()
    # The landlord look-alike: rent from many tenants that stays (or a payout from savings).
    kept = context(_fan_rows(inbound=inbound, flow=False))
    assert find(kept, name).is_empty()
    assert not find(kept, name, {"min_flow_through": 0.0}).is_empty()


def test_business_fan_in_counts_only_when_cashed_out() -> None:
    """A front company collecting transfers and withdrawing them in cash is a fan-in; a
    company paying its supplier (the flow in `_fan_rows`) is not."""
    rows = _fan_rows(flow=False) + [
        t("CASH1", 30, "H", "CASH:BR1", 9000, "cash_withdrawal"),
    ]
    hits = find(context(rows, [a("H", kind="business")]), "fan_in")
    assert roles(hits)["H"] == "hub"
    assert evidence(hits)["flow_through"] == 1.0  # 9,000 withdrawn of 8,400 collected
    assert find(context(rows, [a("H", kind="business")]), "fan_in", {"business_hubs": 0}).is_empty()


# ---------------------------------------------------------------- corridors


def _cse_signal(account: str, score: float = 1.0, typology: str = "cse_small_intl") -> pl.DataFrame:
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


def _small_intl() -> list[dict[str, Any]]:
    xb = {"src_country": "US"}
    rows = [
        t(f"c{i}", i * 20, "SENDER", f"FAC{i % 2}", 40 + i, "mobile_money", dst_country="PH", **xb)
        for i in range(8)
    ]
    rows.append(t("once", 5, "SENDER", "AUNT", 60, "wire", dst_country="PH", **xb))
    rows.append(t("big", 6, "SENDER", "FAC0", 900, "wire", dst_country="PH", **xb))
    rows.append(t("home", 7, "SENDER", "FRIEND", 50, "p2p", dst_country="US", **xb))
    return rows


def test_corridor_beneficiaries_found() -> None:
    ctx = context(_small_intl(), signals=_cse_signal("SENDER"))
    hits = find(ctx, "corridor_beneficiaries")
    check_shape(hits)
    # A facilitator is paid per session: one paid once (AUNT) is named too.
    assert roles(hits) == {
        "SENDER": "sender",
        "FAC0": "beneficiary",
        "FAC1": "beneficiary",
        "AUNT": "beneficiary",
    }
    ev = evidence(hits)
    assert ev["n_beneficiaries"] == 3 and ev["n_transfers"] == 9 and ev["countries"] == "PH"
    assert "big" not in hits["txn_ids"][0].to_list()  # not a small payment
    assert "home" not in hits["txn_ids"][0].to_list()  # not abroad
    twice = find(ctx, "corridor_beneficiaries", {"min_payments": 2})
    assert roles(twice) == {"SENDER": "sender", "FAC0": "beneficiary", "FAC1": "beneficiary"}


def test_corridor_beneficiaries_near_misses() -> None:
    assert find(context(_small_intl()), "corridor_beneficiaries").is_empty()  # nobody flagged
    weak = _cse_signal("SENDER", score=0.5)  # e.g. a remittance-corridor rule listing the typology
    assert find(context(_small_intl(), signals=weak), "corridor_beneficiaries").is_empty()
    other = _cse_signal("SENDER", typology="fan_in")
    assert find(context(_small_intl(), signals=other), "corridor_beneficiaries").is_empty()


# ---------------------------------------------------------------- common payee


def _sharers(per_payer: int, surnames: list[str], payee: str = "BEN") -> GraphContext:
    people = [a(f"W{i}", name=f"Ana {s}", address="9 Mill Rd") for i, s in enumerate(surnames)]
    rows = [
        t(f"w{i}{k}", 24 * (i + 7 * k), f"W{i}", payee, 250, "p2p")
        for i in range(len(surnames))
        for k in range(per_payer)
    ]
    return context(rows, people + [a(payee, name="Bo Cruz")])


def test_common_payee_found() -> None:
    hits = find(_sharers(2, STUDENTS[:4]), "common_payee")
    check_shape(hits)
    assert roles(hits) == {**{f"W{i}": "payer" for i in range(4)}, "BEN": "payee"}
    ev = evidence(hits)
    assert ev["n_payers"] == 4 and ev["n_transfers"] == 8
    assert ev["shared_identifier"] == "address:9 mill rd" or ev["shared_identifier"].startswith(
        "address:"
    )


def test_common_payee_near_misses() -> None:
    # flatmates paying their landlord once a month
    assert find(_sharers(1, STUDENTS[:4]), "common_payee").is_empty()
    # a family at one address paying a relative
    assert find(_sharers(2, ["Novak"] * 4), "common_payee").is_empty()
    # two sharers are not a group
    assert find(_sharers(3, STUDENTS[:2]), "common_payee").is_empty()
    # the payee lives with them (the head tenant collecting shares)
    people = [a(f"W{i}", name=f"Ana {s}", address="9 Mill Rd") for i, s in enumerate(STUDENTS)]
    rows = [
        t(f"w{i}{k}", 24 * (i + 7 * k), f"W{i}", "W4", 250, "p2p")
        for i in range(4)
        for k in range(2)
    ]
    assert find(context(rows, people), "common_payee").is_empty()


# ---------------------------------------------------------------- busiest windows


def test_busiest_windows_equals_a_rolling_distinct_count() -> None:
    """The linear running count gives the rolling n_unique's best window (ties, window edges and
    items seen twice included), and its earliest end on ties."""
    rng = random.Random(7)
    for _ in range(200):
        hours = [0, 12, 24, 36, 48, 60, 72]
        rows = [
            (
                f"h{rng.randint(0, 3)}",
                f"s{rng.randint(0, 12)}",
                T0
                + timedelta(hours=rng.choice(hours) if rng.random() < 0.5 else rng.random() * 90),
            )
            for _ in range(rng.randint(1, 60))
        ]
        legs = pl.DataFrame(rows, schema=["hub", "spoke", "ts"], orient="row")
        window, k = timedelta(days=rng.choice([0.5, 1, 1.5, 2])), rng.randint(1, 6)
        expected = (
            legs.sort("hub", "ts")
            .rolling(index_column="ts", period=window, group_by="hub")
            .agg(pl.col("spoke").n_unique().alias("n"))
            .filter(pl.col("n") >= k)
            .sort(["hub", "n", "ts"], descending=[False, True, False])
            .unique("hub", keep="first", maintain_order=True)
            .select("hub", pl.col("ts").alias("anchor"))
        )
        got = busiest_windows(legs, "hub", "spoke", window, k)
        assert_frame_equal(got.sort("hub"), expected.sort("hub"))


# ---------------------------------------------------------------- fan ends and front companies


def test_fan_names_the_funder_and_beneficiary_abroad() -> None:
    """The account abroad that funded a fan-out (or took a fan-in's collection) is named; a
    domestic one (a victim, an employer, a landlord) is not."""
    abroad = {"src_country": "BZ", "dst_country": "US"}
    out_rows = _fan_rows(inbound=False, flow=False) + [t("IN", -2, "ORIGIN", "H", 8400, **abroad)]
    hits = find(context(out_rows), "fan_out")
    check_shape(hits)
    assert roles(hits)["ORIGIN"] == "funder"
    assert "IN" in hits["txn_ids"][0].to_list()
    assert roles(find(context(_fan_rows(inbound=False)), "fan_out")).get("BOSS") is None
    tiny = out_rows + [t("IN2", -3, "OTHER", "H", 500, **abroad)]
    assert "OTHER" not in roles(find(context(tiny), "fan_out"))  # under min_source_share

    last = _fan_rows()[-2]["ts"]
    away = {"src_country": "US", "dst_country": "MX"}
    in_rows = _fan_rows(flow=False) + [
        t("OUT", 0, "H", "CONTROLLER", 8000, **away) | {"ts": last + timedelta(hours=20)}
    ]
    hits = find(context(in_rows), "fan_in")
    assert roles(hits)["CONTROLLER"] == "beneficiary"
    assert roles(find(context(_fan_rows()), "fan_in")).get("BOSS") is None


def _front_company(
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


def test_business_fan_out_counts_receivers_who_cash_out() -> None:
    """A front company placing cash and paying mules who withdraw it at once is a fan-out; a
    business paying wages (the receivers keep the money) is not, whatever funded it."""
    hits = find(_front_company(), "fan_out")
    check_shape(hits)
    assert roles(hits) == {"H": "hub", **{f"S{i}": "receiver" for i in range(7)}}
    assert evidence(hits)["flow_through"] == 1.0
    assert find(_front_company(cashed=0.1), "fan_out").is_empty()  # wages, kept
    assert find(_front_company(placed=False), "fan_out").is_empty()  # paid from the till
    assert find(_front_company(amount=300), "fan_out").is_empty()  # under min_business_amount
    assert not find(_front_company(amount=300), "fan_out", {"min_business_amount": 200}).is_empty()
    assert find(_front_company(), "fan_out", {"business_hubs": 0}).is_empty()
    # an individual hub's small payouts count (mules are paid a few hundred each)
    assert not find(context(_fan_rows(inbound=False, amount=300)), "fan_out").is_empty()


def test_mule_network_names_its_ends_abroad() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    abroad = {"src_country": "KY", "dst_country": "US"}
    away = {"src_country": "US", "dst_country": "MX"}
    rows = _mules(30, FULL) + [
        t("fund", -5, "OFFSHORE", "S0", 3000, **abroad),
        t("late", -200, "OLD", "S1", 3000, **abroad),  # long before: not this ring's money
        t("sink", 20, "R0", "SINK", 2500, **away),
        t("rent", 21, "R1", "LANDLORD", 2500),  # domestic: left out
    ]
    hits = find(context(rows, young), "mule_network")
    check_shape(hits)
    got = roles(hits)
    assert got["OFFSHORE"] == "funder" and got["SINK"] == "beneficiary"
    assert {"OLD", "LANDLORD"}.isdisjoint(got)
    assert {"fund", "sink"} <= set(hits["txn_ids"][0].to_list())


# ---------------------------------------------------------------- funnel accounts


def _funnel(
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


def test_funnel_names_the_account_and_its_beneficiary() -> None:
    hits = find(_funnel(), "funnel")
    check_shape(hits)
    assert roles(hits) == {"F": "funnel", "BEN": "beneficiary"}  # PAL took under a tenth
    ev = evidence(hits)
    assert (ev["n_deposits"], ev["n_locations"], ev["cash_amount"]) == (4, 4, 10000.0)
    assert ev["flow_through"] == 0.95 and ev["funnel"] == "F"
    assert hits["txn_ids"][0].to_list() == ["D0", "D1", "D2", "D3", "WIRE", "TIP"]


def test_funnel_near_misses() -> None:
    assert find(_funnel(locations=2), "funnel").is_empty()  # one or two branches
    assert find(_funnel(kept=True), "funnel").is_empty()  # the cash stays: savings
    assert find(_funnel(kind="business"), "funnel").is_empty()  # a shop's takings
    assert not find(_funnel(kind="business"), "funnel", {"business_accounts": 1}).is_empty()
    assert find(_funnel(days_apart=3), "funnel").is_empty()  # over nine days
    bare = _funnel()
    bare.transactions = bare.transactions.with_columns(pl.lit(None, pl.String).alias("location_id"))
    assert find(bare, "funnel").is_empty()  # no locations in the data


def test_funnel_window_rolls_across_calendar_weeks() -> None:
    """Deposits on days 5 to 8 fall into two tumbling weeks (two each), but into one rolling
    window: the funnel is found whole."""
    ctx = _funnel(days_apart=1)
    shifted = ctx.transactions.with_columns(pl.col("ts") + timedelta(days=5))
    hits = find(GraphContext(shifted, ctx.accounts, pl.DataFrame(), ctx.signals), "funnel")
    assert evidence(hits)["n_deposits"] == 4


# ---------------------------------------------------------------- structuring over accounts


def _structurer(
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


def test_party_structuring_found_over_two_accounts() -> None:
    hits = find(_structurer(), "party_structuring")
    check_shape(hits)
    assert roles(hits) == {"A0": "depositor", "A1": "depositor"}
    ev = evidence(hits)
    assert (ev["n_deposits"], ev["n_accounts"], ev["total_amount"]) == (4, 2, 38000.0)
    assert ev["party"] == "P1" and ev["max_amount"] == 9500.0


def test_party_structuring_near_misses() -> None:
    assert find(_structurer(same_party=False), "party_structuring").is_empty()  # two people
    assert find(_structurer(amount=7000), "party_structuring").is_empty()  # not near 10,000
    assert find(_structurer(amount=10_000), "party_structuring").is_empty()  # reported
    assert find(_structurer(days_apart=4), "party_structuring").is_empty()  # over 12 days
    one = _structurer(same_party=False)
    solo = find(one, "party_structuring", {"min_accounts": 1, "min_deposits": 2})
    assert set(solo["instance"].unique()) and set(solo["account_id"]) == {"A0", "A1"}

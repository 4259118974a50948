"""The party view in rules and patterns: one person's accounts at several banks are one node.

Each case is a small hand-made frame whose accounts sit at different banks: only the party view
(resolved party ids) finds it, the account patterns and the same frame without party ids do not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from flows87.pipeline.graph.patterns import PATTERNS, GraphContext, find
from flows87.pipeline.rules.engine import graph_signals
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.pipeline.rules.loader import RULES_DIR, load_rule
from flows87.schema import conform

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def txn(
    i: str, hours: float, src: str, dst: str, amount: float, channel: str = "wire", **kw: Any
) -> dict[str, Any]:
    return {
        "txn_id": i,
        "ts": T0 + timedelta(hours=hours),
        "src_account": src,
        "dst_account": dst,
        "amount": amount,
        "currency": "USD",
        "amount_base": amount,
        "channel": channel,
        **kw,
    }


def acct(account_id: str, party: str | None, bank: str, kind: str = "individual") -> dict[str, Any]:
    return {
        "account_id": account_id,
        "party_id": party,
        "bank_id": bank,
        "kind": kind,
        "opened_at": T0 - timedelta(days=400),
        "country": "US",
    }


def ctx_of(
    rows: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    flagged: Sequence[str] = (),
    resolved: bool = True,
) -> GraphContext:
    """The context; without `resolved` every account is its own party (no party ids)."""
    known = {r["account_id"] for r in accounts}
    seen = {r["src_account"] for r in rows} | {r["dst_account"] for r in rows}
    accounts = accounts + [acct(x, None, "009") for x in sorted(seen - known)]
    if not resolved:
        accounts = [{**r, "party_id": None} for r in accounts]
    tx = conform(pl.DataFrame(rows, infer_schema_length=None), "transactions").collect()
    acc = conform(pl.DataFrame(accounts, infer_schema_length=None), "accounts").collect()
    sig = pl.DataFrame(
        [
            {
                "source": "rule",
                "signal_id": "ht_sweep_to_controller",
                "account_id": x,
                "txn_ids": [],
                "score": 0.75,
                "family": "behaviour",
                "typologies": ["sex_trafficking"],
                "window_start": T0,
                "window_end": T0 + timedelta(days=7),
                "evidence": "{}",
                "summary": "s",
            }
            for x in flagged
        ],
        schema=SIGNAL_SCHEMA,
    )
    return GraphContext(tx, acc, pl.DataFrame(), sig)


def roles(hits: pl.DataFrame) -> dict[str, str]:
    return dict(zip(hits["account_id"], hits["role"], strict=True))


def evidence(hits: pl.DataFrame) -> dict[str, Any]:
    return json.loads(hits["evidence"][0])


# -- funnel spread over banks -------------------------------------------------------------------


def spread_funnel(
    banks: tuple[str, str] = ("001", "002"), kept: bool = False, own_transfer: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Six cash deposits a day apart into one person's accounts at two banks, three each at two
    branches (under the account pattern's three places; four together); wired on the day
    after (unless `kept`), or only moved to the person's third account (`own_transfer`)."""
    places = ["BR0", "BR2", "BR0", "BR2", "BR1", "BR3"]  # F0 at BR0, BR1; F1 at BR2, BR3
    rows = [
        txn(f"D{i}", 24 * i, f"CASH:{p}", f"F{i % 2}", 2000, "cash_deposit", location_id=p)
        for i, p in enumerate(places)
    ]
    to = "F2" if own_transfer else "BEN"
    if not kept:
        rows += [txn(f"W{i}", 24 * 5 + 20 + i, f"F{i}", to, 5600) for i in range(2)]
    accounts = [
        acct("F0", "party-p", banks[0]),
        acct("F1", "party-p", banks[1]),
        acct("F2", "party-p", banks[1]),
    ]
    return rows, accounts


def test_party_funnel_found_only_with_party_ids() -> None:
    rows, accounts = spread_funnel()
    ctx = ctx_of(rows, accounts)
    hits = find(ctx, "party_funnel")
    assert roles(hits) == {"F0": "funnel", "F1": "funnel", "BEN": "beneficiary"}
    ev = evidence(hits)
    assert (ev["n_deposits"], ev["n_locations"], ev["n_accounts"], ev["n_banks"]) == (6, 4, 2, 2)
    assert ev["banks"] == ["001", "002"] and ev["party"] == "party-p"
    assert (ev["cash_amount"], ev["out_amount"], ev["flow_through"]) == (12000.0, 11200.0, 0.9333)
    # the account pattern sees two places per account, under its three
    assert find(ctx, "funnel").is_empty()
    # the same frame without resolved parties: nothing
    assert find(ctx_of(rows, accounts, resolved=False), "party_funnel").is_empty()


def test_party_funnel_counts_cash_the_holder_pays_in_as_inflow() -> None:
    """goAML reports name the account holder as the depositor: the reader makes a walk-in
    pseudo-account for them, which entity resolution gives the holder's party. Their cash is
    still money coming in (before, every deposit read as a transfer between the party's own
    accounts, inflow was empty and the funnel was never found on goAML data)."""
    rows, accounts = spread_funnel()
    rows = [
        {**r, "src_account": "person:P1"} if r["channel"] == "cash_deposit" else r for r in rows
    ]
    accounts = [*accounts, acct("person:P1", "party-p", "")]
    hits = find(ctx_of(rows, accounts), "party_funnel")
    assert roles(hits) == {"F0": "funnel", "F1": "funnel", "BEN": "beneficiary"}
    assert evidence(hits)["flow_through"] == 0.9333


def test_party_funnel_near_misses() -> None:
    one_bank = ctx_of(*spread_funnel(banks=("001", "001")))
    assert find(one_bank, "party_funnel").is_empty()  # one bank: the bank sees it itself
    assert not find(one_bank, "party_funnel", {"min_banks": 1}).is_empty()
    assert find(ctx_of(*spread_funnel(kept=True)), "party_funnel").is_empty()  # money stays
    # moving the cash to one's own third account is not moving it on
    assert find(ctx_of(*spread_funnel(own_transfer=True)), "party_funnel").is_empty()


# -- controller paid at several banks -----------------------------------------------------------


def spread_controller(
    victims_party: bool = False, payments: int = 2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Three flagged accounts, each sweeping `payments` times to one person's account at its own
    bank (one flagged sender per controller account: under controller_hub's three)."""
    rows = [
        txn(f"S{i}{k}", 24 * k + i, f"V{i}", f"C{i}", 400)
        for i in range(3)
        for k in range(payments)
    ]
    accounts = [acct(f"C{i}", "party-c", f"00{i + 1}") for i in range(3)]
    accounts += [
        acct(f"V{i}", "party-v" if victims_party else f"party-v{i}", "005") for i in range(3)
    ]
    return rows, accounts, ["V0", "V1", "V2"]


def test_party_controller_found_only_with_party_ids() -> None:
    rows, accounts, flagged = spread_controller()
    ctx = ctx_of(rows, accounts, flagged)
    hits = find(ctx, "party_controller")
    assert roles(hits) == {f"C{i}": "controller" for i in range(3)} | {
        f"V{i}": "sender" for i in range(3)
    }
    ev = evidence(hits)
    assert (ev["flagged_senders"], ev["controller_accounts"], ev["n_banks"]) == (3, 3, 3)
    assert (ev["n_transfers"], ev["total_amount"], ev["payments_per_sender"]) == (6, 2400.0, 2.0)
    assert ev["sender_signals"] == ["ht_sweep_to_controller"] and ev["party"] == "party-c"
    assert find(ctx, "controller_hub").is_empty()  # one flagged sender per account
    assert find(ctx_of(rows, accounts, flagged, resolved=False), "party_controller").is_empty()


def test_party_controller_counts_senders_as_people() -> None:
    rows, accounts, flagged = spread_controller(victims_party=True)
    ctx = ctx_of(rows, accounts, flagged)
    assert find(ctx, "party_controller").is_empty()  # one victim's three accounts: one sender
    assert find(ctx_of(*spread_controller(payments=1)), "party_controller").is_empty()  # rent


# -- the rules --------------------------------------------------------------------------------


def test_rules_declare_the_patterns_and_render_their_summaries() -> None:
    cases = {
        "fa_funnel_party": ctx_of(*spread_funnel()),
        "ht_controller_party": ctx_of(*spread_controller()),
    }
    for rule_id, ctx in cases.items():
        rule = load_rule(RULES_DIR / f"{rule_id}.yaml")
        assert rule.scope == "graph" and rule.pattern is not None
        declared = {name: p.default for name, p in rule.params.items()}
        assert declared == PATTERNS[rule.pattern].params
        sig = graph_signals(rule, find(ctx, rule.pattern, declared))
        assert sig.height >= 3 and set(sig["signal_id"]) == {rule_id}
        assert all("{" not in s and "banks" in s for s in sig["summary"]), sig["summary"][0]


# -- cost ---------------------------------------------------------------------------------------


def _crowd(n: int) -> GraphContext:
    """n people with two accounts at two banks each, cash at rotating branches into both and
    transfers on to each other's accounts: every party passes the count filters, so the cost is
    the windows' and the joins'."""
    rows, accounts = [], []
    for p in range(n):
        a0, a1 = f"A{p}x", f"A{p}y"
        accounts += [acct(a0, f"party-{p}", "001"), acct(a1, f"party-{p}", "002")]
        for k in range(4):
            rows.append(
                txn(
                    f"D{p}-{k}",
                    6 * k + p % 24,
                    f"CASH:B{k}",
                    (a0, a1)[k % 2],
                    2000,
                    "cash_deposit",
                    location_id=f"B{(p + k) % 50}",
                )
            )
        rows.append(txn(f"W{p}", 30 + p % 24, a0, f"A{(p + 1) % n}y", 500))
    flagged = [f"A{p}x" for p in range(0, n, 3)]
    return ctx_of(rows, accounts, flagged)


def _seconds(ctx: GraphContext, name: str) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        find(ctx, name)
        best = min(best, time.perf_counter() - t0)
    return best


def test_cost_grows_linearly() -> None:
    """8x the people cost well under 8x squared; quadratic joins would take ~64x."""
    small, large = _crowd(1_000), _crowd(8_000)
    for name in ("party_funnel", "party_controller"):
        ratio = _seconds(large, name) / max(_seconds(small, name), 1e-3)
        assert ratio < 24, (name, ratio)

"""Graph patterns on the shapes real data has and our generator lacks: hubs of thousands,
dense repeated transfers, a long pass-through chain, self-transfers, crowds at one ATM, one
address shared by thousands, and the whole set again with day-resolution timestamps, identical
amounts and every account opened inside the period.

No timings: the assertions are structural. Every pattern's output stays within a constant
factor of its input and lists each account once per instance, at most MAX_MEMBERS_PER_ROLE
per role; the as-of pairing (`Following`) never makes more than `limit` candidates a row, path
patterns respect their candidate budget, and the linear window counts (`covering`) equal the
rolling aggregations they replace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from flows87.pipeline.graph import common, layering
from flows87.pipeline.graph.common import MAX_MEMBERS_PER_ROLE, Following, covering, fair_cap
from flows87.pipeline.graph.flows import MAX_NEXT_PER_PATH
from flows87.pipeline.graph.patterns import HIT_SCHEMA, PATTERNS, GraphContext, find
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.schema import conform

T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
HUB = 3_000  # payers of a hub, payees of a payer, workers of an employer, sharers of an address
DENSE, PARTNERS, DENSE_TXNS = 300, 10, 30_000
CHAIN = 2_000
SELF = 3_000


def _ts(hours: np.ndarray) -> pl.Series:
    us = (hours * HOUR_US).astype(np.int64) + int(T0.timestamp() * 1_000_000)
    return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _txns(prefix: str, src: Any, dst: Any, hours: Any, amount: Any, **cols: Any) -> pl.DataFrame:
    hours = np.asarray(hours, dtype=float)
    n = len(hours)
    frame = pl.DataFrame(
        {
            "txn_id": [f"{prefix}{i:06d}" for i in range(n)],
            "ts": _ts(hours),
            "src_account": np.broadcast_to(np.asarray(src, dtype=object), n).tolist(),
            "dst_account": np.broadcast_to(np.asarray(dst, dtype=object), n).tolist(),
            "amount": np.broadcast_to(np.asarray(amount, dtype=float), n),
        }
    ).with_columns(pl.col("amount").alias("amount_base"), pl.lit("USD").alias("currency"))
    extra = {k: np.broadcast_to(np.asarray(v, dtype=object), n).tolist() for k, v in cols.items()}
    frame = frame.with_columns(pl.Series(k, v, dtype=pl.String) for k, v in extra.items())
    if "channel" not in cols:
        frame = frame.with_columns(pl.lit("p2p").alias("channel"))
    return conform(frame, "transactions").collect()


def _accounts(ids: list[str], **cols: Any) -> pl.DataFrame:
    n = len(ids)
    base: dict[str, Any] = {
        "account_id": ids,
        "party_id": [f"P-{x}" for x in ids],
        "bank_id": ["001"] * n,
        "kind": ["individual"] * n,
        "opened_at": [T0 - timedelta(days=800)] * n,
        "country": ["US"] * n,
        "name": [f"Pat {x}son" for x in ids],
    }
    base.update({k: (v if isinstance(v, list) else [v] * n) for k, v in cols.items()})
    return conform(pl.DataFrame(base), "accounts").collect()


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def _shapes() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Every shape at once (they share no accounts but the background's): transactions,
    accounts, signals flagging the hubs' payers."""
    rng = np.random.default_rng(87)
    tx: list[pl.DataFrame] = []
    acc: list[pl.DataFrame] = []
    # a random background
    bg = _names("B", 400)
    n = 4_000
    tx.append(
        _txns(
            "bg",
            rng.choice(bg, n),
            rng.choice(bg, n),
            rng.uniform(0, 720, n),
            rng.lognormal(5, 1, n).round(2),
            channel=rng.choice(["p2p", "wire", "card", "ach"], n),
        )
    )
    acc.append(_accounts(bg))
    # a hub paid once by each of HUB accounts within two days, passing it all on abroad
    payers = _names("HP", HUB)
    tx.append(_txns("hi", payers, "HUBIN", rng.uniform(100, 140, HUB), 600.0))
    tx.append(
        _txns(
            "ho",
            "HUBIN",
            "HUBIN-ABROAD",
            150 + np.arange(10),
            HUB * 60.0,
            channel="wire",
            src_country="US",
            dst_country="PH",
        )
    )
    # a beneficiary abroad paid alike by HUB accounts within a week
    senders = _names("XS", HUB)
    tx.append(
        _txns(
            "xb",
            senders,
            "HUBX",
            rng.uniform(200, 300, HUB),
            100.0,
            src_country="US",
            dst_country="PH",
        )
    )
    # a payer funded from abroad, paying HUB accounts within two days
    payees = _names("HR", HUB)
    tx.append(
        _txns(
            "fu",
            "FUNDER",
            "HUBOUT",
            [390.0],
            HUB * 300.0,
            channel="wire",
            src_country="PH",
            dst_country="US",
        )
    )
    tx.append(_txns("hr", "HUBOUT", payees, rng.uniform(400, 440, HUB), 300.0))
    acc.append(
        _accounts([*payers, *senders, *payees, "HUBIN", "HUBIN-ABROAD", "HUBX", "FUNDER", "HUBOUT"])
    )
    # an employer paying HUB workers twice, who pass most of each wage to one account; all
    # registered at one address
    workers = _names("W", HUB)
    for k, day in enumerate((5, 19)):
        hours = day * 24 + rng.uniform(6, 8, HUB)
        tx.append(_txns(f"wg{k}", "EMP", workers, hours, 1500.0, channel="ach"))
        tx.append(_txns(f"rc{k}", workers, "RECAP", hours + 5, 1000.0))
    acc.append(_accounts(workers, address="1 Dorm Rd"))
    acc.append(_accounts(["EMP"], kind="business"))
    acc.append(_accounts(["RECAP"]))
    # DENSE young accounts paying their PARTNERS again and again, identical amounts
    dense = np.array(_names("D", DENSE), dtype=object)
    partners = rng.integers(0, DENSE, (DENSE, PARTNERS))
    src = rng.integers(0, DENSE, DENSE_TXNS)
    dst = partners[src, rng.integers(0, PARTNERS, DENSE_TXNS)]
    keep = src != dst
    tx.append(
        _txns("dn", dense[src[keep]], dense[dst[keep]], rng.uniform(0, 720, keep.sum()), 1000.0)
    )
    acc.append(_accounts(list(dense), opened_at=T0 - timedelta(days=5)))
    # a pass-through chain of CHAIN hops, one every ten minutes
    chain = _names("C", CHAIN + 1)
    tx.append(_txns("ch", chain[:-1], chain[1:], 24 + np.arange(CHAIN) / 6, 5000.0))
    acc.append(_accounts(chain))
    # self-transfers of every kind
    own = rng.choice(bg, SELF)
    tx.append(
        _txns(
            "sf",
            own,
            own,
            rng.uniform(0, 720, SELF),
            9500.0,
            channel=rng.choice(["wire", "p2p", "cash_deposit", "cash_withdrawal"], SELF),
            location_id="BR1",
        )
    )
    # a crowd at one ATM: HUB withdrawals by 300 accounts within an hour each morning
    crowd = rng.choice(bg[:300], HUB)
    days = rng.integers(0, 30, HUB)
    tx.append(
        _txns(
            "atm",
            crowd,
            "CASH",
            days * 24 + 9 + rng.uniform(0, 1, HUB),
            200.0,
            channel="cash_withdrawal",
            location_id="ATM1",
        )
    )
    # one person structuring cash over 20 accounts, HUB deposits just under the threshold
    struct = _names("S", 20)
    tx.append(
        _txns(
            "dp",
            "CASH",
            rng.choice(struct, HUB),
            rng.uniform(0, 720, HUB),
            9500.0,
            channel="cash_deposit",
            location_id=rng.choice(["BR1", "BR2", "BR3"], HUB),
        )
    )
    acc.append(_accounts(struct, party_id="PSTRUCT"))
    # HUB strangers opened within a week at one address and phone, all paying one landlord
    movers = _names("M", HUB)
    acc.append(
        _accounts(
            movers,
            opened_at=[T0 + timedelta(hours=float(h)) for h in rng.uniform(0, 150, HUB)],
            address="9 Shelter Ave",
            phone="+1 555 0100",
        )
    )
    tx.append(_txns("ll", movers * 2, "LANDLORD", rng.uniform(200, 400, 2 * HUB), 50.0))
    acc.append(_accounts(["LANDLORD", "CASH"]))
    flagged = [*payers, *senders]
    signals = pl.DataFrame(
        {
            "source": "rule",
            "signal_id": "ht_test",
            "account_id": flagged,
            "txn_ids": [[] for _ in flagged],
            "score": 1.0,
            "family": "behaviour",
            "typologies": [["cse_small_intl"] for _ in flagged],
            "evidence": "{}",
            "summary": "",
        }
    ).pipe(lambda f: pl.concat([pl.DataFrame(schema=SIGNAL_SCHEMA), f], how="diagonal_relaxed"))
    return pl.concat(tx), pl.concat(acc).unique("account_id", keep="first"), signals


def _variants() -> Iterator[tuple[str, pl.DataFrame, pl.DataFrame]]:
    tx, acc, _ = _shapes()
    yield "plain", tx, acc
    # day resolution and one amount: every time test ties, every amount ratio passes
    yield (
        "midnight_round",
        tx.with_columns(
            pl.col("ts").dt.truncate("1d"),
            pl.lit(1000.0).alias("amount"),
            pl.lit(1000.0).alias("amount_base"),
        ),
        acc,
    )
    # every account opened inside the period, before its first transaction
    first = (
        pl.concat(
            [tx.select(pl.col(c).alias("account_id"), "ts") for c in ("src_account", "dst_account")]
        )
        .group_by("account_id")
        .agg(pl.col("ts").min().alias("first"))
    )
    opened = acc.join(first, on="account_id", how="left").with_columns(
        pl.min_horizontal(pl.coalesce("first", pl.lit(T0)) - timedelta(hours=1), "opened_at")
        .clip(lower_bound=T0 - timedelta(days=1))
        .alias("opened_at")
    )
    yield "all_new", tx, opened.drop("first")


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[GraphContext, dict[str, pl.DataFrame]]]:
    _, _, signals = _shapes()
    out = {}
    for name, tx, acc in _variants():
        ctx = GraphContext(tx, acc, pl.DataFrame(), signals)
        out[name] = (ctx, {p: find(ctx, p) for p in PATTERNS})
    return out


def _evidence(hits: pl.DataFrame, instance: str) -> dict[str, Any]:
    return json.loads(hits.filter(pl.col("instance") == instance)["evidence"][0])


def _instance_of(hits: pl.DataFrame, account: str) -> list[str]:
    return hits.filter(pl.col("account_id") == account)["instance"].unique().to_list()


# ------------------------------------------------------------------ every pattern, every shape


@pytest.mark.parametrize("variant", ["plain", "midnight_round", "all_new"])
def test_output_is_bounded_and_lists_each_account_once(runs: dict, variant: str) -> None:
    ctx, hits = runs[variant]
    rows = ctx.transactions.height
    for name, h in hits.items():
        assert h.schema == HIT_SCHEMA, name
        assert h.height <= rows // 10, (name, h.height)  # hit rows: a fraction of the input
        assert h.select("instance", "account_id").is_unique().all(), name
        per_role = h.group_by("instance", "role").len()["len"].max() or 0
        assert per_role <= MAX_MEMBERS_PER_ROLE, (name, per_role)
        # each row carries its instance's evidence: bounded per row, so linear in all
        longest = h["evidence"].str.len_bytes().max() or 0
        assert longest <= 40_000, (name, longest)
        assert (h["txn_ids"].list.len().max() or 0) <= common.MAX_TXNS_PER_INSTANCE, name
        for inst in h.partition_by("instance"):
            ev = json.loads(inst["evidence"][0])
            assert sorted(ev["accounts"]) == sorted(inst["account_id"]), name


def test_hubs_are_one_instance_listing_a_bounded_number_of_spokes(runs: dict) -> None:
    _, hits = runs["plain"]
    for pattern, hub, count in [
        ("fan_in", "HUBIN", "n_counterparties"),
        ("fan_out", "HUBOUT", "n_counterparties"),
        ("controller_hub", "HUBIN", "flagged_senders"),
        ("controller_hub", "HUBX", "flagged_senders"),
        ("many_to_one_beneficiary", "HUBX", "n_senders"),
    ]:
        h = hits[pattern]
        (instance,) = _instance_of(h, hub)
        ev = _evidence(h, instance)
        assert ev[count] == HUB, (pattern, ev[count])
        listed = h.filter(pl.col("instance") == instance).height
        assert listed <= MAX_MEMBERS_PER_ROLE + 2, pattern  # spokes, the hub, an end abroad
        assert listed + ev["more_accounts"] >= HUB + 1, pattern
    assert "HUBIN-ABROAD" in hits["fan_in"]["account_id"].to_list()  # the end is kept
    assert "FUNDER" in hits["fan_out"]["account_id"].to_list()


def test_employer_and_shared_address_are_one_instance_each(runs: dict) -> None:
    _, hits = runs["plain"]
    (rec,) = _instance_of(hits["payroll_recapture"], "EMP")
    assert _evidence(hits["payroll_recapture"], rec)["recapturing_workers"] == HUB
    (shared,) = _instance_of(hits["shared_address_workers"], "EMP")
    assert _evidence(hits["shared_address_workers"], shared)["sharing"] == HUB
    bursts = hits["onboarding_burst"].filter(pl.col("instance").str.contains("shelter|0100"))
    assert bursts["instance"].n_unique() == 1  # the address and the phone: reported once
    ev = _evidence(bursts, bursts["instance"][0])
    assert ev["n_accounts"] == HUB and ev["more_accounts"] == HUB - MAX_MEMBERS_PER_ROLE


@pytest.mark.parametrize("variant", ["plain", "all_new"])
def test_a_long_chain_is_one_instance(runs: dict, variant: str) -> None:
    _, hits = runs[variant]
    h = hits["layering_chain"]
    chain = h.filter(pl.col("account_id").str.contains(r"^C\d{4}$"))
    assert chain["instance"].n_unique() == 1
    ev = _evidence(h, chain["instance"][0])
    assert ev["chain_accounts"] == CHAIN + 1 and ev["chain_transfers"] == CHAIN
    assert ev["more_accounts"] == CHAIN + 1 - chain.height
    assert dict(zip(chain["account_id"], chain["role"], strict=True))["C0000"] == "origin"
    assert dict(zip(chain["account_id"], chain["role"], strict=True))[f"C{CHAIN:04d}"] == "end"


def test_dense_ring_gives_few_cycles_per_account(runs: dict) -> None:
    for variant in ("plain", "midnight_round"):
        _, hits = runs[variant]
        h = hits["cycle"]
        origins = h.filter(pl.col("role") == "origin").group_by("account_id").len()
        assert (origins["len"].max() or 0) <= PATTERNS["cycle"].params["max_per_account"]
        assert h["instance"].n_unique() <= 3 * (DENSE + 400)


# ------------------------------------------------------------------ the cost, structurally


def test_path_patterns_respect_their_candidate_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layering hop makes at most max(MIN_JOIN_BUDGET, max_paths_per_transfer x E)
    candidates, a cycle's origin grows at most `max_paths_per_origin` paths per hop after the
    first (its own budget: cycles are found a partition at a time), and `Following.after` at
    most `limit` per row; with small budgets the dense ring is cut."""
    tx, acc, signals = _shapes()
    ctx = GraphContext(tx, acc, pl.DataFrame(), signals)
    made: list[tuple[int, int, int, float | None, int]] = []
    after, follow = Following.after, layering._follow

    def grow(paths: pl.DataFrame, nxt: pl.DataFrame, k: int, budget: float) -> pl.DataFrame:
        out = follow(paths, nxt, k, budget)
        made.append((paths.height, out.height, MAX_NEXT_PER_PATH, budget, 0))
        return out

    def spy(self: Following, left: pl.DataFrame, ts: str, limit: int, **kw: Any) -> pl.DataFrame:
        out = after(self, left, ts, limit, **kw)
        per_origin = left.group_by("n0").len()["len"].max() if "n0" in left.columns else 0
        made.append((left.height, out.height, limit, kw.get("budget"), int(per_origin or 0)))
        return out

    monkeypatch.setattr(Following, "after", spy)
    monkeypatch.setattr(layering, "_follow", grow)
    monkeypatch.setattr(layering, "MIN_JOIN_BUDGET", 2_000)
    budgets = {
        "cycle": {"max_paths_per_origin": 20},
        "layering_chain": {"max_paths_per_transfer": 0.05},
    }
    for name in ("cycle", "layering_chain"):
        made.clear()
        hits = find(ctx, name, budgets[name])
        assert made
        for hop, (left, out, limit, budget, per_origin) in enumerate(made):
            assert out <= left * limit
            if name == "layering_chain" and budget is not None:  # a hop, not its links
                assert out <= budget
            elif hop > 0:
                assert per_origin <= 20
        assert hits.height <= tx.height // 10
    # every pattern that pairs rows in time order stays within `limit` per row
    made.clear()
    for name in PATTERNS:
        find(ctx, name)
    assert made and all(out <= left * limit for left, out, limit, _, _ in made)


def test_following_is_the_time_ordered_join_cut_at_limit() -> None:
    rng = np.random.default_rng(1)
    n = 400
    left = pl.DataFrame(
        {"k": rng.integers(0, 5, n), "ts": rng.integers(0, 50, n), "id": np.arange(n)}
    )
    right = pl.DataFrame(
        {"k": rng.integers(0, 5, n), "_t": rng.integers(0, 50, n), "rid": np.arange(n)}
    )
    for limit, within in ((3, None), (1000, None), (4, 10)):
        got = Following(right, "k", ["rid"]).after(left, "ts", limit, within=within)
        want = (
            left.join(right, on="k")
            .filter(pl.col("_t") > pl.col("ts"))
            .filter((pl.col("_t") <= pl.col("ts") + within) if within else pl.lit(True))
            .sort("id", "_t", "rid")
            .filter(pl.int_range(pl.len()).over("id") < limit)
        )
        assert got.select("id", "rid").rows() == want.select("id", "rid").rows()


def test_covering_equals_the_rolling_counts_it_replaces() -> None:
    rng = np.random.default_rng(2)
    n = 600
    rows = pl.DataFrame(
        {
            "g": rng.choice(["a", "b", "c"], n),
            "item": rng.integers(0, 15, n),
            # whole hours: many ties, as with day-resolution data
            "ts": _ts(rng.integers(0, 200, n).astype(float)),
        }
    ).sort("g", "ts")
    w = timedelta(hours=24)
    anchors = rows.select("g", pl.col("ts").alias("anchor")).unique()
    rolling = (
        rows.rolling(index_column="ts", period=w, group_by="g")
        .agg(pl.col("item").n_unique().alias("distinct"), pl.len().alias("count"))
        .unique(["g", "ts"])
        .rename({"ts": "anchor"})
    )
    span = (pl.col("ts"), pl.col("ts") + w - common.ONE_US)
    got = covering(rows, ["g"], "item", anchors, *span, name="distinct").join(
        covering(rows, ["g"], None, anchors, *span, name="count"), on=["g", "anchor"]
    )
    assert got.sort("g", "anchor").rows() == rolling.select(got.columns).sort("g", "anchor").rows()
    # intervals of different lengths: [ts - r, ts] with r varying per row
    ranged = rows.with_columns(_ts(rng.integers(0, 50, n).astype(float)).alias("r"))
    lo = pl.col("ts") - (pl.col("r") - pl.lit(T0))
    varied = covering(ranged, ["g"], "item", anchors, lo, pl.col("ts"), same_length=False)
    brute = (
        anchors.join(ranged.with_columns(lo.alias("lo")), on="g")
        .filter(pl.col("lo") <= pl.col("anchor"), pl.col("anchor") <= pl.col("ts"))
        .group_by("g", "anchor")
        .agg(pl.col("item").n_unique().alias("n"))
    )
    assert (
        varied.drop_nulls("n").filter(pl.col("n") > 0).sort("g", "anchor").rows()
        == brute.sort("g", "anchor").rows()
    )


def test_fair_cap_cuts_the_heaviest_groups_first() -> None:
    frame = pl.DataFrame(
        {"g": ["hub"] * 1000 + [f"a{i}" for i in range(50)], "o": range(1050), "w": [1] * 1050}
    )
    kept = fair_cap(frame, "w", "g", ["o"], 200)
    assert kept.height == 200
    assert kept.filter(pl.col("g") != "hub").height == 50  # the light groups keep everything
    assert kept.filter(pl.col("g") == "hub")["o"].to_list() == list(range(150))

"""The flood ceiling and relative thresholds: a rule that fires on most of a population is held
back and reported, and patterns that read flags never see a flood."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from test_features import T0, frames

from flows87.errors import ConfigError
from flows87.pipeline.features import compute, load_settings
from flows87.pipeline.rules import load_rules
from flows87.pipeline.rules.ceiling import Ceiling, CeilingSettings, hold_back, hold_back_all
from flows87.pipeline.rules.compile import check_rule
from flows87.pipeline.rules.engine import run_rules
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA
from flows87.pipeline.rules.model import Rule
from flows87.pipeline.rules.relative import resolve


def _rule(**changes: object) -> Rule:
    base: dict[str, object] = {
        "id": "test_rule",
        "title": "A test rule",
        "description": "A rule made for a test of the flood ceiling.",
        "status": "experimental",
        "severity": "medium",
        "family": "behaviour",
        "typologies": ["fan_in"],
        "date": date(2026, 12, 6),
        "references": ["a test"],
        "scope": "account",
        "window": "30d",
        "condition": "out_sum > 0",
        "evidence": ["out_sum", "in_sum"],
        "summary": "Account {account} paid {out_sum:,.2f}.",
        "falsepositives": ["everyone"],
    }
    base.update(changes)
    return Rule(**base)  # type: ignore[arg-type]


def _signals(values: list[float | None], rule_id: str = "test_rule") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": ["rule"] * len(values),
            "signal_id": [rule_id] * len(values),
            "account_id": [f"a{i:03d}" for i in range(len(values))],
            "txn_ids": [[f"t{i}"] for i in range(len(values))],
            "score": [0.5] * len(values),
            "family": ["behaviour"] * len(values),
            "typologies": [["fan_in"]] * len(values),
            "window_start": [None] * len(values),
            "window_end": [None] * len(values),
            "evidence": [json.dumps({"out_sum": v}) for v in values],
            "summary": ["s"] * len(values),
        },
        schema=SIGNAL_SCHEMA,
    )


CEILING = Ceiling(1000, CeilingSettings(max_share=0.02, min_accounts=10))  # limit 20 accounts


def test_below_the_ceiling_nothing_is_held_back() -> None:
    signals = _signals([float(i) for i in range(20)])
    kept, held, record = hold_back(_rule(rank_by="out_sum"), signals, CEILING)
    assert record is None and held.is_empty()
    assert kept.height == 20


def test_above_the_ceiling_a_ranked_rule_keeps_its_strongest_hits() -> None:
    signals = _signals([float(i) for i in range(100)])  # 100 accounts, limit 20
    kept, held, record = hold_back(_rule(rank_by="out_sum"), signals, CEILING)
    assert record is not None and record["action"] == "threshold raised"
    assert sorted(kept["account_id"]) == [f"a{i:03d}" for i in range(80, 100)]
    assert held.height == 80 and held["txn_ids"].list.len().max() == 0  # kept, without lists
    assert record["cut"] == 79.0 and record["kept_accounts"] == 20
    assert record["accounts_flagged"] == 100 and record["ceiling_accounts"] == 20
    assert "out_sum is above 79" in record["reason"]


def test_ties_at_the_cut_are_held_back_together() -> None:
    values = [float(i) for i in range(80)] + [100.0] * 30  # 30 equal at the top, limit 20
    kept, _, record = hold_back(_rule(rank_by="out_sum"), _signals(values), CEILING)
    assert record is not None
    assert kept.is_empty()  # none of the 30 is stronger than the others
    more = [float(i) for i in range(80)] + [100.0] * 18 + [200.0] * 3
    kept, _, record = hold_back(_rule(rank_by="out_sum"), _signals(more), CEILING)
    assert record is not None and record["cut"] == 100.0
    assert kept.height == 3  # 3 + 18 would pass the 20: the 18 tied go together
    # the result does not depend on the order of the rows
    shuffled = _signals(more).sample(fraction=1.0, shuffle=True, seed=3)
    again, _, _ = hold_back(_rule(rank_by="out_sum"), shuffled, CEILING)
    assert sorted(again["account_id"]) == sorted(kept["account_id"])


def test_a_rule_without_rank_by_is_held_back_whole() -> None:
    kept, held, record = hold_back(_rule(), _signals([1.0] * 50), CEILING)
    assert kept.is_empty() and held.height == 50
    assert record is not None and record["action"] == "held back"
    assert "no rank_by" in record["reason"]


def test_a_rules_own_max_share_and_the_minimum_count() -> None:
    signals = _signals([float(i) for i in range(100)])
    kept, _, record = hold_back(_rule(max_share=0.5), signals, CEILING)  # limit 500
    assert record is None and kept.height == 100
    small = Ceiling(100, CeilingSettings(max_share=0.02, min_accounts=30))  # 2 % = 2 < 30
    assert small.limit(_rule()) == 30


def test_hold_back_all_goes_rule_by_rule() -> None:
    both = pl.concat([_signals([1.0] * 50), _signals([1.0] * 5, rule_id="other_rule")])
    rules = [_rule(), _rule(id="other_rule")]
    kept, held, records = hold_back_all(rules, both, CEILING)
    assert set(kept["signal_id"]) == {"other_rule"} and kept.height == 5
    assert held.height == 50 and [r["rule"] for r in records] == ["test_rule"]


# -------------------------------------------------------------- through the rule engine


def _hub_population(n_senders: int = 40, n_others: int = 160) -> tuple[pl.DataFrame, ...]:
    """Senders that pay a hub most of their money three times, and others paying each other:
    every account pays out something, so `out_sum > 0` floods."""
    rows: list[tuple] = []
    for i in range(n_senders):
        rows += [
            (24 * d + i % 10, f"s{i:03d}", "hub", 300 + i, "p2p", None, None) for d in (1, 3, 5)
        ]
        rows.append((24 * 6, f"o{i:03d}", f"s{i:03d}", 1000 + i, "p2p", None, None))
    for i in range(n_others):
        rows.append(
            (24 * 2 + i % 20, f"o{i:03d}", f"o{(i + 1) % n_others:03d}", 50, "p2p", None, None)
        )
    return frames(rows)


def _engine(rules: list[Rule], ceiling: Ceiling | None):
    tx, acc = _hub_population()
    settings = load_settings()
    features = compute(tx, acc, settings, origin=T0)
    return run_rules(rules, features, tx, acc, settings, T0, ceiling=ceiling)


def _controller_hub() -> Rule:
    return next(r.rule for r in load_rules() if r.rule.id == "ht_controller_hub")


def test_a_flood_does_not_reach_the_patterns_that_read_flags() -> None:
    # 45 accounts: room for the hub's instance (hub and 40 senders), not for the flood (200)
    ceiling = Ceiling(201, CeilingSettings(max_share=0.02, min_accounts=45))
    held = _engine([_rule(), _controller_hub()], ceiling)
    assert held.held_back and held.held_back[0]["rule"] == "test_rule"
    assert held.fired["test_rule"] == 0
    assert held.held.height > 150  # kept aside, not lost
    assert held.fired["ht_controller_hub"] == 0  # the hub saw no flags

    # the same flags let through (a rule allowed to flag everyone) make the hub a controller
    allowed = _engine([_rule(max_share=1.0), _controller_hub()], ceiling)
    assert not allowed.held_back
    assert allowed.fired["ht_controller_hub"] > 0
    hub = allowed.signals.filter(pl.col("signal_id") == "ht_controller_hub")
    assert "hub" in hub["account_id"].to_list()


def test_kept_account_signals_keep_their_transactions() -> None:
    ceiling = Ceiling(201, CeilingSettings(max_share=0.02, min_accounts=25))
    run = _engine([_rule(rank_by="out_sum")], ceiling)
    record = run.held_back[0]
    assert record["action"] == "threshold raised" and 0 < record["kept_accounts"] <= 25
    kept = run.signals.filter(pl.col("signal_id") == "test_rule")
    assert kept.height == record["kept_accounts"]
    assert kept["txn_ids"].list.len().min() > 0
    cut = record["cut"]
    assert all(json.loads(e)["out_sum"] > cut for e in kept["evidence"])
    assert all(json.loads(e)["out_sum"] <= cut for e in run.held["evidence"])


# -------------------------------------------------------------- relative thresholds


def test_a_percentile_parameter_follows_the_population() -> None:
    rule = _rule(
        condition="out_sum >= :v",
        params={"v": {"default": 100, "min": 1, "max": 1e9, "percentile": 90, "of": "out_sum"}},
    )
    tx, acc = _hub_population()
    features = compute(tx, acc, load_settings(), origin=T0)
    resolved, records = resolve([rule], features)
    expected = features.filter(pl.col("window") == "30d")["out_sum"].cast(pl.Float64).quantile(0.9)
    assert records[0]["quantile"] == pytest.approx(expected, abs=1e-4)
    assert resolved["test_rule"]["v"] == max(100, records[0]["quantile"])
    run = run_rules([rule], features, tx, acc, load_settings(), T0)
    assert run.relative == records
    flagged = run.signals["account_id"].n_unique()
    population = features.filter(pl.col("window") == "30d").height
    assert 0 < flagged <= 0.1 * population + 1  # the top tenth, not everyone paying >= 100


def test_a_lower_tail_percentile_takes_the_smaller_value() -> None:
    rule = _rule(
        condition="out_sum <= :v",
        params={"v": {"default": 5000, "min": 1, "max": 1e9, "percentile": 10, "of": "out_sum"}},
    )
    p = rule.params["v"]
    assert p.relative(5000, 120.0) == 120.0 and p.relative(5000, 9000.0) == 5000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": {"v": {"default": 1, "min": 0, "max": 9, "percentile": 90}}}, "go together"),
        (
            {
                "params": {
                    "v": {"default": 1, "min": 0, "max": 9, "percentile": 120, "of": "in_sum"}
                }
            },
            "less than 100",
        ),
    ],
)
def test_malformed_percentile_parameters_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _rule(condition="out_sum >= :v", **changes)


def test_check_rule_refuses_unknown_of_and_rank_by() -> None:
    bad_of = _rule(
        condition="out_sum >= :v",
        params={"v": {"default": 1, "min": 0, "max": 9, "percentile": 90, "of": "out_summ"}},
    )
    with pytest.raises(ConfigError, match="unknown feature 'out_summ'") as exc:
        check_rule(bad_of)
    assert exc.value.field == "params.v.of"
    with pytest.raises(ConfigError, match="rank_by"):
        check_rule(_rule(rank_by="in_count"))


# -------------------------------------------------------------- partitioned equals unpartitioned


def test_partitioned_rules_hold_back_the_same_signals(tmp_path) -> None:
    """The ceiling is the whole population's: partitions hold back nothing themselves, the merge
    holds back what one partition does."""
    from polars.testing import assert_frame_equal

    from flows87.io import write_parquet
    from flows87.pipeline.job import Job
    from flows87.pipeline.plan import upto
    from flows87.pipeline.run import run_steps
    from flows87.pipeline.stages.config import RunConfig
    from flows87.research.synth import generate

    data = generate(1500, 14, seed=2)
    write_parquet(data.accounts, tmp_path / "data" / "accounts.parquet")
    write_parquet(data.transactions, tmp_path / "data" / "transactions.parquet")
    tight = tmp_path / "scoring.yaml"
    tight.write_text("ceiling:\n  max_share: 0.004\n  min_accounts: 5\n")
    config = RunConfig(scoring_settings=tight)
    one, three = tmp_path / "one", tmp_path / "three"
    source = str(tmp_path / "data")
    run_steps(Job.local(one, config, source=source), upto("merge_rules"))
    run_steps(Job.local(three, config, source=source, partitions=3), upto("merge_rules"))

    keys = ["signal_id", "account_id", "window_start"]
    for name in ("signals_rules.parquet", "signals_held_rules.parquet"):
        a, b = pl.read_parquet(one / name).sort(keys), pl.read_parquet(three / name).sort(keys)
        assert_frame_equal(a, b)
    held = json.loads((one / "stages" / "rules.json").read_text())["held_back"]
    assert held, "the tight ceiling held nothing back: the test proves nothing"
    merged = json.loads((three / "stages" / "rules.json").read_text())["held_back"]
    assert held == merged

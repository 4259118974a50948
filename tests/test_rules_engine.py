"""The rule engine on data that lacks an input: the rules that read it are skipped, by name."""

from __future__ import annotations

import polars as pl
from test_features import T0, frames

from flows87.pipeline.features import compute, load_settings
from flows87.pipeline.rules import load_rules
from flows87.pipeline.rules.engine import run_rules


def _run(tx: pl.DataFrame, acc: pl.DataFrame, ids: set[str]):
    settings = load_settings()
    rules = [r.rule for r in load_rules() if r.rule.id in ids]
    assert {r.id for r in rules} == ids
    features = compute(tx, acc, settings, origin=T0)
    return run_rules(rules, features, tx, acc, settings, T0)


def _hotel_nights(mcc: str | None, location: str | None) -> list[tuple]:
    """A week of nightly card payments at hotels, and cash deposits just under 10,000."""
    rows = [(24 * d + 23, "guest", f"hotel-{d}", 120, "card", mcc, location) for d in range(6)]
    rows += [
        (24 * d + 10, "smurf", "bank", 9_500, "cash_deposit", None, location) for d in range(6)
    ]
    return rows


def test_a_rule_whose_input_the_data_lacks_is_skipped_with_a_warning() -> None:
    ids = {"ht_hotel_pattern", "fa_structuring"}
    with_mcc = _run(*frames(_hotel_nights("7011", "branch-1")), ids)
    assert with_mcc.skipped == []
    assert with_mcc.fired["ht_hotel_pattern"] == 1  # the data has what the rule reads

    without_mcc = _run(*frames(_hotel_nights(None, "branch-1")), ids)
    assert without_mcc.skipped == ["ht_hotel_pattern"]
    assert any("ht_hotel_pattern" in w and "hotel_count" in w for w in without_mcc.warnings)
    assert without_mcc.fired["fa_structuring"] == 1  # the other rule still ran


def test_a_transaction_rule_on_a_column_without_values_is_skipped() -> None:
    tx, acc = frames(_hotel_nights("7011", "branch-1"))
    ran = _run(tx, acc, {"fa_structuring"})
    assert ran.fired["fa_structuring"] == 1
    blank = tx.with_columns(pl.lit(None, dtype=pl.String).alias("channel"))
    skipped = _run(blank, acc, {"fa_structuring"})
    assert skipped.skipped == ["fa_structuring"]
    assert any("channel" in w for w in skipped.warnings)


def test_night_rules_are_skipped_on_data_of_day_resolution() -> None:
    """Every timestamp at midnight: night-time features are absent, not 'everything at night'."""
    rows = [
        (24 * d + 23, f"client{i}", "worker", 80, "p2p", None, None)
        for d in range(3)
        for i in range(12)
    ]
    night = _run(*frames(rows), {"ht_late_night_inflows"})
    assert night.skipped == [] and night.fired["ht_late_night_inflows"] == 1
    midnight = [(24 * d, *r[1:]) for d, r in zip([r[0] // 24 for r in rows], rows, strict=True)]
    daily = _run(*frames(midnight), {"ht_late_night_inflows"})
    assert daily.skipped == ["ht_late_night_inflows"]
    assert any("night_in_share" in w for w in daily.warnings)

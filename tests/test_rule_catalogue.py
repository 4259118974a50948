"""Every rule of the catalogue against labelled synthetic data: it fires on the typology it
encodes and stays quiet on the innocent population, look-alikes included.

The generator plants each typology among ordinary customers and also generates the innocent
look-alikes that trip single red flags in real life (business travellers, cash businesses,
students paid by many friends, landlords, flatmates, migrants' remittances, ...). A rule may
flag some of them, as real rules do, but only a small share of the innocent population.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows87.pipeline.features import RULES_DIR, compute
from flows87.pipeline.rules import load_rules, run_rules
from flows87.pipeline.stages.common import feature_settings
from flows87.pipeline.stages.config import RunConfig
from flows87.research.synth import TYPOLOGIES, generate

RULES = [p.stem for p in sorted(Path(RULES_DIR).glob("*.yaml"))]
MAX_INNOCENT_SHARE = 0.01  # of all innocent accounts
MAX_INNOCENT_FLOOR = 10
# Party-view rules find a scheme only when it is spread over one person's accounts at several
# banks; the generator spreads structuring so (fa_structuring_accounts), not funnels or
# controllers: tests/test_party_view.py plants those. They must still stay quiet on innocents.
SPREAD_NOT_PLANTED = {"fa_funnel_party", "ht_controller_party"}


@pytest.fixture(scope="module")
def evaluated() -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    data = generate(8000, 30, seed=21)
    settings = feature_settings(RunConfig())
    tx, acc = data.transactions, data.accounts
    origin = tx["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    features = compute(tx, acc, settings, origin=origin)
    rules = {r.rule.id: r.rule for r in load_rules()}
    run = run_rules(list(rules.values()), features, tx, acc, settings, origin)
    flagged = (
        run.signals.select("signal_id", "account_id")
        .unique()
        .join(acc.select("account_id", "is_suspicious", "typology"), on="account_id", how="left")
    )
    return flagged, acc, rules


def test_the_tests_below_cover_the_whole_catalogue() -> None:
    """The per-rule tests are parametrized by file name: they must be the rules the pipeline
    loads (an empty or stale glob would silently test nothing), and each rule must encode
    typologies the generator plants, or "fires on its typology" could not be tested."""
    loaded = load_rules()
    assert sorted(r.rule.id for r in loaded) == sorted(RULES)
    assert all(r.path.stem == r.rule.id for r in loaded)
    for r in loaded:
        assert set(r.rule.typologies) <= set(TYPOLOGIES), (r.rule.id, r.rule.typologies)


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_fires_on_its_typology(rule_id: str, evaluated: tuple) -> None:
    if rule_id in SPREAD_NOT_PLANTED:
        pytest.skip(f"{rule_id}: the generator plants no such scheme spread over banks")
    flagged, _, rules = evaluated
    rule = rules[rule_id]
    hits = flagged.filter(
        (pl.col("signal_id") == rule_id) & pl.col("typology").is_in(rule.typologies)
    )
    assert hits.height >= 1, f"{rule_id} flags no account of {rule.typologies}"


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_stays_quiet_on_innocents(rule_id: str, evaluated: tuple) -> None:
    flagged, acc, _ = evaluated
    innocent = acc.filter(~pl.col("is_suspicious")).height
    false_hits = flagged.filter(
        (pl.col("signal_id") == rule_id) & ~pl.col("is_suspicious").fill_null(False)
    )
    limit = max(MAX_INNOCENT_FLOOR, MAX_INNOCENT_SHARE * innocent)
    assert false_hits.height <= limit, f"{rule_id} flags {false_hits.height} innocent accounts"

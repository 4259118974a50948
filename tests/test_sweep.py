"""flows87 sweep: parameter space, Pareto front, rule-file patch, and a sweep on a real run that
finds a better threshold than a deliberately bad default."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows87.cli import main
from flows87.io import write_parquet
from flows87.pipeline.rules import load_rule
from flows87.pipeline.run import run
from flows87.research.sweep import SweepContext, sweep
from flows87.research.sweep.pareto import choose, pareto_front
from flows87.research.sweep.patch import format_value, make_patch, set_values
from flows87.research.sweep.space import SweepParam, grid, random
from flows87.research.synth import generate

ROOT = Path(__file__).resolve().parents[1]
BAD_RULE, BAD_PARAM = "ml_fan_in", "min_counterparties"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sweep")
    data = generate(1500, 14, 1)
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    run(base / "data", base / "run")
    return base / "run"


@pytest.fixture(scope="module")
def context(run_dir: Path) -> SweepContext:
    return SweepContext(run_dir)


@pytest.fixture
def bad_rules(tmp_path: Path) -> Path:
    """A copy of the rule catalogue where ml_fan_in needs 1000 distinct senders (never fires)."""
    folder = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", folder)
    path = folder / f"{BAD_RULE}.yaml"
    text = path.read_text(encoding="utf-8")
    rule = load_rule(path)
    top = int(rule.params[BAD_PARAM].max)
    path.write_text(
        set_values(text, {("params", BAD_PARAM, "default"): str(top)}), encoding="utf-8"
    )
    assert load_rule(path).params[BAD_PARAM].default == top
    return folder


# --- pure parts -----------------------------------------------------------------------------


def test_pareto_front_of_hand_made_points() -> None:
    points = [
        (0.10, 0.50),  # 0: dominated by 1 (same recall, more alerts)
        (0.05, 0.50),  # 1: front
        (0.20, 0.90),  # 2: front
        (0.20, 0.80),  # 3: dominated by 2
        (0.30, 0.90),  # 4: dominated by 2
        (0.01, 0.10),  # 5: front (fewest alerts)
        (0.05, 0.50),  # 6: equal to 1, later
        (0.50, 0.95),  # 7: front (best recall)
    ]
    assert pareto_front(points) == [5, 1, 2, 7]
    # of two equal points the one with fewer changed parameters stands for both
    assert pareto_front(points, changes=[1, 3, 1, 1, 1, 1, 2, 1]) == [5, 6, 2, 7]
    assert pareto_front([]) == []
    assert choose(points, 0.2, [0] * len(points)) == 2
    assert choose(points, 0.06, [0] * len(points)) == 1
    assert choose(points, 0.001, [0] * len(points)) is None


def test_grid_and_random_settings_stay_in_range() -> None:
    count = SweepParam("r_one.n", 6, 2, 1000, "int")
    share = SweepParam("r_one.p", 0.5, 0.0, 1.0, "float")
    assert count.levels(3) == [2, 45, 1000]  # geometric over a wide range, whole numbers
    assert share.levels(3) == [0.0, 0.5, 1.0]
    full, mode = grid([count, share], 3, 50)
    assert mode == "grid"
    assert {} not in full  # the defaults are evaluated once, apart
    assert len(full) == 4 * 3 - 1  # levels plus the default, minus the all-default point
    one, mode = grid([count, share], 3, 5)
    assert mode == "one-at-a-time"
    assert one == [
        {"r_one.n": 2},
        {"r_one.n": 45},
        {"r_one.n": 1000},
        {"r_one.p": 0.0},
        {"r_one.p": 1.0},
    ]
    a = random([count, share], 20, seed=7, vary=None)
    assert a == random([count, share], 20, seed=7, vary=None)
    assert a != random([count, share], 20, seed=8, vary=None)
    for s in a:
        assert 2 <= s.get("r_one.n", 6) <= 1000 and isinstance(s.get("r_one.n", 6), int)
        assert 0.0 <= s.get("r_one.p", 0.5) <= 1.0
    assert all(len(s) == 1 for s in random([count, share], 10, seed=1, vary=1))


def test_set_values_edits_only_the_value() -> None:
    text = (
        "id: x  # comment stays\n"
        "params:\n"
        "  n: {default: 3, min: 1, max: 10, type: int, description: a count}\n"
        "  p:\n"
        "    default: 0.25\n"
        "    min: 0\n"
        "    max: 1\n"
        "contamination: 0.01\n"
    )
    edited = set_values(
        text,
        {
            ("params", "n", "default"): "7",
            ("params", "p", "default"): "0.5",
            ("contamination",): "0.02",
        },
    )
    assert edited == (
        text.replace("default: 3,", "default: 7,")
        .replace("default: 0.25", "default: 0.5")
        .replace("contamination: 0.01", "contamination: 0.02")
    )
    data = yaml.safe_load(edited)
    assert data["params"]["n"]["default"] == 7 and data["params"]["p"]["default"] == 0.5
    assert format_value(7.0, "int") == "7" and format_value(150.0, "float") == "150"
    assert format_value(0.125, "float") == "0.125"


# --- on a real run --------------------------------------------------------------------------


def test_defaults_reproduce_the_run(context: SweepContext, run_dir: Path) -> None:
    outcome = context.evaluate({})
    assert outcome.rules_evaluated == []  # everything from the run's files
    stored = json.loads((run_dir / "metrics.json").read_text())
    acc = stored.get("accounts", stored)
    assert outcome.metrics["recall"] == acc["recall"]
    assert outcome.metrics["alert_rate"] == acc["alert_rate"]
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    assert outcome.metrics["alerted_accounts"] == scored["case_id"].is_not_null().sum()


def test_contamination_redraws_detector_signals(context: SweepContext) -> None:
    stored = context.stored["pyod_ensemble"]
    same = context._detector_signals(context.run_contamination)
    assert same.equals(stored)
    n = context.anomaly.height
    more = context._detector_signals(0.05)
    assert more.height == round(n * 0.05)
    assert set(stored["account_id"]) <= set(more["account_id"])  # the top share grows


def test_changed_rule_only_is_evaluated(context: SweepContext) -> None:
    outcome = context.evaluate({"ml_cycle.min_ratio": 1.0})
    assert outcome.rules_evaluated == ["ml_cycle"]
    account_rule = next(
        r
        for r, rule in context.rules.items()
        if rule.scope == "account" and rule.params and r in context.stored
    )
    name, p = next(iter(context.rules[account_rule].params.items()))
    value = p.max if p.default != p.max else p.min
    outcome = context.evaluate({f"{account_rule}.{name}": value})
    # graph patterns that read the rules' signals follow the account rule
    assert outcome.rules_evaluated[0] == account_rule
    assert set(outcome.rules_evaluated[1:]) <= context.dependent_graph


def test_sweep_finds_the_better_threshold_and_writes_a_patch(
    run_dir: Path, bad_rules: Path, tmp_path: Path
) -> None:
    before = {p.name: p.read_bytes() for p in bad_rules.rglob("*.yaml")}
    out = tmp_path / "sweep"
    result = sweep(
        run_dir,
        rules_dir=bad_rules,
        out=out,
        params=[f"{BAD_RULE}.{BAD_PARAM}"],
        grid_levels=5,
        max_alert_rate=0.5,
    )
    defaults = result.outcomes[0]
    assert defaults.rules_evaluated == [BAD_RULE]  # the copy's default differs from the run's
    assert result.chosen is not None
    chosen = result.outcomes[result.chosen]
    assert chosen.metrics["recall"] > defaults.metrics["recall"]
    assert chosen.metrics["typologies"]["fan_in"] > defaults.metrics["typologies"]["fan_in"]
    value = chosen.setting[f"{BAD_RULE}.{BAD_PARAM}"]
    assert value < 1000
    # the rules folder is untouched; the patch applies to it from its parent
    assert {p.name: p.read_bytes() for p in bad_rules.rglob("*.yaml")} == before
    patch = out / "chosen.patch"
    assert f"a/rules/{BAD_RULE}.yaml" in patch.read_text()
    subprocess.run(["git", "apply", "--check", str(patch)], cwd=tmp_path, check=True)
    subprocess.run(["git", "apply", str(patch)], cwd=tmp_path, check=True)
    assert load_rule(bad_rules / f"{BAD_RULE}.yaml").params[BAD_PARAM].default == value
    for name in ("sweep.json", "sweep.md", "pareto.png"):
        assert (out / name).stat().st_size > 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["chosen"] in doc["pareto"]
    assert doc["timing"]["full_run_seconds"] > 0
    assert doc["timing"]["mean_seconds_per_setting"] < doc["timing"]["full_run_seconds"]
    assert "**chosen**" in (out / "sweep.md").read_text()


def test_rules_folder_without_settings_uses_the_runs(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "only-rules"
    folder.mkdir()
    for path in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    ctx = SweepContext(run_dir, folder)
    assert ctx.config.settings_path("scoring") == ROOT / "rules" / "settings" / "scoring.yaml"
    assert ctx.evaluate({}).rules_evaluated == []  # same rules as the run's


def test_patch_paths_from_the_repository_root(context: SweepContext) -> None:
    text = make_patch(
        {"ml_cycle.min_ratio": 0.9, "detectors.contamination": 0.02}, context.space, ROOT
    )
    assert "--- a/rules/ml_cycle.yaml\n+++ b/rules/ml_cycle.yaml" in text
    assert "+contamination: 0.02" in text
    subprocess.run(["git", "apply", "--check", "-"], cwd=ROOT, input=text.encode(), check=True)


def test_sweep_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    code = main(
        [
            "sweep",
            str(run_dir),
            "--random",
            "3",
            "--seed",
            "5",
            "--params",
            "ml_cycle.min_ratio,detectors.contamination",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "per setting" in text and "one full run" in text
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["mode"].startswith("random") and len(doc["settings"]) <= 4
    assert main(["sweep", str(run_dir), "--grid", "--random", "2", "--quiet"]) == 2
    assert main(["sweep", str(run_dir), "--params", "no_such_rule.x", "--quiet"]) == 2

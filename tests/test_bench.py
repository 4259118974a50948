"""flows87 bench: time split, metrics, the report, and the GFP baseline when snapml is present."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from flows87.cli import main
from flows87.errors import ConfigError, InputError
from flows87.io import write_parquet
from flows87.research.bench import bench, markdown, split_time, tune_interval
from flows87.research.bench import gfp as gfp_mod
from flows87.research.bench.metrics import average_precision, ranking_metrics, threshold_at
from flows87.research.synth import generate

HAS_GFP = gfp_mod.available()
PATTERNS = "fan,degree,temp-cycle"  # not the defaults: the report must say what GFP computed


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bench")
    data = generate(1500, 14, 3)
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    return base / "data"


def stand_in_baseline(
    train_tx: Path,
    test_tx: Path,
    budget: float,
    seed: int = 0,
    since: datetime | None = None,
    patterns: tuple[str, ...] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """What gfp.run_baseline returns, without snapml: each account's transaction count."""
    tx = pl.read_parquet(test_tx)
    counts = (
        pl.concat([tx["src_account"], tx["dst_account"]]).value_counts(name="n").sort("src_account")
    )
    return {
        "account_id": counts["src_account"].to_list(),
        "score": counts["n"].cast(pl.Float64).to_list(),
        "threshold": float(counts["n"].max()),
        "seconds": {"gfp": 0.5},
        "transactions": tx.height,
        "train_seconds": {"gfp": 0.5},
        "features": 3,
        "train_transactions": pl.read_parquet(train_tx).filter(pl.col("ts") >= since).height,
    }


@pytest.fixture(scope="module")
def report(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The bench with GFP computing PATTERNS (a stand-in for snapml when it is absent)."""
    out = tmp_path_factory.mktemp("bench-out")
    with pytest.MonkeyPatch.context() as mp:
        if not HAS_GFP:
            mp.setattr(gfp_mod, "check", lambda: None)
            mp.setattr(gfp_mod, "run_baseline", stand_in_baseline)
        doc = bench(
            data_dir,
            out,
            split=0.7,
            budget=0.05,
            gfp=True,
            gfp_patterns=PATTERNS,
            sweep_n=3,
            seed=1,
            sweep_params=["ml_cycle.min_ratio", "detectors.contamination"],
        )
    return out, doc


def test_split_time() -> None:
    lo = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    hi = datetime(2026, 1, 14, 23, 57, tzinfo=UTC)
    start, cut, end = split_time(lo, hi, 0.7)
    assert start == datetime(2026, 1, 1, tzinfo=UTC)
    assert cut == datetime(2026, 1, 10, tzinfo=UTC)  # 0.7 of 14 days, at midnight
    assert end == datetime(2026, 1, 15, tzinfo=UTC)
    _, cut, _ = split_time(lo, datetime(2026, 1, 2, 5, 0, tzinfo=UTC), 0.5)  # on the hour
    assert cut == datetime(2026, 1, 1, 14, tzinfo=UTC)
    with pytest.raises(InputError):
        split_time(lo, hi, 1.0)


def test_ranking_metrics_hand_computed() -> None:
    # 10 accounts, 3 suspicious at ranks 1, 3 and 6
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    sus = [True, False, True, False, False, True, False, False, False, False]
    frame = pl.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(10)],
            "score": scores,
            "is_suspicious": sus,
            "typology": ["t" if s else None for s in sus],
        }
    )
    m = ranking_metrics(frame, 0.2, threshold=0.55)
    assert m["alerts_at_budget"] == 2
    assert m["recall_at_budget"] == round(1 / 3, 4)
    assert m["precision_at_budget"] == 0.5
    # average precision: (1/1 + 2/3 + 3/6) / 3
    assert m["pr_auc"] == round((1 + 2 / 3 + 0.5) / 3, 4)
    assert m["threshold"] == {
        "value": 0.55,
        "alerts": 4,
        "alert_rate": 0.4,
        "recall": round(2 / 3, 4),
        "precision": 0.5,
    }
    assert m["typologies"] == {"t": {"accounts": 3, "recall_at_budget": round(1 / 3, 4)}}
    assert threshold_at(np.array(scores), 0.2) == 0.8
    # tied scores are one threshold: a constant score gets the base rate
    assert average_precision(np.array([0, 1, 0, 1]), np.zeros(4)) == pytest.approx(0.5)
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y, s = rng.random(500) < 0.1, np.round(rng.random(500), 2)  # with ties
    assert average_precision(y, s) == pytest.approx(sklearn.average_precision_score(y, s))


def test_bench_report_honours_the_split(report: tuple[Path, dict], data_dir: Path) -> None:
    out, doc = report
    assert (out / "bench.json").exists() and (out / "bench.md").exists()
    cut = datetime.fromisoformat(doc["interval"]["cut"])
    since = datetime.fromisoformat(doc["periods"]["tune"]["start"])
    tune_tx = pl.read_parquet(out / "tune_run" / "transactions.parquet")
    test_tx = pl.read_parquet(out / "report_run" / "transactions.parquet")
    assert since <= tune_tx["ts"].min() and tune_tx["ts"].max() < cut <= test_tx["ts"].min()
    source = pl.read_parquet(data_dir / "transactions.parquet")
    assert tune_tx.height + test_tx.height == source.filter(pl.col("ts") >= since).height
    # tuning read the labels of accounts active in the tuning period, and only those
    used = pl.read_parquet(out / "tune" / "labels_used.parquet")
    before = source.filter(pl.col("ts").is_between(since, cut, closed="left"))
    active_before = set(before["src_account"]) | set(before["dst_account"])
    assert set(used["account_id"]) == active_before
    only_later = (set(test_tx["src_account"]) | set(test_tx["dst_account"])) - active_before
    assert only_later and not (only_later & set(used["account_id"]))
    tune_run = json.loads((out / "tune_run" / "run.json").read_text())
    assert datetime.fromisoformat(tune_run["params"]["interval_start"]) == since
    assert datetime.fromisoformat(tune_run["params"]["interval_end"]) == cut
    # the report: detection metrics and throughput per stage of the report run
    f87 = doc["methods"]["flows87"]
    m = f87["metrics"]
    assert m["accounts"] == len(set(test_tx["src_account"]) | set(test_tx["dst_account"]))
    assert 0 <= m["recall_at_budget"] <= 1 and 0 < m["pr_auc"] <= 1
    assert "threshold" in m and m["threshold"]["value"] == doc["tune"]["threshold"]
    assert f87["throughput"]["transactions"] == test_tx.height
    assert {"ingest", "features", "rules", "graph", "cases"} <= set(f87["throughput"]["stages"])
    assert f87["throughput"]["txn_per_s"] > 0
    assert doc["tune"]["sweep"]["settings"] >= 2
    text = (out / "bench.md").read_text()
    assert "| flows87 |" in text and "transactions/s" in text


def test_tuning_period_is_as_long_as_the_report_period(report: tuple[Path, dict]) -> None:
    out, doc = report
    p = doc["periods"]
    tune = {k: datetime.fromisoformat(v) for k, v in p["tune"].items() if k != "days"}
    rep = {k: datetime.fromisoformat(v) for k, v in p["report"].items() if k != "days"}
    assert p["tune_on"] == "report-length" and p["equal_length"] is True
    # 14 days cut at day 10 (0.7, at midnight): report on the last 5 days, tune on the 5 before
    assert tune["end"] == rep["start"] == datetime.fromisoformat(doc["interval"]["cut"])
    assert rep["end"] - rep["start"] == tune["end"] - tune["start"] == timedelta(days=5)
    assert p["tune"]["days"] == p["report"]["days"] == 5
    assert tune["start"] > datetime.fromisoformat(doc["interval"]["start"])  # not all before
    assert doc["tune"]["interval"] == [p["tune"]["start"], p["tune"]["end"]]
    text = (out / "bench.md").read_text()
    assert f"Tuned on [{p['tune']['start']}, {p['tune']['end']}) (5 days" in text
    assert f"reported on [{p['report']['start']}, {p['report']['end']}) (5 days" in text
    # the old behaviour on request, and an input with less time before the cut than after
    start, cut, end = (datetime(2026, 1, d, tzinfo=UTC) for d in (1, 10, 15))
    assert tune_interval(start, cut, end) == (datetime(2026, 1, 5, tzinfo=UTC), cut)
    assert tune_interval(start, cut, end, "all") == (start, cut)
    short_cut = datetime(2026, 1, 3, tzinfo=UTC)
    assert tune_interval(start, short_cut, end) == (start, short_cut)
    with pytest.raises(InputError, match="tuning period"):
        tune_interval(start, cut, end, "half")


def test_gfp_pattern_choice_is_recorded(report: tuple[Path, dict]) -> None:
    out, doc = report
    g = doc["methods"]["gfp+iforest"]
    assert g["gfp"]["patterns"] == ["fan", "degree", "temp-cycle"]
    assert g["gfp"]["off"] == ["scatter-gather", "lc-cycle", "vertex-stats"]
    assert g["gfp"]["windows_days"] == {"fan": 1, "degree": 1, "temp-cycle": 10}
    saved = json.loads((out / "bench.json").read_text())["methods"]["gfp+iforest"]["gfp"]
    assert saved == g["gfp"]
    text = (out / "bench.md").read_text()
    assert "| gfp+iforest (fan, degree, temp-cycle) |" in text
    assert (
        "GFP computed: fan in/out (1 d), degree in/out (1 d), temporal cycles (10 d); off: "
        "scatter-gather, length-constrained cycles, vertex statistics" in text
    )
    # the defaults leave the cycles out; what GFP is asked for follows the choice
    assert gfp_mod.parse_patterns(None) == ("fan", "degree", "scatter-gather", "vertex-stats")
    default = gfp_mod.gfp_params(2)
    assert not default["temp-cycle"] and not default["lc-cycle"] and default["vertex_stats"]
    assert default["time_window"] == 5 * gfp_mod.DAY
    chosen = gfp_mod.gfp_params(2, gfp_mod.parse_patterns(PATTERNS))
    on = [k for k in ("fan", "degree", "scatter-gather", "temp-cycle", "lc-cycle") if chosen[k]]
    assert on == ["fan", "degree", "temp-cycle"] and not chosen["vertex_stats"]
    assert chosen["time_window"] == 10 * gfp_mod.DAY
    assert gfp_mod.parse_patterns("all") == tuple(gfp_mod.WINDOWS)
    assert gfp_mod.parse_patterns(" Temp_Cycle , default") == (
        "fan",
        "degree",
        "scatter-gather",
        "temp-cycle",
        "vertex-stats",
    )
    for bad in ("fan,cycles", ",", []):
        with pytest.raises(ConfigError):
            gfp_mod.parse_patterns(bad)


@pytest.mark.skipif(not HAS_GFP, reason="snapml (the bench extra) is not installed")
def test_gfp_baseline_side_by_side(report: tuple[Path, dict]) -> None:
    out, doc = report
    g = doc["methods"]["gfp+iforest"]
    assert g["metrics"]["accounts"] == doc["methods"]["flows87"]["metrics"]["accounts"]
    assert (
        g["metrics"]["alerts_at_budget"] == doc["methods"]["flows87"]["metrics"]["alerts_at_budget"]
    )
    assert g["throughput"]["txn_per_s"] > 0 and g["throughput"]["features"] > 0
    # fitted on the end of the tuning period, as long as the report period
    iv = {k: datetime.fromisoformat(v) for k, v in doc["interval"].items()}
    since = datetime.fromisoformat(g["throughput"]["fitted_from"])
    assert iv["start"] <= since < iv["cut"] and iv["cut"] - since == iv["end"] - iv["cut"]
    assert g["throughput"]["fitted_transactions"] > 0
    assert "| gfp+iforest (fan, degree, temp-cycle) |" in (out / "bench.md").read_text()


def test_gfp_missing_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapml", None)  # import fails as when not installed
    assert not gfp_mod.available()
    for fn in (gfp_mod.check, gfp_mod.load):
        with pytest.raises(ConfigError) as exc:
            fn()
        assert "snapml" in exc.value.message and "benchmarks/run.sh" in exc.value.message


def test_snapml_is_never_imported_here(report: tuple[Path, dict]) -> None:
    """snapml's fast-math library would flush subnormal floats to zero in this process."""
    assert "snapml" not in sys.modules
    assert np.nextafter(0.0, 1.0) > 0.0


def test_bench_command_refuses_missing_gfp(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snapml", None)
    assert main(["bench", str(data_dir), "--gfp", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b" / "tune_run").exists()  # refused before any work
    monkeypatch.setattr(gfp_mod, "check", lambda: None)  # as if snapml were there
    args = ["bench", str(data_dir), "--gfp", "--gfp-patterns", "fan,cycles"]
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c" / "tune_run").exists()


def test_gfp_baseline_is_stopped_after_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # a real spawned child: starting Python alone takes longer than the limit
    monkeypatch.setattr(gfp_mod, "check", lambda: None)
    t0 = time.perf_counter()
    got = gfp_mod.run_baseline(Path("absent.parquet"), Path("absent.parquet"), 0.01, timeout=0.001)
    assert got == {"timed_out": 0.001}
    assert time.perf_counter() - t0 < 30  # the child was stopped, not waited for


def test_a_stopped_baseline_is_reported_as_not_finished(report: tuple[Path, dict]) -> None:
    _, doc = report
    stopped = {**doc, "methods": {**doc["methods"]}}
    g = doc["methods"]["gfp+iforest"]
    stopped["methods"]["gfp+iforest"] = {"label": g["label"], "gfp": g["gfp"], "timed_out": 1800}
    text = markdown(stopped)
    assert (
        "| gfp+iforest (fan, degree, temp-cycle) | not finished within 1,800 s (stopped) |" in text
    )
    assert "stopped after 1,800 s without a result" in text
    assert "| flows87 |" in text  # flows87's side stands

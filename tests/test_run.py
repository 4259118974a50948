"""End to end: `flows87 run` on generated data catches every typology and writes its report.

Also checks the run directory contract (DESIGN.md): outside tools read accounts_scored,
signals and cases with plain Parquet readers, without importing flows87.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows87.cli import EXIT_OK, main
from flows87.io import write_parquet
from flows87.synth import TYPOLOGIES, generate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("e2e")
    data = generate(6000, 30, seed=5)
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    assert (
        main(["run", str(base / "data"), "--out", str(base / "run"), "--quiet", "--json"])
        == EXIT_OK
    )
    return base / "run"


def test_every_typology_is_caught(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    per_typology = metrics["accounts"]["typologies"]
    assert set(per_typology) == set(TYPOLOGIES)
    missed = [t for t, m in per_typology.items() if not m["recall"]]
    assert not missed, f"no account of {missed} is in a case"
    assert metrics["accounts"]["precision"] > 0.2
    assert metrics["accounts"]["alert_rate"] < 0.08


def test_run_directory_contract_is_readable_without_flows87(run_dir: Path) -> None:
    scored = pq.read_table(run_dir / "accounts_scored.parquet")
    assert {"account_id", "risk_score", "case_id", "is_suspicious", "typology"} <= set(
        scored.column_names
    )
    signals = pq.read_table(run_dir / "signals.parquet")
    assert {"source", "signal_id", "account_id", "txn_ids", "score", "evidence"} <= set(
        signals.column_names
    )
    assert set(signals.column("source").to_pylist()) == {"rule", "detector", "graph"}
    json.loads(signals.column("evidence")[0].as_py())
    cases = pq.read_table(run_dir / "cases.parquet")
    assert {"case_id", "risk_score", "accounts", "summary"} <= set(cases.column_names)
    assert cases.num_rows > 0
    assert all(len(s) > 40 for s in cases.column("summary").to_pylist())
    for gate in ("raw_transactions", "raw_accounts", "features", "signals", "cases"):
        assert (run_dir / "quality" / f"{gate}.json").exists(), gate


def test_report_is_written(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    for heading in ("Stages", "Data quality", "cases", "Signals", "Detection quality"):
        assert heading in html and heading in md
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "succeeded"
    assert set(info["stage_seconds"]) >= {
        "ingest",
        "features",
        "rules",
        "detectors",
        "graph",
        "signals",
        "cases",
        "report",
    }
    assert not (run_dir / "run.failed.json").exists()

"""End to end: `flows87 run` on generated data catches every typology and writes its report.

Also checks the run directory contract (docs/run-directory.md): outside tools read accounts_scored,
signals and cases with plain Parquet readers, without importing flows87.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from flows87.cli import EXIT_OK, main
from flows87.io import write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.plan import PLAN, step
from flows87.pipeline.run import run_steps
from flows87.pipeline.stages.config import RunConfig
from flows87.research.synth import TYPOLOGIES, generate
from flows87.rundir import RunDir


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
    # 5.2 % on this data, the same in every run (see the row-order test below)
    assert metrics["accounts"]["alert_rate"] < 0.06


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
    # the data quality table shows each gate's row counts, read from its result JSON
    gate = json.loads((run_dir / "quality" / "raw_transactions.json").read_text())
    rows_in = gate["meta"]["flows87"]["stats"]["rows_in"]
    assert f"| raw_transactions | yes | {rows_in:,} | 0 |" in md
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


def test_same_data_in_another_row_order_gives_the_same_results(
    run_dir: Path, tmp_path: Path
) -> None:
    """Idempotent re-runs (the Airflow DAGs rely on them): every stage after ingest, run on the
    same tables with their rows shuffled, writes identical files. Louvain splits, graph-pattern
    instances, float sums and tie orders all used to follow the row order (or the order of a
    polars group-by, which changes from process to process), moving the alert rate by about
    half a point between runs of the same data."""
    for name, seed in (("transactions", 1), ("accounts", 2)):
        frame = pl.read_parquet(run_dir / f"{name}.parquet")
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        write_parquet(shuffled, tmp_path / f"{name}.parquet")
    after_ingest = [s for s in PLAN if s.stage not in ("ingest", "report", "publish")]
    run_steps(Job.local(tmp_path), after_ingest)
    for name in ("features", "signals", "anomaly_scores", "accounts_scored", "cases"):
        try:
            assert_frame_equal(
                pl.read_parquet(tmp_path / f"{name}.parquet"),
                pl.read_parquet(run_dir / f"{name}.parquet"),
                check_exact=True,
            )
        except AssertionError as err:
            raise AssertionError(f"{name}.parquet differs: {err}") from None


# ---------------------------------------------------------------- rows set aside keep everything

PAYSIM_HEADER = (
    "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,"
    "newbalanceDest,isFraud,isFlaggedFraud"
)
ZERO_ROWS = (101, 402, 803)


def paysim_file(path: Path, n: int = 900) -> list[str]:
    """A PaySim-shaped file; rows ZERO_ROWS are fraud-labelled transfers of amount 0.00 (as on
    a real PaySim copy). Returns its lines (header first)."""
    lines = [PAYSIM_HEADER]
    for row in range(1, n + 1):
        zero = row in ZERO_ROWS
        kind = "TRANSFER" if zero or row % 3 == 0 else ("PAYMENT" if row % 3 == 1 else "CASH_OUT")
        dest = f"M{row % 41}" if kind == "PAYMENT" else f"C{1000 + (row * 7) % 211}"
        amount = "0.00" if zero else f"{(row * 37) % 4000 + 5}.25"
        fraud = int(zero or row % 97 == 0)
        lines.append(
            f"{1 + row // 40},{kind},{amount},C{row % 211},{row}.0,0.0,{dest},0.0,0.0,{fraud},0"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_paysim_zero_amount_fraud_rows_are_quarantined_whole_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case through `flows87 run`: three fraud-labelled rows of amount 0.00 are
    rejected at parse time; the quarantine keeps each whole (every raw field, isFraud too), and
    the console, the ingest summary, run.json and the report all say 3 quarantined."""
    source = tmp_path / "PS_log.csv"
    lines = paysim_file(source)
    run = tmp_path / "run"
    assert main(["run", str(source), "--out", str(run), "--quiet"]) == EXIT_OK

    console = " ".join(capsys.readouterr().out.split())
    assert "transactions quarantined │ 3 │" in console
    assert "accounts quarantined │ 0 │" in console

    quarantine = pl.read_parquet(run / "quarantine" / "raw_transactions.parquet")
    assert quarantine["source_row"].to_list() == list(ZERO_ROWS)
    assert set(quarantine["expectation"]) == {"parse"}
    assert set(quarantine["source_file"]) == {str(source)}
    assert set(quarantine["reason"]) == {'amount must be > 0 (amount = "0.00")'}
    header = PAYSIM_HEADER.split(",")
    for row, record in quarantine.select("source_row", "record").iter_rows():
        fields = json.loads(record)
        assert fields == dict(zip(header, lines[row].split(","), strict=True))
        assert fields["isFraud"] == "1"

    summary = json.loads((run / "stages" / "gate_raw.json").read_text())["counts"]
    assert summary["quarantined"] == {"accounts": 0, "transactions": 3}
    assert summary["parse_rejected"] == {"accounts": 0, "transactions": 3}
    assert summary["failed_checks"] == {"accounts": 0, "transactions": 0}
    assert summary["rows_in"]["transactions"] == 900
    assert summary["transactions"] == 897

    info = json.loads((run / "run.json").read_text())
    assert info["counts"]["gate_raw"]["quarantined"]["transactions"] == 3
    assert info["quarantine"]["raw_transactions"] == {
        "rows_in": 900,
        "rows_quarantined": 3,
        "rows_parse_rejected": 3,
        "rows_failed_checks": 0,
    }
    md = (run / "report.md").read_text()
    assert "| raw_transactions | yes | 900 | 3 | 3 | 0 | none |" in md
    html = (run / "report.html").read_text()
    assert "<td>raw_transactions</td><td>yes</td><td>900</td><td>3</td><td>3</td><td>0</td>" in html
    gate_md = (run / "quality" / "raw_transactions.md").read_text()
    assert "- quarantined: 3 (3 parse rejects + 0 rows failing checks)" in gate_md


def test_dag_path_quarantines_parse_rejects_beside_failed_checks(tmp_path: Path) -> None:
    """The DAG's read → gate_raw on a canonical CSV with a bad amount (two bad cells, one row)
    and a duplicated txn_id (a failed check, both copies): one quarantine row per source row,
    and read.json, gate_raw.json, run.json and the report count them."""
    fixture = Path(__file__).parent / "fixtures" / "canonical" / "csv"
    data = tmp_path / "data"
    data.mkdir()
    lines = (fixture / "transactions.csv").read_text(encoding="utf-8").splitlines()
    bad = "t5,2026-01-08T10:00:00Z,A1,A3,12;50,USD,,p2p,,,,,,,true,ht_hotel_pattern,s-2"
    dup = "t1,2026-01-08T11:00:00Z,A2,A5,50,USD,50,p2p,,,,,,,false,,"
    (data / "transactions.csv").write_text("\n".join([*lines, bad, dup]) + "\n")
    (data / "accounts.csv").write_bytes((fixture / "accounts.csv").read_bytes())
    run = tmp_path / "run"
    config = RunConfig(max_reject_fraction=0.5, max_failed_fraction=0.5)
    # as the DAG's tasks run: each step hands the next one files, not memory
    job = Job(RunDir(run), config, source=str(data), command="flows87_daily")

    read = step("read").function()(job)
    assert read["parse_rejected"] == {"accounts": 0, "transactions": 1}
    staged = pl.read_parquet(run / "staging" / "rejects.parquet")
    assert staged.select("source_row", "column").rows() == [(5, "amount"), (5, "amount_base")]
    gated = step("gate_raw").function()(job)
    assert gated["quarantined"]["transactions"] == 3
    assert gated["parse_rejected"]["transactions"] == 1
    assert gated["failed_checks"]["transactions"] == 2
    step("report").function()(job)

    q = pl.read_parquet(run / "quarantine" / "raw_transactions.parquet")
    assert q.select("source_row", "txn_id", "expectation").rows() == [
        (1, "t1", "expect_column_values_to_be_unique"),
        (5, None, "parse"),
        (6, "t1", "expect_column_values_to_be_unique"),
    ]
    parsed = q.row(1, named=True)
    assert parsed["column"] == "amount; amount_base"
    assert parsed["reason"] == ('not a number (amount = "12;50"); empty value (amount_base = "")')
    record = json.loads(parsed["record"])
    assert record == dict(zip(lines[0].split(","), bad.split(","), strict=True))
    assert q.row(0, named=True)["record"] is None  # a check failure is its canonical row

    recorded = {
        name: json.loads((run / "stages" / f"{name}.json").read_text())["counts"]
        for name in ("read", "gate_raw")
    }
    assert recorded["read"]["parse_rejected"]["transactions"] == 1
    assert recorded["gate_raw"]["quarantined"] == {"accounts": 0, "transactions": 3}
    info = json.loads((run / "run.json").read_text())
    assert info["quarantine"]["raw_transactions"]["rows_quarantined"] == 3
    assert info["quarantine"]["raw_transactions"]["rows_in"] == 6
    assert "| raw_transactions | no | 6 | 3 | 1 | 2 |" in (run / "report.md").read_text()

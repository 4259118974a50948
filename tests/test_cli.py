"""The `flows87` command as a user meets it: help, exit codes, files written, no tracebacks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows87 import catalogue
from flows87.cli import EXIT_GATE, EXIT_OK, EXIT_USER, main

FLOWS87 = shutil.which("flows87", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    assert (
        main(
            [
                "synth",
                "--accounts",
                "1000",
                "--days",
                "14",
                "--seed",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == EXIT_OK
    )
    return out


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    text = capsys.readouterr().out
    for cmd in ("synth", "ingest", "demo", "schema", "detect"):
        assert cmd in text
    assert "Exit codes" in text


def test_synth_writes_labelled_tables(synth_dir: Path) -> None:
    tx = pl.read_parquet(synth_dir / "transactions.parquet")
    acc = pl.read_parquet(synth_dir / "accounts.parquet")
    assert tx.height > 1000 and acc.height >= 1000
    assert tx["is_suspicious"].any() and not tx["is_suspicious"].all()
    assert acc["is_suspicious"].any()


def test_ingest_of_synth_output_writes_run_directory(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["ingest", str(synth_dir), "--out", str(run), "--json", "--quiet"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "canonical"
    tx = pl.read_parquet(run / "transactions.parquet")
    assert tx.height == summary["transactions"]
    assert (
        tx.height + summary["quarantined"]["transactions"]
        == pl.read_parquet(synth_dir / "transactions.parquet").height
    )
    assert (run / "quality" / "raw_transactions.json").exists()
    assert (run / "quality" / "raw_accounts.json").exists()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "succeeded"
    assert info["input"]["sha256"] and set(info["stage_seconds"]) == {"ingest"}
    timings = {
        k: v
        for name in ("read", "gate_raw")
        for k, v in json.loads((run / "stages" / f"{name}.json").read_text())["timings"].items()
    }
    assert set(timings) == {"read", "gate_accounts", "gate_transactions", "write"}


def test_gate_failure_exits_3_and_keeps_earlier_results(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["ingest", str(synth_dir), "--out", str(run), "--quiet"]) == EXIT_OK
    before = (run / "transactions.parquet").read_bytes()
    capsys.readouterr()
    # An interval covering 2 of the 14 days: most rows fall outside it and the gate stops the run.
    code = main(
        [
            "ingest",
            str(synth_dir),
            "--out",
            str(run),
            "--quiet",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-03",
        ]
    )
    assert code == EXIT_GATE
    err = capsys.readouterr().err
    assert "raw_transactions" in err and "quarantine" in err
    assert (run / "transactions.parquet").read_bytes() == before
    assert json.loads((run / "run.json").read_text())["status"] == "succeeded"
    assert json.loads((run / "run.failed.json").read_text())["status"] == "failed"
    assert list((run / "quarantine").glob("*.parquet"))


def test_wrong_header_is_a_user_error_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar,baz\n1,2,3\n", encoding="utf-8")
    assert FLOWS87, "console script not installed"
    proc = subprocess.run(
        [FLOWS87, "ingest", str(bad), "--out", str(tmp_path / "r"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == EXIT_USER
    assert "bad.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "transactions.parquet").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["ingest", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == EXIT_USER
    assert main(["synth", "--accounts", "5", "--out", str(tmp_path)]) == EXIT_USER
    assert (
        main(["ingest", str(tmp_path), "--out", str(tmp_path / "r"), "--start", "2026-01-01"])
        == EXIT_USER
    )


def test_detect_and_schema(synth_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(synth_dir)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "canonical"
    assert main(["schema"]) == EXIT_OK
    assert "`txn_id`" in capsys.readouterr().out


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path),
                "--accounts",
                "1000",
                "--days",
                "10",
                "--json",
                "--quiet",
            ]
        )
        == EXIT_OK
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["ingest"]["labelled"] and summary["ingest"]["suspicious_transactions"] > 0
    run = tmp_path / "run"
    for name in (
        "transactions.parquet",
        "features.parquet",
        "signals.parquet",
        "accounts_scored.parquet",
        "cases.parquet",
        "report.html",
        "report.md",
        "run.json",
    ):
        assert (run / name).exists(), name
    assert summary["cases"]["cases"] == pl.read_parquet(run / "cases.parquet").height > 0
    assert summary["report"]["metrics"]["accounts"]["suspicious_accounts"] > 0

    # `flows87 show` prints the same run's top cases and recall per typology
    assert main(["show", str(run), "--top", "3"]) == EXIT_OK
    shown = capsys.readouterr().out
    top = pl.read_parquet(run / "cases.parquet")["case_id"].head(3).to_list()
    assert all(c in shown for c in top)
    assert "recall" in shown and "report.html" in shown


def test_show_refuses_a_folder_without_cases(tmp_path: Path) -> None:
    assert main(["show", str(tmp_path)]) == EXIT_USER


def _catalogue_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))


def test_rules_init_copies_the_catalogue_out_to_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled = catalogue.rules_dir()
    mine = tmp_path / "my-rules"
    assert main(["rules", "init", str(mine)]) == EXIT_OK
    said = capsys.readouterr().out
    assert f"--rules {mine}" in said and "flows87 rules lint" in said
    assert _catalogue_files(mine) == _catalogue_files(bundled)
    assert "settings/features.yaml" in _catalogue_files(mine)
    for rel in _catalogue_files(bundled):
        assert (mine / rel).read_bytes() == (bundled / rel).read_bytes(), rel

    # the copy is what --rules reads: an edited title shows in `rules list FOLDER`
    edited = mine / "ml_cycle.yaml"
    edited.write_text(
        re.sub(r"(?m)^title: .*$", "title: my own cycle rule", edited.read_text(encoding="utf-8")),
        encoding="utf-8",
    )
    assert main(["rules", "list", str(mine), "--json"]) == EXIT_OK
    titles = {r["id"]: r["title"] for r in json.loads(capsys.readouterr().out)}
    assert titles["ml_cycle"] == "my own cycle rule"
    assert len(titles) == len(list(bundled.glob("*.yaml")))

    # a folder that is not empty is refused, and left as it was, unless --force
    assert main(["rules", "init", str(mine)]) == EXIT_USER
    assert "--force" in capsys.readouterr().err
    assert "my own cycle rule" in edited.read_text(encoding="utf-8")
    assert main(["rules", "init", str(mine), "--force"]) == EXIT_OK
    assert edited.read_bytes() == (bundled / "ml_cycle.yaml").read_bytes()

    # an empty folder that already exists is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["rules", "init", str(empty)]) == EXIT_OK
    assert _catalogue_files(empty) == _catalogue_files(bundled)


def test_the_bundled_catalogue_is_the_checkouts_top_level_folders() -> None:
    """In a checkout (and the editable install) the catalogue is rules/ and expectations/."""
    root = Path(__file__).resolve().parents[1]
    assert catalogue.rules_dir() == root / "rules"
    assert catalogue.suites_dir() == root / "expectations"
    with pytest.raises(ValueError):
        catalogue.bundled("templates")


def test_run_in_partitions_gives_the_same_tables(synth_dir: Path, tmp_path: Path) -> None:
    """`flows87 run --partitions 3` runs the partitioned steps one after another, as the DAG's
    mapped tasks do (the graph and cases stages as its tasks too): every table equals the
    one-partition run's, row for row."""
    from polars.testing import assert_frame_equal

    for n in (1, 3):
        args = ["run", str(synth_dir), "--out", str(tmp_path / f"p{n}"), "--quiet", "--json"]
        assert main([*args, "--partitions", str(n)]) == EXIT_OK
    parts = pl.read_parquet(tmp_path / "p3" / "partitions.parquet")
    assert parts["part"].n_unique() == 3
    records = {p.stem for p in (tmp_path / "p3" / "stages").glob("*.json")}
    assert {"graph_part-0002", "score_accounts-0002", "graph", "cases"} <= records
    tables = sorted(p.name for p in (tmp_path / "p1").glob("*.parquet"))
    assert "cases.parquet" in tables
    for name in tables:
        if name == "partitions.parquet":
            continue
        a, b = pl.read_parquet(tmp_path / "p1" / name), pl.read_parquet(tmp_path / "p3" / name)
        try:
            assert_frame_equal(a, b, check_exact=True)
        except AssertionError as err:
            raise AssertionError(f"{name} differs: {err}") from None

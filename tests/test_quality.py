"""Quality gates on small inline frames, with real great_expectations and the shipped suites."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87 import schema
from flows87.errors import ConfigError, QualityGateError
from flows87.pipeline.quality import ON_FAIL, SUITES_DIR, load_suite, run_gate

START = datetime(2024, 3, 1, tzinfo=UTC)
END = datetime(2024, 3, 2, tzinfo=UTC)
ACCOUNTS = [f"acc{i}" for i in range(6)]
PARAMS = {"interval_start": START, "interval_end": END, "known_accounts": ACCOUNTS}


def transactions(n: int = 20, **changes: dict[int, object]) -> pl.DataFrame:
    """`n` clean canonical transactions; `changes` = {column: {row: new value}}."""
    data: dict[str, list[object]] = {
        "txn_id": [f"t{i}" for i in range(n)],
        "ts": [START + timedelta(minutes=7 * i) for i in range(n)],
        "src_account": [ACCOUNTS[i % 6] for i in range(n)],
        "dst_account": [ACCOUNTS[(i + 1) % 6] for i in range(n)],
        "amount": [10.0 + i for i in range(n)],
        "currency": ["USD"] * n,
        "amount_base": [10.0 + i for i in range(n)],
        "channel": [schema.CHANNELS[i % len(schema.CHANNELS)] for i in range(n)],
        "mcc": ["5411" if i % 3 == 0 else None for i in range(n)],
        "src_country": ["DE" if i % 2 else None for i in range(n)],
    }
    for column, rows in changes.items():
        for row, value in rows.items():
            data[column][row] = value
    return schema.conform(pl.DataFrame(data), "transactions").collect()


def accounts(**changes: dict[int, object]) -> pl.DataFrame:
    data: dict[str, list[object]] = {
        "account_id": list(ACCOUNTS),
        "party_id": [f"p{i}" for i in range(6)],
        "bank_id": ["001"] * 6,
        "kind": ["individual", "business", "unknown"] * 2,
        "opened_at": [datetime(2020, 1, 1 + i, tzinfo=UTC) for i in range(6)],
        "country": ["DE", "FR", None, "US", "GB", "NL"],
    }
    for column, rows in changes.items():
        for row, value in rows.items():
            data[column][row] = value
    return schema.conform(pl.DataFrame(data), "accounts").collect()


def test_clean_frame_passes_and_writes_files(tmp_path: Path) -> None:
    frame = transactions()
    result = run_gate(frame, "raw_transactions", tmp_path, params=PARAMS)

    assert_frame_equal(result.passed, frame)
    assert result.quarantined.height == 0
    assert result.quarantined.columns == [*frame.columns, "reason", "expectation", "column"]
    assert result.quarantine_path is None
    assert not (tmp_path / "quarantine" / "raw_transactions.parquet").exists()
    assert result.result_path == tmp_path / "quality" / "raw_transactions.json"
    assert result.report_path == tmp_path / "quality" / "raw_transactions.md"
    gx_result = json.loads(result.result_path.read_text())
    assert len(gx_result["results"]) == len(load_suite("raw_transactions").expectations)
    assert all(r["success"] for r in gx_result["results"])
    assert "passed" in result.report_path.read_text().splitlines()[0]
    assert result.stats["rows_in"] == result.stats["rows_passed"] == frame.height
    assert result.stats["rows_checked"] == frame.height
    assert result.stats["rows_quarantined"] == result.stats["rows_parse_rejected"] == 0
    assert result.stats["failed_fraction"] == 0.0
    assert result.stats["expectations_failed"] == []
    assert result.stats["warnings"] == []


def test_bad_rows_are_quarantined_with_their_reasons(tmp_path: Path) -> None:
    late = END + timedelta(hours=1)
    frame = transactions(
        n=30,
        amount={1: -5.0, 6: -1.0},
        src_account={2: None},
        txn_id={4: "t3"},  # rows 3 and 4 share an id
        currency={5: "usd", 6: "usd"},
        ts={7: late},
    )
    result = run_gate(frame, "raw_transactions", tmp_path, params=PARAMS, max_failed_fraction=0.5)

    bad = [1, 2, 3, 4, 5, 6, 7]
    keep = pl.Series([i not in bad for i in range(frame.height)])
    assert_frame_equal(result.passed, frame.filter(keep))
    assert_frame_equal(
        result.quarantined.drop("reason", "expectation", "column"), frame.filter(~keep)
    )
    reasons = dict(
        zip(frame.filter(~keep)["txn_id"].to_list(), result.quarantined["reason"], strict=True)
    )
    assert reasons["t1"] == "expect_column_values_to_be_between(amount, min 0.0 exclusive): -5.0"
    assert reasons["t2"] == "expect_column_values_to_not_be_null(src_account): null"
    assert (
        result.quarantined.filter(pl.col("txn_id") == "t3")["reason"].to_list()
        == ["expect_column_values_to_be_unique(txn_id): t3"] * 2
    )
    assert reasons["t5"] == "expect_column_values_to_match_regex(currency, regex ^[A-Z]{3}$): usd"
    assert reasons["t7"] == (
        "expect_column_values_to_be_between(ts, min interval_start=2024-03-01T00:00:00+00:00, "
        "max interval_end=2024-03-02T00:00:00+00:00 exclusive): 2024-03-02 01:00:00.000000+00:00"
    )
    both = result.quarantined.filter(pl.col("txn_id") == "t6").row(0, named=True)
    assert both["reason"].split("; ") == [
        "expect_column_values_to_be_between(amount, min 0.0 exclusive): -1.0",
        "expect_column_values_to_match_regex(currency, regex ^[A-Z]{3}$): usd",
    ]
    assert (
        both["expectation"]
        == "expect_column_values_to_be_between; expect_column_values_to_match_regex"
    )
    assert both["column"] == "amount; currency"

    on_disk = pl.read_parquet(result.quarantine_path)
    assert_frame_equal(on_disk, result.quarantined)
    assert result.stats["rows_quarantined"] == len(bad)
    assert result.stats["failed_fraction"] == pytest.approx(len(bad) / frame.height)
    assert "expect_column_values_to_be_unique(txn_id)" in result.stats["expectations_failed"]


def test_too_many_bad_rows_stop_the_run_after_writing_everything(tmp_path: Path) -> None:
    frame = transactions(n=10, amount={3: 0.0})
    with pytest.raises(QualityGateError) as caught:
        run_gate(frame, "raw_transactions", tmp_path, params=PARAMS)

    message = str(caught.value)
    report = tmp_path / "quality" / "raw_transactions.md"
    quarantine = tmp_path / "quarantine" / "raw_transactions.parquet"
    assert "expect_column_values_to_be_between(amount)" in message
    assert "1 of 10 rows rejected" in message
    assert str(report) in message and str(quarantine) in message
    assert caught.value.exit_code == 3
    assert (tmp_path / "quality" / "raw_transactions.json").exists()
    assert report.read_text().startswith("# Quality gate `raw_transactions`: STOPPED")
    assert pl.read_parquet(quarantine)["txn_id"].to_list() == ["t3"]


def test_missing_required_column_fails_the_table(tmp_path: Path) -> None:
    frame = transactions().drop("amount_base")
    with pytest.raises(QualityGateError) as caught:
        run_gate(frame, "raw_transactions", tmp_path, params=PARAMS)

    assert "expect_table_columns_to_match_set failed (missing: ['amount_base'])" in str(
        caught.value
    )
    report = (tmp_path / "quality" / "raw_transactions.md").read_text()
    assert "skipped: column(s) ['amount_base'] not in the frame" in report


def test_wrong_column_type_fails_the_table(tmp_path: Path) -> None:
    frame = transactions().with_columns(pl.col("amount").cast(pl.String))
    with pytest.raises(
        QualityGateError, match=r"expect_column_values_to_be_of_type\(amount\) failed"
    ):
        run_gate(frame, "raw_transactions", tmp_path, params=PARAMS)


def test_prior_rejects_are_quarantined_and_counted(tmp_path: Path) -> None:
    record = '{"id":"x7","amount":"12,5"}'
    rejects = pl.DataFrame(
        {
            "table": ["transactions"],
            "source_file": ["in.csv"],
            "source_row": [7],
            "column": ["amount"],
            "value": ["12,5"],
            "reason": ["not a number"],
            "record": [record],
        }
    )
    frame = transactions(n=9)
    result = run_gate(
        frame,
        "raw_transactions",
        tmp_path,
        params=PARAMS,
        prior_rejects=rejects,
        max_failed_fraction=0.2,
    )

    assert_frame_equal(result.passed, frame)
    stored = pl.read_parquet(result.quarantine_path)
    assert_frame_equal(stored, result.quarantined)
    assert stored.columns == [
        *frame.columns,
        "reason",
        "expectation",
        "column",
        "value",
        "table",
        "source_file",
        "record",
    ]
    row = stored.row(0, named=True)
    assert {k: row[k] for k in (*rejects.columns, "expectation")} == {
        "table": "transactions",
        "source_file": "in.csv",
        "source_row": 7,
        "column": "amount",
        "value": "12,5",
        "reason": 'not a number (amount = "12,5")',
        "record": record,
        "expectation": "parse",
    }
    assert row["txn_id"] is None  # nothing parsed: the record is the row
    stats = result.stats
    assert (stats["rows_in"], stats["rows_checked"], stats["rows_passed"]) == (10, 9, 9)
    assert (stats["rows_quarantined"], stats["rows_parse_rejected"]) == (1, 1)
    assert stats["rows_failed_checks"] == 0
    assert stats["failed_fraction"] == pytest.approx(1 / 10)
    gx_stats = json.loads(result.result_path.read_text())["meta"]["flows87"]["stats"]
    assert gx_stats["rows_quarantined"] == 1
    report = result.report_path.read_text()
    assert "- rows in: 10 (checked: 9; rejected by the reader when parsing: 1)" in report
    assert "- quarantined: 1 (1 parse rejects + 0 rows failing checks)" in report

    with pytest.raises(QualityGateError, match=r"1 of 10 rows rejected .*parse rejects: 1"):
        run_gate(frame, "raw_transactions", tmp_path, params=PARAMS, prior_rejects=rejects)


def test_parse_rejects_and_failed_checks_are_one_row_per_source_row(tmp_path: Path) -> None:
    """A row the reader rejected for two cells is one quarantine row with both reasons, beside
    the rows failing checks, in source-row order; a reject without `record` (older callers)
    still goes in."""
    frame = transactions(n=8, amount={2: -5.0}).with_columns(
        source_row=pl.Series([1, 2, 3, 5, 6, 7, 9, 10], dtype=pl.Int64)
    )
    cells = [
        (4, "amount", "0.00", "amount must be > 0"),
        (4, "isFraud", "yes please", "not a boolean (expected 0/1 or true/false)"),
        (8, "nameOrig", "", "empty value"),
    ]
    rejects = pl.DataFrame(
        {
            "table": ["transactions"] * 3,
            "source_file": ["ps.csv"] * 3,
            "source_row": [r for r, *_ in cells],
            "column": [c for _, c, _, _ in cells],
            "value": [v for *_, v, _ in cells],
            "reason": [why for *_, why in cells],
            "record": ['{"amount":"0.00","isFraud":"yes please"}'] * 2 + ['{"nameOrig":""}'],
        }
    )
    result = run_gate(
        frame,
        "raw_transactions",
        tmp_path,
        params=PARAMS,
        prior_rejects=rejects,
        max_failed_fraction=1,
    )

    q = pl.read_parquet(result.quarantine_path)
    assert q.select("source_row", "expectation", "txn_id").rows() == [
        (3, "expect_column_values_to_be_between", "t2"),
        (4, "parse", None),
        (8, "parse", None),
    ]
    four = q.row(1, named=True)
    assert four["column"] == "amount; isFraud"
    assert four["value"] == "0.00; yes please"
    assert four["reason"] == (
        'amount must be > 0 (amount = "0.00"); '
        'not a boolean (expected 0/1 or true/false) (isFraud = "yes please")'
    )
    assert json.loads(four["record"]) == {"amount": "0.00", "isFraud": "yes please"}
    check_row = q.row(0, named=True)
    assert check_row["amount"] == -5.0 and check_row["record"] is None
    assert check_row["reason"].startswith("expect_column_values_to_be_between(amount")
    assert (result.stats["rows_parse_rejected"], result.stats["rows_failed_checks"]) == (2, 1)
    assert (result.stats["rows_in"], result.stats["rows_quarantined"]) == (10, 3)

    no_record = rejects.drop("record").head(1)
    result = run_gate(
        transactions(n=8),
        "raw_transactions",
        tmp_path,
        params=PARAMS,
        prior_rejects=no_record,
        max_failed_fraction=1,
    )
    q = pl.read_parquet(result.quarantine_path)
    assert q.select("source_row", "column", "record").rows() == [(4, "amount", None)]


def test_a_raw_gate_without_parse_rejects_keeps_the_columns(tmp_path: Path) -> None:
    empty = pl.DataFrame(
        schema={
            **dict.fromkeys(("table", "source_file"), pl.String),
            "source_row": pl.Int64,
            **dict.fromkeys(("column", "value", "reason", "record"), pl.String),
        }
    )
    result = run_gate(
        transactions(amount={0: -1.0}),
        "raw_transactions",
        tmp_path,
        params=PARAMS,
        prior_rejects=empty,
        max_failed_fraction=1,
    )
    q = pl.read_parquet(result.quarantine_path)
    assert q.columns[-4:] == ["value", "table", "source_file", "record"]
    assert q["txn_id"].to_list() == ["t0"]
    assert result.stats["rows_quarantined"] == result.stats["rows_failed_checks"] == 1


def test_warn_only_expectations_keep_rows(tmp_path: Path) -> None:
    copy_of_8 = {
        "ts": START + timedelta(minutes=7 * 8),
        "src_account": "acc2",
        "dst_account": "acc3",
        "amount": 18.0,
        "channel": schema.CHANNELS[8],
    }
    frame = transactions(
        dst_account={0: "acc0", 1: "stranger", 9: copy_of_8["dst_account"]},  # 0: self-transfer
        mcc={3: "54x"},
        src_country={4: "germany"},
        **{c: {9: v} for c, v in copy_of_8.items() if c != "dst_account"},  # 9 repeats row 8
    )
    result = run_gate(frame, "raw_transactions", tmp_path, params=PARAMS)

    assert_frame_equal(result.passed, frame)
    assert result.quarantined.height == 0
    assert result.quarantine_path is None
    failed = set(result.stats["expectations_failed"])
    assert failed == {
        "expect_column_values_to_be_null(dst_account) where src_account == dst_account",
        "expect_compound_columns_to_be_unique(ts, src_account, dst_account, amount, currency, "
        "channel)",
        "expect_column_values_to_be_null(dst_account_unknown)",
        "expect_column_values_to_match_regex(mcc)",
        "expect_column_values_to_match_regex(src_country)",
    }
    assert all(any(w.startswith(name) for w in result.stats["warnings"]) for name in failed)
    report = result.report_path.read_text()
    assert "| warn | FAIL | 1 | 5.00% | stranger |" in report


def test_without_parameters_defaults_apply_and_referential_checks_are_skipped(
    tmp_path: Path,
) -> None:
    frame = transactions(ts={0: datetime(1970, 1, 1, tzinfo=UTC)})  # an epoch-zero parse error
    result = run_gate(frame, "raw_transactions", tmp_path, max_failed_fraction=0.1)

    assert result.quarantined["txn_id"].to_list() == ["t0"]
    warnings = "\n".join(result.stats["warnings"])
    assert "raw_transactions: parameter interval_start not given" in warnings
    assert (
        "expect_column_values_to_be_null(src_account_unknown) skipped: parameter 'known_accounts'"
        in warnings
    )


def test_rerun_without_rejects_removes_the_stale_quarantine(tmp_path: Path) -> None:
    run_gate(
        transactions(amount={0: -1.0}),
        "raw_transactions",
        tmp_path,
        params=PARAMS,
        max_failed_fraction=1,
    )
    assert (tmp_path / "quarantine" / "raw_transactions.parquet").exists()
    result = run_gate(transactions(), "raw_transactions", tmp_path, params=PARAMS)
    assert result.quarantine_path is None
    assert not (tmp_path / "quarantine" / "raw_transactions.parquet").exists()


def test_accounts_gate(tmp_path: Path) -> None:
    frame = accounts(
        account_id={1: "acc0"},  # a duplicate id: both copies go
        kind={3: "person"},
        opened_at={4: datetime(2024, 5, 1, tzinfo=UTC)},  # after the interval: warn only
        country={5: "nl"},
    )
    result = run_gate(frame, "raw_accounts", tmp_path, params=PARAMS, max_failed_fraction=1)

    assert result.quarantined.select("account_id", "kind").rows() == [
        ("acc0", "individual"),
        ("acc0", "business"),
        ("acc3", "person"),
    ]
    assert result.passed["account_id"].to_list() == ["acc2", "acc4", "acc5"]
    assert {w.split(":")[0] for w in result.stats["warnings"]} == {
        "expect_column_values_to_be_between(opened_at)",
        "expect_column_values_to_match_regex(country)",
    }


@pytest.mark.parametrize("suite_file", sorted(SUITES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_suite_loads_and_declares_its_policy(suite_file: Path) -> None:
    suite = load_suite(suite_file.stem)
    assert suite.expectations
    for exp in suite.expectations:
        assert exp.meta["on_fail"] in ON_FAIL
        assert exp.meta["notes"].strip()


@pytest.mark.parametrize(
    ("suite_name", "table", "value_set"),
    [
        ("raw_transactions", "transactions", schema.CHANNELS),
        ("raw_accounts", "accounts", schema.ACCOUNT_KINDS),
    ],
)
def test_raw_suites_follow_the_canonical_schema(
    suite_name: str, table: str, value_set: tuple[str, ...]
) -> None:
    configs = [e.configuration for e in load_suite(suite_name).expectations]
    column_sets = [
        c.kwargs["column_set"] for c in configs if c.type == "expect_table_columns_to_match_set"
    ]
    assert column_sets == [schema.required_columns(table)]
    typed = {c.kwargs["column"] for c in configs if c.type == "expect_column_values_to_be_of_type"}
    assert set(schema.required_columns(table)) <= typed
    value_sets = [
        set(c.kwargs["value_set"]) for c in configs if c.type == "expect_column_values_to_be_in_set"
    ]
    assert value_sets == [set(value_set)]


GOOD = {
    "type": "expect_column_values_to_not_be_null",
    "kwargs": {"column": "a"},
    "meta": {"on_fail": "quarantine", "notes": "why"},
}


def suite_text(name: str = "s", **changes: object) -> str:
    """A one-expectation suite: GOOD with `changes`."""
    return json.dumps({"name": name, "expectations": [{**GOOD, **changes}]})


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('{"name": "s",\n "expectations": [}', "not valid JSON: Expecting value at line 2"),
        ('{"name": "s", "name": "s", "expectations": []}', "duplicate key"),
        (suite_text(name="other"), "'name' is 'other'"),
        (suite_text(meta={"notes": "x"}), "meta.on_fail"),
        (suite_text(meta={"on_fail": "warn"}), "meta.notes"),
        (suite_text(type="expect_magic"), "expect_magic not found"),
        (suite_text(kwargs={"colum": "a"}), "colum extra fields not permitted"),
        (
            suite_text(
                type="expect_column_values_to_be_between",
                kwargs={"column": "a", "min_value": {"$PARAMETER": "lo"}},
            ),
            "parameters ['lo'] not declared",
        ),
        (
            suite_text(type="expect_table_row_count_to_be_between", kwargs={"min_value": 1}),
            "quarantine needs a row-level",
        ),
    ],
)
def test_malformed_suite_is_a_config_error_naming_the_file(
    tmp_path: Path, text: str, complaint: str
) -> None:
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(ConfigError) as caught:
        run_gate(transactions(), "s", tmp_path / "run", suites_dir=tmp_path)
    assert str(tmp_path / "s.json") in str(caught.value)
    assert complaint in str(caught.value)


def test_unknown_suite_and_bad_parameters_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such expectation suite"):
        load_suite("raw_nothing")
    with pytest.raises(ConfigError, match="interval_start"):
        run_gate(
            transactions(), "raw_transactions", tmp_path, params={"interval_start": "yesterday"}
        )

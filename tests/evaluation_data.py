"""The evaluation tests' data: the hand-made 10-account case whose metrics test_evaluate.py computes
by hand, and the run key of the labelled run (the `labelled_run` fixture of tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

RUN_KEY = "2026-01-07T0000Z--2026-01-08T0000Z"


def ts(day: int) -> datetime:
    return datetime(2026, 1, day, 12, tzinfo=UTC)


def hand_case() -> dict[str, pl.DataFrame]:
    """10 accounts, 3 suspicious (A0, A2, A5), two cases, two rules and a detector."""
    ids = [f"A{i}" for i in range(10)]
    scored = pl.DataFrame(
        {
            "account_id": ids,
            "risk_score": [0.95, 0.90, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20, 0.10],
            "case_id": ["C1", "C1", "C2", *[None] * 7],
            "is_suspicious": [True, False, True, False, False, True, False, False, False, False],
            "typology": ["sex", None, "labour", None, None, "sex", None, None, None, None],
        }
    )
    signals = pl.DataFrame(
        {
            "source": ["rule"] * 5 + ["detector"] * 2,
            "signal_id": ["r1", "r1", "r1", "r2", "r2", "d1", "d1"],
            "account_id": ["A0", "A1", "A3", "A0", "A2", "A5", "A6"],
            "txn_ids": [["T5"], [], [], ["T2"], [], ["T4"], []],
            "window_start": [ts(1)] * 3 + [ts(2)] * 2 + [None, None],
        },
        schema_overrides={"window_start": pl.Datetime("us", "UTC")},
    )
    cases = pl.DataFrame(
        {
            "case_id": ["C1", "C2"],
            "rank": [1, 2],
            "risk_score": [0.95, 0.80],
            "anchor_account": ["A0", "A2"],
            "accounts": [["A0", "A1"], ["A2"]],
            "txn_ids": [[], []],
            "first_ts": [ts(1), ts(3)],
        }
    )
    transactions = pl.DataFrame(
        {
            "txn_id": ["T1", "T2", "T3", "T4", "T5", "T6"],
            "ts": [ts(1), ts(2), ts(3), ts(4), ts(5), ts(6)],
            "src_account": ["A0", "A2", "A3", "A5", "A1", "A5"],
            "dst_account": ["A1", "A3", "A4", "A0", "A9", "A7"],
            "is_suspicious": [True, True, False, True, False, True],
            "typology": ["sex", "labour", None, "sex", None, "sex"],
        }
    )
    dispositions = pl.DataFrame(
        {
            "case_id": ["C1", "C2"],
            "accounts": [["A0", "A1"], ["A2"]],
            "disposition": ["reported", "false_positive"],
            "signal_ids": [["r1", "r2"], ["r2"]],
            "typologies": [["sex"], ["labour"]],
        }
    )
    return {
        "scored": scored,
        "signals": signals,
        "cases": cases,
        "transactions": transactions,
        "dispositions": dispositions,
    }

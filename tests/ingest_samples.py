"""What the readers' tests share: the sample files of each format under tests/fixtures/, a one-line
AMLworld file writer, and reading a result's tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87.pipeline.ingest import ReadResult
from flows87.pipeline.ingest.common import units_per_usd

FIXTURES = Path(__file__).parent / "fixtures"
AMLWORLD = FIXTURES / "amlworld" / "HI-Tiny_Trans.csv"
PAYSIM = FIXTURES / "paysim" / "paysim.csv"
SAMLD = FIXTURES / "samld" / "SAML-D.csv"
AMLSIM = FIXTURES / "amlsim" / "sim"
CANONICAL = FIXTURES / "canonical" / "csv"

AMLWORLD_HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,"
    "Amount Paid,Payment Currency,Payment Format,Is Laundering"
)
AMLWORLD_ROW = (
    "2022/09/01 00:20,010,8000EBD30,020,8000EBD31,{amount},US Dollar,{amount},US Dollar,Wire,0"
)


def frames(result: ReadResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    return result.transactions.collect(), result.accounts.collect()


def by_row(tx: pl.DataFrame, row: int) -> dict:
    return tx.filter(pl.col("source_row") == row).row(0, named=True)


def usd(amount: float, code: str) -> float:
    return amount / units_per_usd()[code]


def amlworld_file(tmp_path: Path, rows: list[str], name: str = "X_Trans.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([AMLWORLD_HEADER, *rows]) + "\n", encoding="utf-8")
    return path

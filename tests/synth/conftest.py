"""Fixtures of the generator tests: one generated set (3,000 accounts over three weeks, 2 %
suspicious) per test session, and its two tables. Tests only read them."""

from __future__ import annotations

import polars as pl
import pytest
from synth_schemes import DAYS, START

from flows87.research.synth import SynthData, generate


@pytest.fixture(scope="session")
def data() -> SynthData:
    return generate(3_000, DAYS, seed=7, start=START, suspicious_share=0.02)


@pytest.fixture(scope="session")
def tx(data: SynthData) -> pl.DataFrame:
    return data.transactions


@pytest.fixture(scope="session")
def acc(data: SynthData) -> pl.DataFrame:
    return data.accounts

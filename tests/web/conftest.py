"""Fixtures of the case app's tests: a real pipeline run made once per test session, and per
test module a SQLite case store loaded from it (with the users of web_client.USERS) and the app
over that store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from web_client import loaded_store, settings

from flows87.investigate.store import Store
from flows87.investigate.web import create_app


@pytest.fixture(scope="session")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the whole pipeline on generated data (the smallest the generator makes:
    800 accounts, 7 days; about 10 s)."""
    from flows87.io import write_parquet
    from flows87.pipeline.run import run
    from flows87.research.synth import MIN_ACCOUNTS, MIN_DAYS, generate

    base = tmp_path_factory.mktemp("web-demo")
    data = generate(MIN_ACCOUNTS, MIN_DAYS, seed=7)
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    run(base / "data", base / "run")
    return base / "run"


@pytest.fixture(scope="module")
def run_dir(web_run: Path) -> Path:
    return web_run


@pytest.fixture(scope="module")
def store(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A SQLite case store with the run loaded and the users created, one per test module (the
    tests of a module change its cases; other modules start from the run as loaded)."""
    db = tmp_path_factory.mktemp("web-store") / "cases.db"
    s = loaded_store(f"sqlite:///{db}", run_dir)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def app(store: Store) -> FastAPI:
    return create_app(store, settings())

"""Shared fixtures: a throwaway PostgreSQL server and empty case stores on each backend
(tests/postgres.py runs the server), and a small labelled pipeline run. Environment defaults are
set before anything imports pyod or airflow. The case app's fixtures are in tests/web/conftest.py."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from evaluation_data import RUN_KEY  # neither imports pyod nor airflow
from postgres import PostgresUnavailable, acquire, release, unavailable

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".cache" / "matplotlib"))
# The tests get their own Airflow home and SQLite metadata DB, never the user's.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="flows87-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ.pop("FLOWS87_HOME", None)
# The audit log's HMAC key (docs/audit.md): PostgreSQL stores need one; SQLite stores would make
# a key file beside themselves.
os.environ.setdefault("FLOWS87_AUDIT_KEY", "flows87-test-audit-key-0123456789abcdef")


def pytest_configure(config: pytest.Config) -> None:
    """Argon2 at its default cost takes about 0.3 s a hash here: the tests use a cheap one."""
    from argon2 import PasswordHasher

    from flows87.investigate.store.users import use_password_hasher

    use_password_hasher(PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))


# --- PostgreSQL and the case store -------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = acquire()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    yield server
    release()


_templates: dict[str, str] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """A database URL of an empty database (no schema) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = server.new_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A migrated, empty case store (flows87.investigate.store.Store) on each backend."""
    from flows87.investigate.store import Store

    if request.param == "sqlite":
        if "sqlite" not in _templates:
            folder = tempfile.mkdtemp(prefix="flows87-sqlite-tpl-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            tpl = Path(folder) / "cases.db"
            s = Store.open(f"sqlite:///{tpl}")
            s.upgrade()
            s.dispose()
            _templates["sqlite"] = str(tpl)
        db = tmp_path / "cases.db"
        shutil.copy(_templates["sqlite"], db)
        s = Store.open(f"sqlite:///{db}")
        yield s
        s.dispose()
        return
    server = request.getfixturevalue("postgres_server")
    if "postgresql" not in _templates:
        tpl = server.new_database()
        s = Store.open(server.url(tpl))
        s.upgrade()
        s.dispose()
        _templates["postgresql"] = tpl
    name = server.new_database(template=_templates["postgresql"])
    s = Store.open(server.url(name))
    yield s
    s.dispose()
    server.drop_database(name)


# --- a labelled run ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def labelled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `flows87.pipeline.run.run` on generated labelled data (800 accounts, 7 days),
    laid out as FLOWS87_HOME lays it out: <base>/home/runs/<RUN_KEY>/. Tests that change it
    copy it first."""
    from flows87.io import write_parquet
    from flows87.pipeline.run import run
    from flows87.research.synth import generate

    base = tmp_path_factory.getbasetemp() / "evaluate-shared"
    run_dir = base / "home" / "runs" / RUN_KEY
    data = generate(800, 7, 3)
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    run(base / "data", run_dir)
    assert (run_dir / "run.json").exists()
    return run_dir

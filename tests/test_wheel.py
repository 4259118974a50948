"""The package stands on its own: a wheel built with `uv build`, installed into a new virtual
environment outside the repository, runs `flows87 synth`, `flows87 run` and `flows87 rules list`.

The new environment gets flows87 from the wheel only; its dependencies come from the repository's
.venv through a path file (installing them again would take minutes and need the network). The
commands run from a folder outside the repository, so nothing can be found through the checkout.
Slow (about a minute): deselect with `-m "not slow"`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _uv() -> str:
    """uv as scripts/env.sh finds it: on PATH, else the private copy in .tools/."""
    found = shutil.which("uv") or (
        str(ROOT / ".tools" / "bin" / "uv") if (ROOT / ".tools" / "bin" / "uv").exists() else None
    )
    if found is None:
        pytest.fail("uv not found (source scripts/env.sh installs it)")
    return found


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A new virtual environment (outside the repository) with the wheel installed in it."""
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dist = base / "dist"
    _run([uv, "build", "--wheel", "--out-dir", dist, ROOT], cwd=ROOT, env=env)
    (wheel,) = dist.glob("flows87-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("rules", "expectations"):
        shipped = {n for n in names if n.startswith(f"flows87/catalogue/{folder}/")}
        expected = {
            f"flows87/catalogue/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
        }
        assert shipped == expected, folder
    tracked = subprocess.run(
        ["git", "ls-files", "flows87"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    missing = [f for f in tracked if f not in names]
    assert not missing, f"package files missing from the wheel: {missing}"

    venv = base / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=base, env=env)
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", python, wheel],
        cwd=base,
        env=env,
    )
    site = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=base,
        env=env,
    ).stdout.strip()
    # The dependencies: the repository's site-packages, after the new environment's own (so
    # flows87 itself comes from the wheel; the editable install's path file there is not read).
    (Path(site) / "_flows87_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    env = dict(env, PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    env["MPLCONFIGDIR"] = str(base / "matplotlib")
    return venv, env


def test_the_wheel_runs_the_pipeline_outside_the_repository(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    flows87 = str(venv / "bin" / "flows87")
    where = json.loads(
        _run(
            [
                venv / "bin" / "python",
                "-c",
                "import json, flows87; from flows87 import catalogue; print(json.dumps("
                "[flows87.__file__, str(catalogue.rules_dir()), str(catalogue.suites_dir())]))",
            ],
            cwd=tmp_path,
            env=env,
        ).stdout
    )
    for path in where:
        assert Path(path).is_relative_to(venv), where
        assert not Path(path).is_relative_to(ROOT), where

    _run(
        [flows87, "synth", "--accounts", "1000", "--days", "14", "--seed", "3"]
        + ["--out", "data", "--quiet"],
        cwd=tmp_path,
        env=env,
    )
    summary = json.loads(
        _run(
            [flows87, "run", "data", "--out", "run", "--json", "--quiet"], cwd=tmp_path, env=env
        ).stdout
    )
    cases = pl.read_parquet(tmp_path / "run" / "cases.parquet")
    assert cases.height > 0 and summary["cases"]["cases"] == cases.height
    assert summary["report"]["metrics"]["accounts"]["suspicious_accounts"] > 0
    gates = {p.stem for p in (tmp_path / "run" / "quality").glob("*.json")}
    assert {"raw_transactions", "raw_accounts", "features", "signals", "cases"} <= gates

    catalogue = sorted(p.stem for p in (ROOT / "rules").glob("*.yaml"))
    listed = json.loads(_run([flows87, "rules", "list", "--json"], cwd=tmp_path, env=env).stdout)
    assert sorted(r["id"] for r in listed) == catalogue
    table = _run([flows87, "rules", "list"], cwd=tmp_path, env=env).stdout
    assert f"{len(catalogue)} rules" in table

    # the bundled catalogue copied out of the installed package, and read back with --rules
    _run([flows87, "rules", "init", "mine"], cwd=tmp_path, env=env)
    listed = json.loads(
        _run([flows87, "rules", "list", "mine", "--json"], cwd=tmp_path, env=env).stdout
    )
    assert sorted(r["id"] for r in listed) == catalogue
    assert (tmp_path / "mine" / "settings" / "scoring.yaml").read_bytes() == (
        ROOT / "rules" / "settings" / "scoring.yaml"
    ).read_bytes()

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows87.io import atomic_path, write_json, write_parquet


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    write_parquet(pl.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert pl.read_parquet(target)["a"].to_list() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_lazy_frame_is_streamed_to_parquet(tmp_path: Path) -> None:
    out = write_parquet(pl.LazyFrame({"a": [3, 1, 2]}), tmp_path / "sub" / "x.parquet")
    assert sorted(pl.read_parquet(out)["a"].to_list()) == [1, 2, 3]


def test_write_json_roundtrip(tmp_path: Path) -> None:
    p = write_json({"b": 1, "a": [1, 2]}, tmp_path / "r.json")
    assert p.read_text().startswith("{\n")
    assert '"a"' in p.read_text()

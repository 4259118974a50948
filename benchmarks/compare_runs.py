"""Compare the tables of two run directories: equal row for row, equal as sets, or different.

How a refactor or a speed-up is checked to change nothing (e.g. the DAG's tasks against
`flows87 run`, or one commit against another on the same input):

    python benchmarks/compare_runs.py RUN_A RUN_B

Exit status 0 when every Parquet file both hold is equal (as a set of rows at least), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal


def _sortable(frame: pl.DataFrame) -> list[str]:
    return [c for c, t in frame.schema.items() if not isinstance(t, pl.List | pl.Struct)]


def compare(a: Path, b: Path, name: str) -> str:
    """'equal', 'equal as sets' (the same rows in another order) or 'different: ...'."""
    x, y = pl.read_parquet(a / name), pl.read_parquet(b / name)
    try:
        assert_frame_equal(x, y, check_exact=True)
        return "equal"
    except AssertionError as err:
        first = str(err).splitlines()[0]
    keys = _sortable(x)
    try:
        assert_frame_equal(
            x.sort(keys, nulls_last=True),
            y.select(x.columns).sort(keys, nulls_last=True),
            check_exact=True,
        )
        return "equal as sets"
    except (AssertionError, pl.exceptions.PolarsError):
        return f"different: {first}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    args = p.parse_args()
    a, b = args.run_a, args.run_b
    names = sorted({f.name for f in a.glob("*.parquet")} | {f.name for f in b.glob("*.parquet")})
    different = 0
    for name in names:
        if not (a / name).exists() or not (b / name).exists():
            print(f"{name:32} only in {a if (a / name).exists() else b}")
            continue
        verdict = compare(a, b, name)
        rows = pl.scan_parquet(a / name).select(pl.len()).collect().item()
        print(f"{name:32} {verdict} ({rows:,} rows)")
        different += verdict.startswith("different")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())

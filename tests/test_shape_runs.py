"""`flows87 run` on small versions of the shapes real data has and our generator lacks
(flows87.research.synth.shapes): every run finishes, no rule or pattern passes its flood ceiling, the
innocent shapes stay near the budget, and a long pass-through chain is one case.

The benchmark (benchmarks/bench_shapes.py) runs the same shapes at 1M transactions and measures
time and memory; here only what can be asserted of the result's structure is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows87.pipeline.run import run
from flows87.research.synth import shapes

TRANSACTIONS = 50_000
INNOCENT_ALERT_RATE = 0.05
"""At 5,000 accounts one full case (40 accounts) is 0.8 % of them; at 1M transactions the
benchmark's innocent shapes alert on 0.3-0.9 %."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pl.DataFrame]]:
    base = tmp_path_factory.mktemp("shapes")
    out = {}
    for shape in shapes.SHAPES:
        tx, acc = shapes.generate(shape, TRANSACTIONS, sizes=shapes.Sizes.small(), seed=0)
        shapes.write(tx, acc, base / "data" / shape)
        run(base / "data" / shape, base / "runs" / shape)
        out[shape] = (base / "runs" / shape, tx)
    return out


def _active(tx: pl.DataFrame) -> int:
    return pl.concat([tx["src_account"], tx["dst_account"]]).n_unique()


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_every_shape_runs_within_its_ceilings(runs, shape: str) -> None:
    run_dir, tx = runs[shape]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "succeeded"
    ceiling = json.loads((run_dir / "stages" / "rules.json").read_text())["ceiling"]
    assert ceiling["population"] == _active(tx)
    limit = max(ceiling["min_accounts"], int(ceiling["max_share"] * ceiling["population"]))
    signals = pl.read_parquet(run_dir / "signals.parquet").filter(pl.col("source") != "detector")
    instance = pl.col("evidence").str.json_path_match("$.instance")
    counted = signals.filter(
        instance.is_null() | (pl.int_range(pl.len()).over("signal_id", instance) < 40)
    )
    per_rule = counted.group_by("signal_id").agg(pl.col("account_id").n_unique().alias("n"))
    over = per_rule.filter(pl.col("n") > limit)
    assert over.is_empty(), f"rules above their ceiling of {limit}: {over.rows()}"


@pytest.mark.parametrize("shape", [s for s in shapes.SHAPES if s != "chain"])
def test_innocent_shapes_stay_near_the_budget(runs, shape: str) -> None:
    run_dir, tx = runs[shape]
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    alerted = scored.filter(pl.col("case_id").is_not_null()).height
    assert alerted / _active(tx) <= INNOCENT_ALERT_RATE
    cases = pl.read_parquet(run_dir / "cases.parquet")
    assert cases.is_empty() or cases["n_accounts"].max() <= 40


def test_a_long_chain_is_one_case(runs) -> None:
    run_dir, tx = runs["chain"]
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    chain = scored.filter(pl.col("is_suspicious"))
    assert chain.height == shapes.Sizes.small().chain_hops + 1
    in_cases = chain.filter(pl.col("case_id").is_not_null())
    assert in_cases["case_id"].n_unique() == 1, "the chain is split over several cases"
    case = pl.read_parquet(run_dir / "cases.parquet").filter(
        pl.col("case_id") == in_cases["case_id"][0]
    )
    row = case.row(0, named=True)
    assert row["n_accounts"] == 40 and row["n_linked"] > 0  # named up to the cap, the rest linked
    linked = chain.filter(pl.col("linked_case_id") == row["case_id"])
    assert linked.height == row["n_linked"]

"""flows87's graph patterns against IBM's Graph Feature Preprocessor (snapml) on the same data.

Both sides read the same synthetic transactions (WORKDIR/synth-SIZE, made by bench_run.py's
synth step when absent) with the same time windows; each measurement runs in its own subprocess
(its own peak RSS, a timeout). What each side computes differs, and the table says what:
- GFP (2 threads): per transaction, a histogram of the patterns it takes part in (fan-in/out +
  degree-in/out; scatter-gather; temporal cycles), in a window ending at that transaction.
- flows87: the `fan_in`, `fan_out`, `scatter_gather` and `cycle` patterns of
  `flows87.pipeline.graph.patterns.PATTERNS` on a GraphContext, which return the instances with their
  member accounts and transactions, run with their defaults (amount floors, degree, ratio and
  flow-through limits prune the search) and with the amount floor at 0 (`@0`);
  `features.compute` (every account feature, in/out counterparty counts among them, over one
  tumbling window of the fan window's length); and a bare polars fan count for reference.
Edges: `all` is every transaction (what `features.compute` reads); `transfers` is what the
patterns read (`graph.common.transfers`: no cash legs, no self-transfers). Prep (building the
GFP array or the GraphContext) is timed apart from the computation; txn/s is the input's
transaction count over the computation's seconds.

    bash benchmarks/run.sh benchmarks/bench_graph_vs_gfp.py --size 1000000 [5000000]
    options: [--workdir /tmp/flows87-run-bench] [--timeout 900] [--fan-window-days 2]
             [--only MEASURE ...]  (e.g. --only f87:cycle f87:cycle@0 to skip the slow GFP runs)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from harness import emit, spawn, step_command, write_results

from flows87.rundir import RunDir

if TYPE_CHECKING:
    from flows87.pipeline.graph.common import GraphContext

DAY = 86_400
SG_DAYS, CYCLE_DAYS = 5, 10
PATTERN_KEYS = ("fan", "degree", "scatter-gather", "temp-cycle", "lc-cycle", "vertex_stats")
GFP_OFF = {**dict.fromkeys(PATTERN_KEYS, False), "num_threads": 2}
MEASURES = {  # name -> (what it computes, edges it reads)
    "gfp:fan+degree": ("fan/degree in+out histograms per txn, fan window", "all"),
    "gfp:fan+degree@transfers": ("the same on transfers only", "transfers"),
    "f87:fan_in": ("instances + members, fan window, defaults", "transfers"),
    "f87:fan_out": ("instances + members, fan window, defaults", "transfers"),
    "f87:fan_in@0": ("the same, min_amount=0", "transfers"),
    "f87:features.compute": ("every account feature, one tumbling fan window", "all"),
    "f87:polars-fan-only": ("distinct payers/payees + leg counts per account-window", "all"),
    "gfp:scatter-gather": (f"scatter-gather histogram per txn, {SG_DAYS}d", "transfers"),
    "f87:scatter_gather": (f"instances + members, {SG_DAYS}d, defaults", "transfers"),
    "f87:scatter_gather@0": ("the same, min_amount=0", "transfers"),
    "gfp:temp-cycle": (f"temporal-cycle histogram per txn, {CYCLE_DAYS}d", "transfers"),
    "f87:cycle": (f"instances + members, {CYCLE_DAYS}d, defaults", "transfers"),
    "f87:cycle@0": ("the same, min_amount=0", "transfers"),
}


def _context(tx: pl.DataFrame, acc: pl.DataFrame) -> GraphContext:
    """A GraphContext with no features or signals: the four patterns read neither."""
    from flows87.pipeline.graph.common import GraphContext
    from flows87.pipeline.rules import empty_signals

    return GraphContext(tx, acc, pl.DataFrame(), empty_signals())


def gfp_array(tx: pl.DataFrame) -> np.ndarray:
    """[edge id, source id, target id, unix seconds] as float64, sorted by time, as GFP wants."""
    ids = pl.concat([tx["src_account"], tx["dst_account"]]).unique().to_frame("account")
    ids = ids.with_row_index("vid")
    src = ids.rename({"account": "src_account", "vid": "s"})
    dst = ids.rename({"account": "dst_account", "vid": "d"})
    return (
        tx.sort("ts", "txn_id")
        .join(src, on="src_account", maintain_order="left")
        .join(dst, on="dst_account", maintain_order="left")
        .select(pl.int_range(pl.len()).alias("e"), "s", "d", pl.col("ts").dt.epoch("s"))
        .to_numpy()
        .astype(np.float64)
    )


def run_gfp(name: str, tx: pl.DataFrame, acc: pl.DataFrame, fan_days: int) -> dict[str, Any]:
    from snapml import GraphFeaturePreprocessor

    from flows87.pipeline.graph.common import transfers

    fan, sg, cyc = fan_days * DAY, SG_DAYS * DAY, CYCLE_DAYS * DAY
    on = {
        "gfp:fan+degree": {"fan": True, "fan_tw": fan, "degree": True, "degree_tw": fan},
        "gfp:scatter-gather": {"scatter-gather": True, "scatter-gather_tw": sg},
        "gfp:temp-cycle": {"temp-cycle": True, "temp-cycle_tw": cyc},
    }[name.partition("@")[0]]
    on["time_window"] = max(v for k, v in on.items() if k.endswith("_tw"))
    t0 = time.perf_counter()
    if MEASURES[name][1] == "transfers":
        tx = tx.join(transfers(_context(tx, acc)).select("txn_id"), on="txn_id", how="semi")
    edges = gfp_array(tx)
    prep = time.perf_counter() - t0
    gfp = GraphFeaturePreprocessor()
    gfp.set_params({**GFP_OFF, **on})
    t0 = time.perf_counter()
    out = gfp.fit_transform(edges)
    compute = time.perf_counter() - t0
    hist = out[:, edges.shape[1] :]
    found = {"features": hist.shape[1], "txns_with_pattern": int((hist.sum(axis=1) > 0).sum())}
    return {"edges": len(edges), "prep_s": prep, "compute_s": compute, **found}


def polars_fans(tx: pl.DataFrame, days: int) -> pl.DataFrame:
    """Distinct counterparties and leg counts per account, direction and tumbling window."""
    sides = (("src_account", "dst_account", False), ("dst_account", "src_account", True))
    legs = pl.concat(
        tx.select("ts", account=pl.col(a), cp=pl.col(cp), is_in=pl.lit(inn)) for a, cp, inn in sides
    )
    return legs.group_by("account", "is_in", pl.col("ts").dt.truncate(f"{days}d")).agg(
        pl.col("cp").n_unique().alias("fan"), pl.len().alias("degree")
    )


def run_flows87(name: str, tx: pl.DataFrame, acc: pl.DataFrame, fan_days: int) -> dict[str, Any]:
    from flows87.pipeline.features import compute, load_settings
    from flows87.pipeline.graph.common import transfers
    from flows87.pipeline.graph.patterns import find

    t0 = time.perf_counter()
    if name in ("f87:features.compute", "f87:polars-fan-only"):
        settings = load_settings().model_copy(update={"windows": [f"{fan_days}d"]})
        fast = name == "f87:polars-fan-only"
        table = polars_fans(tx, fan_days) if fast else compute(tx, acc, settings)
        seconds = time.perf_counter() - t0
        return {"edges": tx.height, "prep_s": 0.0, "compute_s": seconds, "rows": table.height}
    pattern, _, floor = name.removeprefix("f87:").partition("@")
    days = {"scatter_gather": SG_DAYS, "cycle": CYCLE_DAYS}.get(pattern, fan_days)
    params = {"window_days": days, **({"min_amount": float(floor)} if floor else {})}
    ctx = _context(tx, acc)
    edges = transfers(ctx).height  # memoised in the context: the pattern reuses it
    prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = find(ctx, pattern, params)
    seconds = time.perf_counter() - t0
    found = {"instances": hits["instance"].n_unique(), "member_rows": hits.height}
    return {"edges": edges, "prep_s": prep, "compute_s": seconds, **found}


def _child(args: argparse.Namespace) -> None:
    src = Path(args.workdir) / f"synth-{args.child_size}"
    t0 = time.perf_counter()
    tx = pl.read_parquet(RunDir(src).transactions)
    acc = pl.read_parquet(RunDir(src).accounts)
    n, load = tx.height, time.perf_counter() - t0
    run = run_gfp if args.step.startswith("gfp") else run_flows87
    res = run(args.step, tx, acc, args.fan_window_days)
    res = {k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()}
    res.update(
        transactions=n, load_s=round(load, 2), txn_per_s=round(n / max(res["compute_s"], 1e-3))
    )
    emit(res)


def _spawn(step: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = step_command(
        __file__,
        step,
        child_size=size,
        workdir=args.workdir,
        fan_window_days=args.fan_window_days,
    )
    return spawn(cmd, step, timeout=args.timeout, check=False)


def print_table(size: int, rows: dict[str, dict[str, Any]], fan_days: int) -> None:
    print(
        f"\n{size:,} requested transactions; windows: fan {fan_days}d, scatter-gather "
        f"{SG_DAYS}d, cycles {CYCLE_DAYS}d; GFP threads 2, polars threads {pl.thread_pool_size()}"
    )
    print(
        f"{'measure':<25} {'edges':>9} {'prep s':>7} {'comp s':>7} {'txn/s':>10} {'RSS MB':>7}"
        "  found / what"
    )
    for name, r in rows.items():
        if "compute_s" not in r:
            print(f"{name:<25} did not finish: {json.dumps(r)}")
            continue
        found = {
            k: r[k] for k in ("txns_with_pattern", "instances", "member_rows", "rows") if k in r
        }
        print(
            f"{name:<25} {r['edges']:>9,} {r['prep_s']:>7.1f} {r['compute_s']:>7.1f} "
            f"{r['txn_per_s']:>10,} {r['peak_rss_mb']:>7,}  {found} / {MEASURES[name][0]}"
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", "--sizes", dest="sizes", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--workdir", default="/tmp/flows87-run-bench")
    p.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    p.add_argument("--fan-window-days", type=int, default=2, help="fan_in/fan_out's default")
    p.add_argument("--only", nargs="+", choices=list(MEASURES), help="run only these measures")
    p.add_argument("--step", help=argparse.SUPPRESS)
    p.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.step:
        _child(args)
        return
    saved = Path(args.workdir, "results_gfp.json")  # kept across runs of other sizes
    results: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}
    results["cores"] = os.cpu_count()
    for size in args.sizes:
        # The data bench_run.py measures, made by its synth step when absent.
        bench_run = Path(__file__).with_name("bench_run.py")
        synth = spawn(step_command(bench_run, "synth", size=size, workdir=args.workdir), "synth")
        print(f"{size:>10,} synth {json.dumps(synth)}", flush=True)
        rows = {}
        for name in args.only or MEASURES:
            rows[name] = _spawn(name, size, args)
            print(f"{size:>10,} {name:<25} {json.dumps(rows[name])}", flush=True)
        results[str(size)] = {**results.get(str(size), {}), **rows}  # --only keeps the others
        print_table(size, rows, args.fan_window_days)
        write_results(results, saved)


if __name__ == "__main__":
    main()

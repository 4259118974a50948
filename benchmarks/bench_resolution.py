"""Entity resolution: accuracy against the truth at several noise levels, time and memory by size.

For each (size, noise) a child process writes `size` labelled person records
(flows87.pipeline.resolve.synthetic.people: 1 + Poisson(1) records per person, names varied,
fields missing or changed at the noise level's rates) to WORKDIR, and a second child resolves
them with rules/settings/resolution.yaml and scores the parties against the truth: pairwise
precision/recall/F1 and cluster F1 (parties reproduced exactly). Times are the resolution's
only (generation apart); peak RSS is the resolving process's. Results in WORKDIR/results.json.

    .venv/bin/python benchmarks/bench_resolution.py --sizes 100000 1000000 --noise default
    .venv/bin/python benchmarks/bench_resolution.py --sizes 100000 --noise low default high
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def generate(size: int, noise: str, path: Path) -> None:
    from flows87.pipeline.resolve import synthetic

    synthetic.people(size, noise, seed=size).write_parquet(path)


def resolve(path: Path) -> dict[str, Any]:
    import polars as pl

    from flows87.pipeline.resolve import synthetic
    from flows87.pipeline.resolve.resolve import resolve_parties
    from flows87.pipeline.resolve.settings import load_settings

    records = pl.read_parquet(path)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = resolve_parties(records.drop("true_party_id"), load_settings())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "records": records.height,
        "true_parties": records["true_party_id"].n_unique(),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pairs_scored": result.stats["pairs_scored"],
        "links": result.stats["links"],
        "review_pairs": result.review.height,
        "parties": result.stats["parties"],
        **synthetic.scores(result.clusters, records),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--noise", nargs="+", default=["default"])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_resolution"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        what, a, b = args.child
        if what == "generate":
            size, noise = a.split(":")
            generate(int(size), noise, Path(b))
        else:
            Path(b).write_text(json.dumps(resolve(Path(a))))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    me = [sys.executable, __file__, "--child"]
    for size in args.sizes:
        for noise in args.noise:
            data = args.workdir / f"people-{size}-{noise}.parquet"
            out = args.workdir / f"result-{size}-{noise}.json"
            if not data.exists():
                subprocess.run([*me, "generate", f"{size}:{noise}", str(data)], check=True)
            ok = subprocess.run([*me, "resolve", str(data), str(out)], env=os.environ).returncode
            row = {"size": size, "noise": noise, "ok": ok == 0}
            if ok == 0:
                row.update(json.loads(out.read_text()))
            print(json.dumps(row), flush=True)
            results.append(row)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

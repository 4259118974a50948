"""Entity resolution: accuracy against the truth at several noise levels, time and memory by size.

For each (size, noise) a child process writes `size` labelled person records
(flows87.pipeline.resolve.synthetic.people: 1 + Poisson(1) records per person, names varied,
fields missing or changed at the noise level's rates) to WORKDIR, and a second child resolves
them with rules/settings/resolution.yaml and scores the parties against the truth: pairwise
precision/recall/F1 and cluster F1 (parties reproduced exactly). Times are the resolution's
only (generation apart); peak RSS is the resolving process's. Results in WORKDIR/results.json.

With `--goaml` a size is a number of accounts: `flows87 synth --format goaml` writes the FIU's
reports (4 banks, 30 days, the noise level), the goAML reader reads them back (its `parties`,
one record per holder, counterparty, signatory and director), and the parties are scored
against the writer's truth (truth/parties.parquet).

    .venv/bin/python benchmarks/bench_resolution.py --sizes 100000 1000000 --noise default
    .venv/bin/python benchmarks/bench_resolution.py --sizes 100000 --noise low default high
    .venv/bin/python benchmarks/bench_resolution.py --goaml --sizes 5000 50000 \
        --noise none low default high
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


def generate_goaml(accounts: int, noise: str, folder: Path) -> None:
    """The FIU's reports (flows87 synth --format goaml), read back: folder/parties.parquet with
    the writer's true_party_id."""
    import polars as pl

    from flows87.pipeline.ingest import goaml
    from flows87.pipeline.ingest.common import Options

    data = folder / "data"
    cli = Path(sys.executable).with_name("flows87")
    synth = [str(cli), "synth", "--format", "goaml", "--accounts", str(accounts), "--days", "30"]
    synth += ["--banks", "4", "--noise", noise, "--seed", "0", "--quiet", "--out", str(data)]
    subprocess.run(synth, check=True)
    parties = goaml.read(data, Options()).parties
    truth = pl.read_parquet(data / "truth" / "parties.parquet").select("record_id", "true_party_id")
    parties.join(truth, on="record_id", how="left").write_parquet(folder / "parties.parquet")


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
        "untrue_records": records["true_party_id"].null_count(),
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
    ap.add_argument("--goaml", action="store_true", help="sizes are accounts of goAML reports")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_resolution"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        what, a, b = args.child
        if what in ("generate", "generate-goaml"):
            size, noise = a.split(":")
            make = generate_goaml if what == "generate-goaml" else generate
            make(int(size), noise, Path(b))
        else:
            Path(b).write_text(json.dumps(resolve(Path(a))))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    me = [sys.executable, __file__, "--child"]
    for size in args.sizes:
        for noise in args.noise:
            name = f"{'goaml' if args.goaml else 'people'}-{size}-{noise}"
            data = args.workdir / f"{name}.parquet"
            out = args.workdir / f"result-{name}.json"
            if args.goaml:
                folder = args.workdir / name
                data = folder / "parties.parquet"
                if not data.exists():
                    job = ["generate-goaml", f"{size}:{noise}", str(folder)]
                    subprocess.run([*me, *job], check=True)
            elif not data.exists():
                subprocess.run([*me, "generate", f"{size}:{noise}", str(data)], check=True)
            ok = subprocess.run([*me, "resolve", str(data), str(out)], env=os.environ).returncode
            row = {"input": "goaml" if args.goaml else "people", "size": size, "noise": noise}
            row["ok"] = ok == 0
            if ok == 0:
                row.update(json.loads(out.read_text()))
            print(json.dumps(row), flush=True)
            results.append(row)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

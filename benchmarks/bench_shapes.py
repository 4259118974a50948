"""Shape benchmark: `flows87 run` on data of the shapes real data has and our generator lacks.

For each shape of `flows87.research.synth.shapes` (a plain random background with one shape imposed:
hub_in, hub_out, dense_repeat, new_accounts, day_resolution, round_amounts, self_transfers,
one_currency, fifty_currencies, chain; `random` is the reference) it
1. generates the canonical input folder OUT/data/SHAPE in a child process (reused when its
   shape.json says it was made with the same parameters and generator source),
2. runs `flows87 run OUT/data/SHAPE --out OUT/runs/SHAPE --quiet` in its own process, one shape
   at a time, under a time limit (--timeout) and a memory guard (--max-rss-gb, the RSS of the
   process tree sampled every 0.2 s): a run past either is killed and reported with the stage
   it was in (the first stage whose steps have not all recorded themselves in RUN/stages/). Wall time is measured here; CPU
   time and peak RSS come from the child's rusage (os.wait4, so a killed run has them too);
   per-stage peak RSS is the sampled tree RSS while the stage ran,
3. reads the run directory: stage times (RUN/stages/*.json), cases (RUN/cases.parquet),
   accounts in cases / active accounts (accounts that pay or are paid) = the alert rate, the
   rules and graph patterns firing on more than --flood of the active accounts (distinct
   accounts in RUN/signals_rules.parquet and signals_graph.parquet; counts.fired of
   RUN/stages/rules.json and graph.json counts signals), and for `chain` how many cases hold
   chain accounts (labelled is_suspicious), the largest of them and the chain accounts in cases.
It writes OUT/bench_shapes.json and OUT/bench_shapes.md after every shape (a later crash loses
nothing) and prints the table. Times are compared with `random`'s (x random), which should be
run too. Numbers on a shared machine are noisy: the load average is recorded around each run.

    bash benchmarks/run.sh benchmarks/bench_shapes.py --transactions 1000000 --out /tmp/flows87-shapes
    --report-only re-reads OUT's runs and rewrites the report (after changing this script).
    options: [--shapes hub_in chain ...] [--seed 0] [--timeout 600] [--max-rss-gb 8]
             [--flood 0.02] [--small (the tests' sizes: 20k transactions, hub of 2k, ...)]
             [--commit REV (run that commit's pipeline, from a `git archive` under OUT)]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (  # benchmarks/ is the script's folder
    by_stage,
    current_stage,
    emit,
    guarded,
    spawn,
    stage_records,
    step_command,
)
from shapes_report import flooding, mb, num, table, write_report

from flows87.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
FLOWS87 = Path(sys.executable).with_name("flows87")


# ------------------------------------------------------------------------------ child: synth


def _sizes(small: bool) -> Any:
    from flows87.research.synth import shapes

    return shapes.Sizes.small() if small else shapes.Sizes()


def step_synth(shape: str, transactions: int, seed: int, small: bool, out: Path) -> dict[str, Any]:
    """Generate the shape into `out` (or reuse it) and describe it in out/shape.json."""
    import dataclasses

    import polars as pl

    from flows87.research.synth import shapes

    sizes = _sizes(small)
    params = {
        # the generator is a package: every one of its modules
        "generator": hashlib.sha256(
            b"".join(f.read_bytes() for f in sorted(Path(shapes.__file__).parent.glob("*.py")))
        ).hexdigest()[:16],
        "shape": shape,
        "transactions_requested": transactions,
        "seed": seed,
        "sizes": dataclasses.asdict(sizes),
    }
    described = out / "shape.json"
    if described.exists():
        old = json.loads(described.read_text())
        if old.get("params") == params:
            return {**old, "reused": True}
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    tx, accounts = shapes.generate(shape, transactions, seed=seed, sizes=sizes)
    generated = time.perf_counter() - t0
    shapes.write(tx, accounts, out)
    active = pl.concat([tx["src_account"], tx["dst_account"]]).n_unique()
    info = {
        "params": params,
        "transactions": tx.height,
        "accounts": accounts.height,
        "active_accounts": active,
        "suspicious_transactions": int(tx["is_suspicious"].sum()),
        "suspicious_accounts": int(accounts["is_suspicious"].sum()),
        "generate_s": round(generated, 2),
        "write_s": round(time.perf_counter() - t0 - generated, 2),
    }
    described.write_text(json.dumps(info, indent=2))
    return {**info, "reused": False}


def _spawn_synth(args: argparse.Namespace, shape: str, out: Path) -> dict[str, Any]:
    cmd = step_command(
        __file__,
        "synth",
        shape=shape,
        data=out,
        transactions=args.transactions,
        seed=args.seed,
        small=args.small,
    )
    res = spawn(cmd, f"generating {shape}")
    res["synth_wall_s"] = res.pop("process_s")
    return res


# ------------------------------------------------------------------------------ the guarded run


def guarded_run(
    src: Path,
    run_dir: Path,
    log: Path,
    timeout: float,
    max_rss_mb: int,
    tree: Path | None = None,
) -> dict[str, Any]:
    """`flows87 run src --out run_dir` under a time limit and a memory guard; with `tree`, the
    flows87 package (and its rules) of that source tree instead of the installed one."""
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [str(FLOWS87), "run", str(src), "--out", str(run_dir), "--quiet", "--json"]
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return guarded(cmd, log, timeout, max_rss_mb, lambda: current_stage(run_dir), env)


# ------------------------------------------------------------------------------ reading the run


def _last_error_line(log: Path) -> str | None:
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    return lines[-1][:300] if lines else None


def _signals(run_dir: Path, stages: dict[str, Any]) -> dict[str, Any]:
    """(signal_id, account_id) of the rules and graph patterns that finished, per stage."""
    import polars as pl

    return {
        name: pl.read_parquet(path, columns=["signal_id", "account_id"])
        for name in ("rules", "graph", "detectors")
        if stages.get(name, {}).get("status") == "succeeded"
        and (path := RunDir(run_dir).stage_signals(name)).exists()
    }


def rule_accounts(
    signals: dict[str, Any], stages: dict[str, Any], labelled: Any = None
) -> dict[str, dict[str, Any]]:
    """Accounts and signals of each rule and graph pattern (distinct accounts from the stage's
    signals file; without one, counts.fired of its record, which counts signals, so accounts
    are at most that), and how many of its accounts are labelled suspicious."""
    import polars as pl

    out: dict[str, dict[str, Any]] = {}
    for name in ("rules", "graph"):
        if name not in signals:
            fired = stages.get(name, {}).get("counts", {}).get("fired", {})
            out.update({k: {"accounts": v, "signals": v, "source": name} for k, v in fired.items()})
            continue
        frame = signals[name]
        if labelled is not None:
            frame = frame.with_columns(suspicious=pl.col("account_id").is_in(labelled.implode()))
        per = frame.group_by("signal_id").agg(
            accounts=pl.col("account_id").n_unique(),
            signals=pl.len(),
            **(
                {"suspicious": pl.col("account_id").filter("suspicious").n_unique()}
                if labelled is not None
                else {}
            ),
        )
        for r in per.iter_rows(named=True):
            out[r.pop("signal_id")] = {**r, "source": name}
    return out


def _hub(data: Path, shape: str) -> str | None:
    """The hub of hub_in / hub_out: the account with the most distinct payers / payees."""
    import polars as pl

    if shape not in ("hub_in", "hub_out"):
        return None
    end, other = (
        ("dst_account", "src_account") if shape == "hub_in" else ("src_account", "dst_account")
    )
    top = (
        pl.scan_parquet(RunDir(data).transactions)
        .group_by(end)
        .agg(pl.col(other).n_unique())
        .sort(other, descending=True)
        .head(1)
        .collect()
    )
    return top[end][0]


def analyse(
    run_dir: Path, data: Path, info: dict[str, Any], flood: float, shape: str = ""
) -> dict[str, Any]:
    """Stage times, cases, alert rate, flooding rules, the hub's signals and case (hub shapes)
    and the chain's (chain) of a run."""
    import polars as pl

    stages = by_stage(stage_records(run_dir))
    active = info["active_accounts"]
    out: dict[str, Any] = {
        "stage_s": {k: v["seconds"] for k, v in stages.items()},
        "stage_status": {k: v["status"] for k, v in stages.items()},
        "steps_s": {k: v["timings"] for k, v in stages.items()},
        "stage_errors": {k: v["error"] for k, v in stages.items() if v.get("error")},
    }
    labelled = None
    if info.get("suspicious_accounts"):
        labelled = (
            pl.read_parquet(RunDir(data).accounts, columns=["account_id", "is_suspicious"])
            .filter("is_suspicious")
            .get_column("account_id")
        )
    signals = _signals(run_dir, stages)
    out["rule_accounts"] = rule_accounts(signals, stages, labelled)
    out["flooding"] = {
        k: {**v, "share": round(v["accounts"] / active, 4)}
        for k, v in sorted(out["rule_accounts"].items(), key=lambda kv: -kv[1]["accounts"])
        if v["accounts"] > flood * active
    }
    flagged = (
        pl.concat([f["account_id"] for f in signals.values()]).unique()
        if signals
        else pl.Series("account_id", [], pl.String)
    )
    cases_file = RunDir(run_dir).cases
    cases = members = None
    if stages.get("cases", {}).get("status") == "succeeded" and cases_file.exists():
        cases = pl.read_parquet(cases_file, columns=["case_id", "accounts", "n_accounts"])
        members = cases.select("case_id", "accounts").explode("accounts")
        in_cases = members["accounts"].n_unique()
        out.update(
            cases=cases.height,
            accounts_in_cases=in_cases,
            alert_rate=round(in_cases / active, 4),
            largest_case=int(cases["n_accounts"].max() or 0),
        )
    hub = _hub(data, shape)
    if hub is not None:
        on_hub = sorted(
            {sid for f in signals.values() for sid in f.filter(account_id=hub)["signal_id"]}
        )
        case = None
        if members is not None:
            held = members.filter(accounts=hub).join(cases, on="case_id")
            case = int(held["n_accounts"][0]) if held.height else 0
        out["hub"] = {"account": hub, "signals": on_hub, "case_accounts": case}
    if labelled is not None:
        chain = {
            "chain_accounts": labelled.len(),
            "chain_accounts_with_signals": int(flagged.is_in(labelled.implode()).sum()),
        }
        if members is not None:
            hit = members.filter(pl.col("accounts").is_in(labelled.implode()))
            per_case = hit.group_by("case_id").len().join(cases, on="case_id")
            chain.update(
                chain_accounts_in_cases=hit["accounts"].n_unique(),
                cases_with_chain_accounts=per_case.height,
                largest_chain_case_accounts=int(per_case["n_accounts"].max() or 0),
                most_chain_accounts_in_a_case=int(per_case["len"].max() or 0),
            )
        out["chain"] = chain
    return out


def run_shape(args: argparse.Namespace, shape: str) -> dict[str, Any]:
    work = Path(args.out)
    data, run_dir = work / "data" / shape, work / "runs" / shape
    (work / "logs").mkdir(parents=True, exist_ok=True)
    synth = _spawn_synth(args, shape, data)
    print(
        f"{shape:<17} data: {synth['transactions']:,} transactions, {synth['accounts']:,} accounts"
        f" ({synth['active_accounts']:,} active), generated in {synth['generate_s']} s"
        f"{' (reused)' if synth['reused'] else ''}",
        flush=True,
    )
    log = work / "logs" / f"{shape}.err"
    run = guarded_run(data, run_dir, log, args.timeout, int(args.max_rss_gb * 1024), args.tree)
    res: dict[str, Any] = {"shape": shape, "synth": synth, "run": run}
    res.update(analyse(run_dir, data, synth, args.flood, shape))
    if run["killed"]:
        res["status"], res["error"] = "killed", run["killed"]
    elif run["exit_code"]:
        failed = [k for k, v in res["stage_status"].items() if v == "failed"]
        where = failed[0] if failed else run["stage_at_end"]
        res["status"] = f"failed (exit {run['exit_code']})"
        res["error"] = f"in {where}: {res['stage_errors'].get(where) or _last_error_line(log)}"
    else:
        res["status"], res["error"] = "ok", None
    return res


def reread(out: Path) -> None:
    """Analyse the runs of OUT/bench_shapes.json again and rewrite the report."""
    results = json.loads((out / "bench_shapes.json").read_text())
    for shape, res in results["shapes"].items():
        res.update(
            analyse(
                out / "runs" / shape, out / "data" / shape, res["synth"], results["flood"], shape
            )
        )
    write_report(results, out)
    print(table(results))


def _git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def snapshot(rev: str, out: Path) -> tuple[str, Path]:
    """The files of commit `rev` in out/tree-<commit> (`git archive`; the repository and its
    working tree are left as they are)."""
    commit = _git("rev-parse", "--short", f"{rev}^{{commit}}")
    tree = out / f"tree-{commit}"
    if not (tree / "flows87" / "__init__.py").exists():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait():
            raise SystemExit(f"git archive {commit} failed")
    return commit, tree


def main() -> None:
    from flows87.research.synth.shapes import SHAPES

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--transactions", type=int, default=1_000_000)
    p.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    p.add_argument("--out", default="/tmp/flows87-shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    p.add_argument("--max-rss-gb", type=float, default=8.0, help="memory guard per run")
    p.add_argument("--flood", type=float, default=0.02, help="a rule firing on more is flooding")
    p.add_argument("--small", action="store_true", help="the tests' small shape sizes")
    p.add_argument(
        "--commit",
        help="run the pipeline of this commit (a git archive of it under OUT) instead of the "
        "working tree's; the shapes are generated by the working tree's generator",
    )
    p.add_argument(
        "--report-only", action="store_true", help="re-read OUT's runs, rewrite the report"
    )
    p.add_argument("--step", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.step == "synth":
        res = step_synth(args.shape, args.transactions, args.seed, args.small, Path(args.data))
        emit(res)
        return
    out = Path(args.out)
    if args.report_only:
        reread(out)
        return
    out.mkdir(parents=True, exist_ok=True)
    if args.commit:
        commit, args.tree = snapshot(args.commit, out)
    else:
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "flows87", "rules"))
        commit = _git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
        args.tree = None
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "transactions_requested": args.transactions,
        "small": args.small,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "max_rss_gb": args.max_rss_gb,
        "flood": args.flood,
        "shapes": {},
    }
    for shape in args.shapes:
        res = run_shape(args, shape)
        results["shapes"][shape] = res
        flood = flooding(res)
        print(
            f"{shape:<17} {res['status']}{': ' + res['error'] if res['error'] else ''}; "
            f"{res['run']['wall_s']:.1f} s, peak {mb(res['run']['peak_rss_mb'])}, "
            f"cases {num(res.get('cases'))}, in cases {num(res.get('accounts_in_cases'))} "
            f"({num(res.get('alert_rate'), '.2%')}), largest {num(res.get('largest_case'))}; "
            f"flooding: {flood}",
            flush=True,
        )
        write_report(results, out)
    print("\n" + table(results))
    print(f"\nwritten: {out / 'bench_shapes.json'}, {out / 'bench_shapes.md'}")


if __name__ == "__main__":
    main()

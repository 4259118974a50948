"""Detection with and without entity resolution on the multi-bank synthetic FIU data (issue 15).

For each size and seed: `flows87 synth --format goaml` (4 banks, 30 days, a share of the
schemes' key persons spread over accounts at two or three banks: --split-schemes), then
`flows87 run` twice on the same reports: with the bundled rules (resolution.yaml `when:
reports`: parties resolved across banks) and with a copy of the rules whose resolution.yaml says
`when: never` (every account its own party). The truth's account labels
(truth/canonical/accounts.parquet, ids `BANK-NUMBER`) are mapped to the reader's account ids
(`BANK:NUMBER`, goaml_fields.account) and each run is scored as `flows87 evaluate` scores it
(evaluation.typology_level: accounts ranked by risk_score, recall in the top `--budget` share of
the run's accounts and in a case). Besides the typologies, the split key persons' accounts
(truth/split.parquet) and the persons themselves (found when any of their accounts is). Counts
are summed over seeds. Not a timed test.

    .venv/bin/python benchmarks/bench_fiu.py --sizes 5000 20000 --seeds 0 1 \
        --workdir /tmp/bench_fiu   # -> results.json, results.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from flows87.research.evaluate.evaluation import typology_level
from flows87.research.evaluate.ranking import budget_k, budget_key

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("flows87")
PARTY_RULES = ("fa_funnel_party", "ht_controller_party", "fa_structuring_accounts")
MODES = ("with", "without")


def rules_without_resolution(workdir: Path) -> Path:
    """A copy of the bundled rules whose resolution.yaml says `when: never`."""
    rules = workdir / "rules-never"
    if rules.exists():
        shutil.rmtree(rules)
    shutil.copytree(REPO / "rules", rules)
    path = rules / "settings" / "resolution.yaml"
    text, n = re.subn(r"(?m)^when: .*$", "when: never", path.read_text())
    if n != 1:
        raise SystemExit(f"{path}: no `when:` line to switch off")
    path.write_text(text)
    return rules


def synth(folder: Path, size: int, seed: int, args: argparse.Namespace) -> None:
    if (folder / "truth" / "split.parquet").exists():
        return
    cmd = [str(CLI), "synth", "--format", "goaml", "--accounts", str(size), "--days", "30"]
    cmd += ["--banks", str(args.banks), "--seed", str(seed), "--split-schemes", str(args.split)]
    subprocess.run([*cmd, "--quiet", "--out", str(folder)], check=True)


def run(data: Path, out: Path, rules: Path | None) -> float:
    """`flows87 run` on the reports; its wall time in seconds."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(CLI), "run", str(data), "--format", "goaml", "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *(["--rules", str(rules)] if rules else [])], check=True)
    return round(time.perf_counter() - t0, 1)


def reader_id(col: str) -> pl.Expr:
    """`BANK-NUMBER` (the generator's) -> `BANK:NUMBER` (the goAML reader's)."""
    return pl.col(col).str.replace("-", ":", literal=True)


def labelled(data: Path, run_dir: Path) -> pl.DataFrame:
    """The run's accounts_scored with the truth's labels and the split key persons' marks."""
    truth = pl.read_parquet(data / "truth" / "canonical" / "accounts.parquet").select(
        reader_id("account_id").alias("account_id"), "is_suspicious", "typology"
    )
    split = pl.read_parquet(data / "truth" / "split.parquet").select(
        reader_id("account_id").alias("account_id"),
        pl.col("scheme_id").alias("split_scheme"),
        pl.col("typology").alias("split_typology"),
    )
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet").select(
        "account_id", "risk_score", "case_id"
    )
    return (
        scored.join(truth, on="account_id", how="left")
        .join(split, on="account_id", how="left")
        .with_columns(pl.col("is_suspicious").fill_null(False))
    )


def groups(scored: pl.DataFrame, budget: float) -> dict[str, dict[str, int]]:
    """Counts for the split key persons: their accounts (in the top budget, in a case) and the
    persons (any of their accounts)."""
    k = budget_k(scored.height, budget)
    ranked = scored.sort(["risk_score", "account_id"], descending=[True, False]).with_columns(
        (pl.int_range(1, scored.height + 1) <= k).alias("top"),
        pl.col("case_id").is_not_null().alias("case"),
    )
    keys = ranked.filter(pl.col("split_scheme").is_not_null())
    persons = keys.group_by("split_scheme", "split_typology").agg(
        pl.col("top").any(), pl.col("case").any()
    )
    by_typology = {
        f"split key persons: {typ}": {
            "accounts": mine.height,
            "top": int(mine["top"].sum()),
            "case": int(mine["case"].sum()),
        }
        for (typ,), mine in persons.group_by(["split_typology"])
    }
    return {
        **by_typology,
        "split key accounts": {
            "accounts": keys.height,
            "top": int(keys["top"].sum()),
            "case": int(keys["case"].sum()),
        },
        "split key persons": {
            "accounts": persons.height,
            "top": int(persons["top"].sum()),
            "case": int(persons["case"].sum()),
        },
    }


def score(data: Path, run_dir: Path, budget: float) -> dict[str, Any]:
    scored = labelled(data, run_dir)
    signals = pl.read_parquet(run_dir / "signals.parquet")
    key = budget_key(budget)
    per = typology_level(scored, signals, (budget,))
    counts = {
        typ: {
            "accounts": m["accounts"],
            "top": round(m["recall_at_budget"][key] * m["accounts"]),
            "case": round(m["recall"] * m["accounts"]),
        }
        for typ, m in per.items()
    }
    counts.update(groups(scored, budget))
    rule_col = next(c for c in ("signal_id", "rule_id", "source") if c in signals.columns)
    fired = signals.filter(pl.col(rule_col).is_in(PARTY_RULES)).group_by(rule_col).len()
    on_keys = signals.join(
        scored.filter(pl.col("split_scheme").is_not_null()).select("account_id"), on="account_id"
    )
    return {
        "accounts": scored.height,
        "suspicious": int(scored["is_suspicious"].sum()),
        "budget_k": budget_k(scored.height, budget),
        "counts": counts,
        "party_rules": dict(zip(fired[rule_col], fired["len"], strict=True)),
        "rules_on_split_keys": dict(on_keys.group_by(rule_col).len().sort(rule_col).iter_rows()),
    }


def table(results: list[dict[str, Any]], size: int, budget: float) -> list[str]:
    """Markdown rows per typology: recall at the budget and in a case, with / without."""
    mine = [r for r in results if r["size"] == size]
    seeds = sorted({r["seed"] for r in mine})
    total: dict[str, dict[str, dict[str, int]]] = {m: {} for m in MODES}
    for r in mine:
        for name, c in r["score"]["counts"].items():
            into = total[r["mode"]].setdefault(name, {"accounts": 0, "top": 0, "case": 0})
            for f in into:
                into[f] += c[f]
    pct = f"{budget:.0%}" if budget >= 0.01 else f"{budget:.1%}"
    lines = [
        f"### {size:,} accounts, seeds {', '.join(map(str, seeds))} (summed)",
        "",
        f"| typology | accounts | recall@{pct} with | without | in case with | without |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    runs = [r["score"] for r in mine if r["mode"] == "with"]
    k, pos = sum(x["budget_k"] for x in runs), sum(x["suspicious"] for x in runs)
    lines[2:2] = [
        f"Accounts in the runs {sum(x['accounts'] for x in runs):,}, suspicious {pos:,}, "
        f"alert budget {k} accounts: recall at the budget is at most {k / pos:.2f}.",
        "",
    ]
    names = sorted(total["with"], key=lambda n: (n.startswith("split"), ":" in n, n))
    for name in names:
        w, wo = (
            total["with"][name],
            total["without"].get(name, {"accounts": 0, "top": 0, "case": 0}),
        )

        def rate(c: dict[str, int], f: str) -> str:
            return f"{c[f] / c['accounts']:.2f}" if c["accounts"] else "-"

        label = f"**{name}**" if name.startswith("split") else name
        lines.append(
            f"| {label} | {w['accounts']} | {rate(w, 'top')} | {rate(wo, 'top')} | "
            f"{rate(w, 'case')} | {rate(wo, 'case')} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--banks", type=int, default=4)
    ap.add_argument("--split", type=float, default=0.5, help="synth --split-schemes")
    ap.add_argument("--budget", type=float, default=0.01)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_fiu"))
    ap.add_argument("--reuse", action="store_true", help="score runs already in the workdir")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    never = rules_without_resolution(args.workdir)
    results: list[dict[str, Any]] = []
    for size in args.sizes:
        for seed in args.seeds:
            folder = args.workdir / f"goaml-{size}-{seed}"
            synth(folder / "data", size, seed, args)
            for mode in MODES:
                out = folder / f"run-{mode}"
                done = args.reuse and (out / "accounts_scored.parquet").exists()
                wall = (
                    None
                    if done
                    else run(folder / "data", out, never if mode == "without" else None)
                )
                row = {"size": size, "seed": seed, "mode": mode, "run_s": wall}
                row["score"] = score(folder / "data", out, args.budget)
                print(json.dumps({k: v for k, v in row.items() if k != "score"}), flush=True)
                results.append(row)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "## Detection with and without entity resolution (synthetic goAML reports)",
        "",
        f"`{' '.join(['benchmarks/bench_fiu.py', *sys.argv[1:]])}`: {args.banks} banks, 30 days, "
        f"split share {args.split}; alert budget {args.budget:.1%} of the run's accounts.",
        "",
    ]
    for size in args.sizes:
        lines += [*table(results, size, args.budget), ""]
    (args.workdir / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

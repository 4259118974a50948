"""`flows87 bench`: the pipeline on a labelled input with a time split, against a GFP baseline.

The input's time range is cut at `split` (rounded down to midnight UTC when the range spans
days): the report period runs from the cut to the end, and the tuning period is, by default
(`tune_on="report-length"`), the period of the same length just before the cut (all of the
time before the cut when that is shorter): risk scores and account aggregates depend on the
length of the window they are computed over, so a threshold tuned on 7 days does not fill the
same budget on 3. `tune_on="all"` tunes on everything before the cut (the old behaviour). The
pipeline runs on each period (the tuning run and the report run), each a `flows87.pipeline.run.run`
with its interval selected from the same input; both intervals are in the report. Tuning reads
the tuning run only, and only the labels of accounts active in it: the score threshold that
fills the alert budget, and with `sweep_n` a sweep of rule parameters whose chosen setting the
report run then uses. The report run is measured against its labels: recall and precision at
the budget, recall at the tuned threshold, PR-AUC of accounts_scored.risk_score, precision of
the top cases, and transactions per second per stage. With `gfp`, IBM's Graph Feature
Preprocessor features (the `gfp_patterns` chosen, recorded in the report) with an Isolation
Forest go through the same periods, population and budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.errors import InputError
from flows87.io import write_json, write_parquet, write_text
from flows87.pipeline.stages.config import RunConfig
from flows87.research.bench.metrics import ranking_metrics, threshold_at
from flows87.research.evaluate.metrics import case_metrics

__all__ = ["TUNE_ON", "bench", "markdown", "split_time", "tune_interval"]

TUNE_ON = ("report-length", "all")
"""Which part of the time before the cut to tune on: the period as long as the report period
just before the cut (the default), or all of it."""

Say = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def time_range(source: str | Path, fmt: str | None) -> tuple[datetime, datetime, int]:
    from flows87.pipeline.ingest import read

    result = read(source, fmt)
    row = (
        result.transactions.select(
            pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"), pl.len().alias("n")
        )
        .collect()
        .row(0)
    )
    if row[0] is None:
        raise InputError("the input has no transactions with a time", file=source)
    return row[0], row[1], int(row[2])


def split_time(lo: datetime, hi: datetime, split: float) -> tuple[datetime, datetime, datetime]:
    """(start, cut, end): the interval [start, end) covers every transaction; the cut falls at
    `split` of the way, at midnight when the data spans at least 3 days, else on the hour."""
    if not 0 < split < 1:
        raise InputError(f"split must be between 0 and 1, got {split}")
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    day = (hi - lo) >= timedelta(days=3)
    unit = timedelta(days=1) if day else timedelta(hours=1)

    def floor(t: datetime) -> datetime:
        t = t.replace(minute=0, second=0, microsecond=0)
        return t.replace(hour=0) if day else t

    start = floor(lo)
    end = floor(hi) + unit
    cut = floor(lo + (hi - lo) * split)
    if cut <= start:
        cut = start + unit
    if cut >= end:
        raise InputError("the input's time range is too short to split", hint=f"{lo} to {hi}")
    return start, cut, end


def tune_interval(
    start: datetime, cut: datetime, end: datetime, tune_on: str = "report-length"
) -> tuple[datetime, datetime]:
    """The tuning period [tune_start, cut): as long as the report period [cut, end) and just
    before it (from `start` when the input has less before the cut), or all of [start, cut)."""
    if tune_on == "all":
        return start, cut
    if tune_on != "report-length":
        raise InputError(
            f"unknown tuning period {tune_on!r}", field="tune_on", hint=" or ".join(TUNE_ON)
        )
    return max(start, cut - (end - cut)), cut


def _period(lo: datetime, hi: datetime) -> dict[str, Any]:
    return {
        "start": lo.isoformat(),
        "end": hi.isoformat(),
        "days": round((hi - lo) / timedelta(days=1), 4),
    }


def _active(run_dir: Path) -> pl.DataFrame:
    tx = pl.read_parquet(run_dir / "transactions.parquet", columns=["src_account", "dst_account"])
    return (
        pl.concat(
            [
                tx.select(pl.col("src_account").alias("account_id")),
                tx.select(pl.col("dst_account").alias("account_id")),
            ]
        )
        .unique()
        .sort("account_id")
    )


def _labels(run_dir: Path) -> pl.DataFrame:
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    if "is_suspicious" not in scored.columns:
        raise InputError(
            "the input has no labels: a benchmark measures detection against them",
            file=run_dir / "accounts_scored.parquet",
        )
    cols = [c for c in ("account_id", "is_suspicious", "typology") if c in scored.columns]
    return scored.select(cols)


def _throughput(run_dir: Path) -> dict[str, Any]:
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    n = int(info["counts"]["ingest"]["transactions"])
    secs = {k: float(v) for k, v in (info.get("stage_seconds") or {}).items()}
    total = sum(secs.values())
    return {
        "transactions": n,
        "seconds": round(total, 3),
        "txn_per_s": round(n / total, 1) if total else None,
        "stages": {
            k: {"seconds": v, "txn_per_s": round(n / v, 1) if v else None}
            for k, v in sorted(secs.items())
        },
    }


def bench(
    source: str | Path,
    out: str | Path,
    *,
    fmt: str | None = None,
    split: float = 0.7,
    budget: float = 0.01,
    gfp: bool = False,
    rules_dir: str | Path | None = None,
    sweep_n: int = 0,
    sweep_params: list[str] | None = None,
    sweep_alert_rate: float = 0.02,
    seed: int = 0,
    top_cases: int = 100,
    tune_on: str = "report-length",
    gfp_patterns: str | list[str] | tuple[str, ...] | None = None,
    gfp_timeout: float | None = None,
    say: Say = _quiet,
) -> dict[str, Any]:
    """`tune_on`: see TUNE_ON; `gfp_patterns`: what GFP computes (`gfp.parse_patterns`,
    e.g. "fan,degree,scatter-gather,vertex-stats"; None: `gfp.DEFAULT_PATTERNS`);
    `gfp_timeout`: seconds after which the baseline is stopped and reported as unfinished.
    bench.json and bench.md are written before the baseline starts, and again with it."""
    from flows87.pipeline.run import run
    from flows87.research.sweep import SweepContext, sweep
    from flows87.research.sweep.patch import patched_settings

    if not 0 < budget < 1:
        raise InputError(f"the alert budget must be between 0 and 1, got {budget}")
    if tune_on not in TUNE_ON:
        raise InputError(
            f"unknown tuning period {tune_on!r}", field="tune_on", hint=" or ".join(TUNE_ON)
        )
    patterns: tuple[str, ...] = ()
    if gfp:
        from flows87.research.bench import gfp as gfp_mod

        patterns = gfp_mod.parse_patterns(gfp_patterns)
        gfp_mod.check()  # fail before hours of work when snapml is missing
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lo, hi, n_input = time_range(source, fmt)
    first, cut, end = split_time(lo, hi, split)
    start, _ = tune_interval(first, cut, end, tune_on)
    periods = {
        "tune_on": tune_on,
        "tune": _period(start, cut),
        "report": _period(cut, end),
        "equal_length": (cut - start) == (end - cut),
    }
    say(
        f"input: {n_input:,} transactions from {lo} to {hi}; tune on [{start}, {cut}) "
        f"({periods['tune']['days']:g} days), report on [{cut}, {end}) "
        f"({periods['report']['days']:g} days)"
    )
    if tune_on == "report-length" and not periods["equal_length"]:
        say(
            "the tuning period is shorter than the report period: the input has less time "
            "before the cut (raise --split)"
        )
    base = {"format": fmt, "select_interval": True, "alert_budget": budget}
    if rules_dir:
        base["rules_dir"] = Path(rules_dir)
    train_dir, test_dir = out / "tune_run", out / "report_run"
    t0 = time.perf_counter()
    run(source, train_dir, RunConfig(**base, interval_start=start, interval_end=cut))
    say(f"tuning run: {time.perf_counter() - t0:.1f} s")

    # -- tuning: the tuning run and the labels of accounts active in it, nothing else -----
    tune: dict[str, Any] = {"interval": [start.isoformat(), cut.isoformat()]}
    ctx = SweepContext(train_dir, rules_dir, population="active")
    setting: dict[str, float | int] = {}
    if sweep_n:
        t0 = time.perf_counter()
        result = sweep(
            train_dir,
            context=ctx,
            out=out / "tune_sweep",
            params=sweep_params,
            random_n=sweep_n,
            seed=seed,
            max_alert_rate=sweep_alert_rate,
        )
        if result.chosen is not None:
            setting = result.outcomes[result.chosen].setting
        tune["sweep"] = {
            "settings": len(result.outcomes),
            "seconds": round(time.perf_counter() - t0, 2),
            "chosen": setting,
            "defaults_recall": result.outcomes[0].metrics["recall"],
            "chosen_recall": result.outcomes[result.chosen].metrics["recall"]
            if result.chosen is not None
            else None,
        }
        say(f"tuning sweep: {len(result.outcomes)} settings, chosen {setting or 'the defaults'}")
    train_scored = ctx.scored(setting)
    write_parquet(
        ctx.accounts.select("account_id", "is_suspicious"), out / "tune" / "labels_used.parquet"
    )
    threshold = threshold_at(train_scored["risk_score"].to_numpy(), budget)
    tune["threshold"] = threshold
    tune["accounts"] = ctx.accounts.height
    tune["metrics"] = ranking_metrics(
        train_scored.select(
            "account_id",
            pl.col("risk_score").alias("score"),
            "is_suspicious",
            *(["typology"] if "typology" in train_scored.columns else []),
        ),
        budget,
    )

    # -- the report run with the tuned setting ---------------------------------------------
    overrides, _, _ = ctx.split(setting)
    files = patched_settings(setting, ctx.space, out / "tune" / "settings")
    test_cfg = RunConfig(
        **base,
        interval_start=cut,
        interval_end=end,
        rule_overrides=overrides,
        detector_settings=files.get("detectors"),
        scoring_settings=files.get("scoring"),
    )
    t0 = time.perf_counter()
    run(source, test_dir, test_cfg)
    say(f"report run: {time.perf_counter() - t0:.1f} s")
    population = _active(test_dir).join(_labels(test_dir), on="account_id", how="left")
    population = population.with_columns(pl.col("is_suspicious").fill_null(False))
    scored = pl.read_parquet(test_dir / "accounts_scored.parquet")
    f87 = population.join(
        scored.select("account_id", pl.col("risk_score").alias("score"), "case_id"),
        on="account_id",
        how="left",
    ).with_columns(pl.col("score").fill_null(0.0))
    metrics = ranking_metrics(f87.drop("case_id"), budget, threshold)
    in_case = f87["case_id"].is_not_null()
    sus = f87["is_suspicious"]
    metrics["cases"] = {
        "alert_rate": round(float(in_case.mean()), 4),
        "recall": round(float((in_case & sus).sum() / max(int(sus.sum()), 1)), 4),
    }
    cases = pl.read_parquet(test_dir / "cases.parquet")
    metrics["top_cases"] = case_metrics(cases, scored, top=top_cases)
    throughput = _throughput(test_dir)
    methods: dict[str, Any] = {
        "flows87": {"metrics": metrics, "throughput": throughput},
    }
    doc = {
        "input": str(source),
        "format": fmt,
        "transactions": n_input,
        "split": split,
        "interval": {"start": first.isoformat(), "cut": cut.isoformat(), "end": end.isoformat()},
        "periods": periods,
        "budget": budget,
        "tune": tune,
        "report_run": str(test_dir),
        "tune_run": str(train_dir),
        "methods": methods,
    }
    write_json(doc, out / "bench.json")
    write_text(markdown(doc), out / "bench.md")
    if gfp:  # hours on large inputs: flows87's side is already written
        since = max(start, cut - (end - cut))  # as long as the report period
        methods["gfp+iforest"] = _gfp(
            train_dir, test_dir, population, budget, seed, since, patterns, say, gfp_timeout
        )
        write_json(doc, out / "bench.json")
        write_text(markdown(doc), out / "bench.md")
    return doc


def _gfp(
    train_dir: Path,
    test_dir: Path,
    population: pl.DataFrame,
    budget: float,
    seed: int,
    since: datetime,
    patterns: tuple[str, ...],
    say: Say,
    timeout: float | None = None,
) -> dict[str, Any]:
    from flows87.research.bench import gfp

    computed = gfp.describe(patterns)
    say(f"GFP baseline computes {computed['text']}")
    res = gfp.run_baseline(
        train_dir / "transactions.parquet",
        test_dir / "transactions.parquet",
        budget,
        seed,
        since,
        patterns,
        timeout,
    )
    label = f"gfp+iforest ({', '.join(patterns)})"
    if "timed_out" in res:
        say(f"GFP baseline stopped: not finished within {res['timed_out']:,.0f} s")
        return {"label": label, "gfp": computed, "timed_out": res["timed_out"]}
    scores = pl.DataFrame(
        {"account_id": res["account_id"], "score": res["score"]},
        schema={"account_id": pl.String, "score": pl.Float64},
    )
    lowest = float(np.min(scores["score"].to_numpy(), initial=0.0))
    frame = population.join(scores, on="account_id", how="left").with_columns(
        pl.col("score").fill_null(lowest)
    )
    metrics = ranking_metrics(frame, budget, res["threshold"])
    secs = res["seconds"]
    total = sum(secs.values())
    n = res["transactions"]
    fitted = sum(res["train_seconds"].values())
    say(
        f"GFP baseline: {total:.1f} s on the report period's {n:,} transactions, "
        f"{fitted:.1f} s fitting on {res.get('train_transactions') or 0:,} before the cut"
    )
    return {
        "label": label,
        "gfp": computed,
        "metrics": metrics,
        "throughput": {
            "transactions": n,
            "seconds": round(total, 3),
            "txn_per_s": round(n / total, 1) if total else None,
            "stages": {
                k: {"seconds": v, "txn_per_s": round(n / v, 1) if v else None}
                for k, v in secs.items()
            },
            "fitted_from": since.isoformat(),
            "fitted_transactions": res.get("train_transactions"),
            "tuning_period_seconds": res["train_seconds"],
            "features": res["features"],
        },
    }


def table(doc: dict[str, Any]) -> str:
    b = doc["budget"]
    lines = [
        f"| method | recall at {b:.1%} | precision at {b:.1%} | PR-AUC | recall at tuned "
        "threshold (alert rate) | transactions/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in doc["methods"].items():
        if "timed_out" in m:
            lines.append(
                f"| {m.get('label', name)} | not finished within {m['timed_out']:,.0f} s "
                "(stopped) | | | | |"
            )
            continue
        mm, th = m["metrics"], m["metrics"].get("threshold", {})
        lines.append(
            f"| {m.get('label', name)} | {mm['recall_at_budget']} | {mm['precision_at_budget']} | "
            f"{mm['pr_auc']} | {th.get('recall')} ({th.get('alert_rate')}) | "
            f"{m['throughput']['txn_per_s']:,} |"
        )
    return "\n".join(lines)


def _gfp_lines(doc: dict[str, Any]) -> list[str]:
    g = doc["methods"].get("gfp+iforest")
    if not g or "gfp" not in g:
        return []
    if "timed_out" in g:
        return [
            f"GFP computed: {g['gfp']['text']}; stopped after {g['timed_out']:,.0f} s "
            "without a result.",
            "",
        ]
    n = g["throughput"].get("fitted_transactions")
    return [
        f"GFP computed: {g['gfp']['text']} (histogram bins {g['gfp']['bins']}). Its IForest "
        f"was fitted on the {f'{n:,} ' if n else ''}transactions from "
        f"{g['throughput']['fitted_from']} to the cut.",
        "",
    ]


def markdown(doc: dict[str, Any]) -> str:
    f87 = doc["methods"]["flows87"]
    m = f87["metrics"]
    tune, rep = doc["periods"]["tune"], doc["periods"]["report"]
    how = (
        "as long as the report period, just before it"
        if doc["periods"]["tune_on"] == "report-length"
        else "all of the input before the report period"
    )
    lines = [
        f"# Benchmark: {doc['input']}",
        "",
        f"{doc['transactions']:,} transactions. Tuned on [{tune['start']}, {tune['end']}) "
        f"({tune['days']:g} days, {how}; {doc['tune']['accounts']:,} accounts active then, "
        f"their labels only), reported on [{rep['start']}, {rep['end']}) ({rep['days']:g} "
        f"days; {m['accounts']:,} accounts active, {m['suspicious_accounts']:,} labelled "
        f"suspicious). Alert budget {doc['budget']:.1%} of the report period's active accounts.",
        "",
        table(doc),
        "",
        f"flows87 cases: {m['cases']['alert_rate']:.2%} of accounts, recall "
        f"{m['cases']['recall']}; top cases: {json.dumps(m.get('top_cases') or {})}.",
        "",
        f"Tuned: threshold {doc['tune']['threshold']:.4f}"
        + (
            f"; sweep chose {doc['tune']['sweep']['chosen'] or 'the defaults'}"
            if "sweep" in doc["tune"]
            else ""
        )
        + ".",
        "",
        *_gfp_lines(doc),
        "## Throughput of the report run, per stage",
        "",
        "| stage | seconds | transactions/s |",
        "| --- | --- | --- |",
    ]
    for name, meth in doc["methods"].items():
        for stage, s in meth.get("throughput", {}).get("stages", {}).items():
            rate = f"{s['txn_per_s']:,}" if s["txn_per_s"] else ""
            lines.append(f"| {name}: {stage} | {s['seconds']} | {rate} |")
    if "typologies" in m:
        lines += [
            "",
            "## flows87 recall at the budget per typology",
            "",
            "| typology | accounts | recall |",
            "| --- | --- | --- |",
        ]
        for typ, v in m["typologies"].items():
            lines.append(f"| {typ} | {v['accounts']} | {v['recall_at_budget']} |")
    return "\n".join(lines) + "\n"

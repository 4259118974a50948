"""The benchmark itself: the tuning run, the tuning, the report run, each method measured."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import polars as pl

from flows87.errors import InputError
from flows87.io import write_json, write_parquet, write_text
from flows87.pipeline.stages.config import RunConfig
from flows87.research.bench.baseline import measure_gfp
from flows87.research.bench.metrics import ranking_metrics, threshold_at
from flows87.research.bench.periods import (
    check_tune_on,
    period,
    split_time,
    time_range,
    tune_interval,
)
from flows87.research.bench.report import markdown
from flows87.research.bench.runfiles import active_accounts, labels, throughput
from flows87.research.evaluate.metrics import case_metrics
from flows87.rundir import RunDir

Say = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


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
    learning: bool = False,
    say: Say = _quiet,
) -> dict[str, Any]:
    """`tune_on`: see TUNE_ON; `learning`: add the learned scorer's learning curve trained on
    the tuning run's labels (flows87.research.learning); `gfp_patterns`: what GFP computes
    (`gfp.parse_patterns`,
    e.g. "fan,degree,scatter-gather,vertex-stats"; None: `gfp.DEFAULT_PATTERNS`);
    `gfp_timeout`: seconds after which the baseline is stopped and reported as unfinished.
    bench.json and bench.md are written before the baseline starts, and again with it."""
    from flows87.pipeline.run import run
    from flows87.research.sweep import SweepContext, sweep
    from flows87.research.sweep.patch import patched_settings

    if not 0 < budget < 1:
        raise InputError(f"the alert budget must be between 0 and 1, got {budget}")
    check_tune_on(tune_on)
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
    periods: dict[str, Any] = {
        "tune_on": tune_on,
        "tune": period(start, cut),
        "report": period(cut, end),
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
    base: dict[str, Any] = {"format": fmt, "select_interval": True, "alert_budget": budget}
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
    population = active_accounts(test_dir).join(labels(test_dir), on="account_id", how="left")
    population = population.with_columns(pl.col("is_suspicious").fill_null(False))
    scored = pl.read_parquet(RunDir(test_dir).accounts_scored)
    f87 = population.join(
        scored.select("account_id", pl.col("risk_score").alias("score"), "case_id"),
        on="account_id",
        how="left",
    ).with_columns(pl.col("score").fill_null(0.0))
    metrics = ranking_metrics(f87.drop("case_id"), budget, threshold)
    in_case = f87["case_id"].is_not_null()
    sus = f87["is_suspicious"]
    metrics["cases"] = {
        "alert_rate": round(float(cast(float, in_case.mean())), 4),
        "recall": round(float((in_case & sus).sum() / max(int(sus.sum()), 1)), 4),
    }
    cases = pl.read_parquet(RunDir(test_dir).cases)
    metrics["top_cases"] = case_metrics(cases, scored, top=top_cases)
    flow_rate = throughput(test_dir)
    methods: dict[str, Any] = {
        "flows87": {"metrics": metrics, "throughput": flow_rate},
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
        methods["gfp+iforest"] = measure_gfp(
            train_dir, test_dir, population, budget, seed, since, patterns, say, gfp_timeout
        )
        write_json(doc, out / "bench.json")
        write_text(markdown(doc), out / "bench.md")
    if learning:  # today / learned / blend after N cases of the tuning run, and all its labels
        from flows87.research.learning import learning_curve

        doc["learning"] = learning_curve(
            [train_dir],
            test_dir,
            budget=budget,
            scoring=files.get("scoring"),
            gfp=gfp,
            gfp_patterns=patterns or None,
            gfp_timeout=gfp_timeout,
            say=say,
        )
        write_json(doc, out / "bench.json")
        write_text(markdown(doc), out / "bench.md")
    return doc

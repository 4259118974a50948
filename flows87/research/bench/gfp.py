"""IBM's Graph Feature Preprocessor (snapml) with a PyOD detector: the baseline flows87 is
measured against.

GFP gives each transaction a histogram of the graph patterns it takes part in (fan-in/out and
degree within a day, scatter-gather within 5 days, temporal cycles within 10 days) and
statistics of the amounts around its accounts. Each account gets the mean and the maximum of
those features over the transactions it sent and over those it received; an Isolation Forest
fitted on the tuning period's accounts scores the report period's accounts. The supervised
variant (`run_supervised`, issue 16) fits an XGBoost classifier on the same account features of
the tuning period's labelled accounts instead: the published GFP + gradient boosting recipe.

snapml is only ever imported in a child process (`run_baseline`): its library is built with
fast-math and importing it switches the process's floating point to flush subnormal numbers to
zero, which would change flows87's own results (and breaks hypothesis) in the same process.

The detector is fitted on the end of the tuning period as long as the report period: account
aggregates over 3 days and over 7 days are not alike (counts, maxima), and GFP's cycle search
grows faster than the number of transactions over longer spans.

Which patterns GFP computes is a choice (`parse_patterns`, `--gfp-patterns`): by default fan,
degree, scatter-gather and vertex statistics, without the temporal cycles that kept a 5M run
from finishing; `describe` says what was computed, for the report.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.errors import ConfigError
from flows87.schema import join_ends

DAY = 86_400
BINS = [2, 3, 5, 10, 20]
"""Coarser histogram bins than GFP's default (2..30): 5 counts per pattern, so each account's
table stays a few hundred columns wide at 500k accounts."""


def load() -> type:
    """snapml.GraphFeaturePreprocessor, or a clear error when the bench extra is missing.
    Imports snapml: call it in a child process only (see the module's docstring)."""
    try:
        from snapml import GraphFeaturePreprocessor
    except ImportError as exc:
        raise _missing(str(exc)) from None
    return GraphFeaturePreprocessor


def _missing(detail: str) -> ConfigError:
    return ConfigError(
        f"the GFP baseline needs IBM's snapml, which is not installed ({detail})",
        hint="run the benchmark through `bash benchmarks/run.sh ...` (it installs the "
        "`bench` extra), or `uv sync --extra bench`",
    )


def available() -> bool:
    """Whether snapml is installed, without importing it."""
    if "snapml" in sys.modules:
        return sys.modules["snapml"] is not None
    try:
        return importlib.util.find_spec("snapml") is not None
    except (ImportError, ValueError):
        return False


def check() -> None:
    """Raise the clear error when snapml is missing (without importing it)."""
    if not available():
        raise _missing("no module named 'snapml'")


WINDOWS: dict[str, int] = {
    "fan": DAY,
    "degree": DAY,
    "scatter-gather": 5 * DAY,
    "temp-cycle": 10 * DAY,
    "lc-cycle": 10 * DAY,
    "vertex-stats": 5 * DAY,
}
"""What GFP can compute, with the time window (seconds) of each: its graph patterns (fan in/out,
degree in/out, scatter-gather, temporal cycles, length-constrained simple cycles) and the
vertex statistics of the amounts around each account."""

NAMES = {
    "fan": "fan in/out",
    "degree": "degree in/out",
    "scatter-gather": "scatter-gather",
    "temp-cycle": "temporal cycles",
    "lc-cycle": "length-constrained cycles",
    "vertex-stats": "vertex statistics",
}

DEFAULT_PATTERNS = ("fan", "degree", "scatter-gather", "vertex-stats")
"""Without cycles by default: GFP's temporal-cycle search grows much faster than the number of
transactions once the data spans several days (2 threads, generated data over 10 days: 81 s on
252k transactions, 961 s on 511k, more than 30 min on 1M, where the other patterns took 428 s),
though it costs little on periods of 1-3 days (82 s against 70 s without it on a 2-day, 992k
slice of the 5M data). Name `temp-cycle` (and `lc-cycle`) to compute them."""

LC_CYCLE_LEN = 10  # GFP's default length constraint of simple cycles


def parse_patterns(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The GFP patterns named (comma-separated or a list; `default`, `all`), in a fixed
    order; the defaults when None."""
    if value is None:
        return DEFAULT_PATTERNS
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    chosen: set[str] = set()
    for raw in items:
        name = raw.strip().lower().replace("_", "-")
        if not name:
            continue
        if name == "default":
            chosen.update(DEFAULT_PATTERNS)
        elif name == "all":
            chosen.update(WINDOWS)
        elif name in WINDOWS:
            chosen.add(name)
        else:
            raise ConfigError(
                f"unknown GFP pattern {raw.strip()!r}",
                field="gfp_patterns",
                hint=f"choose from {', '.join(WINDOWS)} (or default, all)",
            )
    if not chosen:
        raise ConfigError("no GFP pattern chosen", field="gfp_patterns", hint=", ".join(WINDOWS))
    return tuple(n for n in WINDOWS if n in chosen)


def gfp_params(threads: int | None = None, patterns: tuple[str, ...] | None = None) -> dict:
    """GFP's parameters computing `patterns` (the defaults when None)."""
    on = set(parse_patterns(patterns))
    threads = threads or min(4, os.cpu_count() or 1)
    params: dict[str, Any] = {
        "num_threads": threads,
        # the graph keeps the edges of the longest window in use
        "time_window": max(WINDOWS[n] for n in on),
        "vertex_stats": "vertex-stats" in on,
        "vertex_stats_cols": [4],
        "vertex_stats_tw": WINDOWS["vertex-stats"],
    }
    for name in ("fan", "degree", "scatter-gather", "temp-cycle", "lc-cycle"):
        params[name] = name in on
        params[f"{name}_tw"] = WINDOWS[name]
        params[f"{name}_bins"] = BINS
    params["lc-cycle_len"] = LC_CYCLE_LEN
    return params


def describe(patterns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What GFP computes with `patterns`, for the report: names, windows (days), what is off."""
    on = parse_patterns(patterns)
    return {
        "patterns": list(on),
        "windows_days": {n: WINDOWS[n] / DAY for n in on},
        "off": [n for n in WINDOWS if n not in on],
        "bins": BINS,
        **({"lc_cycle_len": LC_CYCLE_LEN} if "lc-cycle" in on else {}),
        "text": ", ".join(f"{NAMES[n]} ({WINDOWS[n] / DAY:g} d)" for n in on)
        + (
            "; off: " + ", ".join(NAMES[n] for n in WINDOWS if n not in on)
            if len(on) < len(WINDOWS)
            else ""
        ),
    }


@dataclass
class AccountFeatures:
    table: pl.DataFrame  # account_id, f_* columns
    seconds: dict[str, float] = field(default_factory=dict)
    transactions: int = 0


def account_features(
    tx: pl.DataFrame, threads: int | None = None, patterns: tuple[str, ...] | None = None
) -> AccountFeatures:
    """GFP over `tx` (txn_id, ts, src_account, dst_account, amount_base), aggregated per
    account; `patterns` as in `parse_patterns` (the defaults when None)."""
    gfp_cls = load()
    t0 = time.perf_counter()
    ids = pl.concat([tx["src_account"], tx["dst_account"]]).unique().sort().to_frame("account")
    ids = ids.with_row_index("vid")
    edges = (
        join_ends(
            tx.sort("ts", "txn_id"),
            ids,
            {"vid": ("s", "d")},
            key="account",
            how="inner",
            maintain_order="left",
        )
        .select(
            pl.int_range(pl.len()).alias("e"),
            "s",
            "d",
            pl.col("ts").dt.epoch("s"),
            pl.col("amount_base").fill_null(0.0),
        )
        .to_numpy()
        .astype(np.float64)
    )
    prep = time.perf_counter() - t0
    gfp = gfp_cls()
    gfp.set_params(gfp_params(threads, patterns))
    t0 = time.perf_counter()
    out = gfp.fit_transform(edges)
    transform = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = out[:, 5:]
    names = [f"g{j}" for j in range(feats.shape[1])]
    frame = pl.DataFrame(
        {
            "s": edges[:, 1].astype(np.int64),
            "d": edges[:, 2].astype(np.int64),
            "amount": edges[:, 4],
            **{n: feats[:, j] for j, n in enumerate(names)},
        }
    )
    cols = ["amount", *names]
    sides = []
    for key, tag in (("s", "out"), ("d", "in")):
        sides.append(
            frame.group_by(pl.col(key).alias("vid")).agg(
                pl.len().alias(f"{tag}_n"),
                *[pl.col(c).mean().alias(f"{tag}_mean_{c}") for c in cols],
                *[pl.col(c).max().alias(f"{tag}_max_{c}") for c in cols],
            )
        )
    table = (
        sides[0]
        .join(sides[1], on="vid", how="full", coalesce=True)
        .with_columns(pl.exclude("vid").fill_null(0.0))
        .join(
            ids.rename({"account": "account_id"}).with_columns(pl.col("vid").cast(pl.Int64)),
            on="vid",
        )
        .drop("vid")
        .sort("account_id")
    )
    aggregate = time.perf_counter() - t0
    return AccountFeatures(
        table,
        {"prep": round(prep, 3), "gfp": round(transform, 3), "aggregate": round(aggregate, 3)},
        tx.height,
    )


def _matrix(table: pl.DataFrame, columns: list[str]) -> np.ndarray:
    picked = table.select(
        [pl.col(c) if c in table.columns else pl.lit(0.0).alias(c) for c in columns]
    )
    x = picked.to_numpy().astype(np.float64)
    return np.sign(x) * np.log1p(np.abs(x))  # heavy-tailed counts and amounts


@dataclass
class Baseline:
    columns: list[str]
    model: Any  # a fitted pyod IForest
    fit_seconds: float


def fit(train: AccountFeatures, seed: int = 0) -> Baseline:
    from pyod.models.iforest import IForest

    t0 = time.perf_counter()
    table = train.table
    columns = [c for c in table.columns if c != "account_id" and table[c].n_unique() > 1]
    model = IForest(n_estimators=100, random_state=seed, n_jobs=1)
    model.fit(_matrix(table, columns))
    return Baseline(columns, model, round(time.perf_counter() - t0, 3))


def score(baseline: Baseline, feats: AccountFeatures) -> tuple[pl.DataFrame, float]:
    """account_id, score (higher is more anomalous) and the scoring seconds."""
    t0 = time.perf_counter()
    raw = baseline.model.decision_function(_matrix(feats.table, baseline.columns))
    out = feats.table.select("account_id").with_columns(pl.Series("score", raw))
    return out, round(time.perf_counter() - t0, 3)


def _child(
    train_path: str,
    test_path: str,
    budget: float,
    seed: int,
    since: datetime | None,
    patterns: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """In the child process: features, fit on the tuning period, score the report period."""
    from flows87.research.bench.metrics import threshold_at

    cols = ["txn_id", "ts", "src_account", "dst_account", "amount_base"]
    try:
        load()
    except ConfigError as exc:
        return {"error": exc.message}
    train_tx = pl.read_parquet(train_path, columns=cols)
    if since is not None:
        train_tx = train_tx.filter(pl.col("ts") >= since)
    train = account_features(train_tx, patterns=patterns)
    model = fit(train, seed)
    train_scores, _ = score(model, train)
    threshold = threshold_at(train_scores["score"].to_numpy(), budget)
    test = account_features(pl.read_parquet(test_path, columns=cols), patterns=patterns)
    scores, score_s = score(model, test)
    return {
        "account_id": scores["account_id"].to_list(),
        "score": scores["score"].to_list(),
        "threshold": threshold,
        "seconds": {**test.seconds, "score": score_s},
        "transactions": test.transactions,
        "train_seconds": {**train.seconds, "fit": model.fit_seconds},
        "features": len(model.columns),
        "train_transactions": train.transactions,
    }


def run_baseline(
    train_tx: Path,
    test_tx: Path,
    budget: float,
    seed: int = 0,
    since: datetime | None = None,
    patterns: tuple[str, ...] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The baseline on two transactions files, in a fresh (spawned) process; with `since`, the
    detector is fitted on the tuning transactions from then on only; GFP computes `patterns`
    (`parse_patterns`; the defaults when None). After `timeout` seconds the process is stopped
    and `{"timed_out": timeout}` returned: GFP's cost grows faster than the transactions."""
    check()
    patterns = parse_patterns(patterns)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:  # leaving the block terminates a child still computing
        job = pool.apply_async(_child, (str(train_tx), str(test_tx), budget, seed, since, patterns))
        try:
            out = job.get(timeout)
        except multiprocessing.TimeoutError:
            return {"timed_out": timeout}
    if "error" in out:
        raise _missing(out["error"])
    return out


def fit_supervised(
    train: AccountFeatures, labels: pl.DataFrame, columns: list[str], xgb: dict[str, Any]
) -> Any | None:
    """An XGBoost classifier on the GFP features of the accounts `labels` (account_id, label)
    names; None when the labels hold one class only."""
    from xgboost import XGBClassifier

    rows = train.table.join(labels, on="account_id", how="inner").sort("account_id")
    y = rows["label"].cast(pl.Int64).to_numpy()
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        return None
    model = XGBClassifier(
        tree_method="hist", eval_metric="aucpr", scale_pos_weight=(len(y) - pos) / pos, **xgb
    )
    model.fit(_matrix(rows, columns), y)
    return model


def _child_supervised(
    train_paths: list[str],
    test_path: str,
    label_sets: dict[str, dict[str, list[Any]]],
    xgb: dict[str, Any],
    seed: int,
    since: datetime | None,
    patterns: tuple[str, ...] | None,
) -> dict[str, Any]:
    """In the child process: GFP features of each tuning run (its accounts keyed
    `<i>/<account_id>`) and of the report run, the IForest baseline and one XGBoost classifier
    per label set fitted on the tuning runs, scores of the report period."""
    cols = ["txn_id", "ts", "src_account", "dst_account", "amount_base"]
    try:
        load()
    except ConfigError as exc:
        return {"error": exc.message}
    parts = []
    for i, path in enumerate(train_paths):
        train_tx = pl.read_parquet(path, columns=cols)
        if since is not None:
            train_tx = train_tx.filter(pl.col("ts") >= since)
        part = account_features(train_tx, patterns=patterns)
        part.table = part.table.with_columns(
            (pl.lit(f"{i}/") + pl.col("account_id")).alias("account_id")
        )
        parts.append(part)
    train = AccountFeatures(
        pl.concat([p.table for p in parts], how="diagonal_relaxed").fill_null(0.0),
        {k: round(sum(p.seconds.get(k, 0.0) for p in parts), 3) for k in parts[0].seconds},
        sum(p.transactions for p in parts),
    )
    test = account_features(pl.read_parquet(test_path, columns=cols), patterns=patterns)
    iforest = fit(train, seed)
    unsupervised, _ = score(iforest, test)
    x_test = _matrix(test.table, iforest.columns)
    scores: dict[str, list[float] | None] = {}
    t0 = time.perf_counter()
    for name, lab in label_sets.items():
        frame = pl.DataFrame(lab, schema={"account_id": pl.String, "label": pl.Boolean})
        model = fit_supervised(train, frame, iforest.columns, xgb)
        scores[name] = None if model is None else model.predict_proba(x_test)[:, 1].tolist()
    return {
        "account_id": test.table["account_id"].to_list(),
        "iforest": unsupervised["score"].to_list(),
        "scores": scores,
        "features": len(iforest.columns),
        "seconds": {
            "train_gfp": sum(train.seconds.values()),
            "test_gfp": sum(test.seconds.values()),
            "fit_all": round(time.perf_counter() - t0, 3),
        },
    }


def run_supervised(
    train_tx: list[Path],
    test_tx: Path,
    label_sets: dict[str, pl.DataFrame],
    xgb: dict[str, Any],
    seed: int = 0,
    since: datetime | None = None,
    patterns: tuple[str, ...] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """GFP + XGBoost trained on each of `label_sets` (account_id `<i>/<account>` of the i-th
    tuning run, label) and GFP + IForest, scoring the report period, in a spawned process;
    `{"timed_out": timeout}` when stopped."""
    check()
    patterns = parse_patterns(patterns)
    sets = {k: {c: v[c].to_list() for c in ("account_id", "label")} for k, v in label_sets.items()}
    args = ([str(p) for p in train_tx], str(test_tx), sets, xgb, seed, since, patterns)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        job = pool.apply_async(_child_supervised, args)
        try:
            out = job.get(timeout)
        except multiprocessing.TimeoutError:
            return {"timed_out": timeout}
    if "error" in out:
        raise _missing(out["error"])
    return out

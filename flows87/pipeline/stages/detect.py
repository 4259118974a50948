"""Stages 2-4: features, then rules, detectors and graph patterns, each reading and writing Parquet.

The three detection stages are independent of each other except that graph rules may read the
account/transaction rules' signals (a controller is an account receiving from flagged accounts),
so the graph stage runs after the rules stage. Each writes its own signals file; the signals gate
merges them into RUN/signals.parquet.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import read_json, write_parquet
from flows87.pipeline import detectors, quality
from flows87.pipeline.cases.scoring import load_settings as load_scoring
from flows87.pipeline.features import compute, load_settings
from flows87.pipeline.features.compute import TRANSACTION_COLUMNS_READ
from flows87.pipeline.rules import empty_signals, load_rules, run_rules
from flows87.pipeline.rules.ceiling import Ceiling, summary_lines
from flows87.pipeline.rules.engine import RuleRun, columns_read
from flows87.pipeline.runinfo import StageRecord, stage
from flows87.pipeline.stages.config import RunConfig

SIGNAL_FILES = {
    "rules": "signals_rules.parquet",
    "detectors": "signals_detectors.parquet",
    "graph": "signals_graph.parquet",
}
HELD_FILES = {"rules": "signals_held_rules.parquet", "graph": "signals_held_graph.parquet"}
"""Signals of rules held back by the flood ceiling, per stage; merged into HELD."""
HELD = "signals_held.parquet"


NOT_FOR_DETECTION = ("source_row", "memo", "is_suspicious", "typology", "scheme_id")
"""Optional transaction columns no detection stage reads: provenance, free text and the labels
(rules must not read them). Left out when the graph stage loads transactions (each string
column costs 16 bytes a row); the graph context adds absent optional columns back as nulls."""


GRAPH_FEATURE_COLUMNS = ("account_id", "window", "window_start", "window_end")
"""The feature columns the graph stage loads for its patterns' context. No pattern reads
features today (they read transactions, accounts and the rules' signals), and all of them are
0.8 GB at 500k accounts; a pattern that starts reading one fails on the missing column, and
its name belongs here."""


def free_memory() -> None:
    """Give memory that earlier stages freed back to the system before a stage starts.

    `flows87 run` runs every stage in one process: freed memory kept by the C allocator (numpy,
    scikit-learn) or by pyarrow's pool (pandas text) cannot serve polars, so it would add to the
    next stage's peak."""
    gc.collect()
    with contextlib.suppress(Exception):  # optional: only memory is at stake
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)  # glibc only


def _read(run_dir: Path, name: str, columns: set[str] | None = None) -> pl.DataFrame:
    """A Parquet file of the run; with `columns`, only those of them the file has."""
    if columns is None:
        return pl.read_parquet(run_dir / name)
    present = pl.read_parquet_schema(run_dir / name).names()
    return pl.read_parquet(run_dir / name, columns=[c for c in present if c in columns])


def _read_except(run_dir: Path, name: str, dropped: tuple[str, ...]) -> pl.DataFrame:
    present = pl.read_parquet_schema(run_dir / name).names()
    return pl.read_parquet(run_dir / name, columns=[c for c in present if c not in dropped])


def _origin(config: RunConfig, transactions: pl.DataFrame) -> datetime | None:
    """Windows align to the data interval's start, or to midnight of the first transaction."""
    if config.interval_start is not None:
        return config.interval_start
    first = transactions["ts"].min()
    return first.replace(hour=0, minute=0, second=0, microsecond=0) if first else None


def feature_settings(config: RunConfig):  # noqa: ANN201 - FeatureSettings
    """The feature settings with every window a rule or detector reads added."""
    settings = load_settings(config.settings_path("features"))
    windows = list(config.windows or settings.windows)
    for item in load_rules(config.rules_dir):
        if item.rule.scope == "account" and item.rule.window not in windows:
            windows.append(item.rule.window)
    det = detectors.load_settings(config.settings_path("detectors"))
    if det.window not in windows:
        windows.append(det.window)
    return settings.model_copy(update={"windows": windows})


def features(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    config = config or RunConfig()
    run_dir = Path(run_dir)
    free_memory()
    with stage(run_dir, "features") as rec:
        settings = feature_settings(config)
        rec.params["windows"] = settings.windows
        tx = _read(run_dir, "transactions.parquet", set(TRANSACTION_COLUMNS_READ))
        acc = _read(run_dir, "accounts.parquet")
        with rec.step("compute"):
            table = compute(tx, acc, settings, origin=_origin(config, tx))
        del tx, acc
        with rec.step("gate"):
            gate_features_table(table, run_dir, config, rec)
    return rec.counts


def gate_features_table(
    table: pl.DataFrame, run_dir: Path, config: RunConfig, rec: StageRecord
) -> None:
    """Gate a feature table and publish RUN/features.parquet (also the partitioned path's merge)."""
    gate = quality.run_gate(
        table, "features", run_dir, max_failed_fraction=config.max_failed_fraction
    )
    write_parquet(gate.passed, run_dir / "features.parquet")
    rec.counts = {
        "rows": gate.passed.height,
        "accounts": gate.passed["account_id"].n_unique(),
        "quarantined": gate.stats["rows_quarantined"],
    }
    rec.warnings = list(gate.stats["warnings"])


def rules(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Account and transaction rules."""
    return _rules(run_dir, config or RunConfig(), graph=False)


def graph(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Graph rules (patterns), after the rules stage."""
    return _rules(run_dir, config or RunConfig(), graph=True)


def _rules(run_dir: str | Path, config: RunConfig, *, graph: bool) -> dict[str, Any]:
    run_dir = Path(run_dir)
    name = "graph" if graph else "rules"
    free_memory()
    with stage(run_dir, name) as rec:
        settings = feature_settings(config)
        loaded = [r.rule for r in load_rules(config.rules_dir)]
        chosen = [r for r in loaded if (r.scope == "graph") == graph]
        rec.params = {"rules": [r.id for r in chosen], "overrides": config.rule_overrides}
        # only the columns the chosen rules read: the whole transactions and features tables
        # are about 2.5 GB in memory at 5M transactions
        needed = columns_read(chosen)
        if needed is None:
            tx = _read_except(run_dir, "transactions.parquet", NOT_FOR_DETECTION)
            feats = _read(run_dir, "features.parquet", set(GRAPH_FEATURE_COLUMNS))
        else:
            tx = _read(run_dir, "transactions.parquet", needed[0])
            feats = _read(run_dir, "features.parquet", needed[1])
        acc = _read(run_dir, "accounts.parquet")
        origin = _origin(config, tx)
        prior = empty_signals()
        if graph and (run_dir / SIGNAL_FILES["rules"]).exists():
            prior = _read(run_dir, SIGNAL_FILES["rules"])  # held-back signals are not in it
        ceiling = run_ceiling(feats, config)
        result = run_rules(
            chosen,
            feats,
            tx,
            acc,
            settings,
            origin,
            config.rule_overrides,
            prior=prior,
            ceiling=ceiling,
        )
        write_parquet(result.signals, run_dir / SIGNAL_FILES[name])
        write_parquet(result.held, run_dir / HELD_FILES[name])
        record_rule_run(rec, result, ceiling)
    return {"signals": result.signals.height, "skipped": result.skipped}


def run_ceiling(features: pl.DataFrame | pl.LazyFrame, config: RunConfig) -> Ceiling:
    """The flood ceiling of this run: its active accounts (those with features)."""
    population = features.lazy().select(pl.col("account_id").n_unique()).collect().item()
    scoring = load_scoring(config.settings_path("scoring"))
    return Ceiling(int(population), scoring.ceiling, scoring.max_case_accounts)


def record_rule_run(rec: StageRecord, result: RuleRun, ceiling: Ceiling) -> None:
    """A rules or graph stage's counts, timings, warnings, hold-backs and relative thresholds."""
    rec.counts = {
        "signals": result.signals.height,
        "held_back_signals": result.held.height,
        "fired": result.fired,
        "skipped": result.skipped,
    }
    rec.timings = result.seconds
    rec.warnings = result.warnings + summary_lines(result.held_back)
    rec.extra["ceiling"] = {
        "population": ceiling.population,
        **ceiling.settings.model_dump(),
    }
    rec.extra["held_back"] = result.held_back
    rec.extra["relative"] = result.relative


def anomalies(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """The PyOD ensemble; writes its signals and every scored account's anomaly score."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    free_memory()
    with stage(run_dir, "detectors") as rec:
        settings = detectors.load_settings(config.settings_path("detectors"))
        rec.params = settings.model_dump()
        result = detectors.score(_read(run_dir, "features.parquet"), settings)
        write_parquet(result.signals, run_dir / SIGNAL_FILES["detectors"])
        write_parquet(result.scores, run_dir / "anomaly_scores.parquet")
        rec.counts = {
            "scored_accounts": result.scores.height,
            "signals": result.signals.height,
            "features_used": len(result.features_used),
        }
    return rec.counts


def gate_signals(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Merge the three signal files, gate them, publish RUN/signals.parquet (and the held-back
    signals, RUN/signals_held.parquet, which the gate reports but does not pass on)."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    free_memory()
    with stage(run_dir, "signals") as rec:
        parts = [_read(run_dir, f) for f in SIGNAL_FILES.values() if (run_dir / f).exists()]
        merged = _total_order(pl.concat(parts) if parts else empty_signals())
        held_parts = [_read(run_dir, f) for f in HELD_FILES.values() if (run_dir / f).exists()]
        held = _total_order(pl.concat([empty_signals(), *held_parts]))
        held_back = held_back_records(run_dir)
        gate = quality.run_gate(
            merged, "signals", run_dir, max_failed_fraction=config.max_failed_fraction
        )
        write_parquet(gate.passed, run_dir / "signals.parquet")
        write_parquet(held, run_dir / HELD)
        by_source = gate.passed.group_by("source").len().sort("source")
        rec.counts = {
            "signals": gate.passed.height,
            "by_source": {s: int(n) for s, n in by_source.iter_rows()},
            "quarantined": gate.stats["rows_quarantined"],
            "held_back_signals": held.height,
            "held_back_rules": [r["rule"] for r in held_back],
        }
        rec.extra["held_back"] = held_back
        rec.warnings = list(gate.stats["warnings"]) + summary_lines(held_back)
    return rec.counts


def _total_order(signals: pl.DataFrame) -> pl.DataFrame:
    """A total order (an account may have several signals of one rule: one per window or
    pattern instance), so the file is the same whatever order the parts came in."""
    return signals.sort(
        "source", "signal_id", "account_id", "window_start", "evidence", maintain_order=True
    )


def held_back_records(run_dir: Path) -> list[dict[str, Any]]:
    """The flood ceiling's records of the rules and graph stages (RUN/stages/*.json)."""
    records: list[dict[str, Any]] = []
    for name in HELD_FILES:
        path = run_dir / "stages" / f"{name}.json"
        if path.exists():
            records += read_json(path).get("held_back", [])
    return sorted(records, key=lambda r: r["rule"])

"""The feature, rule and detector stages split over account-hash partitions (Airflow `.expand`).

Every account belongs to one partition (a hash of its id, fixed once per run in
RUN/partitions.parquet so all workers agree). A partition's task reads the transactions that
touch its accounts (both directions, so each of its accounts sees its whole history) and keeps
only its own accounts' rows: the union over partitions equals the unpartitioned stage, which is
the contract tests check. Detectors are fitted once on every account (a model fitted on a
population is what makes an account "unusual"; the fitted state pickles to a few MB), each
partition scores its accounts against it, and one step ranks all scores together: the anomaly
scores equal the unpartitioned stage's to the bit. Graph patterns need the whole money graph
and run once, in polars, after the partitions are merged.

Files: RUN/parts/<stage>-<part>.parquet, merged into the same files the unpartitioned stages
write (features.parquet after its gate, signals_rules.parquet, ...), so everything downstream is
shared.
"""

from __future__ import annotations

import json
import pickle
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.io import atomic_path, write_parquet
from flows87.pipeline import detectors
from flows87.pipeline.features import compute
from flows87.pipeline.rules import empty_signals, load_rules, run_rules
from flows87.pipeline.rules.ceiling import hold_back_all, summary_lines
from flows87.pipeline.rules.relative import resolve
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages.config import RunConfig
from flows87.pipeline.stages.detect import (
    HELD_FILES,
    SIGNAL_FILES,
    feature_settings,
    gate_features_table,
    run_ceiling,
)

PARTS = "parts"
HASH_SEED = 87
MAX_PARTITIONS = 1024


def part_file(run_dir: Path, what: str, part: int) -> Path:
    return run_dir / PARTS / f"{what}-{part:04d}.parquet"


def assign(account_ids: pl.Series, partitions: int) -> pl.DataFrame:
    """account_id -> part. polars' hash is stable within one polars version (the lock pins it);
    the table is written once per run, so workers never recompute it."""
    return (
        account_ids.unique()
        .sort()
        .to_frame("account_id")
        .with_columns(
            (pl.col("account_id").hash(HASH_SEED) % partitions).cast(pl.Int32).alias("part")
        )
    )


def plan(run_dir: str | Path, partitions: int) -> list[int]:
    """Fix the partition of every account seen; return the partition numbers to map over."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ConfigError(
            f"partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}",
            field="partitions",
        )
    run_dir = Path(run_dir)
    with stage(run_dir, "partition", {"partitions": partitions}) as rec:
        tx = pl.scan_parquet(run_dir / "transactions.parquet")
        ids = pl.concat(
            [
                pl.scan_parquet(run_dir / "accounts.parquet").select("account_id"),
                tx.select(pl.col("src_account").alias("account_id")),
                tx.select(pl.col("dst_account").alias("account_id")),
            ]
        ).collect()["account_id"]
        table = assign(ids, partitions)
        write_parquet(table, run_dir / "partitions.parquet")
        for old in (run_dir / PARTS).glob("*.parquet") if (run_dir / PARTS).is_dir() else []:
            old.unlink()  # parts of an earlier run with another partition count
        sizes = table.group_by("part").len().sort("part")
        rec.counts = {"accounts": table.height, "sizes": dict(sizes.iter_rows())}
    return list(range(partitions))


def _members(run_dir: Path, part: int) -> pl.Series:
    table = pl.read_parquet(run_dir / "partitions.parquet")
    n = int(table["part"].max() or 0) + 1
    if not 0 <= part < n:
        raise InputError(
            f"no partition {part}: this run has {n}", file=run_dir / "partitions.parquet"
        )
    return table.filter(pl.col("part") == part)["account_id"]


def _origin(run_dir: Path, config: RunConfig) -> datetime | None:
    """The whole run's window origin (not the partition's first transaction)."""
    if config.interval_start is not None:
        return config.interval_start
    first = pl.scan_parquet(run_dir / "transactions.parquet").select(pl.col("ts").min()).collect()
    value = first.item()
    return value.replace(hour=0, minute=0, second=0, microsecond=0) if value else None


def _transactions(run_dir: Path, members: pl.Series) -> pl.DataFrame:
    ids = members.implode()
    return (
        pl.scan_parquet(run_dir / "transactions.parquet")
        .filter(pl.col("src_account").is_in(ids) | pl.col("dst_account").is_in(ids))
        .collect()
    )


def features_part(
    run_dir: str | Path, part: int, config: RunConfig | None = None
) -> dict[str, Any]:
    """Features of one partition's accounts, not yet gated."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, f"features-{part:04d}") as rec:
        settings = feature_settings(config)
        members = _members(run_dir, part)
        tx = _transactions(run_dir, members)
        acc = pl.read_parquet(run_dir / "accounts.parquet")
        table = compute(tx, acc, settings, origin=_origin(run_dir, config))
        table = table.filter(pl.col("account_id").is_in(members.implode()))
        write_parquet(table, part_file(run_dir, "features", part))
        rec.counts = {"accounts": members.len(), "transactions": tx.height, "rows": table.height}
    return {"part": part, **rec.counts}


def _parts(run_dir: Path, what: str) -> list[Path]:
    table = pl.read_parquet(run_dir / "partitions.parquet", columns=["part"])
    n = int(table["part"].max() or 0) + 1
    paths = [part_file(run_dir, what, p) for p in range(n)]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise InputError(
            f"{len(missing)} of {n} partitions have no {what} yet ({', '.join(missing[:3])}...)",
            file=run_dir / PARTS,
            hint="run the partition tasks first",
        )
    return paths


def gate_features(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Merge the partitions' features, gate them, write features.parquet."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, "gate_features") as rec:
        table = pl.concat([pl.read_parquet(p) for p in _parts(run_dir, "features")])
        table = table.sort("account_id", "window", "window_start")
        gate_features_table(table, run_dir, config, rec)
    return rec.counts


def rules_part(run_dir: str | Path, part: int, config: RunConfig | None = None) -> dict[str, Any]:
    """Account and transaction rules on one partition's accounts."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, f"rules-{part:04d}") as rec:
        settings = feature_settings(config)
        chosen = [r.rule for r in load_rules(config.rules_dir) if r.rule.scope != "graph"]
        members = _members(run_dir, part)
        ids = members.implode()
        tx = _transactions(run_dir, members)
        acc = pl.read_parquet(run_dir / "accounts.parquet")
        everyone = pl.scan_parquet(run_dir / "features.parquet")
        # relative thresholds are the whole population's, not the partition's
        resolved, _ = resolve(chosen, everyone, config.rule_overrides)
        feats = everyone.filter(pl.col("account_id").is_in(ids)).collect()
        result = run_rules(
            chosen,
            feats,
            tx,
            acc,
            settings,
            _origin(run_dir, config),
            config.rule_overrides,
            resolved=resolved,
        )
        signals = result.signals.filter(pl.col("account_id").is_in(ids))
        write_parquet(signals, part_file(run_dir, "signals_rules", part))
        rec.counts = {"signals": signals.height, "skipped": result.skipped}
        rec.warnings = result.warnings
    return {"part": part, "signals": signals.height}


def merge_rules(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """The partitions' rule signals as one signals_rules.parquet, as the unpartitioned stage
    writes it: the flood ceiling is applied here, to the whole population's signals."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, "rules") as rec:
        parts = [pl.read_parquet(p) for p in _parts(run_dir, "signals_rules")]
        merged = pl.concat(parts) if parts else empty_signals()
        merged = merged.sort("signal_id", "account_id", "window_start", nulls_last=True)
        chosen = [r.rule for r in load_rules(config.rules_dir) if r.rule.scope != "graph"]
        ceiling = run_ceiling(pl.scan_parquet(run_dir / "features.parquet"), config)
        kept, held, records = hold_back_all(chosen, merged, ceiling)
        _, relative = resolve(
            chosen, pl.scan_parquet(run_dir / "features.parquet"), config.rule_overrides
        )
        write_parquet(kept, run_dir / SIGNAL_FILES["rules"])
        write_parquet(held, run_dir / HELD_FILES["rules"])
        rec.counts = {
            "signals": kept.height,
            "held_back_signals": held.height,
            "partitions": len(parts),
        }
        warnings: list[str] = []
        for p in range(len(parts)):
            path = run_dir / "stages" / f"rules-{p:04d}.json"
            if path.exists():
                warnings += json.loads(path.read_text(encoding="utf-8")).get("warnings", [])
        rec.warnings = sorted(set(warnings)) + summary_lines(records)
        rec.extra["ceiling"] = {"population": ceiling.population, **ceiling.settings.model_dump()}
        rec.extra["held_back"] = records
        rec.extra["relative"] = relative
    return rec.counts


MODEL = "detectors_model.pkl"


def fit_detectors(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Fit the ensemble once on every account (scaling, sorted columns, histograms, trees)."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, "fit_detectors") as rec:
        settings = detectors.load_settings(config.settings_path("detectors"))
        rec.params = settings.model_dump()
        fitted = detectors.fit(pl.read_parquet(run_dir / "features.parquet"), settings)
        with atomic_path(run_dir / MODEL) as tmp:
            tmp.write_bytes(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL))
        rec.counts = {
            "accounts": fitted.n if fitted else 0,
            "features_used": len(fitted.used) if fitted else 0,
        }
    return rec.counts


def _fitted(run_dir: Path) -> detectors.Fitted | None:
    path = run_dir / MODEL
    if not path.exists():
        raise InputError("no fitted detectors: run fit_detectors first", file=path)
    return pickle.loads(path.read_bytes())  # written by this run's fit_detectors task


def detectors_part(
    run_dir: str | Path, part: int, config: RunConfig | None = None
) -> dict[str, Any]:
    """Each model's score for one partition's accounts, against the whole population."""
    run_dir = Path(run_dir)
    with stage(run_dir, f"detectors-{part:04d}") as rec:
        fitted = _fitted(run_dir)
        ids = _members(run_dir, part).implode()
        if fitted is None:
            raw = pl.DataFrame(schema={"account_id": pl.String})
        else:
            feats = (
                pl.scan_parquet(run_dir / "features.parquet")
                .filter(pl.col("account_id").is_in(ids))
                .collect()
            )
            raw = detectors.raw_scores(fitted, feats)
        write_parquet(raw, part_file(run_dir, "detector_scores", part))
        rec.counts = {"scored_accounts": raw.height}
    return {"part": part, **rec.counts}


def combine_detectors(run_dir: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Rank the partitions' scores over all accounts, flag and explain: the files the
    unpartitioned detectors stage writes."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    with stage(run_dir, "detectors") as rec:
        fitted = _fitted(run_dir)
        if fitted is None:
            settings = detectors.load_settings(config.settings_path("detectors"))
            result = detectors.score(pl.read_parquet(run_dir / "features.parquet"), settings)
        else:
            raw = pl.concat([pl.read_parquet(p) for p in _parts(run_dir, "detector_scores")])
            result = detectors.combine(raw, pl.read_parquet(run_dir / "features.parquet"), fitted)
        write_parquet(result.signals, run_dir / SIGNAL_FILES["detectors"])
        write_parquet(result.scores, run_dir / "anomaly_scores.parquet")
        rec.counts = {
            "scored_accounts": result.scores.height,
            "signals": result.signals.height,
            "features_used": len(result.features_used),
        }
    return rec.counts

"""Stage 5 as partitioned work: group the cases once, rank every account per partition, merge.

`cases` (stages/cases.py) does all of it in one process. What grows with every account and
transaction is ranking every account (`scored_accounts`, with the neighbour evidence of
`one_off_neighbours`, which groups every transfer's pair of accounts): at 50M transactions the
one task took 57 s and 6.1 GB, about 40 s of it ranking. Here:

- `group_cases`, ONE task: account risk and the cases. Cases are connected components over the
  accounts linked by pattern instances and transfers, a global computation, but its input is
  small: the signals and the links between accounts with signals (440k signals, 64 MB at 50M
  transactions). It also computes what ranking needs of the whole run: the neighbour context
  (cases/neighbours.neighbour_context: which accounts are infrastructure, a share of ALL
  accounts, and how busy each flagged account's one-off relationships were), handed to the
  partitions with the risk, the membership and the linked accounts.
- `score_accounts`, per partition: `scored_accounts`' rows of the partition's accounts, from the
  transactions touching them (parts.transactions: an account's one-off relationships are all
  among them), batch after batch on a large input (parts.batches).
- `merge_cases`: the partitions' rows sorted as `cases` sorts them (accounts_scored.parquet),
  the cases gated (cases.parquet), the stage record `cases` with `cases`' counts.

Every row of accounts_scored is computed from its account's rows alone, so the merge writes the
bytes `cases` writes (tests/test_cases_parts.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import read_json, write_parquet
from flows87.pipeline import cases as casework
from flows87.pipeline import quality
from flows87.pipeline.cases.neighbours import neighbour_context, neighbour_evidence
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.cases import (
    Neighbours,
    _counts,
    _group,
    _read_accounts,
    _seen,
    ranked,
)
from flows87.pipeline.stages.common import free_memory

GROUP_RECORD = "group_cases"
SCORE_RECORD = "score_accounts"
SHARED = ("cases_built", "cases_membership", "cases_linked", "cases_risk")
"""The group step's tables for the partitions and the merge (RUN/parts/<name>.parquet)."""
CONTEXT, ORIGIN = "cases_neighbours", "cases_origin"


def _path(job: Job, name: str) -> Path:
    return job.run.parts / f"{name}.parquet"


def _shared(job: Job, name: str) -> pl.DataFrame:
    """A table the group step handed over: every partition reads it (not popped in-process)."""
    path = _path(job, name)
    if job.memo is not None and str(path) in job.memo:
        found: pl.DataFrame = job.memo[str(path)]
        return found
    return pl.read_parquet(path)


def _hand_over(job: Job, name: str, frame: pl.DataFrame) -> None:
    job.run.parts.mkdir(parents=True, exist_ok=True)
    job.hand_over(_path(job, name), frame, write_parquet)


def _flagged(risk: pl.DataFrame, anomaly: pl.DataFrame | None) -> pl.DataFrame:
    """The accounts the detectors flagged (the anomaly family among their signals) and their
    anomaly_risk, as `ranked` selects them (null when the scores have none)."""
    ids = risk.filter(pl.col("families").list.contains("anomaly")).select("account_id")
    if anomaly is None or anomaly.is_empty() or "anomaly_risk" not in anomaly.columns:
        return ids.with_columns(pl.lit(None, dtype=pl.Float64).alias("anomaly_risk"))
    return ids.join(anomaly.select("account_id", "anomaly_risk"), on="account_id", how="left")


def group_cases(job: Job) -> dict[str, Any]:
    """Account risk and cases (one task: connected components are global, their input small),
    and the neighbour context of the whole run, for `score_accounts`."""
    free_memory()
    with stage(job.run, GROUP_RECORD) as rec:
        grouped = _group(job, rec)
        settings, built = grouped.settings, grouped.built
        with rec.step("neighbours"):
            flagged = _flagged(grouped.risk, grouped.anomaly)
            context, origin = neighbour_context(
                grouped.ends, flagged, settings.infrastructure_share
            )
        grouped.ends = grouped.ends.clear()
        tables = (built.cases, built.membership, built.linked, grouped.risk)
        for name, frame in zip(SHARED, tables, strict=True):
            _hand_over(job, name, frame)
        _hand_over(job, CONTEXT, context)
        _hand_over(job, ORIGIN, origin)
        rec.counts = _counts(grouped, built.cases.height, 0)
        rec.counts["flagged_context_rows"] = context.height
        rec.warnings = list(built.warnings)
    return rec.counts


def score_accounts(job: Job, part: int) -> dict[str, Any]:
    """`scored_accounts`' rows of one partition's accounts, batch after batch of them: each
    batch reads the transfers touching its accounts (their one-off relationships), and takes
    what depends on the whole run from the group step."""
    run = job.run
    free_memory()
    with stage(run, f"{SCORE_RECORD}-{part:04d}") as rec:
        settings = _settings(job)
        accounts = _read_accounts(run.accounts)
        anomaly = pl.read_parquet(run.anomaly_scores) if run.anomaly_scores.exists() else None
        _, membership, linked, risk = (_shared(job, name) for name in SHARED)
        context, origin = _shared(job, CONTEXT), _shared(job, ORIGIN)
        ids = parts.members(job, part)
        batches = parts.batches(job, ids)
        found: list[pl.DataFrame] = []
        read = 0
        for batch in batches:
            tx = parts.transactions(job, batch, ["src_account", "dst_account", "ts"])
            read += tx.height
            seen = _seen(accounts, tx) if batch is None else batch.to_frame("account_id")
            neighbours: Neighbours | None = None
            if anomaly is not None and settings.neighbour_anomaly_share > 0:
                neighbours = _evidence(tx, context, origin, batch)
            found.append(
                ranked(
                    seen,
                    accounts,
                    risk,
                    membership,
                    anomaly,
                    settings.uncorroborated_factor,
                    linked,
                    settings.neighbour_anomaly_share,
                    neighbours,
                )
            )
            del tx
            free_memory()
        scored = pl.concat(found)
        rec.counts = {
            "accounts_scored": scored.height,
            "transactions": read,
            "batches": len(batches),
        }
        job.hand_over(run.part("accounts_scored", part), scored, write_parquet)
    return {"part": part, "accounts_scored": scored.height}


def _settings(job: Job) -> casework.ScoringSettings:
    return casework.load_settings(job.config.settings_path("scoring"))


def _evidence(
    tx: pl.DataFrame, context: pl.DataFrame, origin: pl.DataFrame, batch: pl.Series | None
) -> Neighbours:
    """The batch's neighbour evidence, whatever flagged accounts `ranked` saw in it: the
    flagged accounts that count are the whole run's (the context)."""
    evidence = neighbour_evidence(tx, context, origin, batch)
    return lambda _flagged: evidence


def merge_cases(job: Job) -> dict[str, Any]:
    """Every partition's rows in `cases`' order (accounts_scored.parquet), the cases gated
    (cases.parquet); the record `cases` with `cases`' counts and warnings."""
    config, run = job.config, job.run
    with stage(run, "cases") as rec:
        group = read_json(run.stage_record(GROUP_RECORD))
        rec.params = group.get("params", {})
        rec.timings = dict(group.get("timings", {}))
        found = [job.take(p, pl.read_parquet) for p in parts.paths(job, "accounts_scored")]
        scored = pl.concat(found).sort(["risk_score", "account_id"], descending=[True, False])
        del found
        built = _take(job, SHARED[0])
        for name in (*SHARED[1:], CONTEXT, ORIGIN):
            _take(job, name)
        gate = quality.run_gate(built, "cases", run, max_failed_fraction=config.max_failed_fraction)
        write_parquet(scored, run.accounts_scored)
        write_parquet(gate.passed, run.cases)
        counts = dict(group["counts"])
        counts.pop("flagged_context_rows", None)
        counts["cases"] = gate.passed.height
        counts["accounts_scored"] = scored.height
        rec.counts = counts
        rec.extra["partitions"] = len(parts.paths(job, "accounts_scored"))
        rec.warnings = list(group.get("warnings", [])) + list(gate.stats["warnings"])
    return rec.counts


def _take(job: Job, name: str) -> pl.DataFrame:
    """A group step's table, read (and dropped from memory in-process) by the merge."""
    return job.take(_path(job, name), pl.read_parquet)


__all__ = ["group_cases", "merge_cases", "score_accounts"]

"""Stage 5: combine signals into account risk and ranked cases; gate and publish them.

Outside tools read accounts_scored.parquet and cases.parquet without importing flows87
(docs/run-directory.md), so both keep plain column types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline import cases as casework
from flows87.pipeline import quality
from flows87.pipeline.cases.case_score import money_reference
from flows87.pipeline.cases.neighbours import NEIGHBOUR_PERIOD_DAYS, one_off_neighbours
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import StageRecord, stage
from flows87.pipeline.stages.common import free_memory

ANOMALY_TIEBREAK = 0.001
"""Weight of the anomaly score that breaks ties in the account ranking: risk_score is
(risk + ANOMALY_TIEBREAK x anomaly_score) / (1 + ANOMALY_TIEBREAK), so it stays in [0, 1] and
accounts whose risks differ by more than ANOMALY_TIEBREAK keep their order."""


TRANSACTION_COLUMNS = ["txn_id", "ts", "src_account", "dst_account", "amount_base"]
"""The transaction columns scoring and case building read (links, case spans, case graphs)."""

LARGE_TRANSACTIONS = 8_000_000
"""Above this many transactions the stage never holds them: it reads their account columns once
as categorical codes (`account_codes`, 24 bytes a transaction) for the steps that go through all
of them, and each case step reads only the rows of its cases from the file. At 20M
transactions the stage took 7.1 GB / 31-35 s holding them, 2.5 GB / 22 s so; below, holding them
is faster (as in stages/ingest.LARGE_ROWS)."""

Neighbours = Callable[[pl.DataFrame], pl.DataFrame]
"""flagged (account_id, anomaly_risk) -> account_id, neighbour_risk."""

__all__ = [
    "ANOMALY_TIEBREAK",
    "NEIGHBOUR_PERIOD_DAYS",
    "TRANSACTION_COLUMNS",
    "cases",
    "one_off_neighbours",
    "scored_accounts",
]


def account_codes(transactions: pl.LazyFrame) -> pl.DataFrame:
    """src_account, dst_account (categorical), ts, amount_base of every transaction, in the
    file's order, streamed: what scoring goes through whole, without the strings."""
    return transactions.select(
        pl.col("src_account").cast(pl.Categorical),
        pl.col("dst_account").cast(pl.Categorical),
        "ts",
        "amount_base",
    ).collect(engine="streaming")


def _read_accounts(path: Path) -> pl.DataFrame:
    """The accounts' ids, parties and banks (the party view) and, when the input is labelled,
    their labels."""
    names = list(pl.read_parquet_schema(path))
    wanted = ("account_id", "party_id", "bank_id", "is_suspicious", "typology")
    columns: list[str] = [c for c in wanted if c in names]
    return pl.read_parquet(path, columns=columns)


def scored_accounts(
    accounts: pl.DataFrame,
    transactions: pl.DataFrame | pl.LazyFrame,
    risk: pl.DataFrame,
    membership: pl.DataFrame,
    anomaly: pl.DataFrame | None,
    uncorroborated_factor: float = 1.0,
    linked: pl.DataFrame | None = None,
    neighbour_share: float = 0.5,
    infrastructure_share: float = 0.01,
) -> pl.DataFrame:
    """One row per account seen (in the accounts table or in a transaction).

    risk_score orders accounts for review. An account in a case keeps its signal risk. An
    account in no case combines, by noisy-OR, `uncorroborated_factor` of its signal risk with its
    `anomaly_risk` (the detectors' percentile-based weight, `detectors.yaml` ranking:) and
    `neighbour_share` of the evidence of its one-off relationships with accounts the detectors
    flagged (`one_off_neighbours`): a single family of red flags is what innocent look-alikes
    trip, so an account among the most unusual of the whole population is not outranked by a
    weak uncorroborated signal, and one with both ranks above either. An account in no case
    reaches at most 1 - (1 - factor)(1 - anomaly weight)(1 - neighbour share) (0.825 with the
    shipped 0.3, 0.5 and 0.5): above a case's weakest accounts (`min_risk`, 0.5) only with two
    of a strong signal, a place among the most unusual accounts and one-off relationships with
    several of them. The anomaly score breaks the remaining ties (ANOMALY_TIEBREAK: risk_score
    stays in [0, 1]; anomaly scores without `anomaly_risk`, from older runs, only break ties:
    the ranking of before).
    `linked_case_id` names the case that lists the account as linked (beyond its size cap): it
    is context for that case, not an alert of its own.
    """
    neighbours: Neighbours | None = None
    if anomaly is not None and neighbour_share > 0:
        neighbours = lambda flagged: one_off_neighbours(  # noqa: E731
            transactions, flagged, infrastructure_share
        )
    return ranked(
        _seen(accounts, transactions),
        accounts,
        risk,
        membership,
        anomaly,
        uncorroborated_factor,
        linked,
        neighbour_share,
        neighbours,
    )


def _seen(accounts: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Every account of the accounts table or a transfer (what parts.assign partitions)."""
    ends = transactions.lazy()
    return pl.concat(
        [
            accounts.select("account_id"),
            *(
                ends.select(pl.col(c).unique().cast(pl.String).alias("account_id")).collect()
                for c in ("src_account", "dst_account")
            ),
        ]
    ).unique()


def ranked(
    seen: pl.DataFrame,
    accounts: pl.DataFrame,
    risk: pl.DataFrame,
    membership: pl.DataFrame,
    anomaly: pl.DataFrame | None,
    uncorroborated_factor: float,
    linked: pl.DataFrame | None,
    neighbour_share: float,
    neighbours: Neighbours | None,
) -> pl.DataFrame:
    """`scored_accounts`' rows of the `seen` accounts (account_id), sorted by risk: each row is
    computed from its account's rows of the other tables alone, so the rows of a partition's
    accounts are those of the whole run's table. `neighbours` gives the neighbour_risk of the
    accounts from the flagged ones (account_id, anomaly_risk of those `seen`); None: no
    neighbour evidence."""
    labels = [c for c in ("is_suspicious", "typology") if c in accounts.columns]
    out = seen.join(
        risk.select(
            "account_id",
            pl.col("risk_score").alias("signal_risk"),
            "families",
            "n_signals",
            "eligible",
        ),
        on="account_id",
        how="left",
    ).join(membership, on="account_id", how="left")
    if linked is None:
        linked = membership.clear()
    out = out.join(
        linked.select("account_id", pl.col("case_id").alias("linked_case_id")),
        on="account_id",
        how="left",
    )
    if anomaly is not None and anomaly.height:
        if "anomaly_risk" not in anomaly.columns:
            anomaly = anomaly.with_columns(pl.lit(0.0).alias("anomaly_risk"))
        out = out.join(
            anomaly.select("account_id", "anomaly_score", "anomaly_risk"),
            on="account_id",
            how="left",
        )
    else:
        out = out.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("anomaly_score"),
            pl.lit(None, dtype=pl.Float64).alias("anomaly_risk"),
        )
    if neighbours is not None:
        # the accounts the detectors flagged (their signal passed the gate): the top of the tail
        flagged = out.filter(pl.col("families").list.contains("anomaly")).select(
            "account_id", "anomaly_risk"
        )
        out = out.join(neighbours(flagged), on="account_id", how="left")
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias("neighbour_risk"))
    signal = pl.col("signal_risk").fill_null(0.0)
    uncorroborated = 1.0 - (
        (1.0 - uncorroborated_factor * signal)
        * (1.0 - pl.col("anomaly_risk").fill_null(0.0))
        * (1.0 - neighbour_share * pl.col("neighbour_risk").fill_null(0.0))
    )
    anomaly_score = pl.col("anomaly_score").fill_null(0.0).clip(0.0, 1.0)
    out = out.with_columns(
        (
            (
                pl.when(pl.col("case_id").is_null()).then(uncorroborated).otherwise(signal)
                + ANOMALY_TIEBREAK * anomaly_score
            )
            / (1.0 + ANOMALY_TIEBREAK)
        ).alias("risk_score"),
        pl.col("n_signals").fill_null(0).cast(pl.Int64),
        pl.col("families").fill_null([]),
        pl.col("eligible").fill_null(False),
    )
    if labels:
        out = out.join(
            accounts.select("account_id", *labels), on="account_id", how="left"
        ).with_columns(pl.col("is_suspicious").fill_null(False))
    cols = [
        "account_id",
        "risk_score",
        "case_id",
        "linked_case_id",
        "signal_risk",
        "anomaly_score",
        "n_signals",
        "families",
        "eligible",
        *labels,
    ]
    return out.select(cols).sort(["risk_score", "account_id"], descending=[True, False])


@dataclass
class Grouped:
    """What the score and group steps leave for ranking every account."""

    settings: casework.ScoringSettings
    accounts: pl.DataFrame
    anomaly: pl.DataFrame | None
    risk: pl.DataFrame
    parties: pl.DataFrame
    built: casework.Cases
    ends: pl.DataFrame
    """Every transfer's src_account, dst_account and ts (categorical accounts when large)."""


def _group(job: Job, rec: StageRecord) -> Grouped:
    """Account risk from the signals and cases from the accounts they link (steps score and
    group of `rec`)."""
    config, run = job.config, job.run
    settings = casework.load_settings(config.settings_path("scoring"))
    rec.params = settings.model_dump()
    signals = pl.read_parquet(run.signals)
    scan = pl.scan_parquet(run.transactions).select(TRANSACTION_COLUMNS)
    large = scan.select(pl.len()).collect().item() > LARGE_TRANSACTIONS  # the metadata's
    # large: the codes for the steps that read every transaction, the file for case rows
    ends = account_codes(scan) if large else scan.collect()
    tx: pl.DataFrame | pl.LazyFrame = scan if large else ends
    acc = _read_accounts(run.accounts)
    anomaly = pl.read_parquet(run.anomaly_scores) if run.anomaly_scores.exists() else None
    with rec.step("score"):
        links = casework.links(signals, tx)  # strings: the file's, streamed when large
        parties = casework.spread_parties(acc, settings.party_min_banks)
        risk = casework.account_risk(signals, links, settings, parties)
        links = casework.with_parties(links, parties)
    with rec.step("group"):
        reference = money_reference(ends)
        if large:
            ends = ends.drop("amount_base")
        built = casework.build(risk, signals, links, tx, settings, config.base_currency, reference)
    return Grouped(settings, acc, anomaly, risk, parties, built, ends)


def _counts(grouped: Grouped, cases: int, scored: int) -> dict[str, Any]:
    built = grouped.built
    return {
        "cases": cases,
        "accounts_in_cases": built.membership.height,
        "accounts_linked": built.linked.height,
        "accounts_scored": scored,
        "accounts_with_signals": grouped.risk.height,
        "accounts_in_spread_parties": grouped.parties.height,
    }


def cases(job: Job) -> dict[str, Any]:
    """Account risk from the signals, cases from the accounts they link, every account ranked:
    in one process (`flows87 run`); the DAG runs the same as `group_cases`, `score_accounts` per
    partition and `merge_cases` (stages/cases_parts.py), tested equal."""
    config, run = job.config, job.run
    free_memory()
    with stage(run, "cases") as rec:
        grouped = _group(job, rec)
        settings, built = grouped.settings, grouped.built
        scored = scored_accounts(
            grouped.accounts,
            grouped.ends,
            grouped.risk,
            built.membership,
            grouped.anomaly,
            settings.uncorroborated_factor,
            built.linked,
            settings.neighbour_anomaly_share,
            settings.infrastructure_share,
        )
        grouped.ends = grouped.ends.clear()
        gate = quality.run_gate(
            built.cases, "cases", run, max_failed_fraction=config.max_failed_fraction
        )
        write_parquet(scored, run.accounts_scored)
        write_parquet(gate.passed, run.cases)
        rec.counts = _counts(grouped, gate.passed.height, scored.height)
        rec.warnings = built.warnings + list(gate.stats["warnings"])
    return rec.counts

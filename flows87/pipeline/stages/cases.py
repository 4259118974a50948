"""Stage 5: combine signals into account risk and ranked cases; gate and publish them.

Outside tools read accounts_scored.parquet and cases.parquet without importing flows87
(docs/run-directory.md), so both keep plain column types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline import cases as casework
from flows87.pipeline import quality
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages.common import free_memory

ANOMALY_TIEBREAK = 0.001
"""Weight of the anomaly score that breaks ties in the account ranking: risk_score is
(risk + ANOMALY_TIEBREAK x anomaly_score) / (1 + ANOMALY_TIEBREAK), so it stays in [0, 1] and
accounts whose risks differ by more than ANOMALY_TIEBREAK keep their order."""


TRANSACTION_COLUMNS = ["txn_id", "ts", "src_account", "dst_account", "amount_base"]
"""The transaction columns scoring and case building read (links, case spans, case graphs)."""


def _read_accounts(path: Path) -> pl.DataFrame:
    """The accounts' ids, parties and banks (the party view) and, when the input is labelled,
    their labels."""
    names = list(pl.read_parquet_schema(path))
    wanted = ("account_id", "party_id", "bank_id", "is_suspicious", "typology")
    columns: list[str] = [c for c in wanted if c in names]
    return pl.read_parquet(path, columns=columns)


NEIGHBOUR_PERIOD_DAYS = 7
"""Length of the periods (aligned to midnight of the first transaction's day, like the feature
windows; a week, the detectors' window) over which `one_off_neighbours` measures how busy an
account's one-off relationships were when it met a counterparty."""


def one_off_neighbours(
    transactions: pl.DataFrame,
    flagged: pl.DataFrame,
    infrastructure_share: float,
    period_days: int = NEIGHBOUR_PERIOD_DAYS,
) -> pl.DataFrame:
    """account_id -> neighbour_risk: what the `flagged` accounts (account_id, anomaly_risk) it
    exchanged exactly one transaction with (either direction, self-transfers aside) say about
    it, infrastructure counterparties (those that transacted with at least
    `infrastructure_share` of all accounts: a payment processor, a utility, the world outside
    the bank) left out.

    Each such one-off relationship with a flagged account y is one piece of evidence, worth y's
    anomaly_risk times how busy y's one-off relationships were in the period of the transfer
    (`period_days` long; y's one-off transactions in that period over those of its busiest
    period): the edge of a fan or mule network meets the hub while it meets its many new
    counterparties (FATF/INTERPOL/Egmont 2023, cyber-enabled fraud: a sudden run of transfers with parties with no apparent
    relationship), an ordinary customer of a busy account at any time. The pieces combine by
    noisy-OR (1 - prod(1 - evidence)): an account that met several unusual accounts once each,
    as a member of a laundering network does, ranks above one that met a single one. Without
    a `ts` column, or with `period_days` 0, every relationship counts whole.
    O(E) hash groupings for E transactions."""
    timed = "ts" in transactions.columns and period_days > 0
    # accounts as categoricals: every grouping and join below hashes 4-byte codes, not strings
    src, dst = (pl.col(c).cast(pl.Categorical) for c in ("src_account", "dst_account"))
    ends = transactions.select(src, dst, *(["ts"] if timed else [])).filter(
        pl.col("src_account").to_physical() != pl.col("dst_account").to_physical()
    )
    if timed:
        origin = pl.col("ts").min().dt.truncate("1d")
        ends = ends.with_columns(
            ((pl.col("ts") - origin).dt.total_days() // period_days).alias("period")
        ).drop("ts")
    else:
        ends = ends.with_columns(pl.lit(0, dtype=pl.Int64).alias("period"))
    # each pair of accounts once, whichever way the money went: half the rows of both directions
    src_first = pl.col("src_account").to_physical() < pl.col("dst_account").to_physical()
    pairs = ends.group_by(
        pl.when(src_first).then("src_account").otherwise("dst_account").alias("a"),
        pl.when(src_first).then("dst_account").otherwise("src_account").alias("b"),
    ).agg(pl.len(), pl.col("period").first())
    reach = (
        pl.concat([pairs.select(pl.col("a").alias("y")), pairs.select(pl.col("b").alias("y"))])
        .group_by("y")
        .len()
        .rename({"len": "reach"})
    )
    seen = reach.height
    once = pairs.filter(pl.col("len") == 1)
    one_off = (
        pl.concat(
            [
                once.select(pl.col("a").alias("x"), pl.col("b").alias("y"), "period"),
                once.select(pl.col("b").alias("x"), pl.col("a").alias("y"), "period"),
            ]
        )
        .join(reach, on="y")
        .filter(pl.col("reach") < infrastructure_share * seen)
        .select("x", "y", "period")
    )
    # how busy each account's one-off relationships were, per period, against its busiest
    busy = (
        one_off.group_by(pl.col("x").alias("y"), "period")
        .len()
        .with_columns((pl.col("len") / pl.col("len").max().over("y")).alias("busy"))
        .select("y", "period", "busy")
    )
    risky = flagged.filter(pl.col("anomaly_risk") > 0).select(
        pl.col("account_id").cast(pl.Categorical).alias("y"), "anomaly_risk"
    )
    return (
        one_off.join(risky, on="y")
        .join(busy, on=["y", "period"])
        .group_by("x")
        .agg(
            # sorted before summing: a group's rows arrive in an order that varies from run
            # to run, and a float product in another order can differ in its last bit
            (1.0 - (1.0 - pl.col("anomaly_risk") * pl.col("busy")).log().sort().sum().exp()).alias(
                "neighbour_risk"
            )
        )
        .select(pl.col("x").cast(pl.String).alias("account_id"), "neighbour_risk")
    )


def scored_accounts(
    accounts: pl.DataFrame,
    transactions: pl.DataFrame,
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
    seen = pl.concat(
        [
            accounts.select("account_id"),
            transactions.select(pl.col("src_account").unique().alias("account_id")),
            transactions.select(pl.col("dst_account").unique().alias("account_id")),
        ]
    ).unique()
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
    if anomaly is not None and neighbour_share > 0:
        # the accounts the detectors flagged (their signal passed the gate): the top of the tail
        flagged = out.filter(pl.col("families").list.contains("anomaly")).select(
            "account_id", "anomaly_risk"
        )
        out = out.join(
            one_off_neighbours(transactions, flagged, infrastructure_share),
            on="account_id",
            how="left",
        )
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


def cases(job: Job) -> dict[str, Any]:
    """Account risk from the signals, cases from the accounts they link, every account ranked."""
    config, run = job.config, job.run
    free_memory()
    with stage(run, "cases") as rec:
        settings = casework.load_settings(config.settings_path("scoring"))
        rec.params = settings.model_dump()
        signals = pl.read_parquet(run.signals)
        tx = pl.read_parquet(run.transactions, columns=TRANSACTION_COLUMNS)
        acc = _read_accounts(run.accounts)
        anomaly = pl.read_parquet(run.anomaly_scores) if run.anomaly_scores.exists() else None
        with rec.step("score"):
            links = casework.links(signals, tx)
            parties = casework.spread_parties(acc, settings.party_min_banks)
            risk = casework.account_risk(signals, links, settings, parties)
            links = casework.with_parties(links, parties)
        with rec.step("group"):
            built = casework.build(risk, signals, links, tx, settings, config.base_currency)
        scored = scored_accounts(
            acc,
            tx,
            risk,
            built.membership,
            anomaly,
            settings.uncorroborated_factor,
            built.linked,
            settings.neighbour_anomaly_share,
            settings.infrastructure_share,
        )
        gate = quality.run_gate(
            built.cases, "cases", run, max_failed_fraction=config.max_failed_fraction
        )
        write_parquet(scored, run.accounts_scored)
        write_parquet(gate.passed, run.cases)
        rec.counts = {
            "cases": gate.passed.height,
            "accounts_in_cases": built.membership.height,
            "accounts_linked": built.linked.height,
            "accounts_scored": scored.height,
            "accounts_with_signals": risk.height,
            "accounts_in_spread_parties": parties.height,
        }
        rec.warnings = built.warnings + list(gate.stats["warnings"])
    return rec.counts

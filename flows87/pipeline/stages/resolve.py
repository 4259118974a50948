"""Entity resolution stage: one party_id per person or entity across reports and banks.

Reads RUN/parties.parquet when the reader wrote one (goAML reports: a record per holder,
counterparty and signatory), else makes one party record per account from the accounts' own
holder columns. Writes RUN/resolution/ (model.json, clusters.parquet, links.parquet,
pairs_review.parquet, stats.json) and sets the accounts' `party_id` to the resolved party.

Why overwrite `party_id` rather than add a column: every party view that exists already reads
`party_id` (the graph's party nodes, the shared-party features, the case app's account page),
so they all see resolved parties without a change. The source's own id is kept in
`party_id_source`, and resolution never splits what the source joined (records sharing a
source party id are one party), so nothing the bank said is lost. An account none of whose
records resolved keeps its own id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.resolve.resolve import resolve_parties
from flows87.pipeline.resolve.settings import DEFAULT_SETTINGS, load_settings
from flows87.pipeline.runinfo import stage

SOURCE_COLUMN = "party_id_source"


def parties_path(job: Job) -> Path:
    return job.run.path / "parties.parquet"


def resolution_dir(job: Job) -> Path:
    return job.run.path / "resolution"


def holders(accounts: pl.DataFrame) -> pl.DataFrame:
    """One party record per account, from its holder columns (record_id = account_id)."""

    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in accounts.columns else pl.lit(None, dtype=dtype).alias(name)

    source = SOURCE_COLUMN if SOURCE_COLUMN in accounts.columns else "party_id"
    return accounts.select(
        pl.col("account_id").alias("record_id"),
        pl.when(col("kind", pl.String()) == "business")
        .then(pl.lit("entity"))
        .otherwise(pl.lit("person"))
        .alias("kind"),
        "account_id",
        col("bank_id", pl.String()),
        col("name", pl.String()),
        col("birth_date", pl.Date()),
        col("phone", pl.String()),
        col("email", pl.String()),
        col("address", pl.String()),
        col("country", pl.String()),
        col(source, pl.String()).alias("source_party_id"),
    )


def account_parties(clusters: pl.DataFrame) -> pl.DataFrame:
    """account_id -> party_id: the holder's party, the most frequent among its records, ties
    to the smallest id. The holder: the records the reader marked `holder`, else records that
    are not signatories, else the first signatory. A walk-in's pseudo-account (`txn_account`)
    counts as the account it stands for."""
    account = pl.col("account_id")
    if "txn_account" in clusters.columns:
        account = pl.coalesce("account_id", "txn_account")
    signatory = (
        pl.col("record_id").str.extract(r"#signatory-(\d+)$").cast(pl.Int64, strict=False) + 1
    ).fill_null(0)
    rank = signatory
    if "holder" in clusters.columns:
        rank = pl.when(pl.col("holder")).then(pl.lit(-1, dtype=pl.Int64)).otherwise(signatory)
    rec = clusters.with_columns(account.alias("_account"), rank.alias("_rank")).filter(
        pl.col("_account").is_not_null()
    )
    best = rec.filter(pl.col("_rank") == pl.col("_rank").min().over("_account"))
    counts = best.group_by("_account", "party_id").len()
    return (
        counts.sort(["_account", "len", "party_id"], descending=[False, True, False])
        .group_by("_account", maintain_order=True)
        .first()
        .select(pl.col("_account").alias("account_id"), pl.col("party_id").alias("_resolved"))
    )


def assign(accounts: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """The accounts with `party_id` resolved and the source's own id in `party_id_source`."""
    if SOURCE_COLUMN not in accounts.columns:
        accounts = accounts.with_columns(pl.col("party_id").alias(SOURCE_COLUMN))
    out = accounts.join(account_parties(clusters), on="account_id", how="left")
    out = out.with_columns(pl.coalesce("_resolved", SOURCE_COLUMN).alias("party_id"))
    return out.drop("_resolved")


def resolve(job: Job) -> dict[str, Any]:
    """Resolve the run's parties; write RUN/resolution/ and the accounts' resolved party_id."""
    run = job.run
    own = Path(job.config.rules_dir) / "settings" / "resolution.yaml"
    path = own if own.exists() else DEFAULT_SETTINGS
    with stage(run, "resolve", {"settings": str(path)}) as rec:
        settings = load_settings(path)
        from_reader = parties_path(job).exists()
        if settings.when == "never" or (settings.when == "reports" and not from_reader):
            rec.params["skipped"] = f"when: {settings.when}" + (
                "" if from_reader else " (the input has no party records of its own)"
            )
            rec.counts = {"records": 0}
            return rec.counts
        accounts = pl.read_parquet(run.accounts)
        parties = pl.read_parquet(parties_path(job)) if from_reader else holders(accounts)
        rec.params["records_from"] = "parties.parquet" if from_reader else "accounts"
        with rec.step("resolve"):
            result = resolve_parties(parties, settings)
        with rec.step("write"):
            result.write(resolution_dir(job))
            extra = [c for c in ("holder", "txn_account") if c in parties.columns]
            clusters = result.clusters.join(
                parties.select("record_id", *extra), on="record_id", how="left"
            )
            resolved = assign(accounts, clusters)
            write_parquet(resolved, run.accounts)
        rec.counts = {
            "records": parties.height,
            "parties": result.stats["parties"],
            "links": result.links.height,
            "review_pairs": result.review.height,
            "accounts": resolved.height,
            "accounts_merged": resolved.height - resolved["party_id"].n_unique(),
        }
        rec.warnings = [
            f"{kind}: {p}"
            for kind, model in result.models.items()
            for p in model.get("training_problems", [])
        ]
    return rec.counts

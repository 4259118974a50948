"""The resolved parties of a run's cases, shaped as the store's case_parties and
case_party_links rows.

Entity resolution (pipeline stage `resolve`) writes RUN/resolution/clusters.parquet (record ->
party) and links.parquet (the matched pairs, with their explanation in words), and sets each
account's `party_id` to its holder's party. Only the parties holding one of a case's accounts
are kept, with all their accounts (at every bank: the point of resolving them), the names their
records were written as, and the strongest links: an investigator reads why two accounts at two
banks are one person. A run without RUN/resolution/ has no parties (empty frames).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87.investigate.store.runfiles import read_table

MAX_NAMES = 20
"""Names listed per party (the most frequent spellings first)."""
MAX_ACCOUNTS = 100
"""Accounts listed per party (the case's own first)."""
MAX_LINKS = 25
"""Links stored per party and case, one per pair of accounts and evidence (with how many record
pairs it stands for): those joining two different accounts first, then the most repeated and
strongest. The count of all matched record pairs is kept (`n_links`)."""

PARTY_SCHEMA = pl.Schema(
    {
        "case_id": pl.String(),
        "party_id": pl.String(),
        "position": pl.Int64(),
        "kind": pl.String(),
        "n_records": pl.Int64(),
        "n_links": pl.Int64(),
        "names": pl.String(),
        "accounts": pl.String(),
    }
)
LINK_SCHEMA = pl.Schema(
    {
        "case_id": pl.String(),
        "party_id": pl.String(),
        "seq": pl.Int64(),
        "record_l": pl.String(),
        "record_r": pl.String(),
        "name_l": pl.String(),
        "name_r": pl.String(),
        "account_l": pl.String(),
        "account_r": pl.String(),
        "bank_l": pl.String(),
        "bank_r": pl.String(),
        "probability": pl.Float64(),
        "match_weight": pl.Float64(),
        "explanation": pl.String(),
        "n_pairs": pl.Int64(),
    }
)


def _json(col: str) -> pl.Expr:
    """A list column (of text or structs) as JSON text, in polars."""
    return (
        pl.struct(pl.col(col).alias("v"))
        .struct.json_encode()
        .str.slice(5)
        .str.strip_suffix("}")
        .alias(col)
    )


def _text(frame: pl.DataFrame, col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String) if col in frame.columns else pl.lit(None, pl.String())


def _records(run: Path, clusters: pl.DataFrame, needed: pl.DataFrame) -> pl.DataFrame:
    """record_id, party_id, kind, account, bank, name of the needed parties' records."""
    rec = clusters.join(needed, on="party_id", how="semi")
    parties = read_table(run / "parties.parquet", False)
    if parties is not None and "record_id" in parties.columns:
        keep = parties.select(
            "record_id",
            _text(parties, "name").alias("name"),
            _text(parties, "txn_account").alias("txn_account"),
        ).unique("record_id")
        rec = rec.join(keep, on="record_id", how="left")
    else:
        rec = rec.with_columns(
            pl.lit(None, pl.String()).alias("name"), pl.lit(None, pl.String()).alias("txn_account")
        )
    return rec.select(
        "record_id",
        "party_id",
        _text(rec, "kind").alias("kind"),
        pl.coalesce(_text(rec, "account_id"), "txn_account").alias("account"),
        _text(rec, "bank_id").alias("bank"),
        "name",
    )


def _links(run: Path, records: pl.DataFrame) -> pl.DataFrame:
    """The needed parties' links with each side's account, bank and name, best first."""
    links = read_table(run / "resolution" / "links.parquet", False)
    if (
        links is None
        or links.is_empty()
        or not {"record_id_l", "record_id_r"} <= set(links.columns)
    ):
        keep = {k: v for k, v in LINK_SCHEMA.items() if k not in ("case_id", "seq")}
        return pl.DataFrame(schema={**keep, "_across": pl.Boolean(), "_all": pl.UInt32()})
    side = records.select("record_id", "party_id", "account", "bank", "name")
    out = (
        links.select(
            pl.col("record_id_l").alias("record_l"),
            pl.col("record_id_r").alias("record_r"),
            _text(links, "match_probability").cast(pl.Float64).alias("probability"),
            _text(links, "match_weight").cast(pl.Float64).alias("match_weight"),
            _text(links, "explanation").alias("explanation"),
        )
        .join(side.rename(lambda c: f"{c}_l" if c != "record_id" else "record_l"), on="record_l")
        .join(
            side.drop("party_id").rename(lambda c: f"{c}_r" if c != "record_id" else "record_r"),
            on="record_r",
            how="left",
        )
        .rename({"party_id_l": "party_id"})
    )
    # one row per pair of accounts and evidence: a person named in forty reports of one bank
    # makes hundreds of identical pairs; the strongest stands for them, with their count
    pair = [
        pl.min_horizontal("account_l", "account_r").alias("_a"),
        pl.max_horizontal("account_l", "account_r").alias("_b"),
    ]
    across = (pl.col("account_l") != pl.col("account_r")).fill_null(False)
    return (
        out.with_columns(*pair, across.alias("_across"), pl.len().over("party_id").alias("_all"))
        .sort(["match_weight", "record_l", "record_r"], descending=[True, False, False])
        .group_by("party_id", "_a", "_b", "explanation", maintain_order=True)
        .agg(pl.all().first(), pl.len().alias("n_pairs"))
        .sort(
            ["party_id", "_across", "n_pairs", "match_weight", "record_l", "record_r"],
            descending=[False, True, True, True, False, False],
            nulls_last=True,
        )
        .drop("_a", "_b")
    )


def case_parties(
    run: Path, members: pl.DataFrame, accounts: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(case_parties rows, case_party_links rows) of the cases' members (case_id, account_id,
    position); both empty when the run has no resolution or no accounts table."""
    empty = pl.DataFrame(schema=PARTY_SCHEMA), pl.DataFrame(schema=LINK_SCHEMA)
    clusters = read_table(run / "resolution" / "clusters.parquet", False)
    if (
        clusters is None
        or accounts is None
        or not {"record_id", "party_id"} <= set(clusters.columns)
        or not {"account_id", "party_id"} <= set(accounts.columns)
    ):
        return empty
    holders = accounts.select(
        "account_id", pl.col("party_id").cast(pl.String), _text(accounts, "bank_id").alias("bank")
    ).unique("account_id")
    in_case = (
        members.select("case_id", "account_id", "position")
        .join(holders, on="account_id")
        .drop_nulls("party_id")
        .join(clusters.select("party_id").unique(), on="party_id", how="semi")
    )
    if in_case.is_empty():
        return empty
    pairs = in_case.group_by("case_id", "party_id").agg(pl.col("position").min())
    needed = pairs.select("party_id").unique()
    records = _records(run, clusters, needed)
    links = _links(run, records)
    names = (
        records.drop_nulls("name")
        .group_by("party_id", "name")
        .len()
        .sort(["party_id", "len", "name"], descending=[False, True, False])
        .group_by("party_id", maintain_order=True)
        .agg(pl.col("name").head(MAX_NAMES).alias("names"))
    )
    facts = records.group_by("party_id").agg(
        pl.col("kind").drop_nulls().mode().sort().first().alias("kind"),
        pl.len().alias("n_records"),
    )
    n_links = links.group_by("party_id").agg(pl.col("_all").first().alias("n_links"))
    held = (
        pairs.select("case_id", "party_id")
        .join(holders.join(needed, on="party_id", how="semi"), on="party_id")
        .join(
            members.select("case_id", "account_id", pl.lit(True).alias("in_case")),
            on=["case_id", "account_id"],
            how="left",
        )
        .with_columns(pl.col("in_case").fill_null(False))
        .sort(
            ["case_id", "party_id", "in_case", "bank", "account_id"],
            descending=[False, False, True, False, False],
            nulls_last=True,
        )
        .group_by("case_id", "party_id", maintain_order=True)
        .agg(
            pl.struct("account_id", pl.col("bank").alias("bank_id"), "in_case")
            .head(MAX_ACCOUNTS)
            .alias("accounts")
        )
    )
    parties = (
        pairs.join(held, on=["case_id", "party_id"], how="left")
        .join(facts, on="party_id", how="left")
        .join(names, on="party_id", how="left")
        .join(n_links, on="party_id", how="left")
        .with_columns(
            pl.col("n_records").fill_null(0).cast(pl.Int64),
            pl.col("n_links").fill_null(0).cast(pl.Int64),
            pl.col("names").fill_null([]),
        )
        .sort("case_id", "position", "party_id")
        .with_columns(pl.int_range(pl.len()).over("case_id").cast(pl.Int64).alias("position"))
        .with_columns(_json("names"), _json("accounts"))
        .select(list(PARTY_SCHEMA.names()))
        .cast(PARTY_SCHEMA)
    )
    best = links.filter(pl.int_range(pl.len()).over("party_id") < MAX_LINKS)
    link_rows = (
        pairs.select("case_id", "party_id")
        .join(best, on="party_id")
        .sort(
            ["case_id", "party_id", "_across", "n_pairs", "match_weight", "record_l", "record_r"],
            descending=[False, False, True, True, True, False, False],
            nulls_last=True,
        )
        .with_columns(
            pl.int_range(pl.len()).over("case_id", "party_id").cast(pl.Int64).alias("seq")
        )
        .select(list(LINK_SCHEMA.names()))
        .cast(LINK_SCHEMA)
    )
    return parties, link_rows

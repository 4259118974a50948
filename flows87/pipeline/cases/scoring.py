"""From signals to one risk score per account (weights in `rules/settings/scoring.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from flows87.pipeline.cases.case_score import CaseScoreSettings
from flows87.pipeline.features import RULES_DIR
from flows87.pipeline.rules.ceiling import CeilingSettings
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = RULES_DIR / "settings" / "scoring.yaml"


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source_weights: dict[str, float] = Field(
        default_factory=lambda: {"rule": 1.0, "graph": 1.0, "detector": 0.5}
    )
    family_weights: dict[str, float] = Field(
        default_factory=lambda: {"behaviour": 1.0, "network": 1.0, "identity": 0.6, "anomaly": 0.5}
    )
    min_families: int = Field(2, ge=1, le=4)
    strong_signal: float = Field(1.0, gt=0, le=1)
    min_risk: float = Field(0.5, ge=0)
    neighbour_share: float = Field(0.25, ge=0, le=1)
    max_case_accounts: int = Field(40, ge=2)
    max_split_accounts: int = Field(20_000, ge=2)
    uncorroborated_factor: float = Field(0.3, ge=0, le=1)
    neighbour_anomaly_share: float = Field(0.5, ge=0, le=1)
    infrastructure_share: float = Field(0.01, gt=0, le=1)
    max_cases: int = Field(0, ge=0)
    party_min_banks: int = Field(2, ge=0)
    ceiling: CeilingSettings = Field(default_factory=CeilingSettings)
    case_score: CaseScoreSettings = Field(default_factory=CaseScoreSettings)


def load_settings(path: str | Path | None = None) -> ScoringSettings:
    return load_yaml_model(path or DEFAULT_SETTINGS, ScoringSettings, "scoring settings")


@dataclass(frozen=True)
class Links:
    """What ties signalled accounts into one case, in two linear tables.

    `members` (instance, account_id): a graph pattern instance is one node joined to each of its
    accounts (a hyperedge), never all pairs of them: a fan-in with 20,000 senders is 20,000
    rows, not 200 million pairs. `transfers` (a, b): undirected pairs of flagged accounts that
    moved money between them and whose signals point to a common typology (a victim and the
    controller it pays; not two unrelated customers who happen to be flagged and pay each
    other): at most one row per pair of accounts that transacted.
    """

    members: pl.DataFrame
    transfers: pl.DataFrame


def links(signals: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame) -> Links:
    """The links of `signals` (O(S + E) for S signals and E transactions; the transactions'
    accounts may be strings or categorical, and are streamed: only pairs of flagged accounts
    are kept)."""
    typed = (
        signals.filter(pl.col("source") != "detector")
        .select("account_id", pl.col("typologies").alias("typology"))
        .explode("typology")
        .drop_nulls()
        .unique()
    )
    members = (
        signals.filter(pl.col("source") == "graph")
        .select(
            pl.col("evidence").str.json_path_match("$.instance").alias("instance"), "account_id"
        )
        .drop_nulls()
        .unique()
        .sort("instance", "account_id")
    )
    flagged = typed.select("account_id").unique()
    moved = (
        transactions.lazy()
        .select(
            pl.col("src_account").cast(pl.String).alias("a"),
            pl.col("dst_account").cast(pl.String).alias("b"),
        )
        .join(flagged.lazy(), left_on="a", right_on="account_id", how="semi")
        .join(flagged.lazy(), left_on="b", right_on="account_id", how="semi")
        .filter(pl.col("a") != pl.col("b"))
        .select(pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b"))
        .unique()
        .collect(engine="streaming")
    )
    common = (
        moved.join(typed.rename({"account_id": "a"}), on="a")
        .join(typed.rename({"account_id": "b"}), on=["b", "typology"])
        .select("a", "b")
        .unique()
        .sort("a", "b")
    )
    return Links(members, common)


def neighbour_risk(links: Links, base: pl.DataFrame) -> pl.DataFrame:
    """account_id -> the largest base risk among the accounts linked to it (O(S + E)).

    Through an instance, an account's riskiest fellow member is the instance's riskiest member,
    or its second riskiest when the account is the riskiest itself: two values per instance
    instead of every pair of members."""
    risk = base.select("account_id", "base_risk")
    ranked = (
        links.members.join(risk, on="account_id", how="left")
        .with_columns(pl.col("base_risk").fill_null(0.0))
        .sort(["instance", "base_risk", "account_id"], descending=[False, True, False])
        .with_columns(pl.int_range(pl.len()).over("instance").alias("_r"))
    )
    first = ranked.filter(pl.col("_r") == 0).select(
        "instance", pl.col("account_id").alias("_top"), pl.col("base_risk").alias("_r1")
    )
    second = ranked.filter(pl.col("_r") == 1).select("instance", pl.col("base_risk").alias("_r2"))
    via_instance = (
        links.members.join(first, on="instance")
        .join(second, on="instance", how="left")
        .select(
            "account_id",
            pl.when(pl.col("account_id") == pl.col("_top"))
            .then(pl.col("_r2"))
            .otherwise(pl.col("_r1"))
            .alias("neighbour"),
        )
        .drop_nulls()
    )
    t = links.transfers
    via_transfer = pl.concat(
        [t.select("a", "b"), t.select(pl.col("b").alias("a"), pl.col("a").alias("b"))]
    ).join(risk.rename({"account_id": "b", "base_risk": "neighbour"}), on="b")
    return (
        pl.concat([via_instance, via_transfer.select(pl.col("a").alias("account_id"), "neighbour")])
        .group_by("account_id")
        .agg(pl.col("neighbour").max())
    )


def spread_parties(accounts: pl.DataFrame, min_banks: int) -> pl.DataFrame:
    """account_id, party: the accounts of every party that holds accounts at `min_banks` banks
    or more (0: none). Only entity resolution across reports (or a bank's data naming its
    customers at other banks) makes such parties; one bank's data has none, and its ranking is
    the account view's. O(A) for A accounts."""
    empty = pl.DataFrame(schema={"account_id": pl.String, "party": pl.String})
    if min_banks < 1 or not {"account_id", "party_id", "bank_id"} <= set(accounts.columns):
        return empty
    return (
        accounts.filter(pl.col("party_id").is_not_null())
        .filter(pl.col("bank_id").n_unique().over("party_id") >= min_banks)
        .select("account_id", pl.col("party_id").alias("party"))
        .unique("account_id")
        .sort("party", "account_id")
    )


def with_parties(links: Links, parties: pl.DataFrame) -> Links:
    """`links` with each spread party as one more instance joining its accounts: a person's
    accounts at several banks land in one case (after account_risk, which must not count the
    party as its own neighbour)."""
    if parties.is_empty():
        return links
    party_members = parties.select(
        (pl.lit("party:") + pl.col("party")).alias("instance"), "account_id"
    )
    members = pl.concat([links.members, party_members]).unique().sort("instance", "account_id")
    return Links(members, links.transfers)


def account_risk(
    signals: pl.DataFrame,
    links: Links,
    settings: ScoringSettings,
    parties: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """account_id, risk_score, evidence, base_risk, families, n_families, n_signals,
    max_signal, eligible.

    Every score is a noisy-OR, so risk stays in [0, 1] and reads like a probability: signals
    combine within their family, weighted families combine into the account's base risk, and a
    share of the riskiest linked neighbour's base risk combines in last. A critical signal alone
    therefore ranks with well-corroborated accounts, as docs/red-flags.md explains.
    `evidence` is the same risk as -ln(1 - risk_score), summed from the logs: it keeps growing
    where risk_score has reached 1.0 in floating point (case_score.py adds it up per case).

    The party view (`parties`, from spread_parties): the accounts of one party at several banks
    are one subject. Their signals combine as one account's would, and every account of the
    party (a quiet one too) takes the party's risk, families and signal count: structuring at
    one bank and a controller's inflows at another are two families of one person, as the FIU
    that resolved the person sees them, where each bank saw one weak flag.
    """
    src_w = pl.col("source").replace_strict(
        settings.source_weights, default=1.0, return_dtype=pl.Float64
    )
    fam_w = pl.col("family").replace_strict(
        settings.family_weights, default=1.0, return_dtype=pl.Float64
    )
    weighted = signals.with_columns((pl.col("score") * src_w).clip(0.0, 0.999).alias("w"))
    party_view = parties is not None and not parties.is_empty()
    if party_view:
        assert parties is not None
        # the subject: a spread party's id (prefixed: never an account id), else the account
        subject_of = parties.select(
            "account_id", (pl.lit("\x00party:") + pl.col("party")).alias("subject")
        )
        weighted = weighted.join(subject_of, on="account_id", how="left").with_columns(
            pl.coalesce("subject", "account_id").alias("account_id")
        )
    per_family = (
        weighted.group_by("account_id", "family")
        .agg(
            # sorted before summing: a group's rows reach the sum in an order that varies from
            # run to run, and a float sum in another order can differ in its last bit
            (1.0 - (1.0 - pl.col("w")).log().sort().sum().exp()).alias("family_score"),
            pl.len().alias("n"),
            pl.col("score").max().alias("max_score"),
        )
        .with_columns((pl.col("family_score") * fam_w).clip(0.0, 0.999).alias("weighted"))
    )
    base = per_family.group_by("account_id").agg(
        (1.0 - (1.0 - pl.col("weighted")).log().sort().sum().exp()).alias("base_risk"),
        (-(1.0 - pl.col("weighted")).log().sort().sum()).alias("base_evidence"),
        pl.col("family").sort().alias("families"),
        pl.col("n").sum().alias("n_signals"),
        pl.col("max_score").max().alias("max_signal"),
    )
    if party_view:
        # each party's row to every account of the party
        base = pl.concat(
            [
                base.filter(~pl.col("account_id").str.starts_with("\x00party:")),
                base.rename({"account_id": "subject"})
                .join(subject_of, on="subject")
                .select(base.columns),
            ]
        )
    bonus = neighbour_risk(links, base).select(
        "account_id", (pl.col("neighbour") * settings.neighbour_share).alias("bonus")
    )
    out = (
        base.join(bonus, on="account_id", how="left")
        .with_columns(
            (1.0 - (1.0 - pl.col("base_risk")) * (1.0 - pl.col("bonus").fill_null(0.0))).alias(
                "risk_score"
            ),
            (pl.col("base_evidence") - (1.0 - pl.col("bonus").fill_null(0.0)).log()).alias(
                "evidence"
            ),
            pl.col("families").list.set_difference(["anomaly"]).list.len().alias("n_families"),
        )
        .with_columns(
            (
                (
                    (pl.col("n_families") >= settings.min_families)
                    | (pl.col("max_signal") >= settings.strong_signal)
                )
                & (pl.col("risk_score") >= settings.min_risk)
            ).alias("eligible")
        )
        .drop("bonus", "base_evidence")
        .sort(["risk_score", "evidence", "account_id"], descending=[True, True, False])
    )
    return out

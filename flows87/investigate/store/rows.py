"""A run's tables shaped as the case store's rows: cases, typologies, signals, accounts,
transactions and resolved parties (partyrows), each with its case_id.

Columns an older or partial run lacks are added empty, so the store's schema does not depend
on which version of the pipeline wrote the run. All in polars: no per-row Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from flows87.investigate.store.learnedrows import LEARNED_CASE_COLUMNS, learned_cases
from flows87.investigate.store.partyrows import LINK_SCHEMA, PARTY_SCHEMA, case_parties
from flows87.investigate.store.runfiles import RunFiles, case_transactions, read_run
from flows87.rundir import RunDir

CASE_COLUMNS = (
    "risk_score",
    "anchor_account",
    "central_account",
    "n_accounts",
    "n_signals",
    "typologies",
    "families",
    "signal_ids",
    "first_ts",
    "last_ts",
    "total_amount",
    "summary",
)
TXN_COLUMNS = (
    "ts",
    "src_account",
    "dst_account",
    "amount",
    "currency",
    "amount_base",
    "channel",
    "mcc",
    "src_country",
    "dst_country",
    "location_id",
    "device_id",
    "memo",
)
# written only when cases.parquet has them: a run without them keeps the fingerprints it had
OPTIONAL_CASE_COLUMNS = ("risk_reason", *LEARNED_CASE_COLUMNS)
ACCOUNT_SCORE_COLUMNS = ("risk_score", "signal_risk", "anomaly_score", "n_signals", "families")
ACCOUNT_COLUMNS = ("name", "kind", "bank_id", "party_id", "country", "opened_at")
ACCOUNT_DETAILS = (
    "birth_date",
    "address",
    "phone",
    "email",
    "device_id",
    "occupation",
    "business_type",
)
SIGNAL_COLUMNS = (
    "case_id",
    "seq",
    "source",
    "signal_id",
    "account_id",
    "score",
    "family",
    "typologies",
    "txn_ids",
    "window_start",
    "window_end",
    "evidence",
    "summary",
)
UTC = pl.Datetime("us", "UTC")
NO_STRINGS = pl.lit([], dtype=pl.List(pl.String()))


@dataclass
class StoreRows:
    """The rows of one run for each evidence table, and what the loader should tell the user."""

    cases: pl.DataFrame
    typologies: pl.DataFrame
    signals: pl.DataFrame
    accounts: pl.DataFrame
    transactions: pl.DataFrame
    warnings: list[str] = field(default_factory=list)
    parties: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PARTY_SCHEMA))
    party_links: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LINK_SCHEMA))
    model: dict[str, Any] | None = None  # the learned model's description, when one scored

    def evidence(self) -> Iterator[tuple[str, pl.DataFrame]]:
        """(name, rows) of the tables that hang off a case, in the order they are written."""
        yield "typologies", self.typologies
        yield "signals", self.signals
        yield "accounts", self.accounts
        yield "transactions", self.transactions
        yield "parties", self.parties
        yield "party_links", self.party_links


def json_list(col: str) -> pl.Expr:
    """A list[str] column as JSON text, in polars (no per-row Python)."""
    return (
        pl.struct(pl.col(col).fill_null([]).alias("v"))
        .struct.json_encode()
        .str.slice(5)
        .str.strip_suffix("}")
        .alias(col)
    )


def with_optional(frame: pl.DataFrame, columns: Iterable[str], dtype: pl.DataType) -> pl.DataFrame:
    """`frame` with each of `columns` it lacks added as nulls of `dtype`."""
    add = [pl.lit(None, dtype=dtype).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(add) if add else frame


def _with_lists(frame: pl.DataFrame, columns: Iterable[str]) -> pl.DataFrame:
    for c in columns:
        if c not in frame.columns:
            frame = frame.with_columns(NO_STRINGS.alias(c))
    return frame


def _numbered(name: str) -> pl.Expr:
    """0, 1, 2, ... within each case, in the frame's order."""
    return pl.int_range(pl.len()).over("case_id").cast(pl.Int64).alias(name)


def _cases(cases: pl.DataFrame) -> pl.DataFrame:
    """cases.parquet with every column the store keeps (once per case_id, the first row)."""
    cases = with_optional(cases, ("rank", "n_signals", "n_accounts"), pl.Int64())
    cases = with_optional(cases, ("anchor_account", "central_account", "summary"), pl.String())
    cases = with_optional(cases, ("total_amount",), pl.Float64())
    cases = with_optional(cases, ("first_ts", "last_ts"), UTC)
    cases = _with_lists(cases, ("typologies", "families", "signal_ids", "txn_ids"))
    return cases.with_columns(
        pl.col("anchor_account").fill_null(pl.col("accounts").list.first()),
        pl.col("n_accounts").fill_null(pl.col("accounts").list.len()).cast(pl.Int64),
        pl.col("total_amount").fill_null(0.0),
        pl.col("summary").fill_null(""),
    ).unique("case_id", keep="first", maintain_order=True)


def _members(cases: pl.DataFrame) -> pl.DataFrame:
    """case_id, account_id, position and role (anchor, central, member) of each case's accounts."""
    return (
        cases.select("case_id", "accounts", "anchor_account", "central_account")
        .explode("accounts")
        .rename({"accounts": "account_id"})
        .drop_nulls("account_id")
        .with_columns(_numbered("position"))
        .with_columns(
            pl.when(pl.col("account_id") == pl.col("anchor_account"))
            .then(pl.lit("anchor"))
            .when(pl.col("account_id") == pl.col("central_account"))
            .then(pl.lit("central"))
            .otherwise(pl.lit("member"))
            .alias("role")
        )
        .drop("anchor_account", "central_account")
        .unique(["case_id", "account_id"], keep="first", maintain_order=True)
    )


def _accounts(members: pl.DataFrame, files: RunFiles, warnings: list[str]) -> pl.DataFrame:
    """The members with their scores and party attributes (the details as one JSON object)."""
    acc = members
    if files.scored is not None:
        keep = [c for c in ("account_id", *ACCOUNT_SCORE_COLUMNS) if c in files.scored.columns]
        acc = acc.join(files.scored.select(keep).unique("account_id"), on="account_id", how="left")
    acc = with_optional(acc, ("risk_score", "signal_risk", "anomaly_score"), pl.Float64())
    acc = with_optional(acc, ("n_signals",), pl.Int64())
    acc = _with_lists(acc, ("families",))
    if files.accounts is not None:
        available = files.accounts.columns
        keep = [c for c in ("account_id", *ACCOUNT_COLUMNS, *ACCOUNT_DETAILS) if c in available]
        table = files.accounts.select(keep).unique("account_id")
        acc = acc.join(table, on="account_id", how="left")
    else:
        warnings.append("accounts.parquet not in the run: account names and details left empty")
    acc = with_optional(acc, ("name", "kind", "bank_id", "party_id", "country"), pl.String())
    acc = with_optional(acc, ("opened_at",), UTC)
    details = [c for c in ACCOUNT_DETAILS if c in acc.columns]
    return acc.with_columns(
        (
            pl.struct([pl.col(c).cast(pl.String) for c in details]).struct.json_encode()
            if details
            else pl.lit("{}")
        ).alias("details"),
        pl.col("opened_at").cast(UTC),
        json_list("families"),
    ).select(
        "case_id",
        "account_id",
        "position",
        "role",
        *ACCOUNT_SCORE_COLUMNS,
        *ACCOUNT_COLUMNS,
        "details",
    )


def _signals(signals: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The signals of each case's accounts, numbered by score (highest first) within the case."""
    sig = signals.join(members.select("case_id", "account_id"), on="account_id", how="inner")
    sig = with_optional(sig, ("family", "evidence", "summary"), pl.String())
    sig = with_optional(sig, ("window_start", "window_end"), UTC)
    sig = _with_lists(sig, ("typologies", "txn_ids"))
    return (
        sig.with_columns(
            pl.col("family").fill_null("unknown"),
            pl.col("evidence").fill_null("{}"),
            pl.col("summary").fill_null(""),
            pl.col("window_start").cast(UTC),
            pl.col("window_end").cast(UTC),
            json_list("typologies"),
            json_list("txn_ids"),
        )
        .sort(
            ["case_id", "score", "source", "signal_id", "account_id", "evidence"],
            descending=[False, True, False, False, False, False],
        )
        .with_columns(_numbered("seq"))
        .select(*SIGNAL_COLUMNS)
    )


def _transactions(cases: pl.DataFrame, run: RunDir, warnings: list[str]) -> pl.DataFrame:
    """Each case's transactions (its txn_ids), with their columns when the run has the file."""
    ids = (
        cases.select("case_id", "txn_ids")
        .explode("txn_ids")
        .rename({"txn_ids": "txn_id"})
        .drop_nulls("txn_id")
        .unique(["case_id", "txn_id"])
    )
    if run.transactions.exists():
        tx = ids.join(case_transactions(run, ids, TXN_COLUMNS), on="txn_id", how="left")
    else:
        tx = ids
        warnings.append("transactions.parquet not in the run: case transactions stored by id only")
    tx = with_optional(tx, ("amount", "amount_base"), pl.Float64())
    tx = with_optional(tx, ("ts",), UTC)
    text = [c for c in TXN_COLUMNS if c not in ("ts", "amount", "amount_base")]
    tx = with_optional(tx, text, pl.String())
    return tx.with_columns(
        pl.col("ts").cast(UTC),
        *[pl.col(c).cast(pl.String) for c in ("mcc", "memo", "location_id", "device_id")],
    ).select("case_id", "txn_id", *TXN_COLUMNS)


def _typologies(cases: pl.DataFrame) -> pl.DataFrame:
    return (
        cases.select("case_id", "typologies")
        .explode("typologies")
        .rename({"typologies": "typology"})
        .drop_nulls("typology")
        .unique(["case_id", "typology"], keep="first", maintain_order=True)
        .with_columns(_numbered("position"))
    )


def _case_rows(cases: pl.DataFrame, transactions: pl.DataFrame) -> pl.DataFrame:
    """One row per case as the cases table keeps it (lists as JSON, transactions counted)."""
    n_txn = transactions.group_by("case_id").len("n_transactions")
    optional = [c for c in OPTIONAL_CASE_COLUMNS if c in cases.columns]
    return (
        cases.join(n_txn, on="case_id", how="left")
        .with_columns(
            pl.col("n_transactions").fill_null(0).cast(pl.Int64),
            pl.col("typologies").list.first().alias("primary_typology"),
            pl.col("n_signals").fill_null(0).cast(pl.Int64),
            pl.col("first_ts").cast(UTC),
            pl.col("last_ts").cast(UTC),
            json_list("typologies"),
            json_list("families"),
            json_list("signal_ids"),
            *([pl.col("risk_reason").cast(pl.String)] if "risk_reason" in optional else []),
        )
        .select("case_id", "rank", *CASE_COLUMNS, "primary_typology", "n_transactions", *optional)
    )


def prepare_run(run_dir: str | Path) -> StoreRows:
    """The run's tables shaped like the store's. Raises InputError naming a missing file or
    column."""
    files = read_run(run_dir)
    warnings: list[str] = []
    cases = learned_cases(_cases(files.cases), files.model)
    members = _members(cases)
    accounts = _accounts(members, files, warnings)
    signals = _signals(files.signals, members)
    transactions = _transactions(cases, files.run, warnings)
    parties, party_links = case_parties(files.run.path, members, files.accounts)
    return StoreRows(
        cases=_case_rows(cases, transactions),
        typologies=_typologies(cases),
        signals=signals,
        accounts=accounts,
        transactions=transactions,
        warnings=warnings,
        parties=parties,
        party_links=party_links,
        model=files.model,
    )

"""The canonical tables every stage reads and writes: one place that says what each column is.

Every reader maps its source format onto these tables; every later stage may rely on them.
Required columns are always present (and non-null where `nullable=False`); optional columns may
be absent from a source, in which case `conform` adds them as nulls so code downstream can test
`column.is_not_null()` instead of checking for the column. Label columns exist only when the
source is labelled (synthetic data, public benchmarks); they must never feed detection.

Amounts are Float64: the public sources (AMLworld, PaySim, SAML-D) publish amounts as decimal
or scientific-notation text with up to 8 fractional digits across currencies whose minor units
differ (JPY 0, USD 2, BTC 8), so neither integer cents nor one fixed decimal scale fits them
all; a float64 keeps every such value to 15 significant digits, which is the precision of the
sources themselves. Sums for evidence are rounded to cents when shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

UTC_TS = pl.Datetime("us", "UTC")

CHANNELS: tuple[str, ...] = (
    "wire",
    "ach",
    "card",
    "cash_deposit",
    "cash_withdrawal",
    "p2p",
    "cheque",
    "mobile_money",
    "crypto",
    "other",
)
"""The payment channels of the canonical model (docs/run-directory.md)."""

ACCOUNT_KINDS: tuple[str, ...] = ("individual", "business", "unknown")
"""`unknown` is for sources that do not say (AMLworld, PaySim, SAML-D)."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    description: str
    required: bool = False
    nullable: bool = True
    label: bool = False
    filled: bool = False
    """Lineage a reader fills only where it is needed (`source_file`): never read from a
    source, present only when filled (`conform` keeps it but does not add it), so an input
    that needs none publishes the same tables as before it existed."""


TRANSACTION_COLUMNS: tuple[Column, ...] = (
    Column("txn_id", pl.String(), "unique id of the transaction within the run", True, False),
    Column("ts", UTC_TS, "when the transaction was booked, UTC", True, False),
    Column("src_account", pl.String(), "paying account (account_id)", True, False),
    Column("dst_account", pl.String(), "receiving account (account_id)", True, False),
    Column("amount", pl.Float64(), "amount in `currency`, > 0", True, False),
    Column("currency", pl.String(), "ISO 4217 code of `amount` (XBT for bitcoin)", True, False),
    Column(
        "amount_base",
        pl.Float64(),
        "amount in the run's base currency (USD unless configured); what features use",
        True,
        False,
    ),
    Column("channel", pl.String(), f"one of {', '.join(CHANNELS)}", True, False),
    Column("mcc", pl.String(), "merchant category code, 4 digits as text (card payments)"),
    Column("src_country", pl.String(), "ISO 3166 alpha-2 country of the paying account's bank"),
    Column("dst_country", pl.String(), "ISO 3166 alpha-2 country of the receiving account's bank"),
    Column("location_id", pl.String(), "branch, ATM or terminal where it happened"),
    Column("device_id", pl.String(), "device that initiated it (online/mobile)"),
    Column("memo", pl.String(), "free text reference"),
    Column("source_row", pl.Int64(), "1-based data row in the source file (for lineage)"),
    Column(  # categorical: a path per row took 200 MB of a 5M-row table's 700 MB as text
        "source_file",
        pl.Categorical(),
        "the file the row came from, only when the transactions came in several files (each "
        "numbers its rows from 1): with `source_row`, where the row is (lineage)",
        filled=True,
    ),
    Column(
        "is_suspicious", pl.Boolean(), "label: part of a laundering/trafficking scheme", label=True
    ),
    Column(
        "typology",
        pl.String(),
        "label: the scheme's typology, null when not suspicious",
        label=True,
    ),
    Column("scheme_id", pl.String(), "label: id of the scheme instance (alert id)", label=True),
)

ACCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", pl.String(), "unique id of the account", True, False),
    Column("party_id", pl.String(), "the customer (person or company) holding it", True, True),
    Column(
        "bank_id", pl.String(), "bank holding the account, as text (codes keep zeros)", True, True
    ),
    Column("kind", pl.String(), f"one of {', '.join(ACCOUNT_KINDS)}", True, False),
    Column("opened_at", UTC_TS, "when the account was opened, UTC", True, True),
    Column("country", pl.String(), "ISO 3166 alpha-2 country of the account", True, True),
    Column("name", pl.String(), "holder's name"),
    Column("birth_date", pl.Date(), "holder's date of birth (individuals)"),
    Column("address", pl.String(), "holder's address (normalised text)"),
    Column("phone", pl.String(), "holder's phone number"),
    Column("email", pl.String(), "holder's e-mail address"),
    Column("device_id", pl.String(), "device most used to log in"),
    Column("occupation", pl.String(), "individual's occupation"),
    Column("business_type", pl.String(), "business's sector (e.g. MCC or NAICS text)"),
    Column("id_number", pl.String(), "holder's passport, identity or registration number"),
    Column("id_type", pl.String(), "what `id_number` is (passport, national_id, tax_number...)"),
    Column(
        "nationality",
        pl.String(),
        "holder's nationality (ISO 3166 alpha-2; entities: country of incorporation)",
    ),  # fmt: skip
    Column("holder_kind", pl.String(), "person or entity, when the source says (goAML)"),
    Column("account_number", pl.String(), "the account's number as its bank writes it"),
    Column("iban", pl.String(), "the account's IBAN"),
    Column("source_row", pl.Int64(), "1-based data row in the source file (for lineage)"),
    Column("is_suspicious", pl.Boolean(), "label: the account takes part in a scheme", label=True),
    Column(
        "typology",
        pl.String(),
        "label: the scheme's typology, null when not suspicious",
        label=True,
    ),
    Column("scheme_id", pl.String(), "label: id of the scheme instance", label=True),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "transactions": TRANSACTION_COLUMNS,
    "accounts": ACCOUNT_COLUMNS,
}


def columns(table: str) -> tuple[Column, ...]:
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted(TABLES)}") from None


def schema(
    table: str, *, optional: bool = True, labels: bool = True, filled: bool = False
) -> pl.Schema:
    """The polars schema of a canonical table, with or without optional and label columns;
    lineage filled only where needed (`Column.filled`) with `filled`."""
    return pl.Schema(
        {
            c.name: c.dtype
            for c in columns(table)
            if (c.required or (optional and not c.label) or (labels and c.label))
            and (filled or not c.filled)
        }
    )


def required_columns(table: str) -> list[str]:
    return [c.name for c in columns(table) if c.required]


def label_columns(table: str) -> list[str]:
    return [c.name for c in columns(table) if c.label]


def conform(frame: pl.LazyFrame | pl.DataFrame, table: str) -> pl.LazyFrame:
    """Cast to the canonical types, add absent optional columns as nulls, order the columns.

    Missing *required* columns are a programming error in a reader, so they raise KeyError.
    Columns outside the canonical table are dropped. Label columns appear only when the source
    has at least one of them (then all of them, absent ones as nulls). Lineage filled only
    where needed (`Column.filled`) is kept when present, never added.
    """
    lf = frame.lazy()
    present = set(lf.collect_schema().names())
    missing = [c for c in required_columns(table) if c not in present]
    if missing:
        raise KeyError(f"{table}: required columns missing: {missing}")
    labelled = any(c.label and c.name in present for c in columns(table))
    exprs = []
    for c in columns(table):
        if c.name in present:
            exprs.append(pl.col(c.name).cast(c.dtype))
        elif (labelled or not c.label) and not c.filled:
            exprs.append(pl.lit(None, dtype=c.dtype).alias(c.name))
    return lf.select(exprs)


def has_labels(frame: pl.LazyFrame | pl.DataFrame) -> bool:
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    return "is_suspicious" in names


def describe(tables: Iterable[str] = ("transactions", "accounts")) -> str:
    """Markdown documentation of the canonical tables (used by `flows87 schema`)."""
    out = []
    for t in tables:
        out.append(f"## {t}\n\n| column | type | required | meaning |\n|---|---|---|---|")
        for c in columns(t):
            req = "label" if c.label else ("yes" if c.required else "optional")
            if c.required and c.nullable:
                req = "yes (may be null)"
            out.append(f"| `{c.name}` | {c.dtype} | {req} | {c.description} |")
        out.append("")
    return "\n".join(out)


def join_ends(
    transactions: FrameT,
    by_account: FrameT,
    names: dict[str, tuple[str, str]],
    key: str = "account_id",
    **join: Any,
) -> FrameT:
    """`transactions` with columns of `by_account` (one row per `key`) for both of its ends:
    `names` maps each column to its (payer, payee) name, e.g. {"bank_id": ("src_bank",
    "dst_bank")}; `join` goes to polars' join (default a left join)."""
    join.setdefault("how", "left")
    for end, side in (("src_account", 0), ("dst_account", 1)):
        table = by_account.select(
            pl.col(key).alias(end), *(pl.col(c).alias(n[side]) for c, n in names.items())
        )
        transactions = transactions.join(table, on=end, **join)
    return transactions

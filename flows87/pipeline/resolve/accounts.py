"""Records that hold the same account are one party, however each report spells the holder.

A bank writes its own client in full, but the other side of a transfer only as the payer typed
it: a name and an account number. Such a name-only record shares no identifier with the
client's record, and its name alone is never enough for Splink (namesakes are common), yet the
account says who it is: an account has one holder. So the holder records of one account
(`holder` from the reader: the account's entity, else its primary or first signatory) are
linked outright, as a chain per account (linear, not a clique). A company account's
signatories and its directors are other persons and are left to the model, and so are walk-ins'
pseudo-accounts (`txn_account`): a pseudo-account by name would join namesakes, and one by
identity number adds nothing the identity number comparison does not already see.
"""

from __future__ import annotations

import polars as pl

SAME_ACCOUNT = "holds the same account"
"""The start of a same-account link's explanation."""


def holder_flags(parties: pl.DataFrame) -> pl.Expr:
    """Whether each record is its account's holder.

    The reader's `holder` column when present; else from the record ids of the contract: a
    side's or an activity party's own record (`#from`, `#to`, `#activity#N`) holds the account,
    and a signatory holds it only where no such record names the account (a person's account);
    directors never."""
    if "holder" in parties.columns:
        return pl.col("holder").fill_null(False) & pl.col("account_id").is_not_null()
    rid = pl.col("record_id")
    signatory = rid.str.contains(r"#signatory-\d+$")
    director = rid.str.contains(r"-director-\d+$|#director(-\d+)?$")
    # the transaction (or activity party) a record belongs to: its id without the last part
    scope = rid.str.replace(r"#(signatory-\d+|from|to)$", "")
    own = ~signatory & ~director & pl.col("account_id").is_not_null()
    owned = own.any().over(scope, "account_id")
    number = rid.str.extract(r"#signatory-(\d+)$").cast(pl.Int64, strict=False)
    first = (number == number.min().over(scope, "account_id")).fill_null(False)
    has_account = pl.col("account_id").is_not_null()
    return (own | (signatory & ~owned & first)) & has_account


def account_links(parties: pl.DataFrame) -> pl.DataFrame:
    """(record_id_l, record_id_r, kind, account_id): each account's holder records of one kind
    chained in record_id order, so that they are one component."""
    held = (
        parties.select("record_id", "kind", "account_id", holder_flags(parties).alias("_holder"))
        .filter(pl.col("_holder"))
        .sort("account_id", "kind", "record_id")
    )
    chained = held.with_columns(
        pl.col("record_id").shift(1).over("account_id", "kind").alias("record_id_l")
    ).filter(pl.col("record_id_l").is_not_null())
    return chained.select(
        "record_id_l", pl.col("record_id").alias("record_id_r"), "kind", "account_id"
    )

"""What an account's features take from the whole data, not only from its own transactions.

A partition or batch computes its accounts' features from the transactions touching them; three
inputs would otherwise depend on which transactions those are: which optional columns carry data
(a column null in one batch's rows is not absent), the fixed-point scale of the sums (bounded by
the largest amount and the number of legs), and the shared identifiers (a device shared with an
account of another batch). Computed once over the whole run, they make every cut of the accounts
give the features one computation over everything gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from flows87.pipeline.features.accounts import available_columns, static_features
from flows87.pipeline.features.legs import scale_for


@dataclass(frozen=True)
class Whole:
    available: set[str]
    """Optional columns that carry data somewhere in the run."""
    static: pl.DataFrame
    """Per-account attributes and shared identifiers (`static_features`)."""
    scale: float
    """The fixed-point scale of amounts (`legs.fixed_scale` of every leg)."""


def whole(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> Whole:
    """The run-wide inputs, read lazily (a scan of a large file streams)."""
    available = available_columns(transactions, accounts)
    largest, n = (
        transactions.select(pl.col("amount_base").abs().max(), pl.len())
        .collect(engine="streaming")
        .row(0)
    )
    static = static_features(accounts, transactions, available)
    return Whole(available, static, scale_for(largest, 2 * n))

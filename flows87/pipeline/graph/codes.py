"""Text keys as integer codes: sorting, grouping and as-of joining them is several times faster."""

from __future__ import annotations

import polars as pl


def codes_of(*values: pl.Series) -> pl.Enum | None:
    """An enumeration of the texts in `values`, in sorted order, to turn them into integer codes
    with `code` (the same in every frame cast with it); None when they are not text."""
    if values[0].dtype != pl.String:
        return None
    return pl.Enum(pl.concat([v.drop_nulls() for v in values]).unique().sort())


def code(col: str, dtype: pl.Enum) -> pl.Expr:
    """The integer code of text column `col` in enumeration `dtype` (see `codes_of`)."""
    return pl.col(col).cast(dtype).to_physical().alias(col)

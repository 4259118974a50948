"""Rows that follow given rows in time, per key, without a quadratic join: `Following`.

Also `fair_cap`: a budget of candidate rows shared fairly among groups, so that only the
heaviest (a hub, a dense ring) are cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

from flows87.pipeline.graph.codes import codes_of


class Following:
    """The rows of `right` (columns `key`, `_t` and any others) that follow given rows in time:
    `after(left, ...)` joins each row of `left` to the first `limit` rows of `right` with the
    same `key` and a later `_t`.

    A plain join on the key followed by a time filter costs (rows of the key in `left`) x (rows
    of the key in `right`): quadratic at a hub, or between two accounts that pay each other
    every day (all the more when every timestamp is midnight). This costs
    O((L + R) log(L + R) + L x limit): `right` is sorted once by (key, time, `order`), an as-of
    join finds each left row's first later row of its key, and the next `limit` rows in that
    order are its candidates, taken by position. Build it once to use it for several `left`s.
    """

    def __init__(self, right: pl.DataFrame, key: str, order: Sequence[str] = ()) -> None:
        self.key = key
        # a text key is sorted and matched as an integer code (several times faster)
        right = right.filter(pl.col(key).is_not_null())
        self.codes = codes_of(right.get_column(key))
        self.right = right.with_columns(self._code(key).alias("_k")).sort(["_k", "_t", *order])
        n = self.right.height
        index = pl.int_range(n, dtype=pl.UInt32)
        self.starts = self.right.select("_k", pl.col("_t").alias("_at"), index.alias("_g")).sort(
            "_at", maintain_order=True
        )
        self.right = self.right.drop(key)
        self.ends = (
            self.right.select("_k", index.alias("_g"))
            .group_by("_k")
            .agg((pl.col("_g").max() + 1).alias("_last"))
        )

    def _code(self, col: str) -> pl.Expr:
        if self.codes is None:
            return pl.col(col)
        return pl.col(col).cast(self.codes, strict=False).to_physical()

    def _bounds(self, left: pl.DataFrame, ts: str, within: timedelta | None) -> pl.DataFrame:
        """`_l`, the key, `_g0`: the position in `right` of each left row's first later row of
        its key (null when none), and `_g1`: of its first row after `ts` + `within` (or the
        end of the key's rows), in `left`'s order."""

        def first_after(frame: pl.DataFrame, t: str, name: str) -> pl.DataFrame:
            keep = [*frame.columns, name]
            return frame.join_asof(
                self.starts.rename({"_g": name}),
                left_on=t,
                right_on="_at",
                by_left="_lk",
                by_right="_k",
                strategy="forward",
                allow_exact_matches=False,
                check_sortedness=False,
            ).select(keep)

        found = first_after(
            left.select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_l"),
                self._code(self.key).alias("_lk"),
                ts,
            ).sort(ts),
            ts,
            "_g0",
        )
        if within is not None:  # the window's ends are in the same order as its starts
            found = first_after(
                found.with_columns((pl.col(ts) + within).alias("_end")), "_end", "_g1"
            )
        else:
            found = found.with_columns(pl.lit(None, pl.UInt32).alias("_g1"))
        return (
            found.sort("_l")
            .join(self.ends.rename({"_k": "_lk"}), on="_lk", how="left", maintain_order="left")
            .select("_l", "_g0", pl.min_horizontal("_g1", "_last").alias("_g1"))
        )

    def after(
        self,
        left: pl.DataFrame,
        ts: str,
        limit: int,
        *,
        within: timedelta | None = None,
        budget: float | None = None,
        fair: tuple[str, Sequence[str]] | None = None,
    ) -> pl.DataFrame:
        """`left` (with the key column and `ts`) joined to its candidates: rows ordered by left
        row, then time. With `within`, only candidates up to that long after `ts`. With
        `budget`, at most about that many candidate rows are made: `left` rows are then kept by
        `fair_cap` with (group, order) = `fair`, so that the busiest groups are cut first."""
        found = self._bounds(left, ts, within)
        stop = pl.min_horizontal(pl.col("_g0") + limit, "_g1")
        found = found.with_columns(stop.alias("_g1")).drop_nulls("_g0")
        found = found.filter(pl.col("_g1") > pl.col("_g0"))
        if budget is not None:
            weight = (pl.col("_g1") - pl.col("_g0")).cast(pl.Int64)
            found = found.with_columns(weight.alias("_w"))
            if found.get_column("_w").sum() > budget:
                group, order = fair if fair is not None else ("_l", ())
                extra = left.select(group, *order).with_row_index("_l")
                found = fair_cap(
                    found.select("_l", "_g0", "_g1", "_w").join(extra, on="_l"),
                    "_w",
                    group,
                    [*order, "_l"],
                    budget,
                ).sort("_l")
        pairs = found.select(
            "_l", pl.int_ranges("_g0", "_g1", dtype=pl.UInt32).alias("_g")
        ).explode("_g")
        # candidates past the end of the key's rows were cut by `_last`: all share the key
        return pl.concat(
            [
                left[pairs.get_column("_l")],
                self.right.drop("_k")[pairs.get_column("_g")],
            ],
            how="horizontal",
        )


def following(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key: str,
    ts: str,
    limit: int,
    *,
    within: timedelta | None = None,
    order: Sequence[str] = (),
) -> pl.DataFrame:
    """Each row of `left` joined to the first `limit` rows of `right` with the same `key` and a
    later time, in time order (then `order`): `left` has `key` and `ts`, `right` has `key`
    and `_t` (and no other column of `left`'s names); with `within`, only rows up to that long
    after `ts`. See `Following` for the cost."""
    return Following(right, key, order).after(left, ts, limit, within=within)


def fair_cap(
    frame: pl.DataFrame, weight: str, group: str, order: Sequence[str], budget: float
) -> pl.DataFrame:
    """The rows of `frame` whose total `weight` fits `budget`, shared fairly among the values of
    `group`: each group keeps its first rows (in `order`) while their running weight stays under
    one allowance common to all groups, the largest allowance that fits. A group with little
    weight keeps everything; only the heaviest groups (a hub, a dense ring) are cut.
    O(n log n).
    """
    total = frame.get_column(weight).sum()
    if total is None or total <= budget:
        return frame
    # Rows in order of their group's running weight (ties by group, then order) form, at every
    # length, per-group prefixes: the longest whose weight fits is the fairest cut.
    ranked = (
        frame.sort([group, *order])
        .with_columns(pl.col(weight).cum_sum().over(group).alias("_cw"))
        .sort(["_cw", group, *order])
    )
    return ranked.filter(pl.col(weight).cum_sum() <= budget).drop("_cw")

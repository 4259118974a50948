"""The windowed features by family (as features/registry.py groups them): their aggregations.

Each family says what it computes per (account, period) of one window length, sorted by the
pass that computes it (see features/window.py): sums, counts and means of masked values in one
hashed group-by, medians in a sorted one, distinct counterparties, locations and countries from
one row per (account, period, value), and columns derived from the joined result. A new feature
is one expression in its family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from flows87.pipeline.features.legs import flag

PASS_THROUGH_HOURS = (6, 24, 48)


@dataclass
class Family:
    """A family's aggregations, by pass (each named by its output column's alias or key)."""

    sums: list[pl.Expr] = field(default_factory=list)
    """Sums, counts, means and maxima (the streaming engine's hashed group-by)."""
    medians: list[pl.Expr] = field(default_factory=list)
    """Medians (the in-memory engine's group-by on the sorted key)."""
    counterparties: dict[str, pl.Expr] = field(default_factory=dict)
    """Distinct counterparties among the legs meeting each condition."""
    places: dict[str, pl.Expr] = field(default_factory=dict)
    """Distinct non-null locations among the legs meeting each condition."""
    countries: dict[str, pl.Expr] = field(default_factory=dict)
    """Distinct non-null destination countries among the legs meeting each condition."""
    derived: list[pl.Expr] = field(default_factory=list)
    """Columns computed from the other features of the same row."""


class Measures:
    """Masked aggregations over one window's legs. Amounts are summed in fixed point (the
    `fixed` column, `scale` units per unit of currency): integer sums are exact in any order,
    and a share of two of them needs no scaling back."""

    inn = pl.col("is_in")
    out = ~pl.col("is_in")
    amt = pl.col("amt")

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.in_sum = self.total(self.inn)
        self.out_sum = self.total(self.out)

    @staticmethod
    def count(cond: pl.Expr) -> pl.Expr:
        return cond.sum().cast(pl.Int64)

    @staticmethod
    def total(cond: pl.Expr) -> pl.Expr:
        """The fixed-point sum (an integer)."""
        return pl.when(cond).then(pl.col("fixed")).sum()

    def amount(self, total: pl.Expr) -> pl.Expr:
        return total * (1 / self.scale)  # see max_gap_days: the same bits in every run

    @classmethod
    def median(cls, cond: pl.Expr, value: pl.Expr | None = None) -> pl.Expr:
        return pl.when(cond).then(cls.amt if value is None else value).median()

    @staticmethod
    def share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
        return pl.when(whole > 0).then(part / whole)


def volume(m: Measures) -> Family:
    """How much moves, how often, with how many counterparties (the largest counterparty's
    share, top_payer_share and top_payee_share, comes with every counterparty count)."""
    inn, out = m.inn, m.out
    return Family(
        sums=[
            m.count(inn).alias("in_count"),
            m.count(out).alias("out_count"),
            m.amount(m.in_sum).alias("in_sum"),
            m.amount(m.out_sum).alias("out_sum"),
            m.share(m.out_sum, m.in_sum).alias("out_in_ratio"),
            m.count(pl.col("new_day")).alias("active_days"),
            # times the reciprocal: polars divides by a constant that way, except at the end of
            # a chunk, where it divides (the last bit then followed the chunking)
            (pl.col("gap_seconds").max().fill_null(0) * (1 / 86_400)).alias("max_gap_days"),
        ],
        medians=[
            m.median(inn).alias("median_in_amount"),
            m.median(out).alias("median_out_amount"),
        ],
        counterparties={
            "distinct_payers": inn,
            "distinct_payees": out,
            "transfer_payers": inn & flag("transfer"),
            "transfer_payees": out & flag("transfer"),
        },
    )


def p2p_and_night(m: Measures) -> Family:
    inn, out = m.inn, m.out
    return Family(
        sums=[
            m.count(inn & flag("p2p")).alias("p2p_in_count"),
            m.share(m.count(inn & flag("night")), m.count(inn)).alias("night_in_share"),
            m.count(out & flag("night")).alias("night_out_count"),
        ],
        medians=[m.median(inn & flag("p2p")).alias("median_p2p_in_amount")],
        counterparties={"p2p_payers": inn & flag("p2p"), "night_in_payers": inn & flag("night")},
    )


def pass_through(m: Measures) -> Family:
    """Money out within so many hours of the latest money in, against the money in."""
    return Family(
        sums=[
            m.share(m.total(m.out & (pl.col("dwell_hours") <= h)), m.in_sum)
            .clip(upper_bound=1.0)
            .alias(f"pass_through_{h}h")
            for h in PASS_THROUGH_HOURS
        ],
        medians=[pl.col("dwell_hours").median().alias("median_dwell_hours")],
    )


def one_off(m: Measures) -> Family:
    """Relationships seen once (the legs' `one_off`, see features/legs.py)."""
    inn, out, once = m.inn, m.out, pl.col("one_off")
    return Family(
        sums=[
            m.amount(m.total(inn & once)).alias("one_off_in_sum"),
            m.amount(m.total(out & once)).alias("one_off_out_sum"),
            m.share(m.total(inn & once), m.in_sum).alias("one_off_in_share"),
            m.share(m.total(out & once), m.out_sum).alias("one_off_out_share"),
            m.share(m.total(once), m.in_sum + m.out_sum).alias("one_off_share"),
        ],
        counterparties={"one_off_payers": inn & once, "one_off_payees": out & once},
        # money from one-off payers that went on to one-off payees in the same period
        derived=[pl.min_horizontal("one_off_in_sum", "one_off_out_sum").alias("one_off_through")],
    )


def cash(m: Measures) -> Family:
    inn, out = m.inn, m.out
    deposit = inn & flag("cash_deposit")
    return Family(
        sums=[
            m.count(deposit).alias("cash_in_count"),
            m.amount(m.total(deposit)).alias("cash_in_sum"),
            m.share(m.total(deposit), m.in_sum).alias("cash_in_share"),
            m.amount(m.total(out & flag("cash_withdrawal"))).alias("cash_out_sum"),
            m.count(inn & flag("near")).alias("near_threshold_count"),
            # the share among legs with an amount (a null amount has no round flag)
            pl.when(m.amt.is_not_null()).then(flag("round")).mean().alias("round_amount_share"),
        ],
        places={"cash_locations": deposit, "near_threshold_locations": inn & flag("near")},
    )


def merchants(m: Measures) -> Family:
    """Card spending by merchant category (and card payments received)."""
    inn, out = m.inn, m.out
    return Family(
        sums=[
            m.count(out & flag("card")).alias("card_out_count"),
            m.count(out & flag("hotel")).alias("hotel_count"),
            m.count(out & flag("airline")).alias("airline_count"),
            m.count(out & flag("transport") & flag("night")).alias("transport_night_count"),
            m.count(out & flag("ads")).alias("ads_count"),
            m.count(out & flag("adult")).alias("adult_count"),
            m.count(out & flag("prepaid")).alias("prepaid_count"),
            m.amount(m.total(out & flag("prepaid"))).alias("prepaid_sum"),
            m.share(m.total(out & flag("living")), m.out_sum).alias("living_cost_share"),
            m.count(inn & flag("card")).alias("card_in_count"),
            m.share(m.count(inn & flag("card") & flag("night")), m.count(inn & flag("card"))).alias(
                "night_card_in_share"
            ),
        ],
        counterparties={"hotel_merchants": out & flag("hotel")},
        places={"card_locations": out & flag("card"), "hotel_locations": out & flag("hotel")},
    )


def payroll(m: Measures) -> Family:
    inn, out = m.inn, m.out
    return Family(
        sums=[
            m.count(inn & flag("payroll")).alias("wage_in_count"),
            m.amount(m.total(inn & flag("payroll"))).alias("wage_in_sum"),
            m.count(out & flag("payroll")).alias("payroll_out_count"),
        ],
        medians=[m.median(out & flag("payroll")).alias("median_payroll_amount")],
        counterparties={
            "wage_payers": inn & flag("payroll"),
            "payroll_payees": out & flag("payroll"),
        },
    )


def cross_border(m: Measures) -> Family:
    inn, out = m.inn, m.out
    return Family(
        sums=[
            m.count(out & flag("xb")).alias("xb_out_count"),
            m.share(m.total(out & flag("xb")), m.out_sum).alias("xb_out_share"),
            m.count(inn & flag("xb")).alias("xb_in_count"),
            m.count(out & flag("high_risk")).alias("high_risk_out_count"),
            m.count(out & flag("high_risk") & flag("small")).alias("high_risk_small_out_count"),
        ],
        counterparties={"high_risk_payees": out & flag("high_risk")},
        countries={"xb_countries": out & flag("xb")},
    )


FAMILIES: tuple[Callable[[Measures], Family], ...] = (
    volume,
    p2p_and_night,
    pass_through,
    one_off,
    cash,
    merchants,
    payroll,
    cross_border,
)


def every_family(scale: float) -> Family:
    """All families' aggregations, pass by pass."""
    m = Measures(scale)
    whole = Family()
    for make in FAMILIES:
        part = make(m)
        whole.sums += part.sums
        whole.medians += part.medians
        whole.counterparties |= part.counterparties
        whole.places |= part.places
        whole.countries |= part.countries
        whole.derived += part.derived
    return whole

"""Match weights in words: why two records were linked, or sent to review.

Splink scores a pair field by field (a comparison level per field, each with a Bayes factor).
An investigator reads "same passport number, name 0.93 similar, different phone": fields
ordered from the strongest evidence for the link to the strongest against it, similarities
given as numbers where a level is a similarity band, missing fields left out.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

SIMILARITY = {"name": "name_similarity", "address": "address_similarity"}
"""Comparisons whose similarity bands are written with the pair's own similarity."""


def levels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """comparison -> gamma value -> label, from a trained model's settings (its JSON)."""
    out: dict[str, dict[int, str]] = {}
    for comp in model["comparisons"]:
        non_null = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        top = len(non_null) - 1
        out[comp["output_column_name"]] = {
            top - i: lv.get("label_for_charts", "") for i, lv in enumerate(non_null)
        }
    return out


def _phrase(name: str, gammas: dict[int, str]) -> pl.Expr:
    """The words for one comparison's level (null when a side is missing)."""
    gamma = pl.col(f"gamma_{name}")
    expr: Any = pl.lit(None, dtype=pl.String)
    for value, label in gammas.items():
        text: pl.Expr = pl.lit(label)
        if name in SIMILARITY and ("similar" in label or "sound" in label):
            sim = pl.col(SIMILARITY[name]).round(2).cast(pl.String)
            sounds = " and sounds the same" if "sound" in label else ""
            text = pl.lit(f"{name} ") + sim + pl.lit(f" similar{sounds}")
        if name == "id_number" and label.startswith("same"):
            doc = pl.col("id_type_norm_l")
            same_type = doc.is_not_null() & (doc == pl.col("id_type_norm_r"))
            # "passport" -> "same passport number"; "incorporation number" stays as it is
            noun = pl.when(doc.str.ends_with("number")).then(doc).otherwise(doc + " number")
            text = pl.when(same_type).then(pl.lit("same ") + noun).otherwise(text)
        expr = pl.when(gamma == value).then(text).otherwise(expr)
    return expr


def weight_columns(pairs: pl.DataFrame, names: list[str]) -> list[pl.Expr]:
    """Each field's match weight (log2 of its Bayes factor; Splink's mw_), as `w_<field>`."""
    return [pl.col(f"mw_{n}").round(3).alias(f"w_{n}") for n in names if f"mw_{n}" in pairs]


def explain(pairs: pl.DataFrame, model: dict[str, Any]) -> pl.DataFrame:
    """`pairs` with `w_<field>` weights and an `explanation` sentence."""
    table = levels(model)
    names = [n for n in table if f"gamma_{n}" in pairs.columns]
    out = pairs.with_columns(weight_columns(pairs, names))
    if not names or out.is_empty():
        return out.with_columns(pl.lit("", dtype=pl.String).alias("explanation"))
    parts = [
        pl.struct(
            pl.col(f"w_{n}").fill_nan(0).alias("w"),
            _phrase(n, table[n]).alias("p"),
        )
        for n in names
    ]
    ordered = (
        pl.concat_list(parts)
        .list.eval(
            pl.element()
            .sort_by(pl.element().struct.field("w"), descending=True, maintain_order=True)
            .struct.field("p")
            .drop_nulls()
        )
        .list.join(", ")
    )
    return out.with_columns(ordered.alias("explanation"))


def weight_of(probability: float) -> float:
    """The match weight of a match probability (what the thresholds mean in weights)."""
    return math.log2(probability / (1 - probability))

"""Relative thresholds: parameters stated as a percentile of the population the rule runs on.

A red flag such as "far more payers than peers" is relative: twenty payers a week is rare in a
retail bank and ordinary in a payments firm. A parameter with `percentile` and `of` takes the
value of that percentile of `of` over the rule's window periods (every active account's), kept
on the lenient side of the rule file's default (see `Param.relative`), so the rule means the same
on a population shaped unlike the one it was written for, and never fires on less than the
default would have asked.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.pipeline.rules.compile import compiled_of
from flows87.pipeline.rules.model import Rule

Resolved = dict[str, dict[str, float]]
"""rule id -> parameter -> the value used."""


def resolve(
    rules: list[Rule],
    features: pl.DataFrame | pl.LazyFrame,
    overrides: dict[str, dict[str, float]] | None = None,
) -> tuple[Resolved, list[dict[str, Any]]]:
    """The values of every relative parameter of `rules` over `features`, and a record of each
    (rule, parameter, percentile, of, the population's quantile, the file's value, the value
    used). One aggregation per window over the whole table: in a partitioned run, call it on
    the whole features file, so each partition uses the population's values."""
    overrides = overrides or {}
    wanted: dict[str, list[tuple[Rule, str]]] = {}
    for rule in rules:
        if rule.status == "deprecated" or rule.scope != "account":
            continue
        for name, param in rule.params.items():
            if param.percentile is not None:
                assert rule.window is not None
                wanted.setdefault(rule.window, []).append((rule, name))
    resolved: Resolved = {}
    records: list[dict[str, Any]] = []
    lf = features.lazy()
    for window, items in sorted(wanted.items()):
        exprs = [
            compiled_of(rule, name)
            .cast(pl.Float64)
            .quantile(rule.params[name].percentile / 100, "linear")  # type: ignore[operator]
            .alias(f"{i}")
            for i, (rule, name) in enumerate(items)
        ]
        row = lf.filter(pl.col("window") == window).select(exprs).collect().row(0)
        for (rule, name), q in zip(items, row, strict=True):
            param = rule.params[name]
            given = rule.values(overrides.get(rule.id))[name]
            quantile = None if q is None else round(float(q), 4)
            used = param.relative(given, quantile)
            resolved.setdefault(rule.id, {})[name] = used
            records.append(
                {
                    "rule": rule.id,
                    "param": name,
                    "percentile": param.percentile,
                    "of": param.of,
                    "quantile": quantile,
                    "given": given,
                    "used": used,
                }
            )
    return resolved, records

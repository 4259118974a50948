"""Suggestions for rules whose false positives cluster on one feature, and their patches.

When the rule's condition bounds that feature with a parameter (`feature >= :p`), the suggestion
moves the parameter's default to the threshold (within its min and max): a unified diff of the
rule file made by the sweep's `make_patch`, so it is applied the same way (`git apply` from the
repository root). Otherwise the suggestion is the condition to add, in words, for a researcher
to weigh: a new clause is a change of the rule, not of a setting.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.pipeline.rules import LoadedRule
from flows87.research.feedback.clusters import Split, condition_text
from flows87.research.feedback.conditions import Bound, bounds
from flows87.research.feedback.settings import FeedbackSettings
from flows87.research.sweep.patch import format_value, make_patch
from flows87.research.sweep.space import SweepParam


def _effect(hits: pl.DataFrame, bound: Bound, value: float) -> tuple[int, int]:
    """(reported kept, false positives removed) with the bound at `value`; missing values
    count against it as in `best_threshold`."""
    col = bound.feature if bound.keeps == "above" else f"{bound.feature}__min"
    kept = removed = 0
    for v, rep in hits.select(col, "reported").iter_rows():
        passes = v is not None and not math.isnan(v) and bound.holds(float(v), value)
        if rep:
            kept += passes
        elif v is not None and not math.isnan(v):
            removed += not passes
    return kept, removed


def param_value(
    hits: pl.DataFrame, bound: Bound, split: Split, p: SweepParam, keep_share: float
) -> tuple[float | int, int, int] | None:
    """The parameter value doing what `split` found (a tidy number, whole for int
    parameters, within the range), with its effect; the best in range when the split's own
    threshold is outside it. None when no value in range removes a false positive."""
    t = split.threshold
    tries: list[float | int] = [p.clean(t), p.clean(math.ceil(t)), p.clean(math.floor(t))]
    col = bound.feature if bound.keeps == "above" else f"{bound.feature}__min"
    tries += [p.clean(v) for v in np.unique(hits[col].drop_nulls().drop_nans().to_numpy())]
    need = math.ceil(keep_share * split.reported - 1e-9)
    best: tuple[float | int, int, int] | None = None
    for value in tries:
        kept, removed = _effect(hits, bound, float(value))
        if kept < need or removed == 0:
            continue
        if (kept, removed) == (split.reported_kept, split.fp_removed):
            return value, kept, removed
        if best is None or removed > best[2]:
            best = (value, kept, removed)
    return best


def suggest(
    item: LoadedRule,
    hits: pl.DataFrame,
    found: list[Split],
    settings: FeedbackSettings,
    root: Path | None,
) -> dict[str, Any] | None:
    """The suggestion for one rule (a parameter change with its patch, or a condition to add),
    or None when no feature removes `min_removed` of its false positives."""
    good = [s for s in found if s.removed_share >= settings.min_removed]
    if not good:
        return None
    rule = item.rule
    by_side = {(b.feature, b.keeps): b for b in bounds(rule.condition)}
    for split in good:
        bound = by_side.get((split.feature, split.keeps))
        if bound is None or bound.param not in rule.params:
            continue
        spec = rule.params[bound.param]
        key = f"{rule.id}.{bound.param}"
        p = SweepParam(key, spec.default, spec.min, spec.max, spec.type, item.path)
        picked = param_value(hits, bound, split, p, settings.keep_reported)
        if picked is None:
            continue
        value, kept, removed = picked
        tighter = (
            value > p.clean(p.default) if bound.keeps == "above" else value < p.clean(p.default)
        )
        if not tighter or removed / split.false_positives < settings.min_removed:
            continue
        verb = "raise" if bound.keeps == "above" else "lower"
        old, new = format_value(p.clean(p.default), p.type), format_value(value, p.type)
        return {
            "kind": "parameter",
            "param": key,
            "from": p.clean(p.default),
            "to": value,
            "feature": split.feature,
            "condition": f"{bound.feature} {bound.op} :{bound.param}",
            "reported_kept": kept,
            "fp_removed": removed,
            "fp_removed_share": round(removed / split.false_positives, 4),
            "text": f"{verb} {key} from {old} to {new} "
            f"(its false positives have {split.feature} {'below' if bound.keeps == 'above' else 'above'} it): "
            f"removes {removed} of {split.false_positives} false positives, keeps {kept} of "
            f"{split.reported} reported",
            "patch": make_patch({key: value}, {key: p}, root),
        }
    split = good[0]
    cond = condition_text(split.feature, split.keeps, split.threshold)
    where = (
        "add to its condition"
        if rule.scope == "account"
        else f"a {rule.scope} rule takes no feature condition; consider a parameter like"
    )
    return {
        "kind": "condition",
        "feature": split.feature,
        "condition": cond,
        "reported_kept": split.reported_kept,
        "fp_removed": split.fp_removed,
        "fp_removed_share": round(split.removed_share, 4),
        "text": f"{where} `{cond}`: removes {split.fp_removed} of {split.false_positives} false "
        f"positives, keeps {split.reported_kept} of {split.reported} reported",
        "patch": None,
    }

"""Where a rule's false positives cluster: the one-feature threshold that removes most of them.

A rule's decided hits are the accounts of decided cases that carried the rule, where the run's
signals say the rule fired on that account (a case's other members were not its hits). Their
features are the run's, in the windows the rule fired in: for `feature >= t` a hit stays when
its largest value over those windows does, for `feature <= t` its smallest (the rule keeps an
account when any of its windows passes). Graph and detector signals have no window: the
account's windows of the longest length stand in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from flows87.research.feedback.conditions import Keep

KEYS = ("account_id", "window", "window_start", "window_end")
NUMERIC = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
)


def numeric_features(features: pl.DataFrame) -> list[str]:
    return [c for c, t in features.schema.items() if c not in KEYS and t in NUMERIC]


def decided_hits(dispositions: pl.DataFrame, signals: pl.DataFrame) -> pl.DataFrame:
    """signal_id, case_id, account_id, disposition, decided_at: one row per account of a
    decided case on which the case's rule fired in this run."""
    fired = signals.select("signal_id", "account_id").unique()
    return (
        dispositions.select("case_id", "accounts", "signal_ids", "disposition", "decided_at")
        .explode("signal_ids")
        .rename({"signal_ids": "signal_id"})
        .explode("accounts")
        .rename({"accounts": "account_id"})
        .drop_nulls(["signal_id", "account_id"])
        .join(fired, on=["signal_id", "account_id"], how="semi")
        .unique(["signal_id", "case_id", "account_id"])
        .sort("signal_id", "case_id", "account_id")
    )


def hit_features(signals: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """signal_id, account_id and, per numeric feature f, `f` (its largest value over the
    windows the rule fired in) and `f__min` (its smallest)."""
    cols = numeric_features(features)
    sig = signals.select(
        "signal_id",
        "account_id",
        *[
            pl.col(c) if c in signals.columns else pl.lit(None, pl.Datetime("us", "UTC")).alias(c)
            for c in ("window_start", "window_end")
        ],
    ).unique()
    feats = features.select(*KEYS, *cols).with_columns(
        pl.col("window_start").cast(pl.Datetime("us", "UTC")),
        pl.col("window_end").cast(pl.Datetime("us", "UTC")),
    )
    windowed = sig.drop_nulls("window_start").join(
        feats, on=["account_id", "window_start", "window_end"], how="inner"
    )
    longest = feats.filter(
        (pl.col("window_end") - pl.col("window_start"))
        == (pl.col("window_end") - pl.col("window_start")).max()
    )
    unwindowed = (
        sig.join(
            windowed.select("signal_id", "account_id").unique(),
            on=["signal_id", "account_id"],
            how="anti",
        )
        .select("signal_id", "account_id")
        .unique()
        .join(longest, on="account_id", how="inner")
    )
    rows = pl.concat(
        [
            windowed.select("signal_id", "account_id", *cols),
            unwindowed.select("signal_id", "account_id", *cols),
        ]
    )
    return rows.group_by("signal_id", "account_id").agg(
        *[pl.col(c).cast(pl.Float64).max().alias(c) for c in cols],
        *[pl.col(c).cast(pl.Float64).min().alias(f"{c}__min") for c in cols],
    )


@dataclass(frozen=True)
class Split:
    """A threshold on one feature: hits on the `keeps` side stay."""

    feature: str
    keeps: Keep
    threshold: float
    reported: int
    reported_kept: int
    false_positives: int
    fp_removed: int

    @property
    def removed_share(self) -> float:
        return self.fp_removed / self.false_positives if self.false_positives else 0.0

    @property
    def kept_share(self) -> float:
        return self.reported_kept / self.reported if self.reported else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "keeps": self.keeps,
            "condition": condition_text(self.feature, self.keeps, self.threshold),
            "threshold": self.threshold,
            "reported": self.reported,
            "reported_kept": self.reported_kept,
            "false_positives": self.false_positives,
            "fp_removed": self.fp_removed,
            "fp_removed_share": round(self.removed_share, 4),
        }


def condition_text(feature: str, keeps: Keep, threshold: float) -> str:
    t = int(threshold) if float(threshold).is_integer() else round(threshold, 6)
    return f"{feature} {'>=' if keeps == 'above' else '<='} {t}"


def best_threshold(
    reported: np.ndarray, false_pos: np.ndarray, keeps: Keep, keep_share: float
) -> tuple[float, int, int] | None:
    """The threshold removing the most false positives while keeping at least `keep_share` of
    the reported values, the least strict of equals, the roundest number between the last removed value
    and the first kept one: (threshold, reported kept, FPs removed), or None when no threshold
    removes any. A missing value (NaN) counts against the threshold: a report with one is not
    kept, a false positive with one is not removed."""
    sign = 1.0 if keeps == "above" else -1.0
    r = np.sort(sign * reported[~np.isnan(reported)])
    f = np.sort(sign * false_pos[~np.isnan(false_pos)])
    need = math.ceil(keep_share * reported.size - 1e-9)
    if r.size < need or f.size == 0:
        return None
    # keep v >= t: the candidates are the distinct values; at each, r kept and f removed
    cand = np.unique(np.concatenate([r, f]))
    cand = np.append(cand, cand[-1] + 1)  # beyond every value: removes all (keeps no report)
    kept = r.size - np.searchsorted(r, cand, side="left")
    removed = np.searchsorted(f, cand, side="left")
    ok = kept >= need
    if not ok.any() or removed[ok].max() == 0:
        return None
    best = int(np.flatnonzero(ok & (removed == removed[ok].max()))[0])
    t = tidy(float(cand[best - 1]), float(cand[best]))  # best > 0: something is removed
    return sign * t + 0.0, int(kept[best]), int(removed[best])


def tidy(lo: float, hi: float) -> float:
    """The roundest number in (lo, hi]: the fewest decimals (or most trailing zeros), and the
    largest of those; a threshold there splits the values as any other in the interval."""
    top = max(abs(lo), abs(hi), 1e-12)
    for d in range(-int(math.floor(math.log10(top))) - 1, 16):
        x = math.floor(hi * 10.0**d) / 10.0**d
        if lo < x <= hi:
            return round(x, max(d, 0))
    return hi


def splits(hits: pl.DataFrame, features: list[str], keep_share: float) -> list[Split]:
    """For each feature and side, the best threshold over the rule's hits (`reported` column:
    True reported, False false positive), best first (most FPs removed, then most reports
    kept, then the feature's name)."""
    pos = hits.filter(pl.col("reported"))
    neg = hits.filter(~pl.col("reported"))
    out: list[Split] = []
    for feat in features:
        for keeps, col in (("above", feat), ("below", f"{feat}__min")):
            if col not in hits.columns:
                continue
            r = pos[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
            f = neg[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
            found = best_threshold(r, f, keeps, keep_share)  # type: ignore[arg-type]
            if found is None:
                continue
            t, kept, removed = found
            out.append(Split(feat, keeps, t, r.size, kept, f.size, removed))  # type: ignore[arg-type]
    return sorted(out, key=lambda s: (-s.fp_removed, -s.reported_kept, s.feature, s.keeps))

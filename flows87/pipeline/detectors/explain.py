"""Reasons per flagged account: its most extreme features, in words.

Percentiles are counted among all scored accounts one feature column at a time, so explaining
about 1 % of the accounts needs one column's copies at once, not the whole matrix's (at 1.9M
accounts x 68 features three float64 copies were 3 GB).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from flows87.pipeline.features import BY_NAME
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA, empty_signals


def explain(
    frame: pl.DataFrame,
    used: list[str],
    x_flagged: np.ndarray,
    combined: np.ndarray,
    flagged: np.ndarray,
    models: str,
    window: str,
    explain_top: int,
) -> pl.DataFrame:
    """Signals for the `flagged` rows of `frame` (the population's matrix, sorted by account):
    `x_flagged` is their scaled values, one row per flagged account."""
    if len(flagged) == 0:
        return empty_signals()
    n, k = frame.height, len(flagged)
    others = max(n - 1, 1)
    raw, below, above = np.empty((k, len(used))), np.empty((k, len(used))), np.empty((k, len(used)))
    typical = np.empty(len(used))
    picked = pl.Series(flagged)
    for j, c in enumerate(used):
        # the share of the other accounts strictly below and strictly above each flagged value
        # ("higher than x %"), counted in the column sorted once
        values = frame.get_column(c).cast(pl.Float64)
        raw[:, j] = values.gather(picked).to_numpy()
        filled = values.fill_null(0.0).fill_nan(0.0)
        ordered = filled.sort().to_numpy()
        mine = filled.gather(picked).to_numpy()
        below[:, j] = np.searchsorted(ordered, mine, side="left")
        above[:, j] = n - np.searchsorted(ordered, mine, side="right")
        median = values.to_frame().select(pl.all().median()).item()
        typical[j] = np.nan if median is None else median
        del values, filled, ordered
    below /= others
    above /= others
    # Extremeness: distance from the median in robust units, high side preferred.
    extreme = np.abs(x_flagged) * np.where(x_flagged > 0, 1.0, 0.5)
    top = np.argsort(-extreme, axis=1)[:, :explain_top]
    ids = frame.get_column("account_id").gather(picked).to_list()
    rows = []
    for i in range(k):  # flagged accounts only: about 1 % of accounts
        reasons = []
        for j in top[i]:
            feat = BY_NAME[used[j]]
            value, share = raw[i, j], below[i, j]
            side = (
                f"higher than {share:.1%}"
                if x_flagged[i, j] > 0
                else f"lower than {above[i, j]:.1%}"
            )
            reasons.append(
                {
                    "feature": feat.name,
                    "meaning": feat.meaning,
                    "value": _num(value),
                    "typical": _num(typical[j]),
                    "percentile": round(float(share) * 100, 1),
                    "text": f"{feat.meaning}: {_num(value)} (typical account {_num(typical[j])}; "
                    f"{side} of accounts)",
                }
            )
        account = ids[i]
        score = combined[flagged[i]]
        evidence = {
            "anomaly_score": round(float(score), 4),
            "models": models,
            "window": window,
            "reasons": reasons,
        }
        rows.append(
            {
                "source": "detector",
                "signal_id": "pyod_ensemble",
                "account_id": account,
                "txn_ids": [],
                "score": float(score),
                "family": "anomaly",
                "typologies": [],
                "window_start": None,
                "window_end": None,
                "evidence": json.dumps(evidence, sort_keys=True),
                "summary": f"Account {account} is unusual among all accounts ({models}): "
                + "; ".join(str(r["text"]) for r in reasons)
                + ".",
            }
        )
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA)


def _num(v: float) -> float | int | None:
    if v is None or np.isnan(v):
        return None
    return int(v) if float(v).is_integer() else round(float(v), 2)

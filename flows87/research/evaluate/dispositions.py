"""Metrics against investigators' dispositions (the case store's decided cases).

A decided case is positive when its disposition is "reported" (an STR was filed); "false_positive"
and "no_further_action" are negatives. Dispositions only cover the cases investigators looked
at, so there is no recall here: the measures are the precision of what was reviewed (overall, per
rule and per typology), and how well the run's risk score orders the reviewed accounts.

`dispositions` is the frame of `flows87.investigate.store.export_dispositions` (case_id, accounts,
disposition, signal_ids, typologies, ...).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.research.evaluate.ranking import average_precision, ratio

POSITIVE = "reported"


def load_dispositions(db_url: str | None) -> pl.DataFrame | None:
    """The latest disposition of every closed case in the store, or None when there is no
    store (a SQLite file that does not exist, a database without the schema) or no decision."""
    from flows87.investigate.store import export_dispositions
    from flows87.investigate.store.feedback import read_existing

    frame = read_existing(db_url, export_dispositions)
    return frame if frame is not None and frame.height else None


def disposition_metrics(
    dispositions: pl.DataFrame,
    scored: pl.DataFrame | None = None,
    cases: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Precision of decided cases (overall, in this run, per rule, per typology), the average
    precision of `scored.risk_score` over the accounts of decided cases and, when `scored`
    is labelled, how often the labels agree with the dispositions. {} without dispositions."""
    if dispositions is None or dispositions.is_empty():
        return {}
    d = dispositions.with_columns((pl.col("disposition") == POSITIVE).alias("_pos"))
    counts = dict(d.group_by("disposition").len().sort("disposition").iter_rows())
    reported = int(d["_pos"].sum())
    out: dict[str, Any] = {
        "decided_cases": d.height,
        "by_disposition": {str(k): int(v) for k, v in counts.items()},
        "precision": ratio(reported, d.height),
        "rules": {},
        "typologies": {},
    }
    if cases is not None and not cases.is_empty():
        here = d.join(cases.select("case_id"), on="case_id", how="semi")
        out["run_cases"] = cases.height
        out["run_cases_decided"] = here.height
        out["run_precision"] = ratio(int(here["_pos"].sum()), here.height)
    for key, col in (("rules", "signal_ids"), ("typologies", "typologies")):
        if col not in d.columns:
            continue
        per = (
            d.select("case_id", "_pos", pl.col(col).alias("_k"))
            .explode("_k")
            .drop_nulls("_k")
            .unique(["case_id", "_k"])
            .group_by("_k")
            .agg(pl.len().alias("decided"), pl.col("_pos").sum().alias("reported"))
            .sort("_k")
        )
        out[key] = {
            str(r["_k"]): {
                "decided_cases": int(r["decided"]),
                "reported": int(r["reported"]),
                "precision": ratio(r["reported"], r["decided"]),
            }
            for r in per.iter_rows(named=True)
        }
    accounts = (
        d.select(pl.col("accounts").alias("account_id"), "_pos")
        .explode("account_id")
        .drop_nulls()
        .group_by("account_id")
        .agg(pl.col("_pos").any())  # an account in any reported case is positive
    )
    out["decided_accounts"] = accounts.height
    if scored is not None and "risk_score" in scored.columns:
        joined = accounts.join(scored, on="account_id", how="inner")
        out["scored_decided_accounts"] = joined.height
        out["average_precision_reviewed"] = average_precision(joined["_pos"], joined["risk_score"])
        if "is_suspicious" in joined.columns and joined.height:
            out["label_agreement"] = ratio(
                int((joined["_pos"] == joined["is_suspicious"].fill_null(False)).sum()),
                joined.height,
            )
    return out

"""Metrics against labels and investigators' dispositions (issue 6), and `flows87 evaluate`.

Pure functions of polars frames, for the run report, `flows87 evaluate`, `sweep` and `bench`:

    ranking:       average_precision, pr_curve, precision_at_k, recall_at_budget,
                   ranking_metrics, classification_metrics
    contrib:       contributions (per rule/detector/source: alone and only-it), overlap (Jaccard)
    transactions:  alerted_transactions, transaction_metrics
    volume:        alerts_per_day
    dispositions:  disposition_metrics
    metrics:       account_metrics, case_metrics, rule_metrics (the run report's)
    evaluation:    evaluate_run (a run directory -> dict), evaluate (and write the report)

Imported lazily, so importing the package (or flows87.research.backtest, which the DAG processor
imports) does not import polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "account_metrics": "metrics",
    "case_metrics": "metrics",
    "rule_metrics": "metrics",
    "average_precision": "ranking",
    "pr_curve": "ranking",
    "precision_at_k": "ranking",
    "recall_at_budget": "ranking",
    "ranking_metrics": "ranking",
    "classification_metrics": "ranking",
    "contributions": "contrib",
    "overlap": "contrib",
    "alerted_transactions": "transactions",
    "transaction_metrics": "transactions",
    "alerts_per_day": "volume",
    "disposition_metrics": "dispositions",
    "evaluate_run": "evaluation",
    "evaluate": "evaluation",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"flows87.research.evaluate.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'flows87.research.evaluate' has no attribute {name!r}")

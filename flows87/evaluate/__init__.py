"""Metrics against labels (and, later, investigators' dispositions)."""

from flows87.evaluate.metrics import account_metrics, case_metrics, rule_metrics

__all__ = ["account_metrics", "case_metrics", "rule_metrics"]

"""Declarative detection rules: one YAML file per rule in rules/, validated, compiled to polars."""

from flows87.pipeline.rules.engine import RuleRun, graph_signals, run_rules
from flows87.pipeline.rules.evaluate import SIGNAL_SCHEMA, empty_signals
from flows87.pipeline.rules.loader import LoadedRule, lint, load_rule, load_rules
from flows87.pipeline.rules.model import Param, Rule

__all__ = [
    "SIGNAL_SCHEMA",
    "LoadedRule",
    "Param",
    "Rule",
    "RuleRun",
    "empty_signals",
    "graph_signals",
    "lint",
    "load_rule",
    "load_rules",
    "run_rules",
]

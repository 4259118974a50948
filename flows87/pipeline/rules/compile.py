"""Compile rule conditions (polars SQL expressions with `:param` placeholders) to polars.

Parameters are substituted as numeric literals only, then the text is parsed by polars' SQL
expression parser: nothing is ever `eval`ed. Every column a condition names must be one the
rule's scope provides; an unknown name is refused with the nearest known names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import polars as pl

from flows87.errors import ConfigError
from flows87.pipeline.features.registry import BY_NAME as FEATURE_NAMES
from flows87.pipeline.rules.model import Rule
from flows87.schema import TRANSACTION_COLUMNS

_PARAM = re.compile(r"(?<![\w:']):([A-Za-z_]\w*)")

TRANSACTION_DERIVED: dict[str, str] = {
    "hour": "hour of the day of `ts` (0-23)",
    "night": "true between the night hours of the feature settings",
    "xb": "true when the two accounts' countries differ",
    "src_kind": "kind of the paying account",
    "dst_kind": "kind of the receiving account",
    "src_age_days": "age of the paying account in days",
    "dst_age_days": "age of the receiving account in days",
    "src_business_type": "business type of the paying account",
    "dst_business_type": "business type of the receiving account",
}
"""Columns a transaction rule may use beyond the canonical transaction columns."""

HAVING_COLUMNS: dict[str, str] = {
    "count": "matching transactions of the subject account in the window",
    "total": "their total amount (base currency)",
    "counterparties": "distinct counterparties among them",
    "locations": "distinct locations among them",
    "active_days": "distinct days among them",
    "max_amount": "the largest of them",
}
"""Aggregates a transaction rule's `having` condition may use."""

LABEL_COLUMNS = {"is_suspicious", "typology", "scheme_id"}


def transaction_columns() -> set[str]:
    return {c.name for c in TRANSACTION_COLUMNS if not c.label} | set(TRANSACTION_DERIVED)


def substitute(text: str, values: dict[str, float]) -> str:
    """Replace `:name` with the parameter's value; an unknown name is an error."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ConfigError(
                f"condition uses :{name}, which is not a declared parameter",
                field="condition",
                hint=f"declared: {', '.join(sorted(values)) or 'none'}",
            )
        return repr(values[name])

    return _PARAM.sub(repl, text)


def compile_expr(
    text: str, values: dict[str, float], allowed: Iterable[str], field: str
) -> pl.Expr:
    """Parse one condition into a polars expression, checking the names it reads."""
    try:
        expr = pl.sql_expr(substitute(text, values))
    except ConfigError as exc:
        raise ConfigError(exc.reason, field=field, hint=exc.hint) from None
    except Exception as exc:  # polars raises several types for a bad expression
        raise ConfigError(f"cannot parse the expression: {exc}", field=field) from None
    allowed = set(allowed)
    for name in expr.meta.root_names():
        if name in LABEL_COLUMNS:
            raise ConfigError(f"{name!r} is a label: rules must not read labels", field=field)
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=3)
            raise ConfigError(
                f"unknown feature {name!r}",
                field=field,
                hint=f"did you mean {', '.join(close)}?"
                if close
                else "see `flows87 features list`",
            )
    return expr


def columns_for(rule: Rule) -> set[str]:
    if rule.scope == "account":
        return set(FEATURE_NAMES)
    if rule.scope == "transaction":
        return transaction_columns()
    return set()


def compiled_condition(
    rule: Rule,
    overrides: dict[str, float] | None = None,
    resolved: dict[str, float] | None = None,
) -> pl.Expr:
    """The condition with parameter values: defaults, checked `overrides`, then `resolved`
    (relative thresholds taken from the population, see `rules.relative`; not range-checked)."""
    assert rule.condition is not None
    values = {**rule.values(overrides), **(resolved or {})}
    return compile_expr(rule.condition, values, columns_for(rule), "condition")


def compiled_having(rule: Rule, overrides: dict[str, float] | None = None) -> pl.Expr:
    text = rule.having or "count >= 1"
    return compile_expr(text, rule.values(overrides), HAVING_COLUMNS, "having")


def compiled_of(rule: Rule, name: str) -> pl.Expr:
    """The feature expression a percentile parameter is taken of."""
    of = rule.params[name].of
    assert of is not None
    return compile_expr(of, {}, set(FEATURE_NAMES), f"params.{name}.of")


def check_rule(rule: Rule) -> None:
    """Everything a rule needs to run, checked at load time: conditions, evidence, pattern."""
    if rule.scope in ("account", "transaction"):
        compiled_condition(rule)
    if rule.scope == "transaction":
        compiled_having(rule)
    if rule.scope == "graph":
        from flows87.pipeline.graph.patterns import PATTERNS

        if rule.pattern not in PATTERNS:
            close = difflib.get_close_matches(rule.pattern or "", sorted(PATTERNS), n=2)
            raise ConfigError(
                f"unknown graph pattern {rule.pattern!r}",
                field="pattern",
                hint=f"did you mean {', '.join(close)}?"
                if close
                else f"known: {', '.join(sorted(PATTERNS))}",
            )
        accepted = PATTERNS[rule.pattern].params
        for name in rule.params:
            if name not in accepted:
                raise ConfigError(
                    f"pattern {rule.pattern!r} takes no parameter {name!r}",
                    field="params",
                    hint=f"it takes: {', '.join(sorted(accepted))}",
                )
        if rule.condition is not None:
            raise ConfigError("graph rules take parameters, not a condition", field="condition")
    for name, param in rule.params.items():
        if param.of is not None:
            compiled_of(rule, name)
    allowed = columns_for(rule) | (set(HAVING_COLUMNS) if rule.scope == "transaction" else set())
    if rule.scope != "graph" and rule.rank_by is not None and rule.rank_by not in rule.evidence:
        raise ConfigError(
            f"rank_by {rule.rank_by!r} is not one of the rule's evidence columns",
            field="rank_by",
            hint=f"evidence: {', '.join(rule.evidence) or 'none'}",
        )
    if rule.scope != "graph":
        for name in rule.evidence:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=2)
                raise ConfigError(
                    f"unknown evidence column {name!r}",
                    field="evidence",
                    hint=f"did you mean {', '.join(close)}?" if close else None,
                )

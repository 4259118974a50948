"""The rule file format, validated at the edge (pydantic, unknown keys refused).

One YAML file per rule, in the spirit of Sigma: metadata an investigator reads (title,
description, references, false positives), parameters a researcher tunes (default and allowed
range), and the detection logic as polars SQL expressions over named features.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows87.windows import parse_duration

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_SCORE: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}


class Param(BaseModel):
    """A tunable number: the default must lie in [min, max], and so must any override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: float
    min: float
    max: float
    type: Literal["int", "float"] = "float"
    description: str = ""
    percentile: float | None = Field(None, gt=0, lt=100)
    """A relative threshold: the value used is this percentile of `of` over the run's population
    (the rule's window periods), bounded by the default (or override) on the lenient side: from
    the 50th percentile up, the larger of the two ("at least n, and more than most peers"),
    below it, the smaller ("at most a, and less than most peers")."""
    of: str | None = None
    """The feature expression (polars SQL over account features) the percentile is taken of."""

    @model_validator(mode="after")
    def _in_range(self) -> Param:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        self.check(self.default, "default")
        if (self.percentile is None) != (self.of is None):
            raise ValueError("'percentile' and 'of' go together: give both or neither")
        return self

    def relative(self, value: float, quantile: float | None) -> float:
        """The value used with a population's quantile of `of` (see `percentile`)."""
        if self.percentile is None or quantile is None:
            return value
        return max(value, quantile) if self.percentile >= 50 else min(value, quantile)

    def check(self, value: float, what: str = "value") -> float:
        if not (self.min <= value <= self.max):
            raise ValueError(
                f"{what} {value} is outside the allowed range [{self.min}, {self.max}]"
            )
        if self.type == "int" and float(value) != int(value):
            raise ValueError(f"{what} {value} must be a whole number")
        return value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    title: str = Field(min_length=5)
    description: str = Field(min_length=20)
    status: Literal["experimental", "test", "stable", "deprecated"]
    severity: Severity
    family: Literal["behaviour", "network", "identity"]
    """Independent families of evidence: a case should combine at least two (docs/red-flags.md)."""
    typologies: list[str] = Field(min_length=1)
    author: str = "flows87"
    date: dt.date
    modified: dt.date | None = None
    tags: list[str] = Field(default_factory=list)
    references: list[str] = Field(min_length=1)
    scope: Literal["account", "transaction", "graph"]
    window: str | None = None
    params: dict[str, Param] = Field(default_factory=dict)
    condition: str | None = None
    subject: Literal["src", "dst"] | None = None
    having: str | None = None
    pattern: str | None = None
    evidence: list[str] = Field(default_factory=list)
    max_share: float | None = Field(None, gt=0, le=1)
    """Most accounts this rule may flag in one run, as a share of the run's active accounts
    (default: the catalogue's, `ceiling.max_share` in settings/scoring.yaml). Above it the rule is
    held back (flows87/pipeline/rules/ceiling.py)."""
    rank_by: str | None = None
    """How strongly a hit matches, higher is stronger: an evidence column (account and
    transaction rules) or an evidence field of the pattern instance (graph rules). Above the
    ceiling, only the hits ranked above the cut are kept (the threshold raised on this value);
    a rule without one is held back whole."""
    summary: str = Field(min_length=5)
    falsepositives: list[str] = Field(min_length=1)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @field_validator("params")
    @classmethod
    def _param_names(cls, v: dict[str, Param]) -> dict[str, Param]:
        for name in v:
            if not name.isidentifier():
                raise ValueError(f"parameter name {name!r} is not an identifier")
        return v

    @model_validator(mode="after")
    def _scope_fields(self) -> Rule:
        need: dict[str, tuple[str, ...]] = {
            "account": ("window", "condition"),
            "transaction": ("window", "condition", "subject"),
            "graph": ("pattern",),
        }
        for name in need[self.scope]:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.scope} rule needs '{name}'")
        if self.scope != "transaction" and (self.subject or self.having):
            raise ValueError("'subject' and 'having' belong to transaction rules only")
        if self.scope != "graph" and self.pattern:
            raise ValueError("'pattern' belongs to graph rules only")
        if self.scope != "account" and any(p.percentile is not None for p in self.params.values()):
            raise ValueError("percentile parameters belong to account rules only")
        return self

    @property
    def score(self) -> float:
        return SEVERITY_SCORE[self.severity]

    def values(self, overrides: dict[str, float] | None = None) -> dict[str, float]:
        """Parameter values: defaults, with overrides checked against each range."""
        out: dict[str, float] = {k: p.default for k, p in self.params.items()}
        for k, v in (overrides or {}).items():
            if k not in self.params:
                raise ValueError(f"rule {self.id} has no parameter {k!r}")
            out[k] = self.params[k].check(v, f"parameter {k}")
        return {k: int(v) if self.params[k].type == "int" else float(v) for k, v in out.items()}

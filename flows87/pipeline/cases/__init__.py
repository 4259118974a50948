"""Cases: signals combined into account risk, grouped into ranked, explained cases."""

from flows87.pipeline.cases.build import CASE_SCHEMA, Cases, build, case_id
from flows87.pipeline.cases.scoring import (
    ScoringSettings,
    account_risk,
    links,
    load_settings,
    spread_parties,
    with_parties,
)

__all__ = [
    "CASE_SCHEMA",
    "Cases",
    "ScoringSettings",
    "account_risk",
    "build",
    "case_id",
    "links",
    "load_settings",
    "spread_parties",
    "with_parties",
]

"""Feature settings, read from `rules/settings/features.yaml` and validated at the edge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows87 import catalogue
from flows87.settings import load_yaml_model
from flows87.windows import parse_duration

RULES_DIR = catalogue.rules_dir()
"""The bundled rules (flows87.catalogue: the wheel's copy, or the checkout's rules/)."""
DEFAULT_SETTINGS = RULES_DIR / "settings" / "features.yaml"

McCode = int | Annotated[list[int], Field(min_length=2, max_length=2)]


class FeatureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[str] = Field(default_factory=lambda: ["7d", "30d"], min_length=1)
    night_start_hour: int = Field(22, ge=0, le=23)
    night_end_hour: int = Field(5, ge=0, le=23)
    reporting_threshold: float = Field(10_000, gt=0)
    near_threshold_band: float = Field(0.10, gt=0, lt=1)
    round_amount_unit: float = Field(100, gt=0)
    mcc_groups: dict[str, list[McCode]] = Field(default_factory=dict)
    high_risk_countries: list[str] = Field(default_factory=list)

    @field_validator("windows")
    @classmethod
    def _windows_parse(cls, v: list[str]) -> list[str]:
        for w in v:
            parse_duration(w)
        return v

    def window_deltas(self) -> dict[str, timedelta]:
        return {w: parse_duration(w) for w in self.windows}

    def mcc_codes(self, group: str) -> list[str]:
        """Every 4-digit MCC text of a group (ranges expanded), for `is_in` on the mcc column."""
        codes: set[int] = set()
        for item in self.mcc_groups.get(group, []):
            if isinstance(item, list):
                codes.update(range(item[0], item[1] + 1))
            else:
                codes.add(item)
        return sorted(f"{c:04d}" for c in codes)


def load_settings(path: str | Path | None = None) -> FeatureSettings:
    return load_yaml_model(path or DEFAULT_SETTINGS, FeatureSettings, "feature settings")

"""The settings of one run, in one serialisable object (CLI options and Airflow params map onto it)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flows87.pipeline.features import RULES_DIR


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules_dir: Path = RULES_DIR
    feature_settings: Path | None = None
    """Default: <rules_dir>/settings/features.yaml."""
    detector_settings: Path | None = None
    scoring_settings: Path | None = None
    windows: list[str] | None = None
    """Override the feature windows of the settings file (rule windows are always added)."""
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    select_interval: bool = False
    """Keep only the interval's rows of a larger input (scheduled runs); otherwise rows outside
    the interval are quarantined as suspect dates."""
    base_currency: str = "USD"
    format: str | None = None
    max_failed_fraction: float = Field(0.01, ge=0, le=1)
    max_reject_fraction: float = Field(0.05, ge=0, le=1)
    alert_budget: float = Field(0.01, gt=0, le=1)
    rule_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _interval(self) -> RunConfig:
        if (self.interval_start is None) != (self.interval_end is None):
            raise ValueError("give both interval_start and interval_end, or neither")
        if self.interval_start and self.interval_end and self.interval_end <= self.interval_start:
            raise ValueError("interval_end must be after interval_start")
        return self

    def settings_path(self, name: str) -> Path:
        explicit = {
            "features": self.feature_settings,
            "detectors": self.detector_settings,
            "scoring": self.scoring_settings,
        }.get(name)
        return explicit or Path(self.rules_dir) / "settings" / f"{name}.yaml"

    def interval_params(self) -> dict[str, str]:
        if self.interval_start is None or self.interval_end is None:
            return {}
        return {
            "interval_start": self.interval_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
        }

    def as_params(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

"""Feedback settings, read from `rules/settings/feedback.yaml` and validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flows87.pipeline.features import RULES_DIR
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = RULES_DIR / "settings" / "feedback.yaml"


class FeedbackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: Literal["week", "month"] = "week"
    trend_slope: float = Field(0.05, gt=0, le=1)
    """Precision per period from which a trend is rising or falling, not steady."""
    trend_min_periods: int = Field(3, ge=2)
    min_false_positives: int = Field(10, ge=1)
    """False-positive hits a rule needs before its false positives are looked at for a cluster."""
    min_reported: int = Field(3, ge=1)
    """Reported hits it needs too: a threshold cannot keep reports it has never seen."""
    keep_reported: float = Field(0.9, gt=0, le=1)
    """Least share of the rule's reported hits a suggested threshold keeps."""
    min_removed: float = Field(0.5, gt=0, le=1)
    """Least share of its false positives a threshold removes to be suggested."""
    top_features: int = Field(3, ge=1, le=20)


def load_settings(path: str | Path | None = None) -> FeedbackSettings:
    return load_yaml_model(path or DEFAULT_SETTINGS, FeedbackSettings, "feedback settings")

"""Resolution settings, read from `rules/settings/resolution.yaml` and validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows87.pipeline.features import RULES_DIR
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = RULES_DIR / "settings" / "resolution.yaml"


class ResolutionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Literal["reports", "always", "never"] = "reports"
    """reports: only when the reader gave party records (goAML: one per holder, counterparty
    and signatory, from many reports and banks); always: also from the accounts' own holder
    columns (a bank's customer file with duplicates); never: keep the input's party ids."""
    threshold: float = Field(0.95, gt=0, lt=1)
    review_from: float = Field(0.5, gt=0, lt=1)
    seed: int = 87
    u_max_pairs: float = Field(5e6, ge=1e3)
    em_record_sample: float = Field(0.2, gt=0, le=1)
    em_max_pairs: float = Field(2e6, ge=1e3)
    em_min_pairs: float = Field(200, ge=0)
    prior_match: float = Field(1e-5, gt=0, lt=1)
    name_similarity: list[float] = Field(default_factory=lambda: [0.95, 0.90, 0.82])
    address_similarity: list[float] = Field(default_factory=lambda: [0.93, 0.82])
    id_edit_distance: int = Field(1, ge=0, le=3)
    birth_date_close_days: int = Field(31, ge=0)
    legal_forms: list[str] = Field(default_factory=list)

    @field_validator("name_similarity", "address_similarity")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < x < 1 for x in v) or v != sorted(v, reverse=True):
            raise ValueError("similarity levels must be in (0, 1), highest first")
        return v

    @field_validator("legal_forms")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return sorted({x.strip().lower() for x in v if x.strip()})

    @model_validator(mode="after")
    def _band(self) -> ResolutionSettings:
        if self.review_from >= self.threshold:
            raise ValueError("review_from must be below threshold")
        return self


def load_settings(path: str | Path | None = None) -> ResolutionSettings:
    return load_yaml_model(path or DEFAULT_SETTINGS, ResolutionSettings, "resolution settings")

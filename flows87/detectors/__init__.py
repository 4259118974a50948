"""Anomaly detectors: a PyOD ensemble over account features, explained per account."""

from flows87.detectors.ensemble import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    EnsembleResult,
    ModelSpec,
    load_settings,
    score,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "DetectorSettings",
    "EnsembleResult",
    "ModelSpec",
    "load_settings",
    "score",
]

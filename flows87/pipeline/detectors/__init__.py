"""Anomaly detectors: a PyOD ensemble over account features, explained per account."""

from flows87.pipeline.detectors.ensemble import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    EnsembleResult,
    Fitted,
    ModelSpec,
    RankingSettings,
    anomaly_risk,
    columns,
    combine,
    combine_matrix,
    fit,
    fit_matrix,
    load_settings,
    matrix,
    raw_scores,
    score,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "DetectorSettings",
    "EnsembleResult",
    "Fitted",
    "ModelSpec",
    "RankingSettings",
    "anomaly_risk",
    "columns",
    "combine",
    "combine_matrix",
    "fit",
    "fit_matrix",
    "load_settings",
    "matrix",
    "raw_scores",
    "score",
]

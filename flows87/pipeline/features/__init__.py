"""Per-account windowed features: the vocabulary of the rules and the input of the detectors."""

from flows87.pipeline.features.compute import compute, missing_inputs
from flows87.pipeline.features.registry import BY_NAME, FEATURES, NUMERIC, Feature, as_markdown
from flows87.pipeline.features.settings import (
    DEFAULT_SETTINGS,
    RULES_DIR,
    FeatureSettings,
    load_settings,
)

__all__ = [
    "BY_NAME",
    "DEFAULT_SETTINGS",
    "FEATURES",
    "NUMERIC",
    "RULES_DIR",
    "Feature",
    "FeatureSettings",
    "as_markdown",
    "compute",
    "load_settings",
    "missing_inputs",
]

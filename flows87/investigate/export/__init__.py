"""Exports of a case: a goAML STR report (XML, validated against the FIU's XSD) and CSV."""

from flows87.investigate.export.csv import transactions_csv, write_transactions_csv
from flows87.investigate.export.goaml import (
    GoamlValidationError,
    build_report,
    export_goaml,
    validate_report,
)
from flows87.investigate.export.goaml_settings import (
    ENV_SETTINGS,
    ENV_XSD,
    EXAMPLE_SETTINGS,
    GoamlNotConfigured,
    GoamlSettings,
    load_goaml_settings,
)
from flows87.investigate.export.refusal import export_refusal

__all__ = [
    "ENV_SETTINGS",
    "ENV_XSD",
    "EXAMPLE_SETTINGS",
    "GoamlNotConfigured",
    "GoamlSettings",
    "GoamlValidationError",
    "build_report",
    "export_goaml",
    "export_refusal",
    "load_goaml_settings",
    "transactions_csv",
    "validate_report",
    "write_transactions_csv",
]

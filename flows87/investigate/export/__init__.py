"""Exports of a case: a goAML STR report (XML, validated against the FIU's XSD) and CSV."""

from flows87.investigate.export.csv import transactions_csv, write_transactions_csv
from flows87.investigate.export.goaml import (
    GoamlSettings,
    GoamlValidationError,
    build_report,
    export_goaml,
    load_goaml_settings,
    validate_report,
)

__all__ = [
    "GoamlSettings",
    "GoamlValidationError",
    "build_report",
    "export_goaml",
    "load_goaml_settings",
    "transactions_csv",
    "validate_report",
    "write_transactions_csv",
]

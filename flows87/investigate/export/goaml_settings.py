"""The reporting entity's goAML settings and the FIU's XSD: where they come from, and the
refusal to export until an FIU has configured them.

There is no fallback: an STR names the reporting entity and its MLRO, so a report sent with the
bundled example's placeholders (rentity_id 1, mlro@example.org, "1 Example Street") would reach
the FIU under a wrong name. The settings come from `--settings` or $FLOWS87_GOAML_SETTINGS; the
XSD from the caller, the settings' `schema` (relative to the settings file) or $FLOWS87_GOAML_XSD.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from flows87.errors import ConfigError
from flows87.settings import load_yaml_model

EXAMPLE_SETTINGS = Path(__file__).resolve().parent / "goaml.example.yaml"
ENV_SETTINGS = "FLOWS87_GOAML_SETTINGS"
ENV_XSD = "FLOWS87_GOAML_XSD"
DOC = "docs/goaml-export.md"

# The example file's placeholder values: one of them left in a settings file means the FIU has
# not configured its reporting entity yet.
PLACEHOLDER_TEXT = {
    "reporting_person.email": ("@example.org", "@example.com", "@example.net"),
    "location.address": ("example street",),
    "location.city": ("example city",),
    "institution_name": ("example bank",),
    "institution_code": ("exmpl",),
    "swift": ("exmpl",),
}


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: str
    last_name: str
    email: str | None = None
    occupation: str | None = None


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address_type: str
    address: str
    town: str | None = None
    city: str
    zip: str | None = None
    country_code: str
    state: str | None = None


class GoamlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_path: str | None = Field(None, alias="schema")
    rentity_id: int = Field(ge=1)
    rentity_branch: str = Field(min_length=1)
    submission_code: str = "E"
    report_code: str = "STR"
    currency_code_local: str
    entity_reference_prefix: str = ""
    reporting_person: Person
    location: Address
    institution_name: str
    institution_code: str | None = None
    swift: str | None = None
    default_country: str
    funds_code: str = "K"
    funds_codes: dict[str, str] = Field(default_factory=dict)
    transmode_code: str = "-"
    transmode_codes: dict[str, str] = Field(default_factory=dict)
    default_indicators: list[str] = Field(default_factory=lambda: ["-"], min_length=1)
    indicators: dict[str, list[str]] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file these settings were read from (None: built in code)."""
        return self._source


class GoamlNotConfigured(ConfigError):
    """No reporting entity or no XSD configured, or the example's placeholders still in use."""


def _not_configured(reason: str, file: str | Path | None = None) -> GoamlNotConfigured:
    return GoamlNotConfigured(
        f"goAML export is not configured: {reason}",
        file=file,
        hint=(
            f"set {ENV_SETTINGS} to your reporting entity's settings (YAML) or pass --settings; "
            f"start from a copy of the example {EXAMPLE_SETTINGS} (see {DOC})"
        ),
    )


def placeholders(settings: GoamlSettings) -> list[str]:
    """The fields that still hold the example file's placeholder values."""
    found = []
    for field, needles in PLACEHOLDER_TEXT.items():
        value: object = settings
        for part in field.split("."):
            value = getattr(value, part)
        if isinstance(value, str) and any(n in value.lower() for n in needles):
            found.append(f"{field}={value!r}")
    if found and settings.rentity_id == 1:
        found.insert(0, "rentity_id=1")
    return found


def load_goaml_settings(path: str | Path | None = None) -> GoamlSettings:
    """The settings file given, else $FLOWS87_GOAML_SETTINGS; GoamlNotConfigured when neither is
    set or the file still holds the example's placeholders."""
    chosen = path or os.environ.get(ENV_SETTINGS)
    if not chosen:
        raise _not_configured(f"no reporting-entity settings ({ENV_SETTINGS} is not set)")
    file = Path(chosen).expanduser()
    if not file.exists():
        raise _not_configured("the settings file does not exist", file)
    settings = load_yaml_model(file, GoamlSettings, "goAML settings")
    left = placeholders(settings)
    if left:
        raise _not_configured(
            "the reporting entity still has the example's placeholder values ("
            + ", ".join(left)
            + ")",
            file,
        )
    settings._source = file.resolve()
    return settings


def resolve_xsd(xsd: str | Path | None, settings: GoamlSettings) -> Path | None:
    """The XSD to validate against: `xsd`, else the settings' `schema` (relative to the settings
    file), else $FLOWS87_GOAML_XSD; None when none is configured."""
    if xsd:
        path = Path(xsd).expanduser()
    elif settings.schema_path:
        path = Path(settings.schema_path).expanduser()
        if not path.is_absolute() and settings.source is not None:
            path = settings.source.parent / path
    elif os.environ.get(ENV_XSD):
        path = Path(os.environ[ENV_XSD]).expanduser()
    else:
        return None
    if not path.is_file():
        raise ConfigError("goAML schema (XSD) not found", file=path)
    return path.resolve()


def require_xsd(xsd: str | Path | None, settings: GoamlSettings) -> Path:
    """The XSD to validate against, or GoamlNotConfigured saying how to configure one (or how
    to export without validating, which the audit log then records)."""
    path = resolve_xsd(xsd, settings)
    if path is None:
        raise GoamlNotConfigured(
            "goAML export is not configured: no XSD to validate the report against",
            hint=(
                f"set {ENV_XSD} to the FIU's goAML schema, or `schema` in the settings file, or "
                "pass --xsd; to export without validation pass --no-validate (validate=False), "
                f"which the audit log records (see {DOC})"
            ),
        )
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

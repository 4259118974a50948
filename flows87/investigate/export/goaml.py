"""A case as a goAML suspicious transaction report (STR), schema 5.x.

`export_goaml(session, case_id)` builds the XML from the case store (the case's summary and
closing reason as the report's reason, its transactions with `t_from`/`t_to` account parties,
report indicators from its typologies) with the reporting entity's settings (a YAML file, see
goaml.yaml beside this module), and validates it against the FIU's XSD when one is configured
(`schema` in the settings, FLOWS87_GOAML_XSD, or the `xsd` argument). A report that does not
validate is refused with every violation listed (GoamlValidationError).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from flows87.errors import ConfigError
from flows87.investigate.store import audit
from flows87.investigate.store.errors import StoreError
from flows87.investigate.store.models import User
from flows87.investigate.store.queries import case_detail
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = Path(__file__).resolve().parent / "goaml.yaml"
ENV_SETTINGS = "FLOWS87_GOAML_SETTINGS"
ENV_XSD = "FLOWS87_GOAML_XSD"
MAX_COMMENT = 8000
_COUNTRY = re.compile(r"^[A-Z]{2}$")


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
    action: str | None = None
    funds_code: str = "K"
    funds_codes: dict[str, str] = Field(default_factory=dict)
    transmode_code: str = "-"
    transmode_codes: dict[str, str] = Field(default_factory=dict)
    default_indicators: list[str] = Field(default_factory=lambda: ["-"], min_length=1)
    indicators: dict[str, list[str]] = Field(default_factory=dict)


def load_goaml_settings(path: str | Path | None = None) -> GoamlSettings:
    """The settings file given, else FLOWS87_GOAML_SETTINGS, else the bundled example."""
    path = path or os.environ.get(ENV_SETTINGS) or DEFAULT_SETTINGS
    return load_yaml_model(path, GoamlSettings, "goAML settings")


class GoamlValidationError(StoreError):
    """The report does not validate against the XSD; `violations` lists every problem."""

    def __init__(self, violations: list[str], xsd: str | Path) -> None:
        self.violations = violations
        shown = "\n  ".join(violations[:25])
        more = f"\n  ... and {len(violations) - 25} more" if len(violations) > 25 else ""
        super().__init__(
            f"the goAML report does not validate against {xsd} "
            f"({len(violations)} violation{'s' if len(violations) != 1 else ''}):\n  {shown}{more}"
        )


@lru_cache(maxsize=4)
def _schema(path: str) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(path))
    except OSError as exc:
        raise ConfigError(f"cannot read the goAML schema: {exc}", file=path) from None
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigError(
            f"lxml cannot load this schema: {exc}",
            file=path,
            hint="an XSD 1.1 schema with assertions needs the `xmlschema` package",
        ) from None


def validate_report(xml: bytes | etree._Element, xsd: str | Path) -> list[str]:
    """Every violation of the XSD, as 'line N: element ...: message' (empty list = valid)."""
    doc = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    schema = _schema(str(Path(xsd).resolve()))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def resolve_xsd(xsd: str | Path | None, settings: GoamlSettings) -> Path | None:
    value = xsd or settings.schema_path or os.environ.get(ENV_XSD)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError("goAML schema (XSD) not found", file=path)
    return path


def _date(ts: datetime | None) -> str:
    ts = (ts or datetime.now(UTC)).astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def _sub(parent: etree._Element, tag: str, text: Any = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _clip(text: str, n: int = MAX_COMMENT) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _country(value: str | None, settings: GoamlSettings) -> str:
    return value if value and _COUNTRY.match(value) else settings.default_country


def _account(
    parent: etree._Element,
    tag: str,
    account: str,
    info: dict | None,
    s: GoamlSettings,
    currency: str | None,
) -> None:
    el = _sub(parent, tag)
    _sub(el, "institution_name", s.institution_name)
    if s.swift and not s.institution_code:
        _sub(el, "swift", s.swift)
    else:
        code = (info or {}).get("bank_id") or s.institution_code or "-"
        _sub(el, "institution_code", code)
    _sub(el, "account", account)
    if currency:
        _sub(el, "currency_code", currency)
    if info and info.get("name"):
        _sub(el, "account_name", _clip(str(info["name"]), 255))


def build_report(
    detail: dict[str, Any],
    settings: GoamlSettings,
    *,
    submission_date: datetime | None = None,
) -> etree._Element:
    """The `report` element for a case (`detail` = flows87.investigate.store.case_detail(...))."""
    s = settings
    case = detail["case"]
    accounts = {a["account_id"]: a for a in detail["accounts"]}
    txns = [
        t
        for t in detail["transactions"]
        if t.get("ts") is not None and (t.get("amount_base") or t.get("amount")) is not None
    ]
    if not txns:
        raise StoreError(
            f"case {case['case_id']} has no transactions with amount and time to report"
        )
    root = etree.Element("report")
    _sub(root, "rentity_id", s.rentity_id)
    _sub(root, "rentity_branch", s.rentity_branch)
    _sub(root, "submission_code", s.submission_code)
    _sub(root, "report_code", s.report_code)
    _sub(root, "entity_reference", _clip(f"{s.entity_reference_prefix}{case['case_id']}", 255))
    _sub(root, "submission_date", _date(submission_date))
    _sub(root, "currency_code_local", s.currency_code_local)
    person = _sub(root, "reporting_person")
    _sub(person, "first_name", s.reporting_person.first_name)
    _sub(person, "last_name", s.reporting_person.last_name)
    if s.reporting_person.email:
        _sub(person, "email", s.reporting_person.email)
    if s.reporting_person.occupation:
        _sub(person, "occupation", s.reporting_person.occupation)
    loc = _sub(root, "location")
    a = s.location
    _sub(loc, "address_type", a.address_type)
    _sub(loc, "address", a.address)
    if a.town:
        _sub(loc, "town", a.town)
    _sub(loc, "city", a.city)
    if a.zip:
        _sub(loc, "zip", a.zip)
    _sub(loc, "country_code", a.country_code)
    if a.state:
        _sub(loc, "state", a.state)
    reason = [f"flows87 case {case['case_id']} (risk score {case['risk_score']:.3f})."]
    if case.get("close_reason"):
        reason.append(f"Investigator's reason: {case['close_reason']}")
    reason.append(case.get("summary") or "")
    _sub(root, "reason", _clip("\n".join(reason)))
    if s.action:
        _sub(root, "action", _clip(s.action))
    for t in txns:
        tx = _sub(root, "transaction")
        _sub(tx, "transactionnumber", t["txn_id"][:100])
        _sub(tx, "internal_ref_number", case["case_id"][:100])
        _sub(
            tx,
            "transaction_location",
            (t.get("location_id") or t.get("channel") or "unknown")[:255],
        )
        desc = " ".join(x for x in (t.get("channel"), t.get("memo")) if x) or "transfer"
        _sub(tx, "transaction_description", _clip(desc))
        _sub(tx, "date_transaction", _date(t["ts"]))
        channel = t.get("channel") or ""
        _sub(tx, "transmode_code", s.transmode_codes.get(channel, s.transmode_code))
        amount = t.get("amount_base") if t.get("amount_base") is not None else t["amount"]
        _sub(tx, "amount_local", f"{float(amount):.2f}")
        funds = s.funds_codes.get(channel, s.funds_code)
        for side, end in (("from", "src"), ("to", "dst")):  # t_from, then t_to
            party = _sub(tx, f"t_{side}")
            _sub(party, f"{side}_funds_code", funds)
            account = t.get(f"{end}_account")
            _account(
                party,
                f"{side}_account",
                account or "-",
                accounts.get(account),
                s,
                t.get("currency"),
            )
            _sub(party, f"{side}_country", _country(t.get(f"{end}_country"), s))
    indicators: list[str] = []
    for typ in case.get("typologies") or []:
        for code in s.indicators.get(typ, []):
            if code not in indicators:
                indicators.append(code)
    ind = _sub(root, "report_indicators")
    for code in indicators or s.default_indicators:
        _sub(ind, "indicator", code)
    return root


def export_goaml(
    session: Session,
    case_id: str,
    *,
    settings: GoamlSettings | None = None,
    xsd: str | Path | None = None,
    validate: bool = True,
    actor: User | str | None = None,
    submission_date: datetime | None = None,
) -> tuple[bytes, Path | None]:
    """The report's XML bytes and the XSD it was validated against (None: no schema
    configured). Raises GoamlValidationError listing every violation. With `actor`, the
    export is written to the audit log."""
    settings = settings or load_goaml_settings()
    detail = case_detail(session, case_id, audit_limit=1)
    root = build_report(detail, settings, submission_date=submission_date)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    schema = resolve_xsd(xsd, settings) if validate else None
    if schema is not None:
        violations = validate_report(xml, schema)
        if violations:
            raise GoamlValidationError(violations, schema)
    if actor is not None:
        audit.record(
            session,
            actor,
            "case.exported_goaml",
            "case",
            case_id,
            {},
            {
                "transactions": len(root.findall("transaction")),
                "validated_with": str(schema) if schema else None,
            },
        )
    return xml, schema

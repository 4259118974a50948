"""A case as a goAML suspicious transaction report (STR), schema 5.x.

`export_goaml(session, case_id, actor=...)` checks who may export the case (export_refusal),
builds the XML from the case store (the closing reason and the notes as the report's narrative,
its transactions with `t_from`/`t_to` account parties, report indicators from its typologies)
with the reporting entity's settings (goaml_settings: no export until an FIU configured them),
validates it against the FIU's XSD (on by default: no XSD configured is a refusal unless the
caller passes validate=False), and writes the export to the audit log: the report's sha256, the
XSD and its sha256, the settings file, whether it was validated and on whose authority.
A report that does not validate is refused with every violation listed (GoamlValidationError).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from flows87.errors import ConfigError
from flows87.investigate.export.goaml_settings import (
    GoamlSettings,
    file_sha256,
    load_goaml_settings,
    require_xsd,
)
from flows87.investigate.export.narrative import clip, report_action, report_reason, xml_text
from flows87.investigate.export.refusal import export_basis, export_refusal
from flows87.investigate.store import audit
from flows87.investigate.store.errors import PermissionDenied, StoreError
from flows87.investigate.store.models import User
from flows87.investigate.store.queries import case_detail

_COUNTRY = re.compile(r"^[A-Z]{2}$")


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
def _schema(digest: str, path: str) -> etree.XMLSchema:
    """The parsed XSD, cached by its content's sha256 (a replaced file is read again)."""
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
    path = Path(xsd).resolve()
    schema = _schema(file_sha256(path), str(path))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def _date(ts: datetime | None) -> str:
    ts = (ts or datetime.now(UTC)).astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def _sub(parent: etree._Element, tag: str, text: Any = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = xml_text(text)
    return el


def _clip(text: str, n: int) -> str:
    """A short field (a name, a reference) cut to `n` characters."""
    text = xml_text(text)
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
    _sub(root, "reason", report_reason(detail))
    action = report_action(detail)
    if action:
        _sub(root, "action", action)
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
        _sub(tx, "transaction_description", clip(desc))
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
    role: str | None = None,
    submission_date: datetime | None = None,
) -> tuple[bytes, Path | None]:
    """The report's XML bytes and the XSD it was validated against (None: validate=False).

    The acting user's role (`actor.role`, else `role`, else investigator) must be allowed to
    export the case (PermissionDenied with export_refusal's reason). Without `settings` they are
    loaded from $FLOWS87_GOAML_SETTINGS; with validation on, an XSD must be configured
    (GoamlNotConfigured otherwise) and the report must validate (GoamlValidationError). The
    export is written to the audit log."""
    role = actor.role if isinstance(actor, User) else (role or "investigator")
    refusal = export_refusal(session, case_id, role)
    if refusal is not None:
        raise PermissionDenied(refusal)
    settings = settings or load_goaml_settings()
    schema = require_xsd(xsd, settings) if validate else None
    detail = case_detail(session, case_id, audit_limit=1)
    root = build_report(detail, settings, submission_date=submission_date)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if schema is not None:
        violations = validate_report(xml, schema)
        if violations:
            raise GoamlValidationError(violations, schema)
    audit.record(
        session,
        actor,
        "case.exported_goaml",
        "case",
        case_id,
        {},
        {
            "transactions": len(root.findall("transaction")),
            "report_sha256": hashlib.sha256(xml).hexdigest(),
            "validated": schema is not None,
            "validated_against": str(schema) if schema else None,
            "xsd_sha256": file_sha256(schema) if schema else None,
            "settings_file": str(settings.source) if settings.source else None,
            "role": role,
            "basis": export_basis(session, case_id, role),
        },
    )
    return xml, schema

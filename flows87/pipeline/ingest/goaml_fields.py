"""goAML elements as flat records: field parsers, persons, entities, accounts, channels.

The parsers follow the XSD's lexical forms (`sql_date` is an xs:dateTime, `sql_decimal` an
xs:decimal) so that what validates also parses; a value that does not parse raises
`FieldError` naming the element, so the transaction becomes a reject with its XPath.
Party attributes are lenient: a person's unreadable birth date is left null rather than
losing the transaction that names the person.
"""

from __future__ import annotations

import functools
import os
import re
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from flows87.errors import ConfigError
from flows87.schema import CHANNELS

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATETIME = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


class FieldError(ValueError):
    """A value that does not parse: `tag` is the element (relative to the transaction)."""

    def __init__(self, tag: str, value: str | None, reason: str) -> None:
        self.tag, self.value, self.reason = tag, value, reason
        super().__init__(f"{tag}: {reason}")


def parse_amount(text: str) -> float:
    """An xs:decimal (`-12.50`, `9000`, `.5`; no exponent, no thousands separator)."""
    value = text.strip()
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"not a decimal number like 9500.00: {text!r}")
    return float(value)


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime as UTC; without a zone it is taken as UTC (as the other readers do)."""
    value = text.strip()
    if not _DATETIME.fullmatch(value):
        raise ValueError(f"not a date and time like 2024-03-01T10:15:00: {text!r}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a valid date and time: {text!r} ({exc})") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def parse_date(text: str | None) -> date | None:
    """The date of an xs:dateTime (birth dates, opening dates); null when it does not parse."""
    if not text:
        return None
    try:
        return parse_datetime(text).date()
    except ValueError:
        return None


def text_of(el: etree._Element | None, path: str) -> str | None:
    """The stripped text at `path` under `el`, None when absent or empty."""
    if el is None:
        return None
    found = el.findtext(path)
    if found is None:
        return None
    found = found.strip()
    return found or None


def required(el: etree._Element, path: str) -> str:
    value = text_of(el, path)
    if value is None:
        raise FieldError(path, None, f"missing {path}")
    return value


def _join(*parts: str | None, sep: str = " ") -> str | None:
    kept = [p for p in parts if p]
    return sep.join(kept) if kept else None


def phone(el: etree._Element) -> str | None:
    """The first phone as written: `+<country prefix> <number>`."""
    ph = el.find("phones/phone")
    if ph is None:
        return None
    prefix = text_of(ph, "tph_country_prefix")
    if prefix and prefix != "-" and not prefix.startswith("+"):
        prefix = "+" + prefix
    return _join(prefix if prefix != "-" else None, text_of(ph, "tph_number"))


def address(el: etree._Element) -> tuple[str | None, str | None]:
    """The first address on one line, and its country."""
    a = el.find("addresses/address")
    if a is None:
        return None, None
    street = _join(text_of(a, "address"), text_of(a, "house_number"))
    place = _join(text_of(a, "zip"), text_of(a, "city"))
    line = _join(street, text_of(a, "town"), place, text_of(a, "state"), sep=", ")
    country = text_of(a, "country_code")
    return _join(line, country, sep=", "), country


def email(el: etree._Element) -> str | None:
    return text_of(el, "email") or text_of(el, "emails/email")


def person(el: etree._Element) -> dict[str, Any]:
    """A `t_person` (or `_my_client`) as a party record's attributes."""
    first, last = text_of(el, "first_name"), text_of(el, "last_name")
    ident = el.find("identification")
    if ident is None:
        ident = el.find("identifications/identification")
    ids = (
        (text_of(el, "passport_number"), "passport"),
        (text_of(el, "id_number"), "national_id"),
        (text_of(ident, "number"), f"identification:{text_of(ident, 'type') or '-'}"),
        (text_of(el, "ssn"), "ssn"),
        (text_of(el, "tax_number"), "tax_number"),
    )
    number, kind = next(((n, k) for n, k in ids if n and n != "-"), (None, None))
    line, country = address(el)
    return {
        "kind": "person",
        "name": _join(first, text_of(el, "middle_name"), last),
        "first_name": first,
        "last_name": last,
        "birth_date": parse_date(text_of(el, "birthdate")),
        "id_number": number,
        "id_type": kind,
        "nationality": text_of(el, "nationality1"),
        "phone": phone(el),
        "email": email(el),
        "address": line,
        "country": country or text_of(el, "residence"),
        "occupation": text_of(el, "occupation"),
        "business_type": None,
    }


def entity(el: etree._Element) -> dict[str, Any]:
    """A `t_entity` (or `_my_client`) as a party record's attributes."""
    ids = (
        (text_of(el, "incorporation_number"), "incorporation_number"),
        (text_of(el, "tax_number"), "tax_number"),
        (text_of(el, "entity_identifications/entity_identifier/number"), "identification"),
    )
    number, kind = next(((n, k) for n, k in ids if n and n != "-"), (None, None))
    line, country = address(el)
    home = text_of(el, "incorporation_country_code")
    return {
        "kind": "entity",
        "name": text_of(el, "name") or text_of(el, "commercial_name"),
        "first_name": None,
        "last_name": None,
        "birth_date": None,
        "id_number": number,
        "id_type": kind,
        "nationality": home,
        "phone": phone(el),
        "email": email(el),
        "address": line,
        "country": country or home,
        "occupation": None,
        "business_type": text_of(el, "business"),
    }


def account(el: etree._Element) -> dict[str, Any]:
    """A `t_account` (or `_my_client`): its id is the institution's code and the number."""
    bank = text_of(el, "institution_code") or text_of(el, "swift")
    number = text_of(el, "account")
    if bank is None:
        raise FieldError(f"{el.tag}/institution_code", None, "missing institution_code/swift")
    if number is None:
        raise FieldError(f"{el.tag}/account", None, "missing account number")
    opened = parse_date(text_of(el, "opened"))
    return {
        "account_id": f"{bank}:{number}",
        "bank_id": bank,
        "account_number": number,
        "iban": text_of(el, "iban"),
        "currency": text_of(el, "currency_code"),
        "account_name": text_of(el, "account_name"),
        "institution_country": text_of(el, "institution_country"),
        "opened": opened,
    }


def walk_in_account(record: dict[str, Any]) -> str:
    """The pseudo-account of a person or entity that pays or receives without an account
    (cash at the counter): by identity number, else by name (and birth date)."""
    if record["id_number"]:
        return f"{record['kind']}:{record['id_number']}"
    name = (record["name"] or "?").lower()
    born = record["birth_date"].isoformat() if record["birth_date"] else ""
    return f"{record['kind']}:{name}|{born}" if born else f"{record['kind']}:{name}"


@functools.cache
def _codes(path: str | None) -> dict[str, dict[str, str]]:
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the goAML codes: {exc}", file=path) from None
    else:
        text = resources.files("flows87.pipeline.ingest").joinpath("goaml_codes.yaml").read_text()
    data = yaml.safe_load(text) or {}
    out: dict[str, dict[str, str]] = {}
    for key in ("transmode_codes", "funds_codes"):
        table = {str(k): str(v) for k, v in (data.get(key) or {}).items()}
        bad = sorted({v for v in table.values() if v not in (*CHANNELS, "cash")})
        if bad:
            raise ConfigError(
                f"{key}: unknown channels {bad}", file=path, hint=f"one of {', '.join(CHANNELS)}"
            )
        out[key] = table
    return out


def codes() -> dict[str, dict[str, str]]:
    """transmode and funds codes -> channel: goaml_codes.yaml, or $FLOWS87_GOAML_CODES."""
    return _codes(os.environ.get("FLOWS87_GOAML_CODES") or None)


def channel(
    transmode: str | None,
    funds: str | None,
    description: str | None,
    src_walk_in: bool,
    dst_walk_in: bool,
    same_bank: bool,
) -> str:
    """The canonical channel: the FIU's transmode code, else the channel word flows87's own
    export writes first in the description, else the funds code, else the shape (cash in from a
    person without an account, cash out to one, a transfer between banks)."""
    table = codes()
    found = table["transmode_codes"].get(transmode or "")
    if found is None and description:
        word = description.split(maxsplit=1)[0].lower()
        found = word if word in CHANNELS else None
    if found is None:
        found = table["funds_codes"].get(funds or "")
    if found == "cash" or found is None:
        if src_walk_in and not dst_walk_in:
            return "cash_deposit"
        if dst_walk_in and not src_walk_in:
            return "cash_withdrawal"
        if found == "cash":
            return "cash_deposit"
        return "other" if same_bank or src_walk_in else "wire"
    return found

"""One goAML report, streamed: its transactions, party records and accounts as plain rows.

`parse_report` runs lxml's `iterparse` over one report (a file or a zip member), with the
XSD as `schema=` when one is configured so validation happens while streaming, and handles
each `transaction` and `activity` as soon as it ends, then clears it: memory follows the
largest transaction, not the file. A report's rows are kept only when the whole report
parsed (and validated); otherwise the report is one reject naming the file, the XPath of the
first problem and the reason. A transaction whose own fields do not parse is one reject (its
XPath, value and reason) and the rest of the report reads on.

Record ids follow the contract with entity resolution and the synthetic writer:
`<file>#<transactionnumber>#from|to` for the side's person or entity (or the account's
entity), `<file>#<transactionnumber>#signatory-N` for the signatories of the transaction's
accounts, numbered 1.. in document order (the from side's first), and
`<file>#activity#<n>` for the n-th party of an activity report (its account's signatories
`<file>#activity#<n>#signatory-M`), and an entity's directors `<its id>-director-N` beside a
transaction's side (`...#from-director-1`), `<its id>#director` (`#director-2`, ...) elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import polars as pl
from lxml import etree

from flows87.pipeline.ingest import goaml_fields as f
from flows87.pipeline.ingest.goaml_schema import ACCOUNT_SCHEMA, PARTY_SCHEMA, TX_SCHEMA

HEADER = ("rentity_id", "report_code", "entity_reference", "currency_code_local")
DATES = ("submission_date", "report_date")
TAGS = ("report", "transaction", "activity", *HEADER, *DATES)
FLUSH = 5000
"""Transactions buffered as Python rows before they become a columnar frame."""


@dataclass
class Source:
    """A report to read: its name (relative path, or the zip member's) and how to open it."""

    name: str
    open: Callable[[], IO[bytes]]
    size: int


@dataclass
class Report:
    """The rows of one report."""

    source_file: str
    header: dict[str, Any] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    parties: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    n_transactions: int = 0
    chunks: dict[str, list[pl.DataFrame]] = field(default_factory=dict)

    def flush(self) -> None:
        """Rows so far into columnar frames: a dict per row costs ~1 kB, a frame row ~0.1 kB."""
        parties = [{**p, "source_file": self.source_file} for p in self.parties]
        for name, rows, schema in (
            ("transactions", self.transactions, TX_SCHEMA),
            ("parties", parties, PARTY_SCHEMA),
            ("accounts", self.accounts, ACCOUNT_SCHEMA),
        ):
            if rows:
                self.chunks.setdefault(name, []).append(pl.DataFrame(rows, schema=schema))
        self.transactions, self.parties, self.accounts = [], [], []

    def frames(self, name: str) -> list[pl.DataFrame]:
        """The report's rows of `transactions`, `parties` or `accounts` (at least one frame)."""
        self.flush()
        schema = {"transactions": TX_SCHEMA, "parties": PARTY_SCHEMA, "accounts": ACCOUNT_SCHEMA}
        return self.chunks.get(name) or [pl.DataFrame(schema=schema[name])]


class ReportError(Exception):
    """The report as a whole is unreadable: XPath of the problem, reason."""

    def __init__(self, xpath: str, reason: str, value: str | None = None) -> None:
        self.xpath, self.reason, self.value = xpath, reason, value
        super().__init__(f"{xpath}: {reason}")


def _parser(source: IO[bytes], schema: etree.XMLSchema | None) -> Any:
    # resolve_entities='internal': no external entities; and lxml 6 with schema= and
    # resolve_entities=False silently accepts a truncated file
    return etree.iterparse(
        source,
        events=("end",),
        tag=TAGS,
        schema=schema,
        resolve_entities="internal",
        huge_tree=True,
        remove_comments=True,
    )


def parse_report(src: Source, schema: etree.XMLSchema | None, max_dom: int) -> Report:
    """The report's rows; raises ReportError when it does not parse or validate."""
    report = Report(src.name)
    closed = False
    with src.open() as stream:
        events = _parser(stream, schema)
        try:
            for _, el in events:
                tag = el.tag
                parent = el.getparent()
                if tag == "report":
                    if parent is not None:
                        raise ReportError(_xpath(el), "a report inside a report")
                    closed = True
                elif parent is None or parent.tag != "report":
                    continue  # e.g. a report_party's own <reason>
                elif tag == "transaction":
                    report.n_transactions += 1
                    _transaction(el, report, report.n_transactions)
                    _drop(el)
                    if len(report.transactions) >= FLUSH:
                        report.flush()
                elif tag == "activity":
                    _activity(el, report)
                    _drop(el)
                else:
                    report.header[tag] = f.text_of(el, ".")
        except etree.XMLSyntaxError as exc:
            raise _located(exc, src, schema, max_dom) from None
    if not closed:  # defence in depth: the stream ended inside the report
        raise ReportError("/report", "the file ends before </report> (truncated?)")
    root = events.root
    if root is None or root.tag != "report":
        raise ReportError(f"/{getattr(root, 'tag', '')}", "the root element is not <report>")
    return report


def _drop(el: etree._Element) -> None:
    """Free a handled element and the siblings before it (iterparse keeps them otherwise)."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _xpath(el: etree._Element) -> str:
    return str(el.getroottree().getpath(el))


def _located(
    exc: etree.XMLSyntaxError, src: Source, schema: etree.XMLSchema | None, max_dom: int
) -> ReportError:
    """The problem with its XPath. Streaming validation errors carry no path, so a report that
    failed validation is validated once more as a tree (when no larger than `max_dom` bytes),
    whose errors do; a syntax error keeps its line and column."""
    entries = list(exc.error_log) or []
    first = entries[0] if entries else None
    if first is not None and first.domain_name == "SCHEMASV" and schema is not None:
        if src.size <= max_dom:
            try:
                with src.open() as stream:
                    doc = etree.parse(stream, etree.XMLParser(resolve_entities=False))
                if not schema.validate(doc):
                    errors = list(schema.error_log)
                    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                    e = errors[0]
                    return ReportError(
                        e.path or "/report",
                        f"does not validate against the XSD: {e.message}{more}",
                        json.dumps([f"{x.path}: {x.message}" for x in errors[:50]]),
                    )
            except etree.XMLSyntaxError:
                pass
        return ReportError("/report", f"does not validate against the XSD: {first.message}")
    line, column = exc.position if exc.position else (0, 0)
    message = first.message if first is not None else str(exc)
    return ReportError(
        f"/report (line {line}, column {column})" if line else "/report",
        f"not well-formed XML: {message}",
    )


def _side(tx: etree._Element, side: str) -> etree._Element | None:
    mine = tx.find(f"t_{side}_my_client")
    return mine if mine is not None else tx.find(f"t_{side}")


def _transaction(tx: etree._Element, report: Report, position: int) -> None:
    """One transaction's rows, or one reject when a field it needs does not parse."""
    number = f.text_of(tx, "transactionnumber") or f"#{position}"
    base = f"/report/transaction[{position}]"
    try:
        rows = _transaction_rows(tx, report, number)
    except f.FieldError as exc:
        report.rejects.append(
            {
                "table": "transactions",
                "source_file": report.source_file,
                "source_row": tx.sourceline,
                "column": f"{base}/{exc.tag}",
                "value": exc.value or "",
                "reason": exc.reason,
                "record": json.dumps({"transactionnumber": number, **_header(report)}),
            }
        )
        return
    txn, parties, accounts = rows
    report.transactions.append(txn)
    report.parties.extend(parties)
    report.accounts.extend(accounts)


def _header(report: Report) -> dict[str, Any]:
    return {k: report.header.get(k) for k in ("rentity_id", "report_code", "entity_reference")}


def _transaction_rows(
    tx: etree._Element, report: Report, number: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    prefix = f"{report.source_file}#{number}"
    when = f.required(tx, "date_transaction")
    try:
        ts = f.parse_datetime(when)
    except ValueError as exc:
        raise f.FieldError("date_transaction", when, str(exc)) from None
    raw_amount = f.required(tx, "amount_local")
    try:
        amount = f.parse_amount(raw_amount)
    except ValueError as exc:
        raise f.FieldError("amount_local", raw_amount, str(exc)) from None
    if tx.find("involved_parties") is not None:
        raise f.FieldError("involved_parties", None, "multi-party transaction: no payer/payee")
    parties: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    ends: dict[str, dict[str, Any]] = {}
    foreign: tuple[str, float] | None = None
    funds: str | None = None
    for side in ("from", "to"):
        el = _side(tx, side)
        if el is None:
            raise f.FieldError(f"t_{side}", None, f"missing t_{side} or t_{side}_my_client")
        country = f.text_of(el, f"{side}_country")
        funds = funds or f.text_of(el, f"{side}_funds_code")
        fx = el.find(f"{side}_foreign_currency")
        if fx is not None and foreign is None:
            code, value = f.text_of(fx, "foreign_currency_code"), f.text_of(fx, "foreign_amount")
            try:
                foreign = (code, f.parse_amount(value)) if code and value else None
            except ValueError as exc:
                raise f.FieldError(
                    f"t_{side}/{side}_foreign_currency/foreign_amount", value, str(exc)
                ) from None
        ends[side] = _party_side(el, side, prefix, country, parties, accounts)
    local = report.header.get("currency_code_local")
    if local is None:
        raise f.FieldError("../currency_code_local", None, "the report has no currency_code_local")
    src, dst = ends["from"], ends["to"]
    chan = f.channel(
        f.text_of(tx, "transmode_code"),
        funds,
        f.text_of(tx, "transaction_description"),
        src["walk_in"],
        dst["walk_in"],
        src["bank_id"] is not None and src["bank_id"] == dst["bank_id"],
    )
    txn = {
        "source_file": report.source_file,
        "transactionnumber": number,
        "rentity_id": report.header.get("rentity_id"),
        "report_code": report.header.get("report_code"),
        "ts": ts,
        "src_account": src["account_id"],
        "dst_account": dst["account_id"],
        "amount_local": amount,
        "currency_local": local,
        "amount": foreign[1] if foreign else amount,
        "currency": foreign[0] if foreign else local,
        "channel": chan,
        "src_country": src["country"],
        "dst_country": dst["country"],
        "location_id": f.text_of(tx, "transaction_location"),
        "memo": f.text_of(tx, "transaction_description"),
        "source_row": tx.sourceline,
    }
    return txn, parties, accounts


def _party_side(
    el: etree._Element,
    side: str,
    prefix: str,
    country: str | None,
    parties: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The side's account (or a walk-in pseudo-account) with its holder's records."""
    acc_el = el.find(f"{side}_account")
    person_el = el.find(f"{side}_person")
    entity_el = el.find(f"{side}_entity")
    if acc_el is not None:
        try:
            acc = f.account(acc_el)
        except f.FieldError as exc:
            raise f.FieldError(f"{el.tag}/{exc.tag}", exc.value, exc.reason) from None
        n = sum(1 for p in parties if p["role"] == "signatory")
        _account_records(acc_el, acc, f"{prefix}#{side}", side, prefix, n, parties)
        accounts.append({**acc, "country": acc["institution_country"] or country})
        return {"account_id": acc["account_id"], "bank_id": acc["bank_id"],
                "country": country, "walk_in": False}  # fmt: skip
    holder = person_el if person_el is not None else entity_el
    if holder is None:
        raise f.FieldError(el.tag, None, f"no {side}_account, {side}_person or {side}_entity")
    record = f.person(holder) if holder is person_el else f.entity(holder)
    pseudo = f.walk_in_account(record)
    parties.append(_record(f"{prefix}#{side}", side, record, None, None, pseudo, holder=True))
    _directors(holder, f"{prefix}#{side}", None, None, pseudo, parties)
    accounts.append({"account_id": pseudo, "bank_id": None, "account_number": None,
                     "iban": None, "currency": None, "account_name": None,
                     "institution_country": None, "opened": None, "country": country})  # fmt: skip
    return {"account_id": pseudo, "bank_id": None, "country": country, "walk_in": True}


def _account_records(
    acc_el: etree._Element,
    acc: dict[str, Any],
    own_id: str,
    role: str,
    prefix: str,
    numbered: int,
    parties: list[dict[str, Any]],
) -> None:
    """The account's entity (record `own_id`) and signatories (`<prefix>#signatory-N`).

    The holder, whose attributes the accounts table takes, is the entity, else the primary
    signatory, else the first."""
    account_id, bank = acc["account_id"], acc["bank_id"]
    ent = acc_el.find("t_entity")
    if ent is not None:
        parties.append(
            _record(own_id, role, f.entity(ent), account_id, bank, account_id, holder=True)
        )
        _directors(ent, own_id, account_id, bank, account_id, parties)
    signatories = acc_el.findall("signatory")
    primary = next(
        (i for i, s in enumerate(signatories) if f.text_of(s, "is_primary") in ("1", "true")), 0
    )
    for i, sig in enumerate(signatories):
        person_el = sig.find("t_person")
        if person_el is None:
            continue
        parties.append(
            _record(
                f"{prefix}#signatory-{numbered + i + 1}",
                "signatory",
                f.person(person_el),
                account_id,
                bank,
                account_id,
                holder=ent is None and i == primary,
            )
        )


def _directors(
    ent: etree._Element,
    own_id: str,
    account_id: str | None,
    bank: str | None,
    txn_account: str | None,
    parties: list[dict[str, Any]],
) -> None:
    """An entity's directors (`director_id`, persons): `<own id>-director-N` beside a
    transaction's side (`...#from-director-1`), `<own id>#director` (then `-N`) elsewhere."""
    found = ent.findall("director_id")
    side = own_id.endswith(("#from", "#to"))
    for n, director in enumerate(found, start=1):
        if side:
            record_id = f"{own_id}-director-{n}"
        else:
            record_id = f"{own_id}#director" + (f"-{n}" if n > 1 else "")
        parties.append(
            _record(
                record_id,
                "director",
                f.person(director),
                account_id,
                bank,
                txn_account,
                holder=False,
            )  # fmt: skip
        )


def _record(
    record_id: str,
    role: str,
    attrs: dict[str, Any],
    account_id: str | None,
    bank_id: str | None,
    txn_account: str | None,
    *,
    holder: bool,
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "role": role,
        "account_id": account_id,
        "bank_id": bank_id,
        "txn_account": txn_account,
        "holder": holder,
        **attrs,
    }


def _activity(act: etree._Element, report: Report) -> None:
    """An activity report's parties: persons, entities and accounts, without transactions."""
    n = 0
    for party in act.iterfind("report_parties/report_party"):
        n += 1
        record_id = f"{report.source_file}#activity#{n}"
        country = f.text_of(party, "country")
        acc_el = party.find("account")
        if acc_el is None:
            acc_el = party.find("account_my_client")
        person_el = party.find("person")
        if person_el is None:
            person_el = party.find("person_my_client")
        entity_el = party.find("entity")
        if entity_el is None:
            entity_el = party.find("entity_my_client")
        if acc_el is not None:
            try:
                acc = f.account(acc_el)
            except f.FieldError:
                continue  # an account without number or bank cannot be keyed
            _account_records(acc_el, acc, record_id, "party", record_id, 0, report.parties)
            report.accounts.append({**acc, "country": acc["institution_country"] or country})
        elif person_el is not None or entity_el is not None:
            holder = person_el if person_el is not None else entity_el
            record = f.person(holder) if holder is person_el else f.entity(holder)
            report.parties.append(
                _record(record_id, "party", record, None, None, None, holder=False)
            )
            if holder is entity_el:
                _directors(holder, record_id, None, None, None, report.parties)

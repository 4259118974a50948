"""A planned report as goAML 5.0.1 XML, and the party records it contains.

Each bank writes its own clients in full (`t_from_my_client`/`t_to_my_client`: the account with
its holder as signatory, a company with its director, the fields the XSD requires of a client)
and the other side as it knows it (`t_from`/`t_to`: institution, account number, the name the
payer typed). Cash is conducted by the client (`from_person`/`to_entity` beside the account).
Every person or entity written is one party record, named as the shared contract says:
`<file>#<transactionnumber>#<from|to|signatory-N>` (`<file>` the report's path in the output
folder, `<bank>/<id>.xml` or `<bank>.zip/<id>.xml`, as the goAML reader names it; signatories
numbered through the transaction, the from side's first), `<file>#<transactionnumber>#<from|to>-director-N` for a company's directors, and
`<file>#activity#<n>` for an activity report's parties; its truth is kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree

from flows87.research.synth import catalog as cat
from flows87.research.synth.goaml_names import Identity, Noise, bank_view, report_view, rng_for
from flows87.research.synth.goaml_select import FOREIGN_BANKS, Report

# The synthetic FIU's lookup codes (every FIU publishes its own; these are valid in 5.0.1)
TRANSMODE = {
    "wire": "A",
    "ach": "B",
    "card": "C",
    "cash_deposit": "D",
    "cash_withdrawal": "E",
    "p2p": "F",
    "cheque": "AA",
    "mobile_money": "AB",
    "crypto": "AC",
    "other": "-",
}
FUNDS = {"cash_deposit": "A", "cash_withdrawal": "A", "cheque": "C"}
FUNDS_DEFAULT = "K"
CODES = {
    "personal_account_type": "A",
    "business_account_type": "B",
    "status_code": "A",
    "signatory_role": "A",
    "director_role": "CEO",
    "legal_form": "A",
    "address_type": "1",
    "business_address_type": "4",
    "phone_contact": "1",
    "phone_type": "M",
}
REASONS = {
    "STR": "Activity inconsistent with the client's profile and declared business.",
    "SAR": "Clients behaving in a way the bank considers suspicious; no single transaction.",
    "CTR": "Cash transaction at or above the reporting threshold.",
}
_BANK_WORDS = ("Harbour", "Riverside", "Summit", "Granite", "Meridian", "Northgate", "Lakeshore")
_BANK_KINDS = ("Bank", "Savings Bank", "Trust", "Credit Union", "Commercial Bank")


def _sub(parent: etree._Element, tag: str, text: object = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _when(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{value.isoformat()}T00:00:00"


def bank_name(code: str) -> str:
    if code >= FOREIGN_BANKS:
        return f"Correspondent Bank {code}"
    rng = rng_for("bank", code)
    return f"{rng.choice(_BANK_WORDS)} {rng.choice(_BANK_KINDS)}"


def canonical_identity(acc: dict[str, Any]) -> Identity:
    """The party behind an account as the canonical tables hold it, with the identity number
    the generator does not draw (derived from the party id, so every account of one person
    carries the same number)."""
    party = acc["party_id"]
    rng = rng_for("identity", party)
    country = acc["country"] or "US"
    phone = acc.get("phone")
    calling, digits = (
        phone[1:].split(" ", 1) if phone else (cat.CALLING_CODE.get(country, "1"), None)
    )
    street = city = None
    if acc.get("address"):
        street, _, city = acc["address"].rpartition(", ")
    if acc["kind"] == "business":
        return Identity(
            "entity",
            "",
            "",
            acc["name"],
            None,
            f"C{rng.randrange(10**7, 10**8)}",
            digits,
            calling,
            street,
            city,
            country,
            acc.get("email"),
        )
    first, _, last = acc["name"].partition(" ")
    number = (
        f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        if acc["bank_id"] < FOREIGN_BANKS
        else f"{chr(65 + rng.randrange(26))}{rng.randrange(10**7, 10**8)}"
    )
    return Identity(
        "person",
        first,
        last or first,
        acc["name"],
        acc.get("birth_date"),
        number,
        digits,
        calling,
        street,
        city,
        country,
        acc.get("email"),
    )


def director_of(company: Identity, party: str) -> Identity:
    """A company's director, a person of their own (the generator has no owners)."""
    rng = rng_for("director", party)
    first, last = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(40 * 365))
    return Identity(
        "person",
        first,
        last,
        f"{first} {last}",
        born,
        f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}",
        company.phone,
        company.calling,
        company.street,
        company.city,
        company.country,
        f"{first.lower()}.{last.lower()}@{rng.choice(cat.EMAIL_DOMAINS)}",
    )


@dataclass
class Writer:
    """Writes the reports of one synthetic population; collects the truth of each record."""

    accounts: dict[str, dict[str, Any]]
    transactions: dict[str, dict[str, Any]]
    seed: int
    noise: Noise
    currency: str  # the base currency: amount_local is in it
    home: str

    def __post_init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._canon: dict[str, Identity] = {}

    # -- who is written how
    def _canonical(self, account: str) -> Identity:
        if account not in self._canon:
            self._canon[account] = canonical_identity(self.accounts[account])
        return self._canon[account]

    def _view(self, who: Identity, party: str, bank: str, key: str, client: bool) -> Identity:
        kyc = bank_view(who, bank, party, self.seed, self.noise)
        # one report writes a party one way (a system export, or one clerk's typing)
        report = key.split("#", 1)[0].rsplit("/", 1)[-1]  # the same with or without --zip
        seen = report_view(kyc, f"{report}/{party}", self.seed, self.noise)
        if client:  # what the XSD requires of a bank's own client stays in its record
            seen = replace(seen, birth=kyc.birth, id_number=kyc.id_number, phone=kyc.phone)
        return seen

    def _record(
        self, rid: str, party: str, who: Identity, role: str, account: str | None, r: Report
    ) -> None:
        self.records.append(
            {
                "record_id": rid,
                "true_party_id": party,
                "kind": who.kind,
                "role": role,
                "account_id": account,
                "bank_id": r.bank,
                "source_file": r.path,
                "written_name": who.name if who.kind == "entity" else f"{who.first} {who.last}",
            }
        )

    # -- XML pieces in the XSD's order
    def _phone(self, parent: etree._Element, who: Identity) -> None:
        ph = _sub(_sub(parent, "phones"), "phone")
        _sub(ph, "tph_contact_type", CODES["phone_contact"])
        _sub(ph, "tph_communication_type", CODES["phone_type"])
        _sub(ph, "tph_country_prefix", who.calling)
        _sub(ph, "tph_number", who.phone or "000000000")

    def _address(self, parent: etree._Element, who: Identity, kind: str) -> None:
        if not who.street:
            return
        a = _sub(_sub(parent, "addresses"), "address")
        _sub(a, "address_type", CODES[kind])
        _sub(a, "address", who.street[:100])
        _sub(a, "city", who.city or who.country)
        _sub(a, "country_code", who.country)

    def _person(self, el: etree._Element, who: Identity, client: bool, occupation: str | None):
        _sub(el, "first_name", who.first)
        _sub(el, "last_name", who.last)
        if client or who.birth:
            _sub(el, "birthdate", _when(who.birth or date(1970, 1, 1)))
        foreign = who.id_number is not None and who.id_number[:1].isalpha()
        if who.id_number and not foreign:
            _sub(el, "ssn", who.id_number)
        elif client:
            _sub(el, "ssn", who.id_number or "-")
        if foreign and who.id_number:
            _sub(el, "passport_number", who.id_number)
            _sub(el, "passport_country", who.country)
        if client:
            _sub(el, "nationality1", who.country)
            _sub(el, "residence", who.country)
            self._phone(el, who)
            self._address(el, who, "address_type")
            if who.email:
                _sub(el, "email", who.email)
            _sub(el, "occupation", occupation or "unknown")

    def _entity(
        self, el: etree._Element, who: Identity, acc: dict, client: bool, director: Identity | None
    ) -> None:
        _sub(el, "name", who.name[:255])
        if not client:
            return
        _sub(el, "commercial_name", who.name[:255])
        _sub(el, "incorporation_legal_form", CODES["legal_form"])
        _sub(el, "incorporation_number", who.id_number or "-")
        _sub(el, "business", _business(acc))
        self._phone(el, who)
        self._address(el, who, "business_address_type")
        if who.email:
            _sub(el, "email", who.email)
        _sub(el, "incorporation_country_code", who.country)
        d = _sub(el, "director_id")
        self._person(d, director or who, False, None)
        _sub(d, "role", CODES["director_role"])
        opened = acc.get("opened_at")
        _sub(el, "incorporation_date", _when(opened.date() if opened else date(2000, 1, 1)))

    def _holder(
        self,
        parent: etree._Element,
        tag: str,
        account: str,
        r: Report,
        key: str,
        side: str,
        client: bool,
    ) -> None:
        """A person or entity element (`tag` + _person/_entity) for the holder of `account`."""
        acc = self.accounts[account]
        canon = self._canonical(account)
        who = self._view(canon, acc["party_id"], r.bank, key, client)
        if canon.kind == "person":
            self._person(_sub(parent, f"{tag}_person"), who, client, acc.get("occupation"))
            self._record(key, acc["party_id"], who, "holder", None, r)
            return
        director = self._director(acc, r, key, 1, client)
        self._entity(_sub(parent, f"{tag}_entity"), who, acc, client, director)
        self._record(key, acc["party_id"], who, "holder", None, r)

    def _director(self, acc: dict, r: Report, key: str, n: int, client: bool) -> Identity:
        party = f"{acc['party_id']}-D"
        dkey = f"{key}-director-{n}" if key.endswith(("#from", "#to")) else f"{key}#director"
        canon = director_of(self._canonical(acc["account_id"]), acc["party_id"])
        who = self._view(canon, party, r.bank, dkey, client)
        self._record(dkey, party, who, "director", None, r)
        return who

    def _account(
        self,
        parent: etree._Element,
        tag: str,
        account: str,
        r: Report,
        base: str,
        side: str,
        signatory: list[int],
    ) -> None:
        acc = self.accounts[account]
        client = acc["bank_id"] == r.bank
        canon = self._canonical(account)
        el = _sub(parent, tag)
        _sub(el, "institution_name", bank_name(acc["bank_id"]))
        _sub(el, "institution_code", acc["bank_id"])
        if acc["bank_id"] >= FOREIGN_BANKS:
            _sub(el, "institution_country", acc["country"])
        if client:
            _sub(el, "branch", f"{bank_name(acc['bank_id'])} {canon.city or 'head office'}")
        _sub(el, "account", account.split("-", 1)[1])
        party = acc["party_id"]
        sig_key = f"{base}#signatory-{signatory[0]}"
        holder_key = f"{base}#{side}"
        if canon.kind == "entity":
            who = self._view(canon, party, r.bank, holder_key, client)
        else:
            who = self._view(canon, party, r.bank, sig_key, client)
            if not client:  # a payer knows the beneficiary's name, not their papers
                who = replace(who, birth=None, id_number=None)
        name = who.name if canon.kind == "entity" else f"{who.first} {who.last}"
        if client:
            _sub(el, "currency_code", self.currency)
        _sub(el, "account_name", name[:255])
        if client:
            # the bank's own customer number: one party's numbers differ between banks, and the
            # truth's party id never reaches a report
            number = rng_for("client", self.seed, r.bank, party).randrange(10**9)
            _sub(el, "client_number", f"{r.bank}{number:09d}")
            kind = "personal_account_type" if canon.kind == "person" else "account_type"
            _sub(
                el,
                kind,
                CODES[f"{'personal' if canon.kind == 'person' else 'business'}_account_type"],
            )
        if canon.kind == "entity":
            director = self._director(acc, r, holder_key, 1, True) if client else None
            self._entity(_sub(el, "t_entity"), who, acc, client, director)
            self._record(holder_key, party, who, "holder", account, r)
            if client and director is not None:  # the director signs for the company
                s = _sub(el, "signatory")
                _sub(s, "is_primary", "1")
                self._person(_sub(s, "t_person"), director, True, "director")
                _sub(s, "role", CODES["signatory_role"])
                self._record(sig_key, f"{party}-D", director, "signatory", account, r)
                signatory[0] += 1
        else:
            s = _sub(el, "signatory")
            if client:
                _sub(s, "is_primary", "1")
            self._person(_sub(s, "t_person"), who, client, acc.get("occupation"))
            if client:
                _sub(s, "role", CODES["signatory_role"])
            self._record(sig_key, party, who, "signatory", account, r)
            signatory[0] += 1
        if client:
            opened = acc.get("opened_at")
            _sub(el, "opened", _when(opened) if opened else "2000-01-01T00:00:00")
            _sub(el, "status_code", CODES["status_code"])

    def _side(
        self, tx: etree._Element, t: dict, side: str, r: Report, base: str, signatory: list[int]
    ) -> None:
        end, other = (
            ("src_account", "dst_account") if side == "from" else ("dst_account", "src_account")
        )
        account = t[end]
        cash = account.startswith("CASH:")
        owner = t[other] if cash else account  # cash is conducted by the other side's holder
        client = self.accounts[owner]["bank_id"] == r.bank
        el = _sub(tx, f"t_{side}_my_client" if client else f"t_{side}")
        _sub(el, f"{side}_funds_code", FUNDS.get(t["channel"], FUNDS_DEFAULT))
        if side == "from" and t["currency"] != self.currency and t["amount"]:
            fc = _sub(el, "from_foreign_currency")
            _sub(fc, "foreign_currency_code", t["currency"])
            _sub(fc, "foreign_amount", f"{t['amount']:.2f}")
            _sub(fc, "foreign_exchange_rate", f"{t['amount_base'] / t['amount']:.6f}")
        if cash:
            self._holder(el, side, owner, r, f"{base}#{side}", side, client)
        else:
            self._account(el, f"{side}_account", account, r, base, side, signatory)
        country = t["src_country" if side == "from" else "dst_country"] or self.home
        _sub(el, f"{side}_country", country)

    # -- reports
    def report(self, r: Report) -> bytes:
        root = etree.Element("report")
        _sub(root, "rentity_id", int(r.bank))
        _sub(root, "rentity_branch", "Head office")
        _sub(root, "submission_code", "E")
        _sub(root, "report_code", r.code)
        _sub(root, "entity_reference", r.report_id)
        _sub(root, "submission_date", _when(self._submitted(r)))
        _sub(root, "currency_code_local", self.currency)
        mlro = rng_for("mlro", r.bank)
        person = _sub(root, "reporting_person")
        _sub(person, "first_name", mlro.choice(cat.FIRST_NAMES))
        _sub(person, "last_name", mlro.choice(cat.LAST_NAMES))
        _sub(person, "occupation", "Money laundering reporting officer")
        loc = _sub(root, "location")
        _sub(loc, "address_type", CODES["business_address_type"])
        _sub(loc, "address", f"{mlro.randrange(1, 300)} {mlro.choice(cat.STREETS)}")
        _sub(loc, "city", "Capital City")
        _sub(loc, "country_code", self.home)
        _sub(root, "reason", REASONS[r.code])
        file = r.path
        if r.code == "SAR":
            self._activity(root, r, file)
        for txn in r.txn_ids:
            self._transaction(root, self.transactions[txn], r, f"{file}#{txn}")
        _sub(_sub(root, "report_indicators"), "indicator", "-")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def _submitted(self, r: Report) -> datetime:
        last = max((self.transactions[t]["ts"] for t in r.txn_ids), default=None)
        if last is None:
            last = max(t["ts"] for t in self.transactions.values())
        rng = rng_for(self.seed, "submitted", r.report_id)
        return (last + timedelta(days=rng.randrange(1, 15))).replace(
            hour=rng.randrange(8, 18), minute=rng.randrange(60), second=0, microsecond=0
        )

    def _transaction(self, root: etree._Element, t: dict, r: Report, base: str) -> None:
        tx = _sub(root, "transaction")
        _sub(tx, "transactionnumber", t["txn_id"])
        _sub(tx, "transaction_location", t.get("location_id") or t["channel"])
        _sub(tx, "transaction_description", t.get("memo") or t["channel"].replace("_", " "))
        _sub(tx, "date_transaction", _when(t["ts"]))
        _sub(tx, "transmode_code", TRANSMODE.get(t["channel"], "-"))
        _sub(tx, "amount_local", f"{t['amount_base']:.2f}")
        signatory = [1]
        self._side(tx, t, "from", r, base, signatory)
        self._side(tx, t, "to", r, base, signatory)

    def _activity(self, root: etree._Element, r: Report, file: str) -> None:
        parties = _sub(_sub(root, "activity"), "report_parties")
        for n, account in enumerate(r.subjects, start=1):
            party = _sub(parties, "report_party")
            acc = self.accounts[account]
            key = f"{file}#activity#{n}"
            who = self._view(self._canonical(account), acc["party_id"], r.bank, key, True)
            self._person(_sub(party, "person_my_client"), who, True, acc.get("occupation"))
            self._record(key, acc["party_id"], who, "activity", account, r)
            _sub(party, "significance", 8)
            _sub(party, "reason", REASONS["SAR"])


def _business(acc: dict[str, Any]) -> str:
    code = acc.get("business_type")
    words = {f"{b.code:04d}": b.word for b in cat.BUSINESS_TYPES}
    return words.get(code or "", "Trading")
